/* test_stopsig.c: a stop signal arriving after stopsig_free() (the program is leaving for
 * another reason) leaves the exit status the program chose. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/event.h>

#include "stopsig.h"

/* in a child: the signal events set up and freed, then SIGSIG sent to itself, then exit 0 */
static int child_status(int sig)
{
	int status = -1;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct event_base *base = event_base_new();
		struct stopsig *s = stopsig_new(base);

		stopsig_free(s);
		event_base_free(base);
		raise(sig);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void test_term_after_free(void **state)
{
	int st = child_status(SIGTERM);

	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_int_after_free(void **state)
{
	int st = child_status(SIGINT);

	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_term_after_free),
	    cmocka_unit_test(test_int_after_free),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

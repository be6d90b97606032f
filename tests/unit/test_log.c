/* test_log.c: log_escape, the text and JSON line formats, verbosity and the fatal exits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

static void test_escape_plain(void **state)
{
	assert_string_equal(log_escape("default/p1 ok"), "default/p1 ok");
	assert_string_equal(log_escape(""), "");
	assert_string_equal(log_escape(NULL), "(null)");
}

static void test_escape_special(void **state)
{
	assert_string_equal(log_escape("a\nb"), "a\\x0ab");
	assert_string_equal(log_escape("tab\there"), "tab\\x09here");
	assert_string_equal(log_escape("back\\slash"), "back\\\\slash");
	assert_string_equal(log_escape("\x1b[31mred"), "\\x1b[31mred");
	assert_string_equal(log_escape("del\x7f"), "del\\x7f");
	assert_string_equal(log_escape("caf\xc3\xa9"), "caf\\xc3\\xa9");
}

static void test_escape_truncates(void **state)
{
	char in[2000];
	const char *out;

	memset(in, 'a', sizeof in - 1);
	in[sizeof in - 1] = '\0';
	out = log_escape(in);
	assert_int_equal(strlen(out), 512 + 3);
	assert_memory_equal(out, in, 512);
	assert_string_equal(out + 512, "...");

	/* exactly 512 bytes fit without an ellipsis */
	in[512] = '\0';
	assert_string_equal(log_escape(in), in);

	/* an escape sequence is never cut in half */
	memset(in, '\n', 200);
	in[200] = '\0';
	out = log_escape(in);
	assert_int_equal(strlen(out), 128 * 4 + 3);
	assert_string_equal(out + 128 * 4, "...");
}

static void test_escape_ring(void **state)
{
	const char *a = log_escape("one"), *b = log_escape("two");
	const char *c = log_escape("three"), *d = log_escape("four");

	/* the last four results are all still valid at once */
	assert_string_equal(a, "one");
	assert_string_equal(b, "two");
	assert_string_equal(c, "three");
	assert_string_equal(d, "four");
}

/* Runs fn with stderr redirected to a temporary file and returns what it wrote. */
static char *capture(void (*fn)(void))
{
	static char out[8192];
	FILE *f = tmpfile();
	int saved = dup(STDERR_FILENO);
	size_t n;

	assert_non_null(f);
	assert_true(saved >= 0);
	dup2(fileno(f), STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(f);
	n = fread(out, 1, sizeof out - 1, f);
	out[n] = '\0';
	fclose(f);
	return out;
}

static void emit_text(void)
{
	log_init("vmpool-planner", 0, LOG_FMT_TEXT);
	log_warnx("default/p1", "scale up %d", 3);
	log_info(NULL, "started");
	log_debug("default/p1", "hidden");
	errno = ENOENT;
	log_warn("ns/x", "open %s", "f");
}

static void test_text_format(void **state)
{
	char *out = capture(emit_text), *line2, *line3;

	/* 2026-11-24T01:02:03.456Z: 24 characters, then the rest */
	assert_true(strlen(out) > 24);
	assert_int_equal(out[4], '-');
	assert_int_equal(out[10], 'T');
	assert_int_equal(out[19], '.');
	assert_int_equal(out[23], 'Z');
	assert_int_equal(strncmp(out + 24, " vmpool-planner warn default/p1: scale up 3\n", 44), 0);
	line2 = strchr(out, '\n') + 1;
	assert_int_equal(strncmp(line2 + 24, " vmpool-planner info: started\n", 30), 0);
	line3 = strchr(line2, '\n') + 1;
	assert_non_null(strstr(line3, " vmpool-planner warn ns/x: open f: No such file"));
	assert_null(strstr(out, "hidden"));
}

static void emit_debug(void)
{
	log_init("p", 0, LOG_FMT_TEXT);
	log_setverbose(1);
	log_debug(NULL, "shown");
	log_setverbose(-1);
	log_info(NULL, "quiet");
	log_warnx(NULL, "loud");
}

static void test_verbosity(void **state)
{
	char *out = capture(emit_debug);

	assert_non_null(strstr(out, " p debug: shown\n"));
	assert_null(strstr(out, "quiet"));
	assert_non_null(strstr(out, " p warn: loud\n"));
}

static void emit_json(void)
{
	log_init("vmpool-watcher", 0, LOG_FMT_JSON);
	log_warnx("default/p1", "bad \"name\"\n\ttab\\ \x01 caf\xc3\xa9 \xff");
	log_init("vmpool-watcher", 0, LOG_FMT_TEXT);
}

static void test_json_format(void **state)
{
	char *out = capture(emit_json);
	json_object *o, *v;
	size_t len = strlen(out);

	assert_true(len > 0);
	assert_int_equal(out[len - 1], '\n');
	assert_ptr_equal(strchr(out, '\n'), out + len - 1); /* one line */
	o = json_tokener_parse(out);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "ts", &v));
	assert_int_equal(strlen(json_object_get_string(v)), 24);
	assert_true(json_object_object_get_ex(o, "proc", &v));
	assert_string_equal(json_object_get_string(v), "vmpool-watcher");
	assert_true(json_object_object_get_ex(o, "level", &v));
	assert_string_equal(json_object_get_string(v), "warn");
	assert_true(json_object_object_get_ex(o, "key", &v));
	assert_string_equal(json_object_get_string(v), "default/p1");
	assert_true(json_object_object_get_ex(o, "msg", &v));
	/* invalid UTF-8 (\xff) becomes U+FFFD, valid UTF-8 passes through */
	assert_string_equal(
	    json_object_get_string(v), "bad \"name\"\n\ttab\\ \x01 caf\xc3\xa9 \xef\xbf\xbd");
	json_object_put(o);
}

static int exit_status_of(void (*fn)(void))
{
	pid_t pid;
	int status;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		dup2(fd, STDERR_FILENO);
		fn();
		_exit(99);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void do_fatalx(void)
{
	fatalx("broken invariant %d", 1);
}

static void do_fatal(void)
{
	errno = EACCES;
	fatal("socket");
}

/* start-up state left allocated must not turn an ASan build's exit 78 into a leak report */
static void *volatile leaked;

static void do_fatal_config(void)
{
	leaked = malloc(100);
	leaked = NULL;
	fatal_config("bad flag");
}

static void test_fatal_exits(void **state)
{
	assert_int_equal(exit_status_of(do_fatalx), 1);
	assert_int_equal(exit_status_of(do_fatal), 1);
	assert_int_equal(exit_status_of(do_fatal_config), EXIT_CONFIG);
}

static void test_procname(void **state)
{
	log_init("vmpoold", 0, LOG_FMT_TEXT);
	assert_string_equal(log_procname(), "vmpoold");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escape_plain),
	    cmocka_unit_test(test_escape_special),
	    cmocka_unit_test(test_escape_truncates),
	    cmocka_unit_test(test_escape_ring),
	    cmocka_unit_test(test_text_format),
	    cmocka_unit_test(test_verbosity),
	    cmocka_unit_test(test_json_format),
	    cmocka_unit_test(test_fatal_exits),
	    cmocka_unit_test(test_procname),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_rundir.c: the run directory is created 0700 when missing and refused, with a message
 * naming the problem, when it is a symbolic link, not a directory, open to group or others,
 * or owned by another uid (that case as root only).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "rundir.h"

static char base[64];

static int setup(void **state)
{
	snprintf(base, sizeof base, "/tmp/test_rundir.XXXXXX");
	return mkdtemp(base) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *sub(const char *name)
{
	static char p[4][256];
	static int slot;
	char *s = p[slot++ % 4];

	snprintf(s, 256, "%s/%s", base, name);
	return s;
}

static void expect_refused(const char *dir, const char *words)
{
	char err[512] = "", name[300];

	snprintf(name, sizeof name, "%s", dir);
	if (strlen(name) > 1 && name[strlen(name) - 1] == '/')
		name[strlen(name) - 1] = '\0';
	assert_int_equal(rundir_check(dir, err, sizeof err), -1);
	if (strstr(err, words) == NULL || strstr(err, name) == NULL)
		fail_msg(
		    "%s: got \"%s\", want it to name the directory and \"%s\"", dir, err, words);
}

static void test_created_0700(void **state)
{
	char err[512];
	struct stat st;
	const char *d = sub("a/b/run");

	assert_int_equal(rundir_check(d, err, sizeof err), 0);
	assert_int_equal(lstat(d, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(st.st_uid, geteuid());
	/* again, as found, and with a trailing slash */
	assert_int_equal(rundir_check(d, err, sizeof err), 0);
	assert_int_equal(rundir_check(sub("a/b/run/"), err, sizeof err), 0);
}

static void test_symlink_refused(void **state)
{
	const char *target = sub("target"), *link = sub("link");
	char slash[300];

	assert_int_equal(mkdir(target, 0700), 0);
	assert_int_equal(symlink(target, link), 0);
	expect_refused(link, "symbolic link");
	snprintf(slash, sizeof slash, "%s/", link); /* "link/" must not follow it either */
	expect_refused(slash, "symbolic link");
	/* a dangling link (the squatter points it at a place we would create) */
	assert_int_equal(symlink(sub("nowhere"), sub("dangling")), 0);
	expect_refused(sub("dangling"), "symbolic link");
}

static void test_not_a_directory(void **state)
{
	FILE *f = fopen(sub("file"), "w");

	assert_non_null(f);
	fclose(f);
	expect_refused(sub("file"), "not a directory");
}

static void test_mode_refused(void **state)
{
	const char *d = sub("open");

	assert_int_equal(mkdir(d, 0700), 0);
	assert_int_equal(chmod(d, 0755), 0);
	expect_refused(d, "0755");
	assert_int_equal(chmod(d, 0710), 0);
	expect_refused(d, "unsafe permissions");
	assert_int_equal(chmod(d, 01777), 0);
	expect_refused(d, "1777");
}

static void test_owner_refused(void **state)
{
	const char *d = sub("theirs");

	if (geteuid() != 0)
		skip(); /* only root can make a directory someone else owns */
	assert_int_equal(mkdir(d, 0700), 0);
	assert_int_equal(chown(d, 65534, 65534), 0);
	expect_refused(d, "owned by uid 65534");
}

static void test_empty_refused(void **state)
{
	char err[128];

	assert_int_equal(rundir_check("", err, sizeof err), -1);
	assert_int_equal(rundir_check(NULL, err, sizeof err), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_created_0700, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_symlink_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_a_directory, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mode_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_owner_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

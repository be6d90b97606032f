/* test_log.c: log_escape, klog's text and component-base's JSON line formats, the printf and
 * key/value calls, verbosity and the fatal exits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
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

/* 2026-12-02 12:00:00.123456 UTC, in nanoseconds */
#define TS_NS 1796212800123456789LL

/* one line of log_format_line() in the given format, without its newline */
static const char *fmt_line(int format, enum log_sev sev, int v, const char *err, const char *msg,
    const struct log_kv *kv, size_t nkv)
{
	static char out[4096];
	size_t n;

	log_init("vmpool-planner", 0, format);
	n = log_format_line(
	    out, sizeof out, TS_NS, sev, v, "planner/planrun.c", 219, err, msg, kv, nkv);
	assert_true(n > 0 && out[n - 1] == '\n');
	assert_ptr_equal(memchr(out, '\n', n), out + n - 1); /* exactly one line */
	out[n - 1] = '\0';
	log_init("vmpool-planner", 0, LOG_FMT_TEXT);
	return out;
}

/* klog's header: severity, mmdd, UTC time to the microsecond, pid (%7d), file:line] */
static void test_text_klog(void **state)
{
	struct log_kv kv[] = {LOG_POOL("default/p1"), LOG_STR("op", "create"), LOG_INT("n", -3),
	    LOG_FLOAT("secs", 1.5)};
	char want[512];

	snprintf(want, sizeof want,
	    "I1202 12:00:00.123456 %7ld planrun.c:219] \"sync ok\" logger=\"vmpool-planner\" "
	    "pool=\"default/p1\" op=\"create\" n=-3 secs=1.5",
	    (long)getpid());
	assert_string_equal(fmt_line(LOG_FMT_TEXT, LOG_SEV_INFO, 2, NULL, "sync ok", kv, 4), want);
	/* severities: W, E (err first, as klog's ErrorS), F */
	assert_int_equal(fmt_line(LOG_FMT_TEXT, LOG_SEV_WARN, 0, NULL, "m", NULL, 0)[0], 'W');
	assert_non_null(strstr(
	    fmt_line(LOG_FMT_TEXT, LOG_SEV_ERROR, 0, "timeout", "write failed", kv, 1),
	    "] \"write failed\" err=\"timeout\" logger=\"vmpool-planner\" pool=\"default/p1\""));
	assert_int_equal(fmt_line(LOG_FMT_TEXT, LOG_SEV_ERROR, 0, "", "m", NULL, 0)[0], 'E');
	assert_int_equal(fmt_line(LOG_FMT_TEXT, LOG_SEV_FATAL, 0, NULL, "m", NULL, 0)[0], 'F');
}

/* Go's strconv.Quote: \" \\ \n \t, other control bytes and invalid UTF-8 as \xNN */
static void test_text_escaping(void **state)
{
	struct log_kv kv[] = {
	    LOG_STR("name", "a\"b\\c\nd\x01 caf\xc3\xa9 \xff"), LOG_STR("nil", NULL)};
	const char *l = fmt_line(LOG_FMT_TEXT, LOG_SEV_INFO, 0, NULL, "say \"hi\"\n", kv, 2);

	assert_non_null(strstr(l, "] \"say \\\"hi\\\"\\n\" "));
	assert_non_null(strstr(l, " name=\"a\\\"b\\\\c\\nd\\x01 caf\xc3\xa9 \\xff\" nil=\"\""));
}

static json_object *json_line(
    enum log_sev sev, int v, const char *err, const char *msg, const struct log_kv *kv, size_t nkv)
{
	json_object *o = json_tokener_parse(fmt_line(LOG_FMT_JSON, sev, v, err, msg, kv, nkv));

	assert_non_null(o);
	return o;
}

static const char *jstr(json_object *o, const char *path)
{
	json_object *v = o;
	char key[64], *dot;
	const char *p = path;

	while (p != NULL) {
		snprintf(key, sizeof key, "%s", p);
		if ((dot = strchr(key, '.')) != NULL)
			*dot = '\0';
		if (!json_object_object_get_ex(v, key, &v))
			return NULL;
		p = strchr(p, '.');
		if (p != NULL)
			p++;
	}
	return json_object_get_string(v);
}

/* component-base's JSON: ts (float milliseconds), caller, msg, v, err, object references */
static void test_json_format(void **state)
{
	struct log_kv kv[] = {LOG_POOL("default/p1"), LOG_REF("node", "n1"), LOG_INT("n", 7),
	    LOG_STR("s", "bad \"name\"\n\ttab\\ \x01 caf\xc3\xa9 \xff"), LOG_FLOAT("nan", NAN)};
	json_object *o = json_line(LOG_SEV_INFO, 2, NULL, "sync ok", kv, 5), *v;

	assert_true(json_object_object_get_ex(o, "ts", &v));
	assert_true(json_object_is_type(v, json_type_double));
	assert_true(json_object_get_double(v) > 1796212800123.4 &&
	            json_object_get_double(v) < 1796212800123.5);
	assert_string_equal(jstr(o, "caller"), "planrun.c:219");
	assert_string_equal(jstr(o, "msg"), "sync ok");
	assert_true(json_object_object_get_ex(o, "v", &v));
	assert_int_equal(json_object_get_int(v), 2);
	assert_false(json_object_object_get_ex(o, "err", &v));
	assert_string_equal(jstr(o, "logger"), "vmpool-planner");
	assert_string_equal(jstr(o, "pool.name"), "p1");
	assert_string_equal(jstr(o, "pool.namespace"), "default");
	assert_string_equal(jstr(o, "node.name"), "n1"); /* cluster-scoped: no namespace */
	assert_null(jstr(o, "node.namespace"));
	assert_true(json_object_object_get_ex(o, "n", &v));
	assert_true(json_object_is_type(v, json_type_int));
	assert_int_equal(json_object_get_int(v), 7);
	/* invalid UTF-8 (\xff) becomes U+FFFD, valid UTF-8 passes through */
	assert_string_equal(jstr(o, "s"), "bad \"name\"\n\ttab\\ \x01 caf\xc3\xa9 \xef\xbf\xbd");
	assert_string_equal(jstr(o, "nan"), "NaN");
	json_object_put(o);

	/* an error: no "v", an "err" */
	o = json_line(LOG_SEV_ERROR, 0, "connection refused", "write failed", kv, 1);
	assert_false(json_object_object_get_ex(o, "v", &v));
	assert_string_equal(jstr(o, "err"), "connection refused");
	assert_string_equal(jstr(o, "pool.name"), "p1");
	json_object_put(o);
}

static void emit_calls(void)
{
	log_init("vmpool-planner", 0, LOG_FMT_TEXT);
	log_warnx("default/p1", "scale up %d", 3);
	log_info(NULL, "started");
	log_debug("default/p1", "hidden");
	log_vs(2, "hidden too", LOG_POOL("default/p1"));
	log_infos("created", LOG_POOL("default/p1"), LOG_STR("vm", "p1-0"));
	log_infos("no pairs");
	log_errors("timeout", "write failed", LOG_POOL("ns/p"));
	log_error("ns/q", "status write failed: %d", 500);
	errno = ENOENT;
	log_warn("ns/x", "open %s", "f");
}

/* the printf-style calls keep working: their key goes out as object="ns/name" */
static void test_calls(void **state)
{
	char *out = capture(emit_calls);

	assert_non_null(
	    strstr(out, "\"scale up 3\" logger=\"vmpool-planner\" object=\"default/p1\"\n"));
	assert_non_null(strstr(out, "] \"started\" logger=\"vmpool-planner\"\n"));
	assert_null(strstr(out, "hidden"));
	assert_non_null(strstr(
	    out, "] \"created\" logger=\"vmpool-planner\" pool=\"default/p1\" vm=\"p1-0\"\n"));
	assert_non_null(strstr(out, "] \"no pairs\" logger=\"vmpool-planner\"\n"));
	assert_non_null(strstr(out, "\nE1"));
	assert_non_null(strstr(
	    out, "] \"write failed\" err=\"timeout\" logger=\"vmpool-planner\" pool=\"ns/p\"\n"));
	assert_non_null(strstr(
	    out, "] \"status write failed: 500\" logger=\"vmpool-planner\" object=\"ns/q\"\n"));
	assert_non_null(strstr(out,
	    "\"open f: No such file or directory\" logger=\"vmpool-planner\" object=\"ns/x\"\n"));
	assert_int_equal(out[0], 'W');
}

static int evaluated;
static const char *count_eval(const char *s)
{
	evaluated++;
	return s;
}

static void emit_debug(void)
{
	log_init("p", 0, LOG_FMT_TEXT);
	log_setverbose(4);
	log_debug(NULL, "shown");
	log_vs(5, "not at 4", LOG_STR("k", count_eval("x")));
	log_setverbose(-1);
	log_info(NULL, "quiet");
	log_warnx(NULL, "loud");
	log_errors("e", "louder");
}

/* --v: V(4) debug lines at 4, nothing above; -1 silences info but not warnings and errors;
 * the pairs of a line that is not printed are not even evaluated */
static void test_verbosity(void **state)
{
	char *out;

	evaluated = 0;
	out = capture(emit_debug);
	assert_non_null(strstr(out, "] \"shown\" logger=\"p\"\n"));
	assert_null(strstr(out, "not at 4"));
	assert_int_equal(evaluated, 0);
	assert_null(strstr(out, "quiet"));
	assert_non_null(strstr(out, "] \"loud\" logger=\"p\"\n"));
	assert_non_null(strstr(out, "] \"louder\" err=\"e\" logger=\"p\"\n"));
	assert_true(log_v_enabled(-1) && !log_v_enabled(0));
}

/* a line longer than the buffer is cut, still one line ending in a newline */
static void test_long_line(void **state)
{
	static char big[20000];
	char out[1024];
	struct log_kv kv[1];
	size_t n;

	memset(big, 'x', sizeof big - 1);
	kv[0] = LOG_STR("big", big);
	log_init("p", 0, LOG_FMT_JSON);
	n = log_format_line(out, sizeof out, TS_NS, LOG_SEV_INFO, 0, "f.c", 1, NULL, "m", kv, 1);
	log_init("p", 0, LOG_FMT_TEXT);
	assert_int_equal(n, sizeof out);
	assert_int_equal(out[n - 1], '\n');
	assert_null(memchr(out, '\n', n - 1));
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
	    cmocka_unit_test(test_text_klog),
	    cmocka_unit_test(test_text_escaping),
	    cmocka_unit_test(test_json_format),
	    cmocka_unit_test(test_calls),
	    cmocka_unit_test(test_verbosity),
	    cmocka_unit_test(test_long_line),
	    cmocka_unit_test(test_fatal_exits),
	    cmocka_unit_test(test_procname),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

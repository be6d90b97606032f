/* test_cli.c: the common flags, program extras, strict numbers, the exit-78 paths and the
 * endpoints' bind addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "metrics.h"
#include "proto.h"

#define MAXARGS 32

/* getopt_long permutes argv, so each run gets a fresh writable copy */
struct args {
	int argc;
	char *argv[MAXARGS + 1];
};

static void args_set(struct args *a, const char *const *list)
{
	a->argc = 0;
	while (list[a->argc] != NULL && a->argc < MAXARGS) {
		a->argv[a->argc] = strdup(list[a->argc]);
		a->argc++;
	}
	a->argv[a->argc] = NULL;
}

static void args_free(struct args *a)
{
	int i;

	for (i = 0; i < a->argc; i++)
		free(a->argv[i]);
}

#define OPT_POOL 1000
#define OPT_DRY  1001

static const struct option extra_opts[] = {
    {"pool", required_argument, NULL, OPT_POOL},
    {"dry-run", no_argument, NULL, OPT_DRY},
    {NULL, 0, NULL, 0},
};

struct extra {
	char pool[64];
	int dry;
};

static int extra_handle(int opt, const char *val, void *arg)
{
	struct extra *e = arg;

	switch (opt) {
	case OPT_POOL:
		if (strcmp(val, "bad") == 0)
			return -1;
		snprintf(e->pool, sizeof e->pool, "%s", val);
		return 0;
	case OPT_DRY:
		e->dry = 1;
		return 0;
	}
	return -1;
}

static int run_parse(struct cli *c, struct extra *e, const char *const *list)
{
	struct args a;
	int idx;

	args_set(&a, list);
	idx = cli_parse(c, "vmpool-test", a.argc, a.argv, extra_opts, extra_handle, e,
	    "  --pool NAME          the pool\n");
	args_free(&a);
	return idx;
}

static void test_defaults(void **state)
{
	const char *argv[] = {"prog", "--run-dir", "/tmp/rd", NULL};
	struct extra e = {{0}, 0};
	struct cli c;

	assert_int_equal(run_parse(&c, &e, argv), 3);
	assert_string_equal(c.prog, "vmpool-test");
	assert_string_equal(c.run_dir, "/tmp/rd");
	assert_null(c.kubeconfig);
	assert_null(c.namespace);
	assert_null(c.metrics_addr);
	assert_null(c.probe_addr);
	assert_null(c.master);
	assert_int_equal(c.log_format, LOG_FMT_TEXT);
	assert_int_equal(c.verbose, 0);
	assert_int_equal(c.max_frame, PROTO_MAX_FRAME_DEFAULT);
	assert_float_equal(c.qps, 50, 1e-9);
	assert_int_equal(c.burst, 100);
	assert_string_equal(log_procname(), "vmpool-test");
	cli_free(&c);
	cli_free(NULL);
}

/* without --run-dir the default comes from link_default_run_dir() (link.h) */
static void test_default_run_dir(void **state)
{
	const char *argv[] = {"prog", NULL};
	struct cli c;

	setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1);
	assert_int_equal(run_parse(&c, NULL, argv), 1);
	assert_string_equal(c.run_dir, "/run/user/4242/vmpoold");
	cli_free(&c);
	assert_null(c.run_dir);
}

static void test_all_flags(void **state)
{
	const char *argv[] = {"prog", "--run-dir", "/r", "--kubeconfig", "/k", "--namespace", "ns1",
	    "--log-format", "json", "-vv", "--verbose", "--metrics-addr", "127.0.0.1:9090",
	    "--max-frame", "65536", "--kube-api-qps", "2.5", "--kube-api-burst", "7", "--pool",
	    "p1", "--dry-run", "rest", NULL};
	struct extra e = {{0}, 0};
	struct cli c;
	struct args a;
	int idx;

	args_set(&a, argv);
	idx = cli_parse(&c, "vmpool-test", a.argc, a.argv, extra_opts, extra_handle, &e, NULL);
	assert_int_equal(idx, a.argc - 1);
	assert_string_equal(a.argv[idx], "rest");
	args_free(&a);
	assert_string_equal(c.run_dir, "/r");
	assert_string_equal(c.kubeconfig, "/k");
	assert_string_equal(c.namespace, "ns1");
	assert_int_equal(c.log_format, LOG_FMT_JSON);
	assert_int_equal(c.verbose, 3);
	assert_string_equal(c.metrics_addr, "127.0.0.1:9090");
	assert_int_equal(c.max_frame, 65536);
	assert_float_equal(c.qps, 2.5, 1e-9);
	assert_int_equal(c.burst, 7);
	assert_string_equal(e.pool, "p1");
	assert_int_equal(e.dry, 1);
	cli_free(&c);
	log_init("vmpool-test", 0, LOG_FMT_TEXT);
}

static void test_repeat_and_equals(void **state)
{
	const char *argv[] = {"prog", "--run-dir=/a", "--run-dir", "/b", "--kube-api-qps=0",
	    "--namespace=x", "--namespace=y", NULL};
	struct cli c;

	assert_int_equal(run_parse(&c, NULL, argv), 7);
	assert_string_equal(c.run_dir, "/b");
	assert_string_equal(c.namespace, "y");
	assert_float_equal(c.qps, 0, 1e-9); /* 0: unlimited */
	cli_free(&c);
}

/* Runs cli_parse in a child with stdout/stderr in files; returns the exit status. */
static int child_parse(const char *const *list, char *out, size_t outlen)
{
	FILE *f = tmpfile();
	pid_t pid;
	int status;
	size_t n;

	assert_non_null(f);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct extra e = {{0}, 0};
		struct cli c;
		int devnull = open("/dev/null", O_WRONLY);

		dup2(fileno(f), STDOUT_FILENO);
		dup2(devnull, STDERR_FILENO);
		run_parse(&c, &e, list);
		fflush(stdout);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	rewind(f);
	n = fread(out, 1, outlen - 1, f);
	out[n] = '\0';
	fclose(f);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_bad_values_exit_78(void **state)
{
	static const char *const bad[][6] = {
	    {"prog", "--run-dir", "/r", "--no-such-flag", NULL},
	    {"prog", "--run-dir", "/r", "-x", NULL},
	    {"prog", "--run-dir", "/r", "--kube-api-qps", "abc", NULL},
	    {"prog", "--run-dir", "/r", "--kube-api-qps", "", NULL},
	    {"prog", "--run-dir", "/r", "--kube-api-qps", "-1", NULL},
	    {"prog", "--run-dir", "/r", "--kube-api-qps", "nan", NULL},
	    {"prog", "--run-dir", "/r", "--kube-api-qps", "0x10", NULL},
	    {"prog", "--run-dir", "/r", "--kube-api-qps", "inf", NULL},
	    {"prog", "--run-dir", "/r", "--kube-api-qps", "5qps", NULL},
	    {"prog", "--run-dir", "/r", "--kube-api-burst", "0x10", NULL},
	    {"prog", "--run-dir", "/r", "--max-frame", "0x100000", NULL},
	    {"prog", "--run-dir", "/r", "--kube-api-burst", "0", NULL},
	    {"prog", "--run-dir", "/r", "--kube-api-burst", "10x", NULL},
	    {"prog", "--run-dir", "/r", "--kube-api-burst", "99999999999999999999", NULL},
	    {"prog", "--run-dir", "/r", "--max-frame", "12x", NULL},
	    {"prog", "--run-dir", "/r", "--max-frame", "1", NULL},
	    {"prog", "--run-dir", "/r", "--log-format", "xml", NULL},
	    {"prog", "--run-dir", "/r", "--namespace", "", NULL},
	    {"prog", "--run-dir", "/r", "--namespace", NULL},
	    {"prog", "--run-dir", "", NULL},
	    {"prog", "--run-dir", "/r", "--pool", "bad", NULL},
	    {"prog", "--run-dir", "/r", "--version=1", NULL},
	    {"prog", "--run-dir", "/r", "--v", "x", NULL},
	    {"prog", "--run-dir", "/r", "--v=-1", NULL},
	    {"prog", "--run-dir", "/r", "--v=11", NULL},
	    {"prog", "--run-dir", "/r", "--v=2.5", NULL},
	    {"prog", "--run-dir", "/r", "--logging-format=JSON", NULL},
	    {"prog", "--run-dir", "/r", "--logging-format", "", NULL},
	    {"prog", "--run-dir", "/r", "--metrics-bind-address", "9100", NULL},
	    {"prog", "--run-dir", "/r", "--metrics-bind-address", ":x", NULL},
	    {"prog", "--run-dir", "/r", "--metrics-bind-address", ":65536", NULL},
	    {"prog", "--run-dir", "/r", "--metrics-bind-address", "::1:9100", NULL},
	    {"prog", "--run-dir", "/r", "--metrics-bind-address", "[::1:9100", NULL},
	    {"prog", "--run-dir", "/r", "--metrics-addr", "", NULL},
	    {"prog", "--run-dir", "/r", "--health-probe-bind-address", "host", NULL},
	    {"prog", "--run-dir", "/r", "--master", "127.0.0.1:6443", NULL},
	    {"prog", "--run-dir", "/r", "--master", "https://", NULL},
	    {"prog", "--run-dir", "/r", "--master", "ftp://h", NULL},
	};
	char out[4096];
	size_t i;
	int st;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		st = child_parse(bad[i], out, sizeof out);
		if (st != EXIT_CONFIG)
			fail_msg("case %zu (%s %s): exit %d, want %d", i, bad[i][3],
			    bad[i][4] != NULL ? bad[i][4] : "", st, EXIT_CONFIG);
		assert_string_equal(out, ""); /* usage goes to stderr */
	}
}

static void test_good_in_child_exits_0(void **state)
{
	const char *argv[] = {"prog", "--run-dir", "/r", "--kube-api-qps", "100.5", NULL};
	char out[4096];

	/* the control case: the same harness sees 0 when parsing succeeds */
	assert_int_equal(child_parse(argv, out, sizeof out), 0);
}

/* --v=N sets the level, each -v adds one, in any order; --logging-format and its alias */
static void test_verbosity_and_format(void **state)
{
	const char *v3[] = {"prog", "--run-dir", "/r", "--v=3", NULL};
	const char *vv[] = {"prog", "--run-dir", "/r", "-vv", NULL};
	const char *mix[] = {"prog", "--run-dir", "/r", "-v", "--v", "2", "--verbose", NULL};
	const char *json[] = {"prog", "--run-dir", "/r", "--logging-format=json", NULL};
	const char *alias[] = {
	    "prog", "--run-dir", "/r", "--logging-format=json", "--log-format", "text", NULL};
	struct cli c;

	run_parse(&c, NULL, v3);
	assert_int_equal(c.verbose, 3);
	assert_true(log_v_enabled(3) && !log_v_enabled(4));
	cli_free(&c);
	run_parse(&c, NULL, vv);
	assert_int_equal(c.verbose, 2);
	cli_free(&c);
	run_parse(&c, NULL, mix);
	assert_int_equal(c.verbose, 4);
	cli_free(&c);
	run_parse(&c, NULL, json);
	assert_int_equal(c.log_format, LOG_FMT_JSON);
	cli_free(&c);
	run_parse(&c, NULL, alias);
	assert_int_equal(c.log_format, LOG_FMT_TEXT); /* the last one wins */
	cli_free(&c);
	log_init("vmpool-test", 0, LOG_FMT_TEXT);
}

/* bind addresses: host:port, [v6]:port, :port, and 0 for off; --master without its '/' */
static void test_addresses_and_master(void **state)
{
	const char *argv[] = {"prog", "--run-dir", "/r", "--metrics-bind-address", ":9100",
	    "--health-probe-bind-address", "[::1]:8081", "--master", "http://127.0.0.1:8001//",
	    NULL};
	const char *off[] = {"prog", "--run-dir", "/r", "--metrics-addr", "127.0.0.1:1",
	    "--metrics-bind-address", "0", "--health-probe-bind-address=0", NULL};
	struct cli c;

	run_parse(&c, NULL, argv);
	assert_string_equal(c.metrics_addr, ":9100");
	assert_string_equal(c.probe_addr, "[::1]:8081");
	assert_string_equal(c.master, "http://127.0.0.1:8001");
	cli_free(&c);
	run_parse(&c, NULL, off);
	assert_null(c.metrics_addr);
	assert_null(c.probe_addr);
	cli_free(&c);
	assert_int_equal(cli_bind_addr("host.example:80"), 0);
	assert_int_equal(cli_bind_addr("[fd00::2]:0"), 0);
	assert_int_equal(cli_bind_addr("[]:80"), -1);
	assert_int_equal(cli_bind_addr("a b:80"), -1);
	assert_int_equal(cli_bind_addr(NULL), -1);
}

/* 1 if a TCP connection to addr (IPv4 or IPv6 literal) and port is accepted */
static int can_connect(int family, const char *addr, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, rv;

	memset(&ss, 0, sizeof ss);
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((unsigned short)port);
		inet_pton(AF_INET, addr, &sin->sin_addr);
		len = sizeof *sin;
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((unsigned short)port);
		inet_pton(AF_INET6, addr, &sin6->sin6_addr);
		len = sizeof *sin6;
	}
	if ((fd = socket(family, SOCK_STREAM, 0)) == -1)
		return 0;
	rv = connect(fd, (struct sockaddr *)&ss, len) == 0;
	close(fd);
	return rv;
}

/* a port nobody listens on (bound once, then released) */
static int free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* 1 if ::1 can be bound here (a kernel or container without IPv6 cannot) */
static int has_ipv6_loopback(void)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	int fd = socket(AF_INET6, SOCK_STREAM, 0), ok;

	if (fd == -1)
		return 0;
	ok = bind(fd, (struct sockaddr *)&sin6, sizeof sin6) == 0;
	close(fd);
	return ok;
}

/* the first non-loopback IPv4 address of this machine, or 0 if there is none */
static int other_ipv4(char *out, size_t outlen)
{
	struct ifaddrs *ifa, *i;
	int found = 0;

	if (getifaddrs(&ifa) == -1)
		return 0;
	for (i = ifa; i != NULL && !found; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET ||
		    (i->ifa_flags & IFF_LOOPBACK))
			continue;
		inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, out,
		    (socklen_t)outlen);
		found = 1;
	}
	freeifaddrs(ifa);
	return found;
}

/*
 * :PORT means every interface, as Go's net.Listen(":PORT"): the metrics listener answers on
 * loopback over IPv4 and (where the machine has IPv6) IPv6, and on another address of the
 * machine; 127.0.0.1:PORT answers on 127.0.0.1 only. The probe listener the same.
 */
static void test_port_binds_every_interface(void **state)
{
	struct event_base *base = event_base_new();
	int mport = free_port(), pport = free_port();
	char maddr[32], paddr[32], other[64];
	const char *argv[] = {"prog", "--run-dir", "/r", "--metrics-bind-address", maddr,
	    "--health-probe-bind-address", paddr, NULL};
	int has_v6 = has_ipv6_loopback();
	struct cli c;

	snprintf(maddr, sizeof maddr, ":%d", mport);
	snprintf(paddr, sizeof paddr, "127.0.0.1:%d", pport);
	run_parse(&c, NULL, argv);
	cli_start_endpoints(base, &c);
	assert_true(can_connect(AF_INET, "127.0.0.1", mport));
	if (has_v6)
		assert_true(can_connect(AF_INET6, "::1", mport));
	if (other_ipv4(other, sizeof other)) {
		assert_true(can_connect(AF_INET, other, mport));
		assert_false(can_connect(AF_INET, other, pport)); /* the control case */
	}
	assert_true(can_connect(AF_INET, "127.0.0.1", pport));
	metrics_stop();
	assert_false(can_connect(AF_INET, "127.0.0.1", mport));
	assert_false(can_connect(AF_INET, "127.0.0.1", pport));
	cli_free(&c);
	event_base_free(base);
}

static void test_help_and_version(void **state)
{
	const char *help[] = {"prog", "--run-dir", "/r", "-h", NULL};
	const char *help2[] = {"prog", "--help", NULL};
	const char *version[] = {"prog", "--version", NULL};
	char out[4096];

	assert_int_equal(child_parse(help, out, sizeof out), 0);
	assert_non_null(strstr(out, "usage: vmpool-test"));
	assert_non_null(strstr(out, "--kube-api-burst"));
	assert_non_null(strstr(out, "--metrics-bind-address"));
	assert_non_null(strstr(out, "--health-probe-bind-address"));
	assert_non_null(strstr(out, "--logging-format"));
	assert_non_null(strstr(out, "--master URL"));
	/* which calls --kube-api-qps limits (common/kubegate.c: every write attempt, no GET) */
	assert_non_null(strstr(out, "retries included, of a create, update, patch or delete"));
	assert_non_null(strstr(out, "lists and watches (GET) are not limited"));
	assert_non_null(strstr(out, "--pool NAME"));
	assert_int_equal(child_parse(help2, out, sizeof out), 0);
	assert_non_null(strstr(out, "--run-dir"));
	assert_int_equal(child_parse(version, out, sizeof out), 0);
	assert_string_equal(out, "vmpool-test " VMPOOL_VERSION "\n");
}

static void test_cli_int(void **state)
{
	long v = -7;

	assert_int_equal(cli_int("42", 0, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(cli_int("-5", -10, 10, &v), 0);
	assert_int_equal(v, -5);
	assert_int_equal(cli_int("100", 0, 100, &v), 0);
	v = -7;
	assert_int_equal(cli_int("101", 0, 100, &v), -1);
	assert_int_equal(cli_int("-1", 0, 100, &v), -1);
	assert_int_equal(cli_int("", 0, 100, &v), -1);
	assert_int_equal(cli_int(" 5", 0, 100, &v), -1);
	assert_int_equal(cli_int("5 ", 0, 100, &v), -1);
	assert_int_equal(cli_int("5x", 0, 100, &v), -1);
	assert_int_equal(cli_int("1.5", 0, 100, &v), -1);
	assert_int_equal(cli_int("99999999999999999999999", 0, 100, &v), -1);
	assert_int_equal(cli_int(NULL, 0, 100, &v), -1);
	/* strict decimal: no hex, sign, octal-looking guesses or trailing junk */
	assert_int_equal(cli_int("0x10", 0, 100, &v), -1);
	assert_int_equal(cli_int("+5", 0, 100, &v), -1);
	assert_int_equal(cli_int("-", -10, 100, &v), -1);
	assert_int_equal(cli_int("5\n", 0, 100, &v), -1);
	assert_int_equal(cli_int("1e2", 0, 1000, &v), -1);
	assert_int_equal(v, -7); /* untouched on error */
	assert_int_equal(cli_int("010", 0, 100, &v), 0);
	assert_int_equal(v, 10); /* decimal, not octal */
}

static void test_cli_double(void **state)
{
	double d = -7;

	assert_int_equal(cli_double("2.5", 0, 10, &d), 0);
	assert_float_equal(d, 2.5, 1e-12);
	assert_int_equal(cli_double("10", 0, 10, &d), 0);
	assert_float_equal(d, 10, 1e-12);
	assert_int_equal(cli_double("0.25", 0, 10, &d), 0);
	assert_float_equal(d, 0.25, 1e-12);
	d = -7;
	/* strict decimal: no exponent, hex, inf, nan, sign or junk */
	assert_int_equal(cli_double("1e1", 0, 100, &d), -1);
	assert_int_equal(cli_double("0x10", 0, 100, &d), -1);
	assert_int_equal(cli_double("0x1p4", 0, 100, &d), -1);
	assert_int_equal(cli_double("+1", 0, 10, &d), -1);
	assert_int_equal(cli_double("1.", 0, 10, &d), -1);
	assert_int_equal(cli_double(".5", 0, 10, &d), -1);
	assert_int_equal(cli_double("1..5", 0, 10, &d), -1);
	assert_int_equal(cli_double("infinity", -1e300, 1e300, &d), -1);
	assert_int_equal(cli_double("NaN", -1e300, 1e300, &d), -1);
	assert_int_equal(cli_double("10.001", 0, 10, &d), -1);
	assert_int_equal(cli_double("", 0, 10, &d), -1);
	assert_int_equal(cli_double("1.5x", 0, 10, &d), -1);
	assert_int_equal(cli_double(" 1", 0, 10, &d), -1);
	assert_int_equal(cli_double("nan", -1e300, 1e300, &d), -1);
	assert_int_equal(cli_double("inf", -1e300, 1e300, &d), -1);
	assert_int_equal(cli_double("1e999", -1e300, 1e300, &d), -1);
	assert_float_equal(d, -7, 1e-12);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_default_run_dir),
	    cmocka_unit_test(test_all_flags),
	    cmocka_unit_test(test_repeat_and_equals),
	    cmocka_unit_test(test_bad_values_exit_78),
	    cmocka_unit_test(test_good_in_child_exits_0),
	    cmocka_unit_test(test_verbosity_and_format),
	    cmocka_unit_test(test_addresses_and_master),
	    cmocka_unit_test(test_port_binds_every_interface),
	    cmocka_unit_test(test_help_and_version),
	    cmocka_unit_test(test_cli_int),
	    cmocka_unit_test(test_cli_double),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_metrics.c: Prometheus text rendering (counters, gauges, histograms), label escaping,
 * the standard families of metrics_std.c (process_*, build info, workqueue_*) and the HTTP
 * endpoints. */
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "cli.h"
#include "../support/metricskit.h"
#include "metrics.h"

/* the registry rendered as a NUL-terminated string; caller frees */
#define render metricskit_render

static int reset(void **state)
{
	metrics_stop();
	return 0;
}

static void test_empty(void **state)
{
	char *s = render();

	assert_string_equal(s, "");
	free(s);
}

static void test_counter_gauge(void **state)
{
	char *s;

	metrics_declare("vmpool_vms", "gauge", "VMs owned by the pool.");
	metrics_declare("vmpool_actions_total", "counter", "Actions sent.");
	metrics_set("vmpool_vms", "namespace=\"ns\",pool=\"b\"", 3);
	metrics_set("vmpool_vms", "namespace=\"ns\",pool=\"a\"", 2);
	metrics_set("vmpool_vms", "namespace=\"ns\",pool=\"a\"", 5); /* replaces */
	metrics_add("vmpool_actions_total", "op=\"create_vm\"", 1);
	metrics_add("vmpool_actions_total", "op=\"create_vm\"", 2);
	metrics_add("vmpool_actions_total", "op=\"delete_vm\"", 1);
	metrics_add("vmpool_actions_total", NULL, 0.5);
	s = render();
	assert_string_equal(s, "# HELP vmpool_actions_total Actions sent.\n"
	                       "# TYPE vmpool_actions_total counter\n"
	                       "vmpool_actions_total 0.5\n"
	                       "vmpool_actions_total{op=\"create_vm\"} 3\n"
	                       "vmpool_actions_total{op=\"delete_vm\"} 1\n"
	                       "# HELP vmpool_vms VMs owned by the pool.\n"
	                       "# TYPE vmpool_vms gauge\n"
	                       "vmpool_vms{namespace=\"ns\",pool=\"a\"} 5\n"
	                       "vmpool_vms{namespace=\"ns\",pool=\"b\"} 3\n");
	free(s);

	metrics_remove("vmpool_vms", "namespace=\"ns\",pool=\"a\"");
	metrics_remove("vmpool_vms", "namespace=\"ns\",pool=\"zz\""); /* absent: no-op */
	metrics_remove("nosuch", NULL);
	metrics_remove("vmpool_actions_total", "");
	s = render();
	assert_string_equal(s, "# HELP vmpool_actions_total Actions sent.\n"
	                       "# TYPE vmpool_actions_total counter\n"
	                       "vmpool_actions_total{op=\"create_vm\"} 3\n"
	                       "vmpool_actions_total{op=\"delete_vm\"} 1\n"
	                       "# HELP vmpool_vms VMs owned by the pool.\n"
	                       "# TYPE vmpool_vms gauge\n"
	                       "vmpool_vms{namespace=\"ns\",pool=\"b\"} 3\n");
	free(s);
}

static void test_families_sorted(void **state)
{
	char *s;

	metrics_set("zz", NULL, 1);
	metrics_set("aa", "", 2);
	metrics_declare("mm", "gauge", NULL);
	metrics_set("mm", "x=\"1\"", -7);
	metrics_set("bad-name", NULL, 1); /* ignored */
	s = render();
	assert_string_equal(s, "# TYPE aa untyped\n"
	                       "aa 2\n"
	                       "# TYPE mm gauge\n"
	                       "mm{x=\"1\"} -7\n"
	                       "# TYPE zz untyped\n"
	                       "zz 1\n");
	free(s);
}

static void test_values(void **state)
{
	char *s;

	metrics_set("a", "k=\"1\"", 0.1);
	metrics_set("a", "k=\"2\"", 1e300);
	metrics_set("a", "k=\"3\"", INFINITY);
	metrics_set("a", "k=\"4\"", -INFINITY);
	metrics_set("a", "k=\"5\"", NAN);
	metrics_set("a", "k=\"6\"", 1234567890123.0);
	metrics_set("a", "k=\"7\"", 1.0 / 3.0);
	s = render();
	assert_string_equal(s, "# TYPE a untyped\n"
	                       "a{k=\"1\"} 0.1\n"
	                       "a{k=\"2\"} 1e+300\n"
	                       "a{k=\"3\"} +Inf\n"
	                       "a{k=\"4\"} -Inf\n"
	                       "a{k=\"5\"} NaN\n"
	                       "a{k=\"6\"} 1234567890123\n"
	                       "a{k=\"7\"} 0.3333333333333333\n");
	free(s);
}

static void test_help_escaped(void **state)
{
	char *s;

	metrics_declare("h", "gauge", "line one\nback\\slash \"quoted\"");
	s = render();
	assert_string_equal(s, "# HELP h line one\\nback\\\\slash \"quoted\"\n"
	                       "# TYPE h gauge\n");
	free(s);
}

static void test_labels_helper(void **state)
{
	char *l, *s;

	l = metrics_labels("namespace", "default", "pool", "p", NULL);
	assert_string_equal(l, "namespace=\"default\",pool=\"p\"");
	free(l);
	l = metrics_labels("k", "a\"b\\c\nd", NULL);
	assert_string_equal(l, "k=\"a\\\"b\\\\c\\nd\"");
	metrics_set("esc", l, 1);
	free(l);
	l = metrics_labels("k", "", NULL);
	assert_string_equal(l, "k=\"\"");
	free(l);
	l = metrics_labels(NULL, NULL, NULL);
	assert_string_equal(l, "");
	free(l);
	s = render();
	assert_string_equal(s, "# TYPE esc untyped\nesc{k=\"a\\\"b\\\\c\\nd\"} 1\n");
	free(s);
}

static void test_histogram(void **state)
{
	static const double bounds[] = {0.005, 0.1, 1, 60};
	char *s;

	metrics_declare_histogram("rq_seconds", "Latency.", bounds, 4);
	metrics_observe("rq_seconds", "verb=\"GET\"", 0.005); /* on a bound: that bucket */
	metrics_observe("rq_seconds", "verb=\"GET\"", 0.05);
	metrics_observe("rq_seconds", "verb=\"GET\"", 0.5);
	metrics_observe("rq_seconds", "verb=\"GET\"", 120); /* above every bound */
	metrics_observe("rq_seconds", "verb=\"GET\"", NAN); /* ignored */
	metrics_observe("rq_seconds", NULL, 2);
	metrics_set("rq_seconds", "verb=\"GET\"", 7); /* not a plain family: ignored */
	metrics_add("rq_seconds", NULL, 7);
	s = render();
	assert_string_equal(s, "# HELP rq_seconds Latency.\n"
	                       "# TYPE rq_seconds histogram\n"
	                       "rq_seconds_bucket{le=\"0.005\"} 0\n"
	                       "rq_seconds_bucket{le=\"0.1\"} 0\n"
	                       "rq_seconds_bucket{le=\"1\"} 0\n"
	                       "rq_seconds_bucket{le=\"60\"} 1\n"
	                       "rq_seconds_bucket{le=\"+Inf\"} 1\n"
	                       "rq_seconds_sum 2\n"
	                       "rq_seconds_count 1\n"
	                       "rq_seconds_bucket{verb=\"GET\",le=\"0.005\"} 1\n"
	                       "rq_seconds_bucket{verb=\"GET\",le=\"0.1\"} 2\n"
	                       "rq_seconds_bucket{verb=\"GET\",le=\"1\"} 3\n"
	                       "rq_seconds_bucket{verb=\"GET\",le=\"60\"} 3\n"
	                       "rq_seconds_bucket{verb=\"GET\",le=\"+Inf\"} 4\n"
	                       "rq_seconds_sum{verb=\"GET\"} 120.555\n"
	                       "rq_seconds_count{verb=\"GET\"} 4\n");
	free(s);

	/* declared again with the same buckets: samples kept; other buckets: started afresh */
	metrics_declare_histogram("rq_seconds", "Latency.", bounds, 4);
	s = render();
	assert_non_null(strstr(s, "rq_seconds_count{verb=\"GET\"} 4\n"));
	free(s);
	metrics_declare_histogram("rq_seconds", NULL, bounds, 2);
	metrics_observe("rq_seconds", NULL, 0.01);
	s = render();
	assert_string_equal(s, "# TYPE rq_seconds histogram\n"
	                       "rq_seconds_bucket{le=\"0.005\"} 0\n"
	                       "rq_seconds_bucket{le=\"0.1\"} 1\n"
	                       "rq_seconds_bucket{le=\"+Inf\"} 1\n"
	                       "rq_seconds_sum 0.01\n"
	                       "rq_seconds_count 1\n");
	free(s);
	/* a histogram that becomes a gauge loses its buckets; removing a series works */
	metrics_declare("rq_seconds", "gauge", NULL);
	metrics_set("rq_seconds", NULL, 3);
	metrics_observe("rq_seconds", NULL, 1); /* not a histogram any more: ignored */
	s = render();
	assert_string_equal(s, "# TYPE rq_seconds gauge\nrq_seconds 3\n");
	free(s);
}

static void test_histogram_bad_bounds(void **state)
{
	static const double unsorted[] = {1, 0.5}, inf[] = {1, INFINITY}, dup[] = {1, 1};
	char *s;

	metrics_declare_histogram("h1", NULL, unsorted, 2);
	metrics_declare_histogram("h2", NULL, inf, 2);
	metrics_declare_histogram("h3", NULL, dup, 2);
	metrics_declare_histogram("h4", NULL, unsorted, 0);
	metrics_declare_histogram("bad-name", NULL, unsorted + 1, 1);
	metrics_observe("h1", NULL, 1);
	metrics_observe("nosuch", NULL, 1);
	s = render();
	assert_string_equal(s, "");
	free(s);
}

/* label values with quotes, backslashes and newlines stay escaped next to le */
static void test_histogram_escaped_labels(void **state)
{
	static const double bounds[] = {1};
	char *l = metrics_labels("pool", "a\"b\\c\nd", NULL), *s;

	metrics_declare_histogram("h", "help with \\ and\nnewline", bounds, 1);
	metrics_observe("h", l, 0.5);
	free(l);
	s = render();
	assert_string_equal(s, "# HELP h help with \\\\ and\\nnewline\n"
	                       "# TYPE h histogram\n"
	                       "h_bucket{pool=\"a\\\"b\\\\c\\nd\",le=\"1\"} 1\n"
	                       "h_bucket{pool=\"a\\\"b\\\\c\\nd\",le=\"+Inf\"} 1\n"
	                       "h_sum{pool=\"a\\\"b\\\\c\\nd\"} 0.5\n"
	                       "h_count{pool=\"a\\\"b\\\\c\\nd\"} 1\n");
	free(s);
}

/* the value of the sample that starts with prefix (name and labels, up to the blank) */
static double sample(const char *text, const char *prefix)
{
	double v = 0;

	if (metricskit_sample(text, prefix, &v) == -1)
		fail_msg("no sample %s in:\n%s", prefix, text);
	return v;
}

static void test_std_process(void **state)
{
	struct buf b = {0};
	char *s;
	double start, now = (double)time(NULL);
	void *junk = malloc(1 << 20);

	memset(junk, 1, 1 << 20);
	metrics_scrape(&b);
	buf_add(&b, "", 1);
	s = (char *)b.data;
	assert_non_null(strstr(s, "# TYPE process_cpu_seconds_total counter\n"));
	assert_true(sample(s, "process_cpu_seconds_total") >= 0);
	assert_true(sample(s, "process_resident_memory_bytes") >= 1 << 20);
	assert_true(sample(s, "process_virtual_memory_bytes") >=
	            sample(s, "process_resident_memory_bytes"));
	assert_true(sample(s, "process_open_fds") >= 3);
	assert_true(sample(s, "process_max_fds") >= sample(s, "process_open_fds"));
	start = sample(s, "process_start_time_seconds");
	if (start > now + 1 || start < now - 3600)
		fail_msg("process_start_time_seconds %.2f, now %.0f", start, now);
	assert_non_null(strstr(s, "# TYPE vmpoold_build_info gauge\n"));
	assert_non_null(strstr(s, "\nvmpoold_build_info{compiler=\""));
	assert_non_null(strstr(s, ",version=\"" VMPOOL_VERSION "\"} 1\n"));
	free(junk);
	buf_clear(&b);
}

static void test_std_workqueue(void **state)
{
	char *s;

	metrics_wq_declare("planner");
	metrics_wq_declare("status");
	metrics_wq_added("planner", 1);
	metrics_wq_added("planner", 2);
	metrics_wq_retry("planner");
	metrics_wq_started("planner", 0.003);
	metrics_wq_started("planner", -1); /* a clock step: counted as 0 */
	metrics_wq_depth("planner", 0);
	metrics_wq_done("planner", 0.00002);
	metrics_wq_done("planner", 20);
	s = render();
	assert_true(sample(s, "workqueue_adds_total{name=\"planner\"}") == 2);
	assert_true(sample(s, "workqueue_adds_total{name=\"status\"}") == 0);
	assert_true(sample(s, "workqueue_depth{name=\"planner\"}") == 0);
	assert_true(sample(s, "workqueue_retries_total{name=\"planner\"}") == 1);
	assert_true(sample(s, "workqueue_retries_total{name=\"status\"}") == 0);
	assert_non_null(strstr(s, "# TYPE workqueue_queue_duration_seconds histogram\n"));
	assert_true(
	    sample(s, "workqueue_queue_duration_seconds_bucket{name=\"planner\",le=\"1e-08\"}") ==
	    1);
	assert_true(
	    sample(s, "workqueue_queue_duration_seconds_bucket{name=\"planner\",le=\"0.001\"}") ==
	    1);
	assert_true(
	    sample(s, "workqueue_queue_duration_seconds_bucket{name=\"planner\",le=\"0.01\"}") ==
	    2);
	assert_true(sample(s, "workqueue_queue_duration_seconds_count{name=\"planner\"}") == 2);
	assert_true(
	    sample(s, "workqueue_work_duration_seconds_bucket{name=\"planner\",le=\"10\"}") == 1);
	assert_true(
	    sample(s, "workqueue_work_duration_seconds_bucket{name=\"planner\",le=\"+Inf\"}") == 2);
	assert_true(sample(s, "workqueue_work_duration_seconds_sum{name=\"planner\"}") == 20.00002);
	free(s);
}

static void test_bad_addr(void **state)
{
	struct event_base *base = event_base_new();
	char err[256];

	assert_int_equal(metrics_start(base, "nocolon", err, sizeof err), -1);
	assert_non_null(strstr(err, "bad metrics address"));
	assert_int_equal(metrics_start(base, "127.0.0.1:99999", err, sizeof err), -1);
	assert_int_equal(metrics_start(base, "127.0.0.1:", err, sizeof err), -1);
	assert_int_equal(metrics_start(base, ":x", err, sizeof err), -1);
	event_base_free(base);
}

/* a free TCP port on 127.0.0.1 (closed again: good enough for a test) */
static int free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

struct fetch {
	struct event_base *base;
	struct buf resp;
	int done;
};

static void fetch_read(struct bufferevent *bev, void *arg)
{
	struct fetch *f = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in);

	buf_reserve(&f->resp, n);
	evbuffer_remove(in, f->resp.data + f->resp.len, n);
	f->resp.len += n;
}

static void fetch_event(struct bufferevent *bev, short what, void *arg)
{
	struct fetch *f = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		fetch_read(bev, arg);
		f->done = 1;
		event_base_loopbreak(f->base);
	}
}

/* GET path from our own server, driven by the same loop; returns the raw response */
static char *fetch(struct event_base *base, int port, const char *path)
{
	struct fetch f = {base, {0}, 0};
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	struct timeval tv = {5, 0};
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	bufferevent_setcb(bev, fetch_read, NULL, fetch_event, &f);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	assert_int_equal(bufferevent_socket_connect(bev, (struct sockaddr *)&sin, sizeof sin), 0);
	bufferevent_write(bev, "GET ", 4);
	bufferevent_write(bev, path, strlen(path));
	bufferevent_write(bev, " HTTP/1.0\r\n\r\n", 13);
	event_base_loopexit(base, &tv); /* a safety net: never hang */
	event_base_dispatch(base);
	bufferevent_free(bev);
	assert_true(f.done);
	buf_add(&f.resp, "", 1);
	return (char *)f.resp.data;
}

static void test_http(void **state)
{
	struct event_base *base = event_base_new();
	char addr[64], err[256], *r;
	int port = free_port();

	snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
	if (metrics_start(base, addr, err, sizeof err) != 0)
		fail_msg("metrics_start %s: %s", addr, err);
	assert_int_equal(metrics_start(base, addr, err, sizeof err), -1); /* only one */
	metrics_declare("vmpool_up", "gauge", "1 while running.");
	metrics_set("vmpool_up", "stage=\"test\"", 1);

	r = fetch(base, port, "/metrics");
	assert_int_equal(strncmp(r, "HTTP/1.", 7), 0);
	assert_non_null(strstr(r, " 200 OK\r\n"));
	assert_non_null(strstr(r, "Content-Type: text/plain; version=0.0.4"));
	assert_non_null(strstr(r, "\r\n\r\n# HELP process_cpu_seconds_total "));
	assert_non_null(strstr(r, "\n# HELP vmpool_up 1 while running.\n"
	                          "# TYPE vmpool_up gauge\n"
	                          "vmpool_up{stage=\"test\"} 1\n"));
	assert_non_null(strstr(r, "\nvmpoold_build_info{"));
	free(r);

	r = fetch(base, port, "/healthz");
	assert_non_null(strstr(r, " 200 "));
	assert_non_null(strstr(r, "\r\n\r\nok"));
	free(r);

	r = fetch(base, port, "/readyz");
	assert_non_null(strstr(r, " 503 "));
	free(r);
	metrics_set_ready(1);
	r = fetch(base, port, "/readyz");
	assert_non_null(strstr(r, " 200 "));
	assert_non_null(strstr(r, "\r\n\r\nok"));
	free(r);

	r = fetch(base, port, "/nosuch");
	assert_non_null(strstr(r, " 404 "));
	free(r);

	metrics_stop();
	event_base_free(base);
}

/* resident memory of this process in KiB */
static long rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	assert_non_null(f);
	while (fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	}
	fclose(f);
	return kib;
}

static int tcp_connect(int port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	return fd;
}

/* the child: one request whose header never ends, 64 MB of it unless the server hangs up */
static void endless_header_child(int port)
{
	char line[4096];
	size_t sent = 0;
	int fd = tcp_connect(port);

	signal(SIGPIPE, SIG_IGN);
	memset(line, 'a', sizeof line);
	memcpy(line, "X-Endless: ", 11);
	if (write(fd, "GET /metrics HTTP/1.1\r\n", 23) != 23)
		_exit(2);
	while (sent < (size_t)64 << 20) {
		if (write(fd, line, sizeof line) <= 0)
			_exit(0); /* closed on us: what we want */
		sent += sizeof line;
	}
	_exit(1);
}

struct waitchild {
	struct event_base *base;
	struct event *tick;
	pid_t pid;
	int status;
};

static void waitchild_cb(evutil_socket_t fd, short what, void *arg)
{
	struct waitchild *w = arg;
	struct timeval tv = {0, 10000};

	if (waitpid(w->pid, &w->status, WNOHANG) == w->pid) {
		w->pid = 0;
		event_base_loopbreak(w->base);
	} else
		evtimer_add(w->tick, &tv);
}

static void test_endless_header(void **state)
{
	struct event_base *base = event_base_new();
	struct waitchild w = {base, NULL, 0, 0};
	struct timeval tv = {0, 0}, limit = {60, 0};
	char addr[64], err[256], *r;
	int port = free_port();
	long before;

	snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
	if (metrics_start(base, addr, err, sizeof err) != 0)
		fail_msg("metrics_start %s: %s", addr, err);
	free(fetch(base, port, "/healthz")); /* warm up: evhttp's first allocations */
	before = rss_kib();
	if ((w.pid = fork()) == 0)
		endless_header_child(port);
	w.tick = evtimer_new(base, waitchild_cb, &w);
	evtimer_add(w.tick, &tv);
	event_base_loopexit(base, &limit);
	event_base_dispatch(base);
	if (w.pid != 0) {
		kill(w.pid, SIGKILL);
		waitpid(w.pid, NULL, 0);
		fail_msg("the endless header was still being read after 60 s");
	}
	event_free(w.tick);
	assert_true(WIFEXITED(w.status));
	assert_int_equal(WEXITSTATUS(w.status), 0); /* the server closed the connection */
	if (rss_kib() - before > 8192)
		fail_msg("RSS grew from %ld to %ld KiB", before, rss_kib());
	r = fetch(base, port, "/healthz"); /* and still serves */
	assert_non_null(strstr(r, " 200 "));
	free(r);
	metrics_stop();
	event_base_free(base);
}

/* 16 connections are served at once; the 17th is closed unanswered until one goes */
static void test_connection_bound(void **state)
{
	struct event_base *base = event_base_new();
	char addr[64], err[256], *r = NULL;
	int port = free_port(), idle[16], i;

	snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
	if (metrics_start(base, addr, err, sizeof err) != 0)
		fail_msg("metrics_start %s: %s", addr, err);
	for (i = 0; i < 16; i++)
		idle[i] = tcp_connect(port); /* accepted in order, before the fetch below */
	r = fetch(base, port, "/healthz");
	assert_string_equal(r, ""); /* closed without an answer */
	free(r);
	close(idle[0]);
	for (i = 0; i < 100; i++) { /* until the server has seen idle[0] go */
		r = fetch(base, port, "/healthz");
		if (*r != '\0')
			break;
		free(r);
		r = NULL;
	}
	assert_non_null(r);
	assert_non_null(strstr(r, " 200 "));
	free(r);
	for (i = 1; i < 16; i++)
		close(idle[i]);
	metrics_stop();
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_empty, reset),
	    cmocka_unit_test_teardown(test_counter_gauge, reset),
	    cmocka_unit_test_teardown(test_families_sorted, reset),
	    cmocka_unit_test_teardown(test_values, reset),
	    cmocka_unit_test_teardown(test_help_escaped, reset),
	    cmocka_unit_test_teardown(test_labels_helper, reset),
	    cmocka_unit_test_teardown(test_histogram, reset),
	    cmocka_unit_test_teardown(test_histogram_bad_bounds, reset),
	    cmocka_unit_test_teardown(test_histogram_escaped_labels, reset),
	    cmocka_unit_test_teardown(test_std_process, reset),
	    cmocka_unit_test_teardown(test_std_workqueue, reset),
	    cmocka_unit_test_teardown(test_bad_addr, reset),
	    cmocka_unit_test_teardown(test_http, reset),
	    cmocka_unit_test_teardown(test_endless_header, reset),
	    cmocka_unit_test_teardown(test_connection_bound, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

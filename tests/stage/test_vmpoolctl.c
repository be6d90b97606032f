/*
 * test_vmpoolctl.c: black-box test of vmpoolctl. Plays a fake watcher and a fake planner
 * (pub_new on a private run directory) and checks `tap` JSON lines, a `record` + `dump`
 * round trip, and that `dump` of a truncated or corrupt file fails cleanly with the offset.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "codec.h"
#include "link.h"
#include "log.h"
#include "proto.h"
#include "xmalloc.h"

static int tv_pass, tv_fail;
static char tv_dir[] = "/tmp/test_vmpoolctl.XXXXXX";
static char tv_ctl[4096];
static struct event_base *tv_base;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (cond) {                                                                        \
			tv_pass++;                                                                 \
		} else {                                                                           \
			tv_fail++;                                                                 \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                       \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
		}                                                                                  \
	} while (0)

/* ---- fake publishers ---- */

static json_object *tv_vm(const char *name)
{
	char buf[512];

	snprintf(buf, sizeof(buf),
	    "{\"kind\":\"vm\",\"obj\":{\"apiVersion\":\"kubevirt.io/v1\","
	    "\"kind\":\"VirtualMachine\",\"metadata\":{\"namespace\":\"ns\",\"name\":\"%s\","
	    "\"uid\":\"u-%s\",\"labels\":{\"a/b\":\"x\\\"y\"}},\"spec\":{\"running\":true}}}",
	    name, name);
	return json_tokener_parse(buf);
}

static void tv_watcher_snapshot(struct link *l, void *arg)
{
	json_object *o;

	link_send(l, MSG_SYNC_BEGIN, NULL);
	o = tv_vm("vm-0");
	link_send(l, MSG_OBJ_SET, o);
	json_object_put(o);
	o = tv_vm("vm-1");
	link_send(l, MSG_OBJ_SET, o);
	json_object_put(o);
	link_send(l, MSG_SYNC_END, NULL);
	o = json_tokener_parse(
	    "{\"kind\":\"vm\",\"namespace\":\"ns\",\"name\":\"vm-1\",\"uid\":\"u-vm-1\"}");
	link_send(l, MSG_OBJ_DELETE, o);
	json_object_put(o);
}

static void tv_planner_snapshot(struct link *l, void *arg)
{
	json_object *o;

	link_send(l, MSG_PSYNC_BEGIN, NULL);
	o = json_tokener_parse("{\"namespace\":\"ns\",\"name\":\"pool\",\"uid\":\"u1\","
	                       "\"ok\":false,\"reason\":\"FailedScaleOut\",\"message\":\"boom\"}");
	link_send(l, MSG_POOL_RESULT, o);
	json_object_put(o);
	link_send(l, MSG_PSYNC_END, NULL);
}

/* ---- running vmpoolctl while our loop serves the fake publishers ---- */

struct tv_run {
	pid_t pid;
	int status;
	int done;
};

static void tv_poll(evutil_socket_t fd, short what, void *arg)
{
	struct tv_run *r = arg;

	if (waitpid(r->pid, &r->status, WNOHANG) == r->pid) {
		r->done = 1;
		event_base_loopexit(tv_base, NULL);
	}
}

/* runs vmpoolctl with argv (NULL-terminated, without argv[0]); stdout and stderr go to
 * the files given (NULL: /dev/null); returns the exit status or -1 */
static int tv_ctl_run(char *const args[], const char *out, const char *err)
{
	struct timeval tick = {0, 20000}, limit = {20, 0};
	struct tv_run r = {0, 0, 0};
	struct event *ev;
	char *argv[32];
	int i, fd;

	argv[0] = tv_ctl;
	for (i = 0; args[i] != NULL && i < 30; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	r.pid = fork();
	if (r.pid == 0) {
		fd = open(out != NULL ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 1);
		fd = open(err != NULL ? err : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	ev = event_new(tv_base, -1, EV_PERSIST, tv_poll, &r);
	event_add(ev, &tick);
	event_base_loopexit(tv_base, &limit);
	event_base_dispatch(tv_base);
	event_free(ev);
	if (!r.done) {
		kill(r.pid, SIGKILL);
		waitpid(r.pid, &r.status, 0);
		return -1;
	}
	return WIFEXITED(r.status) ? WEXITSTATUS(r.status) : 128 + WTERMSIG(r.status);
}

/* reads a file of JSON lines into an array (NULL on a line that is not JSON) */
static json_object *tv_lines(const char *path)
{
	json_object *arr = json_object_new_array(), *o;
	char line[65536];
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return arr;
	while (fgets(line, sizeof(line), f) != NULL) {
		o = json_tokener_parse(line);
		json_object_array_add(arr, o);
	}
	fclose(f);
	return arr;
}

static const char *tv_field(json_object *arr, size_t i, const char *key)
{
	json_object *o = json_object_array_get_idx(arr, i), *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v))
		return "";
	return json_object_get_string(v);
}

static char *tv_path(const char *name)
{
	char *p;

	xasprintf(&p, "%s/%s", tv_dir, name);
	return p;
}

static int tv_contains(const char *path, const char *needle)
{
	char buf[8192];
	size_t n;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return strstr(buf, needle) != NULL;
}

static void tv_test_tap(void)
{
	char *out = tv_path("tap.out"), *out2 = tv_path("tap2.out");
	char *args[] = {
	    "--run-dir", tv_dir, "tap", "watcher", "--count", "5", "--timeout", "10", NULL};
	char *pargs[] = {
	    "--run-dir", tv_dir, "tap", "planner", "--count", "3", "--timeout", "10", NULL};
	json_object *l, *body;
	const char *want[] = {"SYNC_BEGIN", "OBJ_SET", "OBJ_SET", "SYNC_END", "OBJ_DELETE"};
	size_t i;
	int rc;

	rc = tv_ctl_run(args, out, NULL);
	CHECK(rc == 0, "tap watcher exit %d", rc);
	l = tv_lines(out);
	CHECK(
	    json_object_array_length(l) == 5, "tap printed %zu lines", json_object_array_length(l));
	for (i = 0; i < 5 && i < json_object_array_length(l); i++) {
		CHECK(strcmp(tv_field(l, i, "type"), want[i]) == 0, "line %zu type %s", i,
		    tv_field(l, i, "type"));
		CHECK(atoi(tv_field(l, i, "seq")) == (int)i + 1, "line %zu seq %s", i,
		    tv_field(l, i, "seq"));
	}
	body = json_object_object_get(json_object_array_get_idx(l, 1), "body");
	CHECK(body != NULL && strcmp(json_object_get_string(json_object_object_get(
	                                 json_object_object_get(
	                                     json_object_object_get(
	                                         json_object_object_get(body, "obj"), "metadata"),
	                                     "labels"),
	                                 "a/b")),
	                          "x\"y") == 0,
	    "OBJ_SET body did not survive: %s", json_object_to_json_string(body));
	CHECK(tv_contains(out, "{\"type\":\"OBJ_SET\",\"seq\":2,\"body\":{\"kind\":\"vm\""),
	    "tap output is not plain JSON lines");
	json_object_put(l);

	rc = tv_ctl_run(pargs, out2, NULL);
	CHECK(rc == 0, "tap planner exit %d", rc);
	l = tv_lines(out2);
	CHECK(
	    json_object_array_length(l) == 3 && strcmp(tv_field(l, 1, "type"), "POOL_RESULT") == 0,
	    "tap planner output wrong");
	json_object_put(l);
	free(out);
	free(out2);
}

static void tv_test_timeout(void)
{
	char *args[] = {
	    "--run-dir", tv_dir, "tap", "watcher", "--count", "50", "--timeout", "0.5", NULL};
	int rc = tv_ctl_run(args, NULL, NULL);

	CHECK(rc == 1, "tap with an unreached --count should time out with 1, got %d", rc);
}

/* writes the first len bytes of src to dst */
static void tv_copy(const char *src, const char *dst, long cut, int corrupt_at)
{
	struct buf b = {NULL, 0, 0};
	unsigned char chunk[4096];
	size_t n;
	FILE *f = fopen(src, "rb"), *g;

	if (f == NULL)
		return;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(&b, chunk, n);
	fclose(f);
	if (corrupt_at >= 0 && (size_t)corrupt_at < b.len)
		b.data[corrupt_at] = 0xc1; /* never valid msgpack */
	g = fopen(dst, "wb");
	fwrite(b.data, 1, b.len - (size_t)cut, g);
	fclose(g);
	buf_clear(&b);
}

static void tv_test_record_dump(void)
{
	char *rec = tv_path("rec.bin"), *out = tv_path("dump.out"), *err = tv_path("dump.err");
	char *trunc = tv_path("trunc.bin"), *bad = tv_path("bad.bin");
	char *args[] = {
	    "--run-dir", tv_dir, "record", "watcher", rec, "--count", "5", "--timeout", "10", NULL};
	char *dargs[] = {"dump", rec, NULL};
	char *targs[] = {"dump", trunc, NULL};
	char *bargs[] = {"dump", bad, NULL};
	json_object *l;
	int rc;

	rc = tv_ctl_run(args, NULL, NULL);
	CHECK(rc == 0, "record exit %d", rc);
	rc = tv_ctl_run(dargs, out, NULL);
	CHECK(rc == 0, "dump exit %d", rc);
	l = tv_lines(out);
	CHECK(json_object_array_length(l) == 6, "dump printed %zu lines (want HELLO + 5)",
	    json_object_array_length(l));
	CHECK(
	    strcmp(tv_field(l, 0, "type"), "HELLO") == 0, "first frame %s", tv_field(l, 0, "type"));
	CHECK(tv_contains(out, "\"link\":\"watcher\""), "HELLO does not name the source");
	CHECK(strcmp(tv_field(l, 2, "type"), "OBJ_SET") == 0 &&
	          strcmp(tv_field(l, 5, "type"), "OBJ_DELETE") == 0,
	    "recorded frames out of order");
	CHECK(tv_contains(out, "\"name\":\"vm-1\""), "recorded body lost");
	json_object_put(l);

	tv_copy(rec, trunc, 3, -1);
	rc = tv_ctl_run(targs, out, err);
	CHECK(rc == 1, "dump of a truncated file exit %d", rc);
	CHECK(tv_contains(err, "offset"), "truncation error does not give the offset");
	l = tv_lines(out);
	CHECK(json_object_array_length(l) == 5, "frames before the truncation: %zu",
	    json_object_array_length(l));
	json_object_put(l);

	tv_copy(rec, bad, 0, 4); /* first byte of the first msgpack value */
	rc = tv_ctl_run(bargs, out, err);
	CHECK(rc == 1, "dump of a corrupt file exit %d", rc);
	CHECK(tv_contains(err, "offset 0"), "corrupt error does not give offset 0");
	free(rec);
	free(out);
	free(err);
	free(trunc);
	free(bad);
}

static void tv_test_usage(void)
{
	char *a1[] = {"tap", "nobody", NULL};
	char *a2[] = {"frobnicate", NULL};
	char *a3[] = {"tap", "watcher", "--count", "x", NULL};
	char *a4[] = {"dump", "/nonexistent/file", NULL};

	CHECK(tv_ctl_run(a1, NULL, NULL) == 2, "bad source should exit 2");
	CHECK(tv_ctl_run(a2, NULL, NULL) == 2, "bad command should exit 2");
	CHECK(tv_ctl_run(a3, NULL, NULL) == 2, "bad --count should exit 2");
	CHECK(tv_ctl_run(a4, NULL, NULL) == 1, "missing dump file should exit 1");
}

static const int tv_watcher_types[] = {0};

int main(void)
{
	struct link_spec wspec = {LINK_WATCHER, tv_watcher_types, 0};
	struct link_spec pspec = {LINK_PLANNER, tv_watcher_types, 0};
	const char *bin = getenv("VMPOOL_BIN");
	struct pub *pw, *pp;
	char *wpath, *ppath, cmd[8192];

	log_init("test_vmpoolctl", 0, LOG_FMT_TEXT);
	signal(SIGPIPE, SIG_IGN);
	if (mkdtemp(tv_dir) == NULL)
		fatal("mkdtemp");
	snprintf(tv_ctl, sizeof(tv_ctl), "%s/vmpoolctl", bin != NULL ? bin : "bin-asan");
	tv_base = event_base_new();
	wpath = link_sock_path(tv_dir, LINK_WATCHER);
	ppath = link_sock_path(tv_dir, LINK_PLANNER);
	pw = pub_new(tv_base, wpath, &wspec, tv_watcher_snapshot, NULL);
	pp = pub_new(tv_base, ppath, &pspec, tv_planner_snapshot, NULL);
	if (pw == NULL || pp == NULL)
		fatalx("cannot listen in %s", tv_dir);
	pub_set_ready(pw, 1);
	pub_set_ready(pp, 1);

	tv_test_tap();
	tv_test_record_dump();
	tv_test_timeout();
	tv_test_usage();

	pub_free(pw);
	pub_free(pp);
	event_base_free(tv_base);
	free(wpath);
	free(ppath);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tv_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tv_dir);
	printf("test_vmpoolctl: %d passed, %d failed\n", tv_pass, tv_fail);
	return tv_fail == 0 ? 0 : 1;
}

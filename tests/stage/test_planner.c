/*
 * test_planner.c: vmpool-planner as a black box between a fake watcher (a pub on
 * watcher.sock), a fake actuator (a link server on actuator.sock) and a subscriber on
 * planner.sock, all in a private run directory. Also a replay with --events / --actions -.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../planner/planner.h" /* CREATES_OUT_MAX */
#include "../../planner/policy.h"
#include "codec.h"
#include "lease.h"
#include "link.h"
#include "log.h"
#include "obj.h"
#include "proto.h"
#include "timeutil.h"
#include "xmalloc.h"

#define NS   "t"
#define PUID "pool-uid-1"

struct ctx {
	struct event_base *base;
	char dir[64];
	char *wpath, *apath, *ppath;
	struct pub *watcher;
	json_object *objs; /* [{kind, obj}] the watcher's picture */
	struct link_server *act;
	struct link *act_link;
	int answer;           /* 0: hold ACTIONs, 1: answer ok, 2: answer failed */
	json_object *actions; /* every ACTION received */
	struct link *sub;
	json_object *results; /* latest POOL_RESULT per "ns/name" */
	pid_t pid;
	int pass, fail;
};

static struct ctx C;

static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s: ", ok ? "ok  " : "FAIL");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	if (ok)
		C.pass++;
	else
		C.fail++;
}

static json_object *parse(const char *fmt, ...)
{
	char buf[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return json_tokener_parse(buf);
}

static json_object *mkpool(
    const char *name, const char *uid, int replicas, const char *fins, const char *tlabel)
{
	return parse("{\"apiVersion\":\"pool.kubevirt.io/v1beta1\",\"kind\":\"VirtualMachinePool\","
	             "\"metadata\":{\"name\":\"%s\",\"namespace\":\"" NS "\",\"uid\":\"%s\","
	             "\"resourceVersion\":\"%d\",\"generation\":1%s},"
	             "\"spec\":{\"replicas\":%d,\"selector\":{\"matchLabels\":{\"app\":\"a\"}},"
	             "\"virtualMachineTemplate\":{\"metadata\":{\"labels\":{\"app\":\"%s\"}},"
	             "\"spec\":{\"template\":{\"spec\":{\"domain\":{}}}}}}}",
	    name, uid, 100 + replicas, fins, replicas, tlabel);
}

static json_object *mkvm(const char *name, int owned)
{
	return parse("{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\","
	             "\"metadata\":{\"name\":\"%s\",\"namespace\":\"" NS "\",\"uid\":\"uid-%s\","
	             "\"resourceVersion\":\"7\",\"labels\":{\"app\":\"a\",\"" REVISION_LABEL
	             "\":\"p-1\"}%s%s%s}}",
	    name, name, owned ? ",\"finalizers\":[\"pool.kubevirt.io/finalizer\"]," : "",
	    owned ? "\"ownerReferences\":[{\"apiVersion\":\"pool.kubevirt.io/v1beta1\","
	            "\"kind\":\"VirtualMachinePool\",\"name\":\"p\",\"controller\":true,"
	            "\"uid\":\""
	          : "",
	    owned ? PUID "\"}]" : "");
}

/* ---- fake watcher ---- */

static json_object *setbody(const char *kind, json_object *obj)
{
	json_object *b = json_object_new_object();

	json_object_object_add(b, "kind", json_object_new_string(kind));
	json_object_object_add(b, "obj", obj);
	return b;
}

static void watcher_snapshot(struct link *l, void *arg)
{
	json_object *e = json_object_new_object();
	size_t i;

	link_send(l, MSG_SYNC_BEGIN, e);
	for (i = 0; i < json_object_array_length(C.objs); i++)
		link_send(l, MSG_OBJ_SET, json_object_array_get_idx(C.objs, i));
	link_send(l, MSG_SYNC_END, e);
	json_object_put(e);
}

static void watcher_start(void)
{
	static const int accept_none[] = {0};
	static const struct link_spec spec = {LINK_WATCHER, accept_none, 0};

	C.watcher = pub_new(C.base, C.wpath, &spec, watcher_snapshot, NULL);
	if (C.watcher == NULL) {
		fprintf(stderr, "cannot listen on %s\n", C.wpath);
		exit(1);
	}
	pub_set_ready(C.watcher, 1);
}

/* adds or replaces an object in the picture and sends it; takes obj */
static void wset(const char *kind, json_object *obj)
{
	json_object *b = setbody(kind, obj), *e;
	size_t i;

	for (i = 0; i < json_object_array_length(C.objs); i++) {
		e = json_object_array_get_idx(C.objs, i);
		if (strcmp(obj_str(e, "kind"), kind) == 0 &&
		    strcmp(obj_str(e, "obj.metadata.name"), obj_name(obj)) == 0) {
			json_object_array_put_idx(C.objs, i, json_object_get(b));
			break;
		}
	}
	if (i == json_object_array_length(C.objs))
		json_object_array_add(C.objs, json_object_get(b));
	pub_broadcast(C.watcher, MSG_OBJ_SET, b);
	json_object_put(b);
}

/* the pool's revision as the watcher shows it once created (the tests' pools stay at
 * generation 1); takes pool */
static json_object *mkrev(json_object *pool)
{
	json_object *rev = revision_build(pool);
	char uid[128];

	snprintf(uid, sizeof(uid), "rev-%s", obj_uid(pool));
	json_object_object_add(obj_path(rev, "metadata"), "uid", json_object_new_string(uid));
	return rev;
}

/* a pool and its current revision */
static void wpool(json_object *pool)
{
	wset("rev", mkrev(pool));
	wset("pool", pool);
}

/* ---- fake actuator ---- */

/* ok: 1 done, 0 failed, -1 unknown (the answer was lost) */
static void act_reply_as(struct link *l, json_object *action, int ok)
{
	json_object *r = json_object_new_object();
	long long id = 0;

	obj_int(action, "id", &id);
	json_object_object_add(r, "id", json_object_new_int64(id));
	json_object_object_add(r, "ok", json_object_new_boolean(ok == 1));
	if (ok == -1)
		json_object_object_add(r, "unknown", json_object_new_boolean(1));
	json_object_object_add(r, "status", json_object_new_int(ok == 1 ? 201 : ok ? 0 : 500));
	json_object_object_add(r, "reason",
	    json_object_new_string(ok == 1 ? ""
	                           : ok    ? ""
	                                   : "InternalError"));
	json_object_object_add(r, "message",
	    json_object_new_string(ok == 1 ? ""
	                           : ok    ? "connection reset by peer"
	                                   : "boom"));
	link_send(l, MSG_RESULT, r);
	json_object_put(r);
}

static void act_reply(struct link *l, json_object *action)
{
	act_reply_as(l, action, 1);
}

/* a standby actuator's answer: nothing done */
static void act_refuse(struct link *l, json_object *action)
{
	long long id = 0;
	json_object *r;

	obj_int(action, "id", &id);
	r = parse("{\"id\":%lld,\"ok\":false,\"status\":0,\"reason\":\"" REASON_NOT_LEADER
	          "\",\"message\":\"this vmpoold instance does not lead\"}",
	    id);
	link_send(l, MSG_RESULT, r);
	json_object_put(r);
}

static void act_up(struct link *l, void *arg)
{
	C.act_link = l;
}

static void act_frame(struct link *l, int type, json_object *body, void *arg)
{
	json_object_array_add(C.actions, obj_copy(body));
	/* C.answer: 0 none, 1 done, 2 failed, 3 unknown, 4 refused by a standby (NotLeader) */
	if (C.answer == 4)
		act_refuse(l, body);
	else if (C.answer)
		act_reply_as(l, body, C.answer == 1 ? 1 : C.answer == 2 ? 0 : -1);
}

static void act_down(struct link *l, void *arg)
{
	if (C.act_link == l)
		C.act_link = NULL;
}

static void actuator_start(void)
{
	static const int accept[] = {MSG_ACTION, 0};
	static const struct link_spec spec = {LINK_ACTUATOR, accept, 0};
	static const struct link_cb cb = {act_up, act_frame, act_down};

	if ((C.act = link_listen(C.base, C.apath, &spec, &cb, NULL)) == NULL) {
		fprintf(stderr, "cannot listen on %s\n", C.apath);
		exit(1);
	}
}

/* ---- planner.sock subscriber ---- */

static void sub_frame(struct link *l, int type, json_object *body, void *arg)
{
	char key[256];

	if (type != MSG_POOL_RESULT)
		return;
	snprintf(key, sizeof(key), "%s/%s", obj_str(body, "namespace"), obj_str(body, "name"));
	json_object_object_add(C.results, key, obj_copy(body));
}

static void sub_start(void)
{
	static const int accept[] = {
	    MSG_PSYNC_BEGIN, MSG_PSYNC_END, MSG_POOL_RESULT, MSG_POOL_FORGET, 0};
	static const struct link_spec spec = {LINK_PLANNER, accept, 0};
	static const struct link_cb cb = {NULL, sub_frame, NULL};

	C.sub = link_connect(C.base, C.ppath, &spec, &cb, NULL);
}

/* ---- driving the loop ---- */

static void tick(evutil_socket_t fd, short ev, void *arg)
{
}

/* runs the loop until pred() holds or ms pass; returns pred() */
static int run_until(int (*pred)(void *), void *arg, int ms)
{
	double end = now_mono() + ms / 1000.0;

	while (now_mono() < end) {
		if (pred != NULL && pred(arg))
			return 1;
		event_base_loop(C.base, EVLOOP_ONCE);
	}
	return pred != NULL && pred(arg);
}

static void settle(int ms)
{
	run_until(NULL, NULL, ms);
}

static size_t nactions(void)
{
	return json_object_array_length(C.actions);
}

static int have_actions(void *arg)
{
	return nactions() >= *(size_t *)arg;
}

static int wait_actions(size_t n, int ms)
{
	return run_until(have_actions, &n, ms);
}

/* "op:name,op:name" of actions [from, nactions()) sorted by name */
static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *action_list(size_t from)
{
	char *v[64], *out = xstrdup("");
	size_t n = 0, i;
	json_object *a;

	for (i = from; i < nactions() && n < 64; i++) {
		a = json_object_array_get_idx(C.actions, i);
		xasprintf(&v[n++], "%s:%s", obj_str(a, "op"), obj_str(a, "name"));
	}
	qsort(v, n, sizeof(*v), cmp_str);
	for (i = 0; i < n; i++) {
		char *t;

		xasprintf(&t, "%s%s%s", out, i ? "," : "", v[i]);
		free(out);
		free(v[i]);
		out = t;
	}
	return out;
}

static void check_actions(size_t from, const char *want, const char *what)
{
	char *got = action_list(from);

	check(strcmp(got, want) == 0, "%s: actions [%s] (want [%s])", what, got, want);
	free(got);
}

static int result_is(void *arg)
{
	json_object *r;

	if (!json_object_object_get_ex(C.results, (const char *)arg, &r))
		return 0;
	return obj_bool(r, "ok");
}

/* ---- the planner process ---- */

static pid_t spawn(char *const argv[], const char *out)
{
	char log[128];
	pid_t pid;
	int fd;

	snprintf(log, sizeof(log), "%s/planner.log", C.dir);
	if ((pid = fork()) == -1) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		dup2(fd, 2);
		if (out != NULL) {
			fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
			dup2(fd, 1);
		}
		execv(argv[0], argv);
		perror(argv[0]);
		_exit(127);
	}
	return pid;
}

static char *bin(void)
{
	static char path[512];
	const char *dir = getenv("VMPOOL_BIN");

	snprintf(path, sizeof(path), "%s/vmpool-planner", dir != NULL ? dir : "bin-asan");
	return path;
}

static void planner_start(void)
{
	char *argv[] = {bin(), "--run-dir", C.dir, "-v", "-v", NULL};

	C.pid = spawn(argv, NULL);
}

/* waits up to ms for the child; returns its wait status or -1 */
static int reap(pid_t pid, int ms)
{
	double end = now_mono() + ms / 1000.0;
	int st;

	while (now_mono() < end) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return st;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

static int planner_alive(void)
{
	int st;

	return C.pid > 0 && waitpid(C.pid, &st, WNOHANG) == 0;
}

/* ---- a raw peer that speaks HELLO and then garbage ---- */

static int raw_listen(const char *path)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 || listen(fd, 4) == -1) {
		perror(path);
		exit(1);
	}
	return fd;
}

static int raw_accept(int lfd, int ms)
{
	struct pollfd pfd = {lfd, POLLIN, 0};

	if (poll(&pfd, 1, ms) != 1)
		return -1;
	return accept(lfd, NULL, NULL);
}

/* HELLO, then a frame whose body is not msgpack; 1 if the peer then closed */
static int raw_garbage(int fd, const char *linkname)
{
	static const unsigned char junk[] = {0, 0, 0, 6, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1};
	struct buf b = {0};
	json_object *h = json_object_new_object();
	struct pollfd pfd = {fd, POLLIN, 0};
	char tmp[4096];
	double end = now_mono() + 5;
	ssize_t n;

	json_object_object_add(h, "version", json_object_new_int(PROTO_VERSION));
	json_object_object_add(h, "program", json_object_new_string("fake"));
	json_object_object_add(h, "pid", json_object_new_int(getpid()));
	json_object_object_add(h, "link", json_object_new_string(linkname));
	codec_pack(&b, MSG_HELLO, 0, h);
	buf_add(&b, junk, sizeof(junk));
	json_object_put(h);
	n = write(fd, b.data, b.len);
	buf_clear(&b);
	if (n <= 0)
		return 0;
	while (now_mono() < end) {
		if (poll(&pfd, 1, 100) == 1) {
			n = read(fd, tmp, sizeof(tmp));
			if (n == 0 || (n == -1 && errno == ECONNRESET))
				return 1;
		}
	}
	return 0;
}

/* the planner meets a garbage-speaking peer at path, survives and comes back */
static void malformed(const char *path, const char *linkname)
{
	int lfd = raw_listen(path), fd, fd2;

	fd = raw_accept(lfd, 5000);
	check(fd >= 0, "%s: planner connected to the raw peer", linkname);
	check(
	    fd >= 0 && raw_garbage(fd, linkname), "%s: planner closed on the bad frame", linkname);
	fd2 = raw_accept(lfd, 5000);
	check(fd2 >= 0, "%s: planner reconnected", linkname);
	check(planner_alive(), "%s: planner survived", linkname);
	if (fd >= 0)
		close(fd);
	if (fd2 >= 0)
		close(fd2);
	close(lfd);
	unlink(path);
}

/* ---- scenarios ---- */

static void answer_from(size_t from)
{
	size_t i;

	for (i = from; i < nactions(); i++)
		if (C.act_link != NULL)
			act_reply(C.act_link, json_object_array_get_idx(C.actions, i));
}

static void scenario_scale_out(void)
{
	json_object *a;

	wpool(mkpool("p", PUID, 3, ",\"finalizers\":[\"pool.kubevirt.io/finalizer\"]", "a"));
	planner_start();
	sub_start();
	check(wait_actions(1, 15000), "snapshot with a 3-replica pool: slow start sends 1 create");
	settle(300);
	check_actions(0, "create_vm:p-0", "scale out starts with one create");
	a = json_object_array_get_idx(C.actions, 0);
	check(a != NULL && obj_str(a, "body.metadata.ownerReferences.0.uid") != NULL &&
	          strcmp(obj_str(a, "body.metadata.ownerReferences.0.uid"), PUID) == 0,
	    "create body owned by the pool");
	answer_from(0);
	check(wait_actions(3, 5000),
	    "p-0 answered: the window doubles to 2, without waiting for the watcher");
	settle(300);
	check_actions(1, "create_vm:p-1,create_vm:p-2", "scale out goes on with two creates");
	wset("vm", mkvm("p-0", 1));
}

static long long action_id(size_t i)
{
	long long id = -1;

	obj_int(json_object_array_get_idx(C.actions, i), "id", &id);
	return id;
}

/* the link drops before the RESULTs of p-1 and p-2: their outcome is unknown, so the very
 * same actions are sent again (a repeated create is AlreadyExists), and nothing else */
static void scenario_actuator_drop(void)
{
	size_t before = nactions();

	link_close(C.act_link, "test: drop");
	check(wait_actions(before + 2, 10000), "actuator dropped: unanswered creates sent again");
	settle(500);
	check_actions(before, "create_vm:p-1,create_vm:p-2", "sent again with the same names");
	check(action_id(before) == action_id(before - 2) &&
	          action_id(before + 1) == action_id(before - 1),
	    "sent again as the same actions (ids %lld %lld)", action_id(before),
	    action_id(before + 1));
}

static void scenario_settle(void)
{
	size_t before = nactions();

	answer_from(before - 2);
	C.answer = 1;
	wset("vm", mkvm("p-1", 1));
	wset("vm", mkvm("p-2", 1));
	settle(800);
	check_actions(before, "", "answered and observed: no more actions");
	check(run_until(result_is, NS "/p", 3000), "planner.sock: t/p ok");
}

static int act_linked(void *arg)
{
	return C.act_link != NULL;
}

/* 1 if the planner's log holds s */
static int planner_log_has(const char *s)
{
	char path[128];
	struct buf b = {0};
	int has;
	FILE *f;
	size_t n;
	char chunk[4096];

	snprintf(path, sizeof(path), "%s/planner.log", C.dir);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		buf_add(&b, chunk, n);
	fclose(f);
	buf_add(&b, "", 1);
	has = strstr((char *)b.data, s) != NULL;
	buf_clear(&b);
	return has;
}

static int planner_log_cond(void *arg)
{
	return planner_log_has(arg);
}

/* typed messages (common/msg.c): a RESULT or LEADER with a field missing or of the wrong
 * type is logged (message, field, peer) and dropped; the planner keeps running */
static void scenario_bad_bodies(void)
{
	size_t before = nactions();
	json_object *b;

	b = parse("{\"id\":999999,\"status\":0,\"reason\":\"\",\"message\":\"\"}");
	link_send(C.act_link, MSG_RESULT, b);
	json_object_put(b);
	b = parse("{\"leading\":1,\"holder\":\"x\"}");
	link_send(C.act_link, MSG_LEADER, b);
	json_object_put(b);
	check(run_until(planner_log_cond, "RESULT: ok missing from ", 5000),
	    "a RESULT without ok is logged with the message, the field and the peer");
	check(run_until(planner_log_cond, "LEADER: leading is not a boolean from ", 5000),
	    "a LEADER with a number for leading is logged");
	settle(200);
	check(planner_alive(), "the planner keeps running");
	check(nactions() == before, "nothing acted on (%zu new actions)", nactions() - before);
}

static void scenario_malformed(void)
{
	size_t before = nactions();

	pub_free(C.watcher);
	C.watcher = NULL;
	settle(200); /* lets libevent really close the connection */
	malformed(C.wpath, LINK_WATCHER);
	watcher_start();
	link_server_free(C.act);
	C.act = NULL;
	C.act_link = NULL;
	settle(200);
	malformed(C.apath, LINK_ACTUATOR);
	actuator_start();
	/* the planner's reconnect backoff grew over the refused peers (it resets only after a
	 * link stayed up a while): wait for the link, not for a fixed time */
	check(run_until(act_linked, NULL, 10000), "planner back on the fake actuator");
	settle(300);
	check(nactions() == before, "after both reconnects: no new actions (%zu new)",
	    nactions() - before);
}

static int result_failed(void *arg)
{
	json_object *r;

	if (!json_object_object_get_ex(C.results, (const char *)arg, &r))
		return 0;
	return !obj_bool(r, "ok");
}

/* ok, and a pass saw nothing left to do (its progress is none): the planner's passes are
 * paced, so a later change may otherwise be planned in the same pass */
static int result_idle(void *arg)
{
	json_object *r;
	const char *progress;

	if (!json_object_object_get_ex(C.results, (const char *)arg, &r) || !obj_bool(r, "ok"))
		return 0;
	progress = obj_str(r, "progress");
	return progress == NULL || progress[0] == '\0';
}

/* a failed create: FailedScaleOut on planner.sock, retried after the backoff */
static void scenario_failure(void)
{
	size_t before = nactions();
	json_object *r = NULL;
	double t0;

	C.answer = 2;
	wpool(mkpool("p", PUID, 4, ",\"finalizers\":[\"pool.kubevirt.io/finalizer\"]", "a"));
	check(wait_actions(before + 1, 5000), "scaled to 4: 1 action");
	check_actions(before, "create_vm:p-3", "scale to 4");
	check(run_until(result_failed, NS "/p", 3000), "planner.sock: t/p failed");
	json_object_object_get_ex(C.results, NS "/p", &r);
	check(r != NULL && strcmp(obj_str(r, "reason"), "FailedScaleOut") == 0 &&
	          strcmp(obj_str(r, "message"), "error during scale out: boom") == 0,
	    "failure reason and message");
	C.answer = 1;
	t0 = now_mono();
	check(wait_actions(before + 2, 5000), "failed create retried");
	check(now_mono() - t0 > 0.5, "retry waited for the backoff (%.2fs)", now_mono() - t0);
	check_actions(before + 1, "create_vm:p-3", "retry uses the same name");
	wset("vm", mkvm("p-3", 1));
	check(run_until(result_is, NS "/p", 3000), "planner.sock: t/p ok again");
	check(run_until(result_idle, NS "/p", 3000), "planner.sock: t/p has nothing left to do");
}

static void scenario_restart(void)
{
	size_t before = nactions();
	int st;

	C.answer = 0;
	wpool(mkpool("p", PUID, 6, ",\"finalizers\":[\"pool.kubevirt.io/finalizer\"]", "a"));
	check(wait_actions(before + 1, 5000), "scaled to 6: slow start, 1 action");
	settle(200);
	check_actions(before, "create_vm:p-4", "scale to 6");
	kill(C.pid, SIGKILL);
	reap(C.pid, 5000);
	wset("vm", mkvm("p-4", 1)); /* the actuator had made this one */
	before = nactions();
	planner_start();
	check(wait_actions(before + 1, 15000), "restarted planner: 1 action");
	settle(500);
	check_actions(before, "create_vm:p-5", "restart plans from the snapshot, no duplicate");
	kill(C.pid, SIGTERM);
	st = reap(C.pid, 5000);
	check(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM: clean exit 0");
	C.pid = -1;
}

static int count_op(size_t from, const char *op)
{
	size_t i;
	int n = 0;

	for (i = from; i < nactions(); i++)
		n += strcmp(obj_str(json_object_array_get_idx(C.actions, i), "op"), op) == 0;
	return n;
}

/* every answer is lost (RESULT unknown): no failure, nothing planned again, and no new
 * victim while the watcher's picture still shows the VMs being deleted */
static void scenario_unknown(void)
{
	size_t before = nactions();
	int st;

	C.answer = 3;
	json_object_object_del(C.results, NS "/p");
	planner_start();
	check(wait_actions(before + 1, 15000), "restarted planner: p-5 created");
	settle(1500);
	check(nactions() == before + 1 && count_op(before, "create_vm") == 1,
	    "an unknown create is not planned again (%zu actions)", nactions() - before);
	check(run_until(result_is, NS "/p", 3000), "an unknown outcome is no failure");
	wset("vm", mkvm("p-5", 1)); /* the watcher shows it was made */
	before = nactions();
	wpool(mkpool("p", PUID, 4, ",\"finalizers\":[\"pool.kubevirt.io/finalizer\"]", "a"));
	check(wait_actions(before + 2, 5000), "scaled to 4: two deletes");
	settle(1500);
	check(nactions() == before + 2 && count_op(before, "delete_vm") == 2,
	    "unknown deletes: no other victim while the picture still shows them (%zu actions)",
	    nactions() - before);
	kill(C.pid, SIGTERM);
	st = reap(C.pid, 5000);
	check(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM: clean exit 0");
	C.pid = -1;
}

static void record(struct buf *b, int type, json_object *body)
{
	codec_pack(b, type, 0, body);
	json_object_put(body);
}

/* issue 8: with --leader-elect the planner sends nothing until its actuator says it leads
 * (LEADER), plans at once when it does, and holds again when it stops */
static void fake_leader(int leading)
{
	json_object *b = parse("{\"leading\":%s,\"holder\":\"x\"}", leading ? "true" : "false");

	if (C.act_link != NULL)
		link_send(C.act_link, MSG_LEADER, b);
	json_object_put(b);
}

static int has_action(size_t from, const char *op, const char *name)
{
	size_t i;
	json_object *a;

	for (i = from; i < nactions(); i++) {
		a = json_object_array_get_idx(C.actions, i);
		if (strcmp(obj_str(a, "op"), op) == 0 && strcmp(obj_str(a, "name"), name) == 0)
			return 1;
	}
	return 0;
}

static void scenario_leader(void)
{
	char *argv[] = {bin(), "--run-dir", C.dir, "-v", "--leader-elect", NULL};
	size_t before;
	int st;

	if (planner_alive()) {
		kill(C.pid, SIGKILL);
		reap(C.pid, 5000);
	}
	C.answer = 1;
	wpool(mkpool("lq", "lq-uid", 2, ",\"finalizers\":[\"pool.kubevirt.io/finalizer\"]", "a"));
	C.act_link = NULL;
	before = nactions();
	C.pid = spawn(argv, NULL);
	check(
	    run_until(act_linked, NULL, 10000), "--leader-elect planner connects to the actuator");
	settle(1500);
	check(nactions() == before, "no action before the actuator says it leads (%zu)",
	    nactions() - before);
	fake_leader(0);
	settle(1000);
	check(nactions() == before, "no action while the actuator does not lead");
	C.answer = 0; /* lq-0's create stays unanswered */
	fake_leader(1);
	check(wait_actions(before + 1, 5000) &&
	          (settle(500), has_action(before, "create_vm", "lq-0")),
	    "plans and sends once the actuator leads");
	/* the term ends (the actuator exits); another leader makes lq-0 meanwhile: leading
	 * again, the planner plans from the picture (lq-1) and does not send lq-0 again */
	link_close(C.act_link, "test: the actuator stopped leading");
	C.act_link = NULL;
	wset("vm", parse("{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\","
	                 "\"metadata\":{\"name\":\"lq-0\",\"namespace\":\"" NS "\",\"uid\":"
	                 "\"uid-lq-0\",\"resourceVersion\":\"9\",\"labels\":{\"app\":\"a\"},"
	                 "\"finalizers\":[\"pool.kubevirt.io/finalizer\"],\"ownerReferences\":[{"
	                 "\"apiVersion\":\"pool.kubevirt.io/v1beta1\",\"kind\":"
	                 "\"VirtualMachinePool\",\"name\":\"lq\",\"controller\":true,"
	                 "\"uid\":\"lq-uid\"}]}}"));
	check(run_until(act_linked, NULL, 10000), "planner reconnects");
	before = nactions();
	settle(500);
	fake_leader(1);
	check(wait_actions(before + 1, 5000) &&
	          (settle(800), has_action(before, "create_vm", "lq-1")),
	    "a new term plans from the picture (lq-1)");
	check(!has_action(before, "create_vm", "lq-0"),
	    "the old term's unanswered create is not sent again");
	kill(C.pid, SIGTERM);
	st = reap(C.pid, 5000);
	check(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM: clean exit 0");
	C.pid = -1;
}

/* a planner without --leader-elect beside an actuator with it: a NotLeader refusal is no
 * failure; it holds every action (nothing sent again) until LEADER says the actuator leads */
static void scenario_not_leader(void)
{
	char *argv[] = {bin(), "--run-dir", C.dir, "-v", NULL};
	size_t before;
	int st;

	C.answer = 4;
	wpool(mkpool("nl", "nl-uid", 1, ",\"finalizers\":[\"pool.kubevirt.io/finalizer\"]", "a"));
	C.act_link = NULL;
	before = nactions();
	C.pid = spawn(argv, NULL);
	check(run_until(act_linked, NULL, 10000), "planner without --leader-elect connects");
	check(wait_actions(before + 1, 10000), "it sends (it takes the actuator to lead)");
	settle(1000);
	before = nactions();
	settle(1500);
	check(nactions() == before, "after NotLeader: nothing sent again, nothing retried (%zu)",
	    nactions() - before);
	C.answer = 1;
	fake_leader(1);
	check(wait_actions(before + 1, 5000) &&
	          (settle(500), has_action(before, "create_vm", "nl-0")),
	    "LEADER {leading: true}: plans and sends again");
	kill(C.pid, SIGTERM);
	st = reap(C.pid, 5000);
	check(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM: clean exit 0");
	C.pid = -1;
}

/* issue 8: a shard's planner (--pool-selector) acts on a pool only once the pool's claim
 * names its Lease, leaves a pool another shard claims alone, and lets go of a pool that
 * left its picture only once every action it sent for it is answered */
struct want_action {
	size_t from;
	const char *op, *name;
};

static int want_action_cond(void *arg)
{
	struct want_action *w = arg;

	return has_action(w->from, w->op, w->name);
}

static json_object *find_action(size_t from, const char *op, const char *name)
{
	json_object *a;
	size_t i;

	for (i = from; i < nactions(); i++) {
		a = json_object_array_get_idx(C.actions, i);
		if (strcmp(obj_str(a, "op"), op) == 0 && strcmp(obj_str(a, "name"), name) == 0)
			return a;
	}
	return NULL;
}

/* a pool of one replica whose claim is claim (NULL: none) */
static json_object *claimed_pool(const char *name, const char *uid, const char *claim)
{
	json_object *pool;
	char meta[256];

	snprintf(meta, sizeof(meta), ",\"finalizers\":[\"pool.kubevirt.io/finalizer\"]%s%s%s",
	    claim != NULL ? ",\"annotations\":{\"" SHARD_CLAIM "\":\"" : "",
	    claim != NULL ? claim : "", claim != NULL ? "\"}" : "");
	pool = mkpool(name, uid, 1, meta, "a");
	if (claim != NULL) /* the claim's patch moved the resourceVersion */
		json_object_object_add(
		    obj_path(pool, "metadata"), "resourceVersion", json_object_new_string("201"));
	return pool;
}

/* the fake watcher's OBJ_DELETE of a pool */
static void wdel_pool(const char *name, const char *uid)
{
	json_object *b, *e;
	size_t i;

	for (i = 0; i < json_object_array_length(C.objs); i++) {
		e = json_object_array_get_idx(C.objs, i);
		if (strcmp(obj_str(e, "kind"), "pool") == 0 &&
		    strcmp(obj_str(e, "obj.metadata.name"), name) == 0) {
			json_object_array_del_idx(C.objs, i, 1);
			break;
		}
	}
	b = parse("{\"kind\":\"pool\",\"namespace\":\"" NS "\",\"name\":\"%s\",\"uid\":\"%s\"}",
	    name, uid);
	pub_broadcast(C.watcher, MSG_OBJ_DELETE, b);
	json_object_put(b);
}

static void scenario_claims(void)
{
	char lease[128], sel[] = "shard=a";
	char *argv[] = {bin(), "--run-dir", C.dir, "-v", "--pool-selector", sel, NULL};
	struct want_action w;
	json_object *a;
	size_t before;
	int st;

	lease_default_name(sel, lease, sizeof(lease));
	if (planner_alive()) {
		kill(C.pid, SIGKILL);
		reap(C.pid, 5000);
	}
	C.answer = 1;
	wpool(claimed_pool("cl", "cl-uid", NULL));
	wpool(claimed_pool("cw", "cw-uid", "vmpoold-other"));
	wpool(claimed_pool("cg", "cg-uid", "default/vmpoold-gone/x"));
	C.act_link = NULL;
	before = nactions();
	C.pid = spawn(argv, NULL);
	check(run_until(act_linked, NULL, 10000), "shard planner connects to the actuator");
	w = (struct want_action){before, "patch_pool", "cl"};
	check(run_until(want_action_cond, &w, 10000), "an unclaimed pool is claimed first");
	a = find_action(before, "patch_pool", "cl");
	check(a != NULL && strcmp(obj_str(a, "patch.0.op"), "test") == 0 &&
	          strcmp(obj_str(a, "patch.0.path"), "/metadata/resourceVersion") == 0 &&
	          strcmp(obj_str(a, "patch.0.value"), "101") == 0 &&
	          strcmp(obj_str(a, "patch.1.path"), "/metadata/annotations") == 0 &&
	          json_object_object_get_ex(obj_path(a, "patch.1.value"), SHARD_CLAIM, NULL),
	    "the claim holds only on the resourceVersion seen");
	settle(800);
	check(
	    !has_action(before, "create_vm", "cl-0"), "nothing is planned before the claim shows");
	check(!has_action(before, "patch_pool", "cw") && !has_action(before, "create_vm", "cw-0"),
	    "a pool another shard claims is left alone");
	/* the fake actuator answers the read of vmpoold-gone without a holder: released */
	check(
	    has_action(before, "get_lease", "vmpoold-gone"), "the claiming shard's Lease is read");
	w = (struct want_action){before, "patch_pool", "cg"};
	run_until(want_action_cond, &w, 6000); /* the pool is looked at again within 2 s */
	a = find_action(before, "patch_pool", "cg");
	check(a != NULL && strcmp(obj_str(a, "patch.0.path"), "/metadata/resourceVersion") == 0 &&
	          strcmp(obj_str(a, "patch.1.value"), lease) == 0,
	    "a claim whose shard's Lease is released is taken over");
	C.answer = 0; /* cl-0's create stays unanswered */
	before = nactions();
	wpool(claimed_pool("cl", "cl-uid", lease));
	w = (struct want_action){before, "create_vm", "cl-0"};
	check(run_until(want_action_cond, &w, 5000), "claimed for this shard: planned (cl-0)");
	before = nactions();
	wdel_pool("cl", "cl-uid");
	settle(1500);
	check(!has_action(before, "patch_pool", "cl"),
	    "the pool left: its claim stays while cl-0 has no RESULT");
	C.answer = 1;
	if (C.act_link != NULL && (a = find_action(0, "create_vm", "cl-0")) != NULL)
		act_reply(C.act_link, a);
	w = (struct want_action){before, "patch_pool", "cl"};
	check(run_until(want_action_cond, &w, 5000), "cl-0 answered: the claim goes");
	a = find_action(before, "patch_pool", "cl");
	check(a != NULL && strcmp(obj_str(a, "patch.0.op"), "test") == 0 &&
	          strcmp(obj_str(a, "patch.0.value"), lease) == 0 &&
	          strcmp(obj_str(a, "patch.1.op"), "remove") == 0,
	    "only if it is still this shard's");
	kill(C.pid, SIGTERM);
	st = reap(C.pid, 5000);
	check(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM: clean exit 0");
	C.pid = -1;
}

/* CREATES_OUT_MAX + 8 one-VM pools and no answer: CREATES_OUT_MAX creates go, no more;
 * each answer lets the pool that waited longest have its create */
static void scenario_creates_bounded(void)
{
	char name[32], uid[32];
	size_t before = nactions(), i, first;
	int st, n;

	C.answer = 0;
	json_object_put(C.objs);
	C.objs = json_object_new_array();
	for (i = 0; i < CREATES_OUT_MAX + 8; i++) {
		snprintf(name, sizeof(name), "b%zu", i);
		snprintf(uid, sizeof(uid), "b-uid-%zu", i);
		wpool(
		    mkpool(name, uid, 1, ",\"finalizers\":[\"pool.kubevirt.io/finalizer\"]", "a"));
	}
	planner_start();
	check(wait_actions(before + CREATES_OUT_MAX, 30000), "%d pools: %d creates out",
	    CREATES_OUT_MAX + 8, CREATES_OUT_MAX);
	settle(1500);
	check(nactions() == before + CREATES_OUT_MAX &&
	          count_op(before, "create_vm") == CREATES_OUT_MAX,
	    "no more creates while %d are out (%zu actions)", CREATES_OUT_MAX, nactions() - before);
	first = nactions();
	if (C.act_link != NULL)
		act_reply(C.act_link, json_object_array_get_idx(C.actions, before));
	check(wait_actions(first + 1, 5000), "one answered: one more create");
	settle(500);
	check(nactions() == first + 1, "only one (%zu)", nactions() - first);
	for (i = 1; i < 8 && C.act_link != NULL; i++)
		act_reply(C.act_link, json_object_array_get_idx(C.actions, before + i));
	wait_actions(first + 8, 5000);
	n = count_op(before, "create_vm");
	check(n == CREATES_OUT_MAX + 8, "eight answered: every pool has its create (%d)", n);
	kill(C.pid, SIGTERM);
	st = reap(C.pid, 5000);
	check(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM: clean exit 0");
	C.pid = -1;
}

/* writes the recording b to file (and clears b), replays it with argv; its wait status */
static int replay_file(char *const argv[], const char *file, struct buf *b, const char *out)
{
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	check(
	    fd >= 0 && write(fd, b->data, b->len) == (ssize_t)b->len, "recording %s written", file);
	close(fd);
	buf_clear(b);
	return reap(spawn(argv, out), 15000);
}

/* a recording of the previous protocol version is refused (exit 78), naming both versions */
static void scenario_replay_old(char *file, const char *out)
{
	char *argv[] = {bin(), "--run-dir", C.dir, "--events", file, "--actions", "-", NULL};
	char want[128];
	struct buf b = {0};
	int st;

	record(&b, MSG_HELLO,
	    parse("{\"version\":%d,\"program\":\"w\",\"pid\":0,\"link\":\"watcher\"}",
	        PROTO_VERSION - 1));
	record(&b, MSG_SYNC_BEGIN, NULL);
	record(&b, MSG_SYNC_END, NULL);
	st = replay_file(argv, file, &b, out);
	check(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 78, "old recording: exit 78");
	snprintf(want, sizeof want, "recorded with protocol version %d, we speak version %d",
	    PROTO_VERSION - 1, PROTO_VERSION);
	check(planner_log_has(want), "old recording: the log says \"%s\"", want);
}

static void scenario_replay(void)
{
	char file[128], out[128], line[8192], *lines = xstrdup(""), *t;
	char *argv[] = {bin(), "--run-dir", C.dir, "--events", file, "--actions", "-", NULL};
	struct buf b = {0};
	json_object *pool;
	FILE *f;
	int st;

	snprintf(file, sizeof(file), "%s/rec.bin", C.dir);
	snprintf(out, sizeof(out), "%s/actions.jsonl", C.dir);
	record(&b, MSG_HELLO,
	    parse("{\"version\":%d,\"program\":\"w\",\"pid\":0,\"link\":\"watcher\"}",
	        PROTO_VERSION));
	record(&b, MSG_SYNC_BEGIN, NULL);
	pool = mkpool("r", "ru", 2, "", "a");
	record(&b, MSG_OBJ_SET, setbody("rev", mkrev(pool)));
	record(&b, MSG_OBJ_SET, setbody("pool", pool));
	record(&b, MSG_OBJ_SET, setbody("pool", mkpool("bad", "bu", 2, "", "zzz")));
	record(&b, MSG_OBJ_SET, setbody("vm", mkvm("r-1", 0)));
	record(&b, MSG_SYNC_END, NULL);
	st = replay_file(argv, file, &b, out);
	check(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "replay exits 0");
	if ((f = fopen(out, "r")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL) {
			json_object *a = json_tokener_parse(line);

			xasprintf(&t, "%s%s:%s:%s;", lines, obj_str(a, "op"), obj_str(a, "name"),
			    obj_str(a, "event.reason") ? obj_str(a, "event.reason") : "");
			free(lines);
			lines = t;
			json_object_put(a);
		}
		fclose(f);
	}
	check(strcmp(lines, "event:bad:InvalidSelector;patch_pool:r:;"
	                    "create_vm:r-0:SuccessfulCreate;create_vm:r-2:SuccessfulCreate;") == 0,
	    "replay prints [%s]", lines);
	free(lines);
	scenario_replay_old(file, out);
}

static void cleanup(void)
{
	char cmd[256];

	if (C.pid > 0) {
		kill(C.pid, SIGKILL);
		waitpid(C.pid, NULL, 0);
	}
	if (getenv("KEEP_RUN_DIR") == NULL) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", C.dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", C.dir);
	} else
		fprintf(stderr, "run dir kept: %s\n", C.dir);
}

int main(void)
{
	struct timeval tv = {0, 20000};
	struct event *t;

	signal(SIGPIPE, SIG_IGN);
	log_init("test_planner", 0, LOG_FMT_TEXT);
	snprintf(C.dir, sizeof(C.dir), "/tmp/test_planner.XXXXXX");
	if (mkdtemp(C.dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	C.pid = -1;
	C.base = event_base_new();
	C.wpath = link_sock_path(C.dir, LINK_WATCHER);
	C.apath = link_sock_path(C.dir, LINK_ACTUATOR);
	C.ppath = link_sock_path(C.dir, LINK_PLANNER);
	C.objs = json_object_new_array();
	C.actions = json_object_new_array();
	C.results = json_object_new_object();
	t = event_new(C.base, -1, EV_PERSIST, tick, NULL);
	event_add(t, &tv);
	watcher_start();
	actuator_start();

	scenario_scale_out();
	scenario_actuator_drop();
	scenario_settle();
	scenario_malformed();
	scenario_bad_bodies();
	scenario_failure();
	scenario_restart();
	scenario_unknown();
	scenario_replay();
	scenario_leader();
	scenario_not_leader();
	scenario_claims();
	scenario_creates_bounded();

	cleanup();
	link_free(C.sub);
	pub_free(C.watcher);
	link_server_free(C.act);
	event_free(t);
	event_base_free(C.base);
	json_object_put(C.objs);
	json_object_put(C.actions);
	json_object_put(C.results);
	free(C.wpath);
	free(C.apath);
	free(C.ppath);
	printf("test_planner: %d passed, %d failed\n", C.pass, C.fail);
	return C.fail == 0 ? 0 : 1;
}

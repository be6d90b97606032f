/*
 * test_link.c: links and the publisher in one event loop on a private run directory.
 * Each test drives a small script from the callbacks (step functions) and fails on a
 * timeout instead of hanging.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "codec.h"
#include "link.h"
#include "msg.h"
#include "log.h"
#include "proto.h"
#include "xmalloc.h"

enum ev {
	EV_SRV_UP,
	EV_SRV_FRAME,
	EV_SRV_DOWN,
	EV_CLI_UP,
	EV_CLI_FRAME,
	EV_CLI_DOWN,
	EV_RAW_EOF,
	EV_TIMER
};

struct t {
	struct event_base *base;
	char dir[64];
	char *path;
	struct event *timeout;
	struct event *timer; /* a step's own delay */
	int timed_out;
	int n[EV_TIMER + 1]; /* events seen, by kind */
	struct link *cli;
	struct link_server *srv;
	struct pub *pub;
	int raw_fd;
	struct event *raw_ev;
	size_t raw_bytes;
	int phase;
	pid_t child; /* a forked peer, killed by teardown even when a test fails */
	void (*step)(struct t *, enum ev, struct link *, int type, json_object *body);
};

static struct t T;

static const int accept_action[] = {MSG_ACTION, 0};
static const int accept_result[] = {MSG_RESULT, 0};
static const int accept_none[] = {0};
static const int accept_sync[] = {MSG_SYNC_BEGIN, MSG_SYNC_END, MSG_OBJ_SET, 0};
static const struct link_spec srv_spec = {LINK_ACTUATOR, accept_action, 0};
static const struct link_spec cli_spec = {LINK_ACTUATOR, accept_result, 0};
static const struct link_spec pub_spec = {LINK_WATCHER, accept_none, 0};
static const struct link_spec sub_spec = {LINK_WATCHER, accept_sync, 0};

static void t_event(struct t *t, enum ev e, struct link *l, int type, json_object *body)
{
	t->n[e]++;
	if (t->step != NULL)
		t->step(t, e, l, type, body);
}

static void srv_up(struct link *l, void *arg)
{
	t_event(arg, EV_SRV_UP, l, 0, NULL);
}

static void srv_frame(struct link *l, int type, json_object *body, void *arg)
{
	t_event(arg, EV_SRV_FRAME, l, type, body);
}

static void srv_down(struct link *l, void *arg)
{
	t_event(arg, EV_SRV_DOWN, l, 0, NULL);
}

static void cli_up(struct link *l, void *arg)
{
	t_event(arg, EV_CLI_UP, l, 0, NULL);
}

static void cli_frame(struct link *l, int type, json_object *body, void *arg)
{
	t_event(arg, EV_CLI_FRAME, l, type, body);
}

static void cli_down(struct link *l, void *arg)
{
	t_event(arg, EV_CLI_DOWN, l, 0, NULL);
}

static const struct link_cb srv_cb = {srv_up, srv_frame, srv_down};
static const struct link_cb cli_cb = {cli_up, cli_frame, cli_down};

static void t_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct t *t = arg;

	t->timed_out = 1;
	event_base_loopbreak(t->base);
}

static void t_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	t_event(arg, EV_TIMER, NULL, 0, NULL);
}

static void t_after(struct t *t, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(t->timer, &tv);
}

static int setup(void **state)
{
	memset(&T, 0, sizeof T);
	T.base = event_base_new();
	snprintf(T.dir, sizeof T.dir, "/tmp/test_link.XXXXXX");
	assert_non_null(mkdtemp(T.dir));
	T.path = link_sock_path(T.dir, "x");
	T.timeout = evtimer_new(T.base, t_timeout_cb, &T);
	T.timer = evtimer_new(T.base, t_timer_cb, &T);
	T.raw_fd = -1;
	*state = &T;
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	if (T.child > 0) {
		kill(T.child, SIGKILL);
		waitpid(T.child, NULL, 0);
	}
	link_free(T.cli);
	link_server_free(T.srv);
	pub_free(T.pub);
	if (T.raw_ev != NULL)
		event_free(T.raw_ev);
	if (T.raw_fd != -1)
		close(T.raw_fd);
	event_free(T.timeout);
	event_free(T.timer);
	event_base_free(T.base);
	free(T.path);
	snprintf(cmd, sizeof cmd, "rm -rf %s", T.dir);
	if (system(cmd) != 0)
		return -1;
	return 0;
}

static void t_run(struct t *t, int secs)
{
	struct timeval tv = {secs, 0};

	evtimer_add(t->timeout, &tv);
	event_base_dispatch(t->base);
	if (t->timed_out)
		fail_msg("timed out in phase %d", t->phase);
}

static json_object *obj_int(const char *key, int v)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, key, json_object_new_int(v));
	return o;
}

static int body_int(json_object *body, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(body, key, &v))
		return -1;
	return json_object_get_int(v);
}

static void send_int(struct link *l, int type, const char *key, int v)
{
	json_object *o = obj_int(key, v);

	assert_int_equal(link_send(l, type, o), 0);
	json_object_put(o);
}

/* raw peers ------------------------------------------------------------------------------ */

static void raw_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct t *t = arg;
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof buf);

	if (n > 0) {
		t->raw_bytes += (size_t)n;
		return;
	}
	if (n == -1 && errno == EAGAIN)
		return;
	event_del(t->raw_ev);
	t_event(t, EV_RAW_EOF, NULL, 0, NULL);
}

static void raw_connect(struct t *t)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", t->path);
	t->raw_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_not_equal(t->raw_fd, -1);
	assert_int_equal(connect(t->raw_fd, (struct sockaddr *)&sun, sizeof sun), 0);
	fcntl(t->raw_fd, F_SETFL, O_NONBLOCK);
	t->raw_ev = event_new(t->base, t->raw_fd, EV_READ | EV_PERSIST, raw_read_cb, t);
	event_add(t->raw_ev, NULL);
}

static void raw_write(struct t *t, const void *p, size_t len)
{
	assert_int_equal(write(t->raw_fd, p, len), (ssize_t)len);
}

static void raw_hello(struct t *t, int version, const char *name)
{
	struct buf b = {0};
	struct msg_hello h = {version, "rawpeer", getpid(), name, NULL};
	json_object *o = msg_hello_pack(&h);

	if (name == NULL) /* a HELLO without its link field */
		json_object_object_del(o, "link");
	codec_pack(&b, MSG_HELLO, 0, o);
	raw_write(t, b.data, b.len);
	json_object_put(o);
	buf_clear(&b);
}

/* tests ------------------------------------------------------------------------------------ */

/*
 * HELLO, an ACTION answered by a RESULT, then the server closes the link from inside its
 * frame callback and the client comes back by itself.
 */
static void step_exchange(struct t *t, enum ev e, struct link *l, int type, json_object *body)
{
	if (e == EV_CLI_UP && t->n[EV_CLI_UP] == 1) {
		assert_true(link_is_up(l));
		assert_string_equal(link_peer_program(l), "test_link");
		send_int(l, MSG_ACTION, "id", 1);
	} else if (e == EV_SRV_FRAME && body_int(body, "id") == 1) {
		assert_int_equal(type, MSG_ACTION);
		link_set_data(l, &t->phase);
		send_int(l, MSG_RESULT, "id", 11);
	} else if (e == EV_CLI_FRAME) {
		assert_int_equal(type, MSG_RESULT);
		assert_int_equal(body_int(body, "id"), 11);
		t->phase = 1;
		send_int(l, MSG_ACTION, "id", 2);
	} else if (e == EV_SRV_FRAME && body_int(body, "id") == 2) {
		assert_ptr_equal(link_get_data(l), &t->phase);
		link_close(l, "test closes it");
		link_close(l, "twice is harmless");
		assert_false(link_is_up(l));
		assert_int_equal(link_send(l, MSG_RESULT, NULL), -1);
	} else if (e == EV_CLI_UP && t->n[EV_CLI_UP] == 2)
		event_base_loopbreak(t->base);
}

static void test_exchange(void **state)
{
	struct t *t = *state;
	struct stat st;
	char *nested;

	xasprintf(&nested, "%s/run/deeper/x.sock", t->dir);
	free(t->path);
	t->path = nested;
	t->step = step_exchange;
	t->srv = link_listen(t->base, t->path, &srv_spec, &srv_cb, t);
	assert_non_null(t->srv);
	assert_int_equal(stat(t->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	*strrchr(nested, '/') = '\0';
	assert_int_equal(stat(nested, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	*strrchr(nested, '\0') = '/';
	t->cli = link_connect(t->base, t->path, &cli_spec, &cli_cb, t);
	t_run(t, 10);
	assert_int_equal(t->n[EV_SRV_UP], 2);
	assert_int_equal(t->n[EV_SRV_DOWN], 1);
	assert_int_equal(t->n[EV_CLI_DOWN], 1);
	assert_int_equal(t->n[EV_CLI_FRAME], 1);
}

/* a frame of a type the server does not accept closes the link; the client reconnects */
static void step_unexpected(struct t *t, enum ev e, struct link *l, int type, json_object *body)
{
	if (e == EV_CLI_UP && t->n[EV_CLI_UP] == 1)
		send_int(l, MSG_OBJ_SET, "n", 1);
	else if (e == EV_CLI_UP && t->n[EV_CLI_UP] == 2)
		event_base_loopbreak(t->base);
}

static void test_unexpected_type(void **state)
{
	struct t *t = *state;

	t->step = step_unexpected;
	t->srv = link_listen(t->base, t->path, &srv_spec, &srv_cb, t);
	t->cli = link_connect(t->base, t->path, &cli_spec, &cli_cb, t);
	t_run(t, 10);
	assert_int_equal(t->n[EV_SRV_FRAME], 0);
	assert_int_equal(t->n[EV_SRV_DOWN], 1);
	assert_int_equal(t->n[EV_CLI_DOWN], 1);
}

static void step_raw_closed(struct t *t, enum ev e, struct link *l, int type, json_object *body)
{
	if (e == EV_RAW_EOF)
		event_base_loopbreak(t->base);
}

/* on a new raw connection, a HELLO the server closes (the nth close seen) */
static void raw_hello_refused(struct t *t, int version, const char *name, int nth)
{
	event_free(t->raw_ev);
	close(t->raw_fd);
	raw_connect(t);
	raw_hello(t, version, name);
	t_run(t, 5);
	assert_int_equal(t->n[EV_SRV_UP], 0);
	assert_int_equal(t->n[EV_RAW_EOF], nth);
}

/* a raw HELLO with version 999 (then one for the wrong link, one of the previous version,
 * one without its link field) is answered by a close */
static void test_version_mismatch(void **state)
{
	struct t *t = *state;

	t->step = step_raw_closed;
	t->srv = link_listen(t->base, t->path, &srv_spec, &srv_cb, t);
	raw_connect(t);
	raw_hello(t, 999, LINK_ACTUATOR);
	t_run(t, 5);
	assert_true(t->raw_bytes > 4); /* the server's own HELLO */
	assert_int_equal(t->n[EV_SRV_UP], 0);
	raw_hello_refused(t, PROTO_VERSION, LINK_WATCHER, 2);
	/* the previous protocol version, and a HELLO without its link field */
	raw_hello_refused(t, PROTO_VERSION - 1, LINK_ACTUATOR, 3);
	raw_hello_refused(t, PROTO_VERSION, NULL, 4);
}

/* garbage before and after HELLO, and an oversized length prefix: closed, no crash */
static void test_garbage(void **state)
{
	struct t *t = *state;
	static const unsigned char junk[] = "\0\0\0\x08\xc1garbage";
	static const unsigned char text[] = "GET / HTTP/1.1\r\n\r\n";

	t->step = step_raw_closed;
	t->srv = link_listen(t->base, t->path, &srv_spec, &srv_cb, t);
	raw_connect(t);
	raw_write(t, junk, sizeof junk - 1);
	t_run(t, 5);
	event_free(t->raw_ev);
	close(t->raw_fd);

	raw_connect(t);
	raw_hello(t, PROTO_VERSION, LINK_ACTUATOR);
	raw_write(t, junk, sizeof junk - 1);
	t_run(t, 5);
	assert_int_equal(t->n[EV_SRV_UP], 1);
	assert_int_equal(t->n[EV_SRV_DOWN], 1);
	event_free(t->raw_ev);
	close(t->raw_fd);

	raw_connect(t);
	raw_write(t, text, sizeof text - 1); /* "GET " is a 1.1 GB length */
	t_run(t, 5);
	assert_int_equal(t->n[EV_RAW_EOF], 3);
	assert_int_equal(t->n[EV_SRV_FRAME], 0);
}

/* the 4-byte length alone is enough to refuse a frame over the server's cap */
static void test_oversized(void **state)
{
	struct t *t = *state;
	static const struct link_spec small = {LINK_ACTUATOR, accept_action, 1024};
	static const unsigned char big[] = "\0\0\x04\x01";

	t->step = step_raw_closed;
	t->srv = link_listen(t->base, t->path, &small, &srv_cb, t);
	raw_connect(t);
	raw_hello(t, PROTO_VERSION, LINK_ACTUATOR);
	raw_write(t, big, 4); /* 1025 bytes announced, none sent */
	t_run(t, 5);
	assert_int_equal(t->n[EV_SRV_UP], 1);
	assert_int_equal(t->n[EV_SRV_DOWN], 1);
}

/* pub: nothing before ready, then the snapshot, then broadcasts, then a resync */
static void pub_snapshot(struct link *l, void *arg)
{
	struct t *t = arg;

	assert_int_equal(link_send(l, MSG_SYNC_BEGIN, NULL), 0);
	send_int(l, MSG_OBJ_SET, "n", 0);
	assert_int_equal(link_send(l, MSG_SYNC_END, NULL), 0);
	t->n[EV_SRV_UP]++; /* snapshots taken */
}

static void step_pub(struct t *t, enum ev e, struct link *l, int type, json_object *body)
{
	json_object *o;

	if (e == EV_CLI_UP) {
		t_after(t, 200); /* give a wrong early snapshot time to show */
	} else if (e == EV_TIMER && t->phase == 0) {
		assert_int_equal(t->n[EV_CLI_FRAME], 0);
		assert_int_equal(pub_subscribers(t->pub), 1);
		o = obj_int("early", 1);
		pub_broadcast(t->pub, MSG_OBJ_SET, o); /* not synced yet: not sent */
		json_object_put(o);
		t->phase = 1;
		pub_set_ready(t->pub, 1);
	} else if (e == EV_CLI_FRAME && type == MSG_SYNC_END && t->phase == 1) {
		assert_int_equal(t->n[EV_CLI_FRAME], 3);
		t->phase = 2;
		o = obj_int("n", 1);
		pub_broadcast(t->pub, MSG_OBJ_SET, o);
		json_object_put(o);
	} else if (e == EV_CLI_FRAME && type == MSG_OBJ_SET && t->phase == 2) {
		assert_int_equal(body_int(body, "n"), 1);
		t->phase = 3;
		pub_resync(t->pub);
	} else if (e == EV_CLI_FRAME && type == MSG_SYNC_END && t->phase == 3)
		event_base_loopbreak(t->base);
	else if (e == EV_CLI_FRAME)
		assert_int_equal(body_int(body, "early"), -1);
}

static void test_pub(void **state)
{
	struct t *t = *state;

	t->step = step_pub;
	t->pub = pub_new(t->base, t->path, &pub_spec, pub_snapshot, t);
	assert_non_null(t->pub);
	t->cli = link_connect(t->base, t->path, &sub_spec, &cli_cb, t);
	t_run(t, 10);
	assert_int_equal(t->n[EV_SRV_UP], 2);
	assert_int_equal(t->n[EV_CLI_FRAME], 7);
}

/* a snapshot holding a frame the subscriber refuses: it drops the link at once, every time */
static void pub_poison(struct link *l, void *arg)
{
	send_int(l, MSG_RESULT, "n", 0);
}

static void step_poison(struct t *t, enum ev e, struct link *l, int type, json_object *body)
{
	if (e == EV_TIMER)
		event_base_loopbreak(t->base);
}

/* the reconnect backoff grows across handshakes that end at once (before: it was reset by
 * each handshake, about 10 reconnects a second forever) */
static void test_poison_backoff(void **state)
{
	struct t *t = *state;

	t->step = step_poison;
	t->pub = pub_new(t->base, t->path, &pub_spec, pub_poison, t);
	pub_set_ready(t->pub, 1);
	t->cli = link_connect(t->base, t->path, &sub_spec, &cli_cb, t);
	t_after(t, 2000);
	t_run(t, 10);
	/* 0.1 + 0.2 + 0.4 + 0.8 s: at most 5 handshakes in 2 s (20 with a reset each time) */
	if (t->n[EV_CLI_UP] < 3 || t->n[EV_CLI_UP] > 6)
		fail_msg("%d handshakes in 2 s", t->n[EV_CLI_UP]);
	assert_int_equal(t->n[EV_CLI_FRAME], 0);
}

/* the client starts first, the server comes, goes away and comes back */
static void step_restart(struct t *t, enum ev e, struct link *l, int type, json_object *body)
{
	if (e == EV_TIMER && t->phase == 0) {
		t->srv = link_listen(t->base, t->path, &srv_spec, &srv_cb, t);
		assert_non_null(t->srv);
		t->phase = 1;
	} else if (e == EV_CLI_UP && t->phase == 1) {
		t->phase = 2;
		t_after(t, 50);
	} else if (e == EV_TIMER && t->phase == 2) {
		link_server_free(t->srv); /* the server process dies */
		t->srv = NULL;
		t->phase = 3;
	} else if (e == EV_CLI_DOWN && t->phase == 3) {
		t->phase = 4;
		t_after(t, 300);
	} else if (e == EV_TIMER && t->phase == 4) {
		t->srv = link_listen(t->base, t->path, &srv_spec, &srv_cb, t);
		assert_non_null(t->srv);
		t->phase = 5;
	} else if (e == EV_CLI_UP && t->phase == 5)
		event_base_loopbreak(t->base);
}

static void test_restart(void **state)
{
	struct t *t = *state;

	t->step = step_restart;
	t->cli = link_connect(t->base, t->path, &cli_spec, &cli_cb, t);
	assert_false(link_is_up(t->cli));
	assert_int_equal(link_send(t->cli, MSG_ACTION, NULL), -1);
	t_after(t, 250);
	t_run(t, 10);
	assert_int_equal(t->n[EV_CLI_UP], 2);
	assert_int_equal(t->n[EV_CLI_DOWN], 1);
	assert_true(link_is_up(t->cli));
}

/* as root: a peer running as another uid is refused before any HELLO */
static void uid_child(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char buf[64];
	ssize_t n, total = 0;
	int fd;

	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	if (setgid(65534) == -1 || setuid(65534) == -1)
		_exit(2);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1)
		_exit(3);
	while ((n = read(fd, buf, sizeof buf)) > 0)
		total += n;
	_exit(total == 0 ? 0 : 1);
}

static void step_uid(struct t *t, enum ev e, struct link *l, int type, json_object *body)
{
	int status;

	if (e != EV_TIMER)
		return;
	if (waitpid(t->phase, &status, WNOHANG) == t->phase) {
		t->phase = WIFEXITED(status) ? -WEXITSTATUS(status) : -100;
		event_base_loopbreak(t->base);
	} else
		t_after(t, 20);
}

static void test_peer_uid(void **state)
{
	struct t *t = *state;
	pid_t pid;

	if (geteuid() != 0)
		skip();
	t->step = step_uid;
	t->srv = link_listen(t->base, t->path, &srv_spec, &srv_cb, t);
	assert_int_equal(chmod(t->dir, 0711), 0);
	assert_int_equal(chmod(t->path, 0666), 0); /* let uid 65534 reach our uid check */
	if ((pid = fork()) == 0)
		uid_child(t->path);
	t->phase = pid;
	t_after(t, 20);
	t_run(t, 5);
	assert_int_equal(t->phase, 0); /* the child saw EOF and no HELLO */
	assert_int_equal(t->n[EV_SRV_UP], 0);
}

/*
 * as root: a server listening as another uid (a squatter's socket in the run directory)
 * is refused by the client before any frame is taken from it, however well it speaks
 */
static void squatter_child(const char *path, const struct buf *hello, int report)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd, c;

	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	/* bound as root in our directory, listening as 65534: SO_PEERCRED names 65534 */
	if (fd == -1 || bind(fd, (struct sockaddr *)&sun, sizeof sun) == -1)
		_exit(2);
	if (setgid(65534) == -1 || setuid(65534) == -1 || listen(fd, 8) == -1)
		_exit(3);
	signal(SIGPIPE, SIG_IGN); /* the client may have hung up before we write */
	while ((c = accept(fd, NULL, NULL)) != -1) {
		if (write(c, hello->data, hello->len) == -1 && errno != EPIPE)
			_exit(4);
		if (write(report, "a", 1) != 1)
			_exit(5);
		/* the connection stays open: only the client can end it */
	}
	_exit(6);
}

static void squatter_accepted_cb(evutil_socket_t fd, short what, void *arg)
{
	struct t *t = arg;
	char c;

	if (read(fd, &c, 1) == 1 && ++t->phase >= 3)
		event_base_loopbreak(t->base); /* the client came back twice after refusing */
}

static void test_server_uid(void **state)
{
	struct t *t = *state;
	struct buf hello = {0};
	json_object *o;
	struct event *ev;
	int pfd[2];

	if (geteuid() != 0)
		skip();
	o = json_object_new_object();
	json_object_object_add(o, "version", json_object_new_int(PROTO_VERSION));
	json_object_object_add(o, "program", json_object_new_string("squatter"));
	json_object_object_add(o, "pid", json_object_new_int(1));
	json_object_object_add(o, "link", json_object_new_string(LINK_ACTUATOR));
	codec_pack(&hello, MSG_HELLO, 0, o);
	json_object_put(o);
	assert_int_equal(pipe(pfd), 0);
	if ((t->child = fork()) == 0)
		squatter_child(t->path, &hello, pfd[1]);
	close(pfd[1]);
	buf_clear(&hello);
	ev = event_new(t->base, pfd[0], EV_READ | EV_PERSIST, squatter_accepted_cb, t);
	event_add(ev, NULL);
	t->cli = link_connect(t->base, t->path, &cli_spec, &cli_cb, t);
	t_run(t, 10);
	event_free(ev);
	close(pfd[0]);
	assert_int_equal(t->n[EV_CLI_UP], 0);
	assert_int_equal(t->n[EV_CLI_FRAME], 0);
	assert_false(link_is_up(t->cli));
}

/*
 * a subscriber that stops reading is dropped once its backlog passes the cap
 * (16 x max_frame), while one that reads stays; a snapshot larger than the cap does not
 * count against it
 */
static void big_snapshot(struct link *l, void *arg)
{
	json_object *o = json_object_new_object();
	char pad[3001];
	int i;

	memset(pad, 'x', sizeof pad - 1);
	pad[sizeof pad - 1] = '\0';
	json_object_object_add(o, "pad", json_object_new_string(pad));
	for (i = 0; i < 40; i++) /* 120 KB: nearly twice the 64 KB cap */
		assert_int_equal(link_send(l, MSG_OBJ_SET, o), 0);
	json_object_put(o);
	assert_int_equal(link_send(l, MSG_SYNC_END, NULL), 0);
}

static void broadcast_pad(struct t *t, int n)
{
	json_object *o = json_object_new_object();
	char pad[3001];

	memset(pad, 'y', sizeof pad - 1);
	pad[sizeof pad - 1] = '\0';
	json_object_object_add(o, "pad", json_object_new_string(pad));
	while (n-- > 0)
		pub_broadcast(t->pub, MSG_OBJ_SET, o);
	json_object_put(o);
}

static void step_backlog(struct t *t, enum ev e, struct link *l, int type, json_object *body)
{
	if (e != EV_TIMER)
		return;
	if (t->phase == 0 && pub_subscribers(t->pub) == 2) {
		pub_set_ready(t->pub, 1); /* both get the big snapshot now */
		broadcast_pad(t, 1);
		assert_int_equal(
		    pub_subscribers(t->pub), 2); /* the snapshot is not held against it */
		t->phase = 1;
	} else if (t->phase >= 1) {
		if (pub_subscribers(t->pub) == 1) {
			event_base_loopbreak(t->base);
			return;
		}
		if (++t->phase > 2000) /* 6 MB sent and still there: no cap */
			fail_msg("the subscriber that does not read was never dropped");
		broadcast_pad(t, 5);
	}
	t_after(t, 1);
}

static void test_backlog_cap(void **state)
{
	struct t *t = *state;
	static const struct link_spec small_pub = {LINK_WATCHER, accept_none, 4096};
	static const struct link_spec small_sub = {LINK_WATCHER, accept_sync, 4096};
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	t->step = step_backlog;
	t->pub = pub_new(t->base, t->path, &small_pub, big_snapshot, t);
	assert_non_null(t->pub);
	t->cli = link_connect(t->base, t->path, &small_sub, &cli_cb, t);
	/* the one that never reads: HELLO, then silence */
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", t->path);
	t->raw_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(connect(t->raw_fd, (struct sockaddr *)&sun, sizeof sun), 0);
	raw_hello(t, PROTO_VERSION, LINK_WATCHER);
	t_after(t, 1);
	t_run(t, 30);
	assert_true(link_is_up(t->cli)); /* the reader stays */
	assert_int_equal(t->n[EV_CLI_DOWN], 0);
	assert_true(t->n[EV_CLI_FRAME] > 40);
}

/* a stale socket is replaced; a live one is not stolen; paths */
static void test_listen_paths(void **state)
{
	struct t *t = *state;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct link_server *second;
	char *s;
	int fd;

	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", t->path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
	close(fd); /* a server that died without unlinking */
	t->srv = link_listen(t->base, t->path, &srv_spec, &srv_cb, t);
	assert_non_null(t->srv);
	second = link_listen(t->base, t->path, &srv_spec, &srv_cb, t);
	assert_null(second);

	setenv("XDG_RUNTIME_DIR", "/run/user/7", 1);
	s = link_default_run_dir();
	assert_string_equal(s, "/run/user/7/vmpoold");
	free(s);
	unsetenv("XDG_RUNTIME_DIR");
	s = link_default_run_dir();
	assert_non_null(strstr(s, "/tmp/vmpoold-"));
	free(s);
	s = link_sock_path("/a/b", LINK_PLANNER);
	assert_string_equal(s, "/a/b/planner.sock");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_exchange, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unexpected_type, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_version_mismatch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_oversized, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pub, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_poison_backoff, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_listen_paths, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_peer_uid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_uid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backlog_cap, setup, teardown),
	};

	log_init("test_link", getenv("TEST_VERBOSE") != NULL, LOG_FMT_TEXT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

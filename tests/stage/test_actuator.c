/*
 * test_actuator.c: black-box test of vmpool-actuator --dry-run. Plays the planner with
 * link_connect, sends actions and checks the RESULTs by id; sends malformed actions
 * (RESULT ok=false BadRequest) and a garbage frame on a raw socket (the link is closed,
 * the actuator lives on, the planner link still works); two planners at once; SIGTERM
 * exits 0.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "link.h"
#include "log.h"
#include "obj.h"
#include "proto.h"
#include "timeutil.h"

static int passed, failed;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (cond) {                                                                        \
			passed++;                                                                  \
		} else {                                                                           \
			failed++;                                                                  \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                       \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
		}                                                                                  \
	} while (0)

struct planner {
	struct link *link;
	int up;
	json_object *results; /* "id" -> RESULT body */
};

static struct event_base *base;

static void pl_up(struct link *l, void *arg)
{
	((struct planner *)arg)->up = 1;
}

static void pl_frame(struct link *l, int type, json_object *body, void *arg)
{
	struct planner *p = arg;
	long long id = -1;
	char key[32];

	if (type != MSG_RESULT)
		return;
	obj_int(body, "id", &id);
	snprintf(key, sizeof key, "%lld", id);
	json_object_object_add(p->results, key, json_object_get(body));
}

static void pl_down(struct link *l, void *arg)
{
	((struct planner *)arg)->up = 0;
}

static void loop_briefly(void *unused)
{
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	usleep(2000);
}

static int wait_up(struct planner *p, double secs)
{
	double end = now_mono() + secs;

	while (!p->up && now_mono() < end)
		loop_briefly(NULL);
	return p->up;
}

/* waits for RESULT id on p; borrowed */
static json_object *wait_result(struct planner *p, long long id, double secs)
{
	double end = now_mono() + secs;
	json_object *r;
	char key[32];

	snprintf(key, sizeof key, "%lld", id);
	while (now_mono() < end) {
		if (json_object_object_get_ex(p->results, key, &r))
			return r;
		loop_briefly(NULL);
	}
	return NULL;
}

static void planner_open(struct planner *p, const char *path)
{
	static const int accept[] = {MSG_RESULT, 0};
	static const struct link_spec spec = {LINK_ACTUATOR, accept, 0};
	static const struct link_cb cb = {pl_up, pl_frame, pl_down};

	memset(p, 0, sizeof *p);
	p->results = json_object_new_object();
	p->link = link_connect(base, path, &spec, &cb, p);
}

static void planner_close(struct planner *p)
{
	link_free(p->link);
	json_object_put(p->results);
}

/* sends a JSON action and returns its RESULT (borrowed) or NULL */
static json_object *act(struct planner *p, long long id, const char *json)
{
	json_object *body = json_tokener_parse(json);

	if (body == NULL) {
		fprintf(stderr, "bad test json: %s\n", json);
		return NULL;
	}
	if (link_send(p->link, MSG_ACTION, body) == -1) {
		json_object_put(body);
		return NULL;
	}
	json_object_put(body);
	return wait_result(p, id, 5);
}

static int result_is(json_object *r, int ok, const char *reason)
{
	const char *rs = obj_str(r, "reason");

	return r != NULL && obj_bool(r, "ok") == ok &&
	       (reason == NULL || (rs != NULL && strcmp(rs, reason) == 0));
}

#define POOL ",\"pool\":{\"name\":\"p\",\"uid\":\"pu\"}"
#define EV   ",\"event\":{\"type\":\"Normal\",\"reason\":\"SuccessfulCreate\",\"message\":\"m\"}"

static void test_good_actions(struct planner *p)
{
	json_object *r;

	r = act(p, 1,
	    "{\"id\":1,\"op\":\"create_vm\",\"namespace\":\"ns\",\"name\":\"p-0\","
	    "\"body\":{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\"}" POOL EV "}");
	CHECK(result_is(r, 1, NULL), "create_vm ok");
	r = act(p, 2,
	    "{\"id\":2,\"op\":\"delete_vm\",\"namespace\":\"ns\",\"name\":\"p-0\","
	    "\"uid\":\"u1\"" POOL "}");
	CHECK(result_is(r, 1, NULL), "delete_vm ok");
	r = act(p, 3,
	    "{\"id\":3,\"op\":\"patch_vm\",\"namespace\":\"ns\",\"name\":\"p-0\","
	    "\"patch\":[{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}]}");
	CHECK(result_is(r, 1, NULL), "patch_vm ok");
	r = act(p, 4,
	    "{\"id\":4,\"op\":\"patch_pool\",\"namespace\":\"ns\",\"name\":\"p\","
	    "\"patch\":[{\"op\":\"add\",\"path\":\"/metadata/finalizers\",\"value\":[]}]}");
	CHECK(result_is(r, 1, NULL), "patch_pool ok");
	r = act(p, 5,
	    "{\"id\":5,\"op\":\"event\",\"namespace\":\"ns\",\"name\":\"p\",\"uid\":\"pu\"" EV "}");
	CHECK(result_is(r, 1, NULL), "event ok");
	/* unknown keys are ignored */
	r = act(p, 6,
	    "{\"id\":6,\"op\":\"delete_vm\",\"namespace\":\"ns\",\"name\":\"p-1\","
	    "\"extra\":[1,2,3]}");
	CHECK(result_is(r, 1, NULL), "unknown keys ignored");
}

static void test_bad_actions(struct planner *p)
{
	static const struct {
		long long id;
		const char *json;
	} bad[] = {
	    {10, "{\"id\":10,\"namespace\":\"ns\",\"name\":\"x\"}"},
	    {11, "{\"id\":11,\"op\":\"reboot\",\"namespace\":\"ns\",\"name\":\"x\"}"},
	    {12, "{\"id\":12,\"op\":\"create_vm\",\"namespace\":\"ns\",\"name\":\"x\"}"},
	    {13, "{\"id\":13,\"op\":\"patch_vm\",\"namespace\":\"ns\",\"name\":\"x\","
	         "\"patch\":{\"op\":\"x\"}}"},
	    {14, "{\"id\":14,\"op\":\"delete_vm\",\"namespace\":5,\"name\":\"x\"}"},
	    {15, "{\"id\":15,\"op\":\"delete_vm\",\"namespace\":\"ns\",\"name\":\"x\","
	         "\"uid\":7}"},
	    {16, "{\"id\":16,\"op\":\"event\",\"namespace\":\"ns\",\"name\":\"p\"}"},
	    {17, "{\"id\":17,\"op\":\"delete_vm\",\"namespace\":\"ns\",\"name\":\"x\","
	         "\"event\":{\"type\":\"Normal\"}" POOL "}"},
	    {18, "{\"id\":18,\"op\":\"delete_vm\",\"namespace\":\"ns\",\"name\":\"x\"" EV "}"},
	    {19, "{\"id\":19,\"op\":\"create_vm\",\"namespace\":\"ns\",\"name\":\"x\","
	         "\"body\":[1]}"},
	};
	json_object *r;
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		r = act(p, bad[i].id, bad[i].json);
		CHECK(result_is(r, 0, "BadRequest") && obj_str(r, "message") != NULL &&
		          obj_str(r, "message")[0] != '\0',
		    "bad action %lld -> BadRequest", bad[i].id);
	}
	/* an ill-typed id is answered with id 0 */
	r = act(
	    p, 0, "{\"id\":\"seven\",\"op\":\"delete_vm\",\"namespace\":\"ns\",\"name\":\"x\"}");
	CHECK(result_is(r, 0, "BadRequest"), "ill-typed id -> BadRequest id 0");
	CHECK(link_is_up(p->link), "link stays up after bad actions");
}

/* a raw connection sending garbage is closed; returns 1 if EOF was seen */
static int garbage_closed(const char *path)
{
	static const unsigned char junk[] = {0, 0, 0, 5, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1};
	struct sockaddr_un sun;
	struct pollfd pfd;
	char buf[4096];
	double end = now_mono() + 5;
	int fd, closed = 0;
	ssize_t n;

	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1)
		return 0;
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1 ||
	    write(fd, junk, sizeof junk) != (ssize_t)sizeof junk) {
		close(fd);
		return 0;
	}
	while (!closed && now_mono() < end) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 100) > 0) {
			n = read(fd, buf, sizeof buf);
			closed = n == 0 || (n == -1 && errno == ECONNRESET);
		}
		loop_briefly(NULL);
	}
	close(fd);
	return closed;
}

static pid_t spawn(const char *bin, const char *rundir)
{
	pid_t pid = fork();

	if (pid == 0) {
		execl(bin, bin, "--dry-run", "--run-dir", rundir, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int wait_exit(pid_t pid, double secs)
{
	double end = now_mono() + secs;
	int status;

	while (now_mono() < end) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

static void test_two_planners(struct planner *p, const char *sock)
{
	struct planner q;
	json_object *r1, *r2;

	planner_open(&q, sock);
	CHECK(wait_up(&q, 5), "second planner link up");
	/* the same id on both links: each gets its own answer */
	r1 = act(&q, 40, "{\"id\":40,\"op\":\"delete_vm\",\"namespace\":\"ns\",\"name\":\"a\"}");
	r2 = act(p, 40, "{\"id\":40,\"op\":\"reboot\",\"namespace\":\"ns\",\"name\":\"a\"}");
	CHECK(result_is(r1, 1, NULL), "planner 2 gets its ok");
	CHECK(result_is(r2, 0, "BadRequest"), "planner 1 gets its BadRequest");
	planner_close(&q);
}

int main(void)
{
	const char *bindir = getenv("VMPOOL_BIN");
	char tmpl[] = "/tmp/test_actuator.XXXXXX", bin[1024], rundir[1200], *sock;
	struct planner p;
	json_object *r;
	pid_t pid;
	int rc;

	log_init("test_actuator", 0, LOG_FMT_TEXT);
	signal(SIGPIPE, SIG_IGN);
	snprintf(bin, sizeof bin, "%s/vmpool-actuator", bindir ? bindir : "bin-asan");
	if (mkdtemp(tmpl) == NULL)
		return 1;
	snprintf(rundir, sizeof rundir, "%s/run", tmpl);
	sock = link_sock_path(rundir, LINK_ACTUATOR);
	base = event_base_new();
	pid = spawn(bin, rundir);
	planner_open(&p, sock);
	CHECK(wait_up(&p, 10), "planner link up");

	test_good_actions(&p);
	test_bad_actions(&p);
	CHECK(garbage_closed(sock), "garbage frame closes the raw link");
	CHECK(kill(pid, 0) == 0 && waitpid(pid, NULL, WNOHANG) == 0, "actuator alive");
	r = act(&p, 30, "{\"id\":30,\"op\":\"delete_vm\",\"namespace\":\"ns\",\"name\":\"x\"}");
	CHECK(result_is(r, 1, NULL), "planner link still works after garbage");
	test_two_planners(&p, sock);

	/* reconnect: drop our link, the client reconnects by itself */
	link_close(p.link, "test");
	CHECK(wait_up(&p, 10), "planner link reconnects");
	r = act(&p, 31,
	    "{\"id\":31,\"op\":\"patch_vm\",\"namespace\":\"ns\",\"name\":\"x\","
	    "\"patch\":[{\"op\":\"test\",\"path\":\"/a\",\"value\":1}]}");
	CHECK(result_is(r, 1, NULL), "actions work after reconnect");

	kill(pid, SIGTERM);
	rc = wait_exit(pid, 10);
	CHECK(rc == 0, "SIGTERM exits 0 (got %d)", rc);

	planner_close(&p);
	event_base_free(base);
	free(sock);
	rmdir(rundir);
	rmdir(tmpl);
	printf("test_actuator: %d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}

/*
 * test_actuator.c: black-box test of vmpool-actuator. First --dry-run: plays the planner
 * with link_connect, sends actions and checks the RESULTs by id; sends malformed actions
 * (RESULT ok=false BadRequest) and a garbage frame on a raw socket (the link is closed,
 * the actuator lives on, the planner link still works); two planners at once; SIGTERM
 * exits 0. Then a second actuator against a fake API server (evhttp on 127.0.0.1, plain
 * http, bearer token) that records every request: for each op the method, path, content
 * type and body it sends (PUT body, DeleteOptions with preconditions and
 * propagationPolicy), and the outcomes the fake scripts by object name: "gone" answers
 * 404 NotFound, "taken" 409 AlreadyExists, "stale" 409 Conflict (idempotent or not per op).
 * A GET of a VM answers the VM "as the API has it" (LIVEVM): update_vm reads it, merges what
 * the planner built into it and PUTs that with the resourceVersion read (a 409 is tried
 * again from a new GET, three times in all). A peer named vmpool-watcher gets the answers to
 * creates (WRITTEN).
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

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "link.h"
#include "log.h"
#include "obj.h"
#include "proto.h"
#include "../support/stagekit.h"
#include "timeutil.h"

struct planner {
	struct link *link;
	int up;
	int downs;            /* links lost */
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
	((struct planner *)arg)->downs++;
}

static void loop_briefly(void *unused)
{
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	usleep(2000);
}

/* runs the loop until cond(arg) holds or secs pass; returns cond(arg) */
static int wait_cond(int (*cond)(void *), void *arg, double secs)
{
	double end = now_mono() + secs;

	while (!cond(arg) && now_mono() < end)
		loop_briefly(NULL);
	return cond(arg);
}

static int pl_up_cond(void *arg)
{
	return ((struct planner *)arg)->up;
}

static int wait_up(struct planner *p, double secs)
{
	return wait_cond(pl_up_cond, p, secs);
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
	static const int accept[] = {MSG_RESULT, MSG_LEADER, 0};
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
	STAGEKIT_CHECK(result_is(r, 1, NULL), "create_vm ok");
	r = act(p, 2,
	    "{\"id\":2,\"op\":\"delete_vm\",\"namespace\":\"ns\",\"name\":\"p-0\","
	    "\"uid\":\"u1\"" POOL "}");
	STAGEKIT_CHECK(result_is(r, 1, NULL), "delete_vm ok");
	r = act(p, 3,
	    "{\"id\":3,\"op\":\"patch_vm\",\"namespace\":\"ns\",\"name\":\"p-0\","
	    "\"patch\":[{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}]}");
	STAGEKIT_CHECK(result_is(r, 1, NULL), "patch_vm ok");
	r = act(p, 4,
	    "{\"id\":4,\"op\":\"patch_pool\",\"namespace\":\"ns\",\"name\":\"p\","
	    "\"patch\":[{\"op\":\"add\",\"path\":\"/metadata/finalizers\",\"value\":[]}]}");
	STAGEKIT_CHECK(result_is(r, 1, NULL), "patch_pool ok");
	r = act(p, 5,
	    "{\"id\":5,\"op\":\"event\",\"namespace\":\"ns\",\"name\":\"p\",\"uid\":\"pu\"" EV "}");
	STAGEKIT_CHECK(result_is(r, 1, NULL), "event ok");
	/* unknown keys are ignored */
	r = act(p, 6,
	    "{\"id\":6,\"op\":\"delete_vm\",\"namespace\":\"ns\",\"name\":\"p-1\","
	    "\"extra\":[1,2,3]}");
	STAGEKIT_CHECK(result_is(r, 1, NULL), "unknown keys ignored");
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
		STAGEKIT_CHECK(result_is(r, 0, "BadRequest") && obj_str(r, "message") != NULL &&
		                   obj_str(r, "message")[0] != '\0',
		    "bad action %lld -> BadRequest", bad[i].id);
	}
	/* an ill-typed id is answered with id 0 */
	r = act(
	    p, 0, "{\"id\":\"seven\",\"op\":\"delete_vm\",\"namespace\":\"ns\",\"name\":\"x\"}");
	STAGEKIT_CHECK(result_is(r, 0, "BadRequest"), "ill-typed id -> BadRequest id 0");
	STAGEKIT_CHECK(link_is_up(p->link), "link stays up after bad actions");
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
	STAGEKIT_CHECK(wait_up(&q, 5), "second planner link up");
	/* the same id on both links: each gets its own answer */
	r1 = act(&q, 40, "{\"id\":40,\"op\":\"delete_vm\",\"namespace\":\"ns\",\"name\":\"a\"}");
	r2 = act(p, 40, "{\"id\":40,\"op\":\"reboot\",\"namespace\":\"ns\",\"name\":\"a\"}");
	STAGEKIT_CHECK(result_is(r1, 1, NULL), "planner 2 gets its ok");
	STAGEKIT_CHECK(result_is(r2, 0, "BadRequest"), "planner 1 gets its BadRequest");
	planner_close(&q);
}

/* ---- the fake API server (second actuator) ---- */

#define TOKEN "actuator-test-token"
#define JP    "application/json-patch+json"

static struct evhttp *api_http;
static json_object *api_reqs; /* [{method, path, ctype, body}] since the last api_clear() */

static void api_reply(struct evhttp_request *req, int code, const char *reason, json_object *obj)
{
	struct evbuffer *b = evbuffer_new();
	json_object *st = NULL;

	if (reason != NULL) {
		st = json_object_new_object();
		json_object_object_add(st, "kind", json_object_new_string("Status"));
		json_object_object_add(st, "apiVersion", json_object_new_string("v1"));
		json_object_object_add(st, "status", json_object_new_string("Failure"));
		json_object_object_add(st, "reason", json_object_new_string(reason));
		json_object_object_add(st, "message", json_object_new_string("fake says no"));
		json_object_object_add(st, "code", json_object_new_int(code));
		obj = st;
	}
	evbuffer_add_printf(b, "%s", obj != NULL ? obj_json(obj) : "{}");
	evhttp_add_header(
	    evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evhttp_send_reply(req, code, code < 300 ? "OK" : "Error", b);
	evbuffer_free(b);
	json_object_put(st);
}

/* a GET of a VM: the VM as the API has it, with fields the planner never holds
 * (generateName, a firmware serial, status) */
static void api_reply_live_vm(struct evhttp_request *req, const char *name)
{
	char text[1024];
	json_object *vm;

	snprintf(text, sizeof text,
	    "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\",\"metadata\":{"
	    "\"name\":\"%s\",\"namespace\":\"ns\",\"uid\":\"u-live\",\"resourceVersion\":\"77\","
	    "\"generateName\":\"keep-me\"},\"spec\":{\"running\":false,\"template\":{\"spec\":"
	    "{\"domain\":{\"firmware\":{\"serial\":\"s-live\"}}}}},\"status\":{\"ready\":true}}",
	    name);
	vm = json_tokener_parse(text);
	api_reply(req, 200, NULL, vm);
	json_object_put(vm);
}

/* the scripted outcome by object name (POST: the body's; else the path's last segment) */
static void api_route(
    struct evhttp_request *req, const char *method, const char *path, json_object *body)
{
	const char *auth =
	    evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	const char *name = strrchr(path, '/') + 1;

	if (auth == NULL || strcmp(auth, "Bearer " TOKEN) != 0) {
		api_reply(req, 401, "Unauthorized", NULL);
		return;
	}
	if (strcmp(method, "POST") == 0)
		name = obj_str(body, "metadata.name") ?: "";
	if (strcmp(obj_str(body, "involvedObject.name") ?: "", "denied") == 0)
		api_reply(req, 403, "Forbidden", NULL); /* Events about pool "denied" */
	else if (strcmp(name, "gone") == 0)
		api_reply(req, 404, "NotFound", NULL);
	else if (strcmp(method, "GET") == 0)
		api_reply_live_vm(req, name);
	else if (strcmp(name, "taken") == 0)
		api_reply(req, 409, "AlreadyExists", NULL);
	else if (strcmp(name, "stale") == 0)
		api_reply(req, 409, "Conflict", NULL);
	else
		api_reply(req, strcmp(method, "POST") == 0 ? 201 : 200, NULL, body);
}

static void api_handle(struct evhttp_request *req, void *arg)
{
	json_object *rec = stagekit_http_record(req);

	json_object_array_add(api_reqs, rec);
	api_route(req, obj_str(rec, "method"), obj_str(rec, "path"), obj_path(rec, "body"));
}

static int api_listen(int port)
{
	api_reqs = json_object_new_array();
	return stagekit_http_serve(base, port, api_handle, &api_http);
}

static void api_clear(void)
{
	json_object_put(api_reqs);
	api_reqs = json_object_new_array();
}

/* the one request to path since api_clear() (borrowed), NULL if none or several */
static json_object *api_req(const char *path)
{
	json_object *rec, *found = NULL;
	size_t i;

	for (i = 0; i < json_object_array_length(api_reqs); i++) {
		rec = json_object_array_get_idx(api_reqs, i);
		if (strcmp(obj_str(rec, "path"), path) == 0) {
			if (found != NULL)
				return NULL;
			found = rec;
		}
	}
	return found;
}

/* one expected API call of an action and its outcome */
struct api_case {
	const char *action; /* ACTION JSON; its id is the case's id */
	long long id;
	const char *method, *path, *ctype; /* ctype "" when no body is sent */
	const char *body;                  /* expected request body (JSON), NULL: none sent */
	int ok;
	long status;
	const char *reason; /* RESULT reason, NULL: any */
};

static int api_case_run(struct planner *p, const struct api_case *c)
{
	json_object *r, *rec, *want = c->body ? json_tokener_parse(c->body) : NULL;
	long long status = -1;
	const char *what = "no RESULT";
	int good = 0;

	api_clear();
	r = act(p, c->id, c->action);
	rec = api_req(c->path);
	if (r != NULL)
		obj_int(r, "status", &status);
	if (r == NULL)
		;
	else if (rec == NULL)
		what = "no single request to the path";
	else if (strcmp(obj_str(rec, "method"), c->method) != 0)
		what = "wrong method";
	else if (strcmp(obj_str(rec, "ctype"), c->ctype) != 0)
		what = "wrong content type";
	else if (want == NULL ? obj_path(rec, "body") != NULL
	                      : !obj_equal(obj_path(rec, "body"), want))
		what = "wrong body";
	else if (!result_is(r, c->ok, c->reason) || status != c->status)
		what = "wrong RESULT";
	else
		good = 1;
	if (!good)
		fprintf(stderr, "  case %lld: %s; RESULT %s; requests %s\n", c->id, what,
		    r ? obj_json(r) : "-", obj_json(api_reqs));
	json_object_put(want);
	return good;
}

#define VM   "/apis/kubevirt.io/v1/namespaces/ns/virtualmachines/"
#define VMI  "/apis/kubevirt.io/v1/namespaces/ns/virtualmachineinstances/"
#define REVS "/apis/apps/v1/namespaces/ns/controllerrevisions"
#define PVC  "/api/v1/namespaces/ns/persistentvolumeclaims/"
#define DV   "/apis/cdi.kubevirt.io/v1beta1/namespaces/ns/datavolumes/"
#define APPJ "application/json"
#define VMOBJ(n)                                                                                   \
	"{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":"   \
	"\"" n "\",\"namespace\":\"ns\",\"resourceVersion\":\"42\"},\"spec\":{\"running\":true}}"
#define REVOBJ(n)                                                                                  \
	"{\"apiVersion\":\"apps/v1\",\"kind\":\"ControllerRevision\",\"metadata\":{\"name\":\"" n  \
	"\"},\"revision\":3,\"data\":{\"spec\":{\"template\":{}}}}"
#define JPATCH                                                                                     \
	"[{\"op\":\"test\",\"path\":\"/metadata/uid\",\"value\":\"u1\"},"                          \
	"{\"op\":\"remove\",\"path\":\"/metadata/ownerReferences/0\"}]"
#define DELOPT(extra) "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\"" extra "}"

static const struct api_case api_cases[] = {
    /* delete_vmi: DeleteOptions with the uid precondition and the propagation */
    {"{\"id\":110,\"op\":\"delete_vmi\",\"namespace\":\"ns\",\"name\":\"vmi-1\",\"uid\":\"u1\","
     "\"propagation\":\"Foreground\"}",
        110, "DELETE", VMI "vmi-1", APPJ,
        DELOPT(",\"preconditions\":{\"uid\":\"u1\"},\"propagationPolicy\":\"Foreground\""), 1, 200,
        NULL},
    {"{\"id\":111,\"op\":\"delete_vmi\",\"namespace\":\"ns\",\"name\":\"gone\"}", 111, "DELETE",
        VMI "gone", "", NULL, 1, 404, "NotFound"},
    {"{\"id\":112,\"op\":\"delete_vmi\",\"namespace\":\"ns\",\"name\":\"stale\",\"uid\":\"u2\"}",
        112, "DELETE", VMI "stale", APPJ, DELOPT(",\"preconditions\":{\"uid\":\"u2\"}"), 1, 409,
        "Conflict"},
    /* patch_vmi */
    {"{\"id\":120,\"op\":\"patch_vmi\",\"namespace\":\"ns\",\"name\":\"vmi-1\",\"patch\":" JPATCH
     "}",
        120, "PATCH", VMI "vmi-1", JP, JPATCH, 1, 200, NULL},
    {"{\"id\":121,\"op\":\"patch_vmi\",\"namespace\":\"ns\",\"name\":\"gone\",\"patch\":" JPATCH
     "}",
        121, "PATCH", VMI "gone", JP, JPATCH, 1, 404, "NotFound"},
    {"{\"id\":122,\"op\":\"patch_vmi\",\"namespace\":\"ns\",\"name\":\"stale\",\"patch\":" JPATCH
     "}",
        122, "PATCH", VMI "stale", JP, JPATCH, 0, 409, "Conflict"},
    /* create_rev: POST to the collection; AlreadyExists is done, another Conflict is not */
    {"{\"id\":130,\"op\":\"create_rev\",\"namespace\":\"ns\",\"name\":\"rev-1\",\"body\":" REVOBJ(
         "rev-1") "}",
        130, "POST", REVS, APPJ, REVOBJ("rev-1"), 1, 201, NULL},
    {"{\"id\":131,\"op\":\"create_rev\",\"namespace\":\"ns\",\"name\":\"taken\",\"body\":" REVOBJ(
         "taken") "}",
        131, "POST", REVS, APPJ, REVOBJ("taken"), 1, 409, "AlreadyExists"},
    {"{\"id\":132,\"op\":\"create_rev\",\"namespace\":\"ns\",\"name\":\"stale\",\"body\":" REVOBJ(
         "stale") "}",
        132, "POST", REVS, APPJ, REVOBJ("stale"), 0, 409, "Conflict"},
    /* delete_rev: a propagation alone still sends DeleteOptions */
    {"{\"id\":140,\"op\":\"delete_rev\",\"namespace\":\"ns\",\"name\":\"rev-1\","
     "\"propagation\":\"Orphan\"}",
        140, "DELETE", REVS "/rev-1", APPJ, DELOPT(",\"propagationPolicy\":\"Orphan\""), 1, 200,
        NULL},
    {"{\"id\":141,\"op\":\"delete_rev\",\"namespace\":\"ns\",\"name\":\"gone\",\"uid\":\"u3\"}",
        141, "DELETE", REVS "/gone", APPJ, DELOPT(",\"preconditions\":{\"uid\":\"u3\"}"), 1, 404,
        "NotFound"},
    {"{\"id\":142,\"op\":\"delete_rev\",\"namespace\":\"ns\",\"name\":\"stale\",\"uid\":\"u4\","
     "\"propagation\":\"Background\"}",
        142, "DELETE", REVS "/stale", APPJ,
        DELOPT(",\"preconditions\":{\"uid\":\"u4\"},\"propagationPolicy\":\"Background\""), 1, 409,
        "Conflict"},
    /* delete_vm takes a propagation too */
    {"{\"id\":150,\"op\":\"delete_vm\",\"namespace\":\"ns\",\"name\":\"vm-2\","
     "\"propagation\":\"Background\"}",
        150, "DELETE", VM "vm-2", APPJ, DELOPT(",\"propagationPolicy\":\"Background\""), 1, 200,
        NULL},
    {"{\"id\":151,\"op\":\"delete_vm\",\"namespace\":\"ns\",\"name\":\"vm-3\"}", 151, "DELETE",
        VM "vm-3", "", NULL, 1, 200, NULL},
    /* patch_pvc, patch_dv */
    {"{\"id\":160,\"op\":\"patch_pvc\",\"namespace\":\"ns\",\"name\":\"pvc-1\",\"patch\":" JPATCH
     "}",
        160, "PATCH", PVC "pvc-1", JP, JPATCH, 1, 200, NULL},
    {"{\"id\":161,\"op\":\"patch_pvc\",\"namespace\":\"ns\",\"name\":\"gone\",\"patch\":" JPATCH
     "}",
        161, "PATCH", PVC "gone", JP, JPATCH, 1, 404, "NotFound"},
    {"{\"id\":170,\"op\":\"patch_dv\",\"namespace\":\"ns\",\"name\":\"dv-1\",\"patch\":" JPATCH "}",
        170, "PATCH", DV "dv-1", JP, JPATCH, 1, 200, NULL},
    {"{\"id\":171,\"op\":\"patch_dv\",\"namespace\":\"ns\",\"name\":\"gone\",\"patch\":" JPATCH "}",
        171, "PATCH", DV "gone", JP, JPATCH, 1, 404, "NotFound"},
};

static json_object *api_nth_to(const char *path, size_t n);

/* the methods of the requests to path since api_clear(), as "GET,PUT,..." */
static const char *api_methods(const char *path)
{
	static char buf[256];
	json_object *rec;
	size_t i, n = 0;

	buf[0] = '\0';
	for (i = 0; i < json_object_array_length(api_reqs); i++) {
		rec = json_object_array_get_idx(api_reqs, i);
		if (strcmp(obj_str(rec, "path"), path) == 0 && n + 8 < sizeof buf)
			n += (size_t)snprintf(
			    buf + n, sizeof buf - n, "%s%s", n ? "," : "", obj_str(rec, "method"));
	}
	return buf;
}

/* the PUT update_vm sends: the VM read (GET) with the planner's labels, annotations and
 * spec, the firmware serial read kept, status left out, the resourceVersion read */
#define MERGED(n)                                                                                  \
	"{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":"   \
	"\"" n "\",\"namespace\":\"ns\",\"uid\":\"u-live\",\"resourceVersion\":\"77\","            \
	"\"generateName\":\"keep-me\"},\"spec\":{\"running\":true,\"template\":{\"spec\":{"        \
	"\"domain\":{\"firmware\":{\"serial\":\"s-live\"}}}}}}"

/* update_vm: GET, then PUT the merge; NotFound is done; a Conflict is tried again from a
 * GET, and fails after three; another VM under the name (uid) is not written */
static void test_api_update_vm(struct planner *p)
{
	json_object *r, *put, *want = json_tokener_parse(MERGED("vm-1"));
	long long status = 0;

	api_clear();
	r = act(p, 100,
	    "{\"id\":100,\"op\":\"update_vm\",\"namespace\":\"ns\",\"name\":\"vm-1\","
	    "\"body\":" VMOBJ("vm-1") "}");
	obj_int(r, "status", &status);
	put = api_nth_to(VM "vm-1", 1);
	STAGEKIT_CHECK(result_is(r, 1, NULL) && status == 200 &&
	                   strcmp(api_methods(VM "vm-1"), "GET,PUT") == 0 && put != NULL &&
	                   obj_equal(obj_path(put, "body"), want),
	    "update_vm: GET, then PUT of the merge with the resourceVersion read (%s)",
	    obj_json(api_reqs));
	api_clear();
	r = act(p, 101,
	    "{\"id\":101,\"op\":\"update_vm\",\"namespace\":\"ns\",\"name\":\"gone\","
	    "\"body\":" VMOBJ("gone") "}");
	STAGEKIT_CHECK(result_is(r, 1, "NotFound") && strcmp(api_methods(VM "gone"), "GET") == 0,
	    "update_vm of a VM gone: done, no PUT (%s)", obj_json(api_reqs));
	api_clear();
	r = act(p, 102,
	    "{\"id\":102,\"op\":\"update_vm\",\"namespace\":\"ns\",\"name\":\"stale\","
	    "\"body\":" VMOBJ("stale") "}");
	STAGEKIT_CHECK(result_is(r, 0, "Conflict") &&
	                   strcmp(api_methods(VM "stale"), "GET,PUT,GET,PUT,GET,PUT") == 0,
	    "update_vm meeting 409 on every PUT: read again twice, then failed (%s)",
	    api_methods(VM "stale"));
	api_clear();
	r = act(p, 103,
	    "{\"id\":103,\"op\":\"update_vm\",\"namespace\":\"ns\",\"name\":\"vm-2\",\"body\":"
	    "{\"metadata\":{\"name\":\"vm-2\",\"uid\":\"u-old\",\"resourceVersion\":\"1\"}}}");
	STAGEKIT_CHECK(result_is(r, 0, "Conflict") &&
	                   strstr(obj_str(r, "message") ?: "", "replaced") &&
	                   strcmp(api_methods(VM "vm-2"), "GET") == 0,
	    "update_vm planned for another uid: failed, no PUT (%s)", r ? obj_json(r) : "-");
	json_object_put(want);
}

/* a refused action makes no API call */
static void test_api_refused(struct planner *p)
{
	json_object *r;

	api_clear();
	r = act(p, 180,
	    "{\"id\":180,\"op\":\"delete_vmi\",\"namespace\":\"ns\",\"name\":\"v\","
	    "\"propagation\":\"Sideways\"}");
	STAGEKIT_CHECK(result_is(r, 0, "BadRequest"), "bad propagation -> BadRequest");
	r = act(p, 181, "{\"id\":181,\"op\":\"update_vm\",\"namespace\":\"ns\",\"name\":\"v\"}");
	STAGEKIT_CHECK(result_is(r, 0, "BadRequest"), "update_vm without body -> BadRequest");
	r = act(p, 182,
	    "{\"id\":182,\"op\":\"patch_dv\",\"namespace\":\"ns\",\"name\":\"v\",\"patch\":[]}");
	STAGEKIT_CHECK(result_is(r, 0, "BadRequest"), "patch_dv with an empty patch -> BadRequest");
	STAGEKIT_CHECK(json_object_array_length(api_reqs) == 0,
	    "refused actions make no API call (%s)", obj_json(api_reqs));
}

/* an update that fails posts its fail_event with the API's message appended */
static int api_event_seen(void)
{
	json_object *rec = api_req("/api/v1/namespaces/ns/events");
	const char *msg = rec ? obj_str(rec, "body.message") : NULL;

	return msg != NULL && strcmp(msg, "update failed: fake says no") == 0 &&
	       strcmp(obj_str(rec, "body.involvedObject.name") ?: "", "p") == 0;
}

static void test_api_fail_event(struct planner *p)
{
	double end;
	json_object *r;

	api_clear();
	r = act(p, 190,
	    "{\"id\":190,\"op\":\"update_vm\",\"namespace\":\"ns\",\"name\":\"stale\","
	    "\"body\":" VMOBJ("stale") POOL
	    ",\"fail_event\":{\"type\":\"Warning\",\"reason\":\"FailedUpdate\","
	    "\"message\":\"update failed\"}}");
	STAGEKIT_CHECK(result_is(r, 0, "Conflict"), "update_vm conflict -> failure");
	for (end = now_mono() + 5; !api_event_seen() && now_mono() < end;)
		loop_briefly(NULL);
	STAGEKIT_CHECK(
	    api_event_seen(), "fail_event posted with the API message (%s)", obj_json(api_reqs));
}

/* the n-th request to path since api_clear() (borrowed), NULL if none */
static json_object *api_nth_to(const char *path, size_t n)
{
	json_object *rec;
	size_t i;

	for (i = 0; i < json_object_array_length(api_reqs); i++) {
		rec = json_object_array_get_idx(api_reqs, i);
		if (strcmp(obj_str(rec, "path"), path) == 0 && n-- == 0)
			return rec;
	}
	return NULL;
}

/* delete_vm with unfinalize: the finalizer patch, then at once the DELETE, then the RESULT
 * (the DELETE's); the DELETE goes whatever the patch's answer */
static void test_api_unfinalize(struct planner *p)
{
	json_object *r, *d, *pt;
	const char *patch = "[{\"op\":\"test\",\"path\":\"/metadata/uid\",\"value\":\"u9\"},"
	                    "{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}]";
	char json[512];
	long long status = 0;

	api_clear();
	snprintf(json, sizeof json,
	    "{\"id\":200,\"op\":\"delete_vm\",\"namespace\":\"ns\",\"name\":\"uf\","
	    "\"uid\":\"u9\",\"unfinalize\":%s}",
	    patch);
	r = act(p, 200, json);
	obj_int(r, "status", &status);
	pt = api_nth_to(VM "uf", 0);
	d = api_nth_to(VM "uf", 1);
	STAGEKIT_CHECK(result_is(r, 1, NULL) && status == 200 && d != NULL && pt != NULL &&
	                   strcmp(obj_str(pt, "method"), "PATCH") == 0 &&
	                   strcmp(obj_str(d, "method"), "DELETE") == 0 &&
	                   strcmp(obj_str(pt, "path"), obj_str(d, "path")) == 0 &&
	                   strcmp(obj_str(pt, "ctype"), JP) == 0 &&
	                   strcmp(obj_json(obj_path(pt, "body")), patch) == 0 &&
	                   strcmp(obj_str(d, "body.preconditions.uid") ?: "", "u9") == 0 &&
	                   api_nth_to(VM "uf", 2) == NULL,
	    "delete_vm with unfinalize: the patch, then the DELETE with its uid precondition, then "
	    "RESULT ok 200 (%s; %s)",
	    r ? obj_json(r) : "-", obj_json(api_reqs));
	/* a patch that finds nothing: the DELETE finds nothing too, done */
	api_clear();
	snprintf(json, sizeof json,
	    "{\"id\":201,\"op\":\"delete_vm\",\"namespace\":\"ns\",\"name\":\"gone\","
	    "\"unfinalize\":%s}",
	    patch);
	r = act(p, 201, json);
	STAGEKIT_CHECK(
	    result_is(r, 1, "NotFound") && strcmp(api_methods(VM "gone"), "PATCH,DELETE") == 0,
	    "delete_vm of a VM already gone: the patch and the DELETE, done (%s; %s)",
	    r ? obj_json(r) : "-", obj_json(api_reqs));
	/* a patch refused (the fake's 409 for "stale"): the DELETE goes anyway, and its answer
	 * (409, another object has the name: idempotent for a delete) is the RESULT */
	api_clear();
	snprintf(json, sizeof json,
	    "{\"id\":202,\"op\":\"delete_vm\",\"namespace\":\"ns\",\"name\":\"stale\","
	    "\"uid\":\"u9\",\"unfinalize\":%s}",
	    patch);
	r = act(p, 202, json);
	status = 0;
	obj_int(r, "status", &status);
	STAGEKIT_CHECK(result_is(r, 1, "Conflict") && status == 409 &&
	                   strcmp(api_methods(VM "stale"), "PATCH,DELETE") == 0,
	    "delete_vm whose patch fails: the DELETE still goes, RESULT is its answer (%s; %s)",
	    r ? obj_json(r) : "-", obj_json(api_reqs));
}

/* sends an event action for pool POOL (its own uid) with reason and message */
static void act_event(
    struct planner *p, long long id, const char *pool, const char *reason, const char *msg)
{
	char json[512];

	snprintf(json, sizeof json,
	    "{\"id\":%lld,\"op\":\"event\",\"namespace\":\"ns\",\"name\":\"%s\",\"uid\":\"%s-"
	    "uid\",\"event\":{\"type\":\"Normal\",\"reason\":\"%s\",\"message\":\"%s\"}}",
	    id, pool, pool, reason, msg);
	act(p, id, json);
}

/* Event writes for pool since api_clear(): how many, and the last count of each Event */
static int api_event_counts(const char *pool, json_object *last)
{
	json_object *rec;
	const char *path, *name;
	char prefix[64];
	long long n;
	size_t i;
	int writes = 0;

	snprintf(prefix, sizeof prefix, "%s.", pool);
	for (i = 0; i < json_object_array_length(api_reqs); i++) {
		rec = json_object_array_get_idx(api_reqs, i);
		path = obj_str(rec, "path");
		if (strncmp(path, "/api/v1/namespaces/ns/events", 28) != 0)
			continue;
		name = strcmp(obj_str(rec, "method"), "POST") == 0
		           ? obj_str(rec, "body.metadata.name")
		           : strrchr(path, '/') + 1;
		if (name == NULL || strncmp(name, prefix, strlen(prefix)) != 0 ||
		    obj_int(rec, "body.count", &n) != 0)
			continue;
		writes++;
		json_object_object_add(last, name, json_object_new_int64(n));
	}
	return writes;
}

static long long api_count_sum(json_object *last)
{
	long long sum = 0;

	json_object_object_foreach(last, k, v)
	{
		(void)k;
		sum += json_object_get_int64(v);
	}
	return sum;
}

/* client-go's correlator, end to end through the actuator: 30 SuccessfulCreate Events for
 * one pool are 9 Events and one "(combined ...)" whose counts add up to 30, in far fewer
 * than 30 writes; 40 Events of 40 reasons for another pool stop at the spam filter's burst */
static void test_api_correlation(struct planner *p)
{
	json_object *last = json_object_new_object();
	char msg[64], reason[32];
	double end;
	int i, writes = 0;

	api_clear();
	for (i = 0; i < 30; i++) {
		snprintf(msg, sizeof msg, "Created VM ns/agg-%d", i);
		act_event(p, 300 + i, "agg", "SuccessfulCreate", msg);
	}
	for (end = now_mono() + 10; now_mono() < end && api_count_sum(last) != 30;) {
		loop_briefly(NULL);
		json_object_put(last);
		last = json_object_new_object();
		writes = api_event_counts("agg", last);
	}
	STAGEKIT_CHECK(
	    api_count_sum(last) == 30 && json_object_object_length(last) == 10 && writes <= 15,
	    "30 similar Events: %d Event objects, counts adding up to %lld, in %d writes",
	    json_object_object_length(last), api_count_sum(last), writes);
	api_clear();
	for (i = 0; i < 40; i++) {
		snprintf(reason, sizeof reason, "Reason%d", i);
		act_event(p, 400 + i, "spam", reason, "m");
	}
	/* Events go at a tenth of --kube-api-qps (5/s, burst 10): 25 within 10 s, then 2 s more */
	for (end = now_mono() + 10; now_mono() < end && writes < 25;) {
		loop_briefly(NULL);
		json_object_put(last);
		last = json_object_new_object();
		writes = api_event_counts("spam", last);
	}
	for (end = now_mono() + 2; now_mono() < end;)
		loop_briefly(NULL);
	json_object_put(last);
	last = json_object_new_object();
	writes = api_event_counts("spam", last);
	STAGEKIT_CHECK(writes == 25,
	    "40 Events of one pool at once: %d written (the spam filter's burst is 25)", writes);
	json_object_put(last);
}

/* a 403 on an Event: logged once (per namespace and status; a klog warning line starts with
 * W), never retried */
static void test_api_event_rejected(struct planner *p, const char *logp)
{
	char line[2048], reason[32];
	double end;
	int i, lines = 0, posts = 0;
	size_t j;
	FILE *f;

	api_clear();
	for (i = 0; i < 3; i++) {
		snprintf(reason, sizeof reason, "Denied%d", i);
		act_event(p, 500 + i, "denied", reason, "m");
	}
	for (end = now_mono() + 3; now_mono() < end;)
		loop_briefly(NULL);
	for (j = 0; j < json_object_array_length(api_reqs); j++)
		posts += strstr(obj_json(json_object_array_get_idx(api_reqs, j)), "denied") != NULL;
	if ((f = fopen(logp, "r")) != NULL) {
		while (fgets(line, sizeof line, f) != NULL)
			lines += line[0] == 'W' && strstr(line, "rejected: status 403") != NULL;
		fclose(f);
	}
	STAGEKIT_CHECK(posts == 3 && lines == 1,
	    "3 Events answered 403: %d requests (no retry), %d warning lines (one)", posts, lines);
}

/* a peer of actuator.sock that says it is vmpool-watcher: what it was sent */
struct watcher_peer {
	struct link *link;
	int up;
	json_object *written; /* [{kind, obj}] */
	int others;           /* frames other than WRITTEN and LEADER */
};

static void wp_up(struct link *l, void *arg)
{
	((struct watcher_peer *)arg)->up = 1;
}

static void wp_frame(struct link *l, int type, json_object *body, void *arg)
{
	struct watcher_peer *w = arg;

	if (type == MSG_WRITTEN)
		json_object_array_add(w->written, json_object_get(body));
	else if (type != MSG_LEADER)
		w->others++;
}

static int wp_up_cond(void *arg)
{
	return ((struct watcher_peer *)arg)->up;
}

static int wp_count_cond(void *arg)
{
	struct watcher_peer *w = arg;

	return json_object_array_length(w->written) >= 2;
}

/*
 * The answers to creates of VMs and revisions go to the peers named vmpool-watcher, after the
 * RESULT, as WRITTEN {kind, obj}; an AlreadyExists and a patch send nothing, and a peer
 * with another name (the planner here) gets none.
 */
static void test_api_written(struct planner *p, const char *sock)
{
	static const int accept[] = {MSG_WRITTEN, MSG_LEADER, 0};
	static const struct link_spec spec = {LINK_ACTUATOR, accept, 0};
	static const struct link_cb cb = {wp_up, wp_frame, NULL};
	struct watcher_peer w = {NULL, 0, json_object_new_array(), 0};
	/* an AlreadyExists and a patch send nothing; the creates do, in their order */
	static const struct {
		long long id;
		const char *action, *reason, *what;
	} acts[] = {
	    {250,
	        "{\"id\":250,\"op\":\"create_vm\",\"namespace\":\"ns\",\"name\":\"taken\","
	        "\"body\":" VMOBJ("taken") "}",
	        "AlreadyExists", "create of a taken name"},
	    {251,
	        "{\"id\":251,\"op\":\"patch_vm\",\"namespace\":\"ns\",\"name\":\"w-vm\","
	        "\"patch\":" JPATCH "}",
	        NULL, "patch_vm"},
	    {252,
	        "{\"id\":252,\"op\":\"create_vm\",\"namespace\":\"ns\",\"name\":\"w-vm\","
	        "\"body\":" VMOBJ("w-vm") "}",
	        NULL, "create_vm"},
	    {253,
	        "{\"id\":253,\"op\":\"create_rev\",\"namespace\":\"ns\",\"name\":\"w-rev\","
	        "\"body\":" REVOBJ("w-rev") "}",
	        NULL, "create_rev"},
	};
	json_object *r, *a, *b;
	int downs = p->downs;
	size_t i;

	log_init(PROG_WATCHER, 0, LOG_FMT_TEXT); /* the name our HELLO carries */
	w.link = link_connect(base, sock, &spec, &cb, &w);
	STAGEKIT_CHECK(wait_cond(wp_up_cond, &w, 10), "watcher peer up");
	log_init("test_actuator", 0, LOG_FMT_TEXT);
	for (i = 0; i < sizeof acts / sizeof acts[0]; i++) {
		r = act(p, acts[i].id, acts[i].action);
		STAGEKIT_CHECK(result_is(r, 1, acts[i].reason), "%s: done", acts[i].what);
	}
	STAGEKIT_CHECK(wait_cond(wp_count_cond, &w, 5), "two WRITTEN frames (%zu)",
	    json_object_array_length(w.written));
	a = json_object_array_get_idx(w.written, 0);
	b = json_object_array_get_idx(w.written, 1);
	STAGEKIT_CHECK(json_object_array_length(w.written) == 2 &&
	                   strcmp(obj_str(a, "kind") ?: "", KIND_VM) == 0 &&
	                   strcmp(obj_str(a, "obj.metadata.name") ?: "", "w-vm") == 0 &&
	                   strcmp(obj_str(a, "obj.metadata.resourceVersion") ?: "", "42") == 0 &&
	                   strcmp(obj_str(b, "kind") ?: "", KIND_REV) == 0 &&
	                   strcmp(obj_str(b, "obj.metadata.name") ?: "", "w-rev") == 0 &&
	                   w.others == 0,
	    "WRITTEN: the created VM, then the revision, as answered; nothing else (%s)",
	    obj_json(w.written));
	STAGEKIT_CHECK(p->up && p->downs == downs,
	    "the planner peer, not named vmpool-watcher, got no WRITTEN (its link would close)");
	link_free(w.link);
	json_object_put(w.written);
}

static void test_api(const char *bin, const char *tmp)
{
	char kc[1300], logp[1300], rundir[1300], *sock;
	char *argv[] = {(char *)bin, "--run-dir", rundir, "--kubeconfig", kc, NULL};
	struct planner p;
	pid_t pid;
	size_t i;
	int port = stagekit_free_port(), rc;

	snprintf(kc, sizeof kc, "%s/kubeconfig", tmp);
	snprintf(logp, sizeof logp, "%s/actuator-api.log", tmp);
	snprintf(rundir, sizeof rundir, "%s/run-api", tmp);
	stagekit_write_kubeconfig(kc, port, TOKEN, NULL);
	STAGEKIT_CHECK(api_listen(port) == 0, "fake API listens on %d", port);
	pid = stagekit_spawn(bin, argv, logp);
	sock = link_sock_path(rundir, LINK_ACTUATOR);
	planner_open(&p, sock);
	STAGEKIT_CHECK(wait_up(&p, 10), "planner link up (API actuator)");
	for (i = 0; i < sizeof api_cases / sizeof api_cases[0]; i++)
		STAGEKIT_CHECK(api_case_run(&p, &api_cases[i]), "API case %lld", api_cases[i].id);
	test_api_update_vm(&p);
	test_api_refused(&p);
	test_api_fail_event(&p);
	test_api_correlation(&p);
	test_api_unfinalize(&p);
	test_api_event_rejected(&p, logp);
	test_api_written(&p, sock);

	kill(pid, SIGTERM);
	rc = wait_exit(pid, 10);
	STAGEKIT_CHECK(rc == 0, "API actuator: SIGTERM exits 0 (got %d)", rc);
	if (stagekit_failed > 0)
		fprintf(stderr, "actuator log kept: %s\n", logp);
	else
		unlink(logp);
	planner_close(&p);
	evhttp_free(api_http);
	json_object_put(api_reqs);
	unlink(kc);
	rmdir(rundir);
	free(sock);
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
	STAGEKIT_CHECK(wait_up(&p, 10), "planner link up");

	test_good_actions(&p);
	test_bad_actions(&p);
	STAGEKIT_CHECK(garbage_closed(sock), "garbage frame closes the raw link");
	STAGEKIT_CHECK(kill(pid, 0) == 0 && waitpid(pid, NULL, WNOHANG) == 0, "actuator alive");
	r = act(&p, 30, "{\"id\":30,\"op\":\"delete_vm\",\"namespace\":\"ns\",\"name\":\"x\"}");
	STAGEKIT_CHECK(result_is(r, 1, NULL), "planner link still works after garbage");
	test_two_planners(&p, sock);

	/* reconnect: drop our link, the client reconnects by itself */
	link_close(p.link, "test");
	STAGEKIT_CHECK(wait_up(&p, 10), "planner link reconnects");
	r = act(&p, 31,
	    "{\"id\":31,\"op\":\"patch_vm\",\"namespace\":\"ns\",\"name\":\"x\","
	    "\"patch\":[{\"op\":\"test\",\"path\":\"/a\",\"value\":1}]}");
	STAGEKIT_CHECK(result_is(r, 1, NULL), "actions work after reconnect");

	kill(pid, SIGTERM);
	rc = wait_exit(pid, 10);
	STAGEKIT_CHECK(rc == 0, "SIGTERM exits 0 (got %d)", rc);
	planner_close(&p);
	rmdir(rundir);

	test_api(bin, tmpl);

	event_base_free(base);
	free(sock);
	if (stagekit_failed == 0)
		rmdir(tmpl);
	return stagekit_summary("test_actuator");
}

/*
 * test_status.c: stage test of vmpool-status as a black box. This process plays the API
 * server (libevent evhttp on 127.0.0.1, plain http, bearer token) that records every
 * request and keeps the server's copy of each pool (a JSON patch of .../status is applied
 * as kube-apiserver does: its test ops are preconditions answered 422 when they fail, only
 * the status of the result is kept, resourceVersion bumped when it changed), a fake watcher
 * (a pub on watcher.sock) and a fake planner (a pub on planner.sock). The watcher publishes
 * the API's copy of a pool after each write, as the real one would.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <json-c/json.h>

#include "link.h"
#include "log.h"
#include "obj.h"
#include "proto.h"
#include "timeutil.h"
#include "../support/stagekit.h"

#define TS_TOKEN "ts-secret-token"
#define NS       "ns1"
#define PUID     "uid-pool-p"
#define QUID     "uid-pool-q"
#define QUID2    "uid-pool-q-recreated"
#define POOLS    "/apis/pool.kubevirt.io/v1beta1/namespaces/" NS "/virtualmachinepools/"
#define ST_P     POOLS "p/status"
#define ST_Q     POOLS "q/status"
#define ST_ANY   "*/status" /* a path pattern: any status write */
#define EV_PATH  "/api/v1/namespaces/" NS "/events"
#define JP_TYPE  "application/json-patch+json"

struct ctx {
	struct event_base *base;
	struct evhttp *http;
	long rv;
	json_object *pools; /* "ns/name" -> the API server's copy */
	json_object *reqs;  /* [{method, path, body, code}] every request seen */
	int conflicts;      /* answer the next N status PATCHes with 409 */
	int hold;           /* never answer status PATCHes (a hanging API server) */
	int hold_events;    /* never answer Event POSTs */
	int refused;        /* status PATCHes whose test op (uid precondition) failed */
	int unauthorized;

	char dir[256], *wpath, *ppath, log[300];
	struct pub *watcher, *planner;
	json_object *objs;    /* "kind/name" -> {kind, obj}: the fake watcher's picture */
	json_object *results; /* "ns/name" -> POOL_RESULT body */
	int wsnaps, psnaps;   /* snapshots sent (one per new subscriber) */
	int bad_in_psnap;     /* the planner's snapshot starts with a malformed POOL_RESULT */

	pid_t child;
	int child_status;
};

static struct ctx C;

static json_object *parse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static json_object *parse(const char *fmt, ...)
{
	char buf[4096];
	json_object *o;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if ((o = json_tokener_parse(buf)) == NULL) {
		fprintf(stderr, "test_status: bad JSON in the test: %s\n", buf);
		abort();
	}
	return o;
}

static void stamp(json_object *obj)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%ld", ++C.rv);
	json_object_object_add(json_object_object_get(obj, "metadata"), "resourceVersion",
	    json_object_new_string(buf));
}

/* ---- the fake API server ---- */

static void api_reply(struct evhttp_request *req, int code, json_object *body)
{
	struct evbuffer *b = evbuffer_new();

	evbuffer_add_printf(b, "%s", json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN));
	evhttp_add_header(
	    evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evhttp_send_reply(req, code, code < 300 ? "OK" : "Error", b);
	evbuffer_free(b);
}

static int api_status(struct evhttp_request *req, int code, const char *reason, const char *msg)
{
	json_object *s = parse("{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
	                       "\"reason\":\"%s\",\"message\":\"%s\",\"code\":%d}",
	    reason, msg, code);

	api_reply(req, code, s);
	json_object_put(s);
	return code;
}

/* one JSON patch op on object members: test, add or replace; 0, -1 failed test, -2 bad op */
static int jp_op(json_object *doc, json_object *op)
{
	const char *o = obj_str(op, "op") ?: "", *ptr = obj_str(op, "path") ?: "";
	json_object *val = obj_path(op, "value"), *parent = doc;
	char dotted[256], *last, *c;

	if (ptr[0] != '/' || strlen(ptr) >= sizeof(dotted) ||
	    !json_object_object_get_ex(op, "value", NULL))
		return -2;
	snprintf(dotted, sizeof(dotted), "%s", ptr + 1);
	for (c = dotted; *c != '\0'; c++)
		*c = *c == '/' ? '.' : *c;
	if (strcmp(o, "test") == 0)
		return obj_equal(obj_path(doc, dotted), val) ? 0 : -1;
	if ((last = strrchr(dotted, '.')) != NULL) {
		*last++ = '\0';
		parent = obj_path(doc, dotted);
	} else
		last = dotted;
	if (parent == NULL || !json_object_is_type(parent, json_type_object) ||
	    (strcmp(o, "add") != 0 && strcmp(o, "replace") != 0) ||
	    (strcmp(o, "replace") == 0 && !json_object_object_get_ex(parent, last, NULL)))
		return -2;
	json_object_object_add(parent, last, obj_copy(val));
	return 0;
}

/* PATCH .../virtualmachinepools/NAME/status (JSON patch): only the status of the result is
 * kept, as for a custom resource's status subresource; rv bumped only when it changed */
static int api_patch_status(
    struct evhttp_request *req, const char *path, const char *ctype, json_object *body)
{
	char ns[64], name[64], key[140];
	json_object *cur, *n;
	size_t i;
	int r = 0;

	if (sscanf(path,
	        "/apis/pool.kubevirt.io/v1beta1/namespaces/%63[^/]/virtualmachinepools/"
	        "%63[^/]/status",
	        ns, name) != 2 ||
	    !json_object_is_type(body, json_type_array))
		return api_status(req, 400, "BadRequest", "bad status path or body");
	if (ctype == NULL || strcmp(ctype, JP_TYPE) != 0)
		return api_status(req, 415, "UnsupportedMediaType", "not a JSON patch");
	snprintf(key, sizeof(key), "%s/%s", ns, name);
	if (!json_object_object_get_ex(C.pools, key, &cur))
		return api_status(req, 404, "NotFound", "pool not found");
	if (C.hold)
		return 0; /* no answer; evhttp_free() drops the request at the end */
	if (C.conflicts > 0) {
		C.conflicts--;
		stamp(cur); /* somebody else wrote it meanwhile */
		return api_status(req, 409, "Conflict", "the object has been modified");
	}
	n = obj_copy(cur);
	for (i = 0; r == 0 && i < json_object_array_length(body); i++)
		r = jp_op(n, json_object_array_get_idx(body, i));
	if (r != 0) {
		json_object_put(n);
		C.refused += r == -1;
		return r == -1 ? api_status(req, 422, "Invalid", "the server rejected our request")
		               : api_status(req, 400, "BadRequest", "bad JSON patch op");
	}
	json_object_object_add(n, "metadata", obj_copy(obj_path(cur, "metadata")));
	json_object_object_add(n, "spec", obj_copy(obj_path(cur, "spec")));
	if (!obj_equal(n, cur)) {
		stamp(n);
		json_object_object_add(C.pools, key, n);
		cur = n;
	} else
		json_object_put(n);
	api_reply(req, 200, cur);
	return 200;
}

static int api_event(struct evhttp_request *req, json_object *body, int code)
{
	json_object *e;

	if (body == NULL || obj_path(body, "metadata") == NULL)
		return api_status(req, 400, "BadRequest", "no event body");
	e = obj_copy(body);
	stamp(e);
	api_reply(req, code, e);
	json_object_put(e);
	return code;
}

static int api_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);

	return a >= b && strcmp(s + a - b, suf) == 0;
}

static int api_route(
    struct evhttp_request *req, const char *method, const char *path, json_object *body)
{
	const char *auth =
	    evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");

	if (auth == NULL || strcmp(auth, "Bearer " TS_TOKEN) != 0) {
		C.unauthorized++;
		return api_status(req, 401, "Unauthorized", "Unauthorized");
	}
	if (strcmp(method, "PATCH") == 0 && api_suffix(path, "/status"))
		return api_patch_status(req, path,
		    evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type"),
		    body);
	if (strcmp(method, "POST") == 0 && api_suffix(path, "/events"))
		return C.hold_events ? 0 : api_event(req, body, 201);
	if (strcmp(method, "PATCH") == 0 && strstr(path, "/events/") != NULL)
		return C.hold_events ? 0 : api_event(req, body, 200);
	return api_status(req, 404, "NotFound", "the server could not find the resource");
}

static void api_handle(struct evhttp_request *req, void *arg)
{
	json_object *rec = stagekit_http_record(req);
	int code =
	    api_route(req, obj_str(rec, "method"), obj_str(rec, "path"), obj_path(rec, "body"));

	json_object_object_add(rec, "code", json_object_new_int(code));
	json_object_array_add(C.reqs, rec);
}

static int api_listen(int port)
{
	return stagekit_http_serve(C.base, port, api_handle, &C.http);
}

/* the API's current copy of a pool (borrowed) */
static json_object *api_pool(const char *name)
{
	char key[140];

	snprintf(key, sizeof(key), NS "/%s", name);
	return json_object_object_get(C.pools, key);
}

/* path pattern: NULL any, "*SUFFIX" any path ending so, "PREFIX*" any path starting so */
static int path_match(const char *path, const char *want)
{
	size_t n = want != NULL ? strlen(want) : 0;

	if (want == NULL)
		return 1;
	if (want[0] == '*')
		return api_suffix(path, want + 1);
	if (n > 0 && want[n - 1] == '*')
		return strncmp(path, want, n - 1) == 0;
	return strcmp(path, want) == 0;
}

/* number of requests so far with this method and path pattern */
static int nreq(const char *method, const char *path)
{
	size_t i, n = json_object_array_length(C.reqs);
	json_object *r;
	int c = 0;

	for (i = 0; i < n; i++) {
		r = json_object_array_get_idx(C.reqs, i);
		if (strcmp(obj_str(r, "method"), method) == 0 &&
		    path_match(obj_str(r, "path"), path))
			c++;
	}
	return c;
}

/* the idx-th (from 0) such request, or NULL */
static json_object *req_at(const char *method, const char *path, int idx)
{
	size_t i, n = json_object_array_length(C.reqs);
	json_object *r;

	for (i = 0; i < n; i++) {
		r = json_object_array_get_idx(C.reqs, i);
		if (strcmp(obj_str(r, "method"), method) == 0 &&
		    path_match(obj_str(r, "path"), path) && idx-- == 0)
			return r;
	}
	return NULL;
}

/* ---- the fake watcher and planner ---- */

static void watcher_snapshot(struct link *l, void *arg)
{
	json_object *e = json_object_new_object();

	C.wsnaps++;
	link_send(l, MSG_SYNC_BEGIN, e);
	json_object_object_foreach(C.objs, key, b)
	{
		(void)key;
		link_send(l, MSG_OBJ_SET, b);
	}
	link_send(l, MSG_SYNC_END, e);
	json_object_put(e);
}

static void planner_snapshot(struct link *l, void *arg)
{
	json_object *e = json_object_new_object();

	C.psnaps++;
	link_send(l, MSG_PSYNC_BEGIN, e);
	if (C.bad_in_psnap) {
		json_object *bad =
		    parse("{\"namespace\":\"" NS "\",\"name\":\"q\",\"uid\":\"" QUID "\","
		          "\"ok\":false,\"reason\":\"no message\"}");

		link_send(l, MSG_POOL_RESULT, bad);
		json_object_put(bad);
	}
	json_object_object_foreach(C.results, key, b)
	{
		(void)key;
		link_send(l, MSG_POOL_RESULT, b);
	}
	link_send(l, MSG_PSYNC_END, e);
	json_object_put(e);
}

static const int accept_none[] = {0};
static const struct link_spec watcher_spec = {LINK_WATCHER, accept_none, 0};
static const struct link_spec planner_spec = {LINK_PLANNER, accept_none, 0};

static struct pub *pub_start(
    const char *path, const struct link_spec *spec, void (*snap)(struct link *, void *))
{
	struct pub *p;

	if ((p = pub_new(C.base, path, spec, snap, NULL)) == NULL) {
		fprintf(stderr, "test_status: cannot listen on %s\n", path);
		exit(1);
	}
	pub_set_ready(p, 1);
	return p;
}

/* the watcher's picture: sets (taking obj) and publishes */
static void wset(const char *kind, json_object *obj)
{
	json_object *b = json_object_new_object();
	char key[200];

	snprintf(key, sizeof(key), "%s/%s", kind, obj_name(obj));
	json_object_object_add(b, "kind", json_object_new_string(kind));
	json_object_object_add(b, "obj", obj);
	json_object_object_add(C.objs, key, json_object_get(b));
	if (C.watcher != NULL)
		pub_broadcast(C.watcher, MSG_OBJ_SET, b);
	json_object_put(b);
}

/* the watcher publishes the API's current copy of the pool */
static void wpool(const char *name)
{
	wset(KIND_POOL, obj_copy(api_pool(name)));
}

/* the watcher's copy of a VM (borrowed) */
static json_object *wvm(const char *name)
{
	char key[200];

	snprintf(key, sizeof(key), KIND_VM "/%s", name);
	return obj_path(json_object_object_get(C.objs, key), "obj");
}

/* the API changes the pool (spec.paused, a label...): new rv, then the watcher sends it */
static void api_pool_edit(const char *name, const char *field, json_object *val)
{
	json_object *p = api_pool(name);

	json_object_object_add(json_object_object_get(p, "spec"), field, val);
	stamp(p);
	wpool(name);
}

static void presult(int ok, const char *reason, const char *msg)
{
	json_object *b = parse("{\"namespace\":\"" NS "\",\"name\":\"p\",\"uid\":\"" PUID "\","
	                       "\"ok\":%s,\"reason\":\"%s\",\"message\":\"%s\"}",
	    ok ? "true" : "false", reason, msg);

	json_object_object_add(C.results, NS "/p", json_object_get(b));
	pub_broadcast(C.planner, MSG_POOL_RESULT, b);
	json_object_put(b);
}

/* ---- objects ---- */

static json_object *mkpool(const char *name, const char *uid, int replicas, const char *app)
{
	json_object *p =
	    parse("{\"apiVersion\":\"pool.kubevirt.io/v1beta1\",\"kind\":\"VirtualMachinePool\","
	          "\"metadata\":{\"name\":\"%s\",\"namespace\":\"" NS "\",\"uid\":\"%s\","
	          "\"generation\":1},"
	          "\"spec\":{\"replicas\":%d,\"selector\":{\"matchLabels\":{\"app\":\"%s\"}},"
	          "\"virtualMachineTemplate\":{\"metadata\":{\"labels\":{\"app\":\"%s\"}},"
	          "\"spec\":{\"template\":{\"spec\":{\"domain\":{}}}}}}}",
	        name, uid, replicas, app, app);

	stamp(p);
	return p;
}

/* a VM; owner NULL for an orphan; ready -1 for no conditions */
static json_object *mkvm(const char *name, const char *owner, const char *ouid, int ready)
{
	char refs[400] = "", conds[200] = "";
	json_object *v;

	if (owner != NULL)
		snprintf(refs, sizeof(refs),
		    ",\"ownerReferences\":[{\"apiVersion\":\"pool.kubevirt.io/v1beta1\","
		    "\"kind\":\"VirtualMachinePool\",\"name\":\"%s\",\"uid\":\"%s\","
		    "\"controller\":true,\"blockOwnerDeletion\":true}]",
		    owner, ouid);
	if (ready >= 0)
		snprintf(conds, sizeof(conds),
		    ",\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"%s\"}]}",
		    ready ? "True" : "False");
	v = parse("{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\","
	          "\"metadata\":{\"name\":\"%s\",\"namespace\":\"" NS "\",\"uid\":\"uid-%s\","
	          "\"labels\":{\"app\":\"x\"}%s},\"spec\":{\"running\":true}%s}",
	    name, name, refs, conds);
	stamp(v);
	return v;
}

/* the watcher sees a VM's Ready condition change */
static void vm_ready(const char *name, int ready)
{
	json_object *v = obj_copy(wvm(name));

	json_object_object_add(v, "status",
	    parse("{\"conditions\":[{\"type\":\"Ready\",\"status\":\"%s\"}]}",
	        ready ? "True" : "False"));
	stamp(v);
	wset(KIND_VM, v);
}

/* ---- the loop and the child ---- */

static void tick(evutil_socket_t fd, short ev, void *arg)
{
}

static int child_alive(void)
{
	return stagekit_child_alive(&C.child, &C.child_status);
}

/* runs the loop until cond() holds or secs pass */
static int wait_for(int (*cond)(void *), void *arg, double secs)
{
	return stagekit_wait(C.base, &C.child, &C.child_status, cond, arg, secs);
}

static int never(void *arg)
{
	return 0;
}

static void run(double secs)
{
	wait_for(never, NULL, secs);
}

struct reqwait {
	const char *method, *path;
	int idx;
};

static int req_cond(void *arg)
{
	struct reqwait *w = arg;

	return req_at(w->method, w->path, w->idx) != NULL;
}

/* waits for the idx-th request with method and path; returns it or NULL */
static json_object *wait_req(const char *method, const char *path, int idx, double secs)
{
	struct reqwait w = {method, path, idx};

	wait_for(req_cond, &w, secs);
	return req_at(method, path, idx);
}

struct atleast {
	const int *val;
	int min;
};

static int atleast_cond(void *arg)
{
	struct atleast *a = arg;

	return *a->val >= a->min;
}

static pid_t spawn(char *const argv[], const char *logpath)
{
	return stagekit_spawn(argv[0], argv, logpath);
}

static int log_has(const char *needle)
{
	FILE *f = fopen(C.log, "r");
	char line[2048];
	int found = 0;

	if (f == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

/* ---- expectations ---- */

/* the status a status PATCH writes: the value of its add /status op (borrowed), or NULL */
static json_object *patch_status(json_object *r)
{
	json_object *ops = obj_path(r, "body"), *op;
	size_t i;

	if (ops == NULL || !json_object_is_type(ops, json_type_array))
		return NULL;
	for (i = 0; i < json_object_array_length(ops); i++) {
		op = json_object_array_get_idx(ops, i);
		if (strcmp(obj_str(op, "op") ?: "", "add") == 0 &&
		    strcmp(obj_str(op, "path") ?: "", "/status") == 0)
			return obj_path(op, "value");
	}
	return NULL;
}

/* 1 if r is a JSON patch of exactly [test /metadata/uid == uid, add /status] */
static int patch_form(json_object *r, const char *uid)
{
	json_object *ops = obj_path(r, "body"), *t;

	if (r == NULL || strcmp(obj_str(r, "ctype") ?: "", JP_TYPE) != 0 || ops == NULL ||
	    !json_object_is_type(ops, json_type_array) || json_object_array_length(ops) != 2)
		return 0;
	t = json_object_array_get_idx(ops, 0);
	return strcmp(obj_str(t, "op") ?: "", "test") == 0 &&
	       strcmp(obj_str(t, "path") ?: "", "/metadata/uid") == 0 &&
	       strcmp(obj_str(t, "value") ?: "", uid) == 0 && patch_status(r) != NULL &&
	       strstr(obj_json(ops), "resourceVersion") == NULL;
}

/* waits for the n-th status PATCH of this path, checks its form and status (no conditions) */
static json_object *expect_patch_of(
    const char *path, const char *uid, int n, const char *what, const char *want_fmt, ...)
{
	json_object *r = wait_req("PATCH", path, n, 5), *st, *want;
	char buf[1024];
	va_list ap;
	int ok;

	va_start(ap, want_fmt);
	vsnprintf(buf, sizeof(buf), want_fmt, ap);
	va_end(ap);
	if (r == NULL) {
		stagekit_check(0, "%s: a PATCH to %s (none came)", what, path);
		return NULL;
	}
	ok = patch_form(r, uid);
	stagekit_check(ok, "%s: a JSON patch [test uid %s, add /status]%s%s %s", what, uid,
	    ok ? "" : " (got ", ok ? "" : obj_str(r, "ctype"),
	    ok ? "" : obj_json(obj_path(r, "body")));
	st = obj_copy(patch_status(r));
	if (st != NULL) /* compared apart: they hold a timestamp */
		json_object_object_del(st, "conditions");
	want = json_tokener_parse(buf);
	stagekit_check(obj_equal(st, want), "%s: PATCH status %s (got %s)", what, buf,
	    patch_status(r) ? obj_json(patch_status(r)) : "none");
	json_object_put(st);
	json_object_put(want);
	return r;
}

#define expect_patch(n, what, ...) expect_patch_of(ST_P, PUID, n, what, __VA_ARGS__)

/* the conditions of a PATCH: 1 if it has exactly one, of this type, reason and message */
static int one_cond(json_object *r, const char *type, const char *reason, const char *msg)
{
	json_object *conds = obj_path(patch_status(r), "conditions"), *c;

	if (conds == NULL || !json_object_is_type(conds, json_type_array) ||
	    json_object_array_length(conds) != 1)
		return 0;
	c = json_object_array_get_idx(conds, 0);
	return strcmp(obj_str(c, "type") ?: "", type) == 0 &&
	       strcmp(obj_str(c, "status") ?: "", "True") == 0 &&
	       strcmp(obj_str(c, "reason") ?: "", reason) == 0 &&
	       (msg == NULL || strcmp(obj_str(c, "message") ?: "", msg) == 0) &&
	       obj_str(c, "lastTransitionTime") != NULL;
}

/* the PATCH has no conditions, and the API's copy neither (the whole status is replaced) */
static int no_conds(json_object *r)
{
	return r != NULL && patch_status(r) != NULL &&
	       !json_object_object_get_ex(patch_status(r), "conditions", NULL) &&
	       obj_path(api_pool("p"), "status.conditions") == NULL;
}

/* runs secs and checks no status write at all happened (n = status PATCHes before) */
static void expect_quiet(int n, double secs, const char *what)
{
	run(secs);
	stagekit_check(nreq("PATCH", ST_ANY) == n, "%s: no further status PATCH within %.1f s (%d)",
	    what, secs, nreq("PATCH", ST_ANY) - n);
}

/* ---- the scenario ---- */

static void seed(void)
{
	json_object *q;

	json_object_object_add(C.pools, NS "/p", mkpool("p", PUID, 3, "x"));
	q = mkpool("q", QUID, 1, "y");
	json_object_object_add(q, "status", parse("{\"replicas\":1,\"labelSelector\":\"app=y\"}"));
	json_object_object_add(C.pools, NS "/q", q);
	wpool("p");
	wpool("q");
	wset(KIND_VM, mkvm("p-a", "p", PUID, 1));
	wset(KIND_VM, mkvm("p-b", "p", PUID, 1));
	wset(KIND_VM, mkvm("p-c", "p", PUID, 0));
	wset(KIND_VM, mkvm("q-a", "q", QUID, -1));
	wset(KIND_VM, mkvm("orphan", NULL, NULL, 1));
	/* owned by a pool named p but of another uid (an older pool of the same name) */
	wset(KIND_VM, mkvm("p-old", "p", "uid-old-p", 1));
}

static void step1_first_write(void)
{
	json_object *r = expect_patch(0, "1 (initial)",
	    "{\"replicas\":3,\"readyReplicas\":2,"
	    "\"labelSelector\":\"app=x\"}");

	stagekit_check(no_conds(r), "1: no conditions key in the written status");
	stagekit_check(r != NULL && json_object_get_int(obj_path(r, "code")) == 200 &&
	                   obj_equal(obj_path(api_pool("p"), "status"), patch_status(r)),
	    "1: the PATCH succeeds and the API's copy has exactly that status");
	run(0.5);
	stagekit_check(nreq("PATCH", ST_ANY) == 1 && nreq("PATCH", ST_P) == 1,
	    "1: exactly one status PATCH in all, none for pool q whose status is right (%d)",
	    nreq("PATCH", ST_ANY));
	stagekit_check(
	    C.unauthorized == 0, "1: bearer token sent (%d unauthorized)", C.unauthorized);
}

static void step2_no_change(void)
{
	int n = nreq("PATCH", ST_ANY);

	wpool("p");
	expect_quiet(n, 1.0, "2 (pool published with its written status)");
}

static void step3_failure(void)
{
	int n = nreq("PATCH", ST_P), all;
	json_object *r;

	presult(0, "FailedScaleOut", "error during scale out: x");
	r = expect_patch(
	    n, "3 (failure)", "{\"replicas\":3,\"readyReplicas\":2,\"labelSelector\":\"app=x\"}");
	stagekit_check(r != NULL && one_cond(r, "ReplicaFailure", "FailedScaleOut",
	                                "error during scale out: x"),
	    "3: ReplicaFailure True FailedScaleOut \"error during scale out: x\" added");
	run(0.3);
	stagekit_check(nreq("PATCH", ST_P) == n + 1, "3: one PATCH for the failure (%d)",
	    nreq("PATCH", ST_P) - n);
	wpool("p");
	all = nreq("PATCH", ST_ANY);
	presult(0, "FailedScaleOut", "error during scale out: another");
	expect_quiet(all, 1.0, "3 (a second failure keeps the condition as is)");
	presult(1, "", "");
	r = expect_patch(n + 1, "3 (success)",
	    "{\"replicas\":3,\"readyReplicas\":2,\"labelSelector\":\"app=x\"}");
	stagekit_check(no_conds(r), "3: ok=true removes the ReplicaFailure condition");
	wpool("p");
}

static void step4_readiness(void)
{
	int n = nreq("PATCH", ST_P), all;
	json_object *v;

	vm_ready("p-c", 1);
	expect_patch(
	    n, "4 (p-c Ready)", "{\"replicas\":3,\"readyReplicas\":3,\"labelSelector\":\"app=x\"}");
	wpool("p");
	all = nreq("PATCH", ST_ANY);
	v = obj_copy(wvm("p-a"));
	json_object_object_add(json_object_object_get(v, "metadata"), "deletionTimestamp",
	    json_object_new_string("2024-01-01T00:00:00Z"));
	stamp(v);
	wset(KIND_VM, v);
	expect_quiet(all, 0.7, "4 (a VM gets a deletionTimestamp)");
	vm_ready("p-a", 0);
	expect_patch(n + 1, "4 (the terminating VM is not Ready but still counts)",
	    "{\"replicas\":3,\"readyReplicas\":2,\"labelSelector\":\"app=x\"}");
	wpool("p");
}

static void step5_paused(void)
{
	int n = nreq("PATCH", ST_P), e = nreq("POST", EV_PATH);
	json_object *r, *ev;

	api_pool_edit("p", "paused", json_object_new_boolean(1));
	r = expect_patch(
	    n, "5 (paused)", "{\"replicas\":3,\"readyReplicas\":2,\"labelSelector\":\"app=x\"}");
	stagekit_check(r != NULL && one_cond(r, "ReplicaPaused", "SuccessfulPaused", NULL),
	    "5: ReplicaPaused True SuccessfulPaused added");
	ev = wait_req("POST", EV_PATH, e, 5);
	stagekit_check(ev != NULL &&
	                   strcmp(obj_str(ev, "body.reason") ?: "", "SuccessfulPaused") == 0 &&
	                   strcmp(obj_str(ev, "body.involvedObject.name") ?: "", "p") == 0 &&
	                   strcmp(obj_str(ev, "body.involvedObject.uid") ?: "", PUID) == 0 &&
	                   strcmp(obj_str(ev, "body.type") ?: "", "Normal") == 0,
	    "5: an Event SuccessfulPaused about pool p is POSTed to %s", EV_PATH);
	wpool("p");
	api_pool_edit("p", "paused", json_object_new_boolean(0));
	r = expect_patch(n + 1, "5 (resumed)",
	    "{\"replicas\":3,\"readyReplicas\":2,\"labelSelector\":\"app=x\"}");
	stagekit_check(no_conds(r), "5: unpausing removes ReplicaPaused");
	ev = wait_req("POST", EV_PATH, e + 1, 5);
	stagekit_check(
	    ev != NULL && strcmp(obj_str(ev, "body.reason") ?: "", "SuccessfulResume") == 0,
	    "5: an Event SuccessfulResume is POSTed");
	wpool("p");
}

static void step6_conflict(void)
{
	int n = nreq("PATCH", ST_P);
	json_object *r;

	C.conflicts = 1;
	vm_ready("p-a", 1);
	r = wait_req("PATCH", ST_P, n, 5);
	stagekit_check(r != NULL && json_object_get_int(obj_path(r, "code")) == 409,
	    "6: the PATCH is answered 409 (forced)");
	run(0.3);
	stagekit_check(child_alive(), "6: vmpool-status survives a 409");
	stagekit_check(nreq("PATCH", ST_P) == n + 1,
	    "6: no blind rewrite of the same copy right away (%d)", nreq("PATCH", ST_P) - n);
	wpool("p"); /* the newer copy (bumped by the conflicting writer) */
	r = expect_patch(n + 1, "6 (after the newer copy)",
	    "{\"replicas\":3,\"readyReplicas\":3,\"labelSelector\":\"app=x\"}");
	stagekit_check(r != NULL && json_object_get_int(obj_path(r, "code")) == 200,
	    "6: the write over the newer copy succeeds (code %d)",
	    r ? json_object_get_int(obj_path(r, "code")) : 0);
	wpool("p");
}

/* pool q is deleted and created again with a new uid; the watcher still shows the old one */
static void step6_recreated(void)
{
	int n = nreq("PATCH", ST_Q), refused = C.refused;
	json_object *r, *want = parse("{\"labelSelector\":\"app=y\"}");

	json_object_object_add(C.pools, NS "/q", mkpool("q", QUID2, 1, "y"));
	vm_ready("q-a", 1); /* the old q's VM: a write meant for the old q */
	r = expect_patch_of(ST_Q, QUID, n, "6 (old q)",
	    "{\"replicas\":1,\"readyReplicas\":1,\"labelSelector\":\"app=y\"}");
	stagekit_check(r != NULL && json_object_get_int(obj_path(r, "code")) == 422 &&
	                   C.refused == refused + 1 && obj_path(api_pool("q"), "status") == NULL,
	    "6: the uid precondition refuses it (422), the new q is untouched");
	run(0.3);
	stagekit_check(child_alive(), "6: vmpool-status survives a 422");
	stagekit_check(nreq("PATCH", ST_Q) == n + 1, "6: no blind rewrite for the old q (%d)",
	    nreq("PATCH", ST_Q) - n);
	wpool("q"); /* the watcher sees the new q: it owns no VM */
	r = expect_patch_of(ST_Q, QUID2, n + 1, "6 (new q)", "{\"labelSelector\":\"app=y\"}");
	stagekit_check(r != NULL && json_object_get_int(obj_path(r, "code")) == 200 &&
	                   obj_equal(obj_path(api_pool("q"), "status"), want),
	    "6: the new q gets its own status");
	wpool("q");
	json_object_put(want);
}

/* the API does not serve pool q for a moment (404, as a restarted API server answers for
 * custom resources until it has loaded their CRDs): the write is tried again and lands */
static void step6b_not_served(void)
{
	int n = nreq("PATCH", ST_Q);
	json_object *q = json_object_get(api_pool("q")), *r;

	json_object_object_del(C.pools, NS "/q");
	wset(KIND_VM, mkvm("q-n", "q", QUID2, 1));
	r = expect_patch_of(ST_Q, QUID2, n, "6b (not served)",
	    "{\"replicas\":1,\"readyReplicas\":1,\"labelSelector\":\"app=y\"}");
	stagekit_check(r != NULL && json_object_get_int(obj_path(r, "code")) == 404,
	    "6b: 404 while the API does not serve the pool");
	json_object_object_add(C.pools, NS "/q", q);
	r = expect_patch_of(ST_Q, QUID2, n + 1, "6b (served again)",
	    "{\"replicas\":1,\"readyReplicas\":1,\"labelSelector\":\"app=y\"}");
	stagekit_check(r != NULL && json_object_get_int(obj_path(r, "code")) == 200 &&
	                   obj_path(api_pool("q"), "status.replicas") != NULL,
	    "6b: the write is tried again after its backoff and lands");
}

static void step7_bad_frame(void)
{
	struct atleast want = {&C.wsnaps, C.wsnaps + 1};
	json_object *body = parse("{\"id\":1,\"op\":\"create_vm\"}");
	int n, all, ok;

	pub_broadcast(C.watcher, MSG_ACTION, body);
	json_object_put(body);
	ok = wait_for(atleast_cond, &want, 5);
	stagekit_check(ok, "7: status reconnects after a bad frame (%d snapshots)", C.wsnaps);
	stagekit_check(log_has("unexpected frame ACTION"), "7: the bad frame is logged");
	all = nreq("PATCH", ST_ANY);
	run(0.5);
	stagekit_check(child_alive(), "7: vmpool-status still alive");
	stagekit_check(nreq("PATCH", ST_ANY) == all, "7: the resync alone writes nothing");
	n = nreq("PATCH", ST_P);
	vm_ready("p-c", 0);
	expect_patch(n, "7 (still correct after the reconnect)",
	    "{\"replicas\":3,\"readyReplicas\":2,\"labelSelector\":\"app=x\"}");
	wpool("p");
}

/* typed messages (common/msg.c): a POOL_RESULT with a field of the wrong type, or without
 * a required one, is logged (message, field, peer) and dropped; the stage keeps running,
 * writes nothing for it, and takes the next good one */
static void step7b_bad_bodies(void)
{
	int all = nreq("PATCH", ST_ANY), n;
	json_object *b, *r;

	b = parse("{\"namespace\":\"" NS "\",\"name\":\"p\",\"uid\":\"" PUID "\","
	          "\"ok\":\"no\",\"reason\":\"R\",\"message\":\"m\"}");
	pub_broadcast(C.planner, MSG_POOL_RESULT, b);
	json_object_put(b);
	b = parse("{\"namespace\":\"" NS "\",\"name\":\"p\",\"ok\":false,\"reason\":\"R\","
	          "\"message\":\"m\"}");
	pub_broadcast(C.planner, MSG_POOL_RESULT, b);
	json_object_put(b);
	expect_quiet(all, 1.0, "7b (bad POOL_RESULTs change nothing)");
	stagekit_check(log_has("POOL_RESULT: ok is not a boolean from "),
	    "7b: the wrongly typed field is logged with the message and the peer");
	stagekit_check(
	    log_has("POOL_RESULT: uid missing from "), "7b: the missing field is logged");
	stagekit_check(child_alive(), "7b: vmpool-status still alive");
	n = nreq("PATCH", ST_P);
	presult(0, "FailedScaleOut", "after bad frames");
	r = expect_patch(n, "7b (a good POOL_RESULT after bad ones)",
	    "{\"replicas\":3,\"readyReplicas\":2,\"labelSelector\":\"app=x\"}");
	stagekit_check(
	    r != NULL && one_cond(r, "ReplicaFailure", "FailedScaleOut", "after bad frames"),
	    "7b: the good POOL_RESULT is applied");
	wpool("p");
	presult(1, "", "");
	expect_patch(n + 1, "7b (success again)",
	    "{\"replicas\":3,\"readyReplicas\":2,\"labelSelector\":\"app=x\"}");
	wpool("p");
}

static void step8_restart(void)
{
	struct atleast want = {&C.wsnaps, 1};
	int n = nreq("PATCH", ST_P), snaps = C.wsnaps;

	pub_free(C.watcher);
	C.watcher = NULL;
	json_object_object_del(C.objs, KIND_VM "/p-b");
	run(0.3);
	C.wsnaps = 0;
	C.watcher = pub_start(C.wpath, &watcher_spec, watcher_snapshot);
	stagekit_check(
	    wait_for(atleast_cond, &want, 10), "8: status connects to the restarted watcher");
	expect_patch(n, "8 (snapshot lacking p-b)",
	    "{\"replicas\":2,\"readyReplicas\":1,\"labelSelector\":\"app=x\"}");
	wpool("p");
	run(0.3);
	stagekit_check(nreq("PATCH", ST_P) == n + 1, "8: one PATCH after the restart (%d)",
	    nreq("PATCH", ST_P) - n);
	C.wsnaps += snaps;
}

/* the number of conditions a PATCH writes */
static size_t nconds(json_object *r)
{
	json_object *conds = obj_path(patch_status(r), "conditions");

	return conds != NULL && json_object_is_type(conds, json_type_array)
	           ? json_object_array_length(conds)
	           : 0;
}

/* the planner restarts (its results go through the same subscriber as the watcher's
 * objects, common/mirror.c) */
static void planner_restart(const char *what)
{
	struct atleast want = {&C.psnaps, 1};

	pub_free(C.planner);
	C.planner = NULL;
	run(0.3);
	C.psnaps = 0;
	C.planner = pub_start(C.ppath, &planner_spec, planner_snapshot);
	stagekit_check(wait_for(atleast_cond, &want, 10),
	    "%s: status connects to the restarted planner", what);
}

/* a new planner snapshot replaces the results (a malformed POOL_RESULT in it is dropped
 * without stopping it); one that lacks p's result sweeps it: with no word from the planner
 * the Ready and Progressing conditions go and ReplicaFailure stays (statuscalc.c) */
static void step8b_planner_restart(void)
{
	static const char want[] =
	    "{\"replicas\":2,\"readyReplicas\":1,\"labelSelector\":\"app=x\"}";
	int n = nreq("PATCH", ST_P);
	json_object *r;

	json_object_object_add(C.results, NS "/p",
	    parse("{\"namespace\":\"" NS "\",\"name\":\"p\",\"uid\":\"" PUID "\","
	          "\"ok\":false,\"reason\":\"FailedScaleIn\",\"message\":\"in the new "
	          "snapshot\",\"progress\":\"\"}"));
	C.bad_in_psnap = 1;
	planner_restart("8b (a snapshot with a bad frame and p failing)");
	r = expect_patch(n, "8b (a snapshot replacing the old one)", "%s", want);
	stagekit_check(r != NULL && nconds(r) == 3,
	    "8b: the new snapshot's result is applied after a malformed one in it: "
	    "ReplicaFailure, Ready, Progressing (%zu conditions)",
	    r != NULL ? nconds(r) : 0);
	stagekit_check(log_has("POOL_RESULT: message missing from "),
	    "8b: the malformed POOL_RESULT in the snapshot is logged");
	stagekit_check(child_alive(), "8b: vmpool-status still alive");
	C.bad_in_psnap = 0;
	wpool("p");

	json_object_object_del(C.results, NS "/p");
	planner_restart("8b (a snapshot without p)");
	r = expect_patch(n + 1, "8b (p's result not in the new snapshot)", "%s", want);
	stagekit_check(
	    r != NULL && one_cond(r, "ReplicaFailure", "FailedScaleIn", "in the new snapshot"),
	    "8b: the result the new snapshot lacks is swept: Ready and Progressing go");
	wpool("p");

	presult(1, "", "");
	r = expect_patch(n + 2, "8b (success again)", "%s", want);
	stagekit_check(no_conds(r), "8b: ok=true removes the condition again");
	wpool("p");
}

/* known leak (common/k8sevent.c keeps no list of its requests in flight): ASan's leak
 * check fails the exit below, so this runs only when asked for */
static void step9_event_inflight(void)
{
	json_object *r;

	C.hold_events = 1;
	api_pool_edit("p", "paused", json_object_new_boolean(1));
	/* the same event as in step 5: aggregated, a PATCH of that Event */
	r = wait_req("PATCH", EV_PATH "/p.*", nreq("PATCH", EV_PATH "/p.*"), 5);
	stagekit_check(r != NULL && json_object_get_int(obj_path(r, "code")) == 0 &&
	                   strncmp(obj_str(r, "path"), EV_PATH "/p.", strlen(EV_PATH "/p.")) == 0,
	    "9: a second SuccessfulPaused PATCHes the Event, left unanswered by the API server");
	wpool("p");
}

static void step9_stop(void)
{
	double end = now_mono() + 10;
	int n = nreq("PATCH", ST_P);
	json_object *r;

	/* a status write and an Event are both in flight when the signal comes: nothing leaks
	 * (the ASan build would turn a leak into exit status 1) */
	step9_event_inflight();
	n = nreq("PATCH", ST_P);
	C.hold = 1;
	vm_ready("p-c", 1);
	r = wait_req("PATCH", ST_P, n, 5);
	stagekit_check(r != NULL && json_object_get_int(obj_path(r, "code")) == 0,
	    "9: a status PATCH is left unanswered by the API server");

	if (C.child <= 0) {
		stagekit_check(0, "9: vmpool-status still running before SIGTERM (status 0x%x)",
		    C.child_status);
		return;
	}
	kill(C.child, SIGTERM);
	while (child_alive() && now_mono() < end)
		event_base_loop(C.base, EVLOOP_ONCE);
	if (C.child > 0) {
		kill(C.child, SIGKILL);
		waitpid(C.child, &C.child_status, 0);
		C.child = -1;
	}
	stagekit_check(WIFEXITED(C.child_status) && WEXITSTATUS(C.child_status) == 0,
	    "9: SIGTERM: clean exit 0 (status 0x%x)", C.child_status);
}

static void show_log(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "tail -n 80 %s >&2", C.log);
	if (system(cmd) != 0)
		fprintf(stderr, "(no status log)\n");
}

int main(void)
{
	const char *bindir = getenv("VMPOOL_BIN") ? getenv("VMPOOL_BIN") : "bin-asan";
	char bin[512], kc[300], rm[300];
	struct timeval tv = {0, 20000};
	struct event *tev;
	int port;

	log_init("test_status", 0, LOG_FMT_TEXT);
	signal(SIGPIPE, SIG_IGN);
	snprintf(C.dir, sizeof(C.dir), "/tmp/ts-XXXXXX");
	if (mkdtemp(C.dir) == NULL)
		abort();
	snprintf(bin, sizeof(bin), "%s/vmpool-status", bindir);
	snprintf(kc, sizeof(kc), "%s/kubeconfig", C.dir);
	snprintf(C.log, sizeof(C.log), "%s/status.log", C.dir);
	C.wpath = link_sock_path(C.dir, LINK_WATCHER);
	C.ppath = link_sock_path(C.dir, LINK_PLANNER);
	C.base = event_base_new();
	tev = event_new(C.base, -1, EV_PERSIST, tick, NULL);
	evtimer_add(tev, &tv);
	C.rv = 1000;
	C.pools = json_object_new_object();
	C.reqs = json_object_new_array();
	C.objs = json_object_new_object();
	C.results = json_object_new_object();
	port = stagekit_free_port();
	stagekit_write_kubeconfig(kc, port, TS_TOKEN, NS);
	if (api_listen(port) != 0) {
		fprintf(stderr, "test_status: cannot listen on port %d\n", port);
		return 1;
	}
	seed();
	C.watcher = pub_start(C.wpath, &watcher_spec, watcher_snapshot);
	C.planner = pub_start(C.ppath, &planner_spec, planner_snapshot);
	{
		char *argv[] = {bin, "--run-dir", C.dir, "--kubeconfig", kc, "-v", NULL};
		C.child = spawn(argv, C.log);
	}

	step1_first_write();
	step2_no_change();
	step3_failure();
	step4_readiness();
	step5_paused();
	step6_conflict();
	step6_recreated();
	step6b_not_served();
	step7_bad_frame();
	step7b_bad_bodies();
	step8_restart();
	step8b_planner_restart();
	stagekit_check(nreq("PUT", NULL) == 0 && C.refused == 1,
	    "no PUT at all (%d), one write refused by the uid precondition (%d)", nreq("PUT", NULL),
	    C.refused);
	step9_stop();

	if (stagekit_failed)
		show_log();
	pub_free(C.watcher);
	pub_free(C.planner);
	evhttp_free(C.http);
	event_free(tev);
	event_base_free(C.base);
	json_object_put(C.pools);
	json_object_put(C.reqs);
	json_object_put(C.objs);
	json_object_put(C.results);
	free(C.wpath);
	free(C.ppath);
	if (!stagekit_failed && getenv("TS_KEEP") == NULL) {
		snprintf(rm, sizeof(rm), "rm -rf %s", C.dir);
		if (system(rm) != 0)
			fprintf(stderr, "cannot remove %s\n", C.dir);
	}
	return stagekit_summary("test_status");
}

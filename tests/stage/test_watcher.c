/*
 * test_watcher.c: stage test of vmpool-watcher against a fake API server in this process
 * (libevent evhttp on 127.0.0.1, plain http, bearer token). The fake serves paged lists
 * (pages capped below the asked limit, continue tokens, a 410 on a continue token when
 * told), chunked watch streams written over time, a 404 for VMIs and DataVolumes (missing
 * CRDs), PVCs of which only the VM-controlled ones are published (metadata only), watch
 * expiry as an ERROR 410 event or as HTTP 410, and garbage lines. Subscribers connect to
 * watcher.sock with link_connect and keep their own picture; a fake actuator listens on
 * actuator.sock and sends the watcher WRITTEN frames (the objects creates were answered with).
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <errno.h>
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
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>

#include "link.h"
#include "log.h"
#include "msg.h"
#include "proto.h"
#include "timeutil.h"
#include "../support/stagekit.h"

#define TW_TOKEN    "tw-secret-token"
#define TW_PAGE_MAX 3 /* the fake never returns more items per page than this */

/* ---- the fake API server ---- */

enum { FR_POOL, FR_VM, FR_VMI, FR_REV, FR_PVC, FR_DV, FR_N };

struct fres {
	const char *path; /* /apis/<group>/<version>/<plural> */
	const char *kind;
	const char *api;
	int missing;       /* 404 */
	int strip;         /* list items without kind/apiVersion, as for built-in types */
	json_object *objs; /* "ns/name" -> object */
	json_object *log;  /* array of watch events */
	long compacted;    /* watches from an older resourceVersion get 410 */
	int http410;       /* ...as HTTP 410 rather than an ERROR event */
	int requests;      /* every request for this resource */
};

struct fwatch {
	struct fwatch *next;
	struct evhttp_request *req;
	struct evhttp_connection *conn;
	struct fres *res;
};

struct fake {
	struct event_base *base;
	struct evhttp *http;
	int port;
	long rv;
	struct fres res[FR_N];
	struct fwatch *watches;
	int expire_continue; /* answer the next continue request with 410 */
	int list_garbage;    /* answer lists 200 with a body that is not JSON */
	int lists, pages, continues, watch_reqs, unauthorized, gone410;
};

static struct fake fk;

static void fake_reply_json(struct evhttp_request *req, int code, json_object *body)
{
	struct evbuffer *b = evbuffer_new();

	evbuffer_add_printf(b, "%s", json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN));
	evhttp_add_header(
	    evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", b);
	evbuffer_free(b);
}

static json_object *fake_status(int code, const char *reason, const char *msg)
{
	json_object *s = json_object_new_object();

	json_object_object_add(s, "kind", json_object_new_string("Status"));
	json_object_object_add(s, "apiVersion", json_object_new_string("v1"));
	json_object_object_add(s, "status", json_object_new_string("Failure"));
	json_object_object_add(s, "reason", json_object_new_string(reason));
	json_object_object_add(s, "message", json_object_new_string(msg));
	json_object_object_add(s, "code", json_object_new_int(code));
	return s;
}

static void fake_reply_status(
    struct evhttp_request *req, int code, const char *reason, const char *msg)
{
	json_object *s = fake_status(code, reason, msg);

	fake_reply_json(req, code, s);
	json_object_put(s);
}

static void fake_reply_text(struct evhttp_request *req, int code, const char *text)
{
	struct evbuffer *b = evbuffer_new();

	evbuffer_add(b, text, strlen(text));
	evhttp_add_header(
	    evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evhttp_send_reply(req, code, "OK", b);
	evbuffer_free(b);
}

static void fake_list(
    struct evhttp_request *req, struct fres *r, const char *limit_s, const char *cont)
{
	long limit = limit_s ? atol(limit_s) : 0, off = 0, i = 0, n = 0;
	json_object *body, *items, *meta;
	char buf[64];

	fk.pages++;
	if (fk.list_garbage) {
		fake_reply_text(req, 200, "{\"kind\": [[[ this is not json");
		return;
	}
	if (cont != NULL) {
		fk.continues++;
		if (fk.expire_continue) {
			fk.expire_continue = 0;
			fake_reply_status(req, 410, "Expired", "continue token too old");
			return;
		}
		off = atol(cont + 2);
	} else
		fk.lists++;
	if (limit <= 0 || limit > TW_PAGE_MAX)
		limit = TW_PAGE_MAX;
	body = json_object_new_object();
	items = json_object_new_array();
	meta = json_object_new_object();
	json_object_object_foreach(r->objs, key, val)
	{
		(void)key;
		if (i++ < off || n >= limit)
			continue;
		json_object *copy = NULL;
		json_object_deep_copy(val, &copy, NULL);
		if (r->strip) {
			json_object_object_del(copy, "kind");
			json_object_object_del(copy, "apiVersion");
		}
		json_object_array_add(items, copy);
		n++;
	}
	snprintf(buf, sizeof(buf), "%ld", fk.rv);
	json_object_object_add(meta, "resourceVersion", json_object_new_string(buf));
	if (off + n < (long)json_object_object_length(r->objs)) {
		snprintf(buf, sizeof(buf), "c:%ld", off + n);
		json_object_object_add(meta, "continue", json_object_new_string(buf));
	}
	snprintf(buf, sizeof(buf), "%sList", r->kind);
	json_object_object_add(body, "kind", json_object_new_string(buf));
	json_object_object_add(body, "apiVersion", json_object_new_string(r->api));
	json_object_object_add(body, "metadata", meta);
	json_object_object_add(body, "items", items);
	fake_reply_json(req, 200, body);
	json_object_put(body);
}

static void fake_chunk(struct evhttp_request *req, const char *text)
{
	struct evbuffer *b = evbuffer_new();

	evbuffer_add(b, text, strlen(text));
	evhttp_send_reply_chunk(req, b);
	evbuffer_free(b);
}

static void fake_chunk_event(struct evhttp_request *req, json_object *ev)
{
	char *line;

	if (asprintf(&line, "%s\n", json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN)) < 0)
		abort();
	fake_chunk(req, line);
	free(line);
}

static void fake_watch_closed(struct evhttp_connection *conn, void *arg)
{
	struct fwatch **pp, *w;

	for (pp = &fk.watches; (w = *pp) != NULL;) {
		if (w->conn == conn) {
			*pp = w->next;
			/* libevent hands a request whose client went away mid-reply back to
			 * us (no connection): ending it frees it */
			if (evhttp_request_get_connection(w->req) == NULL)
				evhttp_send_reply_end(w->req);
			free(w);
		} else
			pp = &w->next;
	}
}

static void fake_watch_end(struct fwatch *w)
{
	struct fwatch **pp;

	for (pp = &fk.watches; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	evhttp_connection_set_closecb(w->conn, NULL, NULL);
	evhttp_send_reply_end(w->req);
	free(w);
}

static void fake_watch(struct evhttp_request *req, struct fres *r, const char *rv_s)
{
	long rv = rv_s != NULL ? atol(rv_s) : 0;
	struct fwatch *w;
	json_object *ev, *st;
	size_t i, n;

	fk.watch_reqs++;
	if (rv < r->compacted && r->http410) {
		fk.gone410++;
		fake_reply_status(req, 410, "Expired", "too old resource version");
		return;
	}
	evhttp_add_header(
	    evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evhttp_send_reply_start(req, 200, "OK");
	if (rv < r->compacted) {
		fk.gone410++;
		ev = json_object_new_object();
		st = fake_status(410, "Expired", "too old resource version");
		json_object_object_add(ev, "type", json_object_new_string("ERROR"));
		json_object_object_add(ev, "object", st);
		fake_chunk_event(req, ev);
		json_object_put(ev);
		evhttp_send_reply_end(req);
		return;
	}
	n = json_object_array_length(r->log);
	for (i = 0; i < n; i++) {
		ev = json_object_array_get_idx(r->log, i);
		if (atol(json_object_get_string(json_object_object_get(
		        json_object_object_get(json_object_object_get(ev, "object"), "metadata"),
		        "resourceVersion"))) > rv)
			fake_chunk_event(req, ev);
	}
	w = calloc(1, sizeof(*w));
	w->req = req;
	w->conn = evhttp_request_get_connection(req);
	w->res = r;
	w->next = fk.watches;
	fk.watches = w;
	evhttp_connection_set_closecb(w->conn, fake_watch_closed, NULL);
}

static void fake_handle(struct evhttp_request *req, void *arg)
{
	const char *auth =
	    evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	struct evhttp_uri *u = evhttp_uri_parse(evhttp_request_get_uri(req));
	struct evkeyvalq q;
	struct fres *r = NULL;
	const char *path = u ? evhttp_uri_get_path(u) : NULL;
	int i;

	TAILQ_INIT(&q);
	if (u != NULL && evhttp_uri_get_query(u) != NULL)
		evhttp_parse_query_str(evhttp_uri_get_query(u), &q);
	for (i = 0; i < FR_N && path != NULL; i++)
		if (strcmp(path, fk.res[i].path) == 0)
			r = &fk.res[i];
	if (r != NULL)
		r->requests++;
	if (auth == NULL || strcmp(auth, "Bearer " TW_TOKEN) != 0) {
		fk.unauthorized++;
		fake_reply_status(req, 401, "Unauthorized", "Unauthorized");
	} else if (path != NULL && strcmp(path, "/apis/pool.kubevirt.io") == 0 &&
	           !fk.res[FR_POOL].missing) {
		fake_reply_text(req, 200,
		    "{\"kind\":\"APIGroup\",\"apiVersion\":\"v1\",\"name\":\"pool.kubevirt.io\","
		    "\"versions\":[{\"groupVersion\":\"pool.kubevirt.io/v1alpha1\",\"version\":"
		    "\"v1alpha1\"},{\"groupVersion\":\"pool.kubevirt.io/v1beta1\",\"version\":"
		    "\"v1beta1\"}]}");
	} else if (r == NULL || r->missing) {
		fake_reply_status(req, 404, "NotFound", "the server could not find the resource");
	} else if (evhttp_find_header(&q, "watch") != NULL) {
		fake_watch(req, r, evhttp_find_header(&q, "resourceVersion"));
	} else {
		fake_list(
		    req, r, evhttp_find_header(&q, "limit"), evhttp_find_header(&q, "continue"));
	}
	evhttp_clear_headers(&q);
	if (u != NULL)
		evhttp_uri_free(u);
}

/* records an event for r and writes it to its open watches */
static void fake_event(struct fres *r, const char *type, json_object *obj)
{
	json_object *ev = json_object_new_object();
	struct fwatch *w;

	json_object_object_add(ev, "type", json_object_new_string(type));
	json_object_object_add(ev, "object", json_object_get(obj));
	json_object_array_add(r->log, ev);
	for (w = fk.watches; w != NULL; w = w->next)
		if (w->res == r)
			fake_chunk_event(w->req, ev);
}

static void fake_stamp(json_object *obj)
{
	json_object *meta = json_object_object_get(obj, "metadata");
	char buf[64];

	snprintf(buf, sizeof(buf), "%ld", ++fk.rv);
	json_object_object_add(meta, "resourceVersion", json_object_new_string(buf));
}

/* adds or replaces an object (taking obj); silent: no watch event */
static void fake_put(int ri, json_object *obj, int silent)
{
	struct fres *r = &fk.res[ri];
	json_object *meta = json_object_object_get(obj, "metadata");
	const char *ns = json_object_get_string(json_object_object_get(meta, "namespace"));
	const char *name = json_object_get_string(json_object_object_get(meta, "name"));
	char key[256];
	int existed;

	snprintf(key, sizeof(key), "%s/%s", ns, name);
	existed = json_object_object_get_ex(r->objs, key, NULL);
	fake_stamp(obj);
	json_object_object_add(r->objs, key, obj);
	if (!silent)
		fake_event(r, existed ? "MODIFIED" : "ADDED", obj);
}

static void fake_del(int ri, const char *ns, const char *name, int silent)
{
	struct fres *r = &fk.res[ri];
	json_object *obj;
	char key[256];

	snprintf(key, sizeof(key), "%s/%s", ns, name);
	if (!json_object_object_get_ex(r->objs, key, &obj))
		return;
	json_object_get(obj);
	json_object_object_del(r->objs, key);
	fake_stamp(obj);
	if (!silent)
		fake_event(r, "DELETED", obj);
	json_object_put(obj);
}

/* history is gone: open watches get an ERROR 410 (or just end, for HTTP 410 on rewatch) */
static void fake_expire(int ri, int http410)
{
	struct fres *r = &fk.res[ri];
	struct fwatch *w, *next;
	json_object *ev;

	r->compacted = fk.rv;
	r->http410 = http410;
	for (w = fk.watches; w != NULL; w = next) {
		next = w->next;
		if (w->res != r)
			continue;
		if (!http410) {
			fk.gone410++;
			ev = json_object_new_object();
			json_object_object_add(ev, "type", json_object_new_string("ERROR"));
			json_object_object_add(
			    ev, "object", fake_status(410, "Expired", "too old resource version"));
			fake_chunk_event(w->req, ev);
			json_object_put(ev);
		}
		fake_watch_end(w);
	}
}

static void fake_garbage(int ri)
{
	struct fwatch *w;

	for (w = fk.watches; w != NULL; w = w->next)
		if (w->res == &fk.res[ri])
			fake_chunk(w->req, "this is {not json]]\n");
}

static json_object *fake_obj(const char *kind, const char *api, const char *ns, const char *name)
{
	char buf[300];

	snprintf(buf, sizeof(buf),
	    "{\"apiVersion\":\"%s\",\"kind\":\"%s\",\"metadata\":{\"name\":\"%s\","
	    "\"namespace\":\"%s\",\"uid\":\"uid-%s\",\"managedFields\":[{\"manager\":\"kubectl\"}]}"
	    ","
	    "\"spec\":{}}",
	    api, kind, name, ns, name);
	return json_tokener_parse(buf);
}

static json_object *fake_vm(const char *ns, const char *name)
{
	return fake_obj("VirtualMachine", "kubevirt.io/v1", ns, name);
}

static json_object *fake_rev(const char *ns, const char *name, const char *owner_kind)
{
	json_object *o = fake_obj("ControllerRevision", "apps/v1", ns, name);
	char buf[200];

	if (owner_kind != NULL) {
		snprintf(buf, sizeof(buf),
		    "[{\"apiVersion\":\"x/v1\",\"kind\":\"%s\",\"name\":\"o\",\"uid\":\"u\","
		    "\"controller\":true}]",
		    owner_kind);
		json_object_object_add(json_object_object_get(o, "metadata"), "ownerReferences",
		    json_tokener_parse(buf));
	}
	return o;
}

/* a PVC with labels, annotations, spec and status; owned by owner_kind (NULL: no owner) */
static json_object *fake_pvc(const char *ns, const char *name, const char *owner_kind, int ctl)
{
	json_object *o = fake_obj("PersistentVolumeClaim", "v1", ns, name);
	json_object *meta = json_object_object_get(o, "metadata");
	char buf[300];

	json_object_object_add(meta, "labels", json_tokener_parse("{\"app\":\"pool\"}"));
	json_object_object_add(
	    meta, "annotations", json_tokener_parse("{\"pv.kubernetes.io/bound\":\"yes\"}"));
	json_object_object_add(meta, "finalizers", json_tokener_parse("[\"kubernetes.io/pvc\"]"));
	json_object_object_add(o, "status", json_tokener_parse("{\"phase\":\"Bound\"}"));
	json_object_object_add(
	    json_object_object_get(o, "spec"), "volumeName", json_object_new_string("pv-1"));
	if (owner_kind != NULL) {
		snprintf(buf, sizeof(buf),
		    "[{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"%s\",\"name\":\"o\","
		    "\"uid\":\"u-%s\",\"controller\":%s}]",
		    owner_kind, name, ctl ? "true" : "false");
		json_object_object_add(meta, "ownerReferences", json_tokener_parse(buf));
	}
	return o;
}

static void fake_init(void)
{
	static const struct {
		const char *path, *kind, *api;
		int missing, strip;
	} defs[FR_N] = {
	    {"/apis/pool.kubevirt.io/v1beta1/virtualmachinepools", "VirtualMachinePool",
	        "pool.kubevirt.io/v1beta1", 0, 0},
	    {"/apis/kubevirt.io/v1/virtualmachines", "VirtualMachine", "kubevirt.io/v1", 0, 0},
	    {"/apis/kubevirt.io/v1/virtualmachineinstances", "VirtualMachineInstance",
	        "kubevirt.io/v1", 1, 0},
	    {"/apis/apps/v1/controllerrevisions", "ControllerRevision", "apps/v1", 0, 1},
	    {"/api/v1/persistentvolumeclaims", "PersistentVolumeClaim", "v1", 0, 1},
	    {"/apis/cdi.kubevirt.io/v1beta1/datavolumes", "DataVolume", "cdi.kubevirt.io/v1beta1",
	        1, 0},
	};
	int i;

	fk.rv = 100;
	for (i = 0; i < FR_N; i++) {
		fk.res[i].path = defs[i].path;
		fk.res[i].kind = defs[i].kind;
		fk.res[i].api = defs[i].api;
		fk.res[i].missing = defs[i].missing;
		fk.res[i].strip = defs[i].strip;
		fk.res[i].objs = json_object_new_object();
		fk.res[i].log = json_object_new_array();
	}
}

/* the API server comes up on fd, bound to port (stagekit_reserve_port) */
static int fake_listen(int fd, int port)
{
	fk.http = evhttp_new(fk.base);
	evhttp_set_allowed_methods(fk.http, EVHTTP_REQ_GET);
	evhttp_set_gencb(fk.http, fake_handle, NULL);
	if (listen(fd, 128) != 0 || evutil_make_socket_nonblocking(fd) != 0 ||
	    evhttp_accept_socket(fk.http, fd) != 0) {
		close(fd);
		return -1;
	}
	fk.port = port;
	return 0;
}

static void fake_free(void)
{
	int i;

	while (fk.watches != NULL)
		fake_watch_end(fk.watches);
	if (fk.http != NULL)
		evhttp_free(fk.http);
	for (i = 0; i < FR_N; i++) {
		json_object_put(fk.res[i].objs);
		json_object_put(fk.res[i].log);
	}
}

/* ---- a subscriber ---- */

struct sub {
	struct link *link;
	int in_sync, syncs, sets, dels;
	json_object *snap;    /* keys of the last snapshot */
	json_object *picture; /* "kind/ns/name" -> obj */
	json_object *deleted; /* "kind/ns/name" -> uid, every OBJ_DELETE seen */
};

static void sub_key(char *out, size_t len, const char *kind, const char *ns, const char *name)
{
	snprintf(out, len, "%s/%s/%s", kind ? kind : "?", ns ? ns : "?", name ? name : "?");
}

static const char *jstr(json_object *o, const char *k1, const char *k2)
{
	json_object *v = json_object_object_get(o, k1);

	if (k2 != NULL)
		v = json_object_object_get(v, k2);
	return v ? json_object_get_string(v) : NULL;
}

static void sub_frame(struct link *l, int type, json_object *body, void *arg)
{
	struct sub *s = arg;
	json_object *obj = json_object_object_get(body, "obj");
	const char *kind = jstr(body, "kind", NULL);
	char key[512];

	if (type == MSG_SYNC_BEGIN) {
		s->in_sync = 1;
		json_object_put(s->snap);
		s->snap = json_object_new_object();
		json_object_put(s->picture);
		s->picture = json_object_new_object();
	} else if (type == MSG_SYNC_END) {
		s->in_sync = 0;
		s->syncs++;
	} else if (type == MSG_OBJ_SET) {
		sub_key(key, sizeof(key), kind, jstr(obj, "metadata", "namespace"),
		    jstr(obj, "metadata", "name"));
		json_object_object_add(s->picture, key, json_object_get(obj));
		if (s->in_sync)
			json_object_object_add(s->snap, key, NULL);
		s->sets++;
	} else if (type == MSG_OBJ_DELETE) {
		sub_key(key, sizeof(key), kind, jstr(body, "namespace", NULL),
		    jstr(body, "name", NULL));
		json_object_object_del(s->picture, key);
		json_object_object_add(s->deleted, key,
		    json_object_new_string(jstr(body, "uid", NULL) ? jstr(body, "uid", NULL) : ""));
		s->dels++;
	}
}

static struct sub *sub_new(struct event_base *base, const char *sock)
{
	static const int accept[] = {MSG_SYNC_BEGIN, MSG_SYNC_END, MSG_OBJ_SET, MSG_OBJ_DELETE, 0};
	static const struct link_spec spec = {LINK_WATCHER, accept, 0};
	static const struct link_cb cb = {NULL, sub_frame, NULL};
	struct sub *s = calloc(1, sizeof(*s));

	s->picture = json_object_new_object();
	s->snap = json_object_new_object();
	s->deleted = json_object_new_object();
	s->link = link_connect(base, sock, &spec, &cb, s);
	return s;
}

static void sub_free(struct sub *s)
{
	if (s == NULL)
		return;
	link_free(s->link);
	json_object_put(s->picture);
	json_object_put(s->snap);
	json_object_put(s->deleted);
	free(s);
}

static int sub_has(struct sub *s, const char *key)
{
	return json_object_object_get_ex(s->picture, key, NULL);
}

/* ---- the test driver ---- */

static pid_t child = -1;
static int child_status = -1;
static char tmpdir[256];

static void tw_tick(evutil_socket_t fd, short ev, void *arg)
{
}

/* polls the child; 1 if it is still running */
static int tw_child_alive(void)
{
	return stagekit_child_alive(&child, &child_status);
}

/* runs the loop until cond() holds or secs pass; returns cond() */
static int tw_wait(int (*cond)(void *), void *arg, double secs)
{
	return stagekit_wait(fk.base, &child, &child_status, cond, arg, secs);
}

static int tw_never(void *arg)
{
	return 0;
}

static void tw_run(double secs)
{
	tw_wait(tw_never, NULL, secs);
}

struct tw_key {
	struct sub *s;
	const char *key;
	int want; /* 1 present, 0 absent */
};

static int tw_key_cond(void *arg)
{
	struct tw_key *k = arg;

	return sub_has(k->s, k->key) == k->want;
}

static int tw_wait_key(struct sub *s, const char *key, int want, double secs)
{
	struct tw_key k = {s, key, want};

	return tw_wait(tw_key_cond, &k, secs);
}

static int tw_synced_cond(void *arg)
{
	struct sub *s = arg;

	return s->syncs > 0;
}

static pid_t tw_spawn(const char *bin, char *const argv[], const char *logpath)
{
	return stagekit_spawn(bin, argv, logpath);
}

/* runs the watcher with bad configuration and expects EXIT_CONFIG */
static void tw_config_errors(const char *bin)
{
	char log[300];
	char *bad_kc[] = {
	    (char *)bin, "--run-dir", tmpdir, "--kubeconfig", "/nonexistent/kubeconfig", NULL};
	char *bad_flag[] = {(char *)bin, "--no-such-flag", NULL};
	int st;
	pid_t pid;

	snprintf(log, sizeof(log), "%s/config.log", tmpdir);
	pid = tw_spawn(bin, bad_kc, log);
	waitpid(pid, &st, 0);
	stagekit_check(WIFEXITED(st) && WEXITSTATUS(st) == EXIT_CONFIG,
	    "unreadable kubeconfig exits %d (status %d)", EXIT_CONFIG, WEXITSTATUS(st));
	pid = tw_spawn(bin, bad_flag, log);
	waitpid(pid, &st, 0);
	stagekit_check(WIFEXITED(st) && WEXITSTATUS(st) == EXIT_CONFIG,
	    "a bad flag exits %d (status %d)", EXIT_CONFIG, WEXITSTATUS(st));
}

/* ---- expectations ---- */

static const char *tw_kinds[FR_N] = {KIND_POOL, KIND_VM, KIND_VMI, KIND_REV, KIND_PVC, KIND_DV};

static int tw_pool_owned(json_object *obj)
{
	json_object *refs =
	    json_object_object_get(json_object_object_get(obj, "metadata"), "ownerReferences");
	size_t i;

	for (i = 0; refs != NULL && i < json_object_array_length(refs); i++)
		if (strcmp(jstr(json_object_array_get_idx(refs, i), "kind", NULL),
		        "VirtualMachinePool") == 0)
			return 1;
	return 0;
}

static int tw_vm_controlled(json_object *obj)
{
	json_object *refs =
	    json_object_object_get(json_object_object_get(obj, "metadata"), "ownerReferences");
	json_object *ref;
	size_t i;

	for (i = 0; refs != NULL && i < json_object_array_length(refs); i++) {
		ref = json_object_array_get_idx(refs, i);
		if (json_object_get_boolean(json_object_object_get(ref, "controller")) &&
		    strcmp(jstr(ref, "kind", NULL), "VirtualMachine") == 0)
			return 1;
	}
	return 0;
}

/* what a subscriber should hold: "kind/ns/name" -> resourceVersion, from the fake's state */
static json_object *tw_expected(void)
{
	json_object *want = json_object_new_object();
	char key[512];
	int i;

	for (i = 0; i < FR_N; i++) {
		if (fk.res[i].missing)
			continue;
		json_object_object_foreach(fk.res[i].objs, k, obj)
		{
			(void)k;
			if (jstr(obj, "metadata", "name") == NULL)
				continue;
			if (i == FR_REV && !tw_pool_owned(obj))
				continue;
			if ((i == FR_PVC || i == FR_DV) && !tw_vm_controlled(obj))
				continue;
			sub_key(key, sizeof(key), tw_kinds[i], jstr(obj, "metadata", "namespace"),
			    jstr(obj, "metadata", "name"));
			json_object_object_add(want, key,
			    json_object_new_string(jstr(obj, "metadata", "resourceVersion")));
		}
	}
	return want;
}

/* a trimmed kind (PVC, DV) is not republished when only a dropped part changed */
static int tw_trimmed_kind(const char *key)
{
	return strncmp(key, "pvc/", 4) == 0 || strncmp(key, "dv/", 3) == 0;
}

/* 1 if the picture holds exactly the expected objects at the expected resourceVersions */
static int tw_exact(struct sub *s, int verbose)
{
	json_object *want = tw_expected(), *got;
	int ok = json_object_object_length(want) == json_object_object_length(s->picture);

	json_object_object_foreach(want, key, rv)
	{
		if (!json_object_object_get_ex(s->picture, key, &got)) {
			if (verbose)
				fprintf(stderr, "  missing %s\n", key);
			ok = 0;
		} else if (!tw_trimmed_kind(key) &&
		           strcmp(json_object_get_string(rv),
		               jstr(got, "metadata", "resourceVersion") ?: "") != 0) {
			if (verbose)
				fprintf(stderr, "  stale %s\n", key);
			ok = 0;
		}
	}
	json_object_object_foreach(s->picture, key2, v2)
	{
		(void)v2;
		if (!json_object_object_get_ex(want, key2, NULL)) {
			if (verbose)
				fprintf(stderr, "  unexpected %s\n", key2);
			ok = 0;
		}
	}
	json_object_put(want);
	return ok;
}

static int tw_exact_cond(void *arg)
{
	return tw_exact(arg, 0);
}

static int tw_no_managed_fields(struct sub *s)
{
	json_object_object_foreach(s->picture, key, obj)
	{
		(void)key;
		if (json_object_object_get_ex(
		        json_object_object_get(obj, "metadata"), "managedFields", NULL))
			return 0;
	}
	return 1;
}

/* ---- metrics over http ---- */

static void tw_http_get(int port, const char *path, struct stagekit_http_answer *h)
{
	stagekit_http_get(fk.base, port, path, h, 5);
}

/* ---- the scenario ---- */

static void tw_seed(void)
{
	char name[32];
	json_object *bad;
	int i;

	fake_put(
	    FR_POOL, fake_obj("VirtualMachinePool", "pool.kubevirt.io/v1beta1", "t1", "p1"), 0);
	fake_put(
	    FR_POOL, fake_obj("VirtualMachinePool", "pool.kubevirt.io/v1beta1", "t2", "p2"), 0);
	for (i = 0; i < 7; i++) {
		snprintf(name, sizeof(name), "vm-%d", i);
		fake_put(FR_VM, fake_vm(i % 2 ? "t2" : "t1", name), 0);
	}
	/* an object without metadata.name, in the middle of the list */
	bad =
	    json_tokener_parse("{\"kind\":\"VirtualMachine\",\"metadata\":{\"namespace\":\"t1\"}}");
	json_object_object_add(fk.res[FR_VM].objs, "t1/", bad);
	fake_put(FR_VM, fake_vm("t1", "vm-7"), 0);
	fake_put(FR_REV, fake_rev("t1", "p1-rev", "VirtualMachinePool"), 0);
	fake_put(FR_REV, fake_rev("t1", "sts-rev", "StatefulSet"), 0);
	fake_put(FR_REV, fake_rev("t2", "p2-rev", "VirtualMachinePool"), 0);
	fake_put(FR_REV, fake_rev("t2", "bare-rev", NULL), 0);
	fake_put(FR_PVC, fake_pvc("t1", "vm-0-disk", "VirtualMachine", 1), 0);
	fake_put(FR_PVC, fake_pvc("t1", "loose-pvc", NULL, 0), 0);
	fake_put(FR_PVC, fake_pvc("t1", "dv-pvc", "DataVolume", 1), 0);
	fake_put(FR_PVC, fake_pvc("t2", "ref-pvc", "VirtualMachine", 0), 0);
	fake_put(FR_PVC, fake_pvc("t2", "vm-1-disk", "VirtualMachine", 1), 0);
}

static int tw_only_members(json_object *obj, const char *const *names)
{
	size_t i;
	int found;

	if (obj == NULL || !json_object_is_type(obj, json_type_object))
		return 0;
	json_object_object_foreach(obj, key, val)
	{
		(void)val;
		found = 0;
		for (i = 0; names[i] != NULL; i++)
			found |= strcmp(key, names[i]) == 0;
		if (!found) {
			fprintf(stderr, "  unexpected member %s\n", key);
			return 0;
		}
	}
	return 1;
}

/* a published PVC carries identity, owners and labels, nothing else */
static int tw_trimmed(json_object *obj)
{
	static const char *const top[] = {"apiVersion", "kind", "metadata", NULL};
	static const char *const meta[] = {"name", "namespace", "uid", "resourceVersion",
	    "ownerReferences", "deletionTimestamp", "labels", NULL};
	json_object *m = json_object_object_get(obj, "metadata");

	return tw_only_members(obj, top) && tw_only_members(m, meta) &&
	       json_object_object_get_ex(m, "ownerReferences", NULL) &&
	       strcmp(jstr(m, "labels", "app") ?: "", "pool") == 0 &&
	       jstr(m, "uid", NULL) != NULL && jstr(m, "resourceVersion", NULL) != NULL &&
	       strcmp(jstr(obj, "kind", NULL) ?: "", "PersistentVolumeClaim") == 0 &&
	       strcmp(jstr(obj, "apiVersion", NULL) ?: "", "v1") == 0;
}

static void tw_first_sync(struct sub *a)
{
	json_object *rev;

	stagekit_check(tw_wait(tw_synced_cond, a, 20), "subscriber A got a snapshot");
	stagekit_check(tw_exact(a, 1), "snapshot holds exactly the listed objects (%d)",
	    json_object_object_length(a->picture));
	stagekit_check(json_object_object_length(a->snap) == json_object_object_length(a->picture),
	    "everything came inside SYNC_BEGIN/SYNC_END");
	stagekit_check(fk.continues >= 3, "lists were paged (%d continue requests)", fk.continues);
	stagekit_check(tw_no_managed_fields(a), "managedFields dropped");
	stagekit_check(!sub_has(a, "rev/t1/sts-rev") && !sub_has(a, "rev/t2/bare-rev"),
	    "revisions not owned by a pool are not published");
	rev = json_object_object_get(a->picture, "rev/t1/p1-rev");
	stagekit_check(rev != NULL &&
	                   strcmp(jstr(rev, "kind", NULL) ?: "", "ControllerRevision") == 0 &&
	                   strcmp(jstr(rev, "apiVersion", NULL) ?: "", "apps/v1") == 0,
	    "kind/apiVersion filled in for list items");
	stagekit_check(
	    fk.unauthorized == 0, "bearer token sent (%d unauthorized)", fk.unauthorized);
	stagekit_check(sub_has(a, "pvc/t1/vm-0-disk") && sub_has(a, "pvc/t2/vm-1-disk"),
	    "PVCs controlled by a VM are published");
	stagekit_check(!sub_has(a, "pvc/t1/loose-pvc") && !sub_has(a, "pvc/t1/dv-pvc") &&
	                   !sub_has(a, "pvc/t2/ref-pvc"),
	    "PVCs without a VM controller (none, DataVolume, non-controller ref) are not");
	stagekit_check(tw_trimmed(json_object_object_get(a->picture, "pvc/t1/vm-0-disk")),
	    "a published PVC is trimmed to its metadata (no spec, status, annotations)");
	stagekit_check(fk.res[FR_DV].requests >= 1 && a->syncs == 1,
	    "datavolumes answering 404 (%d requests) still let the snapshot end",
	    fk.res[FR_DV].requests);
}

static int tw_pvc_label_cond(void *arg)
{
	struct sub *s = arg;
	json_object *m = json_object_object_get(
	    json_object_object_get(s->picture, "pvc/t1/vm-new-disk"), "metadata");

	return strcmp(jstr(m, "labels", "tier") ?: "", "gold") == 0;
}

static const char *tw_rv_of(struct sub *s, const char *key)
{
	return jstr(json_object_object_get(s->picture, key), "metadata", "resourceVersion") ?: "";
}

/* a status-only change of a PVC is not published; a label change is */
static void tw_pvc_quiet(struct sub *a)
{
	char rv[64];
	int sets, seen;
	json_object *pvc;

	snprintf(rv, sizeof(rv), "%s", tw_rv_of(a, "pvc/t1/vm-new-disk"));
	sets = a->sets;
	pvc = fake_pvc("t1", "vm-new-disk", "VirtualMachine", 1);
	json_object_object_add(pvc, "status", json_tokener_parse("{\"phase\":\"Lost\"}"));
	fake_put(FR_PVC, pvc, 0);
	fake_put(FR_PVC, fake_pvc("t1", "sentinel-2", "VirtualMachine", 1), 0);
	seen = tw_wait_key(a, "pvc/t1/sentinel-2", 1, 10);
	stagekit_check(
	    seen && a->sets == sets + 1 && strcmp(tw_rv_of(a, "pvc/t1/vm-new-disk"), rv) == 0,
	    "a PVC change outside the kept metadata is not published (%d sets, 1 expected)",
	    a->sets - sets);
	pvc = fake_pvc("t1", "vm-new-disk", "VirtualMachine", 1);
	json_object_object_add(
	    json_object_object_get(json_object_object_get(pvc, "metadata"), "labels"), "tier",
	    json_object_new_string("gold"));
	fake_put(FR_PVC, pvc, 0);
	stagekit_check(tw_wait(tw_pvc_label_cond, a, 10), "a PVC label change is published");
}

static void tw_pvc_events(struct sub *a)
{
	fake_put(FR_PVC, fake_pvc("t1", "vm-new-disk", "VirtualMachine", 1), 0);
	stagekit_check(
	    tw_wait_key(a, "pvc/t1/vm-new-disk", 1, 10), "a VM-controlled PVC ADDED -> OBJ_SET");
	stagekit_check(tw_trimmed(json_object_object_get(a->picture, "pvc/t1/vm-new-disk")),
	    "a PVC from a watch event is trimmed too");
	fake_put(FR_PVC, fake_pvc("t1", "loose-2", NULL, 0), 0);
	fake_put(FR_PVC, fake_pvc("t1", "sentinel-disk", "VirtualMachine", 1), 0);
	stagekit_check(
	    tw_wait_key(a, "pvc/t1/sentinel-disk", 1, 10) && !sub_has(a, "pvc/t1/loose-2"),
	    "a PVC ADDED without a VM controller is not published");
	fake_put(FR_PVC, fake_pvc("t1", "vm-0-disk", NULL, 0), 0);
	stagekit_check(
	    tw_wait_key(a, "pvc/t1/vm-0-disk", 0, 10) &&
	        strcmp(jstr(a->deleted, "pvc/t1/vm-0-disk", NULL) ?: "", "uid-vm-0-disk") == 0,
	    "a PVC that loses its VM controller -> OBJ_DELETE with its uid");
	fake_put(FR_PVC, fake_pvc("t1", "vm-0-disk", "VirtualMachine", 1), 0);
	stagekit_check(
	    tw_wait_key(a, "pvc/t1/vm-0-disk", 1, 10), "...and OBJ_SET when a VM adopts it again");
	tw_pvc_quiet(a);
	/* loses its owner while nobody watches: the relist after an expiry drops it */
	fake_put(FR_PVC, fake_pvc("t2", "vm-1-disk", "DataVolume", 1), 1);
	fake_expire(FR_PVC, 0);
	stagekit_check(tw_wait_key(a, "pvc/t2/vm-1-disk", 0, 10),
	    "a PVC that lost its VM controller unseen is deleted by the relist");
	stagekit_check(tw_wait(tw_exact_cond, a, 5), "picture exact after PVC events");
}

static void tw_watch_events(struct sub *a)
{
	json_object *vm1;

	fake_put(FR_VM, fake_vm("t1", "vm-new"), 0);
	stagekit_check(tw_wait_key(a, "vm/t1/vm-new", 1, 10), "ADDED -> OBJ_SET");
	vm1 = fake_vm("t2", "vm-1");
	json_object_object_add(
	    json_object_object_get(vm1, "spec"), "running", json_object_new_boolean(1));
	fake_put(FR_VM, vm1, 0);
	stagekit_check(
	    tw_wait(tw_exact_cond, a, 10), "MODIFIED -> OBJ_SET with the new resourceVersion");
	fake_del(FR_VM, "t1", "vm-2", 0);
	stagekit_check(tw_wait_key(a, "vm/t1/vm-2", 0, 10), "DELETED -> OBJ_DELETE");
	stagekit_check(strcmp(jstr(a->deleted, "vm/t1/vm-2", NULL) ?: "", "uid-vm-2") == 0,
	    "OBJ_DELETE carries the uid");
	fake_put(FR_REV, fake_rev("t1", "sts-rev2", "StatefulSet"), 0);
	fake_put(FR_REV, fake_rev("t1", "p1-rev2", "VirtualMachinePool"), 0);
	fake_put(
	    FR_POOL, fake_obj("VirtualMachinePool", "pool.kubevirt.io/v1beta1", "t1", "p3"), 0);
	stagekit_check(
	    tw_wait_key(a, "pool/t1/p3", 1, 10) && tw_wait_key(a, "rev/t1/p1-rev2", 1, 10),
	    "pool and revision events published");
	stagekit_check(
	    !sub_has(a, "rev/t1/sts-rev2"), "a watched revision not owned by a pool is skipped");
	stagekit_check(tw_exact(a, 1), "picture exact after watch events");
}

static void tw_garbage(struct sub *a)
{
	fake_garbage(FR_VM);
	fake_garbage(FR_POOL);
	fake_put(FR_VM, fake_vm("t1", "vm-after-garbage"), 0);
	stagekit_check(
	    tw_wait_key(a, "vm/t1/vm-after-garbage", 1, 10), "events after a garbage line arrive");
	stagekit_check(tw_child_alive(), "garbage in a watch stream does not crash the watcher");
	stagekit_check(tw_wait(tw_exact_cond, a, 5), "picture exact after garbage");
}

static void tw_relists(struct sub *a)
{
	int before = fk.gone410, lists = fk.lists;

	/* vm-3 vanishes and vm-silent appears without an event; then the history is gone */
	fake_del(FR_VM, "t2", "vm-3", 1);
	fake_put(FR_VM, fake_vm("t2", "vm-silent"), 1);
	fk.expire_continue = 1;
	fake_expire(FR_VM, 0);
	stagekit_check(tw_wait_key(a, "vm/t2/vm-3", 0, 10),
	    "after an ERROR 410 the relist deletes a vanished VM");
	stagekit_check(sub_has(a, "vm/t2/vm-silent"), "...and publishes one that appeared");
	stagekit_check(
	    json_object_object_get_ex(a->deleted, "vm/t2/vm-3", NULL), "as an OBJ_DELETE");
	stagekit_check(fk.expire_continue == 0 && fk.lists >= lists + 2,
	    "a 410 on a continue token restarts the list (%d lists)", fk.lists - lists);
	stagekit_check(tw_wait(tw_exact_cond, a, 5), "picture exact after relist");

	fake_del(FR_VM, "t1", "vm-4", 1);
	fake_expire(FR_VM, 1);
	stagekit_check(
	    tw_wait_key(a, "vm/t1/vm-4", 0, 10), "after an HTTP 410 on rewatch it relists too");
	stagekit_check(
	    fk.gone410 >= before + 2, "both 410 forms were served (%d)", fk.gone410 - before);
	stagekit_check(tw_wait(tw_exact_cond, a, 5), "picture exact after second relist");
}

static int tw_log_has(const char *path, const char *words)
{
	char line[4096];
	FILE *f = fopen(path, "r");
	int found = 0;

	while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, words) != NULL;
	if (f != NULL)
		fclose(f);
	return found;
}

struct tw_logword {
	const char *path, *words;
};

static int tw_log_cond(void *arg)
{
	struct tw_logword *w = arg;

	return tw_log_has(w->path, w->words);
}

static int tw_vm_watched(void *arg)
{
	struct fwatch *w;

	for (w = fk.watches; w != NULL; w = w->next)
		if (w->res == &fk.res[FR_VM])
			return 1;
	return 0;
}

/* ---- the fake actuator: WRITTEN frames ---- */

static struct link *tw_act; /* the watcher's link to the fake actuator, once up */

static void tw_act_up(struct link *l, void *arg)
{
	if (strcmp(link_peer_program(l), PROG_WATCHER) == 0)
		tw_act = l;
}

static void tw_act_down(struct link *l, void *arg)
{
	if (l == tw_act)
		tw_act = NULL;
}

static int tw_act_up_cond(void *arg)
{
	return tw_act != NULL;
}

static void tw_send_written(const char *kind, json_object *obj)
{
	struct msg_obj_set m = {kind, obj};
	json_object *b = msg_written_pack(&m);

	link_send(tw_act, MSG_WRITTEN, b);
	json_object_put(b);
}

static void tw_set_rv(json_object *obj, long rv)
{
	char buf[32];

	snprintf(buf, sizeof buf, "%ld", rv);
	json_object_object_add(json_object_object_get(obj, "metadata"), "resourceVersion",
	    json_object_new_string(buf));
}

/* puts a VM through the watch and waits for it: what was sent before it has been handled */
static int tw_marker(struct sub *a, const char *name)
{
	char key[128];

	snprintf(key, sizeof key, "vm/t1/%s", name);
	fake_put(FR_VM, fake_vm("t1", name), 0);
	return tw_wait_key(a, key, 1, 10);
}

/*
 * The actuator's WRITTEN: a created VM ahead of the watch is published at once and its watch
 * event is no news; one the watch has passed (created and deleted meanwhile), one whose name
 * is kept, one the resource does not keep and one of an unknown kind are not published.
 */
static void tw_written(struct sub *a, int mport, const char *wlog)
{
	struct tw_logword lw = {wlog, "WRITTEN of unknown kind"};
	struct stagekit_http_answer h;
	json_object *vm;
	int sets;

	stagekit_check(tw_wait(tw_act_up_cond, NULL, 20), "the watcher connects to actuator.sock");
	vm = fake_vm("t1", "vm-w1");
	tw_set_rv(vm, fk.rv + 1); /* the version the API server gives it next */
	tw_send_written(KIND_VM, vm);
	stagekit_check(tw_wait_key(a, "vm/t1/vm-w1", 1, 10),
	    "WRITTEN ahead of the watch -> OBJ_SET before the watch shows it");
	sets = a->sets;
	fake_put(FR_VM, vm, 0); /* the watch's ADDED, at the same version */
	stagekit_check(tw_marker(a, "vm-w2"), "the watch goes on");
	stagekit_check(a->sets == sets + 1,
	    "the watch's event of the version written is not published again (%d sets)",
	    a->sets - sets);

	sets = a->sets;
	vm = fake_vm("t1", "vm-w3");
	tw_set_rv(vm, fk.rv); /* the watch is there: gone since, or it would be kept */
	tw_send_written(KIND_VM, vm);
	json_object_put(vm);
	vm = fake_vm("t1", "vm-w2"); /* a newer copy of a kept name, changed: not taken either */
	json_object_object_add(
	    json_object_object_get(vm, "metadata"), "labels", json_tokener_parse("{\"w\":\"2\"}"));
	tw_set_rv(vm, fk.rv + 100);
	tw_send_written(KIND_VM, vm);
	json_object_put(vm);
	vm = fake_rev("t1", "sts-rev9", "StatefulSet");
	tw_set_rv(vm, fk.rv + 100);
	tw_send_written(KIND_REV, vm);
	tw_send_written("bogus", vm);
	json_object_put(vm);
	stagekit_check(tw_marker(a, "vm-w4"), "the watch goes on after them");
	stagekit_check(
	    a->sets == sets + 1 && !sub_has(a, "vm/t1/vm-w3") && !sub_has(a, "rev/t1/sts-rev9"),
	    "WRITTEN behind the watch, of a kept name, or not kept: nothing published (%d sets)",
	    a->sets - sets);
	stagekit_check(tw_wait(tw_log_cond, &lw, 5), "WRITTEN of an unknown kind is logged");
	stagekit_check(tw_wait(tw_exact_cond, a, 5), "picture exact after WRITTEN");
	tw_http_get(mport, "/metrics", &h);
	stagekit_check(
	    strstr(h.body, "vmpool_watcher_written_total{kind=\"vm\",result=\"kept\"} 1") &&
	        strstr(h.body, "vmpool_watcher_written_total{kind=\"vm\",result=\"watched\"} 1") &&
	        strstr(h.body, "vmpool_watcher_written_total{kind=\"vm\",result=\"known\"} 1") &&
	        strstr(h.body, "vmpool_watcher_written_total{kind=\"rev\",result=\"not_kept\"} 1"),
	    "metrics: vmpool_watcher_written_total by kind and result");
}

/* a list answered 200 with a body that is not JSON is logged as such (not as "not a list"),
 * retried, and the picture is whole again once the API answers properly */
static void tw_bad_list(struct sub *a, const char *wlog)
{
	struct tw_logword w = {wlog, "list failed (HTTP 200: the answer is not JSON"};

	stagekit_check(tw_wait(tw_vm_watched, NULL, 10), "the VM watch is open again");
	fk.list_garbage = 1;
	fake_expire(FR_VM, 0); /* an ERROR 410 event: the watcher relists */
	stagekit_check(
	    tw_wait(tw_log_cond, &w, 10), "a list answer that is not JSON is logged as such");
	stagekit_check(
	    !tw_log_has(wlog, "the answer is not a list"), "...and not as \"not a list\"");
	fk.list_garbage = 0;
	fake_put(FR_VM, fake_vm("t1", "vm-after-bad-list"), 1);
	stagekit_check(
	    tw_wait_key(a, "vm/t1/vm-after-bad-list", 1, 20), "the retried list publishes again");
	stagekit_check(tw_wait(tw_exact_cond, a, 5), "picture exact after a bad list");
}

static void tw_metrics(int mport, struct sub *a)
{
	struct stagekit_http_answer h;
	char want[128];

	tw_http_get(mport, "/readyz", &h);
	stagekit_check(h.code == 200, "/readyz is 200 when synced (%d)", h.code);
	tw_http_get(mport, "/metrics", &h);
	snprintf(want, sizeof(want), "vmpool_watcher_objects{kind=\"vm\"} %d",
	    (int)json_object_object_length(fk.res[FR_VM].objs) - 1);
	stagekit_check(strstr(h.body, want) != NULL, "metrics: %s", want);
	stagekit_check(
	    strstr(h.body, "vmpool_watcher_relists_total{kind=\"vm\"}") != NULL &&
	        strstr(h.body, "vmpool_watcher_events_total{kind=\"vm\",type=\"ADDED\"}") != NULL &&
	        strstr(h.body, "vmpool_watcher_subscribers") != NULL &&
	        strstr(h.body, "vmpool_watcher_subscriber_queued_bytes ") != NULL,
	    "metrics: relists, events, subscribers, their queue");
}

static void tw_stop(void)
{
	double end = now_mono() + 10;

	if (child <= 0) {
		stagekit_check(0, "watcher still running before SIGTERM (status %d)", child_status);
		return;
	}
	kill(child, SIGTERM);
	while (tw_child_alive() && now_mono() < end)
		event_base_loop(fk.base, EVLOOP_ONCE);
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, &child_status, 0);
		child = -1;
	}
	stagekit_check(WIFEXITED(child_status) && WEXITSTATUS(child_status) == 0,
	    "SIGTERM: clean exit 0 (status 0x%x)", child_status);
}

static void tw_show_log(const char *path)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "tail -n 60 %s >&2", path);
	if (system(cmd) != 0)
		fprintf(stderr, "(no watcher log)\n");
}

int main(void)
{
	const char *bindir = getenv("VMPOOL_BIN") ? getenv("VMPOOL_BIN") : "bin-asan";
	char bin[512], kc[300], sock[300], wlog[300], maddr[64], rm[300];
	struct timeval tick = {0, 20000};
	struct event *tev;
	static const int act_accept[] = {0};
	static const struct link_spec act_spec = {LINK_ACTUATOR, act_accept, 0};
	static const struct link_cb act_cb = {tw_act_up, NULL, tw_act_down};
	struct link_server *act;
	char *apath;
	struct sub *a, *b;
	int port, mport, pfd;

	log_init("test_watcher", 0, LOG_FMT_TEXT);
	signal(SIGPIPE, SIG_IGN);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/tw-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		abort();
	snprintf(bin, sizeof(bin), "%s/vmpool-watcher", bindir);
	snprintf(kc, sizeof(kc), "%s/kubeconfig", tmpdir);
	snprintf(sock, sizeof(sock), "%s/watcher.sock", tmpdir);
	snprintf(wlog, sizeof(wlog), "%s/watcher.log", tmpdir);
	tw_config_errors(bin);

	fk.base = event_base_new();
	tev = event_new(fk.base, -1, EV_PERSIST, tw_tick, NULL);
	evtimer_add(tev, &tick);
	fake_init();
	tw_seed();
	/* held while the API server is down: the watcher's retries to it are refused, and
	 * nothing else takes it before the server comes up */
	pfd = stagekit_reserve_port(&port);
	mport = stagekit_free_port();
	stagekit_write_kubeconfig(kc, port, TW_TOKEN, NULL);
	snprintf(maddr, sizeof(maddr), "127.0.0.1:%d", mport);
	apath = link_sock_path(tmpdir, LINK_ACTUATOR);
	if ((act = link_listen(fk.base, apath, &act_spec, &act_cb, NULL)) == NULL)
		stagekit_check(0, "the fake actuator listens on %s", apath);
	free(apath);
	{
		char *argv[] = {bin, "--run-dir", tmpdir, "--kubeconfig", kc, "--metrics-addr",
		    maddr, "-v", NULL};
		child = tw_spawn(bin, argv, wlog);
	}

	/* the API server is down at first: the watcher keeps retrying */
	tw_run(1.5);
	stagekit_check(tw_child_alive(), "watcher keeps running while the API server is down");
	if (fake_listen(pfd, port) != 0)
		stagekit_check(0, "fake API server listens on %d", port);
	a = sub_new(fk.base, sock);
	tw_first_sync(a);
	tw_watch_events(a);
	tw_written(a, mport, wlog);
	tw_pvc_events(a);
	tw_garbage(a);
	tw_relists(a);
	tw_bad_list(a, wlog);

	b = sub_new(fk.base, sock);
	stagekit_check(tw_wait(tw_synced_cond, b, 10) && tw_exact(b, 1),
	    "a second subscriber gets a full, exact snapshot");
	stagekit_check(a->syncs == 1, "the first subscriber was not resynced (%d)", a->syncs);
	tw_metrics(mport, a);
	tw_stop();

	if (stagekit_failed)
		tw_show_log(wlog);
	sub_free(a);
	sub_free(b);
	link_server_free(act);
	fake_free();
	event_free(tev);
	event_base_free(fk.base);
	if (!stagekit_failed && getenv("TW_KEEP") == NULL) {
		snprintf(rm, sizeof(rm), "rm -rf %s", tmpdir);
		if (system(rm) != 0)
			fprintf(stderr, "cannot remove %s\n", tmpdir);
	}
	return stagekit_summary("test_watcher");
}

/*
 * test_watchin.c: stage test of vmpool-watcher against hostile or broken input from a fake
 * API server in this process (raw JSON text, so nesting the json-c tokener of the fake would
 * refuse can be served). In order:
 *   1. the cluster serves no VirtualMachinePool API (404): /readyz is not 200, a warning
 *      names the missing API, the list is retried with growing gaps, no snapshot is sent;
 *   1b. the pool group is served at a version the watcher does not speak: another warning
 *      naming it, still not ready;
 *   2. the pool API appears with pools nested 100 and 300 levels deep beside good ones:
 *      the good ones are published whole, the deep ones as stubs marked OBJ_INVALID;
 *   3. watch events: a good pool turned deep becomes a stub; a VM deep only in a field its
 *      projection drops is published without it, one deep in its labels (a field the
 *      projection keeps, of the wrong type) is dropped, a pool with a field of the wrong
 *      type becomes a stub;
 *   4. a watch that sent a bookmark and then nothing is restarted from its last
 *      resourceVersion (no relist) after --watch-silence-timeout, and so is one that never
 *      sent a bookmark.
 * The subscriber is the pipeline's own (mirror.c).
 */
#include <sys/queue.h>
#include <sys/types.h>
#include <sys/wait.h>

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

#include "log.h"
#include "mirror.h"
#include "obj.h"
#include "proto.h"
#include "store.h"
#include "timeutil.h"
#include "../support/stagekit.h"

#define WI_TOKEN   "wi-token"
#define WI_SILENCE "2"

enum { R_POOL, R_VM, R_VMI, R_REV, R_PVC, R_DV, R_N };

struct wres {
	const char *path;
	const char *list_kind;
	int missing;        /* answer 404 */
	char *items;        /* list items, raw JSON text joined by commas */
	int lists, watches; /* requests */
	double list_at[16]; /* when the first lists came */
	char last_watch_rv[32];
	struct evhttp_request *held; /* the open watch, if any */
	struct evhttp_connection *held_conn;
};

static struct {
	struct event_base *base;
	struct evhttp *http;
	struct wres r[R_N];
	long rv;
	int group_v2; /* the pool group is served at v2 only: no version the watcher speaks */
} fk;

static pid_t child = -1;
static int child_status = -1;

/* ---- raw JSON objects ---- */

/* {"x":{"x":...{}}} nesting depth levels, as text */
static char *wi_nest(int depth)
{
	size_t n = (size_t)depth * 6 + 8;
	char *s = calloc(1, n), *p = s;
	int i;

	for (i = 1; i < depth; i++)
		p += sprintf(p, "{\"x\":");
	p += sprintf(p, "{}");
	for (i = 1; i < depth; i++)
		*p++ = '}';
	return s;
}

/* a pool whose whole nesting is depth levels (at least 5) */
static char *wi_pool(const char *name, int depth)
{
	char *nest = wi_nest(depth - 4), *s;

	if (asprintf(&s,
	        "{\"apiVersion\":\"pool.kubevirt.io/v1beta1\",\"kind\":\"VirtualMachinePool\","
	        "\"metadata\":{\"name\":\"%s\",\"namespace\":\"ns\",\"uid\":\"u-%s\","
	        "\"resourceVersion\":\"%ld\",\"generation\":1},\"spec\":{\"replicas\":2,"
	        "\"selector\":{\"matchLabels\":{\"a\":\"b\"}},\"virtualMachineTemplate\":{"
	        "\"metadata\":{\"labels\":{\"a\":\"b\"},\"deep\":%s},\"spec\":{}}},"
	        "\"status\":{\"replicas\":1}}",
	        name, name, ++fk.rv, nest) < 0)
		abort();
	free(nest);
	return s;
}

/* a VM nested depth levels deep in its spec, or in its labels */
static char *wi_vm(const char *name, int depth, int in_labels)
{
	char *nest = wi_nest(depth - 2), *s;

	if (asprintf(&s,
	        "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\",\"metadata\":{"
	        "\"name\":\"%s\",\"namespace\":\"ns\",\"uid\":\"u-%s\",\"resourceVersion\":\"%ld\","
	        "\"labels\":%s},"
	        "\"spec\":%s}",
	        name, name, ++fk.rv, in_labels ? nest : "{}", in_labels ? "{}" : nest) < 0)
		abort();
	free(nest);
	return s;
}

/* ---- the fake API server ---- */

static void wi_reply(struct evhttp_request *req, int code, const char *text)
{
	struct evbuffer *b = evbuffer_new();

	evbuffer_add(b, text, strlen(text));
	evhttp_add_header(
	    evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", b);
	evbuffer_free(b);
}

static void wi_list(struct evhttp_request *req, struct wres *r)
{
	char *body;

	if (r->lists < 16)
		r->list_at[r->lists] = now_mono();
	r->lists++;
	if (r->missing) {
		wi_reply(req, 404,
		    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"reason\":"
		    "\"NotFound\",\"message\":\"the server could not find the requested resource\","
		    "\"code\":404}");
		return;
	}
	if (asprintf(&body,
	        "{\"kind\":\"%s\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":"
	        "\"%ld\"},\"items\":[%s]}",
	        r->list_kind, fk.rv, r->items != NULL ? r->items : "") < 0)
		abort();
	wi_reply(req, 200, body);
	free(body);
}

static void wi_watch_closed(struct evhttp_connection *conn, void *arg)
{
	struct wres *r = arg;

	if (r->held == NULL || r->held_conn != conn)
		return;
	/* libevent hands a request whose client went away mid-reply back to us: ending it
	 * frees it */
	if (evhttp_request_get_connection(r->held) == NULL)
		evhttp_send_reply_end(r->held);
	r->held = NULL;
	r->held_conn = NULL;
}

/* holds the watch open and silent; a newer one replaces the held one */
static void wi_watch(struct evhttp_request *req, struct wres *r, const char *rv)
{
	r->watches++;
	snprintf(r->last_watch_rv, sizeof(r->last_watch_rv), "%s", rv != NULL ? rv : "");
	if (r->missing) {
		wi_reply(req, 404, "{\"kind\":\"Status\",\"code\":404}");
		return;
	}
	evhttp_add_header(
	    evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evhttp_send_reply_start(req, 200, "OK");
	if (r->held != NULL) { /* the client gave the old one up */
		evhttp_connection_set_closecb(r->held_conn, NULL, NULL);
		evhttp_send_reply_end(r->held);
	}
	r->held = req;
	r->held_conn = evhttp_request_get_connection(req);
	evhttp_connection_set_closecb(r->held_conn, wi_watch_closed, r);
}

static void wi_send(struct wres *r, const char *type, const char *obj)
{
	struct evbuffer *b;

	if (r->held == NULL) {
		stagekit_check(0, "a watch is open on %s", r->path);
		return;
	}
	b = evbuffer_new();
	evbuffer_add_printf(b, "{\"type\":\"%s\",\"object\":%s}\n", type, obj);
	evhttp_send_reply_chunk(r->held, b);
	evbuffer_free(b);
}

/* the pool group's discovery: v1beta1, or 404 (counted as a pool list) while it is missing */
static void wi_discovery(struct evhttp_request *req)
{
	if (fk.group_v2) {
		wi_reply(req, 200,
		    "{\"kind\":\"APIGroup\",\"apiVersion\":\"v1\",\"name\":\"pool.kubevirt.io\","
		    "\"versions\":[{\"groupVersion\":\"pool.kubevirt.io/"
		    "v2\",\"version\":\"v2\"}]}");
		return;
	}
	if (fk.r[R_POOL].missing) {
		wi_list(req, &fk.r[R_POOL]);
		return;
	}
	wi_reply(req, 200,
	    "{\"kind\":\"APIGroup\",\"apiVersion\":\"v1\",\"name\":\"pool.kubevirt.io\","
	    "\"versions\":[{\"groupVersion\":\"pool.kubevirt.io/v1beta1\",\"version\":"
	    "\"v1beta1\"}],\"preferredVersion\":{\"groupVersion\":\"pool.kubevirt.io/v1beta1\","
	    "\"version\":\"v1beta1\"}}");
}

static void wi_handle(struct evhttp_request *req, void *arg)
{
	const char *auth =
	    evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	struct evhttp_uri *u = evhttp_uri_parse(evhttp_request_get_uri(req));
	const char *path = u != NULL ? evhttp_uri_get_path(u) : NULL;
	struct wres *r = NULL;
	struct evkeyvalq q;
	int i;

	TAILQ_INIT(&q);
	if (u != NULL && evhttp_uri_get_query(u) != NULL)
		evhttp_parse_query_str(evhttp_uri_get_query(u), &q);
	for (i = 0; i < R_N && path != NULL; i++)
		if (strcmp(path, fk.r[i].path) == 0)
			r = &fk.r[i];
	if (auth == NULL || strcmp(auth, "Bearer " WI_TOKEN) != 0)
		wi_reply(req, 401, "{\"kind\":\"Status\",\"code\":401}");
	else if (path != NULL && strcmp(path, "/apis/pool.kubevirt.io") == 0)
		wi_discovery(req);
	else if (r == NULL)
		wi_reply(req, 404, "{\"kind\":\"Status\",\"code\":404}");
	else if (evhttp_find_header(&q, "watch") != NULL)
		wi_watch(req, r, evhttp_find_header(&q, "resourceVersion"));
	else
		wi_list(req, r);
	evhttp_clear_headers(&q);
	if (u != NULL)
		evhttp_uri_free(u);
}

static void wi_init(void)
{
	static const char *defs[R_N][2] = {
	    {"/apis/pool.kubevirt.io/v1beta1/virtualmachinepools", "VirtualMachinePoolList"},
	    {"/apis/kubevirt.io/v1/virtualmachines", "VirtualMachineList"},
	    {"/apis/kubevirt.io/v1/virtualmachineinstances", "VirtualMachineInstanceList"},
	    {"/apis/apps/v1/controllerrevisions", "ControllerRevisionList"},
	    {"/api/v1/persistentvolumeclaims", "PersistentVolumeClaimList"},
	    {"/apis/cdi.kubevirt.io/v1beta1/datavolumes", "DataVolumeList"},
	};
	int i;

	fk.rv = 100;
	for (i = 0; i < R_N; i++) {
		fk.r[i].path = defs[i][0];
		fk.r[i].list_kind = defs[i][1];
	}
	fk.r[R_DV].missing = 1; /* an optional API: empty */
}

/* ---- waiting and reading ---- */

static int wi_wait(int (*cond)(void *), void *arg, double secs)
{
	return stagekit_wait(fk.base, &child, &child_status, cond, arg, secs);
}

static int wi_lists_at_least(void *arg)
{
	return fk.r[R_POOL].lists >= *(int *)arg;
}

static void wi_http_get(int port, const char *path, struct stagekit_http_answer *h)
{
	stagekit_http_get(fk.base, port, path, h, 5);
}

static int wi_file_has(const char *path, const char *text)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int found = 0;

	while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, text) != NULL;
	if (f != NULL)
		fclose(f);
	return found;
}

/* a warning (klog's W) line of the log with text in it */
static int wi_warn_has(const char *path, const char *text)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int found = 0;

	while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL)
		found = line[0] == 'W' && strstr(line, text) != NULL;
	if (f != NULL)
		fclose(f);
	return found;
}

struct wi_obj {
	struct mirror *m;
	const char *kind, *name;
	int stub; /* want: 1 a stub, 0 whole, -1 absent, 2 present */
};

static int wi_obj_cond(void *arg)
{
	struct wi_obj *w = arg;
	json_object *o = store_get(mirror_store(w->m), w->kind, "ns", w->name);

	if (w->stub < 0)
		return o == NULL;
	if (o == NULL)
		return 0;
	if (w->stub == 2)
		return 1;
	if (w->stub)
		return obj_path(o, OBJ_INVALID) != NULL &&
		       obj_path(o, "spec.virtualMachineTemplate") == NULL &&
		       obj_path(o, "spec.replicas") != NULL &&
		       obj_path(o, "status.replicas") != NULL;
	return obj_path(o, OBJ_INVALID) == NULL &&
	       obj_path(o, "spec.virtualMachineTemplate.metadata.deep") != NULL;
}

static int wi_obj(struct mirror *m, const char *kind, const char *name, int stub, double secs)
{
	struct wi_obj w = {m, kind, name, stub};

	return wi_wait(wi_obj_cond, &w, secs);
}

static int wi_synced_cond(void *arg)
{
	return mirror_synced(arg);
}

/* ---- the phases ---- */

static void wi_no_pool_api(struct mirror *m, int mport, const char *wlog)
{
	struct stagekit_http_answer h;
	int want = 4, ok;
	double g1, g3;

	ok = wi_wait(wi_lists_at_least, &want, 20);
	stagekit_check(ok, "the pool list is retried (%d lists)", fk.r[R_POOL].lists);
	g1 = fk.r[R_POOL].list_at[1] - fk.r[R_POOL].list_at[0];
	g3 = fk.r[R_POOL].list_at[3] - fk.r[R_POOL].list_at[2];
	stagekit_check(
	    ok && g1 > 0 && g3 > g1 * 2.5, "with backoff (gaps %.2f s then %.2f s)", g1, g3);
	wi_http_get(mport, "/readyz", &h);
	stagekit_check(h.code != 200, "/readyz is not 200 without a pool API (%d)", h.code);
	stagekit_check(
	    wi_warn_has(wlog, "does not serve the group pool.kubevirt.io (404); is the CRD "
	                      "installed?: not ready"),
	    "a warning names the missing API");
	stagekit_check(!mirror_synced(m), "no snapshot is published meanwhile");
}

struct wi_grep {
	const char *path, *text;
};

static int wi_log_has(void *arg)
{
	struct wi_grep *g = arg;

	return wi_file_has(g->path, g->text);
}

/* 1b. the group is served, at a version the watcher does not speak: a new warning saying
 * which, still not ready */
static void wi_unknown_version(struct mirror *m, int mport, const char *wlog)
{
	struct stagekit_http_answer h;
	struct wi_grep g = {wlog, "virtualmachinepools: the API server serves pool.kubevirt.io at "
	                          "version(s) v2, none we speak (v1beta1, v1alpha1): not ready"};

	fk.group_v2 = 1;
	stagekit_check(wi_wait(wi_log_has, &g, 40), "a warning names the versions served");
	wi_http_get(mport, "/readyz", &h);
	stagekit_check(h.code != 200, "/readyz is not 200 (%d)", h.code);
	stagekit_check(!mirror_synced(m), "no snapshot is published");
	fk.group_v2 = 0;
}

static void wi_deep_list(struct mirror *m, int mport, const char *wlog)
{
	char *p[4];
	struct stagekit_http_answer h;

	p[0] = wi_pool("good1", 8);
	p[1] = wi_pool("deep100", 100);
	p[2] = wi_pool("good2", 60); /* exactly the limit */
	p[3] = wi_pool("deep300", 300);
	if (asprintf(&fk.r[R_POOL].items, "%s,%s,%s,%s", p[0], p[1], p[2], p[3]) < 0)
		abort();
	for (int i = 0; i < 4; i++)
		free(p[i]);
	fk.r[R_POOL].missing = 0;
	stagekit_check(
	    wi_wait(wi_synced_cond, m, 40), "the pool API appears: a snapshot is published");
	wi_http_get(mport, "/readyz", &h);
	stagekit_check(h.code == 200, "/readyz is 200 (%d)", h.code);
	stagekit_check(wi_obj(m, KIND_POOL, "good1", 0, 1) && wi_obj(m, KIND_POOL, "good2", 0, 1),
	    "pools within the limit are published whole (one at exactly 60 levels)");
	stagekit_check(wi_obj(m, KIND_POOL, "deep100", 1, 1),
	    "a pool nested 100 deep is published as a stub (metadata, replicas, status, marker)");
	stagekit_check(wi_obj(m, KIND_POOL, "deep300", 1, 1),
	    "a pool nested 300 deep too: the list still parses");
	stagekit_check(wi_warn_has(wlog, "pool=\"ns/deep100\" maxDepth=60") &&
	                   wi_warn_has(wlog, "pool=\"ns/deep300\" maxDepth=60"),
	    "a log line names each deep pool");
}

static int wi_held_cond(void *arg)
{
	return fk.r[R_POOL].held != NULL && fk.r[R_VM].held != NULL;
}

static void wi_deep_events(struct mirror *m, const char *wlog)
{
	json_object *vm;
	char *o;

	stagekit_check(wi_wait(wi_held_cond, NULL, 10), "pools and VMs are watched");
	o = wi_pool("good1", 200);
	wi_send(&fk.r[R_POOL], "MODIFIED", o);
	free(o);
	stagekit_check(
	    wi_obj(m, KIND_POOL, "good1", 1, 10), "a pool made deep by a watch event -> stub");
	o = wi_vm("deepvm", 80, 0);
	wi_send(&fk.r[R_VM], "ADDED", o);
	free(o);
	o = wi_vm("badvm", 80, 1);
	wi_send(&fk.r[R_VM], "ADDED", o);
	free(o);
	o = wi_vm("okvm", 10, 0);
	wi_send(&fk.r[R_VM], "ADDED", o);
	free(o);
	stagekit_check(
	    wi_obj(m, KIND_VM, "okvm", 2, 10), "a VM event after a deep one is published");
	vm = store_get(mirror_store(m), KIND_VM, "ns", "deepvm");
	stagekit_check(vm != NULL && obj_path(vm, "spec") == NULL && obj_uid(vm) != NULL,
	    "a VM deep only in its spec is published projected (no spec: nobody reads it)");
	stagekit_check(store_get(mirror_store(m), KIND_VM, "ns", "badvm") == NULL &&
	                   wi_warn_has(wlog, "dropped\" logger=\"vmpool-watcher\" kind=\"vm\" "
	                                     "object=\"ns/badvm\" problem=\"labels (for "
	                                     "metadata.labels) is not a map of strings\""),
	    "a VM deep in its labels (not a map of strings) is dropped with a log line");
	/* a pool whose finalizers are not a list of strings: published as invalid, named */
	if (asprintf(&o,
	        "{\"apiVersion\":\"pool.kubevirt.io/v1beta1\",\"kind\":\"VirtualMachinePool\","
	        "\"metadata\":{\"name\":\"badpool\",\"namespace\":\"ns\",\"uid\":\"u-badpool\","
	        "\"resourceVersion\":\"%ld\",\"finalizers\":\"x\"},\"spec\":{\"replicas\":2,"
	        "\"virtualMachineTemplate\":{\"spec\":{}}},\"status\":{\"replicas\":1}}",
	        ++fk.rv) < 0)
		abort();
	wi_send(&fk.r[R_POOL], "ADDED", o);
	free(o);
	stagekit_check(wi_obj(m, KIND_POOL, "badpool", 1, 10) &&
	                   wi_warn_has(wlog, "pool=\"ns/badpool\" problem=\"finalizers (for "
	                                     "metadata.finalizers) is not a list of strings\""),
	    "a pool with a field of the wrong type is published as an invalid stub, named");
	stagekit_check(mirror_synced(m), "the subscriber never lost its link");
}

static int wi_rewatched(void *arg)
{
	return fk.r[R_POOL].watches > *(int *)arg;
}

static int wi_vm_rewatched(void *arg)
{
	return fk.r[R_VM].watches > *(int *)arg;
}

static void wi_silence(struct mirror *m, int mport, const char *wlog)
{
	int pw = fk.r[R_POOL].watches, vw = fk.r[R_VM].watches, lists = fk.r[R_POOL].lists;
	char bm[200], want[64];
	struct stagekit_http_answer h;
	double t0;
	int ok;

	snprintf(bm, sizeof(bm),
	    "{\"kind\":\"VirtualMachinePool\",\"apiVersion\":\"pool.kubevirt.io/v1beta1\","
	    "\"metadata\":{\"resourceVersion\":\"%ld\"}}",
	    ++fk.rv);
	snprintf(want, sizeof(want), "%ld", fk.rv);
	wi_send(&fk.r[R_POOL], "BOOKMARK", bm);
	t0 = now_mono();
	ok = wi_wait(wi_rewatched, &pw, 10);
	stagekit_check(ok, "a pool watch silent after a bookmark is restarted (%d watches)",
	    fk.r[R_POOL].watches - pw);
	stagekit_check(
	    now_mono() - t0 > 1.5, "...not before the silence timeout (%.1f s)", now_mono() - t0);
	stagekit_check(strcmp(fk.r[R_POOL].last_watch_rv, want) == 0,
	    "...from the bookmark's resourceVersion %s (asked %s)", want,
	    fk.r[R_POOL].last_watch_rv);
	stagekit_check(fk.r[R_POOL].lists == lists, "...without a relist");
	stagekit_check(
	    wi_file_has(wlog, "virtualmachinepools: watch silent for"), "a log line says so");
	wi_http_get(mport, "/metrics", &h);
	stagekit_check(
	    strstr(h.body, "vmpool_watcher_silent_watches_total{kind=\"pool\"} ") != NULL &&
	        strstr(h.body, "vmpool_watcher_silent_watches_total{kind=\"pool\"} 0") == NULL,
	    "vmpool_watcher_silent_watches_total counts it");
	stagekit_check(
	    strstr(h.body, "vmpool_watcher_rejected_total{kind=\"pool\",outcome=\"stub\"} 4") !=
	            NULL &&
	        strstr(h.body,
	            "vmpool_watcher_rejected_total{kind=\"vm\",outcome=\"dropped\"} 1") != NULL,
	    "vmpool_watcher_rejected_total counts the stubs and the dropped VM");
	/* its silence began with its last event or start, which may be a little after the
	 * bookmark: wait for it rather than look once */
	stagekit_check(wi_wait(wi_vm_rewatched, &vw, 10),
	    "a silent watch that never sent a bookmark too (%d)", fk.r[R_VM].watches - vw);
	stagekit_check(mirror_synced(m), "the subscriber kept its picture");
}

static void wi_stop(void)
{
	double end = now_mono() + 10;

	if (child > 0)
		kill(child, SIGTERM);
	while (stagekit_child_alive(&child, &child_status) && now_mono() < end)
		event_base_loop(fk.base, EVLOOP_ONCE);
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, &child_status, 0);
	}
	stagekit_check(WIFEXITED(child_status) && WEXITSTATUS(child_status) == 0,
	    "SIGTERM: clean exit 0 (status 0x%x)", child_status);
}

static void wi_tick(evutil_socket_t fd, short ev, void *arg)
{
}

int main(void)
{
	const char *bindir = getenv("VMPOOL_BIN") ? getenv("VMPOOL_BIN") : "bin-asan";
	char dir[] = "/tmp/wi-XXXXXX", bin[512], kc[300], sock[300], wlog[300], maddr[64];
	struct timeval tick = {0, 20000};
	struct event *tev;
	struct mirror *m;
	int port, mport, i;

	log_init("test_watchin", 0, LOG_FMT_TEXT);
	signal(SIGPIPE, SIG_IGN);
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(bin, sizeof(bin), "%s/vmpool-watcher", bindir);
	snprintf(kc, sizeof(kc), "%s/kubeconfig", dir);
	snprintf(sock, sizeof(sock), "%s/watcher.sock", dir);
	snprintf(wlog, sizeof(wlog), "%s/watcher.log", dir);
	fk.base = event_base_new();
	tev = event_new(fk.base, -1, EV_PERSIST, wi_tick, NULL);
	evtimer_add(tev, &tick);
	wi_init();
	fk.r[R_POOL].missing = 1;
	port = stagekit_free_port();
	mport = stagekit_free_port();
	stagekit_write_kubeconfig(kc, port, WI_TOKEN, NULL);
	snprintf(maddr, sizeof(maddr), "127.0.0.1:%d", mport);
	if (stagekit_http_serve(fk.base, port, wi_handle, &fk.http) != 0)
		stagekit_check(0, "fake API listens on %d", port);
	{
		char *argv[] = {bin, "--run-dir", dir, "--kubeconfig", kc, "--metrics-addr", maddr,
		    "--watch-silence-timeout", WI_SILENCE, NULL};
		child = stagekit_spawn(bin, argv, wlog);
	}
	m = mirror_new(fk.base, sock, 0, NULL, NULL);
	wi_no_pool_api(m, mport, wlog);
	wi_unknown_version(m, mport, wlog);
	wi_deep_list(m, mport, wlog);
	wi_deep_events(m, wlog);
	wi_silence(m, mport, wlog);
	wi_stop();
	if (stagekit_failed) {
		char cmd[400];
		snprintf(cmd, sizeof(cmd), "cut -c1-300 %s | tail -n 40 >&2", wlog);
		if (system(cmd) != 0)
			fprintf(stderr, "(no watcher log)\n");
	}
	mirror_free(m);
	for (i = 0; i < R_N; i++) {
		if (fk.r[i].held != NULL) {
			evhttp_connection_set_closecb(fk.r[i].held_conn, NULL, NULL);
			evhttp_send_reply_end(fk.r[i].held);
		}
		free(fk.r[i].items);
	}
	evhttp_free(fk.http);
	event_free(tev);
	event_base_free(fk.base);
	if (!stagekit_failed) {
		char rm[100];
		snprintf(rm, sizeof(rm), "rm -rf %s", dir);
		if (system(rm) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
	}
	return stagekit_summary("test_watchin");
}

/*
 * test_kubeclient.c: the Kubernetes client (common/kube.c) against a real API server.
 * Needs KUBECONFIG (or the usual precedence). Works in its own namespace, which it deletes
 * at the end. Prints one line per check and "test_kubeclient: N passed, M failed"; exits
 * non-zero on any failure.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "kube.h"
#include "log.h"
#include "timeutil.h"

static struct event_base *base;
static struct kube *kube;
static char ns[64];
static int npass, nfail;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s: ", ok ? "ok" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (ok)
		npass++;
	else
		nfail++;
}

/* ---- synchronous wrappers, for a linear test ---- */

struct call {
	int done;
	long status;
	char reason[64];
	char message[512];
	json_object *body;
};

static void tick(evutil_socket_t fd, short kind, void *arg)
{
}

/* runs the loop until *flag is set or timeout seconds pass */
static void run_until(const int *flag, double timeout)
{
	double deadline = now_mono() + timeout;

	while ((flag == NULL || !*flag) && now_mono() < deadline)
		event_base_loop(base, EVLOOP_ONCE);
}

static void call_done(const struct kube_response *r, void *arg)
{
	struct call *c = arg;

	c->status = r->status;
	snprintf(c->reason, sizeof c->reason, "%s", r->reason);
	snprintf(c->message, sizeof c->message, "%s", r->message);
	c->body = r->body != NULL ? json_object_get(r->body) : NULL;
	c->done = 1;
}

static void call_clear(struct call *c)
{
	json_object_put(c->body);
	memset(c, 0, sizeof *c);
}

static struct call call(
    struct kube *k, const char *method, const char *path, const char *ctype, const char *body)
{
	struct call c = {0};

	if (kube_request(k, method, path, ctype, body, call_done, &c) == -1) {
		snprintf(c.message, sizeof c.message, "kube_request failed");
		return c;
	}
	run_until(&c.done, 120);
	if (!c.done)
		snprintf(c.message, sizeof c.message, "no answer in time");
	/* the callback holds &c: never leave with a request in flight */
	while (!c.done)
		event_base_loop(base, EVLOOP_ONCE);
	return c;
}

static const char *jstr(json_object *o, const char *path)
{
	char key[128], *dot;
	json_object *v = o;
	const char *p = path;

	while (v != NULL && *p != '\0') {
		snprintf(key, sizeof key, "%s", p);
		if ((dot = strchr(key, '.')) != NULL)
			*dot = '\0';
		if (!json_object_object_get_ex(v, key, &v))
			return NULL;
		p += strlen(key);
		if (*p == '.')
			p++;
	}
	return v != NULL && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
	                                                             : NULL;
}

static const char *str_or(const char *s, const char *dflt)
{
	return s != NULL ? s : dflt;
}

static char *cm_path(const char *name)
{
	static char p[256];

	snprintf(p, sizeof p, "/api/v1/namespaces/%s/configmaps%s%s", ns, name ? "/" : "",
	    name ? name : "");
	return p;
}

static void cm_body(char *out, size_t len, const char *name, const char *value)
{
	snprintf(out, len,
	    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"%s\"},"
	    "\"data\":{\"k\":\"%s\"}}",
	    name, value);
}

/* ---- watch collector ---- */

struct wstate {
	const char *name; /* count events for this object only; NULL: all */
	struct kube_watch *w;
	int added, modified, deleted, bookmarks, errors, err410, total;
	int cancel_on_first;
	int ended;
	long end_status;
	char end_msg[256];
};

static void w_event(const char *type, json_object *obj, void *arg)
{
	struct wstate *s = arg;
	const char *name = jstr(obj, "metadata.name");
	json_object *code;

	s->total++;
	if (strcmp(type, "BOOKMARK") == 0)
		s->bookmarks++;
	else if (strcmp(type, "ERROR") == 0) {
		s->errors++;
		if (json_object_object_get_ex(obj, "code", &code) &&
		    json_object_get_int(code) == 410)
			s->err410++;
	} else if (s->name == NULL || (name != NULL && strcmp(name, s->name) == 0)) {
		if (strcmp(type, "ADDED") == 0)
			s->added++;
		else if (strcmp(type, "MODIFIED") == 0)
			s->modified++;
		else if (strcmp(type, "DELETED") == 0)
			s->deleted++;
	}
	if (s->cancel_on_first && s->total == 1) {
		kube_watch_cancel(s->w);
		s->w = NULL;
	}
}

static void w_end(long status, const char *message, void *arg)
{
	struct wstate *s = arg;

	s->ended++;
	s->end_status = status;
	snprintf(s->end_msg, sizeof s->end_msg, "%s", message);
	s->w = NULL;
}

/* ---- the steps ---- */

static void step_namespace(void)
{
	char body[256];
	struct call c;

	snprintf(ns, sizeof ns, "kubeclient-e2e-%d", (int)getpid());
	snprintf(body, sizeof body,
	    "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
	    "\"metadata\":{\"name\":\"%s\"}}",
	    ns);
	c = call(kube, "POST", "/api/v1/namespaces", NULL, body);
	check(c.status == 201, "create namespace %s: %ld %s", ns, c.status, c.message);
	call_clear(&c);
}

static void step_create_get(void)
{
	char body[512];
	struct call c;

	cm_body(body, sizeof body, "cm1", "v");
	c = call(kube, "POST", cm_path(NULL), NULL, body);
	check(c.status == 201, "create ConfigMap: %ld", c.status);
	check(c.body != NULL && strcmp(str_or(jstr(c.body, "metadata.name"), ""), "cm1") == 0,
	    "create returns the object");
	call_clear(&c);

	c = call(kube, "POST", cm_path(NULL), NULL, body);
	check(c.status == 409 && strcmp(c.reason, "AlreadyExists") == 0,
	    "create again: %ld reason %s message \"%s\"", c.status, c.reason, c.message);
	check(c.message[0] != '\0', "conflict has a message");
	call_clear(&c);

	c = call(kube, "GET", cm_path("cm1"), NULL, NULL);
	check(c.status == 200 && strcmp(str_or(jstr(c.body, "data.k"), ""), "v") == 0,
	    "GET: %ld data.k=%s", c.status, str_or(jstr(c.body, "data.k"), "(none)"));
	call_clear(&c);

	c = call(kube, "GET", cm_path("no-such-cm"), NULL, NULL);
	check(c.status == 404 && strcmp(c.reason, "NotFound") == 0, "GET missing: %ld %s", c.status,
	    c.reason);
	call_clear(&c);
}

static void step_patch(void)
{
	struct call c;

	c = call(kube, "PATCH", cm_path("cm1"), "application/json-patch+json",
	    "[{\"op\":\"test\",\"path\":\"/data/k\",\"value\":\"WRONG\"},"
	    "{\"op\":\"replace\",\"path\":\"/data/k\",\"value\":\"x\"}]");
	check((c.status == 422 || c.status == 409) && c.reason[0] != '\0',
	    "JSON patch with failing test op: %ld reason %s", c.status, c.reason);
	call_clear(&c);

	c = call(kube, "PATCH", cm_path("cm1"), "application/json-patch+json",
	    "[{\"op\":\"test\",\"path\":\"/data/k\",\"value\":\"v\"},"
	    "{\"op\":\"replace\",\"path\":\"/data/k\",\"value\":\"v2\"}]");
	check(c.status == 200 && strcmp(str_or(jstr(c.body, "data.k"), ""), "v2") == 0,
	    "JSON patch: %ld data.k=%s", c.status, str_or(jstr(c.body, "data.k"), "(none)"));
	call_clear(&c);

	c = call(kube, "PATCH", cm_path("cm1"), "application/merge-patch+json",
	    "{\"data\":{\"m\":\"1\"},\"metadata\":{\"labels\":{\"e2e\":\"yes\"}}}");
	check(c.status == 200 && strcmp(str_or(jstr(c.body, "data.m"), ""), "1") == 0 &&
	          strcmp(str_or(jstr(c.body, "metadata.labels.e2e"), ""), "yes") == 0,
	    "merge patch: %ld", c.status);
	call_clear(&c);
}

/* five creates in flight at once, then a paged list with limit=1 */
static void step_paging(void)
{
	struct call cs[5];
	char body[512], name[32], path[1024], *cont = NULL, *esc;
	int i, all, pages = 0, seen[5] = {0}, maxitems = 0, n;
	json_object *items, *it;
	struct call c;

	memset(cs, 0, sizeof cs);
	for (i = 0; i < 5; i++) {
		snprintf(name, sizeof name, "cm-page-%d", i);
		cm_body(body, sizeof body, name, "p");
		kube_request(kube, "POST", cm_path(NULL), NULL, body, call_done, &cs[i]);
	}
	for (all = 0; !all;) {
		event_base_loop(base, EVLOOP_ONCE);
		for (all = 1, i = 0; i < 5; i++)
			all &= cs[i].done;
	}
	for (all = 1, i = 0; i < 5; i++) {
		all &= cs[i].status == 201;
		call_clear(&cs[i]);
	}
	check(all, "5 concurrent creates: all 201");

	do {
		if (cont != NULL) {
			esc = kube_escape(cont);
			snprintf(path, sizeof path, "%s?limit=1&continue=%s", cm_path(NULL), esc);
			free(esc);
		} else
			snprintf(path, sizeof path, "%s?limit=1", cm_path(NULL));
		free(cont);
		cont = NULL;
		c = call(kube, "GET", path, NULL, NULL);
		if (c.status != 200 || !json_object_object_get_ex(c.body, "items", &items)) {
			check(0, "list page %d: %ld %s", pages, c.status, c.message);
			call_clear(&c);
			break;
		}
		pages++;
		n = (int)json_object_array_length(items);
		maxitems = n > maxitems ? n : maxitems;
		for (i = 0; i < n; i++) {
			it = json_object_array_get_idx(items, i);
			if (sscanf(str_or(jstr(it, "metadata.name"), ""), "cm-page-%d", &all) ==
			        1 &&
			    all >= 0 && all < 5)
				seen[all]++;
		}
		if (jstr(c.body, "metadata.continue") != NULL &&
		    *jstr(c.body, "metadata.continue") != '\0')
			cont = strdup(jstr(c.body, "metadata.continue"));
		call_clear(&c);
	} while (cont != NULL && pages < 50);
	free(cont);
	for (all = 1, i = 0; i < 5; i++)
		all &= seen[i] == 1;
	check(pages >= 6 && maxitems == 1 && all,
	    "paged list: %d pages of at most %d item, every cm-page-N once", pages, maxitems);
}

static char *list_rv(const char *path)
{
	struct call c = call(kube, "GET", path, NULL, NULL);
	char *rv = c.status == 200 && jstr(c.body, "metadata.resourceVersion") != NULL
	               ? strdup(jstr(c.body, "metadata.resourceVersion"))
	               : NULL;

	call_clear(&c);
	return rv;
}

static void step_watch_changes(void)
{
	struct wstate s = {.name = "cm-watch"};
	char path[512], body[512];
	char *rv = list_rv(cm_path(NULL));
	struct call c;
	int all;

	check(rv != NULL, "list resourceVersion %s", str_or(rv, "(none)"));
	snprintf(
	    path, sizeof path, "%s?watch=1&resourceVersion=%s", cm_path(NULL), str_or(rv, "0"));
	free(rv);
	s.w = kube_watch_start(kube, path, w_event, w_end, &s);
	check(s.w != NULL, "watch started");
	run_until(NULL, 0.5);

	cm_body(body, sizeof body, "cm-watch", "1");
	c = call(kube, "POST", cm_path(NULL), NULL, body);
	call_clear(&c);
	c = call(kube, "PATCH", cm_path("cm-watch"), "application/merge-patch+json",
	    "{\"data\":{\"k\":\"2\"}}");
	call_clear(&c);
	c = call(kube, "DELETE", cm_path("cm-watch"), NULL, NULL);
	call_clear(&c);
	for (all = 0; !all && !s.ended;) {
		run_until(&s.ended, 0.2);
		all = s.added == 1 && s.modified >= 1 && s.deleted == 1;
		if (!all && s.total > 100)
			break;
	}
	check(all, "watch saw ADDED %d MODIFIED %d DELETED %d", s.added, s.modified, s.deleted);
	check(!s.ended, "watch still open (%ld %s)", s.end_status, s.end_msg);
	kube_watch_cancel(s.w);
	run_until(NULL, 0.3);
	check(s.ended == 0, "cancel does not call end()");
}

static void step_watch_cancel_inside(void)
{
	struct wstate s = {.cancel_on_first = 1};
	char path[512];

	/* resourceVersion=0: the current state arrives as ADDED events, several at once */
	snprintf(path, sizeof path, "%s?watch=1&resourceVersion=0", cm_path(NULL));
	s.w = kube_watch_start(kube, path, w_event, w_end, &s);
	run_until(NULL, 1.0);
	check(s.total == 1 && s.ended == 0 && s.w == NULL,
	    "cancel from inside event(): %d event(s), end() %d time(s)", s.total, s.ended);
}

static void step_watch_bookmarks(void)
{
	struct wstate s = {0};
	char path[512];
	char *rv = list_rv(cm_path(NULL));
	double t0 = now_mono();
	struct call c;

	snprintf(path, sizeof path,
	    "%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=5&"
	    "resourceVersion=%s",
	    cm_path(NULL), str_or(rv, "0"));
	free(rv);
	s.w = kube_watch_start(kube, path, w_event, w_end, &s);
	/* the API server (1.20) sends a bookmark ~2 s before the deadline, and only once the
	 * cache has moved past the watch's resourceVersion: make a change */
	run_until(NULL, 0.5);
	c = call(kube, "PATCH", cm_path("cm-page-0"), "application/merge-patch+json",
	    "{\"data\":{\"k\":\"bookmark\"}}");
	call_clear(&c);
	run_until(&s.ended, 20);
	check(s.modified == 1, "bookmark watch saw the change (MODIFIED %d)", s.modified);
	check(s.ended == 1 && s.end_status == 200,
	    "bookmark watch ended by timeoutSeconds after %.1fs: end() %d, status %ld %s",
	    now_mono() - t0, s.ended, s.end_status, s.end_msg);
	check(s.bookmarks >= 1, "bookmark watch saw %d BOOKMARK event(s)", s.bookmarks);
}

static void step_watch_expired(void)
{
	struct wstate s = {0};
	char path[512];

	/* a custom resource: its watch cache starts well after resourceVersion 1 */
	snprintf(path, sizeof path,
	    "/apis/kubevirt.io/v1/namespaces/%s/virtualmachines?watch=1&resourceVersion=1", ns);
	s.w = kube_watch_start(kube, path, w_event, w_end, &s);
	run_until(&s.ended, 20);
	check(s.err410 >= 1 || s.end_status == 410,
	    "watch from resourceVersion 1: %d ERROR 410 event(s), end status %ld", s.err410,
	    s.end_status);
	check(s.ended == 1, "expired watch ended once (%d)", s.ended);
}

static void step_delete(void)
{
	struct call c;

	c = call(kube, "DELETE", cm_path("cm1"), NULL, NULL);
	check(c.status == 200, "DELETE: %ld", c.status);
	call_clear(&c);
	c = call(kube, "DELETE", cm_path("cm1"), NULL,
	    "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\"}");
	check(c.status == 404 && strcmp(c.reason, "NotFound") == 0, "DELETE again: %ld reason %s",
	    c.status, c.reason);
	call_clear(&c);
}

/* writes pass through the token bucket in order without blocking the loop */
static void step_token_bucket(const struct kube_config *cfg)
{
	struct kube_opts o = {.qps = 10, .burst = 1};
	struct kube *k = kube_new(base, cfg, &o);
	struct call cs[4];
	char body[512], name[32];
	double t0 = now_mono(), took;
	int i, all, ok;

	memset(cs, 0, sizeof cs);
	for (i = 0; i < 4; i++) {
		snprintf(name, sizeof name, "cm-tb-%d", i);
		cm_body(body, sizeof body, name, "t");
		kube_request(k, "POST", cm_path(NULL), NULL, body, call_done, &cs[i]);
	}
	check(now_mono() - t0 < 0.05, "kube_request does not block");
	for (all = 0; !all;) {
		event_base_loop(base, EVLOOP_ONCE);
		for (all = 1, i = 0; i < 4; i++)
			all &= cs[i].done;
	}
	took = now_mono() - t0;
	for (ok = 1, i = 0; i < 4; i++) {
		ok &= cs[i].status == 201;
		call_clear(&cs[i]);
	}
	check(ok && took >= 0.28, "4 writes at qps 10 burst 1: all 201 in %.2fs", took);
	kube_free(k);
}

/* nothing listens: the request waits at the gate (one probe at a time, a shared backoff)
 * for its patience, then fails with status 0; a handful of attempts, not one per retry */
static void step_transport_error(const struct kube_config *cfg)
{
	struct kube_config bad = *cfg;
	struct kube_opts o = {.patience = 3};
	struct kube_stats st;
	struct kube *k;
	struct call c;
	double t0 = now_mono();

	bad.server = "http://127.0.0.1:1";
	k = kube_new(base, &bad, &o);
	c = call(k, "GET", "/api/v1/namespaces", NULL, NULL);
	kube_get_stats(k, &st);
	check(c.status == 0 && c.message[0] != '\0' && st.outages == 1 && st.attempts >= 2 &&
	          st.attempts <= 5 && now_mono() - t0 >= 2.9,
	    "connection refused: status %ld \"%s\" after %lu attempts in %.1fs", c.status,
	    c.message, st.attempts, now_mono() - t0);
	call_clear(&c);
	kube_free(k);
}

/* kube_free with a live watch: no callbacks afterwards */
static void step_free_with_watch(const struct kube_config *cfg)
{
	struct kube *k = kube_new(base, cfg, NULL);
	struct wstate s = {0};
	char path[512];

	snprintf(path, sizeof path, "%s?watch=1", cm_path(NULL));
	s.w = kube_watch_start(k, path, w_event, w_end, &s);
	run_until(NULL, 0.5);
	kube_free(k);
	run_until(NULL, 0.3);
	check(s.ended == 0, "kube_free with a live watch calls no end()");
}

int main(int argc, char **argv)
{
	struct kube_opts opts = {.qps = 50, .burst = 20};
	struct kube_config cfg;
	struct kube_stats st;
	struct timeval tv = {0, 50000};
	struct event *t;
	char err[512];
	struct call c;

	log_init("test_kubeclient", getenv("VERBOSE") != NULL, LOG_FMT_TEXT);
	if (kubeconfig_load(argc > 1 ? argv[1] : NULL, &cfg, err, sizeof err) == -1) {
		fprintf(stderr, "test_kubeclient: %s\n", err);
		return 1;
	}
	base = event_base_new();
	t = event_new(base, -1, EV_PERSIST, tick, NULL);
	event_add(t, &tv);
	if ((kube = kube_new(base, &cfg, &opts)) == NULL) {
		fprintf(stderr, "test_kubeclient: kube_new failed\n");
		return 1;
	}
	step_namespace();
	if (nfail == 0) {
		step_create_get();
		step_patch();
		step_paging();
		step_watch_changes();
		step_watch_cancel_inside();
		step_watch_bookmarks();
		step_watch_expired();
		step_delete();
		step_token_bucket(&cfg);
		step_free_with_watch(&cfg);
		step_transport_error(&cfg);
		kube_get_stats(kube, &st);
		check(st.requests > 10 && st.writes > 5 && st.watch_events > 3,
		    "stats: %lu requests, %lu writes, %lu errors, %lu retries, %lu watch events",
		    st.requests, st.writes, st.errors, st.retries, st.watch_events);
	}
	{
		char path[128];

		snprintf(path, sizeof path, "/api/v1/namespaces/%s", ns);
		c = call(kube, "DELETE", path, NULL, NULL);
		check(c.status == 200 || c.status == 202, "delete namespace: %ld", c.status);
		call_clear(&c);
	}
	kube_free(kube);
	event_free(t);
	event_base_free(base);
	kubeconfig_clear(&cfg);
	printf("test_kubeclient: %d passed, %d failed\n", npass, nfail);
	return nfail == 0 ? 0 : 1;
}

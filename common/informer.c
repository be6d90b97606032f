/*
 * informer.c: list + watch of one API resource (see informer.h for the state machine).
 * Owns the objects of its kind in the shared store; every change goes to the sink. Used by
 * the watcher (projected objects, a shard's filter) and by the simulator (whole objects).
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "backoff.h"
#include "informer.h"
#include "kube.h"
#include "log.h"
#include "managers.h"
#include "metrics.h"
#include "obj.h"
#include "pmap.h"
#include "resource.h"
#include "store.h"
#include "timeutil.h"
#include "xmalloc.h"

/* items per list page: a page is parsed whole (a json-c tree of ~20 KB a VM) before its items
 * are projected, so 500 VMs made a ~10 MB transient peak; 100 costs 5 times the requests of
 * a relist (issue 9) */
#define INF_PAGE_LIMIT    100
#define INF_BACKOFF_BASE  0.5
#define INF_BACKOFF_CAP   30.0
#define INF_ABSENT_RETRY  30.0
#define INF_WATCH_MIN     300
#define INF_WATCH_MAX     600
#define INF_WATCH_GRACE   60.0 /* watchdog beyond timeoutSeconds */
#define INF_WATCH_SHORT   1.0  /* a normal end this soon, with no event, backs off */
#define INF_WATCH_FAILS   3    /* failed watches in a row, none with an event: list again */
#define INF_LIST_RESTARTS 3    /* 410s on continue tokens before backing off */
#define INF_SILENCE       30.0 /* see WATCHER_SILENCE */

/* the metric families, <prefix>_objects, ... (informer_metrics_declare) */
#define INF_FAMILY_LEN 96
static char inf_m_objects[INF_FAMILY_LEN] = "vmpool_watcher_objects";
static char inf_m_bytes[INF_FAMILY_LEN] = "vmpool_watcher_stored_bytes";
static char inf_m_events[INF_FAMILY_LEN] = "vmpool_watcher_events_total";
static char inf_m_relists[INF_FAMILY_LEN] = "vmpool_watcher_relists_total";
static char inf_m_silent[INF_FAMILY_LEN] = "vmpool_watcher_silent_watches_total";
static char inf_m_written[INF_FAMILY_LEN] = "vmpool_watcher_written_total";
#define M_OBJECTS inf_m_objects
#define M_BYTES   inf_m_bytes
#define M_EVENTS  inf_m_events
#define M_RELISTS inf_m_relists
#define M_SILENT  inf_m_silent
#define M_WRITTEN inf_m_written

enum inf_next {
	NEXT_LIST,
	NEXT_WATCH,
};

struct informer {
	struct event_base *base;
	struct kube *kube;
	struct store *store;
	const struct informer_res *res;
	const struct resource *rs; /* the table's entry for res->kind */
	char *path;                /* /apis/<group>/<version>[/namespaces/<ns>]/<plural> */
	char *query;               /* "&labelSelector=..." (--pool-selector) or NULL */
	struct informer_sink sink;
	void *arg;

	enum informer_state state;
	enum inf_next next; /* what BACKOFF leads to */
	struct event *timer;
	struct backoff backoff;

	struct store *fresh; /* objects of the list in progress, but for: */
	struct pmap *same;   /* "ns/name" of its items kept at the same resourceVersion */
	char *cont;          /* continue token of the next page */
	int restarts;        /* list restarts after a 410 on a continue token */
	char *rv;            /* last resourceVersion seen */

	struct kube_watch *watch;
	double watch_started;
	double watch_deadline; /* timeoutSeconds + grace: the server should have ended it */
	double watch_last;     /* last event or bookmark */
	int watch_ok;          /* the watch delivered a non-error event */
	int bookmarks;         /* the server sends bookmarks for this resource */
	int silent_runs;       /* watches restarted for silence in a row */
	int failed_watches;    /* watches in a row that failed before delivering an event */
	double silence;        /* a bookmarked watch silent this long is restarted; 0: never */

	int synced;
	int absent;          /* logged as missing; cleared when it answers again */
	double absent_since; /* the first 404 since the last list that answered, or 0 */

	/* the group's version, discovered (rs->version NULL) */
	char *ns;         /* escaped namespace, or NULL: to build path again with another version */
	char *version;    /* the version discovered, or NULL */
	char *absent_why; /* why the group is missing, as last warned, or NULL */

	/* a shard (informer_set_filter): the second test of keep, with its context */
	int (*filter)(const char *kind, json_object *obj, void *arg);
	void *filter_arg;
	int relisting;     /* informer_relist() asked for a list not completed yet */
	int relist_wanted; /* asked while listing: one more list after this one */
};

static const char *inf_state_names[] = {
    [INF_IDLE] = "IDLE",
    [INF_LISTING] = "LISTING",
    [INF_WATCHING] = "WATCHING",
    [INF_EXPIRED] = "EXPIRED",
    [INF_BACKOFF] = "BACKOFF",
    [INF_ABSENT] = "ABSENT",
    [INF_STOPPED] = "STOPPED",
};

static void inf_list_begin(struct informer *);
static void inf_watch_begin(struct informer *);
static void inf_watch_drop(struct informer *);

const char *informer_state_name(enum informer_state s)
{
	if ((size_t)s >= sizeof(inf_state_names) / sizeof(inf_state_names[0]))
		return "UNKNOWN";
	return inf_state_names[s];
}

/* The one place the state changes: logs the transition and drops any pending timer. */
static void inf_set_state(struct informer *inf, enum informer_state s, const char *why)
{
	if (inf->state != s)
		log_info(NULL, "%s: %s -> %s (%s)", inf->rs->plural,
		    informer_state_name(inf->state), informer_state_name(s), why);
	else
		log_debug(NULL, "%s: %s again (%s)", inf->rs->plural, informer_state_name(s), why);
	inf->state = s;
	evtimer_del(inf->timer);
}

/* /apis/<group>/<version>: fixed, or with the version discovered */
static const char *inf_prefix(struct informer *inf)
{
	static char buf[256];
	/* before the first discovery: the preferred version, for log lines */
	const char *v = resource_version(inf->rs, inf->version);

	if (inf->rs->group[0] == '\0')
		snprintf(buf, sizeof buf, "/api/%s", v);
	else
		snprintf(buf, sizeof buf, "/apis/%s/%s", inf->rs->group, v);
	return buf;
}

static void inf_timer_after(struct informer *inf, double secs)
{
	struct timeval tv;

	if (secs < 0)
		secs = 0;
	tv = secs_to_tv(secs);
	evtimer_add(inf->timer, &tv);
}

static void inf_count(const char *family, const char *kind, const char *type, double n)
{
	char labels[128];

	if (type != NULL)
		snprintf(labels, sizeof(labels), "kind=\"%s\",type=\"%s\"", kind, type);
	else
		snprintf(labels, sizeof(labels), "kind=\"%s\"", kind);
	metrics_add(family, labels, n);
}

static void inf_update_gauge(struct informer *inf)
{
	char labels[64];

	snprintf(labels, sizeof(labels), "kind=\"%s\"", inf->res->kind);
	metrics_set(M_OBJECTS, labels, (double)store_count(inf->store, inf->res->kind));
	metrics_set(M_BYTES, NULL, (double)store_bytes(inf->store));
}

void informer_metrics_declare(const char *prefix)
{
	snprintf(M_OBJECTS, INF_FAMILY_LEN, "%s_objects", prefix);
	snprintf(M_BYTES, INF_FAMILY_LEN, "%s_stored_bytes", prefix);
	snprintf(M_EVENTS, INF_FAMILY_LEN, "%s_events_total", prefix);
	snprintf(M_RELISTS, INF_FAMILY_LEN, "%s_relists_total", prefix);
	snprintf(M_SILENT, INF_FAMILY_LEN, "%s_silent_watches_total", prefix);
	snprintf(M_WRITTEN, INF_FAMILY_LEN, "%s_written_total", prefix);
	metrics_declare(M_OBJECTS, "gauge", "Objects kept by the informers, by kind.");
	metrics_declare(M_BYTES, "gauge", "Bytes of msgpack the informers keep for their objects.");
	metrics_declare(M_EVENTS, "counter", "Watch events received, by kind and type.");
	metrics_declare(M_RELISTS, "counter", "Full relists after the first list, by kind.");
	metrics_declare(M_SILENT, "counter",
	    "Watches restarted (from their last resourceVersion) after no event and no bookmark "
	    "for longer than --watch-silence-timeout, by kind.");
	metrics_declare(M_WRITTEN, "counter",
	    "Objects the actuator's creates were answered with, by kind and what became of them "
	    "(kept: shown before the watch showed them).");
}

int informer_keep_pool_owned(json_object *obj)
{
	json_object *refs = obj_path(obj, "metadata.ownerReferences");
	size_t i, n;

	if (refs == NULL || !json_object_is_type(refs, json_type_array))
		return 0;
	n = json_object_array_length(refs);
	for (i = 0; i < n; i++) {
		const char *kind = obj_str(json_object_array_get_idx(refs, i), "kind");
		if (kind != NULL && strcmp(kind, "VirtualMachinePool") == 0)
			return 1;
	}
	return 0;
}

int informer_keep_vm_controlled(json_object *obj)
{
	const char *kind = obj_str(obj_controller_ref(obj), "kind");

	return kind != NULL && strcmp(kind, "VirtualMachine") == 0;
}

static const char *inf_rv(json_object *obj)
{
	return obj_str(obj, "metadata.resourceVersion");
}

static void inf_remember_rv(struct informer *inf, json_object *obj)
{
	const char *rv = inf_rv(obj);

	if (rv == NULL || *rv == '\0')
		return;
	free(inf->rv);
	inf->rv = xstrdup(rv);
}

/*
 * Makes an object from the API fit to keep: replaces metadata.managedFields by the small
 * projection of common/managers.h, fills in the kind and apiVersion that list items of
 * built-in types lack, applies the resource's filter, then its transform (the watcher's:
 * the projection of resource.h and the nesting check of watcher/admit.h; none: kept whole).
 * Returns 0 with *out the object to keep (a new reference), 1 if the filter rejects it, 2 if
 * it is dropped as unusable (logged), -1 if it has no name at all (logged).
 */
static int inf_clean(
    struct informer *inf, json_object *obj, const char *kind, const char *api, json_object **out)
{
	json_object *meta;
	const char *name;

	*out = NULL;
	if (obj == NULL || !json_object_is_type(obj, json_type_object)) {
		log_warnx(NULL, "%s: skipping an item that is not an object", inf->rs->plural);
		return -1;
	}
	meta = obj_path(obj, "metadata");
	name = obj_str(obj, "metadata.name");
	if (meta == NULL || !json_object_is_type(meta, json_type_object) || name == NULL ||
	    *name == '\0') {
		log_warnx(NULL, "%s: skipping an object without metadata.name", inf->rs->plural);
		return -1;
	}
	managers_project(meta);
	if (kind != NULL && obj_str(obj, "kind") == NULL)
		json_object_object_add(obj, "kind", json_object_new_string(kind));
	if (api != NULL && obj_str(obj, "apiVersion") == NULL)
		json_object_object_add(obj, "apiVersion", json_object_new_string(api));
	if (inf->res->keep != NULL && !inf->res->keep(obj))
		return 1;
	if (inf->filter != NULL && !inf->filter(inf->res->kind, obj, inf->filter_arg))
		return 1;
	if (inf->res->transform != NULL)
		*out = inf->res->transform(inf->res->kind, obj);
	else
		*out = json_object_get(obj);
	return *out != NULL ? 0 : 2;
}

/* ---- the list in progress ---- */

/* "ns/name", the key of inf->same */
static const char *inf_name_key(const char *ns, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", ns != NULL ? ns : "", name != NULL ? name : "");
	return out;
}

static const char *const inf_no_owner_kinds[] = {NULL};

/* drops the list in progress; with make, starts an empty one */
static void inf_fresh_reset(struct informer *inf, int make)
{
	store_free(inf->fresh);
	pmap_free(inf->same);
	inf->fresh = make ? store_new() : NULL;
	if (inf->fresh != NULL) /* a list in progress, read by name */
		store_owner_kinds(inf->fresh, inf_no_owner_kinds);
	inf->same = make ? pmap_new(NULL) : NULL;
}

/* ---- publishing changes ---- */

static void inf_publish_set(struct informer *inf, json_object *obj)
{
	json_object *prev;

	prev = store_put(inf->store, inf->res->kind, json_object_get(obj));
	if (inf->sink.set != NULL)
		inf->sink.set(inf->res->kind, obj, inf->arg);
	json_object_put(prev);
	inf_update_gauge(inf);
}

/* removes the kept copy named like obj, if any, and reports it */
static void inf_publish_del(struct informer *inf, json_object *obj)
{
	json_object *old;

	old = store_take(inf->store, inf->res->kind, obj_namespace(obj), obj_name(obj));
	if (old == NULL)
		return;
	if (inf->sink.del != NULL)
		inf->sink.del(inf->res->kind, old, inf->arg);
	json_object_put(old);
	inf_update_gauge(inf);
}

/*
 * 1 if a metadata-only resource's new copy differs from the kept one only in
 * resourceVersion: a change to the parts its projection dropped (status, spec), which
 * nobody is told about. Other kinds are published on every change of resourceVersion: the
 * planner's expectations wait for the version its write produced.
 */
static int inf_trimmed_same(struct informer *inf, json_object *old, json_object *obj)
{
	json_object *copy = NULL, *meta;
	int same;

	if (!inf->rs->meta_only || inf_rv(old) == NULL ||
	    json_object_deep_copy(obj, &copy, NULL) != 0)
		return 0;
	meta = obj_path(copy, "metadata");
	json_object_object_add(meta, "resourceVersion", json_object_new_string(inf_rv(old)));
	same = obj_equal(old, copy);
	json_object_put(copy);
	return same;
}

/* listed at another version of the group (same resourceVersion): subscribers must see it */
static int inf_same_api(json_object *a, json_object *b)
{
	const char *x = obj_str(a, "apiVersion"), *y = obj_str(b, "apiVersion");

	return x == NULL || y == NULL || strcmp(x, y) == 0;
}

/* keeps obj and reports it unless the kept copy has the same resourceVersion */

static void inf_apply(struct informer *inf, json_object *obj)
{
	json_object *old;
	const char *a, *b;

	old = store_get(inf->store, inf->res->kind, obj_namespace(obj), obj_name(obj));
	if (old != NULL) {
		a = inf_rv(old);
		b = inf_rv(obj);
		if (a != NULL && b != NULL && strcmp(a, b) == 0 && inf_same_api(old, obj))
			return;
		if (inf_trimmed_same(inf, old, obj)) {
			store_set(inf->store, inf->res->kind, obj);
			return;
		}
	}
	inf_publish_set(inf, obj);
}

struct inf_gone {
	struct informer *inf;
	json_object *list;
};

static void inf_diff_gone(const struct store_meta *r, void *arg)
{
	struct inf_gone *g = arg;
	json_object *key;

	char name[512];

	if (store_meta(g->inf->fresh, r->kind, r->ns, r->name) != NULL ||
	    pmap_get(g->inf->same, inf_name_key(r->ns, r->name, name, sizeof(name))) != NULL)
		return;
	key = json_object_new_object(); /* what inf_publish_del reads: the name */
	json_object_object_add(key, "metadata", json_object_new_object());
	json_object_object_add(
	    obj_path(key, "metadata"), "namespace", json_object_new_string(r->ns));
	json_object_object_add(obj_path(key, "metadata"), "name", json_object_new_string(r->name));
	json_object_array_add(g->list, key);
}

/* the first object of the list in progress (names copied out), 0 when none is left */
static int inf_fresh_first_one(const struct store_meta *r, void *arg)
{
	char(*key)[512] = arg;

	snprintf(key[0], sizeof(key[0]), "%s", r->ns);
	snprintf(key[1], sizeof(key[1]), "%s", r->name);
	return 0;
}

/*
 * Replaces the kept copies by the completed list in inf->fresh (and inf->same), reporting
 * the difference: every object that changed (in list order), then every one the list
 * lacked. What was applied leaves fresh at once, so the list and the store do not both hold
 * a kind's every object (the first list after a start) at the end.
 */
static void inf_diff(struct informer *inf)
{
	struct inf_gone g = {inf, json_object_new_array()};
	char key[2][512];
	json_object *obj;
	size_t i, n;

	store_foreach_meta(inf->store, inf->res->kind, inf_diff_gone, &g);
	while (!store_walk_meta_after(inf->fresh, inf->res->kind, 0, inf_fresh_first_one, key)) {
		obj = store_take(inf->fresh, inf->res->kind, key[0], key[1]);
		if (obj == NULL) /* a name store_meta cannot find again: too long to copy */
			fatalx("%s: the list lost %s", inf->rs->plural, log_escape(key[1]));
		inf_apply(inf, obj);
		json_object_put(obj);
		store_release_views(inf->store);
	}
	n = json_object_array_length(g.list);
	for (i = 0; i < n; i++)
		inf_publish_del(inf, json_object_array_get_idx(g.list, i));
	json_object_put(g.list);
	inf_fresh_reset(inf, 0);
	inf_update_gauge(inf);
}

/* ---- failures and retries ---- */

static void inf_fail(
    struct informer *inf, enum inf_next next, const char *what, long status, const char *msg)
{
	double delay = backoff_next(&inf->backoff);

	log_warnx(NULL, "%s: %s failed (HTTP %ld%s%s); retrying in %.1f s", inf->rs->plural, what,
	    status, msg != NULL && *msg ? ": " : "", msg != NULL ? log_escape(msg) : "", delay);
	inf_set_state(inf, INF_BACKOFF, what);
	inf->next = next;
	inf_timer_after(inf, delay);
}

/* a list completed (or an optional API is missing): the sink re-evaluates readiness */
static void inf_synced(struct informer *inf)
{
	inf->synced = 1;
	if (inf->sink.synced != NULL)
		inf->sink.synced(inf->res->kind, inf->arg);
}

/* 1 if a 404 now keeps what the informer holds: within absent_keep seconds of the first
 * 404 since the last list that answered */
static int inf_absent_keeps(struct informer *inf)
{
	double now = now_mono();

	if (inf->res->absent_keep < 0)
		return 1;
	if (inf->absent_since == 0)
		inf->absent_since = now;
	return now - inf->absent_since < inf->res->absent_keep;
}

/*
 * A 404 on the list: the API (CRD) is missing, so none of its objects exist. An optional
 * one (DataVolumes without CDI) is empty and synced, retried every 30 s; a required one
 * (the pools) leaves the informer not ready, retried with backoff. Within absent_keep of
 * the first 404, what was listed is kept (an API server still loading its CRDs), retried
 * with backoff.
 */
static void inf_absent(struct informer *inf, const char *served)
{
	size_t held = store_count(inf->store, inf->res->kind);
	int keep = held > 0 && inf_absent_keeps(inf);
	double delay = inf->res->required || keep ? backoff_next(&inf->backoff) : INF_ABSENT_RETRY;

	if (keep && inf->res->absent_keep > 0 && !inf->absent)
		log_warnx(NULL,
		    "%s: the API server answers 404 (%s): keeping the %zu objects listed "
		    "before for up to %.0f s (a restarted API server answers so until it has "
		    "loaded its CRDs); retrying in %.1f s",
		    inf->rs->plural, served != NULL ? served : "not found", held,
		    inf->res->absent_keep, delay);
	else if (!keep && held > 0 && inf->res->absent_keep > 0)
		log_warnx(NULL, "%s: still 404 %.0f s after the first: its %zu objects are gone",
		    inf->rs->plural, now_mono() - inf->absent_since, held);
	/* warned again when the reason changes (no group -> no version we speak) */
	if (inf->res->required && served != NULL &&
	    (!inf->absent || inf->absent_why == NULL || strcmp(inf->absent_why, served) != 0))
		log_warnx(
		    NULL, "%s: %s: not ready; retrying with backoff", inf->rs->plural, served);
	else if (!inf->absent && inf->res->required && served == NULL)
		log_warnx(NULL,
		    "%s: the API server does not serve %s/%s (404): not ready; is the CRD "
		    "installed? retrying with backoff",
		    inf->rs->plural, inf_prefix(inf), inf->rs->plural);
	else if (!inf->absent && !keep)
		log_info(NULL,
		    "%s: API not found (404); treating it as empty, retrying every %.0f s",
		    inf->rs->plural, INF_ABSENT_RETRY);
	else
		log_debug(
		    NULL, "%s: still not found (404); retrying in %.1f s", inf->rs->plural, delay);
	inf->absent = 1;
	inf->relisting = inf->relist_wanted = 0; /* nothing to list: empty is the answer */
	free(inf->absent_why);
	inf->absent_why = served != NULL ? xstrdup(served) : NULL;
	inf_fresh_reset(inf, !keep);
	if (inf->fresh != NULL)
		inf_diff(inf);
	free(inf->rv);
	inf->rv = NULL;
	if (!inf->res->required && !keep)
		backoff_reset(&inf->backoff);
	inf_set_state(inf, INF_ABSENT, "API not found");
	inf_timer_after(inf, delay);
	if (!inf->res->required)
		inf_synced(inf);
	else if (inf->sink.synced != NULL)
		inf->sink.synced(inf->res->kind, inf->arg); /* no longer ready */
}

static void inf_relist(struct informer *inf, const char *why)
{
	log_info(NULL, "%s: relisting (%s)", inf->rs->plural, why);
	inf_count(M_RELISTS, inf->res->kind, NULL, 1);
	inf_list_begin(inf);
}

/* ---- list ---- */

static void inf_list_done(const struct kube_response *, void *);

static void inf_list_page(struct informer *inf)
{
	char *path, *esc = NULL;

	if (inf->cont != NULL)
		esc = kube_escape(inf->cont);
	xasprintf(&path, "%s?limit=%d%s%s%s", inf->path, INF_PAGE_LIMIT,
	    esc != NULL ? "&continue=" : "", esc != NULL ? esc : "", inf->query ? inf->query : "");
	free(esc);
	if (kube_request(inf->kube, "GET", path, NULL, NULL, inf_list_done, inf) == -1)
		inf_fail(inf, NEXT_LIST, "list", 0, "request not queued");
	free(path);
}

static void inf_list_start(struct informer *inf)
{
	inf_fresh_reset(inf, 1);
	free(inf->cont);
	inf->cont = NULL;
	inf_set_state(inf, INF_LISTING, inf->synced ? "relist" : "first list");
	inf_list_page(inf);
}

/* ---- discovery of the group's version (rs->version NULL: the pools, v1beta1 or v1alpha1) ---- */

static void inf_set_path(struct informer *inf)
{
	free(inf->path);
	if (inf->ns != NULL)
		xasprintf(
		    &inf->path, "%s/namespaces/%s/%s", inf_prefix(inf), inf->ns, inf->rs->plural);
	else
		xasprintf(&inf->path, "%s/%s", inf_prefix(inf), inf->rs->plural);
}

/* the first of rs->versions that the APIGroup lists, or NULL; served gets what it lists */
static const char *inf_pick_version(
    const struct informer *inf, json_object *group, char *served, size_t len)
{
	json_object *vs = obj_path(group, "versions");
	const char *best = NULL, *v;
	size_t i, j, n, used = 0, rank = (size_t)-1;

	served[0] = '\0';
	n = vs != NULL && json_object_is_type(vs, json_type_array) ? json_object_array_length(vs)
	                                                           : 0;
	for (i = 0; i < n; i++) {
		if ((v = obj_str(json_object_array_get_idx(vs, i), "version")) == NULL)
			continue;
		if (used < len)
			used +=
			    (size_t)snprintf(served + used, len - used, "%s%s", i ? ", " : "", v);
		for (j = 0; inf->rs->versions[j] != NULL && j < rank; j++)
			if (strcmp(inf->rs->versions[j], v) == 0) {
				rank = j;
				best = inf->rs->versions[j];
			}
	}
	return best;
}

static void inf_discover_done(const struct kube_response *r, void *arg)
{
	struct informer *inf = arg;
	const char *v;
	char served[256], msg[512];

	if (inf->state != INF_LISTING)
		return; /* stopped meanwhile */
	if (r->status == 404) {
		snprintf(msg, sizeof msg,
		    "the API server does not serve the group %s (404); is the CRD installed?",
		    inf->rs->group);
		inf_absent(inf, msg);
		return;
	}
	if (r->status != 200) {
		inf_fail(inf, NEXT_LIST, "discovery", r->status, r->message);
		return;
	}
	if ((v = inf_pick_version(inf, r->body, served, sizeof served)) == NULL) {
		snprintf(msg, sizeof msg,
		    "the API server serves %s at version(s) %s, none we speak (%s%s%s)",
		    inf->rs->group, *served ? served : "none", inf->rs->versions[0],
		    inf->rs->versions[1] != NULL ? ", " : "",
		    inf->rs->versions[1] != NULL ? inf->rs->versions[1] : "");
		inf_absent(inf, msg);
		return;
	}
	if (inf->version == NULL || strcmp(inf->version, v) != 0) {
		log_info(NULL, "%s: using %s/%s (served: %s)", inf->rs->plural, inf->rs->group, v,
		    served);
		free(inf->version);
		inf->version = xstrdup(v);
		inf_set_path(inf);
	}
	inf_list_start(inf);
}

/* every list (first, relist, after the API was missing) asks which version is served, so a
 * version added or removed later is picked up */
static void inf_list_begin(struct informer *inf)
{
	char *path;

	if (inf->rs->version != NULL) {
		inf_list_start(inf);
		return;
	}
	inf_set_state(inf, INF_LISTING, "discovery");
	xasprintf(&path, "/apis/%s", inf->rs->group);
	if (kube_request(inf->kube, "GET", path, NULL, NULL, inf_discover_done, inf) == -1)
		inf_fail(inf, NEXT_LIST, "discovery", 0, "request not queued");
	free(path);
}

/*
 * 1 if the store keeps item at the same resourceVersion: the list's diff would leave it as
 * it is, so the list in progress remembers only its name (a relist after a watch failed
 * holds a few bytes per unchanged object, not a second copy of the kind). Not for the
 * pools: a list at another version of their group republishes every one.
 */
static int inf_unchanged(struct informer *inf, json_object *item)
{
	const struct store_meta *m;
	const char *rv = inf_rv(item);

	if (inf->rs->version == NULL || rv == NULL || *rv == '\0')
		return 0;
	m = store_meta(inf->store, inf->res->kind, obj_namespace(item), obj_name(item));
	return m != NULL && strcmp(m->rv, rv) == 0;
}

/* moves the items of one page into inf->fresh; -1 if the body is not a list */
static int inf_list_absorb(struct informer *inf, json_object *body)
{
	json_object *items, *item;
	const char *lkind, *api;
	char kind[128] = "", name[512];
	size_t i, n, klen;

	if (body == NULL || !json_object_is_type(body, json_type_object))
		return -1;
	items = obj_path(body, "items");
	if (items != NULL && !json_object_is_type(items, json_type_array))
		return -1;
	lkind = obj_str(body, "kind");
	api = obj_str(body, "apiVersion");
	if (lkind != NULL && (klen = strlen(lkind)) > 4 && klen < sizeof(kind) &&
	    strcmp(lkind + klen - 4, "List") == 0)
		snprintf(kind, sizeof(kind), "%.*s", (int)(klen - 4), lkind);
	n = items != NULL ? json_object_array_length(items) : 0;
	for (i = 0; i < n; i++) {
		if (inf_clean(inf, json_object_array_get_idx(items, i), *kind ? kind : NULL, api,
		        &item) != 0)
			continue;
		if (inf_unchanged(inf, item))
			pmap_put(inf->same,
			    inf_name_key(obj_namespace(item), obj_name(item), name, sizeof(name)),
			    inf);
		else
			store_set(inf->fresh, inf->res->kind, item);
		json_object_put(item);
	}
	return 0;
}

static void inf_list_finish(struct informer *inf, json_object *body)
{
	const char *rv = obj_str(body, "metadata.resourceVersion");

	if (inf->absent)
		log_info(NULL, "%s: API answers again", inf->rs->plural);
	inf->absent = 0;
	inf->absent_since = 0;
	inf->restarts = 0;
	free(inf->rv);
	inf->rv = rv != NULL && *rv ? xstrdup(rv) : NULL;
	inf_diff(inf);
	backoff_reset(&inf->backoff);
	log_info(NULL, "%s: listed %zu objects at resourceVersion %s", inf->rs->plural,
	    store_count(inf->store, inf->res->kind), inf->rv ? log_escape(inf->rv) : "?");
	if (inf->relist_wanted)
		inf->relist_wanted = 0; /* still relisting: asked after this list began */
	else
		inf->relisting = 0;
	inf_synced(inf);
	if (inf->relisting && inf->state == INF_LISTING)
		inf_relist(inf, "asked again while listing");
	else if (inf->state == INF_LISTING)
		inf_watch_begin(inf);
}

/* why a 200 answer to a list could not be used: the client hands over no body when it is
 * not JSON at all (or nested deeper than it parses) */
static const char *inf_list_problem(json_object *body)
{
	if (body == NULL)
		return "the answer is not JSON (malformed, or nested too deep to parse)";
	if (!json_object_is_type(body, json_type_object))
		return "the answer is not a JSON object";
	return "the answer's items is not a list";
}

static void inf_list_done(const struct kube_response *r, void *arg)
{
	struct informer *inf = arg;
	const char *cont;

	if (inf->state != INF_LISTING)
		return; /* stopped meanwhile */
	if (r->status == 404) {
		inf_absent(inf, NULL);
	} else if (r->status == 410 && inf->cont != NULL && ++inf->restarts < INF_LIST_RESTARTS) {
		log_info(
		    NULL, "%s: continue token expired (410); restarting the list", inf->rs->plural);
		inf_list_begin(inf);
	} else if (r->status != 200) {
		inf_fail(inf, NEXT_LIST, "list", r->status, r->message);
	} else if (inf_list_absorb(inf, r->body) == -1) {
		inf_fail(inf, NEXT_LIST, "list", r->status, inf_list_problem(r->body));
	} else if ((cont = obj_str(r->body, "metadata.continue")) != NULL && *cont != '\0') {
		free(inf->cont);
		inf->cont = xstrdup(cont);
		inf_list_page(inf);
	} else {
		inf_list_finish(inf, r->body);
	}
	store_release_views(inf->store);
}

/* ---- watch ---- */

/*
 * 1 if resourceVersion a is newer than b, 0 if not, -1 if either is not a decimal number
 * without leading zeros. Resource versions are opaque to clients in general; etcd's are its
 * revision, as client-go's integer mutation cache takes them, and only that order is used.
 */
static int inf_rv_newer(const char *a, const char *b)
{
	size_t la, lb;

	if (a == NULL || b == NULL)
		return -1;
	la = strspn(a, "0123456789");
	lb = strspn(b, "0123456789");
	if (la == 0 || lb == 0 || a[la] != '\0' || b[lb] != '\0' || (a[0] == '0' && la > 1) ||
	    (b[0] == '0' && lb > 1))
		return -1;
	if (la != lb)
		return la > lb;
	return strcmp(a, b) > 0;
}

static void inf_ev_set(struct informer *inf, json_object *obj)
{
	json_object *kept;
	int rc = inf_clean(inf, obj, NULL, NULL, &kept);

	if (rc == -1)
		return;
	inf_remember_rv(inf, obj);
	if (rc != 0) {
		inf_publish_del(inf, obj); /* no longer one we keep, if it was */
		return;
	}
	inf_apply(inf, kept);
	json_object_put(kept);
}

/*
 * The object the API answered one of our creates with (borrowed; the actuator's WRITTEN):
 * kept and reported as a watch event would, without moving the watch's resourceVersion, if
 * the watch is running and has not reached the object's resourceVersion yet, nothing of that
 * name is kept, and the resource keeps it. The watch then brings the same version, which
 * changes nothing (inf_apply), and anything later: a deletion too, since that comes after
 * the create. A watch already at or past it has shown the object, or its removal; a list in
 * progress, or a watch to be resumed after a failure, is left to say what is there.
 */
const char *informer_written(struct informer *inf, json_object *obj)
{
	int newer = inf_rv_newer(inf_rv(obj), inf->rv);
	json_object *kept;
	const char *what;
	char labels[128];

	if (inf->state != INF_WATCHING)
		what = "not_watching";
	else if (newer != 1)
		what = newer == 0 ? "watched" : "unordered";
	else if (obj_name(obj) != NULL &&
	         store_get(inf->store, inf->res->kind, obj_namespace(obj), obj_name(obj)) != NULL)
		what = "known";
	else if (inf_clean(inf, obj, NULL, NULL, &kept) != 0)
		what = "not_kept";
	else {
		inf_publish_set(inf, kept);
		json_object_put(kept);
		what = "kept";
	}
	store_release_views(inf->store);
	snprintf(labels, sizeof(labels), "kind=\"%s\",result=\"%s\"", inf->res->kind, what);
	metrics_add(M_WRITTEN, labels, 1);
	return what;
}

static void inf_ev_del(struct informer *inf, json_object *obj)
{
	if (obj_name(obj) == NULL) {
		log_warnx(NULL, "%s: DELETED event without metadata.name", inf->rs->plural);
		return;
	}
	inf_remember_rv(inf, obj);
	inf_publish_del(inf, obj);
}

static void inf_watch_arm(struct informer *);

static void inf_ev_bookmark(struct informer *inf, json_object *obj)
{
	inf_remember_rv(inf, obj);
	if (!inf->bookmarks) {
		inf->bookmarks = 1; /* for the log line of a silent watch */
		inf_watch_arm(inf);
	}
}

static void inf_ev_error(struct informer *inf, json_object *obj)
{
	long long code = 0;
	const char *msg = obj_str(obj, "message");

	obj_int(obj, "code", &code);
	if (code == 410) {
		inf_set_state(inf, INF_EXPIRED, "watch expired (410)");
		inf_timer_after(inf, 0); /* drop the stream outside its callback */
		return;
	}
	log_warnx(NULL, "%s: watch error %lld: %s", inf->rs->plural, code,
	    msg != NULL ? log_escape(msg) : "?");
}

static const struct {
	const char *type;
	void (*fn)(struct informer *, json_object *);
} inf_events[] = {
    {"ADDED", inf_ev_set},
    {"MODIFIED", inf_ev_set},
    {"DELETED", inf_ev_del},
    {"BOOKMARK", inf_ev_bookmark},
    {"ERROR", inf_ev_error},
};

static void inf_watch_event(const char *type, json_object *obj, void *arg)
{
	struct informer *inf = arg;
	size_t i;

	if (inf->state != INF_WATCHING)
		return;
	for (i = 0; i < sizeof(inf_events) / sizeof(inf_events[0]); i++) {
		if (type == NULL || strcmp(type, inf_events[i].type) != 0)
			continue;
		inf_count(M_EVENTS, inf->res->kind, inf_events[i].type, 1);
		inf->watch_last = now_mono();
		inf->silent_runs = 0;
		if (obj == NULL || !json_object_is_type(obj, json_type_object)) {
			log_warnx(NULL, "%s: %s event without an object", inf->rs->plural,
			    inf_events[i].type);
			return;
		}
		if (inf_events[i].fn != inf_ev_error && !inf->watch_ok) {
			inf->watch_ok = 1;
			backoff_reset(&inf->backoff);
		}
		inf_events[i].fn(inf, obj);
		store_release_views(inf->store);
		return;
	}
	log_warnx(NULL, "%s: skipping watch event of type %s", inf->rs->plural,
	    type != NULL ? log_escape(type) : "(none)");
}

/*
 * What follows a watch that failed: watching again from the same resourceVersion, or, after
 * INF_WATCH_FAILS such failures in a row with no event delivered, a list. A watch that always
 * breaks inside the same first event (a proxy cutting streams after a few KB, an event too
 * big for some hop) would otherwise replay that event forever; the list starts the next watch
 * at the current resourceVersion.
 */
static enum inf_next inf_watch_failed(struct informer *inf)
{
	if (inf->watch_ok) {
		inf->failed_watches = 0;
		return NEXT_WATCH;
	}
	if (++inf->failed_watches < INF_WATCH_FAILS)
		return NEXT_WATCH;
	log_info(NULL, "%s: %d watches in a row failed before any event; listing again",
	    inf->rs->plural, inf->failed_watches);
	inf->failed_watches = 0;
	return NEXT_LIST;
}

static void inf_watch_end(long status, const char *msg, void *arg)
{
	struct informer *inf = arg;
	double lived = now_mono() - inf->watch_started;

	inf->watch = NULL; /* freed by the client */
	if (inf->state == INF_EXPIRED) {
		inf_relist(inf, "watch expired");
	} else if (inf->state != INF_WATCHING) {
		return;
	} else if (status == 410 || status == 404) {
		inf_relist(inf, status == 410 ? "watch gone (HTTP 410)" : "watch 404");
	} else if (status != 200) {
		inf_fail(inf, inf_watch_failed(inf), "watch", status, msg);
	} else if (!inf->watch_ok && lived < INF_WATCH_SHORT) {
		/* closed cleanly before any event: a busy API server drops watchers that fall
		 * behind (client-go watches again from the same resourceVersion); a pause, but
		 * nothing that a list would mend */
		inf_fail(inf, NEXT_WATCH, "watch", status, "stream ended at once");
	} else {
		log_debug(
		    NULL, "%s: watch ended after %.0f s; watching again", inf->rs->plural, lived);
		inf_watch_begin(inf);
	}
}

static void inf_watch_begin(struct informer *inf)
{
	int secs = INF_WATCH_MIN + (int)(random() % (INF_WATCH_MAX - INF_WATCH_MIN + 1));
	char *path, *esc = kube_escape(inf->rv != NULL ? inf->rv : "");

	xasprintf(&path,
	    "%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%d%s", inf->path,
	    esc, secs, inf->query ? inf->query : "");
	free(esc);
	inf_set_state(inf, INF_WATCHING, inf->rv != NULL ? inf->rv : "no resourceVersion");
	inf->watch_started = inf->watch_last = now_mono();
	inf->watch_deadline = inf->watch_started + secs + INF_WATCH_GRACE;
	inf->watch_ok = 0;
	inf->watch = kube_watch_start(inf->kube, path, inf_watch_event, inf_watch_end, inf);
	free(path);
	if (inf->watch == NULL) {
		inf_fail(inf, NEXT_WATCH, "watch", 0, "watch not started");
		return;
	}
	inf_watch_arm(inf);
}

/* the watchdog: at the deadline, or when the silence bound would pass if nothing comes */
static void inf_watch_arm(struct informer *inf)
{
	double now = now_mono(), at = inf->watch_deadline;

	if (inf->state != INF_WATCHING)
		return;
	if (inf->silence > 0 && inf->watch_last + inf->silence < at)
		at = inf->watch_last + inf->silence;
	evtimer_del(inf->timer);
	inf_timer_after(inf, at - now);
}

/* the watchdog fired: restart a silent watch from its last resourceVersion (no relist) */
static void inf_watch_check(struct informer *inf)
{
	double now = now_mono(), quiet = now - inf->watch_last;
	char labels[64];

	if (now < inf->watch_deadline && !(inf->silence > 0 && quiet >= inf->silence)) {
		inf_watch_arm(inf); /* events came meanwhile */
		return;
	}
	snprintf(labels, sizeof(labels), "kind=\"%s\"", inf->res->kind);
	metrics_add(M_SILENT, labels, 1);
	if (inf->silent_runs++ == 0)
		log_warnx(NULL,
		    "%s: watch silent for %.0f s (no event, no bookmark; bookmarks %s); "
		    "restarting it from resourceVersion %s",
		    inf->rs->plural, quiet, inf->bookmarks ? "expected" : "never seen",
		    inf->rv != NULL ? log_escape(inf->rv) : "?");
	else
		log_info(NULL, "%s: watch silent again for %.0f s; restarting it", inf->rs->plural,
		    quiet);
	inf_watch_drop(inf);
	inf_watch_begin(inf);
}

static void inf_watch_drop(struct informer *inf)
{
	if (inf->watch != NULL)
		kube_watch_cancel(inf->watch);
	inf->watch = NULL;
}

/* the one timer: backoff and absent retries, deferred relists, the watch watchdog */
static void inf_timer_fire(evutil_socket_t fd, short ev, void *arg)
{
	struct informer *inf = arg;

	switch (inf->state) {
	case INF_BACKOFF:
		if (inf->next == NEXT_WATCH && inf->rv != NULL)
			inf_watch_begin(inf);
		else
			inf_list_begin(inf);
		break;
	case INF_ABSENT:
		inf_list_begin(inf);
		break;
	case INF_EXPIRED:
		inf_watch_drop(inf);
		inf_relist(inf, "watch expired (410)");
		break;
	case INF_WATCHING:
		inf_watch_check(inf);
		break;
	default:
		break;
	}
}

/* ---- life cycle ---- */

struct informer *informer_new(struct event_base *base, struct kube *kube, struct store *store,
    const struct informer_res *res, const char *ns, const struct informer_sink *sink, void *arg)
{
	struct informer *inf = xcalloc(1, sizeof(*inf));

	inf->base = base;
	inf->kube = kube;
	inf->store = store;
	inf->res = res;
	inf->rs = resource_get(res->kind);
	if (inf->rs == NULL)
		fatalx("informer: %s is not in the resource table", res->kind);
	if (sink != NULL)
		inf->sink = *sink;
	inf->arg = arg;
	if (ns != NULL && *ns != '\0')
		inf->ns = kube_escape(ns);
	inf_set_path(inf);
	inf->timer = evtimer_new(base, inf_timer_fire, inf);
	if (inf->timer == NULL)
		fatalx("informer %s: evtimer_new", inf->rs->plural);
	backoff_init(&inf->backoff, INF_BACKOFF_BASE, INF_BACKOFF_CAP);
	inf->silence = INF_SILENCE;
	inf->state = INF_IDLE;
	inf_count(M_RELISTS, res->kind, NULL, 0); /* the series exists from the start */
	inf_count(M_SILENT, res->kind, NULL, 0);
	inf_update_gauge(inf);
	return inf;
}

void informer_start(struct informer *inf)
{
	if (inf->state == INF_IDLE)
		inf_list_begin(inf);
}

void informer_stop(struct informer *inf)
{
	if (inf == NULL || inf->state == INF_STOPPED)
		return;
	inf_watch_drop(inf);
	inf_set_state(inf, INF_STOPPED, "stop");
}

void informer_free(struct informer *inf)
{
	if (inf == NULL)
		return;
	informer_stop(inf);
	event_free(inf->timer);
	inf_fresh_reset(inf, 0);
	free(inf->ns);
	free(inf->version);
	free(inf->absent_why);
	free(inf->cont);
	free(inf->rv);
	free(inf->path);
	free(inf->query);
	free(inf);
}

void informer_set_silence(struct informer *inf, double secs)
{
	inf->silence = secs;
}

void informer_set_selector(struct informer *inf, const char *sel)
{
	char *esc = kube_escape(sel);

	free(inf->query);
	xasprintf(&inf->query, "&labelSelector=%s", esc);
	free(esc);
}

int informer_synced(const struct informer *inf)
{
	return inf->synced && !(inf->res->required && inf->absent);
}

enum informer_state informer_state(const struct informer *inf)
{
	return inf->state;
}

/* ---- a shard's filter (see informer.h) ---- */

void informer_set_filter(
    struct informer *inf, int (*fn)(const char *kind, json_object *obj, void *arg), void *arg)
{
	inf->filter = fn;
	inf->filter_arg = arg;
}

void informer_relist(struct informer *inf, const char *why)
{
	switch (inf->state) {
	case INF_LISTING: /* this list may have passed what is wanted: one more after it */
		inf->relisting = inf->relist_wanted = 1;
		break;
	case INF_WATCHING:
		inf->relisting = 1;
		inf_watch_drop(inf);
		inf_relist(inf, why);
		break;
	case INF_BACKOFF:
	case INF_EXPIRED: /* lists next anyway */
		inf->relisting = 1;
		inf->next = NEXT_LIST;
		break;
	default: /* not started, stopped, or the API is missing: nothing to list */
		break;
	}
}

int informer_relisting(const struct informer *inf)
{
	return inf->relisting;
}

struct inf_unfit {
	struct informer *inf;
	json_object *list;
};

static void inf_unfit_one(json_object *obj, void *arg)
{
	struct inf_unfit *u = arg;

	if (!u->inf->filter(u->inf->res->kind, obj, u->inf->filter_arg))
		json_object_array_add(u->list, json_object_get(obj));
}

/* the kept objects of store s that the filter rejects now, as a new array */
static json_object *inf_unfit(struct informer *inf, struct store *s)
{
	struct inf_unfit u = {inf, json_object_new_array()};

	if (s != NULL)
		store_foreach(s, inf->res->kind, inf_unfit_one, &u);
	return u.list;
}

void informer_refilter(struct informer *inf)
{
	json_object *drop, *obj;
	size_t i, n;

	if (inf->filter == NULL)
		return;
	drop = inf_unfit(inf, inf->store);
	n = json_object_array_length(drop);
	for (i = 0; i < n; i++)
		inf_publish_del(inf, json_object_array_get_idx(drop, i));
	json_object_put(drop);
	/* a list in progress must not bring them back when it completes */
	drop = inf_unfit(inf, inf->fresh);
	n = json_object_array_length(drop);
	for (i = 0; i < n; i++) {
		obj = json_object_array_get_idx(drop, i);
		store_del(inf->fresh, inf->res->kind, obj_namespace(obj), obj_name(obj));
	}
	json_object_put(drop);
}

/*
 * k8sevent.c: Kubernetes Events about pools, built and aggregated like client-go's
 * recorder (identical events within 10 minutes bump count/lastTimestamp with a merge
 * patch), and posted through the kube client. An Event waits out an unreachable API server
 * (K8SEV_PATIENCE, like client-go's 12 tries 10 s apart) instead of being lost, and its name
 * is chosen once, so a POST repeated after a lost answer finds AlreadyExists: posted.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/queue.h>
#include <string.h>

#include <json-c/linkhash.h>

#include "k8sevent.h"
#include "kube.h"
#include "obj.h"
#include "log.h"
#include "timeutil.h"
#include "xmalloc.h"

char *k8sev_name(const char *pool, double now, uint64_t *last)
{
	uint64_t ns;
	char *name;

	ns = now > 0 ? (uint64_t)(now * 1e9) : 0;
	if (ns <= *last)
		ns = *last + 1;
	*last = ns;
	xasprintf(&name, "%s.%016" PRIx64, pool, ns);
	return name;
}

static void k8sev_add_str(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v != NULL ? v : ""));
}

json_object *k8sev_build(const struct k8sev_src *src, const char *name, double now)
{
	json_object *ev, *md, *inv, *source;
	char ts[32];

	rfc3339_format(now, ts);
	ev = json_object_new_object();
	k8sev_add_str(ev, "apiVersion", "v1");
	k8sev_add_str(ev, "kind", "Event");
	md = json_object_new_object();
	k8sev_add_str(md, "name", name);
	k8sev_add_str(md, "namespace", src->ns);
	json_object_object_add(ev, "metadata", md);
	inv = json_object_new_object();
	k8sev_add_str(inv, "apiVersion", "pool.kubevirt.io/v1beta1");
	k8sev_add_str(inv, "kind", "VirtualMachinePool");
	k8sev_add_str(inv, "name", src->pool);
	k8sev_add_str(inv, "namespace", src->ns);
	if (src->uid != NULL && src->uid[0] != '\0')
		k8sev_add_str(inv, "uid", src->uid);
	json_object_object_add(ev, "involvedObject", inv);
	k8sev_add_str(ev, "reason", src->reason);
	k8sev_add_str(ev, "message", src->message);
	k8sev_add_str(ev, "type", src->type);
	source = json_object_new_object();
	k8sev_add_str(source, "component", K8SEV_COMPONENT);
	json_object_object_add(ev, "source", source);
	k8sev_add_str(ev, "reportingComponent", K8SEV_COMPONENT);
	k8sev_add_str(ev, "firstTimestamp", ts);
	k8sev_add_str(ev, "lastTimestamp", ts);
	json_object_object_add(ev, "count", json_object_new_int(1));
	return ev;
}

/* ---- aggregation cache ---- */

struct k8sev_entry {
	char *key;
	char *name;
	long count;
	double first;
	double last;
	int busy;  /* a POST/PATCH for this Event is in flight */
	int dirty; /* count changed meanwhile: PATCH when it returns */
};

struct k8sev_agg {
	struct lh_table *tab; /* key -> struct k8sev_entry */
	uint64_t last_ns;
};

static void k8sev_entry_free(struct lh_entry *e)
{
	struct k8sev_entry *ent = lh_entry_v(e);

	free(ent->key);
	free(ent->name);
	free(ent);
}

struct k8sev_agg *k8sev_agg_new(void)
{
	struct k8sev_agg *a = xcalloc(1, sizeof *a);

	a->tab = lh_kchar_table_new(64, k8sev_entry_free);
	if (a->tab == NULL)
		fatalx("k8sev_agg_new: out of memory");
	return a;
}

void k8sev_agg_free(struct k8sev_agg *a)
{
	if (a == NULL)
		return;
	lh_table_free(a->tab);
	free(a);
}

unsigned long k8sev_agg_size(const struct k8sev_agg *a)
{
	return (unsigned long)a->tab->count;
}

static char *k8sev_agg_key(const struct k8sev_src *src)
{
	char *key;

	xasprintf(&key, "%s\n%s\n%s\n%s\n%s\n%s", src->ns, src->pool, src->uid ? src->uid : "",
	    src->type, src->reason, src->message);
	return key;
}

/* drops entries outside the window; if still full, drops everything */
static void k8sev_agg_prune(struct k8sev_agg *a, double now)
{
	struct lh_entry *e, *tmp;
	struct k8sev_entry *ent;

	lh_foreach_safe(a->tab, e, tmp)
	{
		ent = lh_entry_v(e);
		if (now - ent->last > K8SEV_AGG_WINDOW)
			lh_table_delete_entry(a->tab, e);
	}
	if (a->tab->count >= K8SEV_AGG_MAX) {
		lh_foreach_safe(a->tab, e, tmp)
		{
			lh_table_delete_entry(a->tab, e);
		}
	}
}

int k8sev_agg_observe(
    struct k8sev_agg *a, const struct k8sev_src *src, double now, struct k8sev_seen *seen)
{
	struct k8sev_entry *ent;
	char *key = k8sev_agg_key(src);
	void *v;

	if (lh_table_lookup_ex(a->tab, key, &v)) {
		ent = v;
		if (now - ent->last <= K8SEV_AGG_WINDOW) {
			free(key);
			ent->count++;
			ent->last = now;
			seen->name = ent->name;
			seen->count = ent->count;
			seen->first = ent->first;
			return 1;
		}
		lh_table_delete(a->tab, key);
	}
	if (a->tab->count >= K8SEV_AGG_MAX)
		k8sev_agg_prune(a, now);
	ent = xcalloc(1, sizeof *ent);
	ent->key = key;
	ent->name = k8sev_name(src->pool, now, &a->last_ns);
	ent->count = 1;
	ent->first = ent->last = now;
	lh_table_insert(a->tab, ent->key, ent);
	seen->name = ent->name;
	seen->count = 1;
	seen->first = now;
	return 0;
}

/* the live entry for src, or NULL */
static struct k8sev_entry *k8sev_agg_find(struct k8sev_agg *a, const struct k8sev_src *src)
{
	char *key = k8sev_agg_key(src);
	void *v = NULL;

	if (!lh_table_lookup_ex(a->tab, key, &v))
		v = NULL;
	free(key);
	return v;
}

void k8sev_agg_forget(struct k8sev_agg *a, const struct k8sev_src *src)
{
	char *key = k8sev_agg_key(src);

	lh_table_delete(a->tab, key);
	free(key);
}

/* ---- the recorder ---- */

/* one request in flight: owns copies of everything it needs */
struct k8sev_req {
	TAILQ_ENTRY(k8sev_req) entry; /* on rec->inflight */
	struct k8sev_recorder *rec;
	char *ns, *pool, *uid, *type, *reason, *message;
	char *name;
	int patch;
	double now;
};

struct k8sev_recorder {
	struct kube *kube;
	struct k8sev_agg *agg;
	unsigned long posted;
	TAILQ_HEAD(, k8sev_req) inflight; /* freed with the recorder (see k8sevent.h) */
};

struct k8sev_recorder *k8sev_recorder_new(struct kube *kube)
{
	struct k8sev_recorder *rec = xcalloc(1, sizeof *rec);

	rec->kube = kube;
	rec->agg = k8sev_agg_new();
	TAILQ_INIT(&rec->inflight);
	return rec;
}

static void k8sev_req_free(struct k8sev_req *);

void k8sev_recorder_free(struct k8sev_recorder *rec)
{
	if (rec == NULL)
		return;
	while (!TAILQ_EMPTY(&rec->inflight))
		k8sev_req_free(TAILQ_FIRST(&rec->inflight));
	k8sev_agg_free(rec->agg);
	free(rec);
}

unsigned long k8sev_recorder_count(const struct k8sev_recorder *rec)
{
	return rec->posted;
}

static void k8sev_req_free(struct k8sev_req *r)
{
	TAILQ_REMOVE(&r->rec->inflight, r, entry);
	free(r->ns);
	free(r->pool);
	free(r->uid);
	free(r->type);
	free(r->reason);
	free(r->message);
	free(r->name);
	free(r);
}

static void k8sev_req_src(const struct k8sev_req *r, struct k8sev_src *src)
{
	src->ns = r->ns;
	src->pool = r->pool;
	src->uid = r->uid;
	src->type = r->type;
	src->reason = r->reason;
	src->message = r->message;
}

static int k8sev_send(struct k8sev_req *, long count, double first);

/* the request's entry, if it still stands for the same Event */
static struct k8sev_entry *k8sev_req_entry(struct k8sev_req *r)
{
	struct k8sev_src src;
	struct k8sev_entry *ent;

	k8sev_req_src(r, &src);
	ent = k8sev_agg_find(r->rec->agg, &src);
	return ent != NULL && strcmp(ent->name, r->name) == 0 ? ent : NULL;
}

/* identical events arrived while r was in flight: PATCH the count; 1 if r was reused */
static int k8sev_flush(struct k8sev_req *r, struct k8sev_entry *ent)
{
	if (ent == NULL || !ent->dirty)
		return 0;
	ent->dirty = 0;
	ent->busy = 1;
	r->patch = 1;
	r->now = ent->last;
	if (k8sev_send(r, ent->count, ent->first) == 0)
		return 1;
	ent->busy = 0;
	return 0;
}

/* a PATCH found no Event (expired or deleted): start a new one; 1 if r was reused */
static int k8sev_recreate(struct k8sev_req *r)
{
	struct k8sev_src src;
	struct k8sev_seen seen;
	struct k8sev_entry *ent;

	k8sev_req_src(r, &src);
	k8sev_agg_forget(r->rec->agg, &src);
	k8sev_agg_observe(r->rec->agg, &src, r->now, &seen);
	free(r->name);
	r->name = xstrdup(seen.name);
	r->patch = 0;
	if ((ent = k8sev_agg_find(r->rec->agg, &src)) != NULL)
		ent->busy = 1;
	if (k8sev_send(r, 1, r->now) == 0)
		return 1;
	k8sev_agg_forget(r->rec->agg, &src);
	return 0;
}

static void k8sev_done(const struct kube_response *resp, void *arg)
{
	struct k8sev_req *r = arg;
	struct k8sev_entry *ent = k8sev_req_entry(r);
	struct k8sev_src src;
	char key[512];

	snprintf(key, sizeof key, "%s/%s", r->ns, r->pool);
	if (ent != NULL)
		ent->busy = 0;
	if ((resp->status >= 200 && resp->status < 300) ||
	    (!r->patch && resp->status == 409 && strcmp(resp->reason, "AlreadyExists") == 0)) {
		/* 409: an earlier attempt of this very POST got through, its answer was lost */
		r->rec->posted++;
		log_debug(key, "event %s %s %s", r->patch ? "patched" : "posted", r->reason,
		    log_escape(r->name));
		if (k8sev_flush(r, ent))
			return;
	} else if (r->patch && resp->status == 404) {
		if (k8sev_recreate(r))
			return;
	} else {
		log_warnx(key, "event %s %s failed: status %ld %s: %s", r->reason,
		    log_escape(r->name), resp->status, resp->reason, log_escape(resp->message));
		k8sev_req_src(r, &src);
		if (ent != NULL)
			k8sev_agg_forget(r->rec->agg, &src);
	}
	k8sev_req_free(r);
}

static char *k8sev_path(const struct k8sev_req *r)
{
	char *ns = kube_escape(r->ns), *name = NULL, *path;

	if (r->patch) {
		name = kube_escape(r->name);
		xasprintf(&path, "/api/v1/namespaces/%s/events/%s", ns, name);
	} else
		xasprintf(&path, "/api/v1/namespaces/%s/events", ns);
	free(ns);
	free(name);
	return path;
}

/* issues the POST or PATCH for r; on -1 the caller still owns r */
static int k8sev_send(struct k8sev_req *r, long count, double first)
{
	struct k8sev_src src;
	json_object *body;
	char ts[32], *path;
	int rv;

	k8sev_req_src(r, &src);
	if (r->patch) {
		body = json_object_new_object();
		json_object_object_add(body, "count", json_object_new_int64(count));
		rfc3339_format(r->now, ts);
		json_object_object_add(body, "lastTimestamp", json_object_new_string(ts));
	} else {
		body = k8sev_build(&src, r->name, first);
		rfc3339_format(r->now, ts);
		json_object_object_add(body, "lastTimestamp", json_object_new_string(ts));
	}
	path = k8sev_path(r);
	rv = kube_request_patient(r->rec->kube, r->patch ? "PATCH" : "POST", path,
	    r->patch ? "application/merge-patch+json" : NULL, obj_json(body), K8SEV_PATIENCE,
	    k8sev_done, r);
	if (rv == -1)
		log_warnx(r->ns, "event %s: cannot queue request %s", r->reason, path);
	free(path);
	json_object_put(body);
	return rv;
}

static int k8sev_src_valid(const struct k8sev_src *src)
{
	return src->ns != NULL && src->ns[0] != '\0' && src->pool != NULL && src->pool[0] != '\0' &&
	       src->type != NULL && src->reason != NULL && src->message != NULL;
}

int k8sev_post(struct k8sev_recorder *rec, const struct k8sev_src *src, double now)
{
	struct k8sev_seen seen;
	struct k8sev_entry *ent;
	struct k8sev_req *r;
	char key[512];
	int patch;

	if (!k8sev_src_valid(src)) {
		log_warnx(NULL, "event: incomplete source, not posted");
		return -1;
	}
	snprintf(key, sizeof key, "%s/%s", src->ns, src->pool);
	if (rec->kube == NULL) {
		log_info(key, "dry-run: would post %s event %s: %s", src->type, src->reason,
		    log_escape(src->message));
		rec->posted++;
		return 0;
	}
	patch = k8sev_agg_observe(rec->agg, src, now, &seen);
	ent = k8sev_agg_find(rec->agg, src);
	if (ent != NULL && ent->busy) {
		ent->dirty = 1; /* sent when the request in flight returns */
		return 0;
	}
	if (ent != NULL)
		ent->busy = 1;
	r = xcalloc(1, sizeof *r);
	r->rec = rec;
	r->ns = xstrdup(src->ns);
	r->pool = xstrdup(src->pool);
	r->uid = xstrdup(src->uid != NULL ? src->uid : "");
	r->type = xstrdup(src->type);
	r->reason = xstrdup(src->reason);
	r->message = xstrdup(src->message);
	r->name = xstrdup(seen.name);
	r->patch = patch;
	r->now = now;
	TAILQ_INSERT_TAIL(&rec->inflight, r, entry);
	if (k8sev_send(r, seen.count, seen.first) == -1) {
		if (ent != NULL)
			ent->busy = 0;
		k8sev_req_free(r);
		return -1;
	}
	return 0;
}

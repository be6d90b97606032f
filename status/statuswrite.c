/*
 * statuswrite.c: decides when to write a pool's /status and writes it. Pools are marked
 * dirty by watcher and planner changes and recomputed together on the next loop turn.
 * A write happens only when the computed status differs from the observed one; it is a JSON
 * patch of /status without resourceVersion (so other changes of the pool do not make it
 * conflict) whose only precondition is the pool's uid (statuscalc_patch()). After a success
 * the same status is not written again while the watcher still shows the old one (it lags
 * behind our write), recognised by the resourceVersion the write produced. A failure (422
 * for another uid: a newer pool of the same name) waits for the watcher's newer copy or a
 * backoff retry (404 too: a restarted API server answers it for custom resources until it
 * has loaded their CRDs; a pool that is really gone is forgotten when the watcher says so).
 * ReplicaPaused transitions post SuccessfulPaused / SuccessfulResume; a newly added
 * ReplicaFailure posts a Warning with its reason and message. The dirty pools are the
 * planner's work queue (common/queue.h, workqueue_*{name="status"}), held back while the
 * picture is incomplete; each pool's computed status is exported as KubeVirt's proposed
 * kubevirt_vmpool_* series.
 * While a pool is scaling, writes are coalesced: at most one per STW_LINGER (the intermediate
 * counts are not worth a write each); a status whose replicas or readyReplicas reaches
 * spec.replicas goes at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/linkhash.h>

#include "backoff.h"
#include "codec.h"
#include "k8sevent.h"
#include "kube.h"
#include "log.h"
#include "metrics.h"
#include "obj.h"
#include "proto.h"
#include "queue.h"
#include "resource.h"
#include "statuscalc.h"
#include "statuswrite.h"
#include "store.h"
#include "timeutil.h"
#include "slab.h"
#include "xmalloc.h"

/* per-pool write state */
struct stw_pool {
	struct stw *w;
	char *key, *ns, *name;
	int inflight;
	int redo;        /* changed while a write was in flight */
	int gone;        /* dropped while in flight: freed by the callback */
	int retry_due;   /* the backoff after a failed write elapsed */
	char *failed_rv; /* rv whose write failed: wait for a newer copy or the retry */
	char *sent_rv;   /* rv of the copy in flight */
	/* statuses kept as msgpack (data NULL: none): a json-c tree of one is about ten times
	 * its size, and every pool keeps one or two between writes */
	struct buf written;      /* last status written ... */
	struct buf written_from; /* ... over this observed status */
	char *written_rv;        /* rv the write produced */
	struct buf sent;         /* status in flight */
	struct buf sent_from;
	struct backoff bo;
	struct event *retry;
	double last_write;    /* monotonic time of the last write sent */
	struct event *linger; /* the next write while scaling */
	char *info_labels;    /* of its kubevirt_vmpool_info series (the uid may change) */
};

struct stw {
	struct event_base *base;
	struct kube *kube;
	struct k8sev_recorder *rec;
	struct store *objs, *results;
	int (*ready)(void *);
	void *ready_arg;
	struct lh_table *pools; /* key -> struct stw_pool */
	struct queue *q;        /* the dirty pools, "namespace/name" */
	unsigned long writes;
};

static void stw_run(const char *key, void *);
static int stw_queue_ready(void *);
/* a failed write is retried by the pool's own timer (stw_schedule_retry: it must know that
 * the backoff elapsed), not by queue_retry() */
static const struct queue_opts stw_queue = {STW_QUEUE, STW_PACE, 1.0, 60.0, stw_queue_ready, 0};
static void stw_recompute(struct stw *, const char *ns, const char *name);

void stw_metrics_declare(void)
{
	metrics_declare(STW_M_WRITES, "counter", "Pool status writes by result.");
	metrics_declare(STW_M_INFO, "gauge", "Information about VirtualMachinePools.");
	metrics_declare(STW_M_DESIRED, "gauge",
	    "Desired number of VirtualMachine replicas in a VirtualMachinePool (spec.replicas, "
	    "default 1).");
	metrics_declare(STW_M_REPLICAS, "gauge",
	    "Current number of VirtualMachine replicas in a VirtualMachinePool (status.replicas).");
	metrics_declare(STW_M_READY, "gauge",
	    "Number of ready VirtualMachine replicas in a VirtualMachinePool "
	    "(status.readyReplicas).");
	metrics_declare(STW_M_PAUSED, "gauge",
	    "Whether a VirtualMachinePool is paused (spec.paused). 1 if paused, 0 otherwise.");
	metrics_declare(STW_M_FAILURE, "gauge",
	    "Whether a VirtualMachinePool has a ReplicaFailure condition set to True. 1 if "
	    "failing, 0 otherwise.");
	metrics_add(STW_M_WRITES, "result=\"ok\"", 0);
	metrics_wq_declare(STW_QUEUE);
}

/* keeps v (NULL too: msgpack nil) packed in b, in a buffer of its size, in slabs (slab.h):
 * 1,000 pools keep up to 4,000 statuses, replaced at every write while the pools scale,
 * which taken from the heap left it full of holes between each computation's trees */
static void stw_keep(struct buf *b, json_object *v)
{
	static struct buf packed;

	codec_value_pack(&packed, v);
	slabs_keep(b, &packed);
}

/* what stw_keep() kept, decoded again: a new reference (NULL for nil) */
static json_object *stw_kept(const struct buf *b)
{
	char err[128];
	json_object *v = codec_value_unpack(b->data, b->len, err, sizeof err);

	if (v == NULL && !(b->len == 1 && b->data[0] == 0xc0)) /* we packed it: never */
		fatalx("statuswrite: a kept status does not decode: %s", err);
	return v;
}

/* 1 if v equals the value kept in b */
static int stw_kept_equal(const struct buf *b, json_object *v)
{
	json_object *k = stw_kept(b);
	int eq = obj_equal(v, k);

	json_object_put(k);
	return eq;
}

static void stw_pool_clear_written(struct stw_pool *sp)
{
	slabs_unkeep(&sp->written);
	slabs_unkeep(&sp->written_from);
	free(sp->written_rv);
	sp->written_rv = NULL;
}

static void stw_pool_clear_sent(struct stw_pool *sp)
{
	slabs_unkeep(&sp->sent);
	slabs_unkeep(&sp->sent_from);
}

static void stw_pool_free(struct stw_pool *sp)
{
	stw_pool_clear_written(sp);
	stw_pool_clear_sent(sp);
	free(sp->failed_rv);
	free(sp->sent_rv);
	if (sp->retry != NULL)
		event_free(sp->retry);
	if (sp->linger != NULL)
		event_free(sp->linger);
	free(sp->key);
	free(sp->ns);
	free(sp->name);
	free(sp->info_labels);
	free(sp);
}

/* the table's free function: in-flight entries are freed by their callback */
static void stw_pool_entry_free(struct lh_entry *e)
{
	struct stw_pool *sp = lh_entry_v(e);

	if (sp->inflight)
		sp->gone = 1;
	else
		stw_pool_free(sp);
}

static void stw_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stw_pool *sp = arg;

	sp->retry_due = 1;
	stw_dirty(sp->w, sp->ns, sp->name);
}

static void stw_linger_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stw_pool *sp = arg;

	stw_dirty(sp->w, sp->ns, sp->name);
}

static struct stw_pool *stw_pool_get(
    struct stw *w, const char *ns, const char *name, const char *key)
{
	struct stw_pool *sp;
	void *v;

	if (lh_table_lookup_ex(w->pools, key, &v))
		return v;
	sp = xcalloc(1, sizeof *sp);
	sp->w = w;
	sp->key = xstrdup(key);
	sp->ns = xstrdup(ns);
	sp->name = xstrdup(name);
	backoff_init(&sp->bo, 1.0, 60.0);
	sp->retry = evtimer_new(w->base, stw_retry_cb, sp);
	sp->linger = evtimer_new(w->base, stw_linger_cb, sp);
	lh_table_insert(w->pools, sp->key, sp);
	return sp;
}

static const char *const stw_pool_series[] = {
    STW_M_DESIRED, STW_M_REPLICAS, STW_M_READY, STW_M_PAUSED, STW_M_FAILURE};

/* the pool's series: computed status st over pool; the info series follows its uid */
static void stw_gauges(struct stw_pool *sp, json_object *pool, json_object *st)
{
	char *labels = metrics_labels("namespace", sp->ns, "name", sp->name, NULL);
	char *info =
	    metrics_labels("namespace", sp->ns, "name", sp->name, "uid", obj_uid(pool) ?: "", NULL);
	json_object *failure = obj_find_condition(obj_path(st, "conditions"), SC_COND_FAILURE);
	const char *fs = obj_str(failure, "status");
	long long n;

	if (sp->info_labels != NULL && strcmp(sp->info_labels, info) != 0)
		metrics_remove(STW_M_INFO, sp->info_labels);
	free(sp->info_labels);
	sp->info_labels = info;
	metrics_set(STW_M_INFO, info, 1);
	metrics_set(STW_M_DESIRED, labels, (double)statuscalc_desired(pool));
	metrics_set(STW_M_REPLICAS, labels, obj_int(st, "replicas", &n) == 0 ? (double)n : 0);
	metrics_set(STW_M_READY, labels, obj_int(st, "readyReplicas", &n) == 0 ? (double)n : 0);
	metrics_set(STW_M_PAUSED, labels, obj_bool(pool, "spec.paused"));
	metrics_set(STW_M_FAILURE, labels, fs != NULL && strcmp(fs, "True") == 0);
	free(labels);
}

static void stw_pool_drop(struct stw *w, const char *ns, const char *name, const char *key)
{
	char *labels = metrics_labels("namespace", ns, "name", name, NULL);
	struct stw_pool *sp;
	void *v;
	size_t i;

	for (i = 0; i < sizeof stw_pool_series / sizeof stw_pool_series[0]; i++)
		metrics_remove(stw_pool_series[i], labels);
	free(labels);
	if (lh_table_lookup_ex(w->pools, key, &v)) {
		sp = v;
		if (sp->info_labels != NULL)
			metrics_remove(STW_M_INFO, sp->info_labels);
	}
	if (lh_table_delete(w->pools, key) == 0)
		log_debug(key, "pool gone: status state dropped");
}

static const char *const stw_owner_kinds[] = {KIND_VM, NULL};

struct stw *stw_new(struct event_base *base, struct kube *kube, struct k8sev_recorder *rec,
    struct store *objs, struct store *results, int (*ready)(void *), void *ready_arg)
{
	struct stw *w = xcalloc(1, sizeof *w);

	w->base = base;
	w->kube = kube;
	w->rec = rec;
	w->objs = objs;
	w->results = results;
	w->ready = ready;
	w->ready_arg = ready_arg;
	store_traits(objs, statuscalc_traits);
	store_owner_kinds(objs, stw_owner_kinds); /* a pool's VMs (stw_compute) */
	w->pools = lh_kchar_table_new(64, stw_pool_entry_free);
	w->q = queue_new(base, &stw_queue, stw_run, w);
	if (w->pools == NULL)
		fatalx("stw_new: out of memory");
	return w;
}

void stw_free(struct stw *w)
{
	struct lh_entry *e;

	if (w == NULL)
		return;
	/* no callback follows: kube_free() drops in-flight requests without calling back,
	 * so entries with a write in flight are freed here, not by stw_done() */
	lh_foreach(w->pools, e)
	{
		((struct stw_pool *)lh_entry_v(e))->inflight = 0;
	}
	lh_table_free(w->pools);
	queue_free(w->q);
	free(w);
}

unsigned long stw_writes(const struct stw *w)
{
	return w->writes;
}

void stw_dirty(struct stw *w, const char *ns, const char *name)
{
	char *key;

	if (ns == NULL || name == NULL)
		return;
	xasprintf(&key, "%s/%s", ns, name);
	queue_mark(w->q, key);
	free(key);
}

static void stw_dirty_pool_obj(json_object *pool, void *arg)
{
	stw_dirty(arg, obj_namespace(pool), obj_name(pool));
}

void stw_dirty_all(struct stw *w)
{
	struct lh_entry *e;
	struct stw_pool *sp;

	store_foreach(w->objs, KIND_POOL, stw_dirty_pool_obj, w);
	lh_foreach(w->pools, e)
	{
		sp = lh_entry_v(e);
		stw_dirty(w, sp->ns, sp->name);
	}
}

/* the pool that controls vm (by name; ownership by uid is checked when computing) */
static void stw_dirty_owner(struct stw *w, json_object *vm)
{
	json_object *ref;
	const char *kind;

	if (vm == NULL || (ref = obj_controller_ref(vm)) == NULL)
		return;
	kind = obj_str(ref, "kind");
	if (kind != NULL && strcmp(kind, SC_POOL_KIND) == 0)
		stw_dirty(w, obj_namespace(vm), obj_str(ref, "name"));
}

void stw_changed(struct stw *w, const char *kind, json_object *old, json_object *new_)
{
	json_object *o = new_ != NULL ? new_ : old;

	if (strcmp(kind, KIND_POOL) == 0 && o != NULL) {
		stw_dirty(w, obj_namespace(o), obj_name(o));
	} else if (strcmp(kind, KIND_VM) == 0) {
		stw_dirty_owner(w, old);
		stw_dirty_owner(w, new_);
	}
}

/* the queue's gate: the dirty pools wait while the picture is incomplete; the caller marks
 * everything again once synced (stw_dirty_all), which lets the batch run */
static int stw_queue_ready(void *arg)
{
	struct stw *w = arg;

	return w->ready == NULL || w->ready(w->ready_arg);
}

/* the queue's callback: recomputes one dirty pool */
static void stw_run(const char *key, void *arg)
{
	const char *slash = strchr(key, '/');
	char *ns;

	if (slash == NULL)
		return;
	ns = xstrndup(key, (size_t)(slash - key));
	stw_recompute(arg, ns, slash + 1);
	free(ns);
}

/* ---- one pool ---- */

/* the planner's result for this pool, unless it is about an older pool of the same name */
static int stw_result(struct stw *w, json_object *pool, struct statuscalc_result *r)
{
	json_object *res =
	    store_get(w->results, STW_RESULT_KIND, obj_namespace(pool), obj_name(pool));
	const char *ruid, *puid = obj_uid(pool);

	if (res == NULL)
		return 0;
	ruid = obj_uid(res);
	if (ruid != NULL && ruid[0] != '\0' && puid != NULL && strcmp(ruid, puid) != 0)
		return 0;
	r->ok = obj_bool(res, "ok");
	r->reason = obj_str(res, "reason");
	r->message = obj_str(res, "message");
	r->progress = obj_str(res, "progress");
	return 1;
}

/* counts one VM under the pool's uid from its traits; decodes it only when the
 * ForeignController condition needs its managers */
struct stw_tally {
	struct stw *w;
	struct statuscalc_in *in;
	size_t cap;
};

static void stw_tally_vm(const struct store_meta *m, void *arg)
{
	struct stw_tally *t = arg;
	struct statuscalc_in *in = t->in;

	statuscalc_count(&in->counts, m->traits);
	if ((m->traits & (SC_VM_POOL | SC_VM_MANAGERS)) != (SC_VM_POOL | SC_VM_MANAGERS))
		return;
	if (in->nvms == t->cap) {
		t->cap = t->cap > 0 ? t->cap * 2 : 8;
		in->vms = xreallocarray(in->vms, t->cap, sizeof(*in->vms));
	}
	in->vms[in->nvms++] = store_get(t->w->objs, m->kind, m->ns, m->name);
}

static json_object *stw_compute(struct stw *w, json_object *pool)
{
	struct statuscalc_result r;
	struct statuscalc_in in;
	struct stw_tally t = {w, &in, 0};
	json_object *st;
	const char *uid = obj_uid(pool);

	memset(&in, 0, sizeof in);
	/* only the VMs the pool controls count (statuscalc_owns); the store's owner index hands
	 * out exactly those, so a pool costs what it holds, not what its namespace holds, and
	 * their traits (statuscalc_vm_traits, derived when stored) are all the counts need */
	if (uid != NULL && uid[0] != '\0')
		store_foreach_owned_meta(
		    w->objs, KIND_VM, obj_namespace(pool), uid, stw_tally_vm, &t);
	in.pool = pool;
	in.result = stw_result(w, pool, &r) ? &r : NULL;
	in.now = now_real();
	st = statuscalc_compute(&in);
	free(in.vms);
	return st;
}

static int stw_write(struct stw_pool *, json_object *pool, json_object *st);

/* 1 when a write is to be held back although the status differs */
static int stw_hold(struct stw_pool *sp, json_object *pool, json_object *st)
{
	const char *rv = obj_str(pool, "metadata.resourceVersion");

	if (sp->inflight) {
		sp->redo = 1;
		return 1;
	}
	if (sp->written.data != NULL && sp->written_rv != NULL && rv != NULL &&
	    strcmp(sp->written_rv, rv) == 0)
		stw_pool_clear_written(sp); /* the watcher has our write */
	if (sp->written.data != NULL && stw_kept_equal(&sp->written, st) &&
	    stw_kept_equal(&sp->written_from, obj_path(pool, "status"))) {
		log_debug(sp->key, "status already written, waiting for the watcher");
		return 1;
	}
	if (sp->failed_rv != NULL && rv != NULL && strcmp(sp->failed_rv, rv) == 0 && !sp->retry_due)
		return 1; /* this copy failed: wait for a newer one or the retry */
	return 0;
}

/* st reaches a count readers wait for: replicas or readyReplicas becomes spec.replicas */
static int stw_milestone(json_object *pool, json_object *st)
{
	long long want = statuscalc_desired(pool);
	const char *f[] = {"replicas", "readyReplicas"};
	long long n, o;
	size_t i;

	for (i = 0; i < 2; i++) {
		if (obj_int(st, f[i], &n) != 0)
			n = 0;
		if (obj_int(obj_path(pool, "status"), f[i], &o) != 0)
			o = 0;
		if (n == want && o != want)
			return 1;
	}
	return 0;
}

/* 1 when the write waits for the pool's linger timer: a status that reaches no milestone,
 * less than STW_LINGER after the previous write */
static int stw_linger(struct stw_pool *sp, json_object *pool, json_object *st)
{
	double now = now_mono(), due = sp->last_write + STW_LINGER;
	struct timeval tv;

	if (sp->last_write == 0 || now >= due || stw_milestone(pool, st))
		return 0;
	if (!evtimer_pending(sp->linger, NULL)) {
		tv = secs_to_tv(due - now);
		evtimer_add(sp->linger, &tv);
	}
	log_debug(sp->key, "status write coalesced: next in %.2fs", due - now);
	return 1;
}

static void stw_recompute_pool(struct stw *, const char *ns, const char *name);

/* one pool's status; its objects are decoded for it and released after it */
static void stw_recompute(struct stw *w, const char *ns, const char *name)
{
	stw_recompute_pool(w, ns, name);
	store_release_views(w->objs);
	if (w->results != NULL)
		store_release_views(w->results);
}

static void stw_recompute_pool(struct stw *w, const char *ns, const char *name)
{
	json_object *pool = store_get(w->objs, KIND_POOL, ns, name), *st;
	struct stw_pool *sp;
	char key[512];

	snprintf(key, sizeof key, "%s/%s", ns, name);
	if (pool == NULL) {
		stw_pool_drop(w, ns, name, key);
		return;
	}
	st = stw_compute(w, pool);
	sp = stw_pool_get(w, ns, name, key);
	stw_gauges(sp, pool, st);
	if (!statuscalc_differs(pool, st)) {
		if (!sp->inflight)
			stw_pool_clear_written(sp);
		json_object_put(st);
		return;
	}
	if (stw_hold(sp, pool, st) || stw_linger(sp, pool, st)) {
		json_object_put(st);
		return;
	}
	stw_write(sp, pool, st);
	json_object_put(st);
}

/* ---- the write ---- */

static void stw_paused_event(
    struct stw_pool *sp, const char *uid, json_object *from, json_object *to)
{
	struct k8sev_src src;
	int change = statuscalc_paused_change(from, to);

	if (change == 0 || sp->w->rec == NULL)
		return;
	src.ns = sp->ns;
	src.pool = sp->name;
	src.uid = uid;
	src.type = "Normal";
	src.reason = change > 0 ? "SuccessfulPaused" : "SuccessfulResume";
	src.message = change > 0 ? "Pool is paused" : "Pool is unpaused";
	k8sev_post(sp->w->rec, &src, now_real());
}

/* SPEC 15: a newly added ReplicaFailure is also a Warning Event with the sync error */
static void stw_failure_event(
    struct stw_pool *sp, const char *uid, json_object *from, json_object *to)
{
	struct k8sev_src src;
	json_object *c = statuscalc_failure_added(from, to);

	if (c == NULL || sp->w->rec == NULL || obj_str(c, "reason") == NULL ||
	    strcmp(obj_str(c, "reason"), REASON_INVALID_SELECTOR) == 0)
		return;
	src.ns = sp->ns;
	src.pool = sp->name;
	src.uid = uid;
	src.type = "Warning";
	src.reason = obj_str(c, "reason");
	src.message = obj_str(c, "message") != NULL ? obj_str(c, "message") : "";
	k8sev_post(sp->w->rec, &src, now_real());
}

/* issue 7: another controller acts on the pool; a Warning Event naming it, once per message */
static void stw_foreign_event(
    struct stw_pool *sp, const char *uid, json_object *from, json_object *to)
{
	struct k8sev_src src;
	json_object *c = statuscalc_foreign_added(from, to);

	if (c == NULL || sp->w->rec == NULL)
		return;
	src.ns = sp->ns;
	src.pool = sp->name;
	src.uid = uid;
	src.type = "Warning";
	src.reason = SC_COND_FOREIGN;
	src.message = obj_str(c, "message") != NULL ? obj_str(c, "message") : "";
	log_warns("Another controller acts on the pool", LOG_POOL(sp->key),
	    LOG_STR("message", src.message));
	k8sev_post(sp->w->rec, &src, now_real());
}

static void stw_schedule_retry(struct stw_pool *sp)
{
	struct timeval tv;
	double d = backoff_next(&sp->bo);

	tv = secs_to_tv(d);
	evtimer_add(sp->retry, &tv);
	metrics_wq_retry(STW_QUEUE);
}

static void stw_written(struct stw_pool *sp, const struct kube_response *resp)
{
	const char *rv = obj_str(resp->body, "metadata.resourceVersion");
	json_object *from, *to;

	stw_pool_clear_written(sp);
	sp->written = sp->sent;
	sp->written_from = sp->sent_from;
	memset(&sp->sent, 0, sizeof sp->sent);
	memset(&sp->sent_from, 0, sizeof sp->sent_from);
	sp->written_rv = rv != NULL ? xstrdup(rv) : NULL;
	free(sp->failed_rv);
	sp->failed_rv = NULL;
	backoff_reset(&sp->bo);
	evtimer_del(sp->retry);
	from = stw_kept(&sp->written_from);
	to = stw_kept(&sp->written);
	stw_paused_event(sp, obj_uid(resp->body), from, to);
	stw_failure_event(sp, obj_uid(resp->body), from, to);
	stw_foreign_event(sp, obj_uid(resp->body), from, to);
	json_object_put(from);
	json_object_put(to);
}

static void stw_count(const char *result)
{
	char labels[64];

	snprintf(labels, sizeof labels, "result=\"%s\"", result);
	metrics_add(STW_M_WRITES, labels, 1);
}

static void stw_failed(struct stw_pool *sp, const struct kube_response *resp)
{
	/* 422: the uid test failed (or a status the schema refuses); 409: not expected; 404:
	 * the pool is gone (the watcher will say so, and the retry then finds nothing to do) or
	 * not served yet (an API server that has just restarted answers 404 for custom
	 * resources until it has loaded their CRDs): retried like any failure */
	stw_count(resp->status == 422   ? "invalid"
	          : resp->status == 409 ? "conflict"
	          : resp->status == 404 ? "notfound"
	                                : "error");
	if (resp->status == 404)
		log_infos("Status write: pool not found; tried again unless it is gone",
		    LOG_POOL(sp->key));
	else
		log_errors(resp->message, "Status write failed", LOG_POOL(sp->key),
		    LOG_INT("status", resp->status), LOG_STR("reason", resp->reason));
	free(sp->failed_rv);
	sp->failed_rv = sp->sent_rv;
	sp->sent_rv = NULL;
	stw_schedule_retry(sp);
}

static void stw_done(const struct kube_response *resp, void *arg)
{
	struct stw_pool *sp = arg;
	int ok = resp->status >= 200 && resp->status < 300;

	sp->inflight = 0;
	if (sp->gone) {
		stw_pool_free(sp);
		return;
	}
	if (ok) {
		stw_count("ok");
		log_infos("Status written", LOG_POOL(sp->key),
		    LOG_STR("resourceVersion", obj_str(resp->body, "metadata.resourceVersion")));
		stw_written(sp, resp);
	} else
		stw_failed(sp, resp);
	stw_pool_clear_sent(sp);
	free(sp->sent_rv);
	sp->sent_rv = NULL;
	if (sp->redo && ok)
		stw_dirty(sp->w, sp->ns, sp->name);
	sp->redo = 0;
}

static int stw_write(struct stw_pool *sp, json_object *pool, json_object *st)
{
	const char *rv = obj_str(pool, "metadata.resourceVersion");
	json_object *patch = statuscalc_patch(pool, st);
	char *opath, *path;
	int r;

	if (patch == NULL)
		return 0; /* nothing to write */
	/* the version the watcher discovered, as the pool carries it */
	opath = resource_path(resource_get(KIND_POOL),
	    obj_pool_api_version(pool) + strlen("pool.kubevirt.io/"), sp->ns, sp->name);
	xasprintf(&path, "%s/status", opath);
	free(opath);
	stw_keep(&sp->sent, st);
	stw_keep(&sp->sent_from, obj_path(pool, "status"));
	free(sp->sent_rv);
	sp->sent_rv = rv != NULL ? xstrdup(rv) : NULL;
	sp->retry_due = 0;
	sp->inflight = 1;
	log_debug(sp->key, "writing status %s", obj_json(st));
	if ((r = kube_request(sp->w->kube, "PATCH", path, STW_PATCH_TYPE, obj_json(patch), stw_done,
	         sp)) == -1) {
		log_warnx(sp->key, "status write: cannot queue the request");
		sp->inflight = 0;
		stw_pool_clear_sent(sp);
		stw_schedule_retry(sp);
	} else {
		sp->w->writes++;
		sp->last_write = now_mono();
	}
	json_object_put(patch);
	free(path);
	return r;
}

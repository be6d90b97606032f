/*
 * planrun.c: the planner's event-driven half. Maps mirror changes to dirty pools, runs one
 * planning pass per dirty pool, sends (or prints) the actions with ids, matches RESULTs to
 * the outstanding table, and publishes each pool's sync result when it changes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "link.h"
#include "log.h"
#include "metrics.h"
#include "mirror.h"
#include "obj.h"
#include "planner.h"
#include "proto.h"
#include "store.h"
#include "slab.h"
#include "timeutil.h"
#include "xmalloc.h"

struct outstanding {
	uint64_t id;
	char *key; /* pool key */
	uint64_t pass;
	char *op, *name, *uid;
	struct buf body;    /* creates and deletes: the action packed, sent again if the link
	                     * drops (len 0: none) */
	int resend;         /* the link dropped before its RESULT: send it again when it is up */
	int autoheal;       /* a delete of autohealing (plan_act.autoheal) */
	const char *reason; /* static strings from plan.c */
	const char *prefix;
};

const char *planrun_outstanding_key(const void *o)
{
	return ((const struct outstanding *)o)->key;
}

/* what one pass sees of the pool's namespace */
struct planrun_view {
	struct planner *p;
	const char *ns;
	json_object **owned, **detached, **revs;
	size_t nowned, ndetached, nrevs, caprevs;
	const char *pool_uid;
};

/* a VM this planner deleted itself, and the statePreservation it used */
struct removal {
	int preserve;
};

static void planrun_pstate_free(void *p)
{
	struct pstate *ps = p;

	if (ps == NULL)
		return;
	free(ps->key);
	free(ps->uid);
	free(ps->reason);
	free(ps->message);
	free(ps->fail_reason);
	free(ps->fail_message);
	free(ps);
}

static void planrun_outstanding_free(void *p)
{
	struct outstanding *o = p;

	if (o == NULL)
		return;
	free(o->key);
	free(o->op);
	free(o->name);
	free(o->uid);
	slabs_unkeep(&o->body);
	free(o);
}

/* an action body as bytes to keep (the compact form, codec.h: a VM body is about a third of
 * its msgpack); -1 (logged) if it cannot be packed */
static int planrun_pack(struct buf *out, json_object *body, const char *key)
{
	static struct buf scratch;

	memset(out, 0, sizeof(*out));
	/* kept in slabs (slab.h), not in the heap: at 1,000 pools scaled out at once about
	 * 1,000-3,000 outstanding creates, that left the heap full of holes between the passes'
	 * decoded trees once they were gone (heaptrack) */
	if (codec_compact_pack(&scratch, body, NULL, 0) == -1) {
		log_warnx(key, "cannot keep an action: its body does not pack");
		scratch.len = 0;
		return -1;
	}
	slabs_keep(out, &scratch);
	return 0;
}

/* the body kept by planrun_pack(), decoded again (a new reference), or NULL (logged) */
static json_object *planrun_unpack(const struct buf *b, const char *key)
{
	char err[256];
	json_object *body = codec_compact_unpack(b->data, b->len, NULL, 0, err, sizeof(err));

	if (body == NULL)
		log_warnx(key, "cannot decode a kept action: %s", err);
	return body;
}

/* a pass of one pool takes about 0.1 ms to a few ms (README "Figures") */
static const double planrun_pass_bounds[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};

/* KubeVirt's proposed per-pool counters (kubevirt/kubevirt#18600), labelled {namespace,name}
 * like the status stage's kubevirt_vmpool_* gauges (#19147): counted here when the actuator
 * answers done, so an instance that does not lead counts nothing */
#define M_STARTED  "kubevirt_vmpool_vms_started_total"
#define M_STOPPED  "kubevirt_vmpool_vms_stopped_total"
#define M_AUTOHEAL "kubevirt_vmpool_auto_healing_operations_total"

/* the pool's label string ("ns/name" key); caller frees */
static char *planrun_pool_labels(const char *key)
{
	const char *slash = strchr(key, '/');
	char *ns, *labels;

	if (slash == NULL)
		return NULL;
	ns = xstrndup(key, (size_t)(slash - key));
	labels = metrics_labels("namespace", ns, "name", slash + 1, NULL);
	free(ns);
	return labels;
}

/* a create or delete of a pool's VM is done: its counters */
static void planrun_count_done(const struct outstanding *o)
{
	int create = strcmp(o->op, ACT_CREATE_VM) == 0, del = strcmp(o->op, ACT_DELETE_VM) == 0;
	char *labels;

	if ((!create && !del) || (labels = planrun_pool_labels(o->key)) == NULL)
		return;
	metrics_add(create ? M_STARTED : M_STOPPED, labels, 1);
	if (del && o->autoheal)
		metrics_add(M_AUTOHEAL, labels, 1);
	free(labels);
}

/* the pool is gone: so are its series */
static void planrun_forget_counts(const char *key)
{
	char *labels = planrun_pool_labels(key);

	if (labels == NULL)
		return;
	metrics_remove(M_STARTED, labels);
	metrics_remove(M_STOPPED, labels);
	metrics_remove(M_AUTOHEAL, labels);
	free(labels);
}

void planrun_metrics_declare(void)
{
	metrics_declare(M_STARTED, "counter",
	    "VirtualMachines the pool created (each starts as its template's runStrategy says); "
	    "counted when the API server accepted the create.");
	metrics_declare(M_STOPPED, "counter",
	    "VirtualMachines the pool deleted (scale-in, updates that replace, autohealing); "
	    "counted when the API server accepted the delete.");
	metrics_declare(M_AUTOHEAL, "counter",
	    "Failing VirtualMachines the pool deleted to have them replaced (autohealing).");
	metrics_declare("vmpool_planner_pools", "gauge", "Pools in the planner's picture");
	metrics_declare("vmpool_planner_actions_total", "counter", "Actions sent, by op");
	metrics_declare("vmpool_planner_passes_total", "counter", "Planning passes");
	metrics_declare(
	    "vmpool_planner_outstanding_actions", "gauge", "Actions sent and not yet answered");
	metrics_declare_histogram("vmpool_planner_pass_seconds", "Seconds a planning pass took",
	    planrun_pass_bounds, sizeof planrun_pass_bounds / sizeof planrun_pass_bounds[0]);
	metrics_set("vmpool_planner_pools", NULL, 0);
	metrics_set("vmpool_planner_passes_total", NULL, 0);
	metrics_set("vmpool_planner_outstanding_actions", NULL, 0);
}

void planrun_init(struct planner *p)
{
	p->exp = expect_new(EXPECT_TTL);
	p->pools = pmap_new(planrun_pstate_free);
	p->uids = pmap_new(free);
	p->out = pmap_new(planrun_outstanding_free);
	p->removed = pmap_new(free);
	STAILQ_INIT(&p->room_waits);
}

void planrun_clear(struct planner *p)
{
	struct room_wait *w;

	expect_free(p->exp);
	pmap_free(p->pools);
	pmap_free(p->uids);
	pmap_free(p->out);
	pmap_free(p->removed);
	while ((w = STAILQ_FIRST(&p->room_waits)) != NULL) {
		STAILQ_REMOVE_HEAD(&p->room_waits, entry);
		free(w->key);
		free(w);
	}
	p->removed = NULL;
	p->exp = NULL;
	p->pools = p->uids = p->out = NULL;
}

static int planrun_split(const char *key, char *ns, size_t nslen, const char **name)
{
	const char *slash = strchr(key, '/');

	if (slash == NULL || (size_t)(slash - key) >= nslen)
		return -1;
	memcpy(ns, key, slash - key);
	ns[slash - key] = '\0';
	*name = slash + 1;
	return 0;
}

static json_object *planrun_result_body(struct pstate *ps, int type)
{
	char ns[256];
	const char *name;

	if (planrun_split(ps->key, ns, sizeof(ns), &name) == -1)
		return NULL;
	if (type == MSG_POOL_RESULT) {
		struct msg_pool_result r = {ns, name, ps->uid ? ps->uid : "", ps->ok, ps->reason,
		    ps->message, ps->progress};

		return msg_pool_result_pack(&r);
	}
	return msg_pool_forget_pack(&(struct msg_pool_forget){ns, name});
}

static void planrun_publish(struct planner *p, struct pstate *ps, int type)
{
	json_object *b = planrun_result_body(ps, type);

	if (b != NULL && p->pub != NULL)
		pub_broadcast(p->pub, type, b);
	json_object_put(b);
}

/* what the pass did: "" when it had nothing to do and nothing is in flight */
static const char *planrun_progress(const struct pstate *ps, const struct plan_out *out)
{
	if (out->ncreate > 0)
		return PROGRESS_SCALING_UP;
	if (out->ndelete > 0)
		return PROGRESS_SCALING_DOWN;
	if (out->nacts > 0)
		return PROGRESS_UPDATING;
	if (out->gated || ps->pending > 0) /* the last actions are not seen yet */
		return ps->progress != NULL && ps->progress[0] != '\0' ? ps->progress
		                                                       : PROGRESS_UPDATING;
	return "";
}

/* records what the pass did and publishes it if it changed (once there is a result) */
static void planrun_set_progress(struct planner *p, struct pstate *ps, const char *progress)
{
	if (ps->progress != NULL && strcmp(ps->progress, progress) == 0)
		return;
	ps->progress = progress;
	log_debug(ps->key, "progress: %s", progress[0] != '\0' ? progress : "none");
	if (ps->published)
		planrun_publish(p, ps, MSG_POOL_RESULT);
}

/* records the pool's sync result and publishes it if it changed */
static void planrun_set_result(
    struct planner *p, struct pstate *ps, int ok, const char *reason, const char *message)
{
	reason = ok ? "" : (reason != NULL ? reason : "");
	message = ok ? "" : (message != NULL ? message : "");
	if (ps->published && ps->ok == ok && strcmp(ps->reason, reason) == 0 &&
	    strcmp(ps->message, message) == 0)
		return;
	free(ps->reason);
	free(ps->message);
	ps->ok = ok;
	ps->reason = xstrdup(reason);
	ps->message = xstrdup(message);
	ps->published = 1;
	/* V(2): after a restart every pool reports once, which is no news at V(0) */
	if (ok)
		log_vs(2, "Sync ok", LOG_POOL(ps->key));
	else
		log_errors(message, "Sync failed", LOG_POOL(ps->key), LOG_STR("reason", reason));
	planrun_publish(p, ps, MSG_POOL_RESULT);
}

static void planrun_snapshot_one(const char *key, void *val, void *arg)
{
	struct pstate *ps = val;
	json_object *b;

	if (!ps->published || (b = planrun_result_body(ps, MSG_POOL_RESULT)) == NULL)
		return;
	link_send(arg, MSG_POOL_RESULT, b);
	json_object_put(b);
}

void planrun_snapshot(struct link *l, void *arg)
{
	struct planner *p = arg;
	json_object *b = msg_marker_pack();

	link_send(l, MSG_PSYNC_BEGIN, b);
	pmap_foreach(p->pools, planrun_snapshot_one, l);
	link_send(l, MSG_PSYNC_END, b);
	json_object_put(b);
}

static void planrun_mark_pool(json_object *pool, void *arg)
{
	struct planner *p = arg;
	char key[512];

	queue_mark(p->q, obj_key(pool, key, sizeof(key)));
}

static void planrun_mark_key(const char *key, void *val, void *arg)
{
	struct planner *p = arg;

	queue_mark(p->q, key);
}

/* every pool in the picture, and every pool we still hold a state for */
void planrun_mark_all(struct planner *p)
{
	store_foreach(mirror_store(p->mirror), KIND_POOL, planrun_mark_pool, p);
	pmap_foreach(p->pools, planrun_mark_key, p);
}

/* the pool controlling o (a VM or revision); soon: queue_mark_soon */
static void planrun_mark_uid(struct planner *p, json_object *o, int soon)
{
	json_object *ref = o != NULL ? obj_controller_ref(o) : NULL;
	const char *kind, *uid, *key;

	if (ref == NULL || (kind = obj_str(ref, "kind")) == NULL || strcmp(kind, POOL_KIND) != 0 ||
	    (uid = obj_str(ref, "uid")) == NULL)
		return;
	if ((key = pmap_get(p->uids, uid)) == NULL)
		return;
	if (soon)
		queue_mark_soon(p->q, key);
	else
		queue_mark(p->q, key);
}

/* the pool controlling a stored VM, from its record (p->uids holds pools' uids only) */
static void planrun_mark_owner(struct planner *p, const struct store_meta *vm)
{
	const char *key = vm != NULL ? pmap_get(p->uids, vm->owner) : NULL;

	if (key != NULL)
		queue_mark(p->q, key);
}

/* the pool controlling a VM-controlled object (PVC, DataVolume) */
static void planrun_mark_vm_uid(struct planner *p, json_object *o)
{
	json_object *ref = o != NULL ? obj_controller_ref(o) : NULL;
	const char *kind = ref != NULL ? obj_str(ref, "kind") : NULL, *uid;

	if (kind == NULL || strcmp(kind, "VirtualMachine") != 0 ||
	    (uid = obj_str(ref, "uid")) == NULL)
		return;
	planrun_mark_owner(p, store_meta_uid(mirror_store(p->mirror), KIND_VM, uid));
}

/* the pool of the VM a VMI belongs to (same namespace and name) */
static void planrun_mark_vmi(struct planner *p, json_object *vmi)
{
	if (vmi == NULL || obj_name(vmi) == NULL)
		return;
	planrun_mark_owner(
	    p, store_meta(mirror_store(p->mirror), KIND_VM, obj_namespace(vmi), obj_name(vmi)));
}

static void planrun_changed_other(
    struct planner *p, const char *kind, json_object *old, json_object *new_)
{
	if (strcmp(kind, KIND_VMI) == 0) {
		planrun_mark_vmi(p, old);
		planrun_mark_vmi(p, new_);
	} else if (strcmp(kind, KIND_REV) == 0) {
		/* a new revision: the pool's scaling or update waits for it (gated) */
		planrun_mark_uid(p, old, 0);
		planrun_mark_uid(p, new_, old == NULL);
	} else {
		planrun_mark_vm_uid(p, old);
		planrun_mark_vm_uid(p, new_);
	}
}

/* mirror callback: a pool change dirties that pool; a VM change its old and new owners;
 * VMIs, revisions, PVCs and DataVolumes the pool they belong to. Every change of the store
 * comes through here, so the pool keys by uid are kept here. */
void planrun_changed(const char *kind, json_object *old, json_object *new_, void *arg)
{
	struct planner *p = arg;
	const char *ouid, *nuid;
	char key[512];

	if (strcmp(kind, KIND_VM) == 0) {
		if (new_ == NULL && old != NULL && obj_uid(old) != NULL)
			pmap_del(p->removed, obj_uid(old));
		planrun_mark_uid(p, old, 0);
		planrun_mark_uid(p, new_, 0);
		return;
	}
	if (strcmp(kind, KIND_POOL) != 0) {
		planrun_changed_other(p, kind, old, new_);
		return;
	}
	obj_key(new_ != NULL ? new_ : old, key, sizeof(key));
	ouid = old != NULL ? obj_uid(old) : NULL;
	nuid = new_ != NULL ? obj_uid(new_) : NULL;
	if (ouid != NULL && (nuid == NULL || strcmp(ouid, nuid) != 0))
		pmap_del(p->uids, ouid);
	if (nuid != NULL)
		pmap_put(p->uids, nuid, xstrdup(key));
	queue_mark(p->q, key);
}

/* the pass's view of the namespace: indexed lists and lookups, never a scan */
static int planrun_name_used(const char *ns, const char *name, void *arg)
{
	struct planner *p = arg;

	return store_meta(mirror_store(p->mirror), KIND_VM, ns, name) != NULL;
}

static json_object *planrun_vm_by_name(const char *name, void *arg)
{
	struct planrun_view *v = arg;

	return store_get(mirror_store(v->p->mirror), KIND_VM, v->ns, name);
}

static json_object *planrun_vm_by_uid(const char *uid, void *arg)
{
	static const char *kinds[] = {KIND_VM, KIND_VMI, KIND_REV, KIND_PVC, KIND_DV};
	struct planrun_view *v = arg;
	json_object *o = NULL;
	size_t i;

	for (i = 0; o == NULL && i < sizeof(kinds) / sizeof(kinds[0]); i++)
		o = store_get_uid(mirror_store(v->p->mirror), kinds[i], uid);
	return o != NULL && strcmp(obj_namespace(o), v->ns) == 0 ? o : NULL;
}

static json_object *planrun_rev_by_name(const char *name, void *arg)
{
	struct planrun_view *v = arg;

	return store_get(mirror_store(v->p->mirror), KIND_REV, v->ns, name);
}

static json_object *planrun_get(const char *kind, const char *ns, const char *name, void *arg)
{
	struct planner *p = arg;

	return store_get(mirror_store(p->mirror), kind, ns, name);
}

static int planrun_removed(const char *uid, void *arg)
{
	struct planner *p = arg;
	struct removal *r = uid != NULL ? pmap_get(p->removed, uid) : NULL;

	return r != NULL ? r->preserve : -1;
}

/* the namespace's revisions the pool controls: the owner group, less a controller of
 * another kind with the same uid */
static void planrun_revs(struct store *st, const char *ns, struct planrun_view *v)
{
	json_object **revs;
	size_t i, n = store_owned(st, KIND_REV, ns, v->pool_uid, &revs);

	for (i = 0; i < n; i++) {
		if (!obj_controlled_by(revs[i], POOL_KIND, v->pool_uid))
			continue;
		if (v->nrevs == v->caprevs) {
			v->caprevs = v->caprevs ? v->caprevs * 2 : 4;
			v->revs = xreallocarray(v->revs, v->caprevs, sizeof(*v->revs));
		}
		v->revs[v->nrevs++] = json_object_get(revs[i]);
	}
	free(revs);
}

static int planrun_can_send(struct planner *p)
{
	return p->actions_stdout || (p->act != NULL && link_is_up(p->act) && p->act_leading);
}

/* a VM this planner deletes: its cleanup follows the setting it was removed with */
static void planrun_remember_removal(struct planner *p, const struct plan_act *a, const char *uid)
{
	struct removal *r;

	if (a->preserve < 0 || uid == NULL)
		return;
	r = xcalloc(1, sizeof(*r));
	r->preserve = a->preserve;
	pmap_put(p->removed, uid, r);
}

/* numbers the action, sends or prints it, and remembers it until its RESULT */
static int planrun_send(struct planner *p, struct pstate *ps, struct plan_act *a, uint64_t pass)
{
	struct outstanding *o;
	struct msg_action m;
	const char *op;
	char idbuf[32], labels[64], err[256];
	uint64_t id = ++p->next_id;

	msg_action_set_id(a->body, (long long)id);
	if (msg_action_unpack(a->body, &m, err, sizeof err) == -1) {
		/* plan.c built it with msg.c: a broken invariant, but not worth the process */
		log_warnx(ps->key, "not sending a malformed action: %s", err);
		return -1;
	}
	op = msg_op_name(m.op);
	if (p->actions_stdout) {
		printf("%s\n", obj_json(a->body));
		fflush(stdout);
	} else if (link_send(p->act, MSG_ACTION, a->body) == -1) {
		log_warns("Cannot send the action: the actuator link is down", LOG_POOL(ps->key),
		    LOG_STR("op", op), LOG_STR("name", m.name));
		return -1;
	}
	log_infos("Action sent", LOG_POOL(ps->key), LOG_INT("id", id), LOG_STR("op", op),
	    LOG_STR("name", m.name));
	snprintf(labels, sizeof(labels), "op=\"%s\"", op);
	metrics_add("vmpool_planner_actions_total", labels, 1);
	expect_add(p->exp, id, ps->key, a->kind, a->ekey, op, a->rv, now_mono());
	if (m.unfinalize != NULL)
		expect_needs_result(p->exp, id);
	planrun_remember_removal(p, a, m.uid);
	if (p->actions_stdout)
		return 0;
	o = xcalloc(1, sizeof(*o));
	o->id = id;
	o->key = xstrdup(ps->key);
	o->pass = pass;
	o->op = xstrdup(op);
	o->name = xstrdup(m.name);
	o->uid = m.uid != NULL ? xstrdup(m.uid) : NULL;
	o->reason = a->reason;
	o->prefix = a->prefix;
	o->autoheal = a->autoheal;
	if (a->kind == EXPECT_CREATE || a->kind == EXPECT_DELETE || a->kind == EXPECT_CREATE_REV)
		planrun_pack(&o->body, a->body, ps->key);
	snprintf(idbuf, sizeof(idbuf), "%" PRIu64, id);
	pmap_put(p->out, idbuf, o);
	p->creates_out += strcmp(op, ACT_CREATE_VM) == 0;
	return 0;
}

static struct pstate *planrun_pstate(struct planner *p, const char *key)
{
	struct pstate *ps = pmap_get(p->pools, key);

	if (ps == NULL) {
		ps = xcalloc(1, sizeof(*ps));
		ps->key = xstrdup(key);
		ps->warned_gen = -1;
		pmap_put(p->pools, key, ps);
	}
	return ps;
}

/* the pool is gone: forget its expectations and its published result */
static void planrun_forget(struct planner *p, const char *key)
{
	struct pstate *ps = pmap_get(p->pools, key);

	expect_drop_pool(p->exp, key);
	queue_forget(p->q, key);
	claim_forget(p, key);
	if (ps == NULL)
		return;
	log_infos("Pool gone", LOG_POOL(key));
	planrun_forget_counts(key);
	if (ps->published)
		planrun_publish(p, ps, MSG_POOL_FORGET);
	pmap_del(p->pools, key);
}

/* a bad selector: the event (once per generation) and the failed result, nothing else */
static void planrun_invalid(struct planner *p, struct pstate *ps, struct plan_out *out)
{
	size_t i;

	/* the event waits for the actuator: warned_gen moves only once it is sent */
	if (planrun_can_send(p)) {
		for (i = 0; i < out->nacts; i++)
			planrun_send(p, ps, &out->acts[i], 0);
		ps->warned_gen = out->warned_gen;
	}
	ps->pending = 0;
	planrun_set_result(p, ps, 0, out->reason, out->message);
}

static long planrun_window(const struct pstate *ps)
{
	return ps->create_window > 0 ? ps->create_window : 1;
}

/* a new pass with actions: its RESULTs decide the sync result */
static void planrun_actions(struct planner *p, struct pstate *ps, struct plan_out *out)
{
	struct plan_act *a;
	size_t i;

	ps->pass = ++p->next_pass;
	ps->pending = ps->failed = ps->aborted = 0;
	for (i = 0; i < out->nacts; i++) {
		a = &out->acts[i];
		if (planrun_send(p, ps, a, ps->pass) == 0) {
			ps->pending++;
			ps->creating += a->kind == EXPECT_CREATE;
		}
	}
	if (p->actions_stdout)
		ps->pending = ps->creating = 0;
}

/* plan_in.create_room: the slow-start window less the pool's creates out, those not
 * answered and not in the cache yet (one the watcher shows is done, whatever became of its
 * answer: a create whose answer is lost does not hold the window until the client gives up),
 * and no more than CREATES_OUT_MAX leaves for all pools (*bound: that was the limit). No
 * RESULT comes to a replay's printed actions: no slow start there. */
static long planrun_create_room(
    struct planner *p, struct pstate *ps, const char *key, double now, int *bound)
{
	long out, all, room, left;

	*bound = 0;
	if (p->actions_stdout)
		return -1;
	out = (long)expect_creates_unseen(p->exp, key, now);
	if (ps->creating < out)
		out = ps->creating;
	room = planrun_window(ps) > out ? planrun_window(ps) - out : 0;
	if (p->creates_out + room <= CREATES_OUT_MAX)
		return room;
	/* near the bound: those the watcher shows are done (a scan of the expectations) */
	all = (long)expect_creates_unseen(p->exp, NULL, now);
	if (p->creates_out < all)
		all = p->creates_out;
	left = CREATES_OUT_MAX > all ? CREATES_OUT_MAX - all : 0;
	if (left < room) {
		*bound = 1;
		room = left;
	}
	return room;
}

/* the pool waits for room among all pools' creates */
static void planrun_room_wait(struct planner *p, struct pstate *ps)
{
	struct room_wait *w;

	if (ps->room_wait)
		return;
	w = xcalloc(1, sizeof(*w));
	w->key = xstrdup(ps->key);
	STAILQ_INSERT_TAIL(&p->room_waits, w, entry);
	ps->room_wait = 1;
}

/* a create is answered: the pool that waited longest for room is planned again */
static void planrun_room_freed(struct planner *p)
{
	struct room_wait *w;
	struct pstate *ps;
	int marked = 0;

	while (!marked && (w = STAILQ_FIRST(&p->room_waits)) != NULL) {
		STAILQ_REMOVE_HEAD(&p->room_waits, entry);
		if ((ps = pmap_get(p->pools, w->key)) != NULL && ps->room_wait) {
			ps->room_wait = 0;
			queue_mark(p->q, w->key);
			marked = 1;
		}
		free(w->key);
		free(w);
	}
}

static void planrun_plan(
    struct planner *p, const char *key, json_object *pool, struct planrun_view *v)
{
	struct pstate *ps = planrun_pstate(p, key);
	struct expect_view ev = {planrun_vm_by_name, planrun_vm_by_uid, planrun_rev_by_name, v};
	struct plan_in in;
	struct plan_out out;
	double now = now_mono();
	int bound;

	free(ps->uid);
	ps->uid = xstrdup(obj_uid(pool) ? obj_uid(pool) : "");
	expect_settle_view(p->exp, key, pool, &ev, now);
	memset(&in, 0, sizeof(in));
	in.pool = pool;
	in.key = key;
	in.owned = v->owned;
	in.nowned = v->nowned;
	in.detached = v->detached;
	in.ndetached = v->ndetached;
	in.name_used = planrun_name_used;
	in.name_arg = p;
	in.get = planrun_get;
	in.get_arg = p;
	in.revs = v->revs;
	in.nrevs = v->nrevs;
	in.removed = planrun_removed;
	in.removed_arg = p;
	in.wallnow = now_real();
	in.exp = p->exp;
	in.burst = (int)p->burst;
	in.create_room = planrun_create_room(p, ps, key, now, &bound);
	in.seed = p->seed >= 0 ? (unsigned int)p->seed : (unsigned int)random();
	in.now = now;
	in.warned_gen = ps->warned_gen;
	if (plan_pool(&in, &out) == -1) {
		log_warnx(key, "pool without name or uid; not planned");
		return;
	}
	if (!out.invalid && planrun_can_send(p))
		planrun_set_progress(p, ps, planrun_progress(ps, &out));
	if (out.invalid)
		planrun_invalid(p, ps, &out);
	else if (!planrun_can_send(p))
		log_debug(key, "actuator not connected: %zu actions wait", out.nacts);
	else if (out.nacts > 0)
		planrun_actions(p, ps, &out);
	else if (ps->pending == 0) {
		planrun_set_result(p, ps, 1, NULL, NULL);
		queue_ok(p->q, key);
	}
	ps->create_held = out.create_held;
	if (out.create_held && bound)
		planrun_room_wait(p, ps);
	if (out.ncreate == 0 && !out.gated && !out.create_held)
		ps->create_window = 1; /* nothing to create: the next scale-out starts slow */
	if (out.gated)
		log_debug(key, "waiting for expectations");
	if (out.requeue_after > 0)
		queue_after(p->q, key, out.requeue_after);
	plan_out_clear(&out);
}

/*
 * The VMs of ns the pool with uid pool_uid controls: the store's owner index, less a
 * controller of another kind under that uid. Views of st, *vms allocated (free it).
 */
size_t planrun_owned(struct store *st, const char *ns, const char *pool_uid, json_object ***vms)
{
	size_t i, n = store_owned(st, KIND_VM, ns, pool_uid, vms), k = 0;

	for (i = 0; i < n; i++) {
		if (obj_controlled_by((*vms)[i], POOL_KIND, pool_uid))
			(*vms)[k++] = (*vms)[i];
	}
	(*vms)[k] = NULL;
	return k;
}

/* the VMs of ns without a controller that still carry the pool finalizer (the detached-VM
 * rule of plan.c; usually none), as planrun_owned hands them out */
size_t planrun_detached(struct store *st, const char *ns, json_object ***vms)
{
	size_t i, n = store_owned(st, KIND_VM, ns, "", vms), k = 0;

	for (i = 0; i < n; i++) {
		if (obj_has_finalizer((*vms)[i], POOL_FINALIZER))
			(*vms)[k++] = (*vms)[i];
	}
	(*vms)[k] = NULL;
	return k;
}

/* the queue's callback: one pass for one pool */
void planrun_run(const char *key, void *arg)
{
	struct planner *p = arg;
	struct store *st = mirror_store(p->mirror);
	struct planrun_view v;
	json_object *pool;
	const char *name;
	char ns[256];
	double t0 = now_mono();

	if (!mirror_synced(p->mirror) && !p->replay_done)
		return;
	if (planrun_split(key, ns, sizeof(ns), &name) == -1)
		return;
	if ((pool = store_get(st, KIND_POOL, ns, name)) == NULL) {
		planrun_forget(p, key);
		return;
	}
	if (!claim_gate(p, key, pool))
		return; /* a shard's pool another shard acts on, or not claimed yet */
	memset(&v, 0, sizeof(v));
	v.p = p;
	v.ns = ns;
	v.pool_uid = obj_uid(pool) ? obj_uid(pool) : "";
	v.nowned = planrun_owned(st, ns, v.pool_uid, &v.owned);
	v.ndetached = planrun_detached(st, ns, &v.detached);
	planrun_revs(st, ns, &v);
	planrun_plan(p, key, pool, &v);
	free(v.owned);
	free(v.detached);
	while (v.nrevs > 0)
		json_object_put(v.revs[--v.nrevs]);
	free(v.revs);
	store_release_views(st); /* one pool's objects decoded at a time */
	p->passes++;
	p->pass_seconds += now_mono() - t0;
	metrics_add("vmpool_planner_passes_total", NULL, 1);
	metrics_observe("vmpool_planner_pass_seconds", NULL, now_mono() - t0);
	metrics_set("vmpool_planner_pools", NULL, (double)store_count(st, KIND_POOL));
	metrics_set("vmpool_planner_outstanding_actions", NULL, (double)pmap_count(p->out));
}

static void planrun_error_text(const struct msg_result *r, char *out, size_t outlen)
{
	if (*r->message != '\0')
		snprintf(out, outlen, "%s", r->message);
	else if (*r->reason != '\0')
		snprintf(out, outlen, "%s", r->reason);
	else
		snprintf(out, outlen, "HTTP status %lld", r->status);
}

/* a RESULT of the pool's latest pass: the first failure with a reason is the result */
static void planrun_pass_result(
    struct planner *p, struct pstate *ps, struct outstanding *o, int ok, const char *err)
{
	if (o->pass == 0 || o->pass != ps->pass || ps->pending == 0)
		return;
	ps->pending--;
	if (!ok && o->reason != NULL && !ps->failed) {
		ps->failed = 1;
		free(ps->fail_reason);
		free(ps->fail_message);
		ps->fail_reason = xstrdup(o->reason);
		xasprintf(&ps->fail_message, "%s: %s", o->prefix, err);
	} else if (!ok)
		ps->aborted = 1;
	if (ps->pending > 0)
		return;
	if (ps->failed)
		planrun_set_result(p, ps, 0, ps->fail_reason, ps->fail_message);
	else if (!ps->aborted) {
		planrun_set_result(p, ps, 1, NULL, NULL);
		queue_ok(p->q, ps->key);
	}
}

/* a create's RESULT moves the pool's slow-start window and, when the window held creates
 * back, runs the pool's pass again; a failed one starts again at 1 (client-go: stop at the
 * first failure; the failure's backoff runs the pass) */
static void planrun_slow_start(struct planner *p, struct pstate *ps, int ok, int unknown)
{
	long w = planrun_window(ps);

	if (ps->creating > 0)
		ps->creating--;
	if (!unknown && !ok) {
		ps->create_window = 1;
		ps->create_held = 0; /* the failure's backoff runs the pass, not the next RESULT */
		return;
	}
	if (!unknown && w < p->burst)
		ps->create_window = w + 1;
	if (!ps->create_held)
		return;
	/* half the window's creates answered: the next ones go at the next loop turn, neither
	 * after the queue's pace nor after the pool's share of the time, so the window grows
	 * per round trip as client-go's slow start does, not per 50 ms (it took 0.3 s to reach
	 * 64 creates out), and a big pool's creates out never run dry while its pass waits out
	 * the share (a pool of 200 VMs: 0.2 s between passes, the API server idle for the
	 * last 0.1; issue 10). Such passes come at most once per a third of the window's
	 * creates answered. */
	if (2 * ps->creating <= planrun_window(ps))
		queue_mark_soon(p->q, ps->key);
	else
		queue_mark(p->q, ps->key);
}

void planrun_result(struct planner *p, const struct msg_result *r)
{
	struct outstanding *o;
	struct pstate *ps;
	long long id = r->id;
	char idbuf[32], err[512];
	int ok = r->ok, unknown = !ok && r->unknown;

	snprintf(idbuf, sizeof(idbuf), "%lld", id);
	if (!ok && strcmp(r->reason, REASON_NOT_LEADER) == 0) {
		/* nothing was done, no failure: the actuator does not lead (a planner without
		 * --leader-elect beside an actuator with it). Its term is over until LEADER. */
		if (p->act_leading)
			log_warnx(NULL,
			    "the actuator does not lead and refused action %lld: holding actions "
			    "until "
			    "it does%s",
			    id, p->elect ? "" : " (give the planner --leader-elect as well)");
		p->act_leading = 0;
		planrun_term_over(p);
		return;
	}
	if (claim_result(p, r, (uint64_t)id))
		return;
	if ((o = pmap_take(p->out, idbuf)) == NULL) {
		log_debug(NULL, "RESULT for unknown action %lld ignored", id);
		return;
	}
	if (strcmp(o->op, ACT_CREATE_VM) == 0) {
		p->creates_out--;
		planrun_room_freed(p);
	}
	planrun_error_text(r, err, sizeof(err));
	if (unknown) {
		/* not a failure: the write may have happened; the watcher will tell */
		expect_unknown(p->exp, (uint64_t)id);
		log_warns("Action outcome unknown; waiting for the watcher", LOG_POOL(o->key),
		    LOG_INT("id", id), LOG_STR("op", o->op), LOG_STR("name", o->name),
		    LOG_STR("reason", err));
		ok = 1;
	} else {
		expect_result_rv(p->exp, (uint64_t)id, ok, r->rv, r->gone);
		if (ok)
			planrun_count_done(o);
	}
	if (!ok && o->uid != NULL && strcmp(o->op, ACT_DELETE_VM) == 0)
		pmap_del(p->removed, o->uid);
	if ((ps = pmap_get(p->pools, o->key)) != NULL && strcmp(o->op, ACT_CREATE_VM) == 0)
		planrun_slow_start(p, ps, ok, unknown);
	if (!ok) {
		log_errors(err, "Action failed", LOG_POOL(o->key), LOG_INT("id", id),
		    LOG_STR("op", o->op), LOG_STR("name", o->name));
		queue_retry(p->q, o->key);
	}
	if ((ps = pmap_get(p->pools, o->key)) != NULL)
		planrun_pass_result(p, ps, o, ok, err);
	planrun_outstanding_free(o);
	metrics_set("vmpool_planner_outstanding_actions", NULL, (double)pmap_count(p->out));
	claim_settle(p);
}

static void planrun_reset_pending(const char *key, void *val, void *arg)
{
	struct pstate *ps = val;

	ps->pending = 0;
	ps->creating = 0;
}

/* the keys of outstanding actions with a body (creates and deletes) */
struct planrun_keys {
	char **v;
	size_t n;
};

static void planrun_key_unknown(const char *key, void *val, void *arg)
{
	struct outstanding *o = val;
	struct planrun_keys *k = arg;

	if (o->body.len == 0)
		return;
	k->v = xreallocarray(k->v, k->n + 1, sizeof(*k->v));
	k->v[k->n++] = xstrdup(key);
}

static void planrun_count_create(const char *key, void *val, void *arg)
{
	struct planner *p = arg;

	p->creates_out += strcmp(((struct outstanding *)val)->op, ACT_CREATE_VM) == 0;
}

/* the actuator link dropped: every outstanding action is unknown. Creates and deletes stay
 * expected and are sent again when the link is back (a repeated create is AlreadyExists, a
 * repeated delete with its uid precondition NotFound or Conflict: both done), so a lost
 * answer never makes a pass pick another victim; patches are planned again. */
void planrun_link_lost(struct planner *p)
{
	struct pmap *keep = pmap_new(planrun_outstanding_free);
	struct planrun_keys k = {NULL, 0};
	struct outstanding *o;
	size_t n = expect_link_lost(p->exp), i;

	pmap_foreach(p->out, planrun_key_unknown, &k);
	for (i = 0; i < k.n; i++) {
		o = pmap_take(p->out, k.v[i]);
		o->resend = 1;
		o->pass = 0; /* no longer part of a pass's sync result */
		pmap_put(keep, k.v[i], o);
		free(k.v[i]);
	}
	free(k.v);
	log_info(NULL,
	    "actuator link lost: %zu outstanding actions forgotten, %zu kept to send again, %zu "
	    "expectations dropped",
	    pmap_count(p->out), pmap_count(keep), n);
	pmap_free(p->out);
	p->out = keep;
	p->creates_out = 0;
	pmap_foreach(p->out, planrun_count_create, p);
	claim_reset(p);
	pmap_foreach(p->pools, planrun_reset_pending, NULL);
	metrics_set("vmpool_planner_outstanding_actions", NULL, (double)pmap_count(p->out));
	planrun_mark_all(p);
}

static void planrun_resend_one(const char *key, void *val, void *arg)
{
	struct outstanding *o = val;
	struct planner *p = arg;
	json_object *body;
	int sent;

	if (!o->resend || (body = planrun_unpack(&o->body, o->key)) == NULL)
		return;
	sent = link_send(p->act, MSG_ACTION, body) == 0;
	json_object_put(body);
	if (!sent)
		return;
	o->resend = 0;
	log_infos("Action sent again (its outcome was unknown)", LOG_POOL(o->key),
	    LOG_INT("id", o->id), LOG_STR("op", o->op), LOG_STR("name", o->name));
}

void planrun_resend(struct planner *p)
{
	pmap_foreach(p->out, planrun_resend_one, p);
}

void planrun_leader(struct planner *p, int leading)
{
	if (leading == p->act_leading)
		return;
	p->act_leading = leading;
	if (leading) {
		log_info(NULL, "the actuator leads: planning and sending actions");
		planrun_resend(p);
		planrun_mark_all(p);
	} else if (link_is_up(p->act)) {
		log_info(NULL, "the actuator does not lead: actions wait");
		planrun_term_over(p);
	}
}

static void planrun_forget_term(const char *key, void *val, void *arg)
{
	struct planner *p = arg;

	expect_drop_pool(p->exp, key);
	planrun_reset_pending(key, val, NULL);
}

/* --leader-elect: the actuator stopped leading (it exits when it does, so its queued writes
 * died with it). What this planner had sent belongs to that term: outstanding actions and
 * expectations are all forgotten, nothing is sent again, and leading again plans every
 * pool from the picture, as a restarted planner does (another leader may have acted in
 * between: a create kept from back then could be one too many). */
void planrun_term_over(struct planner *p)
{
	size_t n = pmap_count(p->out);

	pmap_free(p->out);
	p->out = pmap_new(planrun_outstanding_free);
	p->creates_out = 0;
	pmap_foreach(p->pools, planrun_forget_term, p);
	claim_reset(p);
	log_info(
	    NULL, "leadership ended: %zu outstanding actions and every expectation forgotten", n);
	metrics_set("vmpool_planner_outstanding_actions", NULL, 0);
	planrun_mark_all(p);
}

/*
 * plan.c: one planning pass for one pool (SPEC 4-10, 14), as a pure function of the pool,
 * the VMs it controls, the namespace's detached VMs that still carry its finalizer, a way
 * to ask whether a VM name is taken in the namespace, the expectations, the burst, a
 * random seed and the clock. The caller indexes the VMs, so a pass costs what the pool
 * holds, not what its namespace holds.
 * It returns the actions to send and whether the pass failed outright (bad selector, a
 * spec that makes no sense). Rules that update objects skip an object with a patch still
 * pending; scaling, updates and pruning wait while create/delete expectations are
 * unsatisfied. planremove.c and planupdate.c hold the scale-in and update halves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obj.h"
#include "planctx.h"
#include "proto.h"
#include "selector.h"
#include "xmalloc.h"

struct msg_event plan_event(const char *type, const char *reason, const char *message)
{
	return (struct msg_event){type, reason, message};
}

/* a's ACTION body (id 0 until planrun_send numbers it), with the namespace and the pool
 * filled in from c; a's json values are referenced, not taken */
json_object *plan_body(struct plan_ctx *c, struct msg_action *a)
{
	a->ns = c->ns;
	a->pool_name = c->name;
	a->pool_uid = c->uid;
	return msg_action_pack(a);
}

struct plan_act *plan_push(struct plan_ctx *c, json_object *body, enum expect_kind kind,
    const char *rv, const char *reason, const char *prefix)
{
	struct plan_out *out = c->out;
	struct plan_act *a;

	if (out->nacts == out->cap) {
		out->cap = out->cap ? out->cap * 2 : 8;
		out->acts = xreallocarray(out->acts, out->cap, sizeof(*out->acts));
	}
	a = &out->acts[out->nacts++];
	memset(a, 0, sizeof(*a));
	a->body = body;
	a->kind = kind;
	a->ekey =
	    obj_str(body, kind == EXPECT_CREATE || kind == EXPECT_CREATE_REV ? "name" : "uid");
	a->rv = rv != NULL ? xstrdup(rv) : NULL;
	a->reason = reason;
	a->prefix = prefix;
	a->preserve = -1;
	return a;
}

/* test path == old; then replace it with new, or remove it when new is empty */
void plan_patch_swap(json_object *patch, const char *path, json_object *old, json_object *new_)
{
	json_object_array_add(patch, obj_patch_op("test", path, obj_copy(old)));
	if (json_object_array_length(new_) == 0) {
		json_object_put(new_);
		json_object_array_add(patch, obj_patch_op("remove", path, NULL));
	} else
		json_object_array_add(patch, obj_patch_op("replace", path, new_));
}

/* finalizers minus the pool finalizer */
static json_object *plan_fins_without(json_object *fins)
{
	json_object *out = json_object_new_array(), *v;
	size_t i, n = json_object_array_length(fins);

	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(fins, i);
		if (json_object_is_type(v, json_type_string) &&
		    strcmp(json_object_get_string(v), POOL_FINALIZER) == 0)
			continue;
		json_object_array_add(out, obj_copy(v));
	}
	return out;
}

/* ownerReferences minus every reference to this pool */
json_object *plan_refs_without(json_object *refs, const char *uid)
{
	json_object *out = json_object_new_array(), *v;
	size_t i, n = json_object_array_length(refs);
	const char *u;

	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(refs, i);
		u = obj_str(v, "uid");
		if (u != NULL && strcmp(u, uid) == 0)
			continue;
		json_object_array_add(out, obj_copy(v));
	}
	return out;
}

json_object *plan_array(json_object *o, const char *path)
{
	json_object *v = obj_path(o, path);

	return v != NULL && json_object_is_type(v, json_type_array) ? v : NULL;
}

/* a patch of a VM (patch: a new reference, taken) */
void plan_patch_vm(
    struct plan_ctx *c, json_object *vm, json_object *patch, const char *reason, const char *prefix)
{
	struct msg_action a = {
	    .op = MSG_OP_PATCH_VM, .name = obj_name(vm), .uid = obj_uid(vm), .patch = patch};
	json_object *b = plan_body(c, &a);

	json_object_put(patch);
	plan_push(c, b, EXPECT_PATCH, obj_str(vm, "metadata.resourceVersion"), reason, prefix);
}

/* the JSON patch that removes the pool finalizer from a VM (new reference); it tests the
 * VM's uid first, so it never reaches another VM that took the name (the actuator sends it
 * ahead of the DELETE and its uid precondition) */
json_object *plan_unfinalize_patch(json_object *vm)
{
	json_object *fins = plan_array(vm, "metadata.finalizers"), *patch;
	const char *uid = obj_uid(vm);

	patch = json_object_new_array();
	if (uid != NULL)
		json_object_array_add(
		    patch, obj_patch_op("test", "/metadata/uid", json_object_new_string(uid)));
	plan_patch_swap(patch, "/metadata/finalizers", fins, plan_fins_without(fins));
	return patch;
}

/* the finalizer patch of a VM on its way out: deleted right after it (delete_vm's
 * unfinalize) or terminating. It also sets managedFields to [{}], which the API server
 * takes as a reset: it drops them, and then does no field tracking for this update (an
 * update of an object without managedFields is not tracked), about a third of the API
 * server's CPU for the patch, and the object of the last watch events is smaller (issue 10;
 * DESIGN.md, "Events and the write budget"). Nobody reads the managedFields of a VM that
 * is gone, nor tracks them through the removal of KubeVirt's own finalizer (virt-controller
 * adds one to every VM) while it goes. */
json_object *plan_leaving_patch(json_object *vm)
{
	json_object *patch = plan_unfinalize_patch(vm), *reset = json_object_new_array();

	json_object_array_add(reset, json_object_new_object());
	json_object_array_add(patch, obj_patch_op("add", "/metadata/managedFields", reset));
	return patch;
}

/* removes the pool finalizer from a VM */
void plan_strip_vm(struct plan_ctx *c, json_object *vm, const char *reason, const char *prefix)
{
	plan_patch_vm(c, vm, plan_unfinalize_patch(vm), reason, prefix);
}

/* release (SPEC 5, Q6): drop this pool's owner reference(s) and the pool finalizer */
static void plan_release(struct plan_ctx *c, json_object *vm)
{
	json_object *refs = plan_array(vm, "metadata.ownerReferences");
	json_object *fins = plan_array(vm, "metadata.finalizers"), *patch;

	patch = json_object_new_array();
	if (refs != NULL)
		plan_patch_swap(
		    patch, "/metadata/ownerReferences", refs, plan_refs_without(refs, c->uid));
	if (fins != NULL && obj_has_finalizer(vm, POOL_FINALIZER))
		plan_patch_swap(patch, "/metadata/finalizers", fins, plan_fins_without(fins));
	plan_patch_vm(c, vm, patch, NULL, NULL);
}

int plan_pending(struct plan_ctx *c, json_object *o, const char *op)
{
	const char *uid = obj_uid(o);

	return uid == NULL || expect_patch_pending(c->in->exp, uid, op, c->in->now);
}

json_object *plan_get(struct plan_ctx *c, const char *kind, const char *name)
{
	if (c->in->get == NULL || name == NULL)
		return NULL;
	return c->in->get(kind, c->ns, name, c->in->get_arg);
}

json_object *plan_rev(struct plan_ctx *c, const char *name)
{
	json_object *rev = plan_get(c, KIND_REV, name);

	return revision_owned_by(rev, c->uid) ? rev : NULL;
}

/* the pool finalizer: added while the pool lives, removed once its VMs are clean (SPEC 14) */
static void plan_pool_finalizer(struct plan_ctx *c)
{
	json_object *fins = plan_array(c->pool, "metadata.finalizers"), *patch, *b, *list;
	struct msg_action a;
	int has = obj_has_finalizer(c->pool, POOL_FINALIZER);

	/* removed once no owned VM carries it and no revision of the pool is left (an orphan
	 * deletion would leave them behind otherwise) */
	if (c->deleting ? !has || c->owned_finalized > 0 || c->in->nrevs > 0 : has)
		return;
	if (plan_pending(c, c->pool, ACT_PATCH_POOL))
		return;
	patch = json_object_new_array();
	if (c->deleting)
		plan_patch_swap(patch, "/metadata/finalizers", fins, plan_fins_without(fins));
	else if (fins == NULL) {
		list = json_object_new_array();
		json_object_array_add(list, json_object_new_string(POOL_FINALIZER));
		json_object_array_add(patch, obj_patch_op("add", "/metadata/finalizers", list));
	} else {
		list = obj_copy(fins);
		json_object_array_add(list, json_object_new_string(POOL_FINALIZER));
		plan_patch_swap(patch, "/metadata/finalizers", fins, list);
	}
	a = (struct msg_action){.op = MSG_OP_PATCH_POOL,
	    .name = c->name,
	    .uid = c->uid,
	    .patch = patch,
	    .api_version = obj_pool_api_version(c->pool)};
	b = plan_body(c, &a);
	json_object_put(patch);
	plan_push(c, b, EXPECT_PATCH, obj_str(c->pool, "metadata.resourceVersion"), NULL, NULL);
}

static int plan_matches(struct plan_ctx *c, json_object *vm)
{
	return c->sel != NULL && selector_matches(c->sel, obj_path(vm, "metadata.labels"));
}

/* a VM nobody controls that still carries the pool finalizer (detached by hand, Q7) */
static void plan_detached(struct plan_ctx *c, json_object *vm)
{
	if (obj_controller_ref(vm) != NULL || !obj_has_finalizer(vm, POOL_FINALIZER) ||
	    !plan_matches(c, vm) || plan_pending(c, vm, ACT_PATCH_VM))
		return;
	plan_strip_vm(c, vm, NULL, NULL);
}

/* one owned VM: release, deletion cleanup, terminating cleanup, or the working set */
static void plan_owned(struct plan_ctx *c, json_object *vm)
{
	int fin = obj_has_finalizer(vm, POOL_FINALIZER);

	if (fin)
		c->owned_finalized++;
	if (c->deleting) {
		if (fin && !plan_pending(c, vm, ACT_PATCH_VM))
			plan_strip_vm(c, vm, NULL, NULL);
		return;
	}
	if (!plan_matches(c, vm)) {
		if (!plan_pending(c, vm, ACT_PATCH_VM))
			plan_release(c, vm);
		return;
	}
	c->owned[c->nowned++] = vm;
	if (fin && obj_terminating(vm))
		plan_terminating(c, vm);
}

static void plan_vm(struct plan_ctx *c, json_object *vm)
{
	const char *name = obj_name(vm);

	if (name == NULL || *name == '\0') /* no action can name it */
		return;
	if (obj_controlled_by(vm, POOL_KIND, c->uid))
		plan_owned(c, vm);
	else
		plan_detached(c, vm);
}

/* owned VMs first, then detached ones (each list in store order); every VM is classified
 * again, so one on the wrong list is treated by what it is */
static void plan_vms(struct plan_ctx *c)
{
	size_t i;

	c->owned = xcalloc(c->in->nowned + c->in->ndetached + 1, sizeof(*c->owned));
	for (i = 0; i < c->in->nowned; i++)
		plan_vm(c, c->in->owned[i]);
	for (i = 0; i < c->in->ndetached; i++)
		plan_vm(c, c->in->detached[i]);
}

/* the selector must parse and match the template labels; else the pass fails (once) */
static int plan_selector(struct plan_ctx *c)
{
	json_object *labels = obj_path(c->pool, "spec.virtualMachineTemplate.metadata.labels");
	char err[256], *s;
	long long gen = 0;
	struct msg_action a;
	json_object *b;

	c->sel = selector_parse(obj_path(c->pool, "spec.selector"), err, sizeof(err));
	if (c->sel != NULL && selector_matches(c->sel, labels))
		return 0;
	if (c->sel == NULL)
		xasprintf(&c->out->message, "invalid selector: %s", err);
	else {
		s = selector_string(c->sel);
		xasprintf(&c->out->message,
		    "selector does not match template labels: selector \"%s\", labels %s", s,
		    labels != NULL ? obj_json(labels) : "{}");
		free(s);
	}
	c->out->invalid = 1;
	c->out->reason = REASON_INVALID_SELECTOR;
	obj_int(c->pool, "metadata.generation", &gen);
	if (gen != c->in->warned_gen) {
		a = (struct msg_action){.op = MSG_OP_EVENT,
		    .name = c->name,
		    .uid = c->uid,
		    .event = plan_event("Warning", REASON_INVALID_SELECTOR, c->out->message)};
		b = plan_body(c, &a);
		plan_push(c, b, EXPECT_NONE, NULL, NULL, NULL);
		c->out->warned_gen = gen;
	}
	return -1;
}

/* spec.replicas present but not an integer (a v1alpha1 object written by another tool) is
 * not nil: the pass fails rather than scaling to 1. Deletion cleanup does not need it. */
static int plan_replicas(struct plan_ctx *c)
{
	json_object *r = obj_path(c->pool, "spec.replicas");

	if (c->deleting || r == NULL || json_object_is_type(r, json_type_int))
		return 0;
	xasprintf(&c->out->message, "spec.replicas must be an integer, not %.64s", obj_json(r));
	c->out->invalid = 1;
	c->out->reason = REASON_REPLICAS;
	return -1;
}

static long plan_desired(json_object *pool)
{
	long long r;

	if (obj_int(pool, "spec.replicas", &r) != 0)
		return 1;
	return r < 0 ? 0 : (r > 1000000 ? 1000000 : (long)r);
}

/* schema-valid nonsense in the strategies: the pass fails and touches nothing */
static int plan_policy(struct plan_ctx *c)
{
	char err[1024];

	if (policy_parse(c->pool, &c->pol, err, sizeof(err)) == 0) {
		c->have_pol = 1;
		return 0;
	}
	c->out->message = xstrdup(err);
	c->out->invalid = 1;
	c->out->reason = REASON_SPEC;
	return -1;
}

/* 1 if idx is taken: a VM of that name in the namespace, or a pending create */
static int plan_index_used(struct plan_ctx *c, const char *name)
{
	if (c->in->name_used != NULL && c->in->name_used(c->ns, name, c->in->name_arg))
		return 1;
	return pmap_get(c->pend_create, name) != NULL;
}

/* SPEC 6, 8: the lowest indices whose name no VM of the namespace (nor a pending create)
 * uses, each VM labelled with the current revision, which must exist first */
static void plan_scale_out(struct plan_ctx *c, int count)
{
	json_object *vm, *b;
	struct msg_action a;
	char *name, *rev, msg[512];
	long idx;

	if (!plan_revision_ready(c, REASON_SCALE_OUT, "error during scale out"))
		return;
	rev = revision_name(c->pool);
	for (idx = 0; count > 0; idx++) {
		name = vmbuild_name(c->name, idx);
		if (plan_index_used(c, name)) {
			free(name);
			continue;
		}
		if ((vm = vmbuild_vm(c->pool, idx, rev)) == NULL) {
			free(name);
			break;
		}
		snprintf(msg, sizeof(msg), "Created VM %s/%s", c->ns, name);
		a = (struct msg_action){.op = MSG_OP_CREATE_VM,
		    .name = name,
		    .body = vm,
		    .event = plan_event("Normal", "SuccessfulCreate", msg),
		    .fail_event = plan_event("Warning", "FailedCreate", "Error creating VM")};
		b = plan_body(c, &a);
		json_object_put(vm);
		plan_push(c, b, EXPECT_CREATE, NULL, REASON_SCALE_OUT, "error during scale out");
		c->out->ncreate++;
		free(name);
		count--;
	}
	free(rev);
}

/* up to want creates within room; what the slow-start window holds back of them is told in
 * out->create_held (a create's RESULT runs the pass again) */
static void plan_scale_out_room(struct plan_ctx *c, long want, long room)
{
	long n = want < room ? want : room;

	if (c->in->create_room >= 0 && c->in->create_room < n) {
		n = c->in->create_room;
		c->out->create_held = 1;
	}
	if (n > 0)
		plan_scale_out(c, (int)n);
}

/* Scaling while earlier creates or deletes are not in the cache yet: the pass is gated
 * (no update, no pruning), but scaling in the same direction goes on as a window instead of
 * in batches: a create in flight counts as a VM (its name is taken), a delete in flight as
 * a terminating VM (SPEC 9.2's count subtracts it), and more creates go while fewer than
 * burst are pending (and the slow-start window has room). Never both directions at once,
 * nor while a revision is being created. */
static void plan_scale_pending(struct plan_ctx *c)
{
	long creating = (long)pmap_count(c->pend_create);
	long deleting = (long)pmap_count(c->pend_delete);
	long diff = (long)c->nowned + creating - c->desired, room = c->in->burst - creating;

	c->out->gated = 1;
	if (expect_scale_pending(c->in->exp, c->in->key, c->in->now) >
	    (size_t)(creating + deleting))
		return; /* a revision */
	if (diff < 0 && deleting == 0 && room > 0)
		plan_scale_out_room(c, -diff, room);
	else if (diff > 0 && creating == 0 && c->pol.scalein == SCALEIN_PROACTIVE)
		plan_scale_in(c, (int)diff);
}

/* SPEC 4 step 8: scale; when the count is right, update; when nothing moved, prune */
static void plan_scale(struct plan_ctx *c)
{
	long diff;
	size_t before;

	if (c->pol.paused)
		return;
	if (expect_scale_pending(c->in->exp, c->in->key, c->in->now) > 0) {
		plan_scale_pending(c);
		return;
	}
	diff = (long)c->nowned - c->desired;
	if (diff < 0)
		plan_scale_out_room(c, -diff, c->in->burst);
	else if (diff > 0 && c->pol.scalein == SCALEIN_PROACTIVE)
		plan_scale_in(c, (int)diff);
	if (diff != 0)
		return;
	before = c->out->nacts;
	if (plan_update(c) && c->out->nacts == before)
		plan_prune(c);
}

/* a pool being deleted: VM finalizers, revisions, then its own finalizer (SPEC 14.2) */
static void plan_deleting(struct plan_ctx *c)
{
	/* deletion cleanup goes by ownership (uid), not by selector: a pool whose selector broke
	 * after it got its finalizer can still be deleted. Detached VMs are only recognised
	 * through a usable selector. */
	c->sel = selector_parse(obj_path(c->pool, "spec.selector"), NULL, 0);
	plan_vms(c);
	plan_prune(c);
	plan_pool_finalizer(c);
}

/* a stub the watcher published for a pool over the nesting limit (proto.h OBJ_INVALID): its
 * template is not there, so nothing is touched; its deletion clean-up still runs, as it goes
 * by uid and needs no template */
static int plan_stub(struct plan_ctx *c)
{
	json_object *mark = obj_path(c->pool, OBJ_INVALID);
	const char *msg = obj_str(mark, "message");

	if (mark == NULL || c->deleting)
		return 0;
	c->out->invalid = 1;
	c->out->reason = REASON_INVALID_OBJECT;
	c->out->message = xstrdup(msg != NULL ? msg : "the object could not be read whole");
	return -1;
}

static void plan_live(struct plan_ctx *c)
{
	if (plan_selector(c) != 0 || plan_replicas(c) != 0 || plan_policy(c) != 0)
		return;
	c->desired = plan_desired(c->pool);
	plan_vms(c);
	plan_pool_finalizer(c);
	if (c->pol.autoheal && plan_autoheal(c))
		return;
	plan_scale(c);
}

int plan_pool(const struct plan_in *in, struct plan_out *out)
{
	struct plan_ctx c;

	memset(out, 0, sizeof(*out));
	out->warned_gen = in->warned_gen;
	if (in->pool == NULL) {
		out->forget = 1;
		return 0;
	}
	memset(&c, 0, sizeof(c));
	c.in = in;
	c.out = out;
	c.pool = in->pool;
	c.ns = obj_namespace(in->pool);
	c.name = obj_name(in->pool);
	c.uid = obj_uid(in->pool);
	if (c.name == NULL || c.uid == NULL || *c.name == '\0' || *c.uid == '\0')
		return -1;
	c.deleting = obj_terminating(in->pool) ? 1 : 0;
	if (plan_stub(&c) != 0)
		return 0;
	c.pend_create = expect_pending_keys(in->exp, in->key, EXPECT_CREATE, in->now);
	c.pend_delete = expect_pending_keys(in->exp, in->key, EXPECT_DELETE, in->now);
	if (c.deleting)
		plan_deleting(&c);
	else
		plan_live(&c);
	pmap_free(c.pend_create);
	pmap_free(c.pend_delete);
	if (c.have_pol)
		policy_clear(&c.pol);
	selector_free(c.sel);
	free(c.owned);
	return 0;
}

void plan_out_clear(struct plan_out *out)
{
	size_t i;

	for (i = 0; i < out->nacts; i++) {
		json_object_put(out->acts[i].body);
		free(out->acts[i].rv);
	}
	free(out->acts);
	free(out->message);
	memset(out, 0, sizeof(*out));
}

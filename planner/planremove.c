/*
 * planremove.c: VMs leaving the pool. Proactive scale-in picks VMs by the scale-in
 * selection policy (SPEC 9.2), autohealing removes failing owned VMs the same way
 * (SPEC 12, Q1, Q15), and a VM being deleted keeps the pool finalizer until its PVCs and
 * DataVolumes no longer belong to it when state is preserved (SPEC 9.3, 10).
 * The planner remembers which VMs it deleted itself (in->removed), because those follow
 * the proactive preservation setting and are cleaned up even when the pool is paused or
 * its scale-in is unmanaged; a VM deleted by anyone else follows the opportunistic one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obj.h"
#include "planctx.h"
#include "proto.h"
#include "xmalloc.h"

static int plan_preserve(struct plan_ctx *, json_object *vm);

/* the DELETE of a VM the pool removes, and its preservation patches in the same batch (the
 * VM keeps the pool finalizer until they are done, so nothing is collected early). Without
 * preservation the finalizer patch rides with the DELETE ("unfinalize"): the actuator sends
 * it as soon as the DELETE succeeds, as upstream does, instead of after the watcher has shown
 * the VM terminating (plan_terminating() then leaves the VM alone until the RESULT) */
static void plan_remove_vm(struct plan_ctx *c, json_object *vm, int preserve)
{
	struct msg_action m = {.op = MSG_OP_DELETE_VM, .name = obj_name(vm), .uid = obj_uid(vm)};
	struct plan_act *a;
	json_object *b;
	char msg[512], fmsg[512];

	snprintf(msg, sizeof(msg), "Deleted VM %s/%s with uid %s from pool", c->ns, obj_name(vm),
	    obj_uid(vm));
	m.event = plan_event("Normal", "SuccessfulDelete", msg);
	snprintf(fmsg, sizeof(fmsg), "Error deleting virtual machine %s/%s", c->ns, obj_name(vm));
	m.fail_event = plan_event("Warning", "FailedDelete", fmsg);
	if (preserve == PRESERVE_DISABLED && obj_has_finalizer(vm, POOL_FINALIZER))
		m.unfinalize = plan_leaving_patch(vm);
	b = plan_body(c, &m);
	json_object_put(m.unfinalize);
	a = plan_push(c, b, EXPECT_DELETE, NULL, REASON_SCALE_IN, "error during scale in");
	a->preserve = preserve;
	c->out->ndelete++;
	if (preserve != PRESERVE_DISABLED)
		plan_preserve(c, vm);
}

/* the VMs of list[0..n) the selection policy picks, at most count, removed */
static void plan_remove_some(struct plan_ctx *c, json_object **list, size_t n, long count)
{
	size_t i;

	n = policy_order(&c->pol.scalein_sel, list, n, c->in->seed);
	for (i = 0; i < n && (long)i < count; i++)
		plan_remove_vm(c, list[i], (int)c->pol.preserve_proactive);
}

/* SPEC 9.2; more terminating VMs than surplus clamps at zero (Q4), and selectors that
 * match fewer VMs than the surplus remove only those (Q2) */
void plan_scale_in(struct plan_ctx *c, int diff)
{
	json_object **elig = xcalloc(c->nowned + 1, sizeof(*elig));
	size_t nelig = 0, i;
	long count, term = 0;
	const char *uid;

	for (i = 0; i < c->nowned; i++) {
		uid = obj_uid(c->owned[i]);
		/* a delete in flight counts as terminating: its VM is never picked twice */
		if (obj_terminating(c->owned[i]) || (uid != NULL && pmap_get(c->pend_delete, uid)))
			term++;
		else if (uid != NULL)
			elig[nelig++] = c->owned[i];
	}
	count = (diff < c->in->burst ? diff : c->in->burst) - term;
	if (count > 0)
		plan_remove_some(c, elig, nelig, count);
	free(elig);
}

/* SPEC 12 on owned VMs only (Q1), looking again when the first one would start failing
 * (Q15). Waits, like scaling, until earlier creates and deletes are seen. */
int plan_autoheal(struct plan_ctx *c)
{
	json_object **failing;
	size_t n = 0, i;
	double wait, soonest = -1;
	size_t before = c->out->ndelete, first = c->out->nacts;

	if (expect_scale_pending(c->in->exp, c->in->key, c->in->now) > 0)
		return 0;
	failing = xcalloc(c->nowned + 1, sizeof(*failing));
	for (i = 0; i < c->nowned; i++) {
		if (obj_terminating(c->owned[i]) || obj_uid(c->owned[i]) == NULL)
			continue;
		if (policy_failing(&c->pol, c->owned[i], c->in->wallnow, &wait))
			failing[n++] = c->owned[i];
		else if (wait >= 0 && (soonest < 0 || wait < soonest))
			soonest = wait;
	}
	if (n > 0)
		plan_remove_some(c, failing, n, (long)n);
	for (i = first; i < c->out->nacts; i++) /* counted once done (kubevirt_vmpool_*) */
		c->out->acts[i].autoheal = c->out->acts[i].kind == EXPECT_DELETE;
	free(failing);
	if (soonest >= 0) {
		soonest += 0.5; /* past the threshold, not on it */
		if (c->out->requeue_after <= 0 || soonest < c->out->requeue_after)
			c->out->requeue_after = soonest;
	}
	return (size_t)c->out->ndelete > before;
}

/* an owned PVC or DataVolume of the VM: drop the VM's owner reference (SPEC 9.3) */
static int plan_release_one(struct plan_ctx *c, json_object *vm, const char *kind, const char *name)
{
	json_object *o = plan_get(c, kind, name), *refs, *patch, *b;
	struct msg_action m;
	int pvc = strcmp(kind, KIND_PVC) == 0;
	const char *op = pvc ? ACT_PATCH_PVC : ACT_PATCH_DV;
	char msg[512];

	if (o == NULL || !obj_controlled_by(o, "VirtualMachine", obj_uid(vm)))
		return 0;
	if (plan_pending(c, o, op))
		return 1;
	refs = plan_array(o, "metadata.ownerReferences");
	patch = json_object_new_array();
	plan_patch_swap(
	    patch, "/metadata/ownerReferences", refs, plan_refs_without(refs, obj_uid(vm)));
	snprintf(msg, sizeof(msg), "Error removing %s owner references for VM %s/%s",
	    pvc ? "PVC" : "DataVolume", c->ns, obj_name(vm));
	m = (struct msg_action){.op = pvc ? MSG_OP_PATCH_PVC : MSG_OP_PATCH_DV,
	    .name = name,
	    .uid = obj_uid(o),
	    .patch = patch,
	    .fail_event = plan_event("Warning", "FailedUpdate", msg)};
	b = plan_body(c, &m);
	json_object_put(patch);
	plan_push(c, b, EXPECT_PATCH, obj_str(o, "metadata.resourceVersion"), REASON_SCALE_IN,
	    "error during scale in");
	return 1;
}

/* the names a VM's disks may have, each once: as PVCs (dataVolumeTemplates and claimName)
 * or as DataVolumes (dataVolumeTemplates and dataVolume.name) */
struct plan_disks {
	const char *kind[64], *name[64];
	size_t n;
};

static void plan_disk(struct plan_disks *d, const char *kind, const char *name)
{
	size_t i;

	if (name == NULL || d->n == sizeof(d->name) / sizeof(d->name[0]))
		return;
	for (i = 0; i < d->n; i++)
		if (strcmp(d->kind[i], kind) == 0 && strcmp(d->name[i], name) == 0)
			return;
	d->kind[d->n] = kind;
	d->name[d->n++] = name;
}

/* returns how many still belong to the VM (a patch was asked for or is pending) */
static int plan_preserve(struct plan_ctx *c, json_object *vm)
{
	json_object *dvts = plan_array(vm, "spec.dataVolumeTemplates");
	json_object *vols = plan_array(vm, "spec.template.spec.volumes"), *v;
	struct plan_disks d;
	size_t i, n;
	const char *name;
	int held = 0;

	d.n = 0;
	n = dvts != NULL ? json_object_array_length(dvts) : 0;
	for (i = 0; i < n; i++) {
		name = obj_str(json_object_array_get_idx(dvts, i), "metadata.name");
		plan_disk(&d, KIND_PVC, name);
		plan_disk(&d, KIND_DV, name);
	}
	n = vols != NULL ? json_object_array_length(vols) : 0;
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(vols, i);
		plan_disk(&d, KIND_PVC, obj_str(v, "persistentVolumeClaim.claimName"));
		plan_disk(&d, KIND_DV, obj_str(v, "dataVolume.name"));
	}
	for (i = 0; i < d.n; i++)
		held += plan_release_one(c, vm, d.kind[i], d.name[i]);
	return held;
}

/* SPEC 10 with Q3: every owned terminating VM gets its cleanup, whatever the count; a VM
 * someone else deleted waits while the pool is paused or its scale-in is unmanaged */
void plan_terminating(struct plan_ctx *c, json_object *vm)
{
	int preserve =
	    c->in->removed != NULL ? c->in->removed(obj_uid(vm), c->in->removed_arg) : -1;
	int ours = preserve >= 0;

	if (!ours) {
		if (c->pol.paused || c->pol.scalein == SCALEIN_UNMANAGED)
			return;
		preserve = (int)c->pol.preserve_opportunistic;
	}
	if (plan_pending(c, vm, ACT_PATCH_VM) || pmap_get(c->pend_delete, obj_uid(vm)) != NULL)
		return; /* the actuator removes the finalizer with the DELETE, or it is planned */
	if (preserve != PRESERVE_DISABLED && plan_preserve(c, vm) > 0)
		return; /* the finalizer goes once the disks are the VM's no longer */
	plan_patch_vm(c, vm, plan_leaving_patch(vm), REASON_SCALE_IN,
	    ours ? "error during scale in" : "error during opportunistic scale in");
}

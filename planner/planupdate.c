/*
 * planupdate.c: revisions and updates (SPEC 11). The pool's current ControllerRevision is
 * created before any VM names it; outdated VM objects are rewritten; then, unless the
 * update strategy is opportunistic, VMIs started from an older revision are restarted,
 * relabelled, or their VM deleted, unhealthy ones first and the rest within
 * maxUnavailable. Revisions nothing uses any more are deleted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obj.h"
#include "planctx.h"
#include "proto.h"
#include "xmalloc.h"

#define PLAN_UPDATE_RECHECK 3.0 /* seconds: an outdated VMI waits for budget */

static void plan_requeue(struct plan_ctx *c, double secs)
{
	if (c->out->requeue_after <= 0 || secs < c->out->requeue_after)
		c->out->requeue_after = secs;
}

int plan_revision_ready(struct plan_ctx *c, const char *reason, const char *prefix)
{
	char *name = revision_name(c->pool);
	json_object *rev = plan_get(c, KIND_REV, name), *b;
	struct msg_action a = {.op = MSG_OP_CREATE_REV, .name = name};
	int ready = 0;

	if (rev != NULL && revision_owned_by(rev, c->uid))
		ready = 1;
	else if (rev != NULL)
		plan_requeue(c, 5.0); /* an earlier pool's, which the collector removes (Q12) */
	else {
		a.body = revision_build(c->pool);
		b = plan_body(c, &a);
		json_object_put(a.body);
		plan_push(c, b, EXPECT_CREATE_REV, NULL, reason, prefix);
	}
	if (!ready)
		c->out->gated = 1;
	free(name);
	return ready;
}

/* SPEC 11.3 step 3: rewrite the outdated VM objects */
static void plan_update_vms(struct plan_ctx *c, json_object **vms, size_t n)
{
	json_object *vm, *b, *body;
	struct msg_action a;
	char *rev, msg[512], fmsg[512];
	size_t i;

	if (!plan_revision_ready(c, REASON_UPDATE, "error during VM update"))
		return;
	rev = revision_name(c->pool);
	for (i = 0; i < n; i++) {
		vm = vms[i];
		if (plan_pending(c, vm, ACT_UPDATE_VM) ||
		    (body = revision_updated_vm(c->pool, vm, rev)) == NULL)
			continue;
		snprintf(msg, sizeof(msg), "Updated VM %s/%s", c->ns, obj_name(vm));
		/* upstream's message names the VM as <name>/<namespace> (Q14); kept */
		snprintf(fmsg, sizeof(fmsg), "Error updating virtual machine %s/%s", obj_name(vm),
		    c->ns);
		a = (struct msg_action){.op = MSG_OP_UPDATE_VM,
		    .name = obj_name(vm),
		    .uid = obj_uid(vm),
		    .body = body,
		    .event = plan_event("Normal", "SuccessfulUpdate", msg),
		    .fail_event = plan_event("Warning", "FailedUpdate", fmsg)};
		b = plan_body(c, &a);
		json_object_put(body);
		plan_push(c, b, EXPECT_PATCH, obj_str(vm, "metadata.resourceVersion"),
		    REASON_UPDATE, "error during VM update");
	}
	free(rev);
}

/* an action on the VM or its VMI is still on its way */
static int plan_vmi_pending(struct plan_ctx *c, json_object *vm, json_object *vmi)
{
	const char *vu = obj_uid(vmi);

	return vu == NULL || expect_delete_pending(c->in->exp, vu, c->in->now) ||
	       expect_patch_pending(c->in->exp, vu, ACT_PATCH_VMI, c->in->now) ||
	       expect_delete_pending(c->in->exp, obj_uid(vm), c->in->now);
}

static enum revision_vmi_action plan_vmi_action(
    struct plan_ctx *c, json_object *vm, json_object *vmi)
{
	return revision_vmi_action(
	    vm, vmi, plan_rev(c, revision_label(vm)), plan_rev(c, revision_label(vmi)));
}

/* SPEC 11.4 actions: restart, relabel, or delete the VM */
static void plan_vmi_do(
    struct plan_ctx *c, json_object *vm, json_object *vmi, enum revision_vmi_action act)
{
	json_object *b;
	struct msg_action m = {.op = MSG_OP_DELETE_VMI, .name = obj_name(vmi), .uid = obj_uid(vmi)};
	struct plan_act *a;
	enum expect_kind kind = EXPECT_DELETE;
	const char *rv = NULL;
	char msg[512], fmsg[512];

	if (act == VMI_PATCH_LABELS) {
		m.op = MSG_OP_PATCH_VMI;
		m.patch = revision_vmi_label_patch(vm, vmi);
		kind = EXPECT_PATCH;
		rv = obj_str(vmi, "metadata.resourceVersion");
	} else if (act != VMI_RESTART) {
		m = (struct msg_action){.op = MSG_OP_DELETE_VM,
		    .name = obj_name(vm),
		    .uid = obj_uid(vm),
		    .propagation = "Foreground"};
	}
	snprintf(msg, sizeof(msg), "Successfully updated resource %s/%s", c->ns, obj_name(vm));
	m.event = plan_event("Normal", "SuccessfulDelete", msg);
	snprintf(fmsg, sizeof(fmsg), "Error updating resource %s/%s", c->ns, obj_name(vm));
	m.fail_event = plan_event("Warning", "FailedUpdate", fmsg);
	b = plan_body(c, &m);
	json_object_put(m.patch);
	a = plan_push(c, b, kind, rv, REASON_UPDATE, "error during VMI update");
	if (act == VMI_DELETE_VM)
		a->preserve = (int)c->pol.preserve_opportunistic;
}

/* 1 if the VM's instance counts as unavailable (SPEC 11.6); a restart on its way too */
static int plan_unavailable(struct plan_ctx *c, json_object *vmi)
{
	return revision_vmi_unavailable(vmi) ||
	       expect_delete_pending(c->in->exp, obj_uid(vmi), c->in->now);
}

/* SPEC 11.5: VMs that are not ready are already unavailable: no budget needed */
static void plan_unhealthy_first(struct plan_ctx *c, json_object **vms, size_t n, char *done)
{
	json_object *vmi, *ready;
	enum revision_vmi_action act;
	size_t i;

	for (i = 0; i < n; i++) {
		ready = obj_condition(vms[i], "Ready");
		if (ready != NULL && obj_str(ready, "status") != NULL &&
		    strcmp(obj_str(ready, "status"), "True") == 0)
			continue;
		vmi = plan_get(c, KIND_VMI, obj_name(vms[i]));
		if (vmi == NULL || obj_terminating(vmi))
			continue;
		done[i] = 1;
		if (plan_vmi_pending(c, vms[i], vmi) ||
		    (act = plan_vmi_action(c, vms[i], vmi)) == VMI_NONE)
			continue;
		plan_vmi_do(c, vms[i], vmi, act);
	}
}

/* SPEC 11.4-11.6 on the VMs whose object is current; waits for budget with a timer only
 * while an outdated instance is waiting (Q10) */
static void plan_update_vmis(struct plan_ctx *c, json_object **vms, size_t n)
{
	char *done = xcalloc(n + 1, 1);
	json_object **list = xcalloc(n + 1, sizeof(*list)), *vmi;
	enum revision_vmi_action act;
	long budget = policy_max_unavailable(&c->pol, c->desired);
	size_t i, m = 0;

	plan_unhealthy_first(c, vms, n, done);
	for (i = 0; i < n; i++) {
		if (plan_unavailable(c, plan_get(c, KIND_VMI, obj_name(vms[i]))))
			budget--;
		if (!done[i])
			list[m++] = vms[i];
	}
	m = policy_order(&c->pol.update_sel, list, m, c->in->seed);
	for (i = 0; i < m; i++) {
		vmi = plan_get(c, KIND_VMI, obj_name(list[i]));
		if (vmi == NULL || obj_terminating(vmi) || plan_vmi_pending(c, list[i], vmi) ||
		    (act = plan_vmi_action(c, list[i], vmi)) == VMI_NONE)
			continue;
		if (budget <= 0) {
			plan_requeue(c, PLAN_UPDATE_RECHECK);
			break;
		}
		plan_vmi_do(c, list[i], vmi, act);
		budget--;
	}
	free(list);
	free(done);
}

int plan_update(struct plan_ctx *c)
{
	json_object **old, **cur, *vm;
	size_t nold = 0, ncur = 0, i;

	if (c->pol.update == UPDATE_UNMANAGED)
		return 1;
	old = xcalloc(c->nowned + 1, sizeof(*old));
	cur = xcalloc(c->nowned + 1, sizeof(*cur));
	for (i = 0; i < c->nowned; i++) {
		vm = c->owned[i];
		if (obj_terminating(vm) || obj_uid(vm) == NULL ||
		    !policy_matches(&c->pol.update_sel, vm))
			continue;
		if (revision_vm_outdated(c->pool, vm, plan_rev(c, revision_label(vm))))
			old[nold++] = vm;
		else
			cur[ncur++] = vm;
	}
	if (nold > 0)
		plan_update_vms(c, old, nold);
	if (c->pol.update != UPDATE_OPPORTUNISTIC)
		plan_update_vmis(c, cur, ncur);
	free(old);
	free(cur);
	return nold == 0;
}

/* a revision an owned VM or its VMI names */
static int plan_rev_in_use(struct plan_ctx *c, const char *name)
{
	const char *l;
	size_t i;

	for (i = 0; i < c->nowned; i++) {
		if ((l = revision_label(c->owned[i])) != NULL && strcmp(l, name) == 0)
			return 1;
		l = revision_label(plan_get(c, KIND_VMI, obj_name(c->owned[i])));
		if (l != NULL && strcmp(l, name) == 0)
			return 1;
	}
	return 0;
}

void plan_prune(struct plan_ctx *c)
{
	json_object *rev, *b;
	struct msg_action a;
	const char *name, *uid;
	size_t i;

	for (i = 0; i < c->in->nrevs; i++) {
		rev = c->in->revs[i];
		name = obj_name(rev);
		uid = obj_uid(rev);
		if (name == NULL || uid == NULL || !revision_owned_by(rev, c->uid) ||
		    expect_delete_pending(c->in->exp, uid, c->in->now))
			continue;
		if (!c->deleting && plan_rev_in_use(c, name))
			continue;
		a = (struct msg_action){.op = MSG_OP_DELETE_REV, .name = name, .uid = uid};
		b = plan_body(c, &a);
		plan_push(c, b, EXPECT_DELETE, NULL, c->deleting ? NULL : REASON_PRUNE,
		    "error while pruning vmpool revisions");
	}
}

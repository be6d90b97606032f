/*
 * planctx.h: the state of one planning pass, shared by the files that make up plan_pool():
 * plan.c (the pass, ownership, finalizers, scale-out), planremove.c (scale-in, autohealing,
 * state preservation, terminating VMs) and planupdate.c (revisions, updates, pruning).
 * Everything here is pure: it reads the pass's inputs and appends actions to its output.
 */
#ifndef VMPOOL_PLANCTX_H
#define VMPOOL_PLANCTX_H

#include <json-c/json.h>

#include "planner.h"
#include "policy.h"

#define REASON_SCALE_OUT "FailedScaleOut"
#define REASON_SCALE_IN  "FailedScaleIn"
#define REASON_UPDATE    "FailedUpdate"
#define REASON_PRUNE     "FailedRevisionPruning"
#define REASON_REPLICAS  "InvalidReplicas"
#define REASON_SPEC      "InvalidSpec"

struct plan_ctx {
	const struct plan_in *in;
	struct plan_out *out;
	json_object *pool;
	const char *ns, *name, *uid;
	struct selector *sel;
	struct policy pol;
	int have_pol;
	int deleting;
	json_object **owned; /* the working set: owned, not released */
	size_t nowned;
	int owned_finalized; /* owned VMs in the cache still carrying the finalizer */
	long desired;
	/* the pool's creates (VM names) and deletes (uids) the cache does not show yet */
	struct pmap *pend_create, *pend_delete;
};

/* plan.c: building actions */
struct msg_event plan_event(const char *type, const char *reason, const char *message);
json_object *plan_body(struct plan_ctx *, struct msg_action *);
struct plan_act *plan_push(struct plan_ctx *, json_object *body, enum expect_kind, const char *rv,
    const char *reason, const char *prefix);
/* test path == old; then replace it with new, or remove it when new is empty */
void plan_patch_swap(json_object *patch, const char *path, json_object *old, json_object *new_);
json_object *plan_array(json_object *o, const char *path);
/* ownerReferences minus every reference with this uid */
json_object *plan_refs_without(json_object *refs, const char *uid);
/* removes the pool finalizer from a VM */
void plan_strip_vm(struct plan_ctx *, json_object *vm, const char *reason, const char *prefix);
json_object *plan_unfinalize_patch(json_object *vm);
json_object *plan_leaving_patch(json_object *vm);
void plan_patch_vm(struct plan_ctx *c, json_object *vm, json_object *patch, const char *reason,
    const char *prefix);
/* 1 if a patch with op is still pending for o (or o has no uid) */
int plan_pending(struct plan_ctx *, json_object *o, const char *op);
/* an object of the pool's namespace, or NULL */
json_object *plan_get(struct plan_ctx *, const char *kind, const char *name);
/* the revision of that name if the pool controls it (Q12), else NULL */
json_object *plan_rev(struct plan_ctx *, const char *name);

/* planremove.c */
/* SPEC 9.2: proactive scale-in of diff surplus VMs */
void plan_scale_in(struct plan_ctx *, int diff);
/* SPEC 12: 1 if it removed failing VMs (the rest of the pass waits for them) */
int plan_autoheal(struct plan_ctx *);
/* SPEC 9.3 and 10: an owned VM that is being deleted and still carries the finalizer */
void plan_terminating(struct plan_ctx *, json_object *vm);

/* planupdate.c */
/* 1 if the current revision is in the cache; else asks for it (or waits) and returns 0;
 * reason / prefix: the sync error if creating it fails */
int plan_revision_ready(struct plan_ctx *, const char *reason, const char *prefix);
/* SPEC 11.3-11.6: 1 if no VM object needed an update (stable) */
int plan_update(struct plan_ctx *);
/* SPEC 11.8: revisions no owned VM or VMI uses (all of them when the pool is deleted) */
void plan_prune(struct plan_ctx *);

#endif

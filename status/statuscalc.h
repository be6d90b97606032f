/*
 * statuscalc.h: the pool status as a pure function of the pool, the VMs it owns, the
 * planner's last sync result and the clock (SPEC 1.3, 1.4, 15), and the "write or not"
 * decision. No sockets, no clock of its own.
 */
#ifndef VMPOOL_STATUSCALC_H
#define VMPOOL_STATUSCALC_H

#include <json-c/json.h>
#include <stddef.h>

#define SC_COND_FAILURE     "ReplicaFailure"
#define SC_COND_PAUSED      "ReplicaPaused"
#define SC_COND_READY       "Ready"
#define SC_COND_PROGRESSING "Progressing"
/* another controller acts on the pool (foreign.h): the condition's type (also the reason of
 * the Warning Event posted when it appears or names other managers) and reason */
#define SC_COND_FOREIGN   "ForeignController"
#define SC_REASON_FOREIGN "ForeignManager"
#define SC_POOL_KIND      "VirtualMachinePool"

/* the planner's sync result for a pool; strings borrowed */
struct statuscalc_result {
	int ok;
	const char *reason;
	const char *message;
	const char *progress; /* PROGRESS_* or "" (nothing to do); NULL: not known */
};

/* the VMs a pool owns, as its status counts them */
struct statuscalc_counts {
	long long replicas, ready, terminating;
};

struct statuscalc_in {
	json_object *pool;
	/* the VMs whose owner-reference managers the ForeignController condition reads: every
	 * VM the pool owns, or only those with SC_VM_MANAGERS; others are skipped */
	json_object **vms;
	size_t nvms;
	const struct statuscalc_result *result; /* NULL: no result yet */
	double now;                             /* wall clock, for lastTransitionTime */
	struct statuscalc_counts counts;        /* the owned VMs, statuscalc_count() each */
};

/* 1 if the pool controls vm: controller ref kind VirtualMachinePool + the pool's uid, same ns */
int statuscalc_owns(json_object *pool, json_object *vm);
/*
 * What the status needs of a VM, derived once when vmpool-status stores it (its store's
 * traits function), so that a pool's counts cost no decoding: the VM is the pool's when
 * its controller reference is a VirtualMachinePool's (SC_VM_POOL) with the pool's uid (the
 * store's owner index), in the pool's namespace.
 */
#define SC_VM_POOL        0x1u /* controller reference of kind VirtualMachinePool */
#define SC_VM_READY       0x2u /* condition Ready is "True" */
#define SC_VM_TERMINATING 0x4u /* metadata.deletionTimestamp is set */
#define SC_VM_MANAGERS    0x8u /* managers other than vmpoold on its owner references (foreign.h) */
unsigned statuscalc_vm_traits(json_object *vm);
/* the store_traits_fn of vmpool-status's store: a VM's traits, 0 for other kinds */
unsigned statuscalc_traits(const char *kind, json_object *obj);
/* adds a VM with these traits under the pool's uid to the counts */
void statuscalc_count(struct statuscalc_counts *, unsigned traits);
/* the counts of the VMs of vms that the pool owns, for a caller holding decoded VMs */
void statuscalc_tally(json_object *pool, json_object **vms, size_t n, struct statuscalc_counts *);
/* the new status (new reference; {} when everything is empty) */
json_object *statuscalc_compute(const struct statuscalc_in *);
/* 1 when computed differs from the observed pool.status (absent == {}) */
int statuscalc_differs(json_object *pool, json_object *computed);
/*
 * The body of the status write: a JSON patch (RFC 6902, application/json-patch+json) for the
 * /status subresource, or NULL when computed equals the observed status (no write). It is
 *   [{"op":"test","path":"/metadata/uid","value":UID},
 *    {"op":"add","path":"/status","value":COMPUTED}]
 * The add replaces the whole status, so keys the computed status lacks (zero values, an
 * emptied conditions list) disappear and conditions, an atomic list, is sent whole. No
 * resourceVersion: the write does not conflict with other changes of the pool. The test
 * is the uid precondition: a patch meant for an older pool of the same name is refused
 * (422 Invalid). A merge patch cannot do this: kube-apiserver 1.20 silently ignores
 * metadata.uid in a merge patch of a custom resource's /status. The test is left out when
 * the pool has no uid. New reference.
 */
json_object *statuscalc_patch(json_object *pool, json_object *computed);
/* ReplicaPaused: +1 added, -1 removed, 0 unchanged between two status objects */
int statuscalc_paused_change(json_object *old_status, json_object *new_status);
/* the ReplicaFailure condition of new_status if old_status lacked one (SPEC 15: newly added
 * failures are also reported as a Warning Event), else NULL; borrowed from new_status */
json_object *statuscalc_failure_added(json_object *old_status, json_object *new_status);
/* the ForeignController condition of new_status if old_status lacked it or had another
 * message, else NULL; borrowed from new_status */
json_object *statuscalc_foreign_added(json_object *old_status, json_object *new_status);
/* spec.replicas, nil treated as 1 */
long long statuscalc_desired(json_object *pool);
/* what vmpool-status keeps of a watched object (a mirror_trim_fn): the resource table's
 * status_fields (common/resource.c): of a pool its identity, replicas, selector, paused,
 * status and managers; of a VM its identity, managers and conditions' type and status; no
 * VMIs, revisions, PVCs or DataVolumes */
json_object *statuscalc_trim(const char *kind, json_object *obj, void *arg);

#endif

/*
 * statuscalc.h: the pool status as a pure function of the pool, the VMs it owns, the
 * planner's last sync result and the clock (SPEC 1.3, 1.4, 15), and the "write or not"
 * decision. No sockets, no clock of its own.
 */
#ifndef VMPOOL_STATUSCALC_H
#define VMPOOL_STATUSCALC_H

#include <json-c/json.h>
#include <stddef.h>

#define SC_COND_FAILURE "ReplicaFailure"
#define SC_COND_PAUSED  "ReplicaPaused"
#define SC_POOL_KIND    "VirtualMachinePool"

/* the planner's sync result for a pool; strings borrowed */
struct statuscalc_result {
	int ok;
	const char *reason;
	const char *message;
};

struct statuscalc_in {
	json_object *pool;
	json_object **vms; /* candidates (e.g. every VM of the namespace); only owned ones count */
	size_t nvms;
	const struct statuscalc_result *result; /* NULL: no result yet */
	double now;                             /* wall clock, for lastTransitionTime */
};

/* 1 if the pool controls vm: controller ref kind VirtualMachinePool + the pool's uid, same ns */
int statuscalc_owns(json_object *pool, json_object *vm);
/* the new status (new reference; {} when everything is empty) */
json_object *statuscalc_compute(const struct statuscalc_in *);
/* 1 when computed differs from the observed pool.status (absent == {}) */
int statuscalc_differs(json_object *pool, json_object *computed);
/* ReplicaPaused: +1 added, -1 removed, 0 unchanged between two status objects */
int statuscalc_paused_change(json_object *old_status, json_object *new_status);
/* the ReplicaFailure condition of new_status if old_status lacked one (SPEC 15: newly added
 * failures are also reported as a Warning Event), else NULL; borrowed from new_status */
json_object *statuscalc_failure_added(json_object *old_status, json_object *new_status);
/* spec.replicas, nil treated as 1 */
long long statuscalc_desired(json_object *pool);

#endif

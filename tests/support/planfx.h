/*
 * planfx.h: the planning-pass fixture shared by the plan unit tests: a pool, the VMs and
 * other objects of its namespace, expectations, and helpers to run plan_pool() and read
 * the actions it returns.
 */
#ifndef VMPOOL_PLANFX_H
#define VMPOOL_PLANFX_H

#include <json-c/json.h>
#include <stddef.h>

#include "../../planner/planner.h"

#define UID "pool-uid-1"
#define KEY "ns/p"

struct fx {
	json_object *pool;
	json_object *vms[64];
	size_t nvms;
	struct expect *exp;
	struct plan_in in;
	struct plan_out out;
	struct store *idx; /* built from vms by fx_run(), as planrun's mirror keeps it */
	json_object **owned, **detached;
	size_t lookups; /* name_used calls in the last run */
	/* other objects of the namespace: revisions, VMIs, PVCs, DataVolumes */
	json_object *objs[64];
	const char *kinds[64];
	size_t nobjs;
	json_object *revs[64];
	int no_rev;      /* fx_run() does not add the pool's current revision */
	int removed[64]; /* by VM index in vms: the preservation it was removed with, or 0 */
	double wallnow;
};

#define OWNREF                                                                                     \
	"\"ownerReferences\":[{\"apiVersion\":\"pool.kubevirt.io/v1beta1\",\"kind\":"              \
	"\"VirtualMachinePool\",\"name\":\"p\",\"uid\":\"" UID "\",\"controller\":true}],"
#define FIN  "\"finalizers\":[\"" POOL_FINALIZER "\"],"
#define TERM "\"deletionTimestamp\":\"2024-01-01T00:00:00Z\","

json_object *fx_parse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* replicas "" means absent; meta is extra metadata fields (with a trailing comma) */
json_object *fx_mkpool(
    const char *replicas, const char *meta, const char *selector, const char *tlabels);
json_object *fx_stdpool(const char *replicas);
/* a VM in ns; extra = more metadata fields with a trailing comma */
void fx_addvm(struct fx *, const char *name, const char *extra, const char *labels);
/* an owned VM of the current revision (generation 2) */
void fx_ownvm(struct fx *, const char *name);
void fx_addobj(struct fx *, const char *kind, json_object *o);
int fx_setup(void **state);
int fx_teardown(void **state);
void fx_run(struct fx *, int burst);
size_t fx_count_op(struct fx *, const char *op);
struct plan_act *fx_nth_op(struct fx *, const char *op, size_t nth);
const char *fx_act_name(struct fx *, const char *op, size_t nth);
/* the patch of an action as a compact string, for exact comparison */
const char *fx_patch_str(struct plan_act *);

#endif

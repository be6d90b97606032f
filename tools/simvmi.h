/*
 * simvmi.h: the simulator's VirtualMachineInstances. The pure half builds the VMI of a VM
 * (labels and annotations copied from the VM's template once, at creation, as KubeVirt
 * does: a VMI keeps the revision label it was born with) and says whether a VMI is up.
 * The other half keeps the observed VMIs (fed by a second informer), turns every VMI it sees
 * into phase Running with Ready=True after --ready-delay, and runs the creates and deletes
 * the VM side (simvm.c) asks for, one request per VMI at a time.
 */
#ifndef VMPOOL_SIMVMI_H
#define VMPOOL_SIMVMI_H

#include <event2/event.h>
#include <json-c/json.h>

#include "kube.h"

/* what the VM side needs to know of a VM's VMI */
enum simvmi_state {
	SIMVMI_NONE,     /* no VMI */
	SIMVMI_STARTING, /* exists, not (yet) Running with Ready=True, or terminating */
	SIMVMI_READY,    /* phase Running, Ready=True, not terminating */
};

/* pure: the VMI to POST for vm (same namespace/name, owned by it); caller puts it */
json_object *simvmi_build(json_object *vm);
/* pure: NULL -> SIMVMI_NONE */
enum simvmi_state simvmi_state(json_object *vmi);
/* pure: the merge patch {"status": ...} making a VMI Running and Ready at time now */
json_object *simvmi_status_patch(double now);

/* called when a VMI changed, appeared, vanished, or a request about it completed or may be
 * retried; ns/name are only valid during the call */
typedef void (*simvmi_changed_fn)(const char *ns, const char *name, void *arg);
/* called after each complete (re)list */
typedef void (*simvmi_synced_fn)(void *arg);

struct simvmis;
struct simvmis *simvmis_new(struct event_base *, struct kube *, double ready_delay);
void simvmis_free(struct simvmis *);
void simvmis_set_hooks(struct simvmis *, simvmi_changed_fn, simvmi_synced_fn, void *arg);
/* 1 once the first list completed */
int simvmis_synced(const struct simvmis *);
/* the observed VMI (borrowed until the next event) or NULL */
json_object *simvmis_get(struct simvmis *, const char *ns, const char *name);
/* 1 while a request about this VMI is in flight or a failed one waits for its retry */
int simvmis_busy(struct simvmis *, const char *ns, const char *name);
/* POST vmi (borrowed); 0 queued, -1 busy or not queued */
int simvmis_create(struct simvmis *, json_object *vmi);
/* DELETE the observed VMI ns/name (uid precondition); 0 queued, -1 absent, busy or failed */
int simvmis_delete(struct simvmis *, const char *ns, const char *name);
/* calls fn for every observed VMI */
void simvmis_foreach(struct simvmis *, void (*fn)(json_object *vmi, void *arg), void *arg);

/* the VMI informer's sink (struct informer_sink, common/informer.h), arg = the simvmis */
void simvmis_on_set(const char *kind, json_object *, void *);
void simvmis_on_del(const char *kind, json_object *, void *);
void simvmis_on_synced(const char *kind, void *);

#endif

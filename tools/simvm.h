/*
 * simvm.h: the simulator's VirtualMachine behaviour, standing in for KubeVirt's
 * virt-controller. A VM that should run gets a VMI (simvmi.h), recreated --vmi-restart-delay
 * after it vanishes, and is Ready while that VMI is; one that should not run, or is being
 * deleted, has its VMI deleted and is Stopped; a failing one (name matches --fail, or
 * annotated) has no VMI and crash-loops. Writes happen only when the wanted state differs
 * from the observed one, so a converged simulator is silent.
 */
#ifndef VMPOOL_SIMVM_H
#define VMPOOL_SIMVM_H

#include <regex.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "kube.h"
#include "simvmi.h"

/*
 * Annotations on a VM (metadata.annotations) that steer the simulator:
 *   vmpool-sim.kubevirt.io/fail: "<printableStatus>"
 *       the VM fails to start (as if its name matched --fail): no VMI, status.printableStatus
 *       = the value ("" means CrashLoopBackOff; e.g. "ErrImagePull"), Ready=False with that
 *       reason, status.startFailure set. Ignored while the VM should not run.
 *   vmpool-sim.kubevirt.io/fail-age: "<seconds>"
 *       for a failing VM: Ready=False's lastProbeTime and lastTransitionTime are now - this
 *       (default --fail-age), so autohealing's minFailingToStartDuration is already past.
 *   vmpool-sim.kubevirt.io/fail-count: "<n>"
 *       for a failing VM: status.startFailure.consecutiveFailCount (default --fail-count).
 * Changing fail-age or fail-count on a failing VM rewrites its status (both are echoed in
 * the Ready condition's message, which is compared).
 */
#define SIMVM_FAIL_ANNOTATION       "vmpool-sim.kubevirt.io/fail"
#define SIMVM_FAIL_AGE_ANNOTATION   "vmpool-sim.kubevirt.io/fail-age"
#define SIMVM_FAIL_COUNT_ANNOTATION "vmpool-sim.kubevirt.io/fail-count"

struct simvm_opts {
	double ready_delay;   /* seconds before a new VMI is Running and Ready */
	regex_t *fail_re;     /* NULL: none */
	double fail_age;      /* lastProbeTime of a failing VM's Ready=False: now - this */
	long fail_count;      /* startFailure.consecutiveFailCount */
	double restart_delay; /* seconds before a vanished VMI of a running VM is recreated */
};

/*
 * What the VM asks for (simvm_mode: STOP, RUN, FAIL), refined by its VMI for the status
 * (simvm_want: RUN only once the VMI is ready; STARTING while it exists but is not; NOVMI
 * while a VM that should run has none).
 */
enum simvm_mode { SIMVM_STOP, SIMVM_RUN, SIMVM_FAIL, SIMVM_STARTING, SIMVM_NOVMI };

struct simvm_want {
	enum simvm_mode mode;
	const char *printable; /* status.printableStatus */
	double fail_age;       /* FAIL only */
	long fail_count;       /* FAIL only */
};

/* pure: what a VM asks for (STOP, RUN or FAIL; STOP with "Terminating" while it is being
 * deleted). printable gets the printableStatus. */
enum simvm_mode simvm_mode(json_object *vm, const struct simvm_opts *, const char **printable);
/* pure: the status to want for vm given the state of its VMI */
void simvm_want(json_object *vm, const struct simvm_opts *, enum simvmi_state, struct simvm_want *);
/* pure: 1 if the observed status already is what w wants (timestamps ignored) */
int simvm_status_matches(json_object *vm, const struct simvm_want *w);
/* pure: the merge patch {"status": ...} for w at wall-clock time now; caller puts it */
json_object *simvm_patch(const struct simvm_want *w, double now);

struct simvms;
/* vmis: the VMI side, whose hooks the caller points at simvms_vmi_changed/_synced */
struct simvms *simvms_new(
    struct event_base *, struct kube *, const struct simvm_opts *, struct simvmis *vmis);
void simvms_free(struct simvms *);
/* the VM informer's sink (struct informer_sink, common/informer.h), arg = the simvms */
void simvms_on_set(const char *kind, json_object *, void *);
void simvms_on_del(const char *kind, json_object *, void *);
void simvms_on_synced(const char *kind, void *);
/* the VMI side's hooks (simvmis_set_hooks), arg = the simvms */
void simvms_vmi_changed(const char *ns, const char *name, void *);
void simvms_vmi_synced(void *);

#endif

/*
 * simvm.h: the simulator's VirtualMachine behaviour, standing in for KubeVirt's
 * virt-controller. A VM that should run becomes Ready after a delay; one that should not
 * is Stopped; a failing one (name matches --fail, or annotated) crash-loops. The status is
 * patched only when the wanted one differs from the observed one.
 */
#ifndef VMPOOL_SIMVM_H
#define VMPOOL_SIMVM_H

#include <regex.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "kube.h"

#define SIMVM_FAIL_ANNOTATION "vmpool-sim.kubevirt.io/fail"

struct simvm_opts {
	double ready_delay; /* seconds before a VM that should run is Ready */
	regex_t *fail_re;   /* NULL: none */
	double fail_age;    /* lastProbeTime of a failing VM's Ready=False: now - this */
	long fail_count;    /* startFailure.consecutiveFailCount */
};

enum simvm_mode { SIMVM_STOP, SIMVM_RUN, SIMVM_FAIL };

/* pure: what a VM should look like. printable gets the printableStatus to want. */
enum simvm_mode simvm_mode(json_object *vm, const struct simvm_opts *, const char **printable);
/* pure: 1 if the observed status already is what mode wants (timestamps ignored) */
int simvm_status_matches(
    json_object *vm, enum simvm_mode, const char *printable, const struct simvm_opts *);
/* pure: the merge patch {"status": ...} for mode at wall-clock time now; caller puts it */
json_object *simvm_patch(
    enum simvm_mode, const char *printable, const struct simvm_opts *, double now);

struct simvms;
struct simvms *simvms_new(struct event_base *, struct kube *, const struct simvm_opts *);
void simvms_free(struct simvms *);
/* the informer's callbacks (struct siminf_cb), arg = the simvms */
void simvms_list_begin(void *);
void simvms_upsert(json_object *, void *);
void simvms_remove(json_object *, void *);
void simvms_list_end(void *);

#endif

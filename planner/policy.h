/*
 * policy.h: the pure rules behind issue-3 features, used by plan.c.
 *   policy.c   reads the pool's strategies from its spec (SPEC 1.2, 9.1, 11.3, 11.6, 12, 13),
 *              reporting schema-valid nonsense with a message saying what to fix; orders and
 *              filters VMs by a selection policy (SPEC 9.2 steps 3-4); decides whether a VM
 *              is failing for autohealing (SPEC 12) and when it would start to.
 *   revision.c ControllerRevisions (SPEC 11.1), outdated VMs (11.2), the VM to PUT for one
 *              (11.3), what to do with a VMI (11.4), availability (11.5-11.6), VM indices.
 * Nothing here allocates what it does not return, touches the clock or does I/O.
 */
#ifndef VMPOOL_POLICY_H
#define VMPOOL_POLICY_H

#include <json-c/json.h>
#include <stddef.h>

#define REVISION_LABEL "kubevirt.io/vm-pool-revision-name"

/* ---- policy.c ---- */

enum policy_sort {
	SORT_NONE = 0,   /* keep the given (cache) order */
	SORT_RANDOM,     /* shuffle with the seed given */
	SORT_ASCENDING,  /* lowest index first (unparsable index counts as 0) */
	SORT_DESCENDING, /* highest index first */
	SORT_NEWEST,     /* latest metadata.creationTimestamp first */
	SORT_OLDEST,     /* earliest first */
};

enum policy_preserve { PRESERVE_DISABLED = 0, PRESERVE_OFFLINE, PRESERVE_ONLINE };
enum policy_scalein { SCALEIN_PROACTIVE = 0, SCALEIN_OPPORTUNISTIC, SCALEIN_UNMANAGED };
enum policy_update { UPDATE_PROACTIVE = 0, UPDATE_OPPORTUNISTIC, UPDATE_UNMANAGED };

struct
    policy_nodereq; /* parsed nodeSelectorRequirementMatcher (In NotIn Exists DoesNotExist Gt Lt) */
struct selector;

/* a selectionPolicy: sort order and optional filters */
struct policy_selection {
	enum policy_sort sort;
	/* selectors.labelSelector, matched against the VM's spec.template.metadata.labels;
	 * NULL when absent */
	struct selector *labels;
	/* selectors.nodeSelectorRequirementMatcher, matched against the VM's
	 * spec.template.spec.nodeSelector map (NotIn / DoesNotExist match a missing key);
	 * NULL when absent */
	struct policy_nodereq *nodes;
};

struct policy {
	int paused; /* spec.paused */
	enum policy_scalein scalein;
	struct policy_selection scalein_sel; /* default sort SORT_RANDOM */
	/* statePreservation for VMs the pool removes itself (proactive scale-in, autohealing) */
	enum policy_preserve preserve_proactive;
	/* statePreservation for VMs deleted by someone else (opportunistic.statePreservation;
	 * Disabled unless scaleInStrategy.opportunistic sets it) */
	enum policy_preserve preserve_opportunistic;
	enum policy_update update;
	/* updateStrategy.proactive.selectionPolicy; sort is SORT_NONE unless
	 * updateStrategy.proactive is set (then default SORT_RANDOM) */
	struct policy_selection update_sel;
	int max_unavailable_percent; /* 1: max_unavailable is a percentage */
	long max_unavailable;        /* default 100 percent */
	int autoheal;                /* spec.autohealing present (even {}) */
	long autoheal_threshold;     /* startUpFailureThreshold, default 3 */
	double autoheal_duration;    /* minFailingToStartDuration in seconds, default 300 */
};

/*
 * Reads every strategy of the pool. Absent fields take SPEC's defaults. Returns 0, or -1
 * with err holding one message naming each problem and what to write instead (several
 * problems joined with "; "), e.g.
 *   spec.updateStrategy: only one strategy can be set at a time, found opportunistic and
 *   unmanaged; spec.maxUnavailable: "1O%" is not an integer or a percentage such as "25%"
 * Problems reported: more than one of unmanaged/opportunistic/proactive in updateStrategy
 * or scaleInStrategy; maxUnavailable not an integer >= 1 nor "<1..100>%"; an unknown
 * sortPolicy or statePreservation; an unparsable selectors.labelSelector or
 * nodeSelectorRequirementMatcher (bad operator, Gt/Lt without exactly one integer value,
 * In/NotIn without values); an unparsable minFailingToStartDuration or a
 * startUpFailureThreshold < 1; paused or a strategy of the wrong JSON type.
 * On -1 nothing needs freeing; on 0 call policy_clear().
 */
int policy_parse(json_object *pool, struct policy *, char *err, size_t errlen);
void policy_clear(struct policy *);

/* SPEC 11.6: maxUnavailable against desired replicas: floor(desired * p / 100) for a
 * percentage, the value for an integer; at least 1 */
long policy_max_unavailable(const struct policy *, long desired);

/* 1 if the VM passes the selection's filters (all that are set; none set: 1) */
int policy_matches(const struct policy_selection *, json_object *vm);

/* Sorts vms[0..n) in place by sel->sort (SORT_RANDOM: a Fisher-Yates shuffle driven by
 * seed, the same result for the same seed and input; other sorts are stable, ties broken
 * by name), then compacts the array to the VMs that pass the filters, keeping the order.
 * Returns how many are kept. */
size_t policy_order(
    const struct policy_selection *, json_object **vms, size_t n, unsigned int seed);

/* metav1.Duration text ("5m", "2m0s", "1h30m", "90s", "1.5h", "300ms"): 0 and secs, or -1 */
int policy_duration(const char *s, double *secs);

/*
 * SPEC 12: 1 if the VM is failing at wall-clock time now (seconds since the epoch):
 * status.startFailure.consecutiveFailCount >= threshold, or printableStatus one of
 * CrashLoopBackOff ErrorUnschedulable DataVolumeError ErrorPvcNotFound ErrImagePull
 * ImagePullBackOff with a Ready=False condition whose lastProbeTime is at least duration
 * ago (lastTransitionTime when lastProbeTime is absent or null).
 * 0 otherwise; then *wait (if not NULL) is the seconds until it would become failing if
 * nothing changes (a crash status with a Ready=False condition not old enough yet), or -1
 * when time alone will not make it fail.
 */
int policy_failing(const struct policy *, json_object *vm, double now, double *wait);

/* ---- revision.c ---- */

/* metadata.labels[REVISION_LABEL] of o (may be NULL), or NULL */
const char *revision_label(json_object *o);

/* "<pool>-<metadata.generation>" (generation absent: 0); caller frees */
char *revision_name(json_object *pool);

/* the apps/v1 ControllerRevision to POST for the pool's current generation: name
 * revision_name(), namespace, ownerReferences = [the pool as controller with
 * blockOwnerDeletion], revision = generation, data = a copy of the whole pool spec */
json_object *revision_build(json_object *pool);

/* 1 if rev (may be NULL) is a ControllerRevision controlled by the pool with this uid */
int revision_owned_by(json_object *rev, const char *pool_uid);

/*
 * SPEC 11.2: 1 if the VM is outdated. rev is the revision the VM's revision label names,
 * already checked to belong to the pool (NULL when the label is missing or no such
 * revision is in the cache). Outdated: no labels, no revision label, rev NULL, or
 * rev's data.virtualMachineTemplate not semantically equal to the pool's
 * spec.virtualMachineTemplate.
 */
int revision_vm_outdated(json_object *pool, json_object *vm, json_object *rev);

/*
 * SPEC 11.3: the VirtualMachine to PUT for an outdated VM: vmbuild_vm() for the VM's index
 * and revision name revname (metadata.labels = template labels + revision label,
 * annotations = template annotations, spec freshly indexed), keeping the VM's
 * metadata.name, namespace, uid, resourceVersion, finalizers and ownerReferences. The
 * actuator merges it into the VM it reads at that moment (actuator/vmupdate.h: the VM held
 * here is projected), where the firmware uuid and serial are kept. NULL if the VM's name
 * has no parsable index.
 */
json_object *revision_updated_vm(json_object *pool, json_object *vm, const char *revname);

enum revision_vmi_action {
	VMI_NONE = 0,
	VMI_RESTART,      /* delete the VMI; the VM controller starts a new one */
	VMI_PATCH_LABELS, /* only the revision label differs in what matters */
	VMI_DELETE_VM,    /* dataVolumeTemplates changed: delete the VM (Foreground) */
};

/*
 * SPEC 11.4 for a VM and its VMI. vm_rev / vmi_rev are the pool's revisions named by the
 * VM's and the VMI's metadata.labels[REVISION_LABEL] (NULL when not in the cache).
 */
enum revision_vmi_action revision_vmi_action(
    json_object *vm, json_object *vmi, json_object *vm_rev, json_object *vmi_rev);

/* the JSON patch of VMI_PATCH_LABELS: add /metadata/labels when the VMI has none, else
 * test /metadata/labels equals the old map and replace it with the old map plus
 * REVISION_LABEL = the VM's revision label */
json_object *revision_vmi_label_patch(json_object *vm, json_object *vmi);

/* SPEC 11.6: 1 if a VMI counts as unavailable: NULL, terminating, status.phase not
 * "Running", or no Ready=True condition */
int revision_vmi_unavailable(json_object *vmi);

/* SPEC 6: the index at the end of "<pool>-<index>" (after the last '-'): >= 0, or -1 when
 * the last piece is not a non-negative decimal integer (or a '-' precedes it: "p--1") */
long revision_vm_index(const char *name);

#endif

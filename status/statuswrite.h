/*
 * statuswrite.h: status's private header. The writer keeps per-pool write state, a set of
 * dirty pools recomputed on the next loop turn, and PATCHes /status (a JSON patch with a uid
 * precondition, see statuscalc_patch()) only when the computed status differs from the
 * observed one (one write in flight per pool).
 */
#ifndef VMPOOL_STATUSWRITE_H
#define VMPOOL_STATUSWRITE_H

#include <event2/event.h>
#include <json-c/json.h>

#include "mirror.h"

struct kube;
struct store;
struct k8sev_recorder;

#define STW_RESULT_KIND MIRROR_RESULT_KIND /* kind of the sync results in the results store */
#define STW_PATCH_TYPE  "application/json-patch+json" /* the status write (statuscalc_patch) */

/* a pool's status is written at most once per STW_LINGER seconds while it changes: the
 * counts in between are not something readers act on; a write that brings replicas or
 * readyReplicas to spec.replicas goes at once */
#define STW_LINGER 1.0
/* dirty pools are recomputed at most this often: a scaling pool's VMs change by the hundred
 * a second and a computation costs what the pool holds (a milestone waits no longer) */
#define STW_PACE 0.02

#define STW_M_WRITES "vmpool_status_writes_total"
/* per pool, named as KubeVirt's proposed pool metrics (kubevirt/kubevirt#19147) */
#define STW_M_INFO     "kubevirt_vmpool_info" /* {namespace,name,uid} 1 */
#define STW_M_DESIRED  "kubevirt_vmpool_desired_replicas"
#define STW_M_REPLICAS "kubevirt_vmpool_replicas"
#define STW_M_READY    "kubevirt_vmpool_ready_replicas"
#define STW_M_PAUSED   "kubevirt_vmpool_paused"
#define STW_M_FAILURE  "kubevirt_vmpool_replica_failure"
#define STW_QUEUE      "status" /* the name label of the dirty-pool queue's workqueue_* */

struct stw;
/* objs: the watcher's picture; results: sync results ({metadata, ok, reason, message}).
 * Both borrowed for the writer's lifetime. ready() says whether the picture is complete. */
struct stw *stw_new(struct event_base *, struct kube *, struct k8sev_recorder *, struct store *objs,
    struct store *results, int (*ready)(void *), void *ready_arg);
void stw_free(struct stw *);
void stw_metrics_declare(void);

/* marks a pool for recomputation on the next loop turn */
void stw_dirty(struct stw *, const char *ns, const char *name);
/* every known pool */
void stw_dirty_all(struct stw *);
/* a watcher object changed: marks the pools concerned */
void stw_changed(struct stw *, const char *kind, json_object *old, json_object *new_);
/* how many writes were issued so far (for tests and logs) */
unsigned long stw_writes(const struct stw *);

#endif

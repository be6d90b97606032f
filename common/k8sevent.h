/*
 * k8sevent.h: Kubernetes Events about a pool, as the upstream recorder writes them but under
 * our own component name (so `kubectl get events` tells vmpoold's Events from those of
 * KubeVirt's pool controller, "virtualmachinepool-controller"), with its aggregation of
 * identical events:
 * the same (pool uid, type, reason, message) within 10 minutes PATCHes the existing Event's
 * count and lastTimestamp instead of creating a new one. Used by the actuator and status.
 *
 * The building and aggregation parts are pure (the clock is passed in); k8sev_post() does
 * the API calls through kube.h and never blocks.
 */
#ifndef VMPOOL_K8SEVENT_H
#define VMPOOL_K8SEVENT_H

#include <json-c/json.h>
#include <stdint.h>

#define K8SEV_COMPONENT  "vmpoold"
#define K8SEV_PATIENCE   120.0 /* seconds an Event may wait for the API server */
#define K8SEV_AGG_WINDOW 600.0 /* seconds an identical event is aggregated */
#define K8SEV_AGG_MAX    4096  /* entries kept by the aggregation cache */

struct kube;

/* what an Event is about; all strings borrowed */
struct k8sev_src {
	const char *ns;
	const char *pool; /* involvedObject name */
	const char *uid;  /* involvedObject uid, may be "" */
	const char *type; /* Normal / Warning */
	const char *reason;
	const char *message;
};

/* "<pool>.<16 hex digits>" from the clock in ns, always above *last; caller frees */
char *k8sev_name(const char *pool, double now, uint64_t *last);
/* the whole v1 Event for a POST (new reference) */
json_object *k8sev_build(const struct k8sev_src *, const char *name, double now);

/* the aggregation cache (pure) */
struct k8sev_agg;
struct k8sev_seen {
	const char *name; /* borrowed from the cache until the next call */
	long count;
	double first;
};
struct k8sev_agg *k8sev_agg_new(void);
void k8sev_agg_free(struct k8sev_agg *);
/*
 * Records one occurrence at now. Returns 1 when an identical event was seen within the
 * window (seen->count already incremented: PATCH it), 0 when a new Event must be created
 * (seen->name is the new name, count 1).
 */
int k8sev_agg_observe(
    struct k8sev_agg *, const struct k8sev_src *, double now, struct k8sev_seen *seen);
/* forgets an entry (its Event was not found when patched) */
void k8sev_agg_forget(struct k8sev_agg *, const struct k8sev_src *);
unsigned long k8sev_agg_size(const struct k8sev_agg *);

/* the recorder: aggregation + API calls. kube NULL = log only (dry run). */
struct k8sev_recorder;
struct k8sev_recorder *k8sev_recorder_new(struct kube *);
/* also frees requests still in flight: call it after kube_free() (which drops pending
 * requests without calling them back), never while the client can still answer them */
void k8sev_recorder_free(struct k8sev_recorder *);
/* posts (or aggregates) one event; 0 when queued, -1 on a bad source (logged) */
int k8sev_post(struct k8sev_recorder *, const struct k8sev_src *, double now);
/* events posted or patched successfully so far */
unsigned long k8sev_recorder_count(const struct k8sev_recorder *);

#endif

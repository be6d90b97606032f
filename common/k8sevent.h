/*
 * k8sevent.h: Kubernetes Events about a pool, as client-go's recorder writes them but under
 * our own component name (so `kubectl get events` tells vmpoold's Events from those of
 * KubeVirt's pool controller, "virtualmachinepool-controller"), through client-go's
 * EventCorrelator (tools/record/events_cache.go), with its constants:
 *
 * - aggregation: Events alike but for the message (same pool, type and reason) are folded,
 *   from the 10th distinct message within 10 minutes on, into one Event whose message is
 *   "(combined from similar events): " and the latest message;
 * - dedupe: an occurrence of an Event written before (same key) PATCHes its count,
 *   lastTimestamp and message instead of creating another one;
 * - the spam filter: a token bucket per involved object (burst 25, then one per 5 minutes)
 *   for the writes.
 *
 * Where we write less than client-go (DESIGN.md "Events"): occurrences that arrive while a
 * write of the same Event is queued or in flight go with it (the next write carries the
 * count), an Event is written again at most once per K8SEV_LINGER, and a write the spam
 * filter holds back waits for the next token instead of being lost (its count is kept either
 * way, as in client-go). Event writes go through kube_request_event(): lower priority than
 * any object write, dropped first under pressure. A write dropped under pressure is not
 * tried again on a timer: the recorder hands the client no Event until the client tells it
 * that Events may go (kube_events_notify()), then the waiting writes go in the order they
 * became due, at most K8SEV_OUT_MAX at the client at once. A write is given up after
 * K8SEV_TRIES attempts dropped (client-go's maxTriesPerEvent), and at most
 * K8SEV_PENDING_MAX Events have a write pending: beyond, the oldest one not at the client is
 * given up. Given up, an Event keeps its count (the next occurrence writes it); every
 * loss is counted in vmpool_events_dropped_total{reason=...}.
 *
 * The building and correlating parts are pure (the clock is passed in); k8sev_post() does
 * the API calls through kube.h and never blocks.
 */
#ifndef VMPOOL_K8SEVENT_H
#define VMPOOL_K8SEVENT_H

#include <json-c/json.h>
#include <stdint.h>
#include <sys/queue.h>

#define K8SEV_COMPONENT  "vmpoold"
#define K8SEV_PATIENCE   120.0       /* seconds an Event may wait for the API server */
#define K8SEV_AGG_WINDOW 600.0       /* defaultAggregateIntervalInSeconds */
#define K8SEV_AGG_EVENTS 10          /* defaultAggregateMaxEvents */
#define K8SEV_AGG_MAX    4096        /* maxLruCacheEntries, per cache */
#define K8SEV_SPAM_BURST 25          /* defaultSpamBurst */
#define K8SEV_SPAM_QPS   (1.0 / 300) /* defaultSpamQPS */
#define K8SEV_LINGER     1.0         /* seconds between two writes of one Event */
#define K8SEV_TRIES      12          /* maxTriesPerEvent: attempts dropped, then given up */
/* Events with a write pending: client-go's maxQueuedEvents (its recorder drops what does not
 * fit its queue of 1,000), well under the logger cache's bound, so that the cache, pending
 * writes included, never holds more than K8SEV_AGG_MAX entries (about 1 KB each). It was
 * K8SEV_AGG_MAX - 1: at 1,000 pools scaled out at once the actuator kept 4,095 Events
 * pending, about 3 MB of its peak (issue 9). */
#define K8SEV_PENDING_MAX 1000
#define K8SEV_OUT_MAX     8 /* Event writes at the API client (queued there or in flight) */
#define K8SEV_COMBINED    "(combined from similar events): "
#define K8SEV_M_DROPPED   "vmpool_events_dropped_total"

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

/* ---- the correlator (pure) ---- */

struct k8sev_req;

/* one Event as the correlator knows it (client-go's eventLog); owned by the correlator */
struct k8sev_entry {
	char *key; /* the logger key */
	char *ns, *pool, *uid, *type, *reason;
	char *message; /* what it says now: for a combined Event, the latest message; a single
	                * Event's is the end of its key */
	char *name;
	long count;
	double first, last;
	int combined;
	int exists;  /* the API server has it: a PATCH updates it */
	int dirty;   /* occurrences not yet written */
	int pending; /* a write is pending (k8sev_pend()): never pruned while set */
	int out;     /* the pending write is at the API client: never given up for the bound */
	TAILQ_ENTRY(k8sev_entry) pentry; /* the pending FIFO, oldest first */
	struct k8sev_req *req;           /* the recorder's pending write */
};

struct k8sev_corr;
struct k8sev_corr *k8sev_corr_new(void);
void k8sev_corr_free(struct k8sev_corr *);
/* Records one occurrence at now: aggregation, then the logger (count, lastTimestamp,
 * message; dirty set). The entry is borrowed until the next call. */
struct k8sev_entry *k8sev_correlate(struct k8sev_corr *, const struct k8sev_src *, double now);
/* The spam filter for ent's involved object: 0 and a token taken, or the seconds until the
 * next token (nothing taken). */
double k8sev_spam_take(struct k8sev_corr *, const struct k8sev_entry *, double now);
/* gives back a token of a write that never reached the API server */
void k8sev_spam_refund(struct k8sev_corr *, const struct k8sev_entry *);
/* entries in the logger cache */
unsigned long k8sev_corr_size(const struct k8sev_corr *);
/* ent has a write pending from now on (at the end of the pending FIFO; nothing changes if
 * it had one). Returns the entry that gives its pending write up so that no more than
 * K8SEV_PENDING_MAX are pending: the oldest pending one not out, no longer pending on
 * return; or NULL. */
struct k8sev_entry *k8sev_pend(struct k8sev_corr *, struct k8sev_entry *);
/* ent has no write pending any more */
void k8sev_unpend(struct k8sev_corr *, struct k8sev_entry *);
/* entries with a write pending */
unsigned long k8sev_corr_pending(const struct k8sev_corr *);

/* ---- the recorder: correlator + API calls. kube NULL = log only (dry run). ---- */
struct k8sev_recorder;
struct k8sev_recorder *k8sev_recorder_new(struct kube *);
/* also frees requests still in flight: call it after kube_free() (which drops pending
 * requests without calling them back), never while the client can still answer them */
void k8sev_recorder_free(struct k8sev_recorder *);
/* records one occurrence (written now, later or with another); 0, or -1 on a bad source
 * (logged) */
int k8sev_post(struct k8sev_recorder *, const struct k8sev_src *, double now);
/* Event writes (POST or PATCH) the API server accepted so far */
unsigned long k8sev_recorder_count(const struct k8sev_recorder *);
/* Events with a write pending */
unsigned long k8sev_recorder_pending(const struct k8sev_recorder *);

#endif

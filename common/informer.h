/*
 * informer.h: list + watch of one API resource, keeping the last-known copy of each object
 * in a shared store and reporting every real change (new, changed, vanished) to a sink.
 *
 * One explicit state machine per resource:
 *
 *   IDLE -> LISTING -> WATCHING -> (watch ended normally) WATCHING again from the last RV
 *   LISTING: (a discovered group: GET /apis/<group> first; 404 or no version we speak ->
 *            ABSENT) pages of INF_PAGE_LIMIT (100) items following metadata.continue; a
 *            410 on a continue token restarts the list; a 404 means the API is missing ->
 *            ABSENT (empty and synced, retried every 30 s; a required resource: not
 *            synced, warned, retried with backoff; what it held is kept for
 *            absent_keep seconds, retried with backoff meanwhile); other errors -> BACKOFF
 *   WATCHING: an ERROR 410 event -> EXPIRED (the stream is dropped) -> LISTING;
 *             HTTP 410 / 404 -> LISTING; other errors -> BACKOFF -> WATCHING from last RV;
 *             silent (no event, no bookmark) for the silence timeout, or past
 *             timeoutSeconds + 60 s -> WATCHING again from last RV
 *   BACKOFF: 0.5 s doubling to 30 s, reset after a successful list
 *
 * A completed list is diffed against the kept copies, so the sink sees the same changes a
 * subscriber would have seen had no event been lost.
 *
 * The one informer of the project: the watcher's (each object projected and checked by
 * watcher/admit.h's transform, a shard's filter, the store shared with its publisher) and
 * the simulator's (tools/vmsim.c: whole VMs and VMIs, a store of its own).
 */
#ifndef VMPOOL_INFORMER_H
#define VMPOOL_INFORMER_H

#include <event2/event.h>
#include <json-c/json.h>

struct kube;
struct store;

enum informer_state {
	INF_IDLE,
	INF_LISTING,
	INF_WATCHING,
	INF_EXPIRED,
	INF_BACKOFF,
	INF_ABSENT,
	INF_STOPPED,
};

/* a watched resource: the kind used on the links, whose group, version (discovered with
 * GET /apis/<group> before every list when the table has none) and plural come from the
 * resource table (common/resource.h). */
struct informer_res {
	const char *kind; /* KIND_POOL, ... */
	/* optional: 0 means "do not keep/publish this object" (applied before the projection) */
	int (*keep)(json_object *obj);
	/* a 404 leaves the informer not synced (a warning, retried with backoff) rather than
	 * empty and synced */
	int required;
	/* optional, like client-go's transform functions: what is kept of obj (borrowed), a new
	 * reference, or NULL to drop it (the transform logs why). NULL: obj is kept whole. The
	 * watcher's projects it on the resource table and checks its nesting (watcher/admit.h). */
	json_object *(*transform)(const char *kind, json_object *obj);
	/* how long a 404 keeps what was listed before (seconds since the first 404 after the
	 * last list that answered; INFORMER_KEEP_ALWAYS: for as long as it lasts): it is not
	 * reported gone, the next list that answers says what is. A restarted API server answers
	 * 404 for custom resources until it has loaded their CRDs (up to 1.22: Kubernetes PR 104748);
	 * taking that as "every VM gone" would have the planner create them again. 0: a 404
	 * empties the informer at once. */
	double absent_keep;
};
#define INFORMER_KEEP_ALWAYS (-1.0)

struct informer_sink {
	/* obj (borrowed) is new or its resourceVersion changed; it is in the store */
	void (*set)(const char *kind, json_object *obj, void *arg);
	/* obj (borrowed) vanished; it was removed from the store */
	void (*del)(const char *kind, json_object *obj, void *arg);
	/* a list completed, or the API went missing: informer_synced() may have changed */
	void (*synced)(const char *kind, void *arg);
};

struct informer;

/* ns NULL: all namespaces. The store is shared; the informer owns its kind in it. */
struct informer *informer_new(struct event_base *, struct kube *, struct store *,
    const struct informer_res *, const char *ns, const struct informer_sink *, void *arg);
void informer_start(struct informer *);
/* cancels the watch and timers; later callbacks of requests in flight are ignored */
void informer_stop(struct informer *);
void informer_free(struct informer *);

/* listed (an optional API may be missing; a required one is present) */
int informer_synced(const struct informer *);
/* secs > 0: a watch silent (no event, no bookmark) this long is restarted */
void informer_set_silence(struct informer *, double secs);
/* lists and watches only objects with these labels (a label selector string; the API
 * server checks it): the pools of one shard, --pool-selector. Before informer_start(). */
void informer_set_selector(struct informer *, const char *sel);
enum informer_state informer_state(const struct informer *);

/*
 * A shard's filter, tested after the resource's keep() where keep() is, with the same
 * effect: an object it rejects is not kept, and a kept one it rejects later (a watch event,
 * a list) is removed and reported. It may depend on other kinds in the store (the shard's
 * pools); when its answer changes, informer_relist() brings in what it rejected before
 * and informer_refilter() removes what it rejects now.
 */
void informer_set_filter(
    struct informer *, int (*fn)(const char *kind, json_object *obj, void *arg), void *arg);
/* lists again from scratch (a list already in progress is followed by another); coalesced:
 * asked many times while listing, it lists once more */
void informer_relist(struct informer *, const char *why);
/* 1 while a list asked for by informer_relist() has not completed */
int informer_relisting(const struct informer *);
/* removes (and reports) every kept object the filter rejects now */
void informer_refilter(struct informer *);
/* obj (borrowed): the object the API answered one of our own creates with. Kept and
 * reported as the watch would if the watch is running and has not reached obj's
 * resourceVersion, nothing of its name is kept and the resource keeps it; the watch's event
 * for that version then changes nothing. Returns what became of it, the result label of
 * <prefix>_written_total: "kept", "watched" (the watch is there already), "known" (a copy
 * of that name is kept), "not_kept" (keep(), the filter or the transform refused it),
 * "not_watching" (listing, or between watches), "unordered" (a resourceVersion that is not
 * a number) */
const char *informer_written(struct informer *, json_object *obj);
const char *informer_state_name(enum informer_state);

/* keep() for controller revisions: only those owned by a VirtualMachinePool */
int informer_keep_pool_owned(json_object *obj);
/* keep() for PVCs and DataVolumes: only those whose controller is a VirtualMachine */
int informer_keep_vm_controlled(json_object *obj);

/* declares the families this module updates, <prefix>_objects, _events_total,
 * _relists_total, _silent_watches_total and _written_total, each by kind (the watcher:
 * "vmpool_watcher"); before the first informer_new() */
void informer_metrics_declare(const char *prefix);

#endif

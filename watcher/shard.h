/*
 * shard.h: what a shard's watcher keeps (--pool-selector). The API server sends only the
 * shard's pools; of every other kind the watcher keeps and publishes only what those pools
 * own: their VMs (controlled by the pool, or foreign ones named like the pool's, which hold
 * an index), the VMIs, PVCs and DataVolumes of such VMs, the pools' revisions.
 *
 * A pool joining the shard (relabelled in), or whose claim (SHARD_CLAIM) changes, is held
 * from subscribers until the kinds it owns were listed again (one coalesced relist for any
 * number of pools), so a subscriber never sees it without what it owns, nor a new claim
 * with a picture older than the claim. A pool leaving it takes what it owns out
 * of the picture, reported as deletions.
 */
#ifndef VMPOOL_SHARD_H
#define VMPOOL_SHARD_H

#include <event2/event.h>
#include <json-c/json.h>
#include <stddef.h>

struct informer;
struct store;
struct shard;

typedef void (*shard_pub_fn)(const char *kind, json_object *obj, void *arg);

/* inf[0..n-1]: the watcher's informers, the pools' among them; publish() sends a held pool
 * once it joined */
struct shard *shard_new(struct event_base *, struct store *, struct informer *const *inf,
    const char *const *kinds, size_t n, shard_pub_fn publish, void *arg);
void shard_free(struct shard *);
/* the filter of every informer but the pools' (informer_set_filter) */
int shard_filter(const char *kind, json_object *obj, void *arg);
/* starts the pools' informer; the others start once it has listed */
void shard_start(struct shard *);

/* the watcher's sink calls these first: 1 means "not for subscribers (yet)" */
int shard_on_set(struct shard *, const char *kind, json_object *obj);
int shard_on_del(struct shard *, const char *kind, json_object *obj);
void shard_on_synced(struct shard *);
/* what a snapshot sends for the pool ns/name (borrowed): the copy subscribers were last
 * sent (older than the stored one while it is held), or NULL (not yet seen: left out) */
json_object *shard_published(struct shard *, const char *ns, const char *name);

#endif

/*
 * publish.h: what the watcher sends on watcher.sock. A subscriber gets SYNC_BEGIN, the
 * store's objects kind by kind in store order (OBJ_SET), SYNC_END, then the changes
 * (OBJ_SET, OBJ_DELETE). The snapshot is a paced stream (link.h, pub_new_paced): a
 * subscriber holds at most PUB_SNAP_HIGH plus one object of it queued, resumed from a
 * cursor as its output drains. Changes made meanwhile reach it so that its mirror equals
 * the store at SYNC_END: a change to an object the cursor passed goes out at once, one it
 * has not reached is left for the cursor (which sends the object as it is then, or
 * nothing once it is gone), a deletion goes out at once (for an object not reached yet
 * it removes a copy from an earlier picture, which the sweep at SYNC_END would remove
 * anyway).
 */
#ifndef VMPOOL_PUBLISH_H
#define VMPOOL_PUBLISH_H

#include <event2/event.h>
#include <json-c/json.h>
#include <stddef.h>

struct link_spec;
struct publish;
struct shard;
struct store;

/* kinds[0..n-1] in the order snapshots send them (borrowed, like the store) */
struct publish *publish_new(struct event_base *, const char *path, const struct link_spec *,
    struct store *, const char *const *kinds, size_t n);
void publish_free(struct publish *);
/* with a shard, its pools go in snapshots as the shard published them (shard.h) */
void publish_set_shard(struct publish *, struct shard *);
/* subscribers waiting for the first snapshot get it now */
void publish_ready(struct publish *);
/* obj (borrowed) was stored or changed: every subscriber gets the stored bytes when the
 * store holds obj (a shard's pool may go out as an older copy), else obj packed once */
void publish_set(struct publish *, const char *kind, json_object *obj);
/* obj (borrowed) is no longer in the store */
void publish_del(struct publish *, const char *kind, json_object *obj);
int publish_subscribers(const struct publish *);
/* vmpool_watcher_subscribers: declared once, set after each snapshot and by publish_gauge */
void publish_metrics_declare(void);
void publish_gauge(struct publish *);
/* the most bytes queued for one subscriber now */
size_t publish_queued(const struct publish *);

#endif

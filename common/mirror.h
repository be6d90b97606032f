/*
 * mirror.h: a subscriber's picture of the watcher's objects. Connects to watcher.sock (or
 * is fed frames by hand, for replays), applies SYNC_BEGIN / OBJ_SET / OBJ_DELETE / SYNC_END
 * to a store, and reports each real change. At SYNC_END every object that was not in the
 * new snapshot is removed (reported as a change to NULL), so a restarted watcher replaces
 * the picture wholesale. The store is the compact store (store.h): its views are released
 * after each applied frame, so a reader between frames releases what it asked for.
 */
#ifndef VMPOOL_MIRROR_H
#define VMPOOL_MIRROR_H

#include <event2/event.h>
#include <json-c/json.h>

#include "store.h"

struct mirror;
struct mirror_cb {
	/* old and new are borrowed (either may be NULL), valid during the callback only (the
	 * store's views end after each frame: take a reference to keep one); not called when
	 * only resourceVersion-identical copies are re-sent */
	void (*changed)(const char *kind, json_object *old, json_object *new_, void *arg);
	/* the first (or a new) snapshot is complete */
	void (*synced)(void *arg);
	/* the link to the watcher dropped; the picture is kept until the next snapshot */
	void (*lost)(void *arg);
};

/* sock_path NULL: no connection, frames come from mirror_apply() */
struct mirror *mirror_new(struct event_base *, const char *sock_path, size_t max_frame,
    const struct mirror_cb *, void *arg);
void mirror_free(struct mirror *);
struct store *mirror_store(struct mirror *);
int mirror_synced(const struct mirror *);
/*
 * Optional: what this subscriber keeps of each object. trim(kind, obj) returns the value to
 * store (a new reference: a trimmed copy, or json_object_get(obj) to keep it whole) or NULL
 * to keep no objects of that kind. A trimmed copy must keep metadata.name, namespace, uid
 * and resourceVersion. changed() then sees the trimmed copies. Set it before frames arrive.
 */
typedef json_object *(*mirror_trim_fn)(const char *kind, json_object *obj, void *arg);
void mirror_set_trim(struct mirror *, mirror_trim_fn, void *arg);

/* apply one watcher frame; returns -1 (logged) for a type or body it cannot use */
int mirror_apply(struct mirror *, int type, json_object *body);

#endif

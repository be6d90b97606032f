/*
 * mirror.h: the one snapshot subscriber: a picture of what a publisher holds. Two streams
 * (struct mirror_proto) exist: the watcher's objects (SYNC_BEGIN / OBJ_SET / OBJ_DELETE /
 * SYNC_END, used by the planner and vmpool-status) and the planner's pool results
 * (PSYNC_BEGIN / POOL_RESULT / POOL_FORGET / PSYNC_END, used by vmpool-status). A mirror
 * connects to the stream's socket (or is fed frames by hand, for replays), applies the
 * frames to a store, and reports each real change. At the end frame every object that was
 * not in the new snapshot is removed (reported as a change to NULL), so a restarted
 * publisher replaces the picture wholesale. The store is the compact store (store.h): its
 * views are released after each applied frame, so a reader between frames releases what
 * it asked for.
 */
#ifndef VMPOOL_MIRROR_H
#define VMPOOL_MIRROR_H

#include <event2/event.h>
#include <json-c/json.h>

#include "store.h"

/* the kind under which the planner's pool results are stored: objects {metadata{namespace,
 * name, uid}, ok, reason, message[, progress]} */
#define MIRROR_RESULT_KIND "result"

/* a set frame read: kind (borrowed from the body) and the object to store (a new reference) */
struct mirror_set {
	const char *kind;
	json_object *obj;
};
/* a delete frame read (borrowed from the body); uid NULL: any incarnation */
struct mirror_del {
	const char *kind, *ns, *name, *uid;
};
/* a snapshot stream: its link, its four frame types, its kinds, how a set and a delete read */
struct mirror_proto {
	const char *link;  /* LINK_WATCHER, LINK_PLANNER */
	const int *accept; /* the four types, 0-terminated */
	int begin, end, set, del;
	const char *const *kinds; /* NULL-terminated */
	int (*unpack_set)(json_object *, struct mirror_set *, char *err, size_t errlen);
	int (*unpack_del)(json_object *, struct mirror_del *, char *err, size_t errlen);
};
extern const struct mirror_proto mirror_watcher; /* the watcher's objects */
extern const struct mirror_proto mirror_results; /* the planner's results, MIRROR_RESULT_KIND */

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

/* sock_path NULL: no connection, frames come from mirror_apply(); mirror_new is
 * mirror_new_proto with &mirror_watcher */
struct mirror *mirror_new(struct event_base *, const char *sock_path, size_t max_frame,
    const struct mirror_cb *, void *arg);
struct mirror *mirror_new_proto(struct event_base *, const struct mirror_proto *,
    const char *sock_path, size_t max_frame, const struct mirror_cb *, void *arg);
void mirror_free(struct mirror *);
struct store *mirror_store(struct mirror *);
int mirror_synced(const struct mirror *);
/* 1 while changed() reports an object the new snapshot lacked (at the end frame), 0 for a
 * delete frame and everything else */
int mirror_sweeping(const struct mirror *);
/*
 * Optional: what this subscriber keeps of each object. trim(kind, obj) returns the value to
 * store (a new reference: a trimmed copy, or json_object_get(obj) to keep it whole) or NULL
 * to keep no objects of that kind. A trimmed copy must keep metadata.name, namespace, uid
 * and resourceVersion. changed() then sees the trimmed copies. Set it before frames arrive.
 */
typedef json_object *(*mirror_trim_fn)(const char *kind, json_object *obj, void *arg);
void mirror_set_trim(struct mirror *, mirror_trim_fn, void *arg);

/* apply one frame of the stream; returns -1 (logged) for a type or body it cannot use */
int mirror_apply(struct mirror *, int type, json_object *body);

#endif

/*
 * admit.h: what the watcher lets into the pipeline. An object from the API is passed on only
 * if it nests at most CODEC_OBJ_MAX_DEPTH deep (the pipeline's one nesting limit, codec.h):
 * a deeper one could not cross a link. A pool over the limit becomes a stub marked
 * OBJ_INVALID (proto.h), so it is reported on and never mistaken for a pool without a spec;
 * any other object is dropped. Either way one log line names it.
 */
#ifndef VMPOOL_ADMIT_H
#define VMPOOL_ADMIT_H

#include <json-c/json.h>

/* the object to keep: obj itself (a new reference), a new stub for a pool, or NULL to drop */
json_object *admit_object(const char *kind, json_object *obj);
/* obj (borrowed) did not fit its projection (why: the field and the problem): a pool that
 * still has a name and uid becomes a stub marked OBJ_INVALID with why in its message (a new
 * reference), anything else is dropped (NULL). Either way one log line names it. */
json_object *admit_invalid(const char *kind, json_object *obj, const char *why);
/* the informer's transform (informer.h) for every kind the watcher keeps: obj (borrowed)
 * projected on its resource (resource.h), then admitted (admit_object), or admit_invalid()
 * when it does not fit the projection */
json_object *admit_project(const char *kind, json_object *obj);
/* declares vmpool_watcher_rejected_total */
void admit_metrics_declare(void);

#endif

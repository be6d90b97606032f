/*
 * admit.c: the nesting check where objects enter the pipeline and what becomes of an object
 * that does not fit its projection (see admit.h). Cheap on any input: codec_too_deep()
 * looks no deeper than the limit.
 */
#include <stdio.h>
#include <string.h>

#include "admit.h"
#include "codec.h"
#include "log.h"
#include "metrics.h"
#include "obj.h"
#include "proto.h"
#include "resource.h"

#define M_REJECTED "vmpool_watcher_rejected_total"

void admit_metrics_declare(void)
{
	metrics_declare(M_REJECTED, "counter",
	    "Objects nested deeper than the pipeline's limit or not fitting their projection, by "
	    "kind and outcome (stub, dropped).");
}

static void admit_count(const char *kind, const char *outcome)
{
	char labels[96];

	snprintf(labels, sizeof(labels), "kind=\"%s\",outcome=\"%s\"", kind, outcome);
	metrics_add(M_REJECTED, labels, 1);
}

/* to[key] = a copy of from[key] if present and at most max deep */
static void admit_copy(json_object *to, json_object *from, const char *key, int max)
{
	json_object *v;

	if (json_object_object_get_ex(from, key, &v) && !codec_too_deep(v, max))
		json_object_object_add(to, key, obj_copy(v));
}

/* metadata (what fits), spec.{replicas,selector,paused}, status (if it fits), the marker
 * with msg */
static json_object *admit_stub(json_object *pool, const char *msg)
{
	json_object *stub = json_object_new_object(), *meta, *spec, *mark;
	json_object *from = obj_path(pool, "metadata"), *fspec = obj_path(pool, "spec");

	admit_copy(stub, pool, "apiVersion", 0);
	admit_copy(stub, pool, "kind", 0);
	meta = json_object_new_object();
	if (from != NULL && json_object_is_type(from, json_type_object)) {
		json_object_object_foreach(from, key, val)
		{
			if (!codec_too_deep(val, CODEC_OBJ_MAX_DEPTH - 1))
				json_object_object_add(meta, key, obj_copy(val));
		}
	}
	json_object_object_add(stub, "metadata", meta);
	if (fspec != NULL && json_object_is_type(fspec, json_type_object)) {
		spec = json_object_new_object();
		admit_copy(spec, fspec, "replicas", 0);
		admit_copy(spec, fspec, "selector", CODEC_OBJ_MAX_DEPTH - 1);
		admit_copy(spec, fspec, "paused", 0);
		json_object_object_add(stub, "spec", spec);
	}
	admit_copy(stub, pool, "status", CODEC_OBJ_MAX_DEPTH - 1);
	mark = json_object_new_object();
	json_object_object_add(mark, "reason", json_object_new_string(REASON_INVALID_OBJECT));
	json_object_object_add(mark, "message", json_object_new_string(msg));
	json_object_object_add(stub, OBJ_INVALID, mark);
	return stub;
}

json_object *admit_object(const char *kind, json_object *obj)
{
	char key[512], msg[160];

	if (!codec_too_deep(obj, CODEC_OBJ_MAX_DEPTH))
		return json_object_get(obj);
	obj_key(obj, key, sizeof(key));
	if (strcmp(kind, KIND_POOL) == 0) {
		log_warns("Pool nests deeper than the limit: published as invalid, its VMs are "
		          "not touched",
		    LOG_POOL(key), LOG_INT("maxDepth", CODEC_OBJ_MAX_DEPTH),
		    LOG_STR("reason", REASON_INVALID_OBJECT));
		admit_count(kind, "stub");
		snprintf(msg, sizeof(msg),
		    "the object nests deeper than %d levels, the controller's limit; not "
		    "reconciled",
		    CODEC_OBJ_MAX_DEPTH);
		return admit_stub(obj, msg);
	}
	log_warns("Object nests deeper than the limit: dropped", LOG_STR("kind", kind),
	    LOG_REF("object", key), LOG_INT("maxDepth", CODEC_OBJ_MAX_DEPTH));
	admit_count(kind, "dropped");
	return NULL;
}

json_object *admit_invalid(const char *kind, json_object *obj, const char *why)
{
	const char *name = obj_str(obj, "metadata.name"), *uid = obj_str(obj, "metadata.uid");
	char key[512], msg[400];

	obj_key(obj, key, sizeof(key));
	if (strcmp(kind, KIND_POOL) == 0 && name != NULL && *name != '\0' && uid != NULL &&
	    *uid != '\0') {
		log_warns("Pool has a field the controller cannot read: published as invalid, its "
		          "VMs are not touched",
		    LOG_POOL(key), LOG_STR("problem", why),
		    LOG_STR("reason", REASON_INVALID_OBJECT));
		admit_count(kind, "stub");
		snprintf(msg, sizeof(msg), "%s; not reconciled", why);
		return admit_stub(obj, msg);
	}
	log_warns("Object has a field the controller cannot read: dropped", LOG_STR("kind", kind),
	    LOG_REF("object", key), LOG_STR("problem", why));
	admit_count(kind, "dropped");
	return NULL;
}

json_object *admit_project(const char *kind, json_object *obj)
{
	json_object *proj, *out;
	char err[256];

	if ((proj = resource_project(resource_get(kind), obj, err, sizeof(err))) == NULL)
		out = admit_invalid(kind, obj, err);
	else
		out = admit_object(kind, proj);
	json_object_put(proj);
	return out;
}

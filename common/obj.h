/*
 * obj.h: reading Kubernetes objects held as json-c values. Paths are dotted ("metadata.name")
 * and never allocate. Pure helpers shared by every stage.
 */
#ifndef VMPOOL_OBJ_H
#define VMPOOL_OBJ_H

#include <json-c/json.h>
#include <stddef.h>

json_object *obj_path(json_object *, const char *dotted);       /* NULL if absent */
const char *obj_str(json_object *, const char *dotted);         /* NULL if absent or not string */
int obj_int(json_object *, const char *dotted, long long *out); /* 0 ok, -1 absent/not int */
int obj_bool(json_object *, const char *dotted);                /* 1 only if present and true */

const char *obj_name(json_object *);
const char *obj_namespace(json_object *); /* "" for cluster-scoped */
const char *obj_uid(json_object *);
int obj_terminating(json_object *); /* metadata.deletionTimestamp set */
/* "<ns>/<name>" into out; returns out */
char *obj_key(json_object *, char *out, size_t outlen);
/* the controller owner reference (controller: true), or NULL */
json_object *obj_controller_ref(json_object *);
/* 1 if the controller ref has this kind and uid */
int obj_controlled_by(json_object *, const char *kind, const char *uid);
int obj_has_finalizer(json_object *, const char *finalizer);
/* condition with this type in a conditions array (NULL/non-array: none), or NULL */
json_object *obj_find_condition(json_object *conditions, const char *type);
/* condition with this type in status.conditions, or NULL */
json_object *obj_condition(json_object *, const char *type);

/* compact JSON text as the API expects it (no "\/" escapes: kube-apiserver's JSON patch
 * code does not unescape paths). Owned by o, valid until o changes or is freed. */
const char *obj_json(json_object *o);

/* parent[field] as an object: the one there, or a new one added (replacing a non-object) */
json_object *obj_ensure(json_object *parent, const char *field);
/* [one controller owner reference to owner] with blockOwnerDeletion, as controllers write it */
json_object *obj_owner_refs(const char *api_version, const char *kind, json_object *owner);
/* a pool's "pool.kubevirt.io/<version>" as the watcher read it (the version the server
 * serves), or OBJ_POOL_API_DEFAULT when it has none that looks like one */
#define OBJ_POOL_API_DEFAULT "pool.kubevirt.io/v1beta1"
const char *obj_pool_api_version(json_object *pool);
/* 1 if s is "pool.kubevirt.io/<lowercase letters and digits>" */
int obj_pool_api_valid(const char *s);
/* deep copy */
json_object *obj_copy(json_object *);
/* metadata.annotations[key] when it is a string, else NULL (keys hold dots: no path) */
const char *obj_annotation(json_object *, const char *key);
/* one RFC 6902 operation {op, path[, value]} taking value (may be NULL); new reference */
json_object *obj_patch_op(const char *op, const char *path, json_object *value);
/* semantic equality of two JSON values (map order ignored) */
int obj_equal(json_object *, json_object *);

#endif

/*
 * resource.h: the one table of the API resources vmpoold reads and writes. For each kind
 * (proto.h KIND_*): its group, version (or the versions to discover, preferred first: the
 * pools), plural, the API path of a collection or an object, and one projection: the fields
 * some stage reads. The watcher projects every object as it is decoded, before it is stored
 * or published (client-go's informer transform functions are the model), so nothing
 * downstream holds what nobody reads. Adding a field a stage reads is one line here.
 *
 * A projection is a list of dotted paths, each with the type the readers expect:
 *   "metadata.name"                       one member, copied whole
 *   "spec.template.spec.volumes[].dataVolume.name"
 *                                         "[]" descends into every item of an array (the
 *                                         items are kept, in order, with only these members)
 *   "status.conditions[type=Ready].status"
 *                                         only the items whose member type is the string
 *                                         "Ready" (no dot in a filter)
 * A value of another type than listed makes the whole object unusable (the watcher drops
 * it); absent and null members are simply left out.
 */
#ifndef VMPOOL_RESOURCE_H
#define VMPOOL_RESOURCE_H

#include <json-c/json.h>
#include <stddef.h>

enum resource_type {
	RT_ANY,    /* kept whole, whatever it is */
	RT_STR,    /* a string */
	RT_INT,    /* an integer */
	RT_BOOL,   /* true or false */
	RT_OBJ,    /* a map, kept whole */
	RT_STRMAP, /* a map of strings (labels, annotations, nodeSelector) */
	RT_STRARR, /* an array of strings (finalizers) */
};

struct resource_field {
	const char *path;
	enum resource_type type;
};

struct resource {
	const char *kind;     /* KIND_VM, ... */
	const char *api_kind; /* "VirtualMachine" */
	const char *group;    /* "" for the core group */
	/* the version, or NULL: discovered at run time (GET /apis/<group>), the first of
	 * versions the server serves */
	const char *version;
	const char *const *versions;
	const char *plural;
	/* what is kept besides apiVersion, kind and the identity (name, namespace, uid,
	 * resourceVersion, labels, ownerReferences, deletionTimestamp); NULL-terminated */
	const struct resource_field *fields;
	/* nothing but metadata is kept: a change elsewhere (only resourceVersion moves) is not
	 * worth telling anyone (PVCs and DataVolumes) */
	int meta_only;
	/* what vmpool-status keeps of the watcher's copy, a subset of fields and the identity
	 * (NULL-terminated; name and uid among them); NULL: it keeps nothing of this kind */
	const struct resource_field *status_fields;
};

/* the entry for a kind, or NULL */
const struct resource *resource_get(const char *kind);
/* the version an object's path uses: res->version, or the discovered one (may be NULL:
 * the preferred one then) */
const char *resource_version(const struct resource *, const char *discovered);
/* "/api/v1" or "/apis/<group>/<version>" + "[/namespaces/<ns>]/<plural>[/<name>]", ns and
 * name escaped; ns NULL: all namespaces, name NULL: the collection. Owned by the caller. */
char *resource_path(const struct resource *, const char *version, const char *ns, const char *name);

/*
 * The projection of obj (borrowed): a new object with only the listed fields, or NULL with
 * err filled (which field, what was wrong) when a listed field has another type or the
 * identity is missing (metadata.name or metadata.uid absent or empty).
 */
json_object *resource_project(const struct resource *, json_object *obj, char *err, size_t errlen);

/* the same projection on status_fields: what vmpool-status keeps (NULL with err filled when
 * it does not fit, or the kind has no status_fields) */
json_object *resource_project_status(
    const struct resource *, json_object *obj, char *err, size_t errlen);

#endif

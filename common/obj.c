/*
 * obj.c: reading Kubernetes objects held as json-c values. Lookups borrow: nothing returned
 * here is owned by the caller except obj_copy()'s result.
 */
#include <string.h>
#include <stdio.h>

#include "log.h"
#include "obj.h"

#define OBJ_SEGMENT_MAX 256

/* One step of a dotted path: a key in an object, or a decimal index into an array. */
static json_object *obj_step(json_object *o, const char *seg)
{
	json_object *v = NULL;
	char *end;
	unsigned long idx;

	if (json_object_is_type(o, json_type_object)) {
		if (!json_object_object_get_ex(o, seg, &v))
			return NULL;
		return v;
	}
	if (json_object_is_type(o, json_type_array) && seg[0] >= '0' && seg[0] <= '9') {
		idx = strtoul(seg, &end, 10);
		if (*end != '\0' || idx >= json_object_array_length(o))
			return NULL;
		return json_object_array_get_idx(o, idx);
	}
	return NULL;
}

json_object *obj_path(json_object *o, const char *dotted)
{
	char seg[OBJ_SEGMENT_MAX];
	const char *p = dotted, *dot;
	size_t n;

	if (dotted == NULL)
		return NULL;
	while (o != NULL) {
		dot = strchr(p, '.');
		n = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if (n >= sizeof seg)
			return NULL;
		memcpy(seg, p, n);
		seg[n] = '\0';
		o = obj_step(o, seg);
		if (dot == NULL)
			return o;
		p = dot + 1;
	}
	return NULL;
}

const char *obj_str(json_object *o, const char *dotted)
{
	json_object *v = obj_path(o, dotted);

	if (!json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int obj_int(json_object *o, const char *dotted, long long *out)
{
	json_object *v = obj_path(o, dotted);

	if (!json_object_is_type(v, json_type_int))
		return -1;
	*out = (long long)json_object_get_int64(v);
	return 0;
}

int obj_bool(json_object *o, const char *dotted)
{
	json_object *v = obj_path(o, dotted);

	return json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

const char *obj_name(json_object *o)
{
	return obj_str(o, "metadata.name");
}

const char *obj_namespace(json_object *o)
{
	const char *ns = obj_str(o, "metadata.namespace");

	return ns != NULL ? ns : "";
}

const char *obj_uid(json_object *o)
{
	return obj_str(o, "metadata.uid");
}

int obj_terminating(json_object *o)
{
	return obj_path(o, "metadata.deletionTimestamp") != NULL;
}

/* "ns/name", or just "name" for a cluster-scoped object, as client-go keys them */
char *obj_key(json_object *o, char *out, size_t outlen)
{
	const char *ns = obj_namespace(o), *name = obj_name(o);

	if (name == NULL)
		name = "";
	if (*ns == '\0')
		snprintf(out, outlen, "%s", name);
	else
		snprintf(out, outlen, "%s/%s", ns, name);
	return out;
}

json_object *obj_controller_ref(json_object *o)
{
	json_object *refs = obj_path(o, "metadata.ownerReferences"), *ref;
	size_t i, n;

	if (!json_object_is_type(refs, json_type_array))
		return NULL;
	n = json_object_array_length(refs);
	for (i = 0; i < n; i++) {
		ref = json_object_array_get_idx(refs, i);
		if (obj_bool(ref, "controller"))
			return ref;
	}
	return NULL;
}

/* Kind and uid only: the apiVersion differs between pool.kubevirt.io v1alpha1 and v1beta1. */
int obj_controlled_by(json_object *o, const char *kind, const char *uid)
{
	json_object *ref = obj_controller_ref(o);
	const char *k, *u;

	if (ref == NULL || kind == NULL || uid == NULL)
		return 0;
	k = obj_str(ref, "kind");
	u = obj_str(ref, "uid");
	return k != NULL && u != NULL && strcmp(k, kind) == 0 && strcmp(u, uid) == 0;
}

int obj_has_finalizer(json_object *o, const char *finalizer)
{
	json_object *fins = obj_path(o, "metadata.finalizers"), *f;
	size_t i, n;

	if (!json_object_is_type(fins, json_type_array) || finalizer == NULL)
		return 0;
	n = json_object_array_length(fins);
	for (i = 0; i < n; i++) {
		f = json_object_array_get_idx(fins, i);
		if (json_object_is_type(f, json_type_string) &&
		    strcmp(json_object_get_string(f), finalizer) == 0)
			return 1;
	}
	return 0;
}

json_object *obj_find_condition(json_object *conds, const char *type)
{
	json_object *c;
	const char *t;
	size_t i, n;

	if (!json_object_is_type(conds, json_type_array) || type == NULL)
		return NULL;
	n = json_object_array_length(conds);
	for (i = 0; i < n; i++) {
		c = json_object_array_get_idx(conds, i);
		t = obj_str(c, "type");
		if (t != NULL && strcmp(t, type) == 0)
			return c;
	}
	return NULL;
}

json_object *obj_condition(json_object *o, const char *type)
{
	return obj_find_condition(obj_path(o, "status.conditions"), type);
}

json_object *obj_copy(json_object *o)
{
	json_object *copy = NULL;

	if (o == NULL)
		return NULL;
	if (json_object_deep_copy(o, &copy, NULL) != 0)
		fatalx("obj_copy: json_object_deep_copy failed");
	return copy;
}

static int obj_equal_number(json_object *a, json_object *b)
{
	if (json_object_is_type(a, json_type_int) && json_object_is_type(b, json_type_int))
		return json_object_get_int64(a) == json_object_get_int64(b) &&
		       json_object_get_uint64(a) == json_object_get_uint64(b);
	return json_object_get_double(a) == json_object_get_double(b);
}

static int obj_equal_array(json_object *a, json_object *b)
{
	size_t i, n = json_object_array_length(a);

	if (n != json_object_array_length(b))
		return 0;
	for (i = 0; i < n; i++) {
		if (!obj_equal(json_object_array_get_idx(a, i), json_object_array_get_idx(b, i)))
			return 0;
	}
	return 1;
}

/* json-c keeps one value per key, so equal sizes plus every key of a matching in b is enough */
static int obj_equal_object(json_object *a, json_object *b)
{
	json_object *bv;

	if (json_object_object_length(a) != json_object_object_length(b))
		return 0;
	json_object_object_foreach(a, key, av)
	{
		if (!json_object_object_get_ex(b, key, &bv) || !obj_equal(av, bv))
			return 0;
	}
	return 1;
}

static int obj_is_number(json_object *o)
{
	return json_object_is_type(o, json_type_int) || json_object_is_type(o, json_type_double);
}

int obj_equal(json_object *a, json_object *b)
{
	enum json_type ta = json_object_get_type(a), tb = json_object_get_type(b);

	if (a == b)
		return 1;
	if (obj_is_number(a) && obj_is_number(b))
		return obj_equal_number(a, b);
	if (ta != tb)
		return 0;
	switch (ta) {
	case json_type_null:
		return 1;
	case json_type_boolean:
		return !json_object_get_boolean(a) == !json_object_get_boolean(b);
	case json_type_string:
		return json_object_get_string_len(a) == json_object_get_string_len(b) &&
		       memcmp(json_object_get_string(a), json_object_get_string(b),
		           (size_t)json_object_get_string_len(a)) == 0;
	case json_type_array:
		return obj_equal_array(a, b);
	case json_type_object:
		return obj_equal_object(a, b);
	default:
		return 0;
	}
}

const char *obj_json(json_object *o)
{
	return json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

json_object *obj_ensure(json_object *parent, const char *field)
{
	json_object *v;

	if (json_object_object_get_ex(parent, field, &v) &&
	    json_object_is_type(v, json_type_object))
		return v;
	v = json_object_new_object();
	json_object_object_add(parent, field, v);
	return v;
}

json_object *obj_owner_refs(const char *api_version, const char *kind, json_object *owner)
{
	json_object *ref = json_object_new_object(), *refs = json_object_new_array();
	const char *name = obj_name(owner), *uid = obj_uid(owner);

	json_object_object_add(ref, "apiVersion", json_object_new_string(api_version));
	json_object_object_add(ref, "kind", json_object_new_string(kind));
	json_object_object_add(ref, "name", json_object_new_string(name != NULL ? name : ""));
	json_object_object_add(ref, "uid", json_object_new_string(uid != NULL ? uid : ""));
	json_object_object_add(ref, "controller", json_object_new_boolean(1));
	json_object_object_add(ref, "blockOwnerDeletion", json_object_new_boolean(1));
	json_object_array_add(refs, ref);
	return refs;
}

int obj_pool_api_valid(const char *s)
{
	static const char group[] = "pool.kubevirt.io/";
	size_t n;

	if (s == NULL || strncmp(s, group, sizeof group - 1) != 0)
		return 0;
	s += sizeof group - 1;
	n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789");
	return n > 0 && n < 32 && s[n] == '\0';
}

/* the version the watcher discovered travels with the objects it lists */
const char *obj_pool_api_version(json_object *pool)
{
	const char *v = obj_str(pool, "apiVersion");

	return obj_pool_api_valid(v) ? v : OBJ_POOL_API_DEFAULT;
}

const char *obj_annotation(json_object *obj, const char *key)
{
	json_object *ann = obj_path(obj, "metadata.annotations"), *v;

	if (ann == NULL || !json_object_is_type(ann, json_type_object) ||
	    !json_object_object_get_ex(ann, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

json_object *obj_patch_op(const char *op, const char *path, json_object *value)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "op", json_object_new_string(op));
	json_object_object_add(o, "path", json_object_new_string(path));
	if (value != NULL)
		json_object_object_add(o, "value", value);
	return o;
}

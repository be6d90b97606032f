/*
 * managers.c: the projection of metadata.managedFields described in managers.h. Pure.
 */
#include <string.h>

#include "managers.h"
#include "obj.h"

/* 1 if fields (a FieldsV1 set) has key with any content */
static int managers_has(json_object *fields, const char *key, json_object **out)
{
	json_object *v;

	if (fields == NULL || !json_object_is_type(fields, json_type_object) ||
	    !json_object_object_get_ex(fields, key, &v) ||
	    !json_object_is_type(v, json_type_object))
		return 0;
	if (out != NULL)
		*out = v;
	return 1;
}

/* adds name to the set arr (no duplicates; sorted at the end) */
static void managers_add(json_object *arr, const char *name)
{
	size_t i, n = json_object_array_length(arr);

	for (i = 0; i < n; i++)
		if (strcmp(json_object_get_string(json_object_array_get_idx(arr, i)), name) == 0)
			return;
	json_object_array_add(arr, json_object_new_string(name));
}

static int managers_cmp(const void *a, const void *b)
{
	return strcmp(json_object_get_string(*(json_object *const *)a),
	    json_object_get_string(*(json_object *const *)b));
}

/* one managedFields entry: which of the two sets its manager belongs to */
static void managers_entry(json_object *e, json_object *owners, json_object *status)
{
	const char *name = obj_str(e, "manager");
	json_object *fields = obj_path(e, "fieldsV1"), *meta;

	if (name == NULL || *name == '\0')
		return;
	if (managers_has(fields, "f:metadata", &meta) &&
	    managers_has(meta, "f:ownerReferences", NULL))
		managers_add(owners, name);
	if (managers_has(fields, "f:status", NULL))
		managers_add(status, name);
}

/* puts arr into out under key when it is not empty (consumes arr) */
static void managers_put(json_object *out, const char *key, json_object *arr)
{
	if (json_object_array_length(arr) > 0) {
		json_object_array_sort(arr, managers_cmp);
		json_object_object_add(out, key, arr);
	} else {
		json_object_put(arr);
	}
}

void managers_project(json_object *meta)
{
	json_object *mf, *out, *owners, *status;
	size_t i, n;

	if (meta == NULL || !json_object_is_type(meta, json_type_object))
		return;
	json_object_object_del(meta, MANAGERS_KEY); /* never trust one that came from the API */
	if (!json_object_object_get_ex(meta, "managedFields", &mf))
		return;
	owners = json_object_new_array();
	status = json_object_new_array();
	if (json_object_is_type(mf, json_type_array)) {
		n = json_object_array_length(mf);
		for (i = 0; i < n; i++)
			managers_entry(json_object_array_get_idx(mf, i), owners, status);
	}
	json_object_object_del(meta, "managedFields");
	out = json_object_new_object();
	managers_put(out, MANAGERS_OWNERS, owners);
	managers_put(out, MANAGERS_STATUS, status);
	if (json_object_object_length(out) > 0)
		json_object_object_add(meta, MANAGERS_KEY, out);
	else
		json_object_put(out);
}

json_object *managers_list(json_object *obj, const char *which)
{
	json_object *m = obj_path(obj, "metadata." MANAGERS_KEY), *v;

	if (m == NULL || !json_object_is_type(m, json_type_object) ||
	    !json_object_object_get_ex(m, which, &v) || !json_object_is_type(v, json_type_array))
		return NULL;
	return v;
}

/*
 * revision.c: ControllerRevisions of a pool (SPEC 11.1), when a VM is outdated (11.2), the
 * VM to PUT for one (11.3), what to do with its VMI (11.4), whether a VMI is available
 * (11.6) and the index at the end of a VM name (6). Pure: nothing here keeps state, reads
 * the clock or does I/O.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obj.h"
#include "planner.h"
#include "policy.h"
#include "xmalloc.h"

/* metadata.labels[REVISION_LABEL]; obj_path() cannot take it, the key holds a dot */
const char *revision_label(json_object *o)
{
	json_object *labels = obj_path(o, "metadata.labels"), *v;

	if (!json_object_is_type(labels, json_type_object) ||
	    !json_object_object_get_ex(labels, REVISION_LABEL, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static long long revision_generation(json_object *pool)
{
	long long gen;

	if (obj_int(pool, "metadata.generation", &gen) != 0)
		return 0;
	return gen;
}

char *revision_name(json_object *pool)
{
	const char *name = obj_name(pool);
	char *s;

	if (name == NULL)
		return NULL;
	xasprintf(&s, "%s-%lld", name, revision_generation(pool));
	return s;
}

json_object *revision_build(json_object *pool)
{
	json_object *rev, *meta, *spec;
	char *name;

	if (obj_name(pool) == NULL || obj_uid(pool) == NULL)
		return NULL;
	name = revision_name(pool);
	meta = json_object_new_object();
	json_object_object_add(meta, "name", json_object_new_string(name));
	json_object_object_add(meta, "namespace", json_object_new_string(obj_namespace(pool)));
	json_object_object_add(
	    meta, "ownerReferences", obj_owner_refs(obj_pool_api_version(pool), POOL_KIND, pool));
	free(name);

	rev = json_object_new_object();
	json_object_object_add(rev, "apiVersion", json_object_new_string("apps/v1"));
	json_object_object_add(rev, "kind", json_object_new_string("ControllerRevision"));
	json_object_object_add(rev, "metadata", meta);
	json_object_object_add(
	    rev, "revision", json_object_new_int64((int64_t)revision_generation(pool)));
	spec = obj_path(pool, "spec");
	json_object_object_add(
	    rev, "data", spec != NULL ? obj_copy(spec) : json_object_new_object());
	return rev;
}

int revision_owned_by(json_object *rev, const char *pool_uid)
{
	if (rev == NULL || pool_uid == NULL)
		return 0;
	return obj_controlled_by(rev, POOL_KIND, pool_uid);
}

/* absent, null, [] and {} are all "empty"; Kubernetes' semantic equality makes nil and
 * empty slices and maps equal, and the JSON encoding of either may drop the field */
static int revision_empty(json_object *o)
{
	if (o == NULL || json_object_is_type(o, json_type_null))
		return 1;
	if (json_object_is_type(o, json_type_array))
		return json_object_array_length(o) == 0;
	if (json_object_is_type(o, json_type_object))
		return json_object_object_length(o) == 0;
	return 0;
}

static int revision_equal(json_object *a, json_object *b)
{
	if (revision_empty(a) && revision_empty(b))
		return 1;
	return obj_equal(a, b);
}

int revision_vm_outdated(json_object *pool, json_object *vm, json_object *rev)
{
	if (!json_object_is_type(obj_path(vm, "metadata.labels"), json_type_object))
		return 1;
	if (revision_label(vm) == NULL || rev == NULL)
		return 1;
	return !revision_equal(obj_path(rev, "data.virtualMachineTemplate"),
	    obj_path(pool, "spec.virtualMachineTemplate"));
}

/* to.metadata[field] = a copy of from.metadata[field], or removed when from has none */
static void revision_keep(json_object *to, json_object *from, const char *field)
{
	json_object *meta = obj_ensure(to, "metadata"), *v;

	if (json_object_object_get_ex(obj_path(from, "metadata"), field, &v) && v != NULL)
		json_object_object_add(meta, field, obj_copy(v));
	else
		json_object_object_del(meta, field);
}

json_object *revision_updated_vm(json_object *pool, json_object *vm, const char *revname)
{
	static const char *const kept[] = {
	    "name", "namespace", "uid", "resourceVersion", "finalizers", "ownerReferences"};
	json_object *nvm;
	long index;
	size_t i;

	index = revision_vm_index(obj_name(vm));
	if (index < 0)
		return NULL;
	nvm = vmbuild_vm(pool, index, revname);
	if (nvm == NULL)
		return NULL;
	for (i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		revision_keep(nvm, vm, kept[i]);
	return nvm;
}

enum revision_vmi_action revision_vmi_action(
    json_object *vm, json_object *vmi, json_object *vm_rev, json_object *vmi_rev)
{
	const char *r_vm = revision_label(vm), *r_vmi;

	if (r_vm == NULL || vmi == NULL)
		return VMI_NONE;
	r_vmi = revision_label(vmi);
	if (r_vmi == NULL)
		return VMI_RESTART;
	if (strcmp(r_vm, r_vmi) == 0)
		return VMI_NONE;
	if (vm_rev == NULL)
		return VMI_NONE;
	if (vmi_rev == NULL)
		return VMI_RESTART;
	if (!revision_equal(
	        obj_path(vm_rev, "data.virtualMachineTemplate.spec.dataVolumeTemplates"),
	        obj_path(vmi_rev, "data.virtualMachineTemplate.spec.dataVolumeTemplates")))
		return VMI_DELETE_VM;
	if (!revision_equal(obj_path(vm_rev, "data.virtualMachineTemplate.spec.template"),
	        obj_path(vmi_rev, "data.virtualMachineTemplate.spec.template")))
		return VMI_RESTART;
	return VMI_PATCH_LABELS;
}

json_object *revision_vmi_label_patch(json_object *vm, json_object *vmi)
{
	json_object *patch, *old, *labels;
	const char *r_vm = revision_label(vm);

	if (r_vm == NULL || vmi == NULL)
		return NULL;
	patch = json_object_new_array();
	old = obj_path(vmi, "metadata.labels");
	if (!json_object_is_type(old, json_type_object)) {
		labels = json_object_new_object();
		json_object_object_add(labels, REVISION_LABEL, json_object_new_string(r_vm));
		json_object_array_add(patch, obj_patch_op("add", "/metadata/labels", labels));
		return patch;
	}
	labels = obj_copy(old);
	json_object_object_add(labels, REVISION_LABEL, json_object_new_string(r_vm));
	json_object_array_add(patch, obj_patch_op("test", "/metadata/labels", obj_copy(old)));
	json_object_array_add(patch, obj_patch_op("replace", "/metadata/labels", labels));
	return patch;
}

int revision_vmi_unavailable(json_object *vmi)
{
	const char *phase, *ready;

	if (vmi == NULL || obj_terminating(vmi))
		return 1;
	phase = obj_str(vmi, "status.phase");
	if (phase == NULL || strcmp(phase, "Running") != 0)
		return 1;
	ready = obj_str(obj_condition(vmi, "Ready"), "status");
	return ready == NULL || strcmp(ready, "True") != 0;
}

/*
 * Only decimal digits after the last '-'. A '-' right before that piece makes it a
 * negative number ("p--1"), which is no index either.
 */
long revision_vm_index(const char *name)
{
	const char *dash, *p;
	long v = 0;

	if (name == NULL || (dash = strrchr(name, '-')) == NULL)
		return -1;
	if (dash[1] == '\0' || (dash > name && dash[-1] == '-'))
		return -1;
	for (p = dash + 1; *p != '\0'; p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		if (v > (LONG_MAX - (*p - '0')) / 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v;
}

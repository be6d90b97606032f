/*
 * vmbuild.c: the VirtualMachine a pool creates for one index (SPEC 7): template labels and
 * annotations, the pool finalizer, one controller owner reference, a deep copy of the
 * template spec with dataVolumeTemplates and (optionally) ConfigMap / Secret references
 * suffixed with the index. Pure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obj.h"
#include "planner.h"
#include "policy.h"
#include "xmalloc.h"

struct vmbuild_ctx {
	long index;
	int cm;            /* append the index to ConfigMap refs */
	int secret;        /* ... and to Secret refs */
	json_object *dvts; /* spec.dataVolumeTemplates of the copy (renamed) */
	json_object *orig; /* the template's own dataVolumeTemplates */
};

char *vmbuild_name(const char *pool, long index)
{
	char *s;

	xasprintf(&s, "%s-%ld", pool, index);
	return s;
}

/* nameGeneration wins over the seed-era alias when it is set at all */
static int vmbuild_flag(json_object *pool, const char *field, const char *alias)
{
	char path[128];

	snprintf(path, sizeof(path), "spec.nameGeneration.%s", field);
	if (obj_path(pool, path) != NULL)
		return obj_bool(pool, path);
	snprintf(path, sizeof(path), "spec.%s", alias);
	return obj_bool(pool, path);
}

/* obj[field] += "-<index>" when it is a string */
static void vmbuild_suffix(json_object *obj, const char *field, long index)
{
	json_object *v;
	char *s;

	if (obj == NULL || !json_object_object_get_ex(obj, field, &v) ||
	    !json_object_is_type(v, json_type_string))
		return;
	xasprintf(&s, "%s-%ld", json_object_get_string(v), index);
	json_object_object_add(obj, field, json_object_new_string(s));
	free(s);
}

/* the indexed name of an original dataVolumeTemplate name, or NULL */
static const char *vmbuild_dvt_rename(const struct vmbuild_ctx *c, const char *name)
{
	size_t i, n;
	const char *orig;

	if (name == NULL || c->orig == NULL || !json_object_is_type(c->orig, json_type_array))
		return NULL;
	n = json_object_array_length(c->orig);
	for (i = 0; i < n; i++) {
		orig = obj_str(json_object_array_get_idx(c->orig, i), "metadata.name");
		if (orig != NULL && strcmp(orig, name) == 0)
			return obj_str(json_object_array_get_idx(c->dvts, i), "metadata.name");
	}
	return NULL;
}

static void vmbuild_rename_ref(const struct vmbuild_ctx *c, json_object *src, const char *field)
{
	const char *to = vmbuild_dvt_rename(c, obj_str(src, field));

	if (to != NULL)
		json_object_object_add(src, field, json_object_new_string(to));
}

static void vol_pvc(const struct vmbuild_ctx *c, json_object *src)
{
	vmbuild_rename_ref(c, src, "claimName");
}

static void vol_dv(const struct vmbuild_ctx *c, json_object *src)
{
	vmbuild_rename_ref(c, src, "name");
}

static void vol_cm(const struct vmbuild_ctx *c, json_object *src)
{
	if (c->cm)
		vmbuild_suffix(src, "name", c->index);
}

static void vol_secret(const struct vmbuild_ctx *c, json_object *src)
{
	if (c->secret)
		vmbuild_suffix(src, "secretName", c->index);
}

static void vol_cloudinit(const struct vmbuild_ctx *c, json_object *src)
{
	if (!c->secret)
		return;
	vmbuild_suffix(obj_path(src, "secretRef"), "name", c->index);
	vmbuild_suffix(obj_path(src, "networkDataSecretRef"), "name", c->index);
}

/* the volume source decides which rule applies; the first source present wins */
static const struct {
	const char *source;
	void (*apply)(const struct vmbuild_ctx *, json_object *);
} vmbuild_vol_rules[] = {
    {"persistentVolumeClaim", vol_pvc},
    {"dataVolume", vol_dv},
    {"configMap", vol_cm},
    {"secret", vol_secret},
    {"cloudInitNoCloud", vol_cloudinit},
    {"cloudInitConfigDrive", vol_cloudinit},
};

static void vmbuild_volume(const struct vmbuild_ctx *c, json_object *vol)
{
	json_object *src;
	size_t i;

	for (i = 0; i < sizeof(vmbuild_vol_rules) / sizeof(vmbuild_vol_rules[0]); i++) {
		src = obj_path(vol, vmbuild_vol_rules[i].source);
		if (src != NULL && json_object_is_type(src, json_type_object)) {
			vmbuild_vol_rules[i].apply(c, src);
			return;
		}
	}
}

static void vmbuild_index_spec(struct vmbuild_ctx *c, json_object *spec)
{
	json_object *vols, *meta;
	size_t i, n;

	c->dvts = obj_path(spec, "dataVolumeTemplates");
	if (c->dvts != NULL && json_object_is_type(c->dvts, json_type_array)) {
		n = json_object_array_length(c->dvts);
		for (i = 0; i < n; i++) {
			meta = obj_path(json_object_array_get_idx(c->dvts, i), "metadata");
			vmbuild_suffix(meta, "name", c->index);
		}
	}
	vols = obj_path(spec, "template.spec.volumes");
	if (vols == NULL || !json_object_is_type(vols, json_type_array))
		return;
	n = json_object_array_length(vols);
	for (i = 0; i < n; i++)
		vmbuild_volume(c, json_object_array_get_idx(vols, i));
}

static void vmbuild_revision(json_object *vm, json_object *spec, const char *revision)
{
	json_object *labels;

	labels = obj_ensure(obj_ensure(vm, "metadata"), "labels");
	json_object_object_add(labels, REVISION_LABEL, json_object_new_string(revision));
	labels = obj_ensure(obj_ensure(obj_ensure(spec, "template"), "metadata"), "labels");
	json_object_object_add(labels, REVISION_LABEL, json_object_new_string(revision));
}

static json_object *vmbuild_meta(json_object *pool, const char *name)
{
	json_object *meta = json_object_new_object(), *v, *fins;

	json_object_object_add(meta, "name", json_object_new_string(name));
	json_object_object_add(meta, "namespace", json_object_new_string(obj_namespace(pool)));
	v = obj_path(pool, "spec.virtualMachineTemplate.metadata.labels");
	if (v != NULL && json_object_is_type(v, json_type_object))
		json_object_object_add(meta, "labels", obj_copy(v));
	v = obj_path(pool, "spec.virtualMachineTemplate.metadata.annotations");
	if (v != NULL && json_object_is_type(v, json_type_object))
		json_object_object_add(meta, "annotations", obj_copy(v));
	fins = json_object_new_array();
	json_object_array_add(fins, json_object_new_string(POOL_FINALIZER));
	json_object_object_add(meta, "finalizers", fins);
	json_object_object_add(
	    meta, "ownerReferences", obj_owner_refs(obj_pool_api_version(pool), POOL_KIND, pool));
	return meta;
}

json_object *vmbuild_vm(json_object *pool, long index, const char *revision)
{
	struct vmbuild_ctx c;
	json_object *vm, *spec, *tspec;
	char *name;

	if (obj_name(pool) == NULL || obj_uid(pool) == NULL)
		return NULL;
	memset(&c, 0, sizeof(c));
	c.index = index;
	c.cm =
	    vmbuild_flag(pool, "appendIndexToConfigMapRefs", "appendPostfixToConfigMapReferences");
	c.secret = vmbuild_flag(pool, "appendIndexToSecretRefs", "appendPostfixToSecretReferences");
	c.orig = obj_path(pool, "spec.virtualMachineTemplate.spec.dataVolumeTemplates");

	name = vmbuild_name(obj_name(pool), index);
	vm = json_object_new_object();
	json_object_object_add(vm, "apiVersion", json_object_new_string("kubevirt.io/v1"));
	json_object_object_add(vm, "kind", json_object_new_string("VirtualMachine"));
	json_object_object_add(vm, "metadata", vmbuild_meta(pool, name));
	free(name);

	tspec = obj_path(pool, "spec.virtualMachineTemplate.spec");
	if (tspec != NULL && json_object_is_type(tspec, json_type_object))
		spec = obj_copy(tspec);
	else
		spec = json_object_new_object();
	json_object_object_add(vm, "spec", spec);
	vmbuild_index_spec(&c, spec);
	if (revision != NULL)
		vmbuild_revision(vm, spec, revision);
	return vm;
}

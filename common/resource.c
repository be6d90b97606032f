/*
 * resource.c: the resource table and its projections (see resource.h). The field lists are
 * what the readers read: the planner (planner/), the status stage (status/) and the
 * store's indexes (common/store.c); vmpoolctl only prints what it is sent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube.h"
#include "managers.h"
#include "proto.h"
#include "resource.h"
#include "xmalloc.h"

#define RES_SEGMENT_MAX 128

/* every kind: the identity */
static const struct resource_field res_identity[] = {
    {"apiVersion", RT_STR},
    {"kind", RT_STR},
    {"metadata.name", RT_STR},
    {"metadata.namespace", RT_STR},
    {"metadata.uid", RT_STR},
    {"metadata.resourceVersion", RT_STR},
    {"metadata.labels", RT_STRMAP},
    {"metadata.deletionTimestamp", RT_STR},
    {NULL, RT_ANY},
};

/* the owner references of the kinds whose owner is read (VMs, revisions, disks): every
 * member an OwnerReference has, as the planner's JSON patches of them test the old value */
#define RES_OWNERS                                                                                 \
	{"metadata.ownerReferences[].apiVersion", RT_STR},                                         \
	    {"metadata.ownerReferences[].kind", RT_STR},                                           \
	    {"metadata.ownerReferences[].name", RT_STR},                                           \
	    {"metadata.ownerReferences[].uid", RT_STR},                                            \
	    {"metadata.ownerReferences[].controller", RT_BOOL},                                    \
	{                                                                                          \
		"metadata.ownerReferences[].blockOwnerDeletion", RT_BOOL                           \
	}

/* the Ready condition (the only one anybody reads; a VM or VMI of KubeVirt carries several
 * more): its status (updates, status), and of a VM when it was last probed or changed
 * (autohealing: how long it has not been ready). Its reason and message have no reader: a
 * VM or VMI that is not ready yet carries one of each (issue 9: about 40 bytes a VM, 90 a VMI
 * with the times, in the watcher and the planner at the height of a scale-out). */
#define RES_READY                                                                                  \
	{"status.conditions[type=Ready].type", RT_STR},                                            \
	{                                                                                          \
		"status.conditions[type=Ready].status", RT_STR                                     \
	}
#define RES_CONDITIONS                                                                             \
	RES_READY, {"status.conditions[type=Ready].lastProbeTime", RT_STR},                        \
	{                                                                                          \
		"status.conditions[type=Ready].lastTransitionTime", RT_STR                         \
	}

/* who writes what (managers.h, made by the watcher from managedFields): foreign writers */
#define RES_MANAGERS                                                                               \
	{"metadata." MANAGERS_KEY "." MANAGERS_OWNERS, RT_STRARR},                                 \
	{                                                                                          \
		"metadata." MANAGERS_KEY "." MANAGERS_STATUS, RT_STRARR                            \
	}

/* the whole spec (the planner builds VMs from it, revisions copy it) and the status the
 * status stage compares with what it writes */
static const struct resource_field res_pool[] = {
    {"metadata.generation", RT_INT},
    {"metadata.annotations", RT_STRMAP},
    {"metadata.finalizers", RT_STRARR},
    {"metadata.creationTimestamp", RT_STR},
    RES_MANAGERS,
    {"spec", RT_OBJ},
    {"status", RT_OBJ},
    {NULL, RT_ANY},
};

/* naming and ownership (identity, finalizers), scale-in order (creationTimestamp, the
 * template's labels and nodeSelector), updates (the revision label), state preservation
 * (the disks), autohealing and status (conditions, printableStatus, startFailure), foreign
 * writers (managers). An update that rewrites the VM reads the rest with a GET
 * (actuator/vmupdate.c). */
static const struct resource_field res_vm[] = {
    RES_OWNERS,
    {"metadata.finalizers", RT_STRARR},
    {"metadata.creationTimestamp", RT_STR},
    RES_MANAGERS,
    {"spec.template.metadata.labels", RT_STRMAP},
    {"spec.template.spec.nodeSelector", RT_STRMAP},
    {"spec.dataVolumeTemplates[].metadata.name", RT_STR},
    {"spec.template.spec.volumes[].persistentVolumeClaim.claimName", RT_STR},
    {"spec.template.spec.volumes[].dataVolume.name", RT_STR},
    {"status.printableStatus", RT_STR},
    {"status.startFailure.consecutiveFailCount", RT_INT},
    RES_CONDITIONS,
    {NULL, RT_ANY},
};

/* the revision label (identity), whether it runs and is ready (updates' budget); a VMI is
 * found by its VM's name, its owner references are not read */
static const struct resource_field res_vmi[] = {
    {"status.phase", RT_STR},
    RES_READY,
    {NULL, RT_ANY},
};

/* the template a revision recorded, compared with the pool's */
static const struct resource_field res_rev[] = {
    RES_OWNERS,
    {"revision", RT_INT},
    {"data", RT_OBJ},
    {NULL, RT_ANY},
};

/* PVCs and DataVolumes: whether a VM controls them (the watcher's filter) and which */
static const struct resource_field res_disk[] = {
    RES_OWNERS,
    {NULL, RT_ANY},
};

/* vmpool-status keeps less, and not the whole identity (no labels): of a pool the replicas,
 * selector and paused (any type: the planner judges them), its status, who writes it and
 * its version (for the /status path); of a VM its controller and Ready condition (the
 * counts) and who writes it (foreign controllers) */
#define RES_STATUS_IDENTITY                                                                        \
	{"metadata.name", RT_STR}, {"metadata.namespace", RT_STR}, {"metadata.uid", RT_STR},       \
	    {"metadata.resourceVersion", RT_STR},                                                  \
	{                                                                                          \
		"metadata.deletionTimestamp", RT_STR                                               \
	}

static const struct resource_field res_status_pool[] = {
    {"apiVersion", RT_STR},
    RES_STATUS_IDENTITY,
    RES_MANAGERS,
    {"spec.replicas", RT_ANY},
    {"spec.selector", RT_ANY},
    {"spec.paused", RT_ANY},
    {"status", RT_OBJ},
    {OBJ_INVALID, RT_OBJ},
    {NULL, RT_ANY},
};

static const struct resource_field res_status_vm[] = {
    RES_STATUS_IDENTITY,
    {"metadata.ownerReferences[].kind", RT_STR},
    {"metadata.ownerReferences[].name", RT_STR},
    {"metadata.ownerReferences[].uid", RT_STR},
    {"metadata.ownerReferences[].controller", RT_BOOL},
    RES_MANAGERS,
    {"status.conditions[type=Ready].type", RT_STR},
    {"status.conditions[type=Ready].status", RT_STR},
    {NULL, RT_ANY},
};

/* KubeVirt up to v1.6 serves pools at v1alpha1 only, later ones v1beta1 too */
static const char *const res_pool_versions[] = {"v1beta1", "v1alpha1", NULL};

static const struct resource res_table[] = {
    {KIND_POOL, "VirtualMachinePool", "pool.kubevirt.io", NULL, res_pool_versions,
        "virtualmachinepools", res_pool, 0, res_status_pool},
    {KIND_VM, "VirtualMachine", "kubevirt.io", "v1", NULL, "virtualmachines", res_vm, 0,
        res_status_vm},
    {KIND_VMI, "VirtualMachineInstance", "kubevirt.io", "v1", NULL, "virtualmachineinstances",
        res_vmi, 0, NULL},
    {KIND_REV, "ControllerRevision", "apps", "v1", NULL, "controllerrevisions", res_rev, 0, NULL},
    {KIND_PVC, "PersistentVolumeClaim", "", "v1", NULL, "persistentvolumeclaims", res_disk, 1,
        NULL},
    {KIND_DV, "DataVolume", "cdi.kubevirt.io", "v1beta1", NULL, "datavolumes", res_disk, 1, NULL},
};

const struct resource *resource_get(const char *kind)
{
	size_t i;

	for (i = 0; kind != NULL && i < sizeof(res_table) / sizeof(res_table[0]); i++)
		if (strcmp(res_table[i].kind, kind) == 0)
			return &res_table[i];
	return NULL;
}

const char *resource_version(const struct resource *rs, const char *discovered)
{
	if (rs->version != NULL)
		return rs->version;
	return discovered != NULL ? discovered : rs->versions[0];
}

char *resource_path(
    const struct resource *rs, const char *version, const char *ns, const char *name)
{
	char *ens = ns != NULL ? kube_escape(ns) : NULL;
	char *ename = name != NULL ? kube_escape(name) : NULL, *path;

	version = resource_version(rs, version);
	xasprintf(&path, "%s%s%s%s%s%s/%s%s%s", rs->group[0] != '\0' ? "/apis/" : "/api/",
	    rs->group, rs->group[0] != '\0' ? "/" : "", version, ens != NULL ? "/namespaces/" : "",
	    ens != NULL ? ens : "", rs->plural, ename != NULL ? "/" : "",
	    ename != NULL ? ename : "");
	free(ens);
	free(ename);
	return path;
}

/* ---- projection ---- */

static const char *res_type_name(enum resource_type t)
{
	static const char *const names[] = {
	    [RT_ANY] = "any value",
	    [RT_STR] = "a string",
	    [RT_INT] = "an integer",
	    [RT_BOOL] = "a boolean",
	    [RT_OBJ] = "an object",
	    [RT_STRMAP] = "a map of strings",
	    [RT_STRARR] = "a list of strings",
	};

	return names[t];
}

static int res_all_strings(json_object *v, int map)
{
	size_t i, n;

	if (map) {
		json_object_object_foreach(v, key, val)
		{
			(void)key;
			if (!json_object_is_type(val, json_type_string))
				return 0;
		}
		return 1;
	}
	n = json_object_array_length(v);
	for (i = 0; i < n; i++)
		if (!json_object_is_type(json_object_array_get_idx(v, i), json_type_string))
			return 0;
	return 1;
}

/* every item of the array v is an empty object */
static int res_all_empty(json_object *v)
{
	size_t i, n = json_object_array_length(v);

	for (i = 0; i < n; i++)
		if (json_object_object_length(json_object_array_get_idx(v, i)) != 0)
			return 0;
	return 1;
}

static int res_type_ok(json_object *v, enum resource_type t)
{
	switch (t) {
	case RT_ANY:
		return 1;
	case RT_STR:
		return json_object_is_type(v, json_type_string);
	case RT_INT:
		return json_object_is_type(v, json_type_int);
	case RT_BOOL:
		return json_object_is_type(v, json_type_boolean);
	case RT_OBJ:
		return json_object_is_type(v, json_type_object);
	case RT_STRMAP:
		return json_object_is_type(v, json_type_object) && res_all_strings(v, 1);
	case RT_STRARR:
		return json_object_is_type(v, json_type_array) && res_all_strings(v, 0);
	}
	return 0;
}

struct res_walk {
	char *err;
	size_t errlen;
	const struct resource_field *field;
};

/* names the field and the member of its path that is wrong */
static int res_fail(struct res_walk *w, const char *seg, const char *what)
{
	snprintf(w->err, w->errlen, "%s (for %s) is not %s", seg, w->field->path, what);
	return -1;
}

static int res_empty(json_object *v)
{
	if (json_object_is_type(v, json_type_object))
		return json_object_object_length(v) == 0;
	return json_object_array_length(v) == 0;
}

static int res_copy(struct res_walk *w, json_object *src, json_object *dst, const char *path);

/* 1 if item passes the filter "key=value" of a path's "[key=value]" (NULL: every item) */
static int res_item_wanted(json_object *item, const char *filter)
{
	const char *eq = filter != NULL ? strchr(filter, '=') : NULL;
	char key[RES_SEGMENT_MAX];
	json_object *v;

	if (eq == NULL || (size_t)(eq - filter) >= sizeof(key))
		return 1;
	memcpy(key, filter, (size_t)(eq - filter));
	key[eq - filter] = '\0';
	return json_object_object_get_ex(item, key, &v) &&
	       json_object_is_type(v, json_type_string) &&
	       strcmp(json_object_get_string(v), eq + 1) == 0;
}

/*
 * The items of the array src that pass the filter, each projected on path into the array to:
 * the n-th wanted item of src into to's n-th, so every field of one array lands in the same
 * item.
 */
static int res_copy_items(struct res_walk *w, const char *seg, json_object *src, json_object *to,
    const char *path, const char *filter)
{
	size_t i, j = 0, len = json_object_array_length(src);
	json_object *item;

	for (i = 0; i < len; i++) {
		item = json_object_array_get_idx(src, i);
		if (!json_object_is_type(item, json_type_object))
			return res_fail(w, seg, "a list of objects");
		if (!res_item_wanted(item, filter))
			continue;
		if (j >= json_object_array_length(to))
			json_object_array_add(to, json_object_new_object());
		if (res_copy(w, item, json_object_array_get_idx(to, j++), path) == -1)
			return -1;
	}
	return 0;
}

/*
 * dst[seg] = the projection of v on path (the rest of the field's path): into the container
 * already there (another field with the same prefix made it), or a new one that is added
 * only if something was copied into it (no empty "spec": {} for a VM without a template)
 */
static int res_descend(struct res_walk *w, const char *seg, json_object *v, json_object *dst,
    const char *path, const char *filter)
{
	int array = json_object_is_type(v, json_type_array);
	enum json_type type = array ? json_type_array : json_type_object;
	json_object *to;
	int rc, made = 0;

	if (!json_object_object_get_ex(dst, seg, &to) || !json_object_is_type(to, type)) {
		to = array ? json_object_new_array() : json_object_new_object();
		made = 1;
	}
	rc = array ? res_copy_items(w, seg, v, to, path, filter) : res_copy(w, v, to, path);
	if (made && rc == 0 && !res_empty(to) && !(array && res_all_empty(to)))
		json_object_object_add(dst, seg, to);
	else if (made)
		json_object_put(to);
	return rc;
}

/* copies the member path (the rest of the field's path) of src into dst; 0 or -1 */
static int res_copy(struct res_walk *w, json_object *src, json_object *dst, const char *path)
{
	const char *dot = strchr(path, '.'), *filter = NULL;
	size_t n = dot != NULL ? (size_t)(dot - path) : strlen(path);
	char seg[RES_SEGMENT_MAX], *br;
	json_object *v;
	int array = 0;

	if (n >= sizeof(seg))
		return res_fail(w, path, "a path this table can hold"); /* a broken table */
	memcpy(seg, path, n);
	seg[n] = '\0';
	if ((br = strchr(seg, '[')) != NULL && seg[n - 1] == ']') {
		/* "name[]" or "name[key=value]" */
		array = 1;
		*br = '\0';
		seg[n - 1] = '\0';
		filter = br[1] != '\0' ? br + 1 : NULL;
	}
	if (!json_object_object_get_ex(src, seg, &v) || v == NULL)
		return 0; /* absent or null: left out */
	if (!array && dot == NULL) {
		if (!res_type_ok(v, w->field->type))
			return res_fail(w, seg, res_type_name(w->field->type));
		json_object_object_add(dst, seg, json_object_get(v));
		return 0;
	}
	if (!array && !json_object_is_type(v, json_type_object))
		return res_fail(w, seg, "an object");
	if (array && !json_object_is_type(v, json_type_array))
		return res_fail(w, seg, "a list");
	return res_descend(w, seg, v, dst, dot != NULL ? dot + 1 : "", filter);
}

static int res_copy_all(
    struct res_walk *w, const struct resource_field *f, json_object *obj, json_object *out)
{
	for (; f->path != NULL; f++) {
		w->field = f;
		if (res_copy(w, obj, out, f->path) == -1)
			return -1;
	}
	return 0;
}

/* obj projected on fields (after the identity, if with_identity) */
static json_object *res_project(const struct resource_field *fields, int with_identity,
    json_object *obj, char *err, size_t errlen)
{
	struct res_walk w = {err, errlen, NULL};
	json_object *out, *meta;
	const char *name, *uid;

	if (!json_object_is_type(obj, json_type_object) ||
	    !json_object_object_get_ex(obj, "metadata", &meta) ||
	    !json_object_is_type(meta, json_type_object)) {
		snprintf(err, errlen, "metadata is not an object");
		return NULL;
	}
	out = json_object_new_object();
	if ((with_identity && res_copy_all(&w, res_identity, obj, out) == -1) ||
	    res_copy_all(&w, fields, obj, out) == -1) {
		json_object_put(out);
		return NULL;
	}
	meta = json_object_object_get(out, "metadata");
	name = json_object_get_string(json_object_object_get(meta, "name"));
	uid = json_object_get_string(json_object_object_get(meta, "uid"));
	if (name == NULL || *name == '\0' || uid == NULL || *uid == '\0') {
		snprintf(err, errlen, "metadata.%s is missing",
		    name == NULL || *name == '\0' ? "name" : "uid");
		json_object_put(out);
		return NULL;
	}
	return out;
}

json_object *resource_project(const struct resource *rs, json_object *obj, char *err, size_t errlen)
{
	return res_project(rs->fields, 1, obj, err, errlen);
}

json_object *resource_project_status(
    const struct resource *rs, json_object *obj, char *err, size_t errlen)
{
	if (rs->status_fields == NULL) {
		snprintf(err, errlen, "vmpool-status keeps no %s", rs->plural);
		return NULL;
	}
	return res_project(rs->status_fields, 0, obj, err, errlen);
}

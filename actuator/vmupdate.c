/*
 * vmupdate.c: the merge of a VM update (see vmupdate.h). Pure: no I/O, no clock.
 */
#include <stdio.h>
#include <string.h>

#include "obj.h"
#include "vmupdate.h"

/* to[field] = a copy of from[field], or removed when from has none */
static void vmupdate_take(json_object *to, json_object *from, const char *field)
{
	json_object *v;

	if (json_object_object_get_ex(from, field, &v) && v != NULL)
		json_object_object_add(to, field, obj_copy(v));
	else
		json_object_object_del(to, field);
}

/* SPEC 11.3 (upstream #16585): a firmware uuid or serial the old VM had survives */
static void vmupdate_keep_firmware(json_object *to, json_object *from)
{
	static const char *const fields[] = {"uuid", "serial"};
	static const char *const path[] = {"spec", "template", "spec", "domain", "firmware"};
	json_object *fw;
	const char *v;
	size_t i, j;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		v = obj_str(obj_path(from, "spec.template.spec.domain.firmware"), fields[i]);
		if (v == NULL || *v == '\0')
			continue;
		for (j = 0, fw = to; j < sizeof(path) / sizeof(path[0]); j++)
			fw = obj_ensure(fw, path[j]);
		json_object_object_add(fw, fields[i], json_object_new_string(v));
	}
}

json_object *vmupdate_merge(json_object *live, json_object *built, char *err, size_t errlen)
{
	json_object *out, *meta, *bmeta = obj_path(built, "metadata");
	const char *lu = obj_uid(live), *bu = obj_uid(built);

	if (!json_object_is_type(obj_path(live, "metadata"), json_type_object) ||
	    obj_str(live, "metadata.resourceVersion") == NULL) {
		snprintf(err, errlen, "the VM read back has no metadata.resourceVersion");
		return NULL;
	}
	if (bu != NULL && (lu == NULL || strcmp(lu, bu) != 0)) {
		snprintf(err, errlen, "the VM was replaced (uid %s, the update was for %s)",
		    lu != NULL ? lu : "none", bu);
		return NULL;
	}
	out = obj_copy(live);
	json_object_object_del(out, "status");
	meta = obj_path(out, "metadata");
	vmupdate_take(meta, bmeta, "labels");
	vmupdate_take(meta, bmeta, "annotations");
	vmupdate_take(out, built, "spec");
	vmupdate_keep_firmware(out, live);
	return out;
}

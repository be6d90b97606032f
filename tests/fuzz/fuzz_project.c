/*
 * fuzz_project.c: libFuzzer target for the watcher's projections (common/resource.c): any
 * JSON value (as deep as the API client parses) projected for every kind. A projection
 * either fails with a reason or is an object with a non-empty string name and uid, no
 * deeper than the codec carries for the kinds whose projection bounds the depth, that
 * projects to itself again (nothing kept that the projection would refuse).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "codec.h"
#include "log.h"
#include "obj.h"
#include "proto.h"
#include "resource.h"

#define FUZZ_JSON_DEPTH 256 /* kube.c's KUBE_JSON_DEPTH */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz_project", -1, LOG_FMT_TEXT);
	return 0;
}

static void fuzz_one(const char *kind, json_object *o)
{
	const struct resource *rs = resource_get(kind);
	json_object *p, *again;
	const char *name, *uid;
	char err[256] = "";

	p = resource_project(rs, o, err, sizeof err);
	if (p == NULL) {
		if (err[0] == '\0')
			abort(); /* a refusal says why */
		return;
	}
	name = obj_str(p, "metadata.name");
	uid = obj_str(p, "metadata.uid");
	if (name == NULL || *name == '\0' || uid == NULL || *uid == '\0')
		abort();
	/* VMs, VMIs, PVCs and DataVolumes keep nothing whole that could nest */
	if ((strcmp(kind, KIND_VM) == 0 || strcmp(kind, KIND_VMI) == 0 ||
	        strcmp(kind, KIND_PVC) == 0 || strcmp(kind, KIND_DV) == 0) &&
	    codec_too_deep(p, CODEC_OBJ_MAX_DEPTH))
		abort();
	again = resource_project(rs, p, err, sizeof err);
	if (again == NULL || !obj_equal(again, p))
		abort();
	json_object_put(again);
	json_object_put(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const kinds[] = {
	    KIND_POOL, KIND_VM, KIND_VMI, KIND_REV, KIND_PVC, KIND_DV};
	json_tokener *tok;
	json_object *o;
	size_t i;

	if (size > 65536)
		return 0;
	tok = json_tokener_new_ex(FUZZ_JSON_DEPTH);
	o = json_tokener_parse_ex(tok, (const char *)data, (int)size);
	json_tokener_free(tok);
	if (o == NULL)
		return 0;
	for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		fuzz_one(kinds[i], o);
	json_object_put(o);
	return 0;
}

/*
 * fuzz_plan.c: libFuzzer target for one planning pass (plan_pool) on a pool and the objects
 * of its namespace, given as a JSON array [pool, object...] (an object's "kind" says what it
 * is: VirtualMachineInstance, ControllerRevision, PersistentVolumeClaim, DataVolume, else a
 * VirtualMachine). The VMs go through the planner's index as planrun hands them over; the
 * pass runs twice, the second time with the first pass's actions as expectations.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "../../planner/planner.h"
#include "../../planner/policy.h"
#include "log.h"
#include "obj.h"
#include "proto.h"

#define FP_MAX 64

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fp {
	json_object *vms[FP_MAX], *objs[FP_MAX], *revs[FP_MAX];
	const char *kinds[FP_MAX];
	size_t nvms, nobjs, nrevs;
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz_plan", -1, LOG_FMT_TEXT);
	return 0;
}

static const char *fp_str(const char *s)
{
	return s != NULL ? s : "";
}

static int fp_name_used(const char *ns, const char *name, void *arg)
{
	struct fp *p = arg;
	size_t i;

	for (i = 0; i < p->nvms; i++)
		if (strcmp(fp_str(obj_namespace(p->vms[i])), ns) == 0 &&
		    strcmp(fp_str(obj_name(p->vms[i])), name) == 0)
			return 1;
	return 0;
}

static json_object *fp_get(const char *kind, const char *ns, const char *name, void *arg)
{
	struct fp *p = arg;
	size_t i;

	for (i = 0; i < p->nobjs; i++)
		if (strcmp(p->kinds[i], kind) == 0 &&
		    strcmp(fp_str(obj_namespace(p->objs[i])), ns) == 0 &&
		    strcmp(fp_str(obj_name(p->objs[i])), name) == 0)
			return p->objs[i];
	return NULL;
}

static int fp_removed(const char *uid, void *arg)
{
	return -1;
}

static const char *fp_kind(json_object *o)
{
	const char *k = fp_str(obj_str(o, "kind"));

	if (strcmp(k, "VirtualMachineInstance") == 0)
		return KIND_VMI;
	if (strcmp(k, "ControllerRevision") == 0)
		return KIND_REV;
	if (strcmp(k, "PersistentVolumeClaim") == 0)
		return KIND_PVC;
	if (strcmp(k, "DataVolume") == 0)
		return KIND_DV;
	return KIND_VM;
}

/* sorts the array's objects into VMs and the others */
static void fp_split(struct fp *p, json_object *all, const char *uid)
{
	json_object *o;
	size_t i, n = json_object_array_length(all);

	const char *kind;

	for (i = 1; i < n; i++) {
		o = json_object_array_get_idx(all, i);
		if (!json_object_is_type(o, json_type_object))
			continue;
		kind = fp_kind(o);
		if (strcmp(kind, KIND_VM) == 0 && p->nvms < FP_MAX)
			p->vms[p->nvms++] = o;
		else if (strcmp(kind, KIND_VM) != 0 && p->nobjs < FP_MAX) {
			p->kinds[p->nobjs] = kind;
			p->objs[p->nobjs++] = o;
			if (strcmp(kind, KIND_REV) == 0 && revision_owned_by(o, uid))
				p->revs[p->nrevs++] = o;
		}
	}
}

/* the first pass's actions become expectations for the second */
static void fp_expect(struct expect *exp, const char *key, const struct plan_out *out)
{
	size_t i;

	for (i = 0; i < out->nacts; i++)
		if (out->acts[i].kind != EXPECT_NONE && out->acts[i].ekey != NULL)
			expect_add(exp, i + 1, key, out->acts[i].kind, out->acts[i].ekey,
			    fp_str(obj_str(out->acts[i].body, "op")), out->acts[i].rv, 1000);
}

static void fp_run(json_object *pool, json_object *all)
{
	struct fp p;
	struct plan_in in;
	struct plan_out out;
	struct store *idx = store_new();
	json_object **owned = NULL, **detached = NULL;
	const char *ns = fp_str(obj_namespace(pool)), *uid = fp_str(obj_uid(pool));
	char key[600];
	size_t i;
	int pass;

	memset(&p, 0, sizeof p);
	memset(&in, 0, sizeof in);
	memset(&out, 0, sizeof out);
	fp_split(&p, all, uid);
	for (i = 0; i < p.nvms; i++)
		json_object_put(store_put(idx, KIND_VM, json_object_get(p.vms[i])));
	snprintf(key, sizeof key, "%s/%s", ns, fp_str(obj_name(pool)));
	in.pool = pool;
	in.key = key;
	in.nowned = planrun_owned(idx, ns, uid, &owned);
	in.ndetached = planrun_detached(idx, ns, &detached);
	in.owned = owned;
	in.detached = detached;
	in.name_used = fp_name_used;
	in.name_arg = &p;
	in.get = fp_get;
	in.get_arg = &p;
	in.removed = fp_removed;
	in.revs = p.revs;
	in.nrevs = p.nrevs;
	in.exp = expect_new(EXPECT_TTL);
	in.burst = BURST_DEFAULT;
	in.create_room = -1;
	in.seed = 42;
	in.now = 1000;
	in.wallnow = 1.7e9;
	in.warned_gen = -1;
	for (pass = 0; pass < 2; pass++) {
		plan_pool(&in, &out);
		fp_expect(in.exp, key, &out);
		plan_out_clear(&out);
	}
	expect_free(in.exp);
	free(owned);
	free(detached);
	store_free(idx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_tokener *tok;
	json_object *all, *pool;

	if (size > 256 * 1024)
		return 0;
	tok = json_tokener_new_ex(64);
	all = json_tokener_parse_ex(tok, (const char *)data, (int)size);
	json_tokener_free(tok);
	if (all == NULL)
		return 0;
	if (json_object_is_type(all, json_type_array) && json_object_array_length(all) > 0) {
		pool = json_object_array_get_idx(all, 0);
		fp_run(json_object_is_type(pool, json_type_object) ? pool : NULL, all);
	}
	json_object_put(all);
	return 0;
}

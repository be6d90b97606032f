/* planfx.c: the planning-pass fixture (see planfx.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../planner/policy.h"
#include "obj.h"
#include "planfx.h"
#include "proto.h"

json_object *fx_parse(const char *fmt, ...)
{
	char buf[8192];
	va_list ap;
	json_object *o;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	o = json_tokener_parse(buf);
	if (o == NULL)
		fail_msg("bad test json: %s", buf);
	return o;
}

/* replicas "" means absent; meta is extra metadata fields (with a trailing comma) */
json_object *fx_mkpool(
    const char *replicas, const char *meta, const char *selector, const char *tlabels)
{
	return fx_parse(
	    "{\"apiVersion\":\"pool.kubevirt.io/v1beta1\",\"kind\":\"VirtualMachinePool\","
	    "\"metadata\":{%s\"name\":\"p\",\"namespace\":\"ns\",\"uid\":\"" UID "\","
	    "\"resourceVersion\":\"10\",\"generation\":2},"
	    "\"spec\":{%s%s%s\"selector\":%s,\"virtualMachineTemplate\":{\"metadata\":"
	    "{\"labels\":%s},\"spec\":{\"template\":{\"spec\":{\"domain\":{}}}}}}}",
	    meta, *replicas ? "\"replicas\":" : "", replicas, *replicas ? "," : "", selector,
	    tlabels);
}

json_object *fx_stdpool(const char *replicas)
{
	return fx_mkpool(replicas, "\"finalizers\":[\"" POOL_FINALIZER "\"],",
	    "{\"matchLabels\":{\"app\":\"a\"}}", "{\"app\":\"a\"}");
}

/* a VM in ns; extra = more metadata fields with a trailing comma */
void fx_addvm(struct fx *f, const char *name, const char *extra, const char *labels)
{
	f->vms[f->nvms++] = fx_parse("{\"metadata\":{%s\"name\":\"%s\",\"namespace\":\"ns\","
	                             "\"uid\":\"uid-%s\",\"resourceVersion\":\"5\",\"labels\":%s}}",
	    extra, name, name, labels);
}

/* an owned VM of the current revision (generation 2) */
void fx_ownvm(struct fx *f, const char *name)
{
	fx_addvm(f, name, OWNREF FIN, "{\"app\":\"a\",\"" REVISION_LABEL "\":\"p-2\"}");
}

void fx_addobj(struct fx *f, const char *kind, json_object *o)
{
	char uid[300];

	/* objects built here (revisions) have no uid until the API gives them one */
	if (obj_uid(o) == NULL) {
		snprintf(uid, sizeof(uid), "uid-%s-%s", kind, obj_name(o));
		json_object_object_add(obj_path(o, "metadata"), "uid", json_object_new_string(uid));
	}

	f->kinds[f->nobjs] = kind;
	f->objs[f->nobjs++] = o;
}

json_object *fx_get(const char *kind, const char *ns, const char *name, void *arg)
{
	struct fx *f = arg;
	size_t i;

	for (i = 0; i < f->nobjs; i++)
		if (strcmp(f->kinds[i], kind) == 0 && strcmp(obj_namespace(f->objs[i]), ns) == 0 &&
		    strcmp(obj_name(f->objs[i]), name) == 0)
			return f->objs[i];
	return NULL;
}

int fx_removed(const char *uid, void *arg)
{
	struct fx *f = arg;
	size_t i;

	for (i = 0; i < f->nvms; i++)
		if (f->removed[i] != 0 && strcmp(obj_uid(f->vms[i]), uid) == 0)
			return f->removed[i] - 1;
	return -1;
}

int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->exp = expect_new(EXPECT_TTL);
	*state = f;
	return 0;
}

int fx_teardown(void **state)
{
	struct fx *f = *state;
	size_t i;

	plan_out_clear(&f->out);
	json_object_put(f->pool);
	for (i = 0; i < f->nvms; i++)
		json_object_put(f->vms[i]);
	for (i = 0; i < f->nobjs; i++)
		json_object_put(f->objs[i]);
	expect_free(f->exp);
	store_free(f->idx);
	free(f->owned);
	free(f->detached);
	free(f);
	return 0;
}

/* the name lookup planrun backs with the store: any VM of the namespace counts */
int fx_name_used(const char *ns, const char *name, void *arg)
{
	struct fx *f = arg;
	size_t i;

	f->lookups++;
	for (i = 0; i < f->nvms; i++)
		if (strcmp(obj_namespace(f->vms[i]), ns) == 0 &&
		    strcmp(obj_name(f->vms[i]), name) == 0)
			return 1;
	return 0;
}

/* the VM lists as planrun hands them over: every VM of vms goes through the store's owner
 * index (each VM its own view: the store keeps the object it was given) */
void fx_index(struct fx *f)
{
	size_t i;

	store_free(f->idx);
	free(f->owned);
	free(f->detached);
	f->idx = store_new();
	for (i = 0; i < f->nvms; i++)
		json_object_put(store_put(f->idx, KIND_VM, json_object_get(f->vms[i])));
	f->in.nowned = planrun_owned(f->idx, "ns", UID, &f->owned);
	f->in.ndetached = planrun_detached(f->idx, "ns", &f->detached);
	f->in.owned = f->owned;
	f->in.detached = f->detached;
	f->in.name_used = fx_name_used;
	f->in.name_arg = f;
}

/* the pool's current revision, as the watcher would show it once created */
void fx_revisions(struct fx *f)
{
	char *name;
	size_t i;

	if (!f->no_rev && f->pool != NULL) {
		name = revision_name(f->pool);
		if (fx_get(KIND_REV, "ns", name, f) == NULL)
			fx_addobj(f, KIND_REV, revision_build(f->pool));
		free(name);
	}
	f->in.nrevs = 0;
	for (i = 0; i < f->nobjs; i++)
		if (strcmp(f->kinds[i], KIND_REV) == 0 && revision_owned_by(f->objs[i], UID))
			f->revs[f->in.nrevs++] = f->objs[i];
	f->in.revs = f->revs;
}

void fx_run(struct fx *f, int burst)
{
	plan_out_clear(&f->out);
	memset(&f->in, 0, sizeof(f->in));
	f->in.pool = f->pool;
	f->in.key = KEY;
	fx_index(f);
	f->in.get = fx_get;
	f->in.get_arg = f;
	f->in.removed = fx_removed;
	f->in.removed_arg = f;
	f->in.wallnow = f->wallnow > 0 ? f->wallnow : 1.7e9;
	fx_revisions(f);
	f->lookups = 0;
	f->in.exp = f->exp;
	f->in.burst = burst;
	f->in.create_room = -1;
	f->in.seed = 42;
	f->in.now = 1000;
	f->in.warned_gen = -1;
	assert_int_equal(plan_pool(&f->in, &f->out), 0);
}

size_t fx_count_op(struct fx *f, const char *op)
{
	size_t i, n = 0;

	for (i = 0; i < f->out.nacts; i++)
		if (strcmp(obj_str(f->out.acts[i].body, "op"), op) == 0)
			n++;
	return n;
}

struct plan_act *fx_nth_op(struct fx *f, const char *op, size_t nth)
{
	size_t i;

	for (i = 0; i < f->out.nacts; i++)
		if (strcmp(obj_str(f->out.acts[i].body, "op"), op) == 0 && nth-- == 0)
			return &f->out.acts[i];
	fail_msg("no %s action #%zu", op, nth);
	return NULL;
}

const char *fx_act_name(struct fx *f, const char *op, size_t nth)
{
	return obj_str(fx_nth_op(f, op, nth)->body, "name");
}

/* the patch of an action as a compact string, for exact comparison */
const char *fx_patch_str(struct plan_act *a)
{
	return json_object_to_json_string_ext(
	    obj_path(a->body, "patch"), JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

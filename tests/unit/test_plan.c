/* test_plan.c: the planning pass (planner/plan.c) driven directly, no sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../planner/planner.h"
#include "mirror.h"
#include "obj.h"
#include "proto.h"
#include "store.h"

#define UID "pool-uid-1"
#define KEY "ns/p"

struct fx {
	json_object *pool;
	json_object *vms[64];
	size_t nvms;
	struct expect *exp;
	struct plan_in in;
	struct plan_out out;
	struct vmindex *idx; /* built from vms by run(), as planrun keeps it */
	json_object **owned, **detached;
	size_t lookups; /* name_used calls in the last run */
};

static json_object *parse(const char *fmt, ...)
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
static json_object *mkpool(
    const char *replicas, const char *meta, const char *selector, const char *tlabels)
{
	return parse("{\"apiVersion\":\"pool.kubevirt.io/v1beta1\",\"kind\":\"VirtualMachinePool\","
	             "\"metadata\":{%s\"name\":\"p\",\"namespace\":\"ns\",\"uid\":\"" UID "\","
	             "\"resourceVersion\":\"10\",\"generation\":2},"
	             "\"spec\":{%s%s%s\"selector\":%s,\"virtualMachineTemplate\":{\"metadata\":"
	             "{\"labels\":%s},\"spec\":{\"template\":{\"spec\":{\"domain\":{}}}}}}}",
	    meta, *replicas ? "\"replicas\":" : "", replicas, *replicas ? "," : "", selector,
	    tlabels);
}

static json_object *stdpool(const char *replicas)
{
	return mkpool(replicas, "\"finalizers\":[\"" POOL_FINALIZER "\"],",
	    "{\"matchLabels\":{\"app\":\"a\"}}", "{\"app\":\"a\"}");
}

#define OWNREF                                                                                     \
	"\"ownerReferences\":[{\"apiVersion\":\"pool.kubevirt.io/v1beta1\",\"kind\":"              \
	"\"VirtualMachinePool\",\"name\":\"p\",\"uid\":\"" UID "\",\"controller\":true}],"
#define FIN  "\"finalizers\":[\"" POOL_FINALIZER "\"],"
#define TERM "\"deletionTimestamp\":\"2024-01-01T00:00:00Z\","

/* a VM in ns; extra = more metadata fields with a trailing comma */
static void addvm(struct fx *f, const char *name, const char *extra, const char *labels)
{
	f->vms[f->nvms++] = parse("{\"metadata\":{%s\"name\":\"%s\",\"namespace\":\"ns\","
	                          "\"uid\":\"uid-%s\",\"resourceVersion\":\"5\",\"labels\":%s}}",
	    extra, name, name, labels);
}

static void ownvm(struct fx *f, const char *name)
{
	addvm(f, name, OWNREF FIN, "{\"app\":\"a\"}");
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->exp = expect_new(EXPECT_TTL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	size_t i;

	plan_out_clear(&f->out);
	json_object_put(f->pool);
	for (i = 0; i < f->nvms; i++)
		json_object_put(f->vms[i]);
	expect_free(f->exp);
	vmindex_free(f->idx);
	free(f->owned);
	free(f->detached);
	free(f);
	return 0;
}

/* the name lookup planrun backs with the store: any VM of the namespace counts */
static int fx_name_used(const char *ns, const char *name, void *arg)
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

/* the VM lists as planrun hands them over: every VM of vms goes through the index */
static void fx_index(struct fx *f)
{
	size_t i;

	vmindex_free(f->idx);
	free(f->owned);
	free(f->detached);
	f->idx = vmindex_new();
	for (i = 0; i < f->nvms; i++)
		vmindex_update(f->idx, NULL, f->vms[i]);
	f->in.nowned = vmindex_owned(f->idx, "ns", UID, &f->owned);
	f->in.ndetached = vmindex_detached(f->idx, "ns", &f->detached);
	f->in.owned = f->owned;
	f->in.detached = f->detached;
	f->in.name_used = fx_name_used;
	f->in.name_arg = f;
}

static void run(struct fx *f, int burst)
{
	plan_out_clear(&f->out);
	memset(&f->in, 0, sizeof(f->in));
	f->in.pool = f->pool;
	f->in.key = KEY;
	fx_index(f);
	f->lookups = 0;
	f->in.exp = f->exp;
	f->in.burst = burst;
	f->in.seed = 42;
	f->in.now = 1000;
	f->in.warned_gen = -1;
	assert_int_equal(plan_pool(&f->in, &f->out), 0);
}

static size_t count_op(struct fx *f, const char *op)
{
	size_t i, n = 0;

	for (i = 0; i < f->out.nacts; i++)
		if (strcmp(obj_str(f->out.acts[i].body, "op"), op) == 0)
			n++;
	return n;
}

static struct plan_act *nth_op(struct fx *f, const char *op, size_t nth)
{
	size_t i;

	for (i = 0; i < f->out.nacts; i++)
		if (strcmp(obj_str(f->out.acts[i].body, "op"), op) == 0 && nth-- == 0)
			return &f->out.acts[i];
	fail_msg("no %s action #%zu", op, nth);
	return NULL;
}

static const char *act_name(struct fx *f, const char *op, size_t nth)
{
	return obj_str(nth_op(f, op, nth)->body, "name");
}

/* the patch of an action as a compact string, for exact comparison */
static const char *patch_str(struct plan_act *a)
{
	return json_object_to_json_string_ext(
	    obj_path(a->body, "patch"), JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

static void test_naming_foreign_gaps(void **state)
{
	struct fx *f = *state;

	f->pool = mkpool("3", FIN, "{\"matchLabels\":{\"app\":\"a\"}}", "{\"app\":\"a\"}");
	addvm(f, "p-1", "", "{\"app\":\"x\"}");
	addvm(f, "p-3", "", "{}");
	addvm(f, "p-02", "", "{}"); /* not index 2 */
	run(f, 10);
	assert_int_equal(count_op(f, ACT_CREATE_VM), 3);
	assert_string_equal(act_name(f, ACT_CREATE_VM, 0), "p-0");
	assert_string_equal(act_name(f, ACT_CREATE_VM, 1), "p-2");
	assert_string_equal(act_name(f, ACT_CREATE_VM, 2), "p-4");
	assert_int_equal(count_op(f, ACT_PATCH_VM), 0);
	assert_int_equal(f->out.nacts, 3);
	assert_false(f->out.invalid);
}

static void test_naming_after_existing(void **state)
{
	struct fx *f = *state;
	struct plan_act *a;

	f->pool = stdpool("5");
	ownvm(f, "p-0");
	ownvm(f, "p-1");
	ownvm(f, "p-2");
	run(f, 10);
	assert_int_equal(count_op(f, ACT_CREATE_VM), 2);
	assert_string_equal(act_name(f, ACT_CREATE_VM, 0), "p-3");
	assert_string_equal(act_name(f, ACT_CREATE_VM, 1), "p-4");
	a = nth_op(f, ACT_CREATE_VM, 0);
	assert_int_equal(a->kind, EXPECT_CREATE);
	assert_string_equal(a->ekey, "p-3");
	assert_string_equal(a->reason, "FailedScaleOut");
	assert_string_equal(a->prefix, "error during scale out");
	assert_string_equal(obj_str(a->body, "body.metadata.name"), "p-3");
	assert_string_equal(obj_str(a->body, "namespace"), "ns");
	assert_string_equal(obj_str(a->body, "pool.uid"), UID);
	assert_string_equal(obj_str(a->body, "event.reason"), "SuccessfulCreate");
	assert_string_equal(obj_str(a->body, "event.message"), "Created VM ns/p-3");
	assert_string_equal(obj_str(a->body, "event.type"), "Normal");
	assert_string_equal(obj_str(a->body, "fail_event.reason"), "FailedCreate");
	assert_string_equal(obj_str(a->body, "fail_event.message"), "Error creating VM");
}

static void test_replicas_nil_is_one(void **state)
{
	struct fx *f = *state;

	f->pool = stdpool("");
	run(f, 10);
	assert_int_equal(count_op(f, ACT_CREATE_VM), 1);
	assert_string_equal(act_name(f, ACT_CREATE_VM, 0), "p-0");
	assert_int_equal(f->out.nacts, 1);
}

static void test_scale_out_burst(void **state)
{
	struct fx *f = *state;

	f->pool = stdpool("25");
	run(f, 10);
	assert_int_equal(count_op(f, ACT_CREATE_VM), 10);
	assert_string_equal(act_name(f, ACT_CREATE_VM, 9), "p-9");
	assert_int_equal(f->out.ncreate, 10);
}

static void test_expectations_gate(void **state)
{
	struct fx *f = *state;

	/* a create not yet seen in the cache holds back every scale decision */
	f->pool = stdpool("2");
	expect_add(f->exp, 1, KEY, EXPECT_CREATE, "p-0", ACT_CREATE_VM, NULL, 999);
	run(f, 10);
	assert_true(f->out.gated);
	assert_int_equal(count_op(f, ACT_CREATE_VM), 0);
}

static void test_scale_in_random(void **state)
{
	struct fx *f = *state;
	struct plan_act *a;
	char msg[128];
	size_t i;

	f->pool = stdpool("1");
	ownvm(f, "p-0");
	ownvm(f, "p-1");
	ownvm(f, "p-2");
	run(f, 10);
	assert_int_equal(count_op(f, ACT_DELETE_VM), 2);
	assert_int_equal(f->out.nacts, 2);
	assert_string_not_equal(act_name(f, ACT_DELETE_VM, 0), act_name(f, ACT_DELETE_VM, 1));
	for (i = 0; i < 2; i++) {
		a = nth_op(f, ACT_DELETE_VM, i);
		assert_int_equal(a->kind, EXPECT_DELETE);
		snprintf(msg, sizeof(msg), "uid-%s", obj_str(a->body, "name"));
		assert_string_equal(obj_str(a->body, "uid"), msg);
		assert_string_equal(a->reason, "FailedScaleIn");
		assert_string_equal(a->prefix, "error during scale in");
		snprintf(msg, sizeof(msg), "Deleted VM ns/%s with uid uid-%s from pool",
		    obj_str(a->body, "name"), obj_str(a->body, "name"));
		assert_string_equal(obj_str(a->body, "event.message"), msg);
		snprintf(msg, sizeof(msg), "Error deleting virtual machine ns/%s",
		    obj_str(a->body, "name"));
		assert_string_equal(obj_str(a->body, "fail_event.message"), msg);
		assert_string_equal(obj_str(a->body, "fail_event.reason"), "FailedDelete");
	}
}

static void test_scale_in_terminating_clamps(void **state)
{
	struct fx *f = *state;

	/* diff = 4 - 2 = 2, three already terminating: count = 2 - 3 < 0 -> nothing */
	f->pool = stdpool("2");
	addvm(f, "p-0", OWNREF FIN TERM, "{\"app\":\"a\"}");
	addvm(f, "p-1", OWNREF FIN TERM, "{\"app\":\"a\"}");
	addvm(f, "p-2", OWNREF TERM, "{\"app\":\"a\"}");
	ownvm(f, "p-3");
	run(f, 10);
	assert_int_equal(count_op(f, ACT_DELETE_VM), 0);
	assert_int_equal(count_op(f, ACT_CREATE_VM), 0);
	/* the two terminating with the finalizer lose it (Q3) */
	assert_int_equal(count_op(f, ACT_PATCH_VM), 2);
	assert_string_equal(nth_op(f, ACT_PATCH_VM, 0)->reason, "FailedScaleIn");
	assert_string_equal(
	    nth_op(f, ACT_PATCH_VM, 0)->prefix, "error during opportunistic scale in");
	assert_string_equal(patch_str(nth_op(f, ACT_PATCH_VM, 0)),
	    "[{\"op\":\"test\",\"path\":\"/metadata/finalizers\",\"value\":[\"" POOL_FINALIZER
	    "\"]},{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}]");
}

static void test_scale_in_minus_terminating(void **state)
{
	struct fx *f = *state;

	/* diff = 4 - 0 = 4, burst 3: count = 3 - 1 = 2 */
	f->pool = stdpool("0");
	addvm(f, "p-0", OWNREF TERM, "{\"app\":\"a\"}");
	ownvm(f, "p-1");
	ownvm(f, "p-2");
	ownvm(f, "p-3");
	run(f, 3);
	assert_int_equal(count_op(f, ACT_DELETE_VM), 2);
	assert_string_not_equal(act_name(f, ACT_DELETE_VM, 0), "p-0");
	assert_string_not_equal(act_name(f, ACT_DELETE_VM, 1), "p-0");
}

static void test_release(void **state)
{
	struct fx *f = *state;
	struct plan_act *a;

	f->pool = stdpool("1");
	ownvm(f, "p-0");
	addvm(f, "p-1",
	    "\"ownerReferences\":[{\"kind\":\"Other\",\"uid\":\"o1\"},{\"apiVersion\":"
	    "\"pool.kubevirt.io/v1beta1\",\"kind\":\"VirtualMachinePool\",\"name\":\"p\","
	    "\"uid\":\"" UID "\",\"controller\":true}],"
	    "\"finalizers\":[\"x\",\"" POOL_FINALIZER "\"],",
	    "{\"app\":\"other\"}");
	run(f, 10);
	/* p-1 leaves the working set: p-0 alone meets replicas 1 */
	assert_int_equal(count_op(f, ACT_CREATE_VM), 0);
	assert_int_equal(count_op(f, ACT_DELETE_VM), 0);
	assert_int_equal(count_op(f, ACT_PATCH_VM), 1);
	a = nth_op(f, ACT_PATCH_VM, 0);
	assert_string_equal(obj_str(a->body, "name"), "p-1");
	assert_string_equal(obj_str(a->body, "uid"), "uid-p-1");
	assert_int_equal(a->kind, EXPECT_PATCH);
	assert_string_equal(a->rv, "5");
	assert_string_equal(patch_str(a),
	    "[{\"op\":\"test\",\"path\":\"/metadata/ownerReferences\",\"value\":[{\"kind\":"
	    "\"Other\",\"uid\":\"o1\"},{\"apiVersion\":\"pool.kubevirt.io/v1beta1\",\"kind\":"
	    "\"VirtualMachinePool\",\"name\":\"p\",\"uid\":\"" UID "\",\"controller\":true}]},"
	    "{\"op\":\"replace\",\"path\":\"/metadata/ownerReferences\",\"value\":[{\"kind\":"
	    "\"Other\",\"uid\":\"o1\"}]},"
	    "{\"op\":\"test\",\"path\":\"/metadata/"
	    "finalizers\",\"value\":[\"x\",\"pool.kubevirt."
	    "io/finalizer\"]},"
	    "{\"op\":\"replace\",\"path\":\"/metadata/finalizers\",\"value\":[\"x\"]}]");
}

static void test_release_then_replace(void **state)
{
	struct fx *f = *state;

	f->pool = stdpool("1");
	addvm(f, "p-0", OWNREF FIN, "{\"app\":\"gone\"}");
	run(f, 10);
	assert_int_equal(count_op(f, ACT_PATCH_VM), 1);
	assert_int_equal(count_op(f, ACT_CREATE_VM), 1);
	assert_string_equal(act_name(f, ACT_CREATE_VM, 0), "p-1");
}

static void test_detached_finalizer_strip(void **state)
{
	struct fx *f = *state;

	f->pool = stdpool("0");
	addvm(f, "p-0", FIN, "{\"app\":\"a\"}"); /* detached, matches */
	addvm(f, "p-1", FIN, "{\"app\":\"b\"}"); /* detached, no match */
	addvm(f, "p-2",
	    "\"ownerReferences\":[{\"kind\":\"VirtualMachinePool\",\"uid\":\"other\","
	    "\"controller\":true}]," FIN,
	    "{\"app\":\"a\"}");                 /* another pool's */
	addvm(f, "p-3", "", "{\"app\":\"a\"}"); /* orphan, no finalizer */
	run(f, 10);
	assert_int_equal(f->out.nacts, 1);
	assert_string_equal(act_name(f, ACT_PATCH_VM, 0), "p-0");
	assert_string_equal(patch_str(nth_op(f, ACT_PATCH_VM, 0)),
	    "[{\"op\":\"test\",\"path\":\"/metadata/finalizers\",\"value\":[\"" POOL_FINALIZER
	    "\"]},{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}]");
	/* a pending patch on it holds the rule back */
	expect_add(f->exp, 7, KEY, EXPECT_PATCH, "uid-p-0", ACT_PATCH_VM, "5", 999);
	run(f, 10);
	assert_int_equal(f->out.nacts, 0);
}

static void test_pool_finalizer_add(void **state)
{
	struct fx *f = *state;
	struct plan_act *a;

	f->pool = mkpool("0", "\"finalizers\":[\"keep\"],", "{\"matchLabels\":{\"app\":\"a\"}}",
	    "{\"app\":\"a\"}");
	run(f, 10);
	assert_int_equal(f->out.nacts, 1);
	a = nth_op(f, ACT_PATCH_POOL, 0);
	assert_string_equal(obj_str(a->body, "name"), "p");
	assert_string_equal(obj_str(a->body, "uid"), UID);
	assert_string_equal(a->rv, "10");
	assert_string_equal(patch_str(a),
	    "[{\"op\":\"test\",\"path\":\"/metadata/finalizers\",\"value\":[\"keep\"]},"
	    "{\"op\":\"replace\",\"path\":\"/metadata/finalizers\",\"value\":[\"keep\","
	    "\"pool.kubevirt.io/finalizer\"]}]");
	json_object_put(f->pool);
	f->pool = mkpool("0", "", "{\"matchLabels\":{\"app\":\"a\"}}", "{\"app\":\"a\"}");
	run(f, 10);
	assert_string_equal(patch_str(nth_op(f, ACT_PATCH_POOL, 0)),
	    "[{\"op\":\"add\",\"path\":\"/metadata/finalizers\",\"value\":[\"pool.kubevirt."
	    "io/finalizer\"]}]");
}

static void test_deletion(void **state)
{
	struct fx *f = *state;

	f->pool = mkpool("5", TERM "\"finalizers\":[\"a\",\"" POOL_FINALIZER "\"],",
	    "{\"matchLabels\":{\"app\":\"a\"}}", "{\"app\":\"a\"}");
	ownvm(f, "p-0");
	addvm(f, "p-1", OWNREF FIN, "{\"app\":\"nomatch\"}"); /* no release while deleting */
	addvm(f, "p-2", OWNREF, "{\"app\":\"a\"}");
	run(f, 10);
	assert_int_equal(count_op(f, ACT_CREATE_VM), 0);
	assert_int_equal(count_op(f, ACT_PATCH_POOL), 0);
	assert_int_equal(count_op(f, ACT_PATCH_VM), 2);
	assert_string_equal(patch_str(nth_op(f, ACT_PATCH_VM, 1)),
	    "[{\"op\":\"test\",\"path\":\"/metadata/finalizers\",\"value\":[\"" POOL_FINALIZER
	    "\"]},{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}]");
	/* once no owned VM has it, the pool loses it */
	json_object_put(f->vms[0]);
	json_object_put(f->vms[1]);
	f->vms[0] = f->vms[2];
	f->nvms = 1;
	run(f, 10);
	assert_int_equal(f->out.nacts, 1);
	assert_string_equal(patch_str(nth_op(f, ACT_PATCH_POOL, 0)),
	    "[{\"op\":\"test\",\"path\":\"/metadata/finalizers\",\"value\":[\"a\",\"pool."
	    "kubevirt.io/finalizer\"]},{\"op\":\"replace\",\"path\":\"/metadata/"
	    "finalizers\",\"value\":[\"a\"]}]");
}

/* a pool whose selector no longer matches its template (no webhook stops that here) is still
 * cleaned up on deletion: the finalizers go by ownership, so it never hangs Terminating */
static void test_deletion_bad_selector(void **state)
{
	struct fx *f = *state;

	f->pool = mkpool("2", TERM "\"finalizers\":[\"" POOL_FINALIZER "\"],",
	    "{\"matchLabels\":{\"app\":\"changed\"}}", "{\"app\":\"a\"}");
	ownvm(f, "p-0");
	run(f, 10);
	assert_int_equal(count_op(f, ACT_EVENT), 0);
	assert_int_equal(count_op(f, ACT_PATCH_VM), 1);
	json_object_put(f->vms[0]);
	f->nvms = 0;
	run(f, 10);
	assert_int_equal(count_op(f, ACT_PATCH_POOL), 1);
}

static void test_no_adoption(void **state)
{
	struct fx *f = *state;

	f->pool = stdpool("1");
	addvm(f, "p-0", "", "{\"app\":\"a\"}");
	run(f, 10);
	assert_int_equal(f->out.nacts, 1);
	assert_string_equal(act_name(f, ACT_CREATE_VM, 0), "p-1");
}

static void test_selector_mismatch(void **state)
{
	struct fx *f = *state;
	struct plan_act *a;

	f->pool = mkpool("3", FIN, "{\"matchLabels\":{\"app\":\"a\"}}", "{\"app\":\"b\"}");
	run(f, 10);
	assert_true(f->out.invalid);
	assert_string_equal(f->out.reason, "InvalidSelector");
	assert_non_null(strstr(f->out.message, "selector does not match template labels"));
	assert_int_equal(f->out.nacts, 1);
	a = nth_op(f, ACT_EVENT, 0);
	assert_string_equal(obj_str(a->body, "event.type"), "Warning");
	assert_string_equal(obj_str(a->body, "event.reason"), "InvalidSelector");
	assert_string_equal(obj_str(a->body, "event.message"), f->out.message);
	assert_int_equal(f->out.warned_gen, 2);
	/* same generation: no second event, still failing */
	plan_out_clear(&f->out);
	f->in.warned_gen = 2;
	assert_int_equal(plan_pool(&f->in, &f->out), 0);
	assert_true(f->out.invalid);
	assert_int_equal(f->out.nacts, 0);
}

static void test_selector_unparsable(void **state)
{
	struct fx *f = *state;

	f->pool = mkpool("3", "",
	    "{\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"Bogus\"}]}", "{\"app\":\"a\"}");
	run(f, 10);
	assert_true(f->out.invalid);
	assert_int_equal(count_op(f, ACT_CREATE_VM), 0);
	assert_int_equal(count_op(f, ACT_PATCH_POOL), 0);
	assert_int_equal(count_op(f, ACT_EVENT), 1);
}

static void test_pool_gone(void **state)
{
	struct fx *f = *state;

	run(f, 10);
	assert_true(f->out.forget);
	assert_int_equal(f->out.nacts, 0);
}

static void test_gate_keeps_other_rules(void **state)
{
	struct fx *f = *state;

	f->pool = stdpool("3");
	addvm(f, "p-0", OWNREF FIN TERM, "{\"app\":\"a\"}");
	addvm(f, "p-1", OWNREF FIN TERM, "{\"app\":\"a\"}");
	expect_add(f->exp, 1, KEY, EXPECT_DELETE, "uid-p-9", ACT_DELETE_VM, NULL, 999);
	expect_add(f->exp, 2, KEY, EXPECT_PATCH, "uid-p-1", ACT_PATCH_VM, "5", 999);
	run(f, 10);
	assert_true(f->out.gated);
	assert_int_equal(count_op(f, ACT_CREATE_VM), 0);
	assert_int_equal(f->out.nacts, 1);
	assert_string_equal(act_name(f, ACT_PATCH_VM, 0), "p-0");
	/* past the TTL the gate opens: one create (2 owned incl. terminating, 3 desired) */
	f->in.now = 1000 + EXPECT_TTL;
	plan_out_clear(&f->out);
	assert_int_equal(plan_pool(&f->in, &f->out), 0);
	assert_false(f->out.gated);
	assert_int_equal(count_op(f, ACT_CREATE_VM), 1);
	assert_string_equal(act_name(f, ACT_CREATE_VM, 0), "p-2");
}

/* SPEC 6: names held by VMs the pass is not handed (foreign, orphan, another pool's,
 * terminating) still block their index; the lookup is what sees them */
static void test_naming_lookup_blocks(void **state)
{
	struct fx *f = *state;

	f->pool = stdpool("3");
	addvm(f, "p-0",
	    "\"ownerReferences\":[{\"kind\":\"ReplicaSet\",\"uid\":\"rs\",\"controller\":true}],",
	    "{\"app\":\"a\"}");                   /* foreign controller */
	addvm(f, "p-1", TERM, "{\"app\":\"a\"}"); /* orphan, terminating */
	addvm(f, "p-2",
	    "\"ownerReferences\":[{\"kind\":\"VirtualMachinePool\",\"uid\":\"other\","
	    "\"controller\":true}]," TERM,
	    "{\"app\":\"a\"}");    /* another pool's, terminating */
	addvm(f, "p-4", "", "{}"); /* orphan */
	run(f, 10);
	assert_int_equal(f->in.nowned, 0);
	assert_int_equal(f->in.ndetached, 0);
	assert_int_equal(count_op(f, ACT_CREATE_VM), 3);
	assert_string_equal(act_name(f, ACT_CREATE_VM, 0), "p-3");
	assert_string_equal(act_name(f, ACT_CREATE_VM, 1), "p-5");
	assert_string_equal(act_name(f, ACT_CREATE_VM, 2), "p-6");
	assert_int_equal(f->out.nacts, 3);
	assert_int_equal(f->lookups, 7); /* indices 0..6, no more */
	/* the same names in another namespace do not count */
	json_object_object_add(json_object_object_get(f->vms[0], "metadata"), "namespace",
	    json_object_new_string("x"));
	json_object_object_add(json_object_object_get(f->vms[3], "metadata"), "namespace",
	    json_object_new_string("x"));
	run(f, 10);
	assert_string_equal(act_name(f, ACT_CREATE_VM, 0), "p-0");
	assert_string_equal(act_name(f, ACT_CREATE_VM, 1), "p-3");
	assert_string_equal(act_name(f, ACT_CREATE_VM, 2), "p-4");
}

/* the index walk stops at the k-th free index: k + taken-below lookups, whatever else the
 * namespace holds */
static void test_naming_lookup_bound(void **state)
{
	struct fx *f = *state;
	char name[32];
	int i;

	f->pool = stdpool("7");
	for (i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "p-%d", i);
		ownvm(f, name);
	}
	for (i = 0; i < 40; i++) { /* another pool's VMs in the same namespace */
		snprintf(name, sizeof(name), "q-%d", i);
		addvm(f, name,
		    "\"ownerReferences\":[{\"kind\":\"VirtualMachinePool\",\"uid\":\"q-uid\","
		    "\"controller\":true}]," FIN,
		    "{\"app\":\"q\"}");
	}
	run(f, 10);
	assert_int_equal(f->in.nowned, 5);
	assert_int_equal(f->in.ndetached, 0);
	assert_int_equal(count_op(f, ACT_CREATE_VM), 2);
	assert_string_equal(act_name(f, ACT_CREATE_VM, 0), "p-5");
	assert_string_equal(act_name(f, ACT_CREATE_VM, 1), "p-6");
	assert_int_equal(f->lookups, 7);
}

static json_object *idxvm(const char *ns, const char *name, const char *uid, const char *extra)
{
	return parse("{\"metadata\":{%s\"name\":\"%s\",\"namespace\":\"%s\",\"uid\":\"%s\","
	             "\"resourceVersion\":\"5\",\"labels\":{\"app\":\"a\"}}}",
	    extra, name, ns, uid);
}

/* the names on a list, space separated, in the order the index gives them */
static const char *idxnames(size_t n, json_object **vms)
{
	static char buf[512];
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < n; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", i ? " " : "",
		    obj_name(vms[i]));
	free(vms);
	return buf;
}

static const char *owned_names(struct vmindex *x, const char *ns, const char *uid)
{
	json_object **v;
	size_t n = vmindex_owned(x, ns, uid, &v);

	return idxnames(n, v);
}

static const char *detached_names(struct vmindex *x, const char *ns)
{
	json_object **v;
	size_t n = vmindex_detached(x, ns, &v);

	return idxnames(n, v);
}

#define REF_A                                                                                      \
	"\"ownerReferences\":[{\"kind\":\"VirtualMachinePool\",\"uid\":\"A\",\"controller\":true}" \
	"],"
#define REF_B                                                                                      \
	"\"ownerReferences\":[{\"kind\":\"VirtualMachinePool\",\"uid\":\"B\",\"controller\":true}" \
	"],"

/* the index follows a controller change, a detach, a delete and a re-create */
static void test_index_detach_delete(void **state)
{
	struct vmindex *x = vmindex_new();
	json_object *v[8], *o;
	size_t i;

	(void)state;
	v[0] = idxvm("ns", "a-0", "u0", REF_A FIN);
	v[1] = idxvm("ns", "a-1", "u1", REF_A FIN);
	v[2] = idxvm("ns", "b-0", "u2", REF_B FIN);
	v[3] = idxvm("other", "a-9", "u3", REF_A FIN); /* same pool uid, another namespace */
	v[4] = idxvm("ns", "loose", "u4", FIN);        /* no controller, finalizer */
	v[5] = idxvm("ns", "plain", "u5", "");         /* no controller, no finalizer */
	for (i = 0; i < 6; i++)
		vmindex_update(x, NULL, v[i]);
	assert_int_equal(vmindex_count(x), 6);
	assert_string_equal(owned_names(x, "ns", "A"), "a-0 a-1");
	assert_string_equal(owned_names(x, "ns", "B"), "b-0");
	assert_string_equal(owned_names(x, "other", "A"), "a-9");
	assert_string_equal(detached_names(x, "ns"), "loose");
	assert_ptr_equal(vmindex_uid(x, "u5"), v[5]);
	/* a-0 moves to B: it keeps its place in the store, so it comes before b-0 */
	v[6] = idxvm("ns", "a-0", "u0", REF_B FIN);
	vmindex_update(x, v[0], v[6]);
	assert_string_equal(owned_names(x, "ns", "A"), "a-1");
	assert_string_equal(owned_names(x, "ns", "B"), "a-0 b-0");
	assert_ptr_equal(vmindex_uid(x, "u0"), v[6]);
	/* detached by hand: controller reference gone, finalizer kept */
	o = idxvm("ns", "a-1", "u1", FIN);
	vmindex_update(x, v[1], o);
	json_object_put(v[1]);
	v[1] = o;
	assert_string_equal(owned_names(x, "ns", "A"), "");
	assert_string_equal(detached_names(x, "ns"), "a-1 loose");
	/* its finalizer stripped: on no list, still known by uid */
	o = idxvm("ns", "a-1", "u1", "");
	vmindex_update(x, v[1], o);
	json_object_put(v[1]);
	v[1] = o;
	assert_string_equal(detached_names(x, "ns"), "loose");
	assert_ptr_equal(vmindex_uid(x, "u1"), v[1]);
	/* deleted (also how a snapshot's SYNC_END removal arrives) */
	vmindex_update(x, v[6], NULL);
	vmindex_update(x, v[4], NULL);
	assert_string_equal(owned_names(x, "ns", "B"), "b-0");
	assert_string_equal(detached_names(x, "ns"), "");
	assert_null(vmindex_uid(x, "u0"));
	assert_null(vmindex_uid(x, "u4"));
	assert_int_equal(vmindex_count(x), 4);
	/* re-created under the same name with a new uid: last in store order */
	v[7] = idxvm("ns", "a-0", "u7", REF_B);
	vmindex_update(x, NULL, v[7]);
	assert_string_equal(owned_names(x, "ns", "B"), "b-0 a-0");
	assert_null(vmindex_uid(x, "u0"));
	assert_ptr_equal(vmindex_uid(x, "u7"), v[7]);
	/* the index holds its own references: the caller's may go */
	for (i = 0; i < 8; i++)
		json_object_put(v[i]);
	assert_string_equal(obj_name(vmindex_uid(x, "u7")), "a-0");
	vmindex_free(x);
	vmindex_free(NULL);
}

/* a detached VM is the old owner's to clean up; once gone, its index is free again */
static void test_plan_after_detach(void **state)
{
	struct fx *f = *state;

	f->pool = stdpool("2");
	ownvm(f, "p-0");
	ownvm(f, "p-1");
	run(f, 10);
	assert_int_equal(f->out.nacts, 0);
	json_object_object_del(json_object_object_get(f->vms[1], "metadata"), "ownerReferences");
	run(f, 10);
	assert_int_equal(f->in.nowned, 1);
	assert_int_equal(f->in.ndetached, 1);
	assert_int_equal(count_op(f, ACT_PATCH_VM), 1);
	assert_string_equal(act_name(f, ACT_PATCH_VM, 0), "p-1");
	assert_int_equal(count_op(f, ACT_CREATE_VM), 1);
	assert_string_equal(act_name(f, ACT_CREATE_VM, 0), "p-2"); /* p-1 still holds its name */
	json_object_put(f->vms[1]);
	f->nvms = 1;
	run(f, 10);
	assert_int_equal(f->out.nacts, 1);
	assert_string_equal(act_name(f, ACT_CREATE_VM, 0), "p-1");
}

/* ---- the index as planrun keeps it, fed by a mirror, checked against a store scan ---- */

struct oracle {
	const char *uid; /* NULL: detached candidates */
	json_object **v;
	size_t n;
};

static void oracle_add(json_object *vm, void *arg)
{
	struct oracle *o = arg;

	if (o->uid != NULL
	        ? obj_controlled_by(vm, POOL_KIND, o->uid)
	        : obj_controller_ref(vm) == NULL && obj_has_finalizer(vm, POOL_FINALIZER))
		o->v[o->n++] = vm;
}

static void oracle_uid(json_object *vm, void *arg)
{
	assert_ptr_equal(vmindex_uid(arg, obj_uid(vm)), vm);
}

/* every list equals a filtered walk of the store, same objects in the same order */
static void oracle_check(struct store *st, struct vmindex *x)
{
	static const char *nss[] = {"n1", "n2"}, *uids[] = {"A", "B", "C", NULL};
	json_object *buf[256], **got;
	struct oracle o;
	size_t i, j, n;

	for (i = 0; i < 2; i++) {
		for (j = 0; j < 4; j++) {
			o.uid = uids[j];
			o.v = buf;
			o.n = 0;
			store_foreach_ns(st, KIND_VM, nss[i], oracle_add, &o);
			n = uids[j] ? vmindex_owned(x, nss[i], uids[j], &got)
			            : vmindex_detached(x, nss[i], &got);
			assert_int_equal(n, o.n);
			if (n > 0)
				assert_memory_equal(got, buf, n * sizeof(*got));
			free(got);
		}
	}
	store_foreach(st, KIND_VM, oracle_uid, x);
	assert_int_equal(vmindex_count(x), store_count(st, KIND_VM));
}

static unsigned int xrand(unsigned int *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void mirror_set(struct mirror *m, unsigned int *s, int rv)
{
	static const char *owners[] = {"", REF_A, REF_B,
	    "\"ownerReferences\":[{\"kind\":"
	    "\"VirtualMachinePool\",\"uid\":\"C\",\"controller\":true}],",
	    "\"ownerReferences\":[{\"kind\":\"ReplicaSet\",\"uid\":\"A\",\"controller\":true}],",
	    "\"ownerReferences\":[{\"kind\":\"VirtualMachinePool\",\"uid\":\"A\"}],"};
	unsigned int name = xrand(s) % 12, ns = 1 + xrand(s) % 2;
	json_object *b;

	/* uids are unique per name; a new one is a re-created VM of that name */
	b = parse("{\"kind\":\"vm\",\"obj\":{\"metadata\":{%s%s\"name\":\"v-%u\",\"namespace\":"
	          "\"n%u\",\"uid\":\"u%u-%u-%u\",\"resourceVersion\":\"%d\"}}}",
	    owners[xrand(s) % 6], xrand(s) % 2 ? FIN : "", name, ns, ns, name, xrand(s) % 3, rv);
	mirror_apply(m, MSG_OBJ_SET, b);
	json_object_put(b);
}

static void mirror_del(struct mirror *m, unsigned int *s)
{
	json_object *b = parse("{\"kind\":\"vm\",\"namespace\":\"n%u\",\"name\":\"v-%u\"}",
	    1 + xrand(s) % 2, xrand(s) % 12);

	mirror_apply(m, MSG_OBJ_DELETE, b);
	json_object_put(b);
}

/* sets, deletes and whole snapshots (SYNC_END drops what was not re-sent) through a mirror
 * whose changed() is planrun_changed, as in the planner */
static void test_index_mirror_exact(void **state)
{
	static const struct mirror_cb cb = {planrun_changed, NULL, NULL};
	struct planner p;
	struct mirror *m;
	unsigned int s = 12345;
	int step, k, rv = 1;

	(void)state;
	memset(&p, 0, sizeof(p));
	planrun_init(&p);
	m = mirror_new(NULL, NULL, 1 << 20, &cb, &p);
	p.mirror = m;
	for (step = 0; step < 1500; step++) {
		switch (xrand(&s) % 10) {
		case 0:
			mirror_apply(m, MSG_SYNC_BEGIN, NULL);
			for (k = (int)(xrand(&s) % 20); k > 0; k--)
				mirror_set(m, &s, rv++);
			mirror_apply(m, MSG_SYNC_END, NULL);
			break;
		case 1:
		case 2:
			mirror_del(m, &s);
			break;
		default:
			mirror_set(m, &s, rv++);
		}
		oracle_check(mirror_store(m), p.vms);
	}
	mirror_free(m);
	planrun_clear(&p);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_naming_foreign_gaps),
	    T(test_naming_after_existing),
	    T(test_replicas_nil_is_one),
	    T(test_scale_out_burst),
	    T(test_expectations_gate),
	    T(test_scale_in_random),
	    T(test_scale_in_terminating_clamps),
	    T(test_scale_in_minus_terminating),
	    T(test_release),
	    T(test_release_then_replace),
	    T(test_detached_finalizer_strip),
	    T(test_pool_finalizer_add),
	    T(test_deletion),
	    T(test_deletion_bad_selector),
	    T(test_no_adoption),
	    T(test_selector_mismatch),
	    T(test_selector_unparsable),
	    T(test_pool_gone),
	    T(test_gate_keeps_other_rules),
	    T(test_naming_lookup_blocks),
	    T(test_naming_lookup_bound),
	    T(test_index_detach_delete),
	    T(test_plan_after_detach),
	    T(test_index_mirror_exact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

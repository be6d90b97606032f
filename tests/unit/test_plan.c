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
#include "obj.h"
#include "proto.h"

#define UID "pool-uid-1"
#define KEY "ns/p"

struct fx {
	json_object *pool;
	json_object *vms[64];
	size_t nvms;
	struct expect *exp;
	struct plan_in in;
	struct plan_out out;
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
	free(f);
	return 0;
}

static void run(struct fx *f, int burst)
{
	plan_out_clear(&f->out);
	memset(&f->in, 0, sizeof(f->in));
	f->in.pool = f->pool;
	f->in.key = KEY;
	f->in.vms = f->vms;
	f->in.nvms = f->nvms;
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
	    T(test_no_adoption),
	    T(test_selector_mismatch),
	    T(test_selector_unparsable),
	    T(test_pool_gone),
	    T(test_gate_keeps_other_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

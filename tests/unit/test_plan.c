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
#include "../../planner/policy.h"
#include "../../watcher/admit.h"
#include "../support/planfx.h"
#include "mirror.h"
#include "obj.h"
#include "proto.h"
#include "store.h"

/* the managedFields reset of a VM's last patch (plan_leaving_patch) */
#define MF_RESET "{\"op\":\"add\",\"path\":\"/metadata/managedFields\",\"value\":[{}]}"

static void test_naming_foreign_gaps(void **state)
{
	struct fx *f = *state;

	f->pool = fx_mkpool("3", FIN, "{\"matchLabels\":{\"app\":\"a\"}}", "{\"app\":\"a\"}");
	fx_addvm(f, "p-1", "", "{\"app\":\"x\"}");
	fx_addvm(f, "p-3", "", "{}");
	fx_addvm(f, "p-02", "", "{}"); /* not index 2 */
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_CREATE_VM), 3);
	assert_string_equal(fx_act_name(f, ACT_CREATE_VM, 0), "p-0");
	assert_string_equal(fx_act_name(f, ACT_CREATE_VM, 1), "p-2");
	assert_string_equal(fx_act_name(f, ACT_CREATE_VM, 2), "p-4");
	assert_int_equal(fx_count_op(f, ACT_PATCH_VM), 0);
	assert_int_equal(f->out.nacts, 3);
	assert_false(f->out.invalid);
}

static void test_naming_after_existing(void **state)
{
	struct fx *f = *state;
	struct plan_act *a;

	f->pool = fx_stdpool("5");
	fx_ownvm(f, "p-0");
	fx_ownvm(f, "p-1");
	fx_ownvm(f, "p-2");
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_CREATE_VM), 2);
	assert_string_equal(fx_act_name(f, ACT_CREATE_VM, 0), "p-3");
	assert_string_equal(fx_act_name(f, ACT_CREATE_VM, 1), "p-4");
	a = fx_nth_op(f, ACT_CREATE_VM, 0);
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

	f->pool = fx_stdpool("");
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_CREATE_VM), 1);
	assert_string_equal(fx_act_name(f, ACT_CREATE_VM, 0), "p-0");
	assert_int_equal(f->out.nacts, 1);
}

static void test_scale_out_burst(void **state)
{
	struct fx *f = *state;

	f->pool = fx_stdpool("25");
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_CREATE_VM), 10);
	assert_string_equal(fx_act_name(f, ACT_CREATE_VM, 9), "p-9");
	assert_int_equal(f->out.ncreate, 10);
}

static void test_expectations_gate(void **state)
{
	struct fx *f = *state;

	/* a create not yet seen in the cache counts as a VM and keeps its name: the pass is
	 * gated (no update, no pruning) but scale-out goes on as a window of burst creates */
	f->pool = fx_stdpool("3");
	expect_add(f->exp, 1, KEY, EXPECT_CREATE, "p-0", ACT_CREATE_VM, NULL, 999);
	fx_run(f, 10);
	assert_true(f->out.gated);
	assert_int_equal(fx_count_op(f, ACT_CREATE_VM), 2);
	assert_string_equal(fx_act_name(f, ACT_CREATE_VM, 0), "p-1");
	assert_string_equal(fx_act_name(f, ACT_CREATE_VM, 1), "p-2");
	/* burst 2: one is pending, so one more goes */
	fx_run(f, 2);
	assert_int_equal(fx_count_op(f, ACT_CREATE_VM), 1);
	/* burst 1: the window is full */
	fx_run(f, 1);
	assert_true(f->out.gated);
	assert_int_equal(fx_count_op(f, ACT_CREATE_VM), 0);
	/* the slow-start window: one more create may go, and the pass says it held back */
	fx_run(f, 10);
	f->in.create_room = 1;
	plan_out_clear(&f->out);
	assert_int_equal(plan_pool(&f->in, &f->out), 0);
	assert_int_equal(fx_count_op(f, ACT_CREATE_VM), 1);
	assert_string_equal(fx_act_name(f, ACT_CREATE_VM, 0), "p-1");
	assert_true(f->out.create_held);
	/* the window is full: nothing, held back */
	f->in.create_room = 0;
	plan_out_clear(&f->out);
	assert_int_equal(plan_pool(&f->in, &f->out), 0);
	assert_int_equal(fx_count_op(f, ACT_CREATE_VM), 0);
	assert_true(f->out.create_held);
	/* room for both that are missing: nothing held back */
	f->in.create_room = 5;
	plan_out_clear(&f->out);
	assert_int_equal(plan_pool(&f->in, &f->out), 0);
	assert_int_equal(fx_count_op(f, ACT_CREATE_VM), 2);
	assert_false(f->out.create_held);
	/* a delete in flight: no create in the other direction */
	expect_add(f->exp, 2, KEY, EXPECT_DELETE, "uid-x", ACT_DELETE_VM, NULL, 999);
	fx_run(f, 10);
	assert_true(f->out.gated);
	assert_int_equal(fx_count_op(f, ACT_CREATE_VM), 0);
}

static void test_scale_in_window(void **state)
{
	struct fx *f = *state;
	size_t i;

	/* a delete not yet seen counts as terminating (SPEC 9.2 count) and its VM is never
	 * picked again: 4 VMs to 0 with burst 2 and p-0 being deleted: one more delete */
	f->pool = fx_stdpool("0");
	fx_ownvm(f, "p-0");
	fx_ownvm(f, "p-1");
	fx_ownvm(f, "p-2");
	fx_ownvm(f, "p-3");
	expect_add(f->exp, 1, KEY, EXPECT_DELETE, "uid-p-0", ACT_DELETE_VM, NULL, 999);
	fx_run(f, 2);
	assert_true(f->out.gated);
	assert_int_equal(fx_count_op(f, ACT_DELETE_VM), 1);
	assert_string_not_equal(fx_act_name(f, ACT_DELETE_VM, 0), "p-0");
	/* burst 10: the three others */
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_DELETE_VM), 3);
	for (i = 0; i < 3; i++)
		assert_string_not_equal(fx_act_name(f, ACT_DELETE_VM, i), "p-0");
	/* a create in flight: no delete in the other direction */
	expect_add(f->exp, 2, KEY, EXPECT_CREATE, "p-9", ACT_CREATE_VM, NULL, 999);
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_DELETE_VM), 0);
}

static void test_scale_in_random(void **state)
{
	struct fx *f = *state;
	struct plan_act *a;
	char msg[256];
	size_t i;

	f->pool = fx_stdpool("1");
	fx_ownvm(f, "p-0");
	fx_ownvm(f, "p-1");
	fx_ownvm(f, "p-2");
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_DELETE_VM), 2);
	assert_int_equal(f->out.nacts, 2);
	assert_string_not_equal(fx_act_name(f, ACT_DELETE_VM, 0), fx_act_name(f, ACT_DELETE_VM, 1));
	for (i = 0; i < 2; i++) {
		a = fx_nth_op(f, ACT_DELETE_VM, i);
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
		/* no preservation: the finalizer's removal rides with the DELETE, guarded by the
		 * VM's uid (the actuator sends it first), and resets the VM's managedFields */
		snprintf(msg, sizeof(msg),
		    "[{\"op\":\"test\",\"path\":\"/metadata/uid\",\"value\":\"uid-%s\"},"
		    "{\"op\":\"test\",\"path\":\"/metadata/"
		    "finalizers\",\"value\":[\"" POOL_FINALIZER
		    "\"]},{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}," MF_RESET "]",
		    obj_str(a->body, "name"));
		assert_string_equal(obj_json(obj_path(a->body, "unfinalize")), msg);
	}
}

static void test_scale_in_terminating_clamps(void **state)
{
	struct fx *f = *state;

	/* diff = 4 - 2 = 2, three already terminating: count = 2 - 3 < 0 -> nothing */
	f->pool = fx_stdpool("2");
	fx_addvm(f, "p-0", OWNREF FIN TERM, "{\"app\":\"a\"}");
	fx_addvm(f, "p-1", OWNREF FIN TERM, "{\"app\":\"a\"}");
	fx_addvm(f, "p-2", OWNREF TERM, "{\"app\":\"a\"}");
	fx_ownvm(f, "p-3");
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_DELETE_VM), 0);
	assert_int_equal(fx_count_op(f, ACT_CREATE_VM), 0);
	/* the two terminating with the finalizer lose it (Q3) */
	assert_int_equal(fx_count_op(f, ACT_PATCH_VM), 2);
	assert_string_equal(fx_nth_op(f, ACT_PATCH_VM, 0)->reason, "FailedScaleIn");
	assert_string_equal(
	    fx_nth_op(f, ACT_PATCH_VM, 0)->prefix, "error during opportunistic scale in");
	assert_string_equal(fx_patch_str(fx_nth_op(f, ACT_PATCH_VM, 0)),
	    "[{\"op\":\"test\",\"path\":\"/metadata/uid\",\"value\":\"uid-p-0\"},"
	    "{\"op\":\"test\",\"path\":\"/metadata/finalizers\",\"value\":[\"" POOL_FINALIZER
	    "\"]},{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}," MF_RESET "]");
}

/* a VM that keeps another finalizer (KubeVirt's, on a real cluster) keeps it, and its last
 * patch resets its managedFields all the same: the VM is on its way out */
#define BOTH_FINS "\"finalizers\":[\"" POOL_FINALIZER "\",\"other.io/keep\"],"
#define KEEP_PATCH(vm)                                                                             \
	"[{\"op\":\"test\",\"path\":\"/metadata/uid\",\"value\":\"uid-" vm "\"},"                  \
	"{\"op\":\"test\",\"path\":\"/metadata/finalizers\",\"value\":[\"" POOL_FINALIZER          \
	"\",\"other.io/keep\"]},{\"op\":\"replace\",\"path\":\"/metadata/finalizers\",\"value\":"  \
	"[\"other.io/keep\"]}," MF_RESET "]"
static void test_leaving_patch_other_finalizer(void **state)
{
	struct fx *f = *state;

	f->pool = fx_stdpool("0");
	fx_addvm(f, "p-0", OWNREF BOTH_FINS, "{\"app\":\"a\"}");
	fx_addvm(f, "p-1", OWNREF BOTH_FINS TERM, "{\"app\":\"a\"}");
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_DELETE_VM), 1);
	assert_int_equal(fx_count_op(f, ACT_PATCH_VM), 1);
	assert_string_equal(fx_act_name(f, ACT_DELETE_VM, 0), "p-0");
	assert_string_equal(obj_json(obj_path(fx_nth_op(f, ACT_DELETE_VM, 0)->body, "unfinalize")),
	    KEEP_PATCH("p-0"));
	assert_string_equal(fx_patch_str(fx_nth_op(f, ACT_PATCH_VM, 0)), KEEP_PATCH("p-1"));
}

static void test_scale_in_minus_terminating(void **state)
{
	struct fx *f = *state;

	/* diff = 4 - 0 = 4, burst 3: count = 3 - 1 = 2 */
	f->pool = fx_stdpool("0");
	fx_addvm(f, "p-0", OWNREF TERM, "{\"app\":\"a\"}");
	fx_ownvm(f, "p-1");
	fx_ownvm(f, "p-2");
	fx_ownvm(f, "p-3");
	fx_run(f, 3);
	assert_int_equal(fx_count_op(f, ACT_DELETE_VM), 2);
	assert_string_not_equal(fx_act_name(f, ACT_DELETE_VM, 0), "p-0");
	assert_string_not_equal(fx_act_name(f, ACT_DELETE_VM, 1), "p-0");
}

static void test_release(void **state)
{
	struct fx *f = *state;
	struct plan_act *a;

	f->pool = fx_stdpool("1");
	fx_ownvm(f, "p-0");
	fx_addvm(f, "p-1",
	    "\"ownerReferences\":[{\"kind\":\"Other\",\"uid\":\"o1\"},{\"apiVersion\":"
	    "\"pool.kubevirt.io/v1beta1\",\"kind\":\"VirtualMachinePool\",\"name\":\"p\","
	    "\"uid\":\"" UID "\",\"controller\":true}],"
	    "\"finalizers\":[\"x\",\"" POOL_FINALIZER "\"],",
	    "{\"app\":\"other\"}");
	fx_run(f, 10);
	/* p-1 leaves the working set: p-0 alone meets replicas 1 */
	assert_int_equal(fx_count_op(f, ACT_CREATE_VM), 0);
	assert_int_equal(fx_count_op(f, ACT_DELETE_VM), 0);
	assert_int_equal(fx_count_op(f, ACT_PATCH_VM), 1);
	a = fx_nth_op(f, ACT_PATCH_VM, 0);
	assert_string_equal(obj_str(a->body, "name"), "p-1");
	assert_string_equal(obj_str(a->body, "uid"), "uid-p-1");
	assert_int_equal(a->kind, EXPECT_PATCH);
	assert_string_equal(a->rv, "5");
	assert_string_equal(fx_patch_str(a),
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

	f->pool = fx_stdpool("1");
	fx_addvm(f, "p-0", OWNREF FIN, "{\"app\":\"gone\"}");
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_PATCH_VM), 1);
	assert_int_equal(fx_count_op(f, ACT_CREATE_VM), 1);
	assert_string_equal(fx_act_name(f, ACT_CREATE_VM, 0), "p-1");
}

static void test_detached_finalizer_strip(void **state)
{
	struct fx *f = *state;

	f->no_rev = 1; /* no revision to prune at 0 replicas */
	f->pool = fx_stdpool("0");
	fx_addvm(f, "p-0", FIN, "{\"app\":\"a\"}"); /* detached, matches */
	fx_addvm(f, "p-1", FIN, "{\"app\":\"b\"}"); /* detached, no match */
	fx_addvm(f, "p-2",
	    "\"ownerReferences\":[{\"kind\":\"VirtualMachinePool\",\"uid\":\"other\","
	    "\"controller\":true}]," FIN,
	    "{\"app\":\"a\"}");                    /* another pool's */
	fx_addvm(f, "p-3", "", "{\"app\":\"a\"}"); /* orphan, no finalizer */
	fx_run(f, 10);
	assert_int_equal(f->out.nacts, 1);
	assert_string_equal(fx_act_name(f, ACT_PATCH_VM, 0), "p-0");
	assert_string_equal(fx_patch_str(fx_nth_op(f, ACT_PATCH_VM, 0)),
	    "[{\"op\":\"test\",\"path\":\"/metadata/uid\",\"value\":\"uid-p-0\"},"
	    "{\"op\":\"test\",\"path\":\"/metadata/finalizers\",\"value\":[\"" POOL_FINALIZER
	    "\"]},{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}]");
	/* a pending patch on it holds the rule back */
	expect_add(f->exp, 7, KEY, EXPECT_PATCH, "uid-p-0", ACT_PATCH_VM, "5", 999);
	fx_run(f, 10);
	assert_int_equal(f->out.nacts, 0);
}

static void test_pool_finalizer_add(void **state)
{
	struct fx *f = *state;
	struct plan_act *a;

	f->no_rev = 1; /* no revision to prune at 0 replicas */
	f->pool = fx_mkpool("0", "\"finalizers\":[\"keep\"],", "{\"matchLabels\":{\"app\":\"a\"}}",
	    "{\"app\":\"a\"}");
	fx_run(f, 10);
	assert_int_equal(f->out.nacts, 1);
	a = fx_nth_op(f, ACT_PATCH_POOL, 0);
	assert_string_equal(obj_str(a->body, "name"), "p");
	assert_string_equal(obj_str(a->body, "uid"), UID);
	assert_string_equal(a->rv, "10");
	assert_string_equal(fx_patch_str(a),
	    "[{\"op\":\"test\",\"path\":\"/metadata/finalizers\",\"value\":[\"keep\"]},"
	    "{\"op\":\"replace\",\"path\":\"/metadata/finalizers\",\"value\":[\"keep\","
	    "\"pool.kubevirt.io/finalizer\"]}]");
	json_object_put(f->pool);
	f->pool = fx_mkpool("0", "", "{\"matchLabels\":{\"app\":\"a\"}}", "{\"app\":\"a\"}");
	fx_run(f, 10);
	assert_string_equal(fx_patch_str(fx_nth_op(f, ACT_PATCH_POOL, 0)),
	    "[{\"op\":\"add\",\"path\":\"/metadata/finalizers\",\"value\":[\"pool.kubevirt."
	    "io/finalizer\"]}]");
}

static void test_deletion(void **state)
{
	struct fx *f = *state;

	f->no_rev = 1;
	f->pool = fx_mkpool("5", TERM "\"finalizers\":[\"a\",\"" POOL_FINALIZER "\"],",
	    "{\"matchLabels\":{\"app\":\"a\"}}", "{\"app\":\"a\"}");
	fx_ownvm(f, "p-0");
	fx_addvm(f, "p-1", OWNREF FIN, "{\"app\":\"nomatch\"}"); /* no release while deleting */
	fx_addvm(f, "p-2", OWNREF, "{\"app\":\"a\"}");
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_CREATE_VM), 0);
	assert_int_equal(fx_count_op(f, ACT_PATCH_POOL), 0);
	assert_int_equal(fx_count_op(f, ACT_PATCH_VM), 2);
	assert_string_equal(fx_patch_str(fx_nth_op(f, ACT_PATCH_VM, 1)),
	    "[{\"op\":\"test\",\"path\":\"/metadata/uid\",\"value\":\"uid-p-1\"},"
	    "{\"op\":\"test\",\"path\":\"/metadata/finalizers\",\"value\":[\"" POOL_FINALIZER
	    "\"]},{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}]");
	/* once no owned VM has it, the pool loses it */
	json_object_put(f->vms[0]);
	json_object_put(f->vms[1]);
	f->vms[0] = f->vms[2];
	f->nvms = 1;
	fx_run(f, 10);
	assert_int_equal(f->out.nacts, 1);
	assert_string_equal(fx_patch_str(fx_nth_op(f, ACT_PATCH_POOL, 0)),
	    "[{\"op\":\"test\",\"path\":\"/metadata/finalizers\",\"value\":[\"a\",\"pool."
	    "kubevirt.io/finalizer\"]},{\"op\":\"replace\",\"path\":\"/metadata/"
	    "finalizers\",\"value\":[\"a\"]}]");
}

/* a pool whose selector no longer matches its template (no webhook stops that here) is still
 * cleaned up on deletion: the finalizers go by ownership, so it never hangs Terminating */
static void test_deletion_bad_selector(void **state)
{
	struct fx *f = *state;

	f->no_rev = 1;
	f->pool = fx_mkpool("2", TERM "\"finalizers\":[\"" POOL_FINALIZER "\"],",
	    "{\"matchLabels\":{\"app\":\"changed\"}}", "{\"app\":\"a\"}");
	fx_ownvm(f, "p-0");
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_EVENT), 0);
	assert_int_equal(fx_count_op(f, ACT_PATCH_VM), 1);
	json_object_put(f->vms[0]);
	f->nvms = 0;
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_PATCH_POOL), 1);
}

static void test_no_adoption(void **state)
{
	struct fx *f = *state;

	f->pool = fx_stdpool("1");
	fx_addvm(f, "p-0", "", "{\"app\":\"a\"}");
	fx_run(f, 10);
	assert_int_equal(f->out.nacts, 1);
	assert_string_equal(fx_act_name(f, ACT_CREATE_VM, 0), "p-1");
}

static void test_selector_mismatch(void **state)
{
	struct fx *f = *state;
	struct plan_act *a;

	f->pool = fx_mkpool("3", FIN, "{\"matchLabels\":{\"app\":\"a\"}}", "{\"app\":\"b\"}");
	fx_run(f, 10);
	assert_true(f->out.invalid);
	assert_string_equal(f->out.reason, "InvalidSelector");
	assert_non_null(strstr(f->out.message, "selector does not match template labels"));
	assert_int_equal(f->out.nacts, 1);
	a = fx_nth_op(f, ACT_EVENT, 0);
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

	f->pool = fx_mkpool("3", "",
	    "{\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"Bogus\"}]}", "{\"app\":\"a\"}");
	fx_run(f, 10);
	assert_true(f->out.invalid);
	assert_int_equal(fx_count_op(f, ACT_CREATE_VM), 0);
	assert_int_equal(fx_count_op(f, ACT_PATCH_POOL), 0);
	assert_int_equal(fx_count_op(f, ACT_EVENT), 1);
}

/* pool nests depth levels under spec.virtualMachineTemplate.metadata.annotations-like map */
static void nest_deep(json_object *pool, int depth)
{
	json_object *o = json_object_new_object(), *outer;
	int i;

	for (i = 1; i < depth; i++) {
		outer = json_object_new_object();
		json_object_object_add(outer, "x", o);
		o = outer;
	}
	json_object_object_add(obj_path(pool, "spec.virtualMachineTemplate.metadata"), "deep", o);
}

/* the watcher's stub for a pool over the nesting limit: nothing is touched, whatever the
 * replicas, and the pass fails with InvalidObject */
static void test_invalid_object_stub(void **state)
{
	static const char *replicas[] = {"1", "", "9"};
	struct fx *f = *state;
	json_object *pool;
	size_t i;

	for (i = 0; i < 3; i++) {
		pool = fx_stdpool(replicas[i]);
		nest_deep(pool, 100);
		f->pool = admit_object(KIND_POOL, pool);
		json_object_put(pool);
		assert_non_null(obj_path(f->pool, OBJ_INVALID));
		assert_null(obj_path(f->pool, "spec.virtualMachineTemplate"));
		if (i == 0) {
			fx_ownvm(f, "p-0");
			fx_ownvm(f, "p-1");
			fx_ownvm(f, "p-2");
		}
		fx_run(f, 10);
		assert_true(f->out.invalid);
		assert_string_equal(f->out.reason, REASON_INVALID_OBJECT);
		assert_non_null(strstr(f->out.message, "deeper than"));
		assert_int_equal(f->out.nacts, 0);
		plan_out_clear(&f->out);
		json_object_put(f->pool);
		f->pool = NULL;
	}
	/* being deleted: the clean-up (by uid, no template needed) still runs: the VMs'
	 * finalizers go, nothing is created or deleted */
	pool = fx_mkpool("1", FIN TERM, "{\"matchLabels\":{\"app\":\"a\"}}", "{\"app\":\"a\"}");
	nest_deep(pool, 70);
	f->pool = admit_object(KIND_POOL, pool);
	json_object_put(pool);
	fx_run(f, 10);
	assert_false(f->out.invalid);
	assert_int_equal(fx_count_op(f, ACT_PATCH_VM), 3);
	assert_int_equal(fx_count_op(f, ACT_CREATE_VM) + fx_count_op(f, ACT_DELETE_VM), 0);
}

static void test_pool_gone(void **state)
{
	struct fx *f = *state;

	fx_run(f, 10);
	assert_true(f->out.forget);
	assert_int_equal(f->out.nacts, 0);
}

static void test_gate_keeps_other_rules(void **state)
{
	struct fx *f = *state;

	f->pool = fx_stdpool("3");
	fx_addvm(f, "p-0", OWNREF FIN TERM, "{\"app\":\"a\"}");
	fx_addvm(f, "p-1", OWNREF FIN TERM, "{\"app\":\"a\"}");
	expect_add(f->exp, 1, KEY, EXPECT_DELETE, "uid-p-9", ACT_DELETE_VM, NULL, 999);
	expect_add(f->exp, 2, KEY, EXPECT_PATCH, "uid-p-1", ACT_PATCH_VM, "5", 999);
	fx_run(f, 10);
	assert_true(f->out.gated);
	assert_int_equal(fx_count_op(f, ACT_CREATE_VM), 0);
	assert_int_equal(f->out.nacts, 1);
	assert_string_equal(fx_act_name(f, ACT_PATCH_VM, 0), "p-0");
	/* past the TTL the gate opens: one create (2 owned incl. terminating, 3 desired) */
	f->in.now = 1000 + EXPECT_TTL;
	plan_out_clear(&f->out);
	assert_int_equal(plan_pool(&f->in, &f->out), 0);
	assert_false(f->out.gated);
	assert_int_equal(fx_count_op(f, ACT_CREATE_VM), 1);
	assert_string_equal(fx_act_name(f, ACT_CREATE_VM, 0), "p-2");
}

/* SPEC 6: names held by VMs the pass is not handed (foreign, orphan, another pool's,
 * terminating) still block their index; the lookup is what sees them */
static void test_naming_lookup_blocks(void **state)
{
	struct fx *f = *state;

	f->pool = fx_stdpool("3");
	fx_addvm(f, "p-0",
	    "\"ownerReferences\":[{\"kind\":\"ReplicaSet\",\"uid\":\"rs\",\"controller\":true}],",
	    "{\"app\":\"a\"}");                      /* foreign controller */
	fx_addvm(f, "p-1", TERM, "{\"app\":\"a\"}"); /* orphan, terminating */
	fx_addvm(f, "p-2",
	    "\"ownerReferences\":[{\"kind\":\"VirtualMachinePool\",\"uid\":\"other\","
	    "\"controller\":true}]," TERM,
	    "{\"app\":\"a\"}");       /* another pool's, terminating */
	fx_addvm(f, "p-4", "", "{}"); /* orphan */
	fx_run(f, 10);
	assert_int_equal(f->in.nowned, 0);
	assert_int_equal(f->in.ndetached, 0);
	assert_int_equal(fx_count_op(f, ACT_CREATE_VM), 3);
	assert_string_equal(fx_act_name(f, ACT_CREATE_VM, 0), "p-3");
	assert_string_equal(fx_act_name(f, ACT_CREATE_VM, 1), "p-5");
	assert_string_equal(fx_act_name(f, ACT_CREATE_VM, 2), "p-6");
	assert_int_equal(f->out.nacts, 3);
	assert_int_equal(f->lookups, 7); /* indices 0..6, no more */
	/* the same names in another namespace do not count */
	json_object_object_add(json_object_object_get(f->vms[0], "metadata"), "namespace",
	    json_object_new_string("x"));
	json_object_object_add(json_object_object_get(f->vms[3], "metadata"), "namespace",
	    json_object_new_string("x"));
	fx_run(f, 10);
	assert_string_equal(fx_act_name(f, ACT_CREATE_VM, 0), "p-0");
	assert_string_equal(fx_act_name(f, ACT_CREATE_VM, 1), "p-3");
	assert_string_equal(fx_act_name(f, ACT_CREATE_VM, 2), "p-4");
}

/* the index walk stops at the k-th free index: k + taken-below lookups, whatever else the
 * namespace holds */
static void test_naming_lookup_bound(void **state)
{
	struct fx *f = *state;
	char name[32];
	int i;

	f->pool = fx_stdpool("7");
	for (i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "p-%d", i);
		fx_ownvm(f, name);
	}
	for (i = 0; i < 40; i++) { /* another pool's VMs in the same namespace */
		snprintf(name, sizeof(name), "q-%d", i);
		fx_addvm(f, name,
		    "\"ownerReferences\":[{\"kind\":\"VirtualMachinePool\",\"uid\":\"q-uid\","
		    "\"controller\":true}]," FIN,
		    "{\"app\":\"q\"}");
	}
	fx_run(f, 10);
	assert_int_equal(f->in.nowned, 5);
	assert_int_equal(f->in.ndetached, 0);
	assert_int_equal(fx_count_op(f, ACT_CREATE_VM), 2);
	assert_string_equal(fx_act_name(f, ACT_CREATE_VM, 0), "p-5");
	assert_string_equal(fx_act_name(f, ACT_CREATE_VM, 1), "p-6");
	assert_int_equal(f->lookups, 7);
}

static json_object *idxvm(const char *ns, const char *name, const char *uid, const char *extra)
{
	return fx_parse("{\"metadata\":{%s\"name\":\"%s\",\"namespace\":\"%s\",\"uid\":\"%s\","
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

static const char *owned_names(struct store *x, const char *ns, const char *uid)
{
	json_object **v;
	size_t n = planrun_owned(x, ns, uid, &v);

	return idxnames(n, v);
}

static const char *detached_names(struct store *x, const char *ns)
{
	json_object **v;
	size_t n = planrun_detached(x, ns, &v);

	return idxnames(n, v);
}

#define REF_A                                                                                      \
	"\"ownerReferences\":[{\"kind\":\"VirtualMachinePool\",\"uid\":\"A\",\"controller\":true}" \
	"],"
#define REF_B                                                                                      \
	"\"ownerReferences\":[{\"kind\":\"VirtualMachinePool\",\"uid\":\"B\",\"controller\":true}" \
	"],"

/* puts vm in the store as the mirror does (taking the reference) and ends the views */
static void idxput(struct store *x, json_object *vm)
{
	json_object_put(store_put(x, KIND_VM, vm));
	store_release_views(x);
}

/* the planner's lists over the store follow a controller change, a detach, a delete and a
 * re-create */
static void test_index_detach_delete(void **state)
{
	struct store *x = store_new();
	json_object *v[8];
	size_t i;

	(void)state;
	v[0] = idxvm("ns", "a-0", "u0", REF_A FIN);
	v[1] = idxvm("ns", "a-1", "u1", REF_A FIN);
	v[2] = idxvm("ns", "b-0", "u2", REF_B FIN);
	v[3] = idxvm("other", "a-9", "u3", REF_A FIN); /* same pool uid, another namespace */
	v[4] = idxvm("ns", "loose", "u4", FIN);        /* no controller, finalizer */
	v[5] = idxvm("ns", "plain", "u5", "");         /* no controller, no finalizer */
	v[6] = idxvm("ns", "rs-0", "u6",
	    "\"ownerReferences\":[{\"kind\":\"ReplicaSet\",\"uid\":\"A\",\"controller\":true}],");
	for (i = 0; i < 7; i++)
		idxput(x, json_object_get(v[i]));
	assert_string_equal(owned_names(x, "ns", "A"), "a-0 a-1"); /* not the ReplicaSet's */
	assert_string_equal(owned_names(x, "ns", "B"), "b-0");
	assert_string_equal(owned_names(x, "other", "A"), "a-9");
	assert_string_equal(detached_names(x, "ns"), "loose");
	assert_string_equal(obj_name(store_get_uid(x, KIND_VM, "u5")), "plain");
	/* a-0 moves to B: it keeps its place in the store, so it comes before b-0 */
	idxput(x, idxvm("ns", "a-0", "u0", REF_B FIN));
	assert_string_equal(owned_names(x, "ns", "A"), "a-1");
	assert_string_equal(owned_names(x, "ns", "B"), "a-0 b-0");
	/* detached by hand: controller reference gone, finalizer kept */
	idxput(x, idxvm("ns", "a-1", "u1", FIN));
	assert_string_equal(owned_names(x, "ns", "A"), "");
	assert_string_equal(detached_names(x, "ns"), "a-1 loose");
	/* its finalizer stripped: on no list, still known by uid */
	idxput(x, idxvm("ns", "a-1", "u1", ""));
	assert_string_equal(detached_names(x, "ns"), "loose");
	assert_string_equal(obj_name(store_get_uid(x, KIND_VM, "u1")), "a-1");
	/* deleted (also how a snapshot's SYNC_END removal arrives) */
	json_object_put(store_take(x, KIND_VM, "ns", "a-0"));
	json_object_put(store_take(x, KIND_VM, "ns", "loose"));
	assert_string_equal(owned_names(x, "ns", "B"), "b-0");
	assert_string_equal(detached_names(x, "ns"), "");
	assert_null(store_get_uid(x, KIND_VM, "u0"));
	assert_null(store_get_uid(x, KIND_VM, "u4"));
	assert_int_equal(store_count(x, KIND_VM), 5);
	/* re-created under the same name with a new uid: last in store order */
	v[7] = idxvm("ns", "a-0", "u7", REF_B);
	idxput(x, json_object_get(v[7]));
	assert_string_equal(owned_names(x, "ns", "B"), "b-0 a-0");
	assert_null(store_get_uid(x, KIND_VM, "u0"));
	/* the store holds its own copies: the caller's objects may go */
	for (i = 0; i < 8; i++)
		json_object_put(v[i]);
	store_release_views(x);
	assert_string_equal(obj_name(store_get_uid(x, KIND_VM, "u7")), "a-0");
	store_free(x);
}

/* a detached VM is the old owner's to clean up; once gone, its index is free again */
static void test_plan_after_detach(void **state)
{
	struct fx *f = *state;

	f->pool = fx_stdpool("2");
	fx_ownvm(f, "p-0");
	fx_ownvm(f, "p-1");
	fx_run(f, 10);
	assert_int_equal(f->out.nacts, 0);
	json_object_object_del(json_object_object_get(f->vms[1], "metadata"), "ownerReferences");
	fx_run(f, 10);
	assert_int_equal(f->in.nowned, 1);
	assert_int_equal(f->in.ndetached, 1);
	assert_int_equal(fx_count_op(f, ACT_PATCH_VM), 1);
	assert_string_equal(fx_act_name(f, ACT_PATCH_VM, 0), "p-1");
	assert_int_equal(fx_count_op(f, ACT_CREATE_VM), 1);
	assert_string_equal(fx_act_name(f, ACT_CREATE_VM, 0), "p-2"); /* p-1 still holds its name */
	json_object_put(f->vms[1]);
	f->nvms = 1;
	fx_run(f, 10);
	assert_int_equal(f->out.nacts, 1);
	assert_string_equal(fx_act_name(f, ACT_CREATE_VM, 0), "p-1");
}

/* ---- planrun's lists from the store's indexes, fed by a mirror, checked against a walk ---- */

struct oracle {
	const char *ns;
	const char *uid; /* NULL: detached candidates */
	json_object **v;
	size_t n;
};

static void oracle_add(json_object *vm, void *arg)
{
	struct oracle *o = arg;

	if (strcmp(obj_namespace(vm), o->ns) != 0)
		return;
	if (o->uid != NULL
	        ? obj_controlled_by(vm, POOL_KIND, o->uid)
	        : obj_controller_ref(vm) == NULL && obj_has_finalizer(vm, POOL_FINALIZER))
		o->v[o->n++] = vm;
}

/* the uid index finds this VM: the same namespace and name */
static void oracle_uid(json_object *vm, void *arg)
{
	json_object *o = store_get_uid(arg, KIND_VM, obj_uid(vm));

	assert_non_null(o);
	assert_string_equal(obj_namespace(o), obj_namespace(vm));
	assert_string_equal(obj_name(o), obj_name(vm));
}

/* every list equals a filtered walk of the store, same objects in the same order (the
 * lists first: a walk hands out the views they cached) */
static void oracle_check(struct store *st)
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
			n = uids[j] ? planrun_owned(st, nss[i], uids[j], &got)
			            : planrun_detached(st, nss[i], &got);
			o.ns = nss[i];
			store_foreach(st, KIND_VM, oracle_add, &o);
			assert_int_equal(n, o.n);
			if (n > 0)
				assert_memory_equal(got, buf, n * sizeof(*got));
			free(got);
		}
	}
	store_foreach(st, KIND_VM, oracle_uid, st);
	store_release_views(st);
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
	b = fx_parse("{\"kind\":\"vm\",\"obj\":{\"metadata\":{%s%s\"name\":\"v-%u\",\"namespace\":"
	             "\"n%u\",\"uid\":\"u%u-%u-%u\",\"resourceVersion\":\"%d\"}}}",
	    owners[xrand(s) % 6], xrand(s) % 2 ? FIN : "", name, ns, ns, name, xrand(s) % 3, rv);
	mirror_apply(m, MSG_OBJ_SET, b);
	json_object_put(b);
}

static void mirror_del(struct mirror *m, unsigned int *s)
{
	json_object *b = fx_parse("{\"kind\":\"vm\",\"namespace\":\"n%u\",\"name\":\"v-%u\"}",
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
		oracle_check(mirror_store(m));
	}
	mirror_free(m);
	planrun_clear(&p);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_naming_foreign_gaps),
	    T(test_naming_after_existing),
	    T(test_replicas_nil_is_one),
	    T(test_scale_out_burst),
	    T(test_expectations_gate),
	    T(test_scale_in_window),
	    T(test_scale_in_random),
	    T(test_scale_in_terminating_clamps),
	    T(test_scale_in_minus_terminating),
	    T(test_leaving_patch_other_finalizer),
	    T(test_release),
	    T(test_release_then_replace),
	    T(test_detached_finalizer_strip),
	    T(test_pool_finalizer_add),
	    T(test_deletion),
	    T(test_deletion_bad_selector),
	    T(test_no_adoption),
	    T(test_selector_mismatch),
	    T(test_invalid_object_stub),
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

/* test_planfeat.c: the planning pass's issue-3 rules (revisions, updates, scale-in
 * strategies, state preservation, autohealing, pause, bad strategies), driven directly. */
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
#include "../support/planfx.h"
#include "obj.h"
#include "proto.h"

#define SEL    "{\"matchLabels\":{\"app\":\"a\"}}"
#define REVL   "\"" REVISION_LABEL "\""
#define READY  "\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}"
#define DOMAIN "\"domain\":{\"devices\":{}}"

/* the standard pool (generation 2) with extra spec fields (trailing comma) and a VMI
 * template spec fragment */
static json_object *pool_with(const char *replicas, const char *spec, const char *vmispec)
{
	return fx_parse("{\"metadata\":{\"finalizers\":[\"" POOL_FINALIZER "\"],\"name\":\"p\","
	                "\"namespace\":\"ns\",\"uid\":\"" UID "\",\"resourceVersion\":\"10\","
	                "\"generation\":2},\"spec\":{\"replicas\":%s,%s\"selector\":" SEL ","
	                "\"virtualMachineTemplate\":{\"metadata\":{\"labels\":{\"app\":\"a\"}},"
	                "\"spec\":{\"template\":{\"spec\":{%s}}}}}}",
	    replicas, spec, vmispec);
}

/* an earlier revision p-1 of the same pool whose template spec is vmispec, with optional
 * dataVolumeTemplates and template metadata annotations */
static void add_rev1(struct fx *f, const char *vmispec, const char *dvts, const char *annot)
{
	json_object *old =
	    fx_parse("{\"metadata\":{\"name\":\"p\",\"namespace\":\"ns\",\"uid\":\"" UID "\","
	             "\"generation\":1},\"spec\":{\"selector\":" SEL ",\"virtualMachineTemplate\":{"
	             "\"metadata\":{\"labels\":{\"app\":\"a\"}%s},\"spec\":{%s\"template\":{"
	             "\"spec\":{%s}}}}}}",
	        annot, dvts, vmispec);

	fx_addobj(f, KIND_REV, revision_build(old));
	json_object_put(old);
}

/* an owned VM labelled with revision rev, its template spec vmispec and its own status */
static void add_vm(struct fx *f, const char *name, const char *rev, const char *extra,
    const char *vmispec, const char *status)
{
	size_t i = f->nvms++;

	f->vms[i] = fx_parse(
	    "{\"metadata\":{" OWNREF FIN
	    "%s\"name\":\"%s\",\"namespace\":\"ns\",\"uid\":\"uid-%s\","
	    "\"resourceVersion\":\"5\",\"creationTimestamp\":\"2024-01-01T00:00:0%zuZ\","
	    "\"labels\":{\"app\":\"a\"," REVL ":\"%s\"}},\"spec\":{\"template\":{\"metadata\":"
	    "{\"labels\":{\"app\":\"a\"," REVL ":\"%s\"}},\"spec\":{%s}}}%s%s}",
	    extra, name, name, i % 10, rev, rev, vmispec, *status ? "," : "", status);
}

/* the VMI of a VM, started from revision rev */
static void add_vmi(struct fx *f, const char *name, const char *rev, int ready)
{
	fx_addobj(f, KIND_VMI,
	    fx_parse("{\"metadata\":{\"name\":\"%s\",\"namespace\":\"ns\",\"uid\":\"vmi-%s\","
	             "\"resourceVersion\":\"7\",\"labels\":{\"app\":\"a\"," REVL ":\"%s\"}},"
	             "\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\","
	             "\"status\":\"%s\"}]}}",
	        name, name, rev, ready ? "True" : "False"));
}

static void test_revision_before_vms(void **state)
{
	struct fx *f = *state;
	struct plan_act *a;

	f->pool = pool_with("2", "", DOMAIN);
	f->no_rev = 1;
	fx_run(f, 10);
	assert_int_equal(f->out.nacts, 1);
	a = fx_nth_op(f, ACT_CREATE_REV, 0);
	assert_int_equal(a->kind, EXPECT_CREATE_REV);
	assert_string_equal(a->ekey, "p-2");
	assert_string_equal(obj_str(a->body, "body.kind"), "ControllerRevision");
	assert_string_equal(obj_str(a->body, "body.metadata.ownerReferences.0.uid"), UID);
	assert_true(f->out.gated);
	/* the revision is seen: the VMs name it */
	f->no_rev = 0;
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_CREATE_VM), 2);
	assert_int_equal(fx_count_op(f, ACT_CREATE_REV), 0);
	a = fx_nth_op(f, ACT_CREATE_VM, 0);
	assert_non_null(strstr(obj_json(a->body), REVL ":\"p-2\""));
}

/* a same-named revision another pool (uid) owns is not ours (Q12): wait, do not create */
static void test_revision_of_other_pool(void **state)
{
	struct fx *f = *state;
	json_object *other = fx_parse("{\"metadata\":{\"name\":\"p\",\"namespace\":\"ns\","
	                              "\"uid\":\"old-uid\",\"generation\":2},\"spec\":{}}");

	f->pool = pool_with("1", "", DOMAIN);
	f->no_rev = 1;
	fx_addobj(f, KIND_REV, revision_build(other));
	json_object_put(other);
	fx_run(f, 10);
	assert_int_equal(f->out.nacts, 0);
	assert_true(f->out.requeue_after > 0);
}

static void test_paused(void **state)
{
	struct fx *f = *state;

	f->pool = pool_with("3", "\"paused\":true,", DOMAIN);
	add_vm(f, "p-0", "p-2", TERM, DOMAIN, "");
	fx_run(f, 10);
	assert_int_equal(f->out.nacts, 0); /* no scale-out, no finalizer removal */
	assert_false(f->out.invalid);
	/* a VM the pool removed itself is still cleaned up */
	f->removed[0] = 1 + PRESERVE_DISABLED;
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_PATCH_VM), 1);
}

static void test_bad_strategies(void **state)
{
	struct fx *f = *state;

	f->pool = pool_with("5",
	    "\"updateStrategy\":{\"opportunistic\":{},\"unmanaged\":{}},\"maxUnavailable\":\"1O%"
	    "\",",
	    DOMAIN);
	add_vm(f, "p-0", "p-1", "", DOMAIN, "");
	fx_run(f, 10);
	assert_true(f->out.invalid);
	assert_string_equal(f->out.reason, "InvalidSpec");
	assert_non_null(strstr(f->out.message, "spec.updateStrategy"));
	assert_non_null(strstr(f->out.message, "spec.maxUnavailable"));
	assert_int_equal(f->out.nacts, 0); /* the VMs are left alone */
}

static void test_scale_in_descending(void **state)
{
	struct fx *f = *state;
	int i;
	char name[16];

	f->pool = pool_with("2",
	    "\"scaleInStrategy\":{\"proactive\":{\"selectionPolicy\":{\"sortPolicy\":"
	    "\"DescendingOrder\"}}},",
	    DOMAIN);
	for (i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "p-%d", i);
		add_vm(f, name, "p-2", "", DOMAIN, "");
	}
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_DELETE_VM), 3);
	assert_string_equal(fx_act_name(f, ACT_DELETE_VM, 0), "p-4");
	assert_string_equal(fx_act_name(f, ACT_DELETE_VM, 1), "p-3");
	assert_string_equal(fx_act_name(f, ACT_DELETE_VM, 2), "p-2");
	assert_int_equal(fx_nth_op(f, ACT_DELETE_VM, 0)->preserve, PRESERVE_DISABLED);
	assert_int_equal(fx_nth_op(f, ACT_DELETE_VM, 0)->autoheal, 0); /* scale-in, not healing */
}

/* selectors matching fewer VMs than the surplus remove only those (Q2) */
static void test_scale_in_selector_fewer(void **state)
{
	struct fx *f = *state;

	f->pool = pool_with("1",
	    "\"scaleInStrategy\":{\"proactive\":{\"selectionPolicy\":{\"selectors\":{"
	    "\"nodeSelectorRequirementMatcher\":[{\"key\":\"zone\",\"operator\":\"In\","
	    "\"values\":[\"b\"]}]}}}},",
	    DOMAIN);
	add_vm(f, "p-0", "p-2", "", DOMAIN ",\"nodeSelector\":{\"zone\":\"a\"}", "");
	add_vm(f, "p-1", "p-2", "", DOMAIN ",\"nodeSelector\":{\"zone\":\"b\"}", "");
	add_vm(f, "p-2", "p-2", "", DOMAIN, "");
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_DELETE_VM), 1);
	assert_string_equal(fx_act_name(f, ACT_DELETE_VM, 0), "p-1");
}

static void test_scale_in_opportunistic_unmanaged(void **state)
{
	struct fx *f = *state;

	f->pool = pool_with("1", "\"scaleInStrategy\":{\"opportunistic\":{}},", DOMAIN);
	add_vm(f, "p-0", "p-2", "", DOMAIN, "");
	add_vm(f, "p-1", "p-2", "", DOMAIN, "");
	add_vm(f, "p-2", "p-2", TERM, DOMAIN, "");
	fx_run(f, 10);
	/* nothing picked; the VM someone deleted loses the finalizer even though 3 != 1 (Q3) */
	assert_int_equal(fx_count_op(f, ACT_DELETE_VM), 0);
	assert_int_equal(fx_count_op(f, ACT_PATCH_VM), 1);
	assert_string_equal(fx_act_name(f, ACT_PATCH_VM, 0), "p-2");
	json_object_put(f->pool);
	f->pool = pool_with("1", "\"scaleInStrategy\":{\"unmanaged\":{}},", DOMAIN);
	fx_run(f, 10);
	assert_int_equal(f->out.nacts, 0);
}

#define DVT_DISK "\"dataVolumeTemplates\":[{\"metadata\":{\"name\":\"disk-1\"},\"spec\":{}}],"
#define VM_OWNS_IT                                                                                 \
	"\"ownerReferences\":[{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\","     \
	"\"name\":\"p-1\",\"uid\":\"uid-p-1\",\"controller\":true}]"

/* proactive Offline: the PVC and DataVolume of the removed VM stop belonging to it, in the
 * same batch as the DELETE; the finalizer goes only once they are free */
static void test_state_preservation(void **state)
{
	struct fx *f = *state;
	struct plan_act *a;

	f->pool = pool_with("1",
	    "\"scaleInStrategy\":{\"proactive\":{\"statePreservation\":\"Offline\","
	    "\"selectionPolicy\":{\"sortPolicy\":\"DescendingOrder\"}}},",
	    DOMAIN);
	add_vm(f, "p-0", "p-2", "", DOMAIN, "");
	f->vms[f->nvms++] = fx_parse(
	    "{\"metadata\":{" OWNREF FIN "\"name\":\"p-1\",\"namespace\":"
	    "\"ns\",\"uid\":\"uid-p-1\",\"resourceVersion\":\"5\","
	    "\"labels\":{\"app\":\"a\"," REVL ":\"p-2\"}},\"spec\":{" DVT_DISK
	    "\"template\":{\"spec\":{" DOMAIN ",\"volumes\":[{\"name\":\"a\","
	    "\"dataVolume\":{\"name\":\"disk-1\"}},{\"name\":\"b\",\"persistentVolumeClaim\":"
	    "{\"claimName\":\"disk-1\"}}]}}}}");
	fx_addobj(f, KIND_PVC,
	    fx_parse("{\"metadata\":{\"name\":\"disk-1\",\"namespace\":\"ns\",\"uid\":\"pvc-1\","
	             "\"resourceVersion\":\"3\"," VM_OWNS_IT "}}"));
	fx_addobj(f, KIND_DV,
	    fx_parse("{\"metadata\":{\"name\":\"disk-1\",\"namespace\":\"ns\",\"uid\":\"dv-1\","
	             "\"resourceVersion\":\"3\"," VM_OWNS_IT "}}"));
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_DELETE_VM), 1);
	assert_string_equal(fx_act_name(f, ACT_DELETE_VM, 0), "p-1");
	assert_int_equal(fx_nth_op(f, ACT_DELETE_VM, 0)->preserve, PRESERVE_OFFLINE);
	a = fx_nth_op(f, ACT_PATCH_PVC, 0);
	assert_string_equal(fx_patch_str(a),
	    "[{\"op\":\"test\",\"path\":\"/metadata/ownerReferences\",\"value\":[{\"apiVersion\":"
	    "\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\",\"name\":\"p-1\",\"uid\":\"uid-p-1\","
	    "\"controller\":true}]},{\"op\":\"remove\",\"path\":\"/metadata/ownerReferences\"}]");
	/* each disk once, though the template and a volume both name it */
	assert_int_equal(fx_count_op(f, ACT_PATCH_DV), 1);
	assert_int_equal(fx_count_op(f, ACT_PATCH_PVC), 1);
	/* now terminating, removed by us: the disks still belong to it -> no finalizer strip */
	json_object_object_add(obj_path(f->vms[1], "metadata"), "deletionTimestamp",
	    json_object_new_string("2024-01-01T00:00:00Z"));
	f->removed[1] = 1 + PRESERVE_OFFLINE;
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_PATCH_VM), 0);
	assert_int_equal(fx_count_op(f, ACT_PATCH_PVC), 1);
	/* the disks are free: the finalizer goes */
	json_object_object_del(obj_path(f->objs[0], "metadata"), "ownerReferences");
	json_object_object_del(obj_path(f->objs[1], "metadata"), "ownerReferences");
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_PATCH_VM), 1);
	assert_int_equal(fx_count_op(f, ACT_PATCH_PVC) + fx_count_op(f, ACT_PATCH_DV), 0);
}

/* an outdated VM object is rewritten: PUT with the new revision, kept identity */
static void test_update_vm_object(void **state)
{
	struct fx *f = *state;
	struct plan_act *a;

	f->pool = pool_with("1", "", DOMAIN ",\"hostname\":\"new\"");
	add_rev1(f, DOMAIN, "", "");
	add_vm(f, "p-0", "p-1", "", DOMAIN, "");
	fx_run(f, 10);
	assert_int_equal(f->out.nacts, 1);
	a = fx_nth_op(f, ACT_UPDATE_VM, 0);
	assert_int_equal(a->kind, EXPECT_PATCH);
	assert_string_equal(obj_str(a->body, "uid"), "uid-p-0");
	assert_string_equal(obj_str(a->body, "body.metadata.resourceVersion"), "5");
	assert_string_equal(obj_str(a->body, "body.spec.template.spec.hostname"), "new");
	assert_string_equal(obj_str(a->body, "event.reason"), "SuccessfulUpdate");
	assert_string_equal(
	    obj_str(a->body, "fail_event.message"), "Error updating virtual machine p-0/ns");
	assert_string_equal(a->reason, "FailedUpdate");
	/* unmanaged: nothing */
	json_object_put(f->pool);
	f->pool = pool_with(
	    "1", "\"updateStrategy\":{\"unmanaged\":{}},", DOMAIN ",\"hostname\":\"new\"");
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_UPDATE_VM), 0);
	/* nothing uses the current revision p-2, so it goes; p-1 stays */
	assert_int_equal(fx_count_op(f, ACT_DELETE_REV), 1);
	assert_string_equal(fx_act_name(f, ACT_DELETE_REV, 0), "p-2");
}

/* current VM objects whose VMIs run an older template: restarted within maxUnavailable,
 * and a timer while one waits (Q10) */
static void test_update_vmis_budget(void **state)
{
	struct fx *f = *state;

	f->pool = pool_with("3", "\"maxUnavailable\":1,", DOMAIN ",\"hostname\":\"new\"");
	add_rev1(f, DOMAIN, "", "");
	add_vm(f, "p-0", "p-2", "", DOMAIN ",\"hostname\":\"new\"", READY);
	add_vm(f, "p-1", "p-2", "", DOMAIN ",\"hostname\":\"new\"", READY);
	add_vm(f, "p-2", "p-2", "", DOMAIN ",\"hostname\":\"new\"", READY);
	add_vmi(f, "p-0", "p-1", 1);
	add_vmi(f, "p-1", "p-1", 1);
	add_vmi(f, "p-2", "p-2", 1);
	fx_run(f, 10);
	assert_int_equal(f->out.nacts, 1);
	assert_int_equal(fx_count_op(f, ACT_DELETE_VMI), 1);
	assert_string_equal(obj_str(fx_nth_op(f, ACT_DELETE_VMI, 0)->body, "event.message"),
	    "Successfully updated resource ns/p-0");
	assert_true(f->out.requeue_after > 0);
	/* with the budget at 2 both go */
	json_object_put(f->pool);
	f->pool = pool_with("3", "\"maxUnavailable\":\"67%\",", DOMAIN ",\"hostname\":\"new\"");
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_DELETE_VMI), 2);
	assert_true(f->out.requeue_after <= 0);
}

/* a VM that is not ready goes first without using budget; a difference only in the VM's
 * own metadata relabels the VMI instead of restarting it */
static void test_update_unhealthy_and_labels(void **state)
{
	struct fx *f = *state;

	f->pool = pool_with("2", "\"maxUnavailable\":1,", DOMAIN);
	add_rev1(f, DOMAIN, "", ",\"annotations\":{\"x\":\"1\"}");
	add_vm(f, "p-0", "p-2", "", DOMAIN, "");
	add_vm(f, "p-1", "p-2", "", DOMAIN, READY);
	add_vmi(f, "p-0", "p-1", 0);
	add_vmi(f, "p-1", "p-1", 1);
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_PATCH_VMI), 1); /* p-0 unhealthy: no budget */
	assert_string_equal(fx_act_name(f, ACT_PATCH_VMI, 0), "p-0");
	assert_int_equal(fx_count_op(f, ACT_DELETE_VMI), 0);
	assert_true(f->out.requeue_after > 0); /* p-1 waits: p-0 is unavailable */
}

/* changed dataVolumeTemplates: the VM itself goes (Foreground) */
static void test_update_dvt_deletes_vm(void **state)
{
	struct fx *f = *state;
	struct plan_act *a;

	f->pool = pool_with("1", "", DOMAIN);
	add_rev1(f, DOMAIN, DVT_DISK, "");
	add_vm(f, "p-0", "p-2", "", DOMAIN, READY);
	add_vmi(f, "p-0", "p-1", 1);
	fx_run(f, 10);
	a = fx_nth_op(f, ACT_DELETE_VM, 0);
	assert_string_equal(obj_str(a->body, "propagation"), "Foreground");
	assert_int_equal(a->preserve, PRESERVE_DISABLED);
	assert_int_equal(f->out.nacts, 1);
}

/* revisions nothing uses go; the current one stays while used */
static void test_prune(void **state)
{
	struct fx *f = *state;
	struct plan_act *a;

	f->pool = pool_with("1", "", DOMAIN);
	add_rev1(f, DOMAIN ",\"hostname\":\"old\"", "", "");
	add_vm(f, "p-0", "p-2", "", DOMAIN, READY);
	add_vmi(f, "p-0", "p-2", 1);
	fx_run(f, 10);
	assert_int_equal(f->out.nacts, 1);
	a = fx_nth_op(f, ACT_DELETE_REV, 0);
	assert_string_equal(obj_str(a->body, "name"), "p-1");
	assert_string_equal(a->reason, "FailedRevisionPruning");
	/* while the VMI still runs p-1, it stays */
	json_object_object_add(
	    obj_path(f->objs[1], "metadata.labels"), REVISION_LABEL, json_object_new_string("p-1"));
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_DELETE_REV), 0);
}

/* a deleted pool removes its revisions and keeps its finalizer until they are gone */
static void test_deletion_revisions(void **state)
{
	struct fx *f = *state;

	f->pool = fx_mkpool("1", TERM FIN, SEL, "{\"app\":\"a\"}");
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_DELETE_REV), 1);
	assert_int_equal(fx_count_op(f, ACT_PATCH_POOL), 0);
}

#define FAILING                                                                                    \
	"\"status\":{\"printableStatus\":\"CrashLoopBackOff\",\"startFailure\":{"                  \
	"\"consecutiveFailCount\":%d},\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\","   \
	"\"lastProbeTime\":\"%s\"}]}"

/* failing owned VMs are removed; one that will fail later sets a timer (Q15) */
static void test_autoheal(void **state)
{
	struct fx *f = *state;
	char st[512];

	f->wallnow = 1704067200 + 60; /* 2024-01-01T00:01:00Z */
	f->pool = pool_with("2", "\"autohealing\":{\"minFailingToStartDuration\":\"2m\"},", DOMAIN);
	snprintf(st, sizeof(st), FAILING, 3, "2024-01-01T00:00:30Z");
	add_vm(f, "p-0", "p-2", "", DOMAIN, st);
	snprintf(st, sizeof(st), FAILING, 1, "2024-01-01T00:00:30Z");
	add_vm(f, "p-1", "p-2", "", DOMAIN, st);
	fx_run(f, 10);
	assert_int_equal(fx_count_op(f, ACT_DELETE_VM), 1);
	assert_string_equal(fx_act_name(f, ACT_DELETE_VM, 0), "p-0");
	/* p-1 fails 2 min after 00:00:30, i.e. 90 s from now */
	assert_true(f->out.requeue_after > 89 && f->out.requeue_after < 92);
	assert_int_equal(f->out.nacts, 1);
	/* marked, for kubevirt_vmpool_auto_healing_operations_total */
	assert_int_equal(fx_nth_op(f, ACT_DELETE_VM, 0)->autoheal, 1);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
	    T(test_revision_before_vms),
	    T(test_revision_of_other_pool),
	    T(test_paused),
	    T(test_bad_strategies),
	    T(test_scale_in_descending),
	    T(test_scale_in_selector_fewer),
	    T(test_scale_in_opportunistic_unmanaged),
	    T(test_state_preservation),
	    T(test_update_vm_object),
	    T(test_update_vmis_budget),
	    T(test_update_unhealthy_and_labels),
	    T(test_update_dvt_deletes_vm),
	    T(test_prune),
	    T(test_deletion_revisions),
	    T(test_autoheal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

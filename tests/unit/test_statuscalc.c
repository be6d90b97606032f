/* test_statuscalc.c: the pure status computation (SPEC 1.3, 1.4, 15). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "obj.h"
#include "proto.h"
#include "../../status/statuscalc.h"

#define NOW 1700000000.0 /* 2023-11-14T22:13:20Z */

static json_object *js(const char *s)
{
	json_object *o = json_tokener_parse(s);

	assert_non_null(o);
	return o;
}

static json_object *pool(const char *extra_spec, const char *status)
{
	char buf[2048];

	snprintf(buf, sizeof buf,
	    "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"p\",\"uid\":\"pu\"},"
	    "\"spec\":{\"selector\":{\"matchLabels\":{\"app\":\"a\"}}%s%s}%s%s}",
	    extra_spec[0] ? "," : "", extra_spec, status[0] ? ",\"status\":" : "", status);
	return js(buf);
}

/* a VM controlled by (kind, uid) in ns; ready "True"/"False"/NULL; terminating flag */
static json_object *vm(const char *name, const char *ns, const char *kind, const char *uid,
    const char *ready, int terminating)
{
	char buf[2048], cond[256] = "";

	if (ready != NULL)
		snprintf(cond, sizeof cond,
		    ",\"status\":{\"ready\":true,\"conditions\":[{\"type\":\"Ready\","
		    "\"status\":\"%s\"}]}",
		    ready);
	snprintf(buf, sizeof buf,
	    "{\"metadata\":{\"namespace\":\"%s\",\"name\":\"%s\",%s"
	    "\"ownerReferences\":[{\"apiVersion\":\"pool.kubevirt.io/v1beta1\",\"kind\":\"%s\","
	    "\"name\":\"p\",\"uid\":\"%s\",\"controller\":true}]}%s}",
	    ns, name, terminating ? "\"deletionTimestamp\":\"2023-01-01T00:00:00Z\"," : "", kind,
	    uid, cond);
	return js(buf);
}

static json_object *calc(
    json_object *p, json_object **vms, size_t n, const struct statuscalc_result *r)
{
	struct statuscalc_in in = {p, vms, n, r, NOW, {0, 0, 0}};

	statuscalc_tally(p, vms, n, &in.counts);
	return statuscalc_compute(&in);
}

static void put_all(json_object **v, size_t n)
{
	while (n-- > 0)
		json_object_put(v[n]);
}

static void test_counts_and_selector(void **state)
{
	json_object *p = pool("", "");
	json_object *vms[6] = {
	    vm("p-0", "ns", "VirtualMachinePool", "pu", "True", 0),
	    vm("p-1", "ns", "VirtualMachinePool", "pu", "False", 0),
	    vm("p-2", "ns", "VirtualMachinePool", "pu", "True", 1),    /* terminating */
	    vm("x-0", "ns", "VirtualMachinePool", "other", "True", 0), /* other pool */
	    vm("p-3", "ns2", "VirtualMachinePool", "pu", "True", 0),   /* other ns */
	    vm("r-0", "ns", "VirtualMachineInstanceReplicaSet", "pu", "True", 0),
	};
	json_object *st = calc(p, vms, 6, NULL);
	json_object *want = js("{\"replicas\":3,\"readyReplicas\":2,\"labelSelector\":\"app=a\"}");

	assert_true(obj_equal(st, want));
	assert_true(statuscalc_differs(p, st));
	json_object_put(want);
	json_object_put(st);
	json_object_put(p);
	put_all(vms, 6);
}

/* the traits vmpool-status's store derives once per VM give the counts the decoded VMs give */
static void test_vm_traits(void **state)
{
	json_object *vms[5] = {
	    vm("p-0", "ns", "VirtualMachinePool", "pu", "True", 0),
	    vm("p-1", "ns", "VirtualMachinePool", "pu", "False", 0),
	    vm("p-2", "ns", "VirtualMachinePool", "pu", "True", 1),
	    vm("p-3", "ns", "VirtualMachinePool", "pu", NULL, 1),
	    vm("r-0", "ns", "VirtualMachineInstanceReplicaSet", "pu", "True", 0),
	};
	json_object *mgr = js("{\"metadata\":{\"namespace\":\"ns\",\"name\":\"m\","
	                      "\"vmpooldManagers\":{\"owners\":[\"kubectl\"]}}}");
	json_object *self = js("{\"metadata\":{\"namespace\":\"ns\",\"name\":\"s\","
	                       "\"vmpooldManagers\":{\"owners\":[\"vmpoold\"]}}}");
	json_object *p = pool("", "");
	struct statuscalc_counts n = {0, 0, 0}, t;
	size_t i;

	(void)state;
	assert_int_equal(statuscalc_vm_traits(vms[0]), SC_VM_POOL | SC_VM_READY);
	assert_int_equal(statuscalc_vm_traits(vms[1]), SC_VM_POOL);
	assert_int_equal(
	    statuscalc_vm_traits(vms[2]), SC_VM_POOL | SC_VM_READY | SC_VM_TERMINATING);
	assert_int_equal(statuscalc_vm_traits(vms[3]), SC_VM_POOL | SC_VM_TERMINATING);
	assert_int_equal(statuscalc_vm_traits(vms[4]), SC_VM_READY);
	assert_int_equal(statuscalc_vm_traits(mgr), SC_VM_MANAGERS);
	assert_int_equal(statuscalc_vm_traits(self), 0); /* only vmpoold: nothing to read */
	assert_int_equal(statuscalc_traits(KIND_VM, vms[0]), SC_VM_POOL | SC_VM_READY);
	assert_int_equal(statuscalc_traits(KIND_POOL, vms[0]), 0);
	for (i = 0; i < 5; i++)
		statuscalc_count(&n, statuscalc_vm_traits(vms[i]));
	statuscalc_tally(p, vms, 5, &t);
	assert_int_equal(n.replicas, 4);
	assert_int_equal(n.ready, 2);
	assert_int_equal(n.terminating, 2);
	assert_memory_equal(&n, &t, sizeof n);
	json_object_put(mgr);
	json_object_put(self);
	json_object_put(p);
	put_all(vms, 5);
}

static void test_ready_only_condition(void **state)
{
	json_object *p = pool("", "");
	/* status.ready true but no Ready condition: not ready */
	json_object *v = js("{\"metadata\":{\"namespace\":\"ns\",\"name\":\"p-0\","
	                    "\"ownerReferences\":[{\"kind\":\"VirtualMachinePool\",\"name\":\"p\","
	                    "\"uid\":\"pu\",\"controller\":true}]},"
	                    "\"status\":{\"ready\":true,\"printableStatus\":\"Running\"}}");
	json_object *nc = js("{\"metadata\":{\"namespace\":\"ns\",\"name\":\"p-1\","
	                     "\"ownerReferences\":[{\"kind\":\"VirtualMachinePool\",\"name\":\"p\","
	                     "\"uid\":\"pu\"}]}}"); /* not a controller ref */
	json_object *vms[2] = {v, nc};
	json_object *st = calc(p, vms, 2, NULL);
	json_object *want = js("{\"replicas\":1,\"labelSelector\":\"app=a\"}");

	assert_true(obj_equal(st, want));
	json_object_put(want);
	json_object_put(st);
	json_object_put(p);
	put_all(vms, 2);
}

static void test_omitempty(void **state)
{
	json_object *p = js("{\"metadata\":{\"namespace\":\"ns\",\"name\":\"p\",\"uid\":\"pu\"},"
	                    "\"spec\":{\"selector\":{}}}");
	json_object *bad = js("{\"metadata\":{\"namespace\":\"ns\",\"name\":\"p\",\"uid\":\"pu\"},"
	                      "\"spec\":{\"selector\":{\"matchExpressions\":[{\"key\":\"a\","
	                      "\"operator\":\"Bogus\"}]}}}");
	json_object *st = calc(p, NULL, 0, NULL), *st2 = calc(bad, NULL, 0, NULL);

	assert_int_equal(json_object_object_length(st), 0);
	assert_int_equal(json_object_object_length(st2), 0);
	assert_false(statuscalc_differs(p, st)); /* absent status == {} */
	json_object_put(st);
	json_object_put(st2);
	json_object_put(p);
	json_object_put(bad);
}

static void test_failure_added(void **state)
{
	struct statuscalc_result r = {0, "FailedScaleOut", "error during scale out: boom", NULL};
	json_object *p = pool("", "{\"labelSelector\":\"app=a\"}");
	json_object *st = calc(p, NULL, 0, &r);
	json_object *want =
	    js("{\"labelSelector\":\"app=a\",\"conditions\":[{\"type\":"
	       "\"ReplicaFailure\",\"status\":\"True\",\"reason\":\"FailedScaleOut\","
	       "\"message\":\"error during scale out: boom\","
	       "\"lastTransitionTime\":\"2023-11-14T22:13:20Z\"}]}");

	assert_true(obj_equal(st, want));
	assert_true(statuscalc_differs(p, st));
	/* newly added: reported (as a Warning Event) with the sync error's reason */
	assert_non_null(statuscalc_failure_added(obj_path(p, "status"), st));
	assert_string_equal(obj_str(statuscalc_failure_added(obj_path(p, "status"), st), "reason"),
	    "FailedScaleOut");
	assert_null(statuscalc_failure_added(st, st));
	assert_null(statuscalc_failure_added(NULL, obj_path(p, "status")));
	json_object_put(want);
	json_object_put(st);
	json_object_put(p);
}

#define OLD_FAIL                                                                                   \
	"{\"labelSelector\":\"app=a\",\"conditions\":[{\"type\":\"ReplicaFailure\","               \
	"\"status\":\"True\",\"reason\":\"FailedScaleIn\",\"message\":\"first\","                  \
	"\"lastTransitionTime\":\"2020-01-01T00:00:00Z\",\"lastProbeTime\":null}]}"

static void test_failure_kept_as_is(void **state)
{
	struct statuscalc_result r = {0, "FailedScaleOut", "second", NULL};
	json_object *p = pool("", OLD_FAIL);
	json_object *st = calc(p, NULL, 0, &r), *st2 = calc(p, NULL, 0, NULL);

	/* first failure's condition kept untouched; equal -> no write */
	assert_true(obj_equal(st, obj_path(p, "status")));
	assert_false(statuscalc_differs(p, st));
	/* no result yet: conditions kept as they are */
	assert_false(statuscalc_differs(p, st2));
	json_object_put(st);
	json_object_put(st2);
	json_object_put(p);
}

static void test_failure_removed_on_ok(void **state)
{
	struct statuscalc_result r = {1, "", "", NULL};
	json_object *p = pool("", OLD_FAIL);
	json_object *st = calc(p, NULL, 0, &r);
	json_object *want = js("{\"labelSelector\":\"app=a\"}");

	assert_true(obj_equal(st, want)); /* conditions key removed when empty */
	assert_true(statuscalc_differs(p, st));
	json_object_put(want);
	json_object_put(st);
	json_object_put(p);
}

static void test_paused(void **state)
{
	struct statuscalc_result r = {1, "", "", NULL};
	json_object *p = pool("\"paused\":true", "");
	json_object *st = calc(p, NULL, 0, &r), *c, *p2, *st2, *p3, *st3;

	c = json_object_array_get_idx(obj_path(st, "conditions"), 0);
	assert_non_null(c);
	assert_string_equal(obj_str(c, "type"), "ReplicaPaused");
	assert_string_equal(obj_str(c, "status"), "True");
	assert_string_equal(obj_str(c, "reason"), "SuccessfulPaused");
	assert_string_equal(obj_str(c, "message"), "Pool controller is paused");
	assert_int_equal(statuscalc_paused_change(NULL, st), 1);

	/* already paused: kept as is, no write */
	p2 = pool("\"paused\":true", json_object_to_json_string(st));
	st2 = calc(p2, NULL, 0, &r);
	assert_false(statuscalc_differs(p2, st2));
	assert_int_equal(statuscalc_paused_change(obj_path(p2, "status"), st2), 0);

	/* unpaused: removed */
	p3 = pool("\"paused\":false", json_object_to_json_string(st));
	st3 = calc(p3, NULL, 0, &r);
	assert_null(obj_path(st3, "conditions"));
	assert_int_equal(statuscalc_paused_change(obj_path(p3, "status"), st3), -1);
	assert_true(statuscalc_differs(p3, st3));

	json_object_put(st);
	json_object_put(st2);
	json_object_put(st3);
	json_object_put(p);
	json_object_put(p2);
	json_object_put(p3);
}

static void test_equal_no_write(void **state)
{
	json_object *p =
	    pool("", "{\"readyReplicas\":1,\"replicas\":1,\"labelSelector\":\"app=a\"}");
	json_object *vms[1] = {vm("p-0", "ns", "VirtualMachinePool", "pu", "True", 0)};
	json_object *st = calc(p, vms, 1, NULL);

	assert_false(statuscalc_differs(p, st));
	json_object_put(st);
	/* the VM turns unready: a write */
	json_object_put(vms[0]);
	vms[0] = vm("p-0", "ns", "VirtualMachinePool", "pu", "False", 0);
	st = calc(p, vms, 1, NULL);
	assert_true(statuscalc_differs(p, st));
	assert_null(obj_path(st, "readyReplicas"));
	json_object_put(st);
	json_object_put(p);
	put_all(vms, 1);
}

/* the patch expected for pool p (uid pu) writing status st */
static void assert_patch(json_object *p, json_object *st, const char *want_status)
{
	json_object *patch = statuscalc_patch(p, st), *want;
	char buf[2048];

	snprintf(buf, sizeof buf,
	    "[{\"op\":\"test\",\"path\":\"/metadata/uid\",\"value\":\"pu\"},"
	    "{\"op\":\"add\",\"path\":\"/status\",\"value\":%s}]",
	    want_status);
	want = js(buf);
	assert_non_null(patch);
	if (!obj_equal(patch, want))
		fail_msg("patch %s, want %s", obj_json(patch), buf);
	json_object_put(want);
	json_object_put(patch);
}

static void test_patch_no_write_when_equal(void **state)
{
	json_object *p = pool("", "{\"replicas\":1,\"labelSelector\":\"app=a\"}");
	json_object *p0 = pool("", ""), *empty = js("{}");
	json_object *st = js("{\"labelSelector\":\"app=a\",\"replicas\":1}");

	assert_null(statuscalc_patch(p, st));
	assert_null(statuscalc_patch(p0, empty)); /* absent status == {} */
	json_object_put(st);
	json_object_put(empty);
	json_object_put(p0);
	json_object_put(p);
}

/* keys the computed status lacks disappear: the whole status is replaced */
static void test_patch_removes_keys(void **state)
{
	json_object *p = pool("", "{\"replicas\":3,\"readyReplicas\":2,\"labelSelector\":"
	                          "\"app=a\",\"conditions\":[{\"type\":\"ReplicaPaused\","
	                          "\"status\":\"True\"}]}");
	json_object *st = calc(p, NULL, 0, NULL), *p0 = pool("", ""), *st0;

	/* replicas 0, not paused: only the selector is left */
	assert_patch(p, st, "{\"labelSelector\":\"app=a\"}");
	json_object_put(st);
	st = js("{}");
	assert_patch(p, st, "{}");
	/* no status yet */
	st0 = js("{\"replicas\":2,\"labelSelector\":\"app=a\"}");
	assert_patch(p0, st0, "{\"replicas\":2,\"labelSelector\":\"app=a\"}");
	json_object_put(st0);
	json_object_put(st);
	json_object_put(p0);
	json_object_put(p);
}

/* conditions is an atomic list: the patch carries all of them, old and new */
static void test_patch_full_conditions(void **state)
{
	struct statuscalc_result r = {0, "FailedScaleOut", "boom", NULL};
	json_object *p = pool("\"paused\":true",
	    "{\"labelSelector\":\"app=a\",\"conditions\":[{\"type\":\"ReplicaPaused\","
	    "\"status\":\"True\",\"reason\":\"SuccessfulPaused\","
	    "\"lastTransitionTime\":\"2020-01-01T00:00:00Z\"}]}");
	json_object *st = calc(p, NULL, 0, &r);

	assert_patch(p, st,
	    "{\"labelSelector\":\"app=a\",\"conditions\":[{\"type\":\"ReplicaPaused\","
	    "\"status\":\"True\",\"reason\":\"SuccessfulPaused\","
	    "\"lastTransitionTime\":\"2020-01-01T00:00:00Z\"},{\"type\":\"ReplicaFailure\","
	    "\"status\":\"True\",\"reason\":\"FailedScaleOut\",\"message\":\"boom\","
	    "\"lastTransitionTime\":\"2023-11-14T22:13:20Z\"}]}");
	json_object_put(st);
	json_object_put(p);
}

/* the uid precondition: left out only when the pool has no uid; never a resourceVersion */
static void test_patch_uid(void **state)
{
	json_object *p = js("{\"metadata\":{\"name\":\"p\",\"resourceVersion\":\"7\"},"
	                    "\"status\":{\"replicas\":1}}");
	json_object *st = js("{\"replicas\":2}");
	json_object *patch = statuscalc_patch(p, st);
	json_object *want =
	    js("[{\"op\":\"add\",\"path\":\"/status\",\"value\":{\"replicas\":2}}]");

	assert_non_null(patch);
	assert_true(obj_equal(patch, want));
	assert_null(strstr(obj_json(patch), "resourceVersion"));
	json_object_put(patch);
	json_object_put(want);
	json_object_put(st);
	json_object_put(p);
}

static void test_desired(void **state)
{
	json_object *p = pool("", ""), *p2 = pool("\"replicas\":0", "");

	assert_int_equal(statuscalc_desired(p), 1);
	assert_int_equal(statuscalc_desired(p2), 0);
	json_object_put(p);
	json_object_put(p2);
}

/* the copy vmpool-status keeps of a VM gives the same status as the whole VM; VMIs and
 * revisions are not kept; of a pool what status reads, not its template */
static void test_trim(void **state)
{
	json_object *p = pool("\"replicas\":2,\"virtualMachineTemplate\":{\"spec\":{}}", "{}");
	json_object *full[4] = {
	    vm("p-0", "ns", "VirtualMachinePool", "pu", "True", 0),
	    vm("p-1", "ns", "VirtualMachinePool", "pu", "False", 0),
	    vm("p-2", "ns", "VirtualMachinePool", "pu", "True", 1),
	    vm("x-0", "ns", "VirtualMachinePool", "other", "True", 0),
	};
	json_object *trimmed[4], *a, *b, *t;
	size_t i;

	(void)state;
	json_object_object_add(
	    full[0], "spec", js("{\"runStrategy\":\"Always\",\"template\":{\"spec\":{}}}"));
	for (i = 0; i < 4; i++) {
		/* as the watcher publishes them: with a uid */
		json_object_object_add(obj_path(full[i], "metadata"), "uid",
		    json_object_new_string(obj_name(full[i])));
		trimmed[i] = statuscalc_trim("vm", full[i], NULL);
	}
	a = calc(p, full, 4, NULL);
	b = calc(p, trimmed, 4, NULL);
	assert_true(obj_equal(a, b));
	assert_null(obj_path(trimmed[0], "spec"));
	assert_null(obj_path(trimmed[0], "status.ready"));
	assert_string_equal(obj_name(trimmed[0]), "p-0");
	assert_non_null(obj_path(trimmed[2], "metadata.deletionTimestamp"));
	assert_null(statuscalc_trim("vmi", full[0], NULL));
	assert_null(statuscalc_trim("rev", full[0], NULL));
	t = statuscalc_trim("pool", p, NULL);
	json_object_put(a);
	a = calc(p, full, 4, NULL);
	json_object_put(b);
	b = calc(t, full, 4, NULL);
	assert_true(obj_equal(a, b));
	assert_null(obj_path(t, "spec.virtualMachineTemplate"));
	assert_true(obj_equal(obj_path(t, "spec.selector"), obj_path(p, "spec.selector")));
	assert_true(obj_equal(obj_path(t, "status"), obj_path(p, "status")));
	json_object_put(t);
	json_object_put(a);
	json_object_put(b);
	put_all(full, 4);
	put_all(trimmed, 4);
	json_object_put(p);
}

/* the status of condition type in st ("" when absent) and its reason */
static const char *cond_of(json_object *st, const char *type, const char **reason)
{
	json_object *c = obj_find_condition(obj_path(st, "conditions"), type);

	*reason = c != NULL && obj_str(c, "reason") != NULL ? obj_str(c, "reason") : "";
	return c != NULL && obj_str(c, "status") != NULL ? obj_str(c, "status") : "";
}

static void expect_tool(json_object *st, const char *ready, const char *ready_reason,
    const char *progressing, const char *progressing_reason)
{
	const char *r1, *r2;

	assert_string_equal(cond_of(st, "Ready", &r1), ready);
	assert_string_equal(r1, ready_reason);
	assert_string_equal(cond_of(st, "Progressing", &r2), progressing);
	assert_string_equal(r2, progressing_reason);
}

/* Ready once the planner had nothing to do and every replica exists and is ready */
static void test_ready_progressing(void **state)
{
	json_object *p = pool("\"replicas\":2", "");
	json_object *vms[3] = {vm("p-0", "ns", "VirtualMachinePool", "pu", "True", 0),
	    vm("p-1", "ns", "VirtualMachinePool", "pu", "False", 0),
	    vm("p-2", "ns", "VirtualMachinePool", "pu", "True", 1)};
	struct statuscalc_result idle = {1, "", "", ""}, up = {1, "", "", PROGRESS_SCALING_UP};
	struct statuscalc_result failed = {0, "FailedScaleOut", "boom", ""};
	struct statuscalc_result old = {1, "", "", NULL};
	json_object *st, *p2, *ready[2] = {vms[0], NULL};

	st = calc(p, vms, 2, &up); /* the planner is creating */
	expect_tool(st, "False", PROGRESS_SCALING_UP, "True", PROGRESS_SCALING_UP);
	json_object_put(st);
	st = calc(p, vms, 2, &idle); /* nothing to do, but p-1 is not ready */
	expect_tool(st, "False", "WaitingForReady", "True", "WaitingForReady");
	json_object_put(st);
	st = calc(p, vms, 3, &idle); /* a third one still terminating */
	expect_tool(st, "False", PROGRESS_SCALING_DOWN, "True", PROGRESS_SCALING_DOWN);
	json_object_put(st);
	st = calc(p, vms, 2, &failed);
	expect_tool(st, "False", "FailedScaleOut", "False", "FailedScaleOut");
	json_object_put(st);
	st = calc(p, vms, 2, &old); /* a planner that says nothing of its progress */
	assert_null(obj_find_condition(obj_path(st, "conditions"), "Ready"));
	json_object_put(st);
	ready[1] = vm("p-1", "ns", "VirtualMachinePool", "pu", "True", 0);
	st = calc(p, ready, 2, &idle);
	expect_tool(st, "True", "Ready", "False", "Complete");
	/* a second pass keeps the transition time while the status stays */
	p2 = pool("\"replicas\":2", obj_json(st));
	json_object_put(st);
	{
		struct statuscalc_in in = {p2, ready, 2, &idle, NOW + 100, {0, 0, 0}};

		statuscalc_tally(p2, ready, 2, &in.counts);
		st = statuscalc_compute(&in);
	}
	assert_string_equal(
	    obj_str(obj_find_condition(obj_path(st, "conditions"), "Ready"), "lastTransitionTime"),
	    "2023-11-14T22:13:20Z");
	assert_false(statuscalc_differs(p2, st));
	json_object_put(st);
	json_object_put(p2);
	p2 = pool("\"replicas\":2,\"paused\":true", "");
	st = calc(p2, ready, 2, &idle);
	expect_tool(st, "False", "Paused", "False", "Paused");
	json_object_put(st);
	json_object_put(p2);
	json_object_put(ready[1]);
	put_all(vms, 3);
	json_object_put(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_counts_and_selector),
	    cmocka_unit_test(test_vm_traits),
	    cmocka_unit_test(test_trim),
	    cmocka_unit_test(test_ready_only_condition),
	    cmocka_unit_test(test_omitempty),
	    cmocka_unit_test(test_failure_added),
	    cmocka_unit_test(test_failure_kept_as_is),
	    cmocka_unit_test(test_failure_removed_on_ok),
	    cmocka_unit_test(test_paused),
	    cmocka_unit_test(test_equal_no_write),
	    cmocka_unit_test(test_patch_no_write_when_equal),
	    cmocka_unit_test(test_patch_removes_keys),
	    cmocka_unit_test(test_patch_full_conditions),
	    cmocka_unit_test(test_patch_uid),
	    cmocka_unit_test(test_desired),
	    cmocka_unit_test(test_ready_progressing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_simvmi.c: the VMI simulator's pure parts (tools/simvmi.c): the VMI built from a VM
 * (labels and annotations from the template, owner reference, spec) and a VMI's state.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "obj.h"
#include "../../tools/simvmi.h"

static const char vm_json[] =
    "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\","
    "\"metadata\":{\"name\":\"p-0\",\"namespace\":\"ns\",\"uid\":\"u-1\","
    "\"labels\":{\"vm-label\":\"not-copied\"},\"annotations\":{\"vm-ann\":\"no\"}},"
    "\"spec\":{\"runStrategy\":\"Always\",\"template\":{"
    "\"metadata\":{\"labels\":{\"app\":\"x\",\"pool.kubevirt.io/revision\":\"p-1\"},"
    "\"annotations\":{\"a\":\"b\"}},"
    "\"spec\":{\"domain\":{\"devices\":{}},\"terminationGracePeriodSeconds\":0}}},"
    "\"status\":{\"printableStatus\":\"Running\"}}";

static void test_build(void **state)
{
	json_object *vm = json_tokener_parse(vm_json), *vmi, *ref, *want;

	(void)state;
	vmi = simvmi_build(vm);
	assert_non_null(vmi);
	assert_string_equal(obj_str(vmi, "apiVersion"), "kubevirt.io/v1");
	assert_string_equal(obj_str(vmi, "kind"), "VirtualMachineInstance");
	assert_string_equal(obj_name(vmi), "p-0");
	assert_string_equal(obj_namespace(vmi), "ns");
	/* labels and annotations from the template, not from the VM itself */
	want = json_tokener_parse("{\"app\":\"x\",\"pool.kubevirt.io/revision\":\"p-1\"}");
	assert_true(obj_equal(obj_path(vmi, "metadata.labels"), want));
	json_object_put(want);
	want = json_tokener_parse("{\"a\":\"b\"}");
	assert_true(obj_equal(obj_path(vmi, "metadata.annotations"), want));
	json_object_put(want);
	/* controller owner reference to the VM */
	ref = obj_controller_ref(vmi);
	assert_non_null(ref);
	assert_string_equal(obj_str(ref, "apiVersion"), "kubevirt.io/v1");
	assert_string_equal(obj_str(ref, "kind"), "VirtualMachine");
	assert_string_equal(obj_str(ref, "name"), "p-0");
	assert_string_equal(obj_str(ref, "uid"), "u-1");
	assert_true(obj_bool(ref, "blockOwnerDeletion"));
	assert_true(obj_controlled_by(vmi, "VirtualMachine", "u-1"));
	/* spec = the template's spec; no status, no runStrategy */
	assert_true(obj_equal(obj_path(vmi, "spec"), obj_path(vm, "spec.template.spec")));
	assert_null(obj_path(vmi, "status"));
	assert_null(obj_path(vmi, "spec.runStrategy"));
	/* a copy: later changes to the VM do not reach the built VMI */
	json_object_object_add(obj_path(vm, "spec.template.metadata.labels"),
	    "pool.kubevirt.io/revision", json_object_new_string("p-2"));
	assert_string_equal(json_object_get_string(json_object_object_get(
	                        obj_path(vmi, "metadata.labels"), "pool.kubevirt.io/revision")),
	    "p-1");
	json_object_put(vmi);
	json_object_put(vm);
}

static void test_build_bare(void **state)
{
	json_object *vm, *vmi;

	(void)state;
	vm = json_tokener_parse("{\"metadata\":{\"name\":\"a\",\"namespace\":\"ns\",\"uid\":\"u\"},"
	                        "\"spec\":{\"running\":true}}");
	vmi = simvmi_build(vm);
	assert_non_null(vmi);
	assert_null(obj_path(vmi, "metadata.labels"));
	assert_null(obj_path(vmi, "metadata.annotations"));
	assert_non_null(obj_path(vmi, "spec"));
	json_object_put(vmi);
	json_object_put(vm);
	vm = json_tokener_parse("{\"metadata\":{\"namespace\":\"ns\"}}");
	assert_null(simvmi_build(vm)); /* no name */
	json_object_put(vm);
}

static void test_state(void **state)
{
	json_object *vmi, *p;

	(void)state;
	assert_int_equal(simvmi_state(NULL), SIMVMI_NONE);
	vmi = json_tokener_parse("{\"metadata\":{\"name\":\"a\",\"namespace\":\"ns\"}}");
	assert_int_equal(simvmi_state(vmi), SIMVMI_STARTING);
	/* the status patch makes it ready */
	p = simvmi_status_patch(1700000000);
	json_object_object_add(vmi, "status", json_object_get(obj_path(p, "status")));
	json_object_put(p);
	assert_string_equal(obj_str(vmi, "status.phase"), "Running");
	assert_int_equal(simvmi_state(vmi), SIMVMI_READY);
	/* terminating: not ready any more */
	json_object_object_add(obj_path(vmi, "metadata"), "deletionTimestamp",
	    json_object_new_string("2024-01-01T00:00:00Z"));
	assert_int_equal(simvmi_state(vmi), SIMVMI_STARTING);
	json_object_put(vmi);
	/* Running without Ready=True is not ready */
	vmi = json_tokener_parse("{\"metadata\":{\"name\":\"a\"},\"status\":{\"phase\":\"Running\","
	                         "\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"}]}}");
	assert_int_equal(simvmi_state(vmi), SIMVMI_STARTING);
	json_object_put(vmi);
	vmi = json_tokener_parse(
	    "{\"metadata\":{\"name\":\"a\"},\"status\":{\"phase\":\"Scheduling\","
	    "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}");
	assert_int_equal(simvmi_state(vmi), SIMVMI_STARTING);
	json_object_put(vmi);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_build),
	    cmocka_unit_test(test_build_bare),
	    cmocka_unit_test(test_state),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_obj.c: dotted paths, owner references, finalizers, conditions and obj_equal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "obj.h"

static const char *vm_json =
    "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\","
    " \"metadata\":{\"name\":\"p1-0\",\"namespace\":\"default\",\"uid\":\"u-vm\","
    "  \"generation\":3,\"labels\":{\"app\":\"x\"},"
    "  \"finalizers\":[\"a.io/one\",\"pool.kubevirt.io/protect\"],"
    "  \"ownerReferences\":["
    "   {\"apiVersion\":\"v1\",\"kind\":\"Other\",\"name\":\"o\",\"uid\":\"u-o\"},"
    "   {\"apiVersion\":\"pool.kubevirt.io/v1alpha1\",\"kind\":\"VirtualMachinePool\","
    "    \"name\":\"p1\",\"uid\":\"u-pool\",\"controller\":true}]},"
    " \"spec\":{\"running\":true,\"ratio\":1.5,\"flag\":\"true\"},"
    " \"status\":{\"conditions\":["
    "   {\"type\":\"Ready\",\"status\":\"True\"},"
    "   {\"type\":\"Paused\",\"status\":\"False\"}]}}";

static int setup_vm(void **state)
{
	*state = json_tokener_parse(vm_json);
	return *state == NULL ? -1 : 0;
}

static int teardown_vm(void **state)
{
	json_object_put(*state);
	return 0;
}

static json_object *parse(const char *s)
{
	json_object *o = json_tokener_parse(s);

	assert_non_null(o);
	return o;
}

/* JSON patch paths must reach the API server unescaped ("\/" breaks kube-apiserver's
 * JSON patch), so obj_json never escapes slashes */
static void test_json_no_slash_escape(void **state)
{
	json_object *o =
	    json_tokener_parse("[{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}]");

	(void)state;
	assert_non_null(o);
	assert_string_equal(obj_json(o), "[{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}]");
	json_object_put(o);
}

static void test_paths(void **state)
{
	json_object *vm = *state;
	long long v = -1;

	assert_string_equal(obj_str(vm, "metadata.name"), "p1-0");
	assert_string_equal(obj_str(vm, "metadata.labels.app"), "x");
	assert_string_equal(obj_str(vm, "metadata.finalizers.1"), "pool.kubevirt.io/protect");
	assert_string_equal(obj_str(vm, "status.conditions.0.type"), "Ready");
	assert_null(obj_str(vm, "metadata.finalizers.2"));
	assert_null(obj_str(vm, "metadata.missing"));
	assert_null(obj_str(vm, "metadata.labels.app.deeper"));
	assert_null(obj_str(vm, "metadata.generation")); /* not a string */
	assert_null(obj_path(vm, "metadata..name"));
	assert_null(obj_path(NULL, "metadata"));
	assert_non_null(obj_path(vm, "spec"));
	assert_int_equal(obj_int(vm, "metadata.generation", &v), 0);
	assert_int_equal(v, 3);
	assert_int_equal(obj_int(vm, "spec.ratio", &v), -1);
	assert_int_equal(obj_int(vm, "metadata.name", &v), -1);
	assert_int_equal(obj_int(vm, "nope", &v), -1);
	assert_int_equal(obj_bool(vm, "spec.running"), 1);
	assert_int_equal(obj_bool(vm, "spec.flag"), 0);
	assert_int_equal(obj_bool(vm, "spec.absent"), 0);
}

static void test_metadata(void **state)
{
	json_object *vm = *state, *cs;
	char key[64];

	assert_string_equal(obj_name(vm), "p1-0");
	assert_string_equal(obj_namespace(vm), "default");
	assert_string_equal(obj_uid(vm), "u-vm");
	assert_string_equal(obj_key(vm, key, sizeof key), "default/p1-0");
	assert_int_equal(obj_terminating(vm), 0);

	cs = parse("{\"metadata\":{\"name\":\"node1\",\"deletionTimestamp\":"
	           "\"2026-01-01T00:00:00Z\"}}");
	assert_string_equal(obj_namespace(cs), "");
	assert_string_equal(obj_key(cs, key, sizeof key), "node1");
	assert_int_equal(obj_terminating(cs), 1);
	json_object_put(cs);
}

static void test_controller_ref(void **state)
{
	json_object *vm = *state, *ref, *o;

	ref = obj_controller_ref(vm);
	assert_non_null(ref);
	assert_string_equal(obj_str(ref, "name"), "p1");
	assert_int_equal(obj_controlled_by(vm, "VirtualMachinePool", "u-pool"), 1);
	assert_int_equal(obj_controlled_by(vm, "VirtualMachinePool", "u-other"), 0);
	assert_int_equal(obj_controlled_by(vm, "Other", "u-o"), 0); /* not the controller */

	/* a v1beta1 owner counts too: only kind and uid are compared */
	o = parse("{\"metadata\":{\"ownerReferences\":[{\"apiVersion\":"
	          "\"pool.kubevirt.io/v1beta1\",\"kind\":\"VirtualMachinePool\","
	          "\"uid\":\"u-pool\",\"controller\":true}]}}");
	assert_int_equal(obj_controlled_by(o, "VirtualMachinePool", "u-pool"), 1);
	json_object_put(o);

	o = parse("{\"metadata\":{\"ownerReferences\":[{\"kind\":\"VirtualMachinePool\","
	          "\"uid\":\"u-pool\",\"controller\":false}]}}");
	assert_null(obj_controller_ref(o));
	assert_int_equal(obj_controlled_by(o, "VirtualMachinePool", "u-pool"), 0);
	json_object_put(o);

	o = parse("{\"metadata\":{}}");
	assert_null(obj_controller_ref(o));
	json_object_put(o);
}

static void test_finalizer_condition(void **state)
{
	json_object *vm = *state, *c;

	assert_int_equal(obj_has_finalizer(vm, "pool.kubevirt.io/protect"), 1);
	assert_int_equal(obj_has_finalizer(vm, "pool.kubevirt.io"), 0);
	c = obj_condition(vm, "Paused");
	assert_non_null(c);
	assert_string_equal(obj_str(c, "status"), "False");
	assert_null(obj_condition(vm, "Failure"));
	assert_null(obj_condition(NULL, "Ready"));
}

static void assert_equal_json(const char *a, const char *b, int want)
{
	json_object *ja = parse(a), *jb = parse(b);

	assert_int_equal(obj_equal(ja, jb), want);
	assert_int_equal(obj_equal(jb, ja), want);
	json_object_put(ja);
	json_object_put(jb);
}

static void test_equal(void **state)
{
	assert_equal_json("{\"a\":1,\"b\":{\"c\":[1,2]}}", "{\"b\":{\"c\":[1,2]},\"a\":1}", 1);
	assert_equal_json("{\"a\":1}", "{\"a\":1.0}", 1);
	assert_equal_json("{\"a\":1}", "{\"a\":1.5}", 0);
	assert_equal_json("[1,2]", "[2,1]", 0);
	assert_equal_json("[1,2]", "[1,2,3]", 0);
	assert_equal_json("{\"a\":1}", "{\"a\":1,\"b\":null}", 0);
	assert_equal_json("{\"a\":null}", "{\"a\":null}", 1);
	assert_equal_json("{\"a\":null}", "{\"b\":null}", 0);
	assert_equal_json("{\"a\":\"1\"}", "{\"a\":1}", 0);
	assert_equal_json("{\"a\":true}", "{\"a\":1}", 0);
	assert_equal_json("{\"a\":false}", "{\"a\":false}", 1);
	assert_equal_json("{\"a\":\"x\"}", "{\"a\":\"xy\"}", 0);
	assert_equal_json("{}", "[]", 0);
	assert_equal_json("9223372036854775807", "18446744073709551615", 0);
	assert_int_equal(obj_equal(NULL, NULL), 1);
}

static void test_copy(void **state)
{
	json_object *vm = *state, *copy;

	copy = obj_copy(vm);
	assert_non_null(copy);
	assert_ptr_not_equal(copy, vm);
	assert_int_equal(obj_equal(vm, copy), 1);
	json_object_object_add(
	    obj_path(copy, "metadata.labels"), "app", json_object_new_string("y"));
	assert_int_equal(obj_equal(vm, copy), 0);
	assert_string_equal(obj_str(vm, "metadata.labels.app"), "x");
	json_object_put(copy);
	assert_null(obj_copy(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_json_no_slash_escape),
	    cmocka_unit_test_setup_teardown(test_paths, setup_vm, teardown_vm),
	    cmocka_unit_test_setup_teardown(test_metadata, setup_vm, teardown_vm),
	    cmocka_unit_test_setup_teardown(test_controller_ref, setup_vm, teardown_vm),
	    cmocka_unit_test_setup_teardown(test_finalizer_condition, setup_vm, teardown_vm),
	    cmocka_unit_test(test_equal),
	    cmocka_unit_test_setup_teardown(test_copy, setup_vm, teardown_vm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

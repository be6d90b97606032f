/* test_vmupdate.c: the merge of a VM update into the VM read back (actuator/vmupdate.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "obj.h"
#include "../support/planfx.h"
#include "../../actuator/vmupdate.h"

/* the VM as the API has it: fields the planner's projection never held among them */
static const char *live_json =
    "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\",\"metadata\":{"
    "\"name\":\"web-7\",\"namespace\":\"prod\",\"uid\":\"vm-7\",\"resourceVersion\":\"120\","
    "\"generation\":4,\"creationTimestamp\":\"2026-01-01T00:00:00Z\","
    "\"labels\":{\"app\":\"web\",\"user\":\"mine\"},\"annotations\":{\"old\":\"a\"},"
    "\"finalizers\":[\"pool.kubevirt.io/finalizer\",\"other/fin\"],"
    "\"ownerReferences\":[{\"kind\":\"VirtualMachinePool\",\"name\":\"web\",\"uid\":\"u-1\","
    "\"controller\":true}],\"managedFields\":[{\"manager\":\"x\"}]},"
    "\"spec\":{\"runStrategy\":\"Halted\",\"template\":{\"spec\":{\"domain\":{\"firmware\":"
    "{\"uuid\":\"uu-1\",\"serial\":\"ser-1\",\"bootloader\":{}},\"cpu\":{\"cores\":1}}}}},"
    "\"status\":{\"ready\":true}}";

/* what the planner built from the pool's template (revision_updated_vm) */
static const char *built_json =
    "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\",\"metadata\":{"
    "\"name\":\"web-7\",\"namespace\":\"prod\",\"uid\":\"vm-7\",\"resourceVersion\":\"99\","
    "\"labels\":{\"app\":\"web\",\"kubevirt.io/vm-pool-revision-name\":\"web-4\"}},"
    "\"spec\":{\"runStrategy\":\"Always\",\"template\":{\"spec\":{\"domain\":{"
    "\"cpu\":{\"cores\":2}}}}}}";

/* labels, annotations and spec from the planner; the rest, and the firmware ids, from the
 * VM read, whose resourceVersion guards the PUT */
static void test_merge(void **state)
{
	json_object *live = fx_parse("%s", live_json), *built = fx_parse("%s", built_json), *m;
	char err[256] = "";

	(void)state;
	m = vmupdate_merge(live, built, err, sizeof(err));
	assert_non_null(m);
	assert_string_equal(obj_str(m, "metadata.resourceVersion"), "120");
	assert_string_equal(obj_json(obj_path(m, "metadata.labels")),
	    "{\"app\":\"web\",\"kubevirt.io/vm-pool-revision-name\":\"web-4\"}");
	assert_null(obj_path(m, "metadata.annotations"));
	assert_true(
	    obj_equal(obj_path(m, "metadata.finalizers"), obj_path(live, "metadata.finalizers")));
	assert_true(obj_equal(
	    obj_path(m, "metadata.ownerReferences"), obj_path(live, "metadata.ownerReferences")));
	assert_true(obj_equal(
	    obj_path(m, "metadata.managedFields"), obj_path(live, "metadata.managedFields")));
	assert_string_equal(obj_str(m, "metadata.creationTimestamp"), "2026-01-01T00:00:00Z");
	assert_string_equal(obj_str(m, "spec.runStrategy"), "Always");
	assert_string_equal(
	    obj_json(obj_path(m, "spec.template.spec.domain.cpu")), "{\"cores\":2}");
	/* the firmware identity survives, the other firmware settings are the template's */
	assert_string_equal(obj_json(obj_path(m, "spec.template.spec.domain.firmware")),
	    "{\"uuid\":\"uu-1\",\"serial\":\"ser-1\"}");
	assert_null(obj_path(m, "status"));
	/* the inputs are borrowed, not changed */
	assert_string_equal(obj_str(live, "metadata.annotations.old"), "a");
	assert_null(obj_path(built, "spec.template.spec.domain.firmware"));
	json_object_put(m);
	json_object_put(live);
	json_object_put(built);
}

/* empty firmware ids are not copied; annotations of the template replace the old ones */
static void test_merge_partial(void **state)
{
	json_object *live, *built = fx_parse("%s", built_json), *m;
	char err[256] = "";

	(void)state;
	live = fx_parse("%s",
	    "{\"metadata\":{\"name\":\"web-7\",\"uid\":\"vm-7\",\"resourceVersion\":\"5\"},"
	    "\"spec\":{\"template\":{\"spec\":{\"domain\":{\"firmware\":{\"uuid\":\"\","
	    "\"serial\":\"s2\"}}}}}}");
	json_object_object_add(
	    obj_path(built, "metadata"), "annotations", fx_parse("%s", "{\"n\":\"v\"}"));
	m = vmupdate_merge(live, built, err, sizeof(err));
	assert_non_null(m);
	assert_string_equal(
	    obj_json(obj_path(m, "spec.template.spec.domain.firmware")), "{\"serial\":\"s2\"}");
	assert_string_equal(obj_json(obj_path(m, "metadata.annotations")), "{\"n\":\"v\"}");
	json_object_put(m);
	json_object_put(live);
	json_object_put(built);
}

/* another VM under the name, or no VM at all: nothing to PUT */
static void test_merge_refused(void **state)
{
	json_object *built = fx_parse("%s", built_json), *live;
	char err[256] = "";

	(void)state;
	live = fx_parse(
	    "%s", "{\"metadata\":{\"name\":\"web-7\",\"uid\":\"vm-8\",\"resourceVersion\":\"5\"}}");
	assert_null(vmupdate_merge(live, built, err, sizeof(err)));
	assert_string_equal(err, "the VM was replaced (uid vm-8, the update was for vm-7)");
	json_object_put(live);
	live = fx_parse("%s", "{\"kind\":\"Status\"}");
	assert_null(vmupdate_merge(live, built, err, sizeof(err)));
	assert_string_equal(err, "the VM read back has no metadata.resourceVersion");
	json_object_put(live);
	assert_null(vmupdate_merge(NULL, built, err, sizeof(err)));
	json_object_put(built);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_merge),
	    cmocka_unit_test(test_merge_partial),
	    cmocka_unit_test(test_merge_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

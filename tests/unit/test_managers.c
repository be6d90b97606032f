/* test_managers.c: the managedFields projection the watcher keeps (common/managers.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "managers.h"
#include "obj.h"

/* the projection of an object's metadata, as compact JSON ("" when there is none) */
static void check(const char *meta_json, const char *want)
{
	json_object *meta = json_tokener_parse(meta_json), *p;
	const char *got;

	assert_non_null(meta);
	managers_project(meta);
	assert_false(json_object_object_get_ex(meta, "managedFields", NULL));
	got = json_object_object_get_ex(meta, MANAGERS_KEY, &p) ? obj_json(p) : "";
	if (strcmp(got, want) != 0)
		fail_msg("%s\n  got  %s\n  want %s", meta_json, got, want);
	json_object_put(meta);
}

/* a VM vmpoold created (owner reference, finalizer) whose status a simulator writes */
static void test_vm_ours(void **state)
{
	(void)state;
	check("{\"name\":\"p-0\",\"managedFields\":["
	      "{\"manager\":\"vmpoold\",\"operation\":\"Update\",\"fieldsType\":\"FieldsV1\","
	      "\"fieldsV1\":{\"f:metadata\":{\"f:finalizers\":{},\"f:ownerReferences\":{\".\":{},"
	      "\"k:{\\\"uid\\\":\\\"u1\\\"}\":{}}},\"f:spec\":{}}},"
	      "{\"manager\":\"vmpool-sim\",\"operation\":\"Update\",\"fieldsV1\":"
	      "{\"f:status\":{\"f:ready\":{}}}}]}",
	    "{\"owners\":[\"vmpoold\"],\"status\":[\"vmpool-sim\"]}");
}

/* kubectl create of a VM with an owner reference: a second owner manager, sorted, once */
static void test_vm_foreign_owner(void **state)
{
	(void)state;
	check("{\"managedFields\":["
	      "{\"manager\":\"vmpoold\",\"fieldsV1\":{\"f:metadata\":{\"f:ownerReferences\":{}}}},"
	      "{\"manager\":\"kubectl-create\",\"fieldsV1\":{\"f:metadata\":{\"f:ownerReferences\":"
	      "{}}}},"
	      "{\"manager\":\"kubectl-create\",\"fieldsV1\":{\"f:metadata\":{\"f:ownerReferences\":"
	      "{}}}}]}",
	    "{\"owners\":[\"kubectl-create\",\"vmpoold\"]}");
}

/* a pool whose status two controllers write; a label edit is neither */
static void test_pool_status(void **state)
{
	(void)state;
	check(
	    "{\"managedFields\":["
	    "{\"manager\":\"virt-controller\",\"operation\":\"Update\",\"subresource\":\"status\","
	    "\"fieldsV1\":{\"f:status\":{\"f:replicas\":{}}}},"
	    "{\"manager\":\"vmpoold\",\"fieldsV1\":{\"f:status\":{\".\":{}}}},"
	    "{\"manager\":\"kubectl-edit\",\"fieldsV1\":{\"f:metadata\":{\"f:labels\":{}}}}]}",
	    "{\"status\":[\"virt-controller\",\"vmpoold\"]}");
}

/* nothing to project: no key; malformed entries skipped; one sent by the API dropped */
static void test_empty_and_bad(void **state)
{
	(void)state;
	check("{\"name\":\"x\"}", "");
	check("{\"managedFields\":[]}", "");
	check("{\"managedFields\":{}}", "");
	check(
	    "{\"managedFields\":[1,\"s\",null,{},{\"manager\":\"\",\"fieldsV1\":{\"f:status\":{}}},"
	    "{\"manager\":\"m\"},{\"manager\":\"m\",\"fieldsV1\":[]},"
	    "{\"manager\":\"m\",\"fieldsV1\":{\"f:metadata\":\"x\",\"f:status\":1}},"
	    "{\"manager\":7,\"fieldsV1\":{\"f:status\":{}}}]}",
	    "");
	check("{\"vmpooldManagers\":{\"owners\":[\"forged\"]}}", "");
	managers_project(NULL);
}

static void test_list(void **state)
{
	json_object *o = json_tokener_parse(
	    "{\"metadata\":{\"vmpooldManagers\":{\"owners\":[\"a\"],\"status\":\"x\"}}}");

	(void)state;
	assert_non_null(managers_list(o, MANAGERS_OWNERS));
	assert_string_equal(obj_json(managers_list(o, MANAGERS_OWNERS)), "[\"a\"]");
	assert_null(managers_list(o, MANAGERS_STATUS));
	assert_null(managers_list(NULL, MANAGERS_STATUS));
	json_object_put(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vm_ours),
	    cmocka_unit_test(test_vm_foreign_owner),
	    cmocka_unit_test(test_pool_status),
	    cmocka_unit_test(test_empty_and_bad),
	    cmocka_unit_test(test_list),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

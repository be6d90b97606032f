/* test_resource.c: the resource table's paths and projections (common/resource.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "obj.h"
#include "proto.h"
#include "resource.h"

/* a VM as the API serves it: big template, managedFields gone (managers.c), status */
static const char *vm_json =
    "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\",\"metadata\":{"
    "\"name\":\"p-0\",\"namespace\":\"ns\",\"uid\":\"u-vm\",\"resourceVersion\":\"42\","
    "\"generation\":3,\"creationTimestamp\":\"2026-01-01T00:00:00Z\","
    "\"labels\":{\"a\":\"b\",\"kubevirt.io/vm-pool-revision-name\":\"p-1\"},"
    "\"annotations\":{\"note\":\"kept by the API only\"},"
    "\"finalizers\":[\"pool.kubevirt.io/protect\"],"
    "\"ownerReferences\":[{\"apiVersion\":\"pool.kubevirt.io/v1beta1\","
    "\"kind\":\"VirtualMachinePool\",\"name\":\"p\",\"uid\":\"u-p\",\"controller\":true,"
    "\"blockOwnerDeletion\":true,\"extra\":\"x\"}]},"
    "\"spec\":{\"runStrategy\":\"Always\",\"dataVolumeTemplates\":[{\"metadata\":{\"name\":"
    "\"dv-0\",\"labels\":{\"x\":\"y\"}},\"spec\":{\"storage\":{}}}],"
    "\"template\":{\"metadata\":{\"labels\":{\"a\":\"b\"}},\"spec\":{"
    "\"nodeSelector\":{\"zone\":\"z1\"},\"domain\":{\"firmware\":{\"serial\":\"s1\"},"
    "\"devices\":{\"disks\":[{\"name\":\"d\"}]}},"
    "\"volumes\":[{\"name\":\"d\",\"dataVolume\":{\"name\":\"dv-0\"}},"
    "{\"name\":\"c\",\"persistentVolumeClaim\":{\"claimName\":\"pvc-c\",\"readOnly\":true}},"
    "{\"name\":\"i\",\"cloudInitNoCloud\":{\"userData\":\"#cloud-config\"}}]}}},"
    "\"status\":{\"printableStatus\":\"Running\",\"ready\":true,\"created\":true,"
    "\"startFailure\":{\"consecutiveFailCount\":2,\"retryAfterTimestamp\":\"t\"},"
    "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"lastProbeTime\":null,"
    "\"lastTransitionTime\":\"2026-01-01T00:00:01Z\"}],\"volumeSnapshotStatuses\":[]}}";

static const char *vm_want =
    "{\"apiVersion\":\"kubevirt.io\\/v1\",\"kind\":\"VirtualMachine\",\"metadata\":{"
    "\"name\":\"p-0\",\"namespace\":\"ns\",\"uid\":\"u-vm\",\"resourceVersion\":\"42\","
    "\"labels\":{\"a\":\"b\",\"kubevirt.io\\/vm-pool-revision-name\":\"p-1\"},"
    "\"ownerReferences\":[{\"apiVersion\":\"pool.kubevirt.io\\/v1beta1\","
    "\"kind\":\"VirtualMachinePool\",\"name\":\"p\",\"uid\":\"u-p\",\"controller\":true,"
    "\"blockOwnerDeletion\":true}],"
    "\"finalizers\":[\"pool.kubevirt.io\\/protect\"],"
    "\"creationTimestamp\":\"2026-01-01T00:00:00Z\"},"
    "\"spec\":{\"template\":{\"metadata\":{\"labels\":{\"a\":\"b\"}},\"spec\":{"
    "\"nodeSelector\":{\"zone\":\"z1\"},\"volumes\":[{\"dataVolume\":{\"name\":\"dv-0\"}},"
    "{\"persistentVolumeClaim\":{\"claimName\":\"pvc-c\"}},{}]}},"
    "\"dataVolumeTemplates\":[{\"metadata\":{\"name\":\"dv-0\"}}]},"
    "\"status\":{\"printableStatus\":\"Running\",\"startFailure\":{"
    "\"consecutiveFailCount\":2},\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\","
    "\"lastTransitionTime\":\"2026-01-01T00:00:01Z\"}]}}";

/* as deep as the API client parses (kube.c) */
static json_object *parse(const char *s)
{
	struct json_tokener *tok = json_tokener_new_ex(400);
	json_object *o = json_tokener_parse_ex(tok, s, (int)strlen(s));

	json_tokener_free(tok);
	assert_non_null(o);
	return o;
}

/* the projection of text for kind: equal to want (semantically) */
static void project_ok(const char *kind, const char *text, const char *want)
{
	json_object *o = parse(text), *w = parse(want), *p;
	char err[256] = "";

	p = resource_project(resource_get(kind), o, err, sizeof(err));
	if (p == NULL)
		fail_msg("%s: rejected: %s", kind, err);
	if (!obj_equal(p, w))
		fail_msg("%s:\n  got  %s\n  want %s", kind, json_object_to_json_string(p), want);
	json_object_put(p);
	json_object_put(o);
	json_object_put(w);
}

/* the projection of text for kind is refused, and err says so */
static void project_bad(const char *kind, const char *text, const char *why)
{
	json_object *o = parse(text), *p;
	char err[256] = "";

	p = resource_project(resource_get(kind), o, err, sizeof(err));
	if (p != NULL)
		fail_msg("%s: accepted %s", kind, json_object_to_json_string(p));
	if (strcmp(err, why) != 0)
		fail_msg("%s: err\n  got  %s\n  want %s", kind, err, why);
	json_object_put(o);
}

/* what naming, ownership, scale-in order, updates, disks, autohealing and status read
 * stays; the template's domain, the annotations and most of the status go */
static void test_vm(void **state)
{
	(void)state;
	/* the volume items keep their position (the third, a cloud-init disk, is empty) */
	project_ok(KIND_VM, vm_json, vm_want);
}

/* of the conditions only Ready is kept (the others are not even checked); a VMI's owner
 * references are not read */
static void test_vmi_pvc_rev(void **state)
{
	(void)state;
	project_ok(KIND_VMI,
	    "{\"metadata\":{\"name\":\"p-0\",\"uid\":\"u\",\"annotations\":{\"x\":\"y\"},"
	    "\"ownerReferences\":[{\"kind\":\"VirtualMachine\",\"uid\":\"v\"}]},"
	    "\"spec\":{\"domain\":{}},\"status\":{\"phase\":\"Running\",\"nodeName\":\"n\","
	    "\"conditions\":[{\"type\":\"LiveMigratable\",\"status\":7},{\"type\":\"Ready\","
	    "\"status\":\"False\",\"reason\":\"r\",\"message\":\"m\",\"lastProbeTime\":"
	    "\"2026-01-01T00:00:00Z\"},{\"type\":\"AgentConnected\"}]}}",
	    "{\"metadata\":{\"name\":\"p-0\",\"uid\":\"u\"},\"status\":{\"phase\":\"Running\","
	    "\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"}]}}");
	/* of a VM's Ready condition its status and times, not its reason and message */
	project_ok(KIND_VM,
	    "{\"metadata\":{\"name\":\"v\",\"uid\":\"u\"},\"status\":{\"conditions\":[{"
	    "\"type\":\"Ready\",\"status\":\"False\",\"reason\":\"VMINotExists\",\"message\":"
	    "\"VMI does not exist\",\"lastProbeTime\":\"2026-01-01T00:00:00Z\","
	    "\"lastTransitionTime\":\"2026-01-01T00:00:01Z\"}]}}",
	    "{\"metadata\":{\"name\":\"v\",\"uid\":\"u\"},\"status\":{\"conditions\":[{"
	    "\"type\":\"Ready\",\"status\":\"False\",\"lastProbeTime\":\"2026-01-01T00:00:00Z\","
	    "\"lastTransitionTime\":\"2026-01-01T00:00:01Z\"}]}}");
	/* the writers the watcher read from managedFields (managers.h) */
	project_ok(KIND_VM,
	    "{\"metadata\":{\"name\":\"v\",\"uid\":\"u\",\"vmpooldManagers\":{\"owners\":"
	    "[\"vmpoold\"],\"status\":[\"sim\"],\"other\":1}}}",
	    "{\"metadata\":{\"name\":\"v\",\"uid\":\"u\",\"vmpooldManagers\":{\"owners\":"
	    "[\"vmpoold\"],\"status\":[\"sim\"]}}}");
	project_ok(KIND_PVC,
	    "{\"metadata\":{\"name\":\"c\",\"uid\":\"u\",\"vmpooldManagers\":{}},"
	    "\"spec\":{\"x\":1},\"status\":{\"phase\":\"Bound\"}}",
	    "{\"metadata\":{\"name\":\"c\",\"uid\":\"u\"}}");
	project_ok(KIND_REV,
	    "{\"metadata\":{\"name\":\"p-1\",\"uid\":\"u\"},\"revision\":1,"
	    "\"data\":{\"virtualMachineTemplate\":{\"spec\":{\"a\":[1,{\"b\":null}]}}}}",
	    "{\"metadata\":{\"name\":\"p-1\",\"uid\":\"u\"},\"revision\":1,"
	    "\"data\":{\"virtualMachineTemplate\":{\"spec\":{\"a\":[1,{\"b\":null}]}}}}");
}

/* a pool keeps its spec and status whole */
static void test_pool(void **state)
{
	(void)state;
	project_ok(KIND_POOL,
	    "{\"metadata\":{\"name\":\"p\",\"uid\":\"u\",\"generation\":2,\"finalizers\":[],"
	    "\"selfLink\":\"x\"},\"spec\":{\"replicas\":2,\"any\":{\"thing\":[true]}},"
	    "\"status\":{\"replicas\":1}}",
	    "{\"metadata\":{\"name\":\"p\",\"uid\":\"u\",\"generation\":2,\"finalizers\":[]},"
	    "\"spec\":{\"replicas\":2,\"any\":{\"thing\":[true]}},\"status\":{\"replicas\":1}}");
}

/* absent and null members are left out, not refused */
static void test_null_is_absent(void **state)
{
	(void)state;
	project_ok(KIND_VM,
	    "{\"metadata\":{\"name\":\"v\",\"uid\":\"u\",\"labels\":null,\"ownerReferences\":null},"
	    "\"spec\":{\"template\":null},\"status\":null}",
	    "{\"metadata\":{\"name\":\"v\",\"uid\":\"u\"}}");
}

/* wrong types where the readers expect a string, a number, a map of strings, a list */
static void test_wrong_types(void **state)
{
	(void)state;
	project_bad(KIND_VM, "{\"metadata\":{\"name\":\"v\",\"uid\":7}}",
	    "uid (for metadata.uid) is not a string");
	project_bad(KIND_VM, "{\"metadata\":{\"name\":\"v\",\"uid\":\"u\",\"labels\":{\"a\":1}}}",
	    "labels (for metadata.labels) is not a map of strings");
	project_bad(KIND_VM, "{\"metadata\":{\"name\":\"v\",\"uid\":\"u\",\"finalizers\":\"f\"}}",
	    "finalizers (for metadata.finalizers) is not a list of strings");
	project_bad(KIND_VM,
	    "{\"metadata\":{\"name\":\"v\",\"uid\":\"u\"},\"status\":{\"startFailure\":"
	    "{\"consecutiveFailCount\":\"2\"}}}",
	    "consecutiveFailCount (for status.startFailure.consecutiveFailCount) is not an "
	    "integer");
	project_bad(KIND_VM,
	    "{\"metadata\":{\"name\":\"v\",\"uid\":\"u\"},\"spec\":{\"template\":[]}}",
	    "template (for spec.template.metadata.labels) is not an object");
	project_bad(KIND_VM,
	    "{\"metadata\":{\"name\":\"v\",\"uid\":\"u\"},\"status\":{\"conditions\":{}}}",
	    "conditions (for status.conditions[type=Ready].type) is not a list");
	project_bad(KIND_VM,
	    "{\"metadata\":{\"name\":\"v\",\"uid\":\"u\"},\"status\":{\"conditions\":[\"x\"]}}",
	    "conditions (for status.conditions[type=Ready].type) is not a list of objects");
	project_bad(KIND_VM,
	    "{\"metadata\":{\"name\":\"v\",\"uid\":\"u\",\"ownerReferences\":[{\"controller\":"
	    "\"true\"}]}}",
	    "controller (for metadata.ownerReferences[].controller) is not a boolean");
	project_bad(KIND_POOL, "{\"metadata\":{\"name\":\"p\",\"uid\":\"u\"},\"spec\":[]}",
	    "spec (for spec) is not an object");
	project_bad(KIND_VM,
	    "{\"metadata\":{\"name\":\"v\",\"uid\":\"u\",\"vmpooldManagers\":{\"owners\":[{}]}}}",
	    "owners (for metadata.vmpooldManagers.owners) is not a list of strings");
}

/* the identity: an object, with a name and a uid */
static void test_identity(void **state)
{
	(void)state;
	project_bad(KIND_VM, "[]", "metadata is not an object");
	project_bad(KIND_VM, "{\"metadata\":7}", "metadata is not an object");
	project_bad(KIND_VM, "{\"metadata\":{\"uid\":\"u\"}}", "metadata.name is missing");
	project_bad(
	    KIND_VM, "{\"metadata\":{\"name\":\"\",\"uid\":\"u\"}}", "metadata.name is missing");
	project_bad(KIND_VMI, "{\"metadata\":{\"name\":\"v\"}}", "metadata.uid is missing");
}

/* a projection is as deep as its longest path: nesting in a dropped field is gone */
static void test_deep_dropped(void **state)
{
	char text[4096], *p = text;
	int i;

	(void)state;
	p += sprintf(p, "{\"metadata\":{\"name\":\"v\",\"uid\":\"u\"},\"spec\":");
	for (i = 0; i < 300; i++)
		p += sprintf(p, "{\"x\":");
	p += sprintf(p, "1");
	for (i = 0; i < 300; i++)
		*p++ = '}';
	*p++ = '}';
	*p = '\0';
	project_ok(KIND_VM, text, "{\"metadata\":{\"name\":\"v\",\"uid\":\"u\"}}");
}

static void test_paths(void **state)
{
	char *p;

	(void)state;
	p = resource_path(resource_get(KIND_VM), NULL, "ns", "a b");
	assert_string_equal(p, "/apis/kubevirt.io/v1/namespaces/ns/virtualmachines/a%20b");
	free(p);
	p = resource_path(resource_get(KIND_PVC), NULL, NULL, NULL);
	assert_string_equal(p, "/api/v1/persistentvolumeclaims");
	free(p);
	p = resource_path(resource_get(KIND_POOL), "v1alpha1", "ns", NULL);
	assert_string_equal(p, "/apis/pool.kubevirt.io/v1alpha1/namespaces/ns/virtualmachinepools");
	free(p);
	p = resource_path(resource_get(KIND_POOL), NULL, "ns", "p");
	assert_string_equal(
	    p, "/apis/pool.kubevirt.io/v1beta1/namespaces/ns/virtualmachinepools/p");
	free(p);
	assert_null(resource_get("nope"));
	assert_string_equal(resource_get(KIND_DV)->api_kind, "DataVolume");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vm),
	    cmocka_unit_test(test_vmi_pvc_rev),
	    cmocka_unit_test(test_pool),
	    cmocka_unit_test(test_null_is_absent),
	    cmocka_unit_test(test_wrong_types),
	    cmocka_unit_test(test_identity),
	    cmocka_unit_test(test_deep_dropped),
	    cmocka_unit_test(test_paths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

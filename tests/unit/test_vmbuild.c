/* test_vmbuild.c: the VirtualMachine a pool creates (planner/vmbuild.c, SPEC 7). */
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

static const char pool_json[] =
    "{\"apiVersion\":\"pool.kubevirt.io/v1beta1\",\"kind\":\"VirtualMachinePool\","
    "\"metadata\":{\"name\":\"web\",\"namespace\":\"prod\",\"uid\":\"u-1\","
    "\"labels\":{\"poollabel\":\"x\"},\"finalizers\":[\"pool.kubevirt.io/finalizer\"]},"
    "\"spec\":{\"replicas\":2,%s\"selector\":{\"matchLabels\":{\"app\":\"web\"}},"
    "\"virtualMachineTemplate\":{\"metadata\":{\"name\":\"ignored\",\"labels\":"
    "{\"app\":\"web\",\"tier\":\"fe\"},\"annotations\":{\"note\":\"n\"},"
    "\"finalizers\":[\"ignored\"]},"
    "\"spec\":{\"runStrategy\":\"Always\","
    "\"dataVolumeTemplates\":[{\"metadata\":{\"name\":\"disk\"},\"spec\":{\"source\":"
    "{\"pvc\":{\"name\":\"golden\"}}}},{\"metadata\":{\"name\":\"data\"}}],"
    "\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{\"domain\":{},"
    "\"volumes\":["
    "{\"name\":\"v0\",\"persistentVolumeClaim\":{\"claimName\":\"disk\"}},"
    "{\"name\":\"v1\",\"persistentVolumeClaim\":{\"claimName\":\"shared\"}},"
    "{\"name\":\"v2\",\"dataVolume\":{\"name\":\"data\"}},"
    "{\"name\":\"v3\",\"dataVolume\":{\"name\":\"other\"}},"
    "{\"name\":\"v4\",\"configMap\":{\"name\":\"cm\"}},"
    "{\"name\":\"v5\",\"secret\":{\"secretName\":\"sec\"}},"
    "{\"name\":\"v6\",\"cloudInitNoCloud\":{\"secretRef\":{\"name\":\"ud\"},"
    "\"networkDataSecretRef\":{\"name\":\"nd\"}}},"
    "{\"name\":\"v7\",\"cloudInitConfigDrive\":{\"secretRef\":{\"name\":\"cd\"}}},"
    "{\"name\":\"v8\",\"containerDisk\":{\"image\":\"img\"}},"
    "{\"name\":\"v9\",\"cloudInitNoCloud\":{\"userData\":\"#cloud-config\"}}"
    "]}}}}}}";

static json_object *mkpool(const char *extra)
{
	char buf[8192];
	json_object *o;

	snprintf(buf, sizeof(buf), pool_json, extra);
	o = json_tokener_parse(buf);
	assert_non_null(o);
	return o;
}

static const char *vol(json_object *vm, int i, const char *path)
{
	char p[128];

	snprintf(p, sizeof(p), "spec.template.spec.volumes.%d.%s", i, path);
	return obj_str(vm, p);
}

static const char *compact(json_object *o)
{
	return json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

static void test_metadata(void **state)
{
	json_object *pool = mkpool(""), *vm = vmbuild_vm(pool, 3, NULL);

	assert_non_null(vm);
	assert_string_equal(obj_str(vm, "apiVersion"), "kubevirt.io/v1");
	assert_string_equal(obj_str(vm, "kind"), "VirtualMachine");
	assert_string_equal(obj_str(vm, "metadata.name"), "web-3");
	assert_string_equal(obj_str(vm, "metadata.namespace"), "prod");
	assert_string_equal(
	    compact(obj_path(vm, "metadata.labels")), "{\"app\":\"web\",\"tier\":\"fe\"}");
	assert_string_equal(compact(obj_path(vm, "metadata.annotations")), "{\"note\":\"n\"}");
	assert_string_equal(
	    compact(obj_path(vm, "metadata.finalizers")), "[\"pool.kubevirt.io/finalizer\"]");
	assert_string_equal(compact(obj_path(vm, "metadata.ownerReferences")),
	    "[{\"apiVersion\":\"pool.kubevirt.io/v1beta1\",\"kind\":\"VirtualMachinePool\","
	    "\"name\":\"web\",\"uid\":\"u-1\",\"controller\":true,\"blockOwnerDeletion\":true}]");
	assert_null(obj_path(vm, "status"));
	assert_null(obj_path(vm, "metadata.uid"));
	assert_string_equal(obj_str(vm, "spec.runStrategy"), "Always");
	/* labels are a copy: changing the VM does not change the pool */
	json_object_object_add(obj_path(vm, "metadata.labels"), "new", json_object_new_string("1"));
	assert_null(obj_path(pool, "spec.virtualMachineTemplate.metadata.labels.new"));
	json_object_put(vm);
	json_object_put(pool);
}

/* a pool listed at v1alpha1 (KubeVirt up to v1.6) owns its VMs at v1alpha1, and only a
 * pool.kubevirt.io version is taken from it */
static void test_owner_api_version(void **state)
{
	json_object *pool = mkpool(""), *vm;

	json_object_object_add(
	    pool, "apiVersion", json_object_new_string("pool.kubevirt.io/v1alpha1"));
	vm = vmbuild_vm(pool, 1, NULL);
	assert_string_equal(
	    obj_str(vm, "metadata.ownerReferences.0.apiVersion"), "pool.kubevirt.io/v1alpha1");
	json_object_put(vm);
	json_object_object_add(pool, "apiVersion", json_object_new_string("evil.io/v1"));
	vm = vmbuild_vm(pool, 1, NULL);
	assert_string_equal(
	    obj_str(vm, "metadata.ownerReferences.0.apiVersion"), "pool.kubevirt.io/v1beta1");
	json_object_put(vm);
	assert_int_equal(obj_pool_api_valid("pool.kubevirt.io/v1beta1"), 1);
	assert_int_equal(obj_pool_api_valid("pool.kubevirt.io/"), 0);
	assert_int_equal(obj_pool_api_valid("pool.kubevirt.io/v1/../x"), 0);
	assert_int_equal(obj_pool_api_valid(NULL), 0);
	json_object_put(pool);
}

static void test_dvt_and_volume_renaming(void **state)
{
	json_object *pool = mkpool(""), *vm = vmbuild_vm(pool, 7, NULL);

	assert_string_equal(obj_str(vm, "spec.dataVolumeTemplates.0.metadata.name"), "disk-7");
	assert_string_equal(obj_str(vm, "spec.dataVolumeTemplates.1.metadata.name"), "data-7");
	assert_string_equal(
	    obj_str(vm, "spec.dataVolumeTemplates.0.spec.source.pvc.name"), "golden");
	assert_string_equal(vol(vm, 0, "persistentVolumeClaim.claimName"), "disk-7");
	assert_string_equal(vol(vm, 1, "persistentVolumeClaim.claimName"), "shared");
	assert_string_equal(vol(vm, 2, "dataVolume.name"), "data-7");
	assert_string_equal(vol(vm, 3, "dataVolume.name"), "other");
	/* without nameGeneration nothing else is indexed */
	assert_string_equal(vol(vm, 4, "configMap.name"), "cm");
	assert_string_equal(vol(vm, 5, "secret.secretName"), "sec");
	assert_string_equal(vol(vm, 6, "cloudInitNoCloud.secretRef.name"), "ud");
	assert_string_equal(vol(vm, 8, "containerDisk.image"), "img");
	/* the template is untouched */
	assert_string_equal(obj_str(pool, "spec.virtualMachineTemplate.spec."
	                                  "dataVolumeTemplates.0.metadata.name"),
	    "disk");
	json_object_put(vm);
	json_object_put(pool);
}

static void test_name_generation(void **state)
{
	json_object *pool = mkpool("\"nameGeneration\":{\"appendIndexToConfigMapRefs\":true,"
	                           "\"appendIndexToSecretRefs\":true},");
	json_object *vm = vmbuild_vm(pool, 0, NULL);

	assert_string_equal(vol(vm, 4, "configMap.name"), "cm-0");
	assert_string_equal(vol(vm, 5, "secret.secretName"), "sec-0");
	assert_string_equal(vol(vm, 6, "cloudInitNoCloud.secretRef.name"), "ud-0");
	assert_string_equal(vol(vm, 6, "cloudInitNoCloud.networkDataSecretRef.name"), "nd-0");
	assert_string_equal(vol(vm, 7, "cloudInitConfigDrive.secretRef.name"), "cd-0");
	assert_null(vol(vm, 7, "cloudInitConfigDrive.networkDataSecretRef.name"));
	assert_string_equal(vol(vm, 9, "cloudInitNoCloud.userData"), "#cloud-config");
	json_object_put(vm);
	json_object_put(pool);
}

static void test_seed_era_aliases(void **state)
{
	json_object *pool, *vm;

	pool = mkpool("\"appendPostfixToConfigMapReferences\":true,");
	vm = vmbuild_vm(pool, 2, NULL);
	assert_string_equal(vol(vm, 4, "configMap.name"), "cm-2");
	assert_string_equal(vol(vm, 5, "secret.secretName"), "sec");
	json_object_put(vm);
	json_object_put(pool);
	/* the nameGeneration spelling wins when both are set */
	pool = mkpool("\"appendPostfixToSecretReferences\":true,"
	              "\"nameGeneration\":{\"appendIndexToSecretRefs\":false},");
	vm = vmbuild_vm(pool, 2, NULL);
	assert_string_equal(vol(vm, 5, "secret.secretName"), "sec");
	json_object_put(vm);
	json_object_put(pool);
}

static const char *label(json_object *labels, const char *k)
{
	json_object *v;

	if (!json_object_object_get_ex(labels, k, &v))
		return NULL;
	return json_object_get_string(v);
}

static void test_revision_label(void **state)
{
	json_object *pool = mkpool(""), *vm = vmbuild_vm(pool, 1, "web-2");
	const char *rl = "kubevirt.io/vm-pool-revision-name";

	assert_string_equal(label(obj_path(vm, "metadata.labels"), rl), "web-2");
	assert_string_equal(label(obj_path(vm, "spec.template.metadata.labels"), rl), "web-2");
	assert_string_equal(label(obj_path(vm, "spec.template.metadata.labels"), "app"), "web");
	/* the pool's template keeps no revision label */
	assert_null(label(obj_path(pool, "spec.virtualMachineTemplate.metadata.labels"), rl));
	json_object_put(vm);
	vm = vmbuild_vm(pool, 1, NULL);
	assert_null(label(obj_path(vm, "metadata.labels"), rl));
	json_object_put(vm);
	json_object_put(pool);
}

static void test_name_and_bad_pool(void **state)
{
	char *s = vmbuild_name("a-b", 12);
	json_object *o = json_tokener_parse("{\"metadata\":{\"name\":\"x\"}}");

	assert_string_equal(s, "a-b-12");
	free(s);
	assert_null(vmbuild_vm(o, 0, NULL));
	json_object_put(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_metadata),
	    cmocka_unit_test(test_owner_api_version),
	    cmocka_unit_test(test_dvt_and_volume_renaming),
	    cmocka_unit_test(test_name_generation),
	    cmocka_unit_test(test_seed_era_aliases),
	    cmocka_unit_test(test_revision_label),
	    cmocka_unit_test(test_name_and_bad_pool),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_revision.c: ControllerRevisions, outdated VMs and VMIs (planner/revision.c, SPEC 11). */
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
#include "obj.h"

/* what varies between the pools of these tests */
struct pp {
	int gen; /* < 0: no metadata.generation */
	int replicas;
	const char *cm;    /* nameGeneration.appendIndexToConfigMapRefs */
	const char *extra; /* more virtualMachineTemplate.metadata.labels */
	const char *dvts;  /* spec.dataVolumeTemplates member text, "" for none */
	int cores;
};

static const struct pp pp_default = {
    4, 2, "false", "", "\"dataVolumeTemplates\":[{\"metadata\":{\"name\":\"disk\"}}],", 2};

static json_object *mkpool(const struct pp *p)
{
	char buf[4096], gen[64] = "";
	json_object *o;

	if (p->gen >= 0)
		snprintf(gen, sizeof(gen), ",\"generation\":%d", p->gen);
	snprintf(buf, sizeof(buf),
	    "{\"apiVersion\":\"pool.kubevirt.io/v1beta1\",\"kind\":\"VirtualMachinePool\","
	    "\"metadata\":{\"name\":\"web\",\"namespace\":\"prod\",\"uid\":\"u-1\"%s},"
	    "\"spec\":{\"replicas\":%d,\"nameGeneration\":{\"appendIndexToConfigMapRefs\":%s},"
	    "\"selector\":{\"matchLabels\":{\"app\":\"web\"}},"
	    "\"virtualMachineTemplate\":{\"metadata\":{\"labels\":{\"app\":\"web\"%s}},"
	    "\"spec\":{\"runStrategy\":\"Always\",%s"
	    "\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},"
	    "\"spec\":{\"domain\":{\"cpu\":{\"cores\":%d}},"
	    "\"volumes\":[{\"name\":\"d\",\"dataVolume\":{\"name\":\"disk\"}}]}}}}}}",
	    gen, p->replicas, p->cm, p->extra, p->dvts, p->cores);
	o = json_tokener_parse(buf);
	assert_non_null(o);
	return o;
}

static json_object *parse(const char *s)
{
	json_object *o = json_tokener_parse(s);

	assert_non_null(o);
	return o;
}

static const char *compact(json_object *o)
{
	return json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* labels[key] under the object at path (keys hold dots, so not via obj_path) */
static const char *label(json_object *o, const char *path, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(obj_path(o, path), key, &v))
		return NULL;
	return json_object_get_string(v);
}

/* a VM or VMI with the given labels JSON (NULL: no labels) */
static json_object *mkobj(const char *name, const char *labels)
{
	char buf[1024];

	if (labels == NULL)
		snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"%s\"}}", name);
	else
		snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"%s\",\"labels\":%s}}", name,
		    labels);
	return parse(buf);
}

static void test_name(void **state)
{
	struct pp p = pp_default;
	json_object *pool = mkpool(&p), *o;
	char *s;

	s = revision_name(pool);
	assert_string_equal(s, "web-4");
	free(s);
	json_object_put(pool);

	p.gen = -1;
	pool = mkpool(&p);
	s = revision_name(pool);
	assert_string_equal(s, "web-0");
	free(s);
	json_object_put(pool);

	o = parse("{\"metadata\":{\"generation\":3}}");
	assert_null(revision_name(o));
	json_object_put(o);
}

static void test_build(void **state)
{
	struct pp p = pp_default;
	json_object *pool = mkpool(&p), *rev, *o;
	long long n;

	rev = revision_build(pool);
	assert_non_null(rev);
	assert_string_equal(obj_str(rev, "apiVersion"), "apps/v1");
	assert_string_equal(obj_str(rev, "kind"), "ControllerRevision");
	assert_string_equal(obj_str(rev, "metadata.name"), "web-4");
	assert_string_equal(obj_str(rev, "metadata.namespace"), "prod");
	assert_null(obj_path(rev, "metadata.labels"));
	assert_string_equal(compact(obj_path(rev, "metadata.ownerReferences")),
	    "[{\"apiVersion\":\"pool.kubevirt.io/v1beta1\",\"kind\":\"VirtualMachinePool\","
	    "\"name\":\"web\",\"uid\":\"u-1\",\"controller\":true,\"blockOwnerDeletion\":true}]");
	assert_int_equal(obj_int(rev, "revision", &n), 0);
	assert_int_equal(n, 4);
	assert_true(obj_equal(obj_path(rev, "data"), obj_path(pool, "spec")));
	/* a copy, not a reference into the pool */
	assert_ptr_not_equal(obj_path(rev, "data"), obj_path(pool, "spec"));
	json_object_put(pool);
	assert_true(obj_path(rev, "data.replicas") != NULL);
	json_object_put(rev);

	o = parse("{\"metadata\":{\"name\":\"x\",\"generation\":1}}");
	assert_null(revision_build(o));
	json_object_put(o);
}

static void test_owned_by(void **state)
{
	struct pp p = pp_default;
	json_object *pool = mkpool(&p), *rev = revision_build(pool), *ref;

	assert_true(revision_owned_by(rev, "u-1"));
	assert_false(revision_owned_by(rev, "u-2"));
	assert_false(revision_owned_by(rev, NULL));
	assert_false(revision_owned_by(NULL, "u-1"));
	ref = obj_path(rev, "metadata.ownerReferences.0");
	json_object_object_add(ref, "kind", json_object_new_string("ReplicaSet"));
	assert_false(revision_owned_by(rev, "u-1"));
	json_object_object_add(ref, "kind", json_object_new_string("VirtualMachinePool"));
	assert_true(revision_owned_by(rev, "u-1"));
	json_object_object_add(ref, "controller", json_object_new_boolean(0));
	assert_false(revision_owned_by(rev, "u-1"));
	json_object_put(rev);
	json_object_put(pool);
}

static void test_outdated(void **state)
{
	struct pp p = pp_default;
	json_object *pool = mkpool(&p), *rev = revision_build(pool), *other, *orev, *vm;

	vm = mkobj("web-0", NULL);
	assert_true(revision_vm_outdated(pool, vm, rev));
	json_object_put(vm);
	vm = mkobj("web-0", "{\"app\":\"web\"}");
	assert_true(revision_vm_outdated(pool, vm, rev));
	json_object_put(vm);

	vm = mkobj("web-0", "{\"app\":\"web\",\"kubevirt.io/vm-pool-revision-name\":\"web-4\"}");
	assert_false(revision_vm_outdated(pool, vm, rev));
	assert_true(revision_vm_outdated(pool, vm, NULL));

	/* the pool's template spec changed since the revision */
	p.cores = 4;
	other = mkpool(&p);
	assert_true(revision_vm_outdated(other, vm, rev));
	json_object_put(other);

	/* only the template's metadata labels changed: outdated too */
	p = pp_default;
	p.extra = ",\"tier\":\"fe\"";
	other = mkpool(&p);
	assert_true(revision_vm_outdated(other, vm, rev));
	json_object_put(other);

	/* generation, replicas, nameGeneration are outside the template */
	p = pp_default;
	p.gen = 9;
	p.replicas = 7;
	p.cm = "true";
	other = mkpool(&p);
	orev = revision_build(other);
	assert_false(revision_vm_outdated(other, vm, rev));
	assert_false(revision_vm_outdated(pool, vm, orev));
	json_object_put(orev);
	json_object_put(other);

	json_object_put(vm);
	json_object_put(rev);
	json_object_put(pool);
}

static const char old_vm[] =
    "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\","
    "\"metadata\":{\"name\":\"%s\",\"namespace\":\"prod\",\"uid\":\"vm-7\","
    "\"resourceVersion\":\"99\",\"annotations\":{\"old\":\"a\"},"
    "\"labels\":{\"app\":\"web\",\"user\":\"mine\","
    "\"kubevirt.io/vm-pool-revision-name\":\"web-1\"}%s"
    "\"ownerReferences\":[{\"apiVersion\":\"pool.kubevirt.io/v1alpha1\","
    "\"kind\":\"VirtualMachinePool\",\"name\":\"web\",\"uid\":\"u-1\",\"controller\":true}]},"
    "\"spec\":{\"runStrategy\":\"Halted\",\"template\":{\"spec\":{\"domain\":"
    "{\"firmware\":%s}}}},\"status\":{\"ready\":true}}";

static json_object *mkvm(const char *name, const char *fins, const char *firmware)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), old_vm, name, fins, firmware);
	return parse(buf);
}

static void test_updated_vm(void **state)
{
	struct pp p = pp_default;
	json_object *pool = mkpool(&p), *vm, *nvm;
	const char *rl = REVISION_LABEL;

	vm = mkvm("web-7", ",\"finalizers\":[\"pool.kubevirt.io/finalizer\",\"other/fin\"],",
	    "{\"uuid\":\"uu-1\",\"serial\":\"ser-1\",\"bootloader\":{}}");
	nvm = revision_updated_vm(pool, vm, "web-4");
	assert_non_null(nvm);
	assert_string_equal(obj_str(nvm, "apiVersion"), "kubevirt.io/v1");
	assert_string_equal(obj_str(nvm, "kind"), "VirtualMachine");
	assert_string_equal(obj_str(nvm, "metadata.name"), "web-7");
	assert_string_equal(obj_str(nvm, "metadata.namespace"), "prod");
	assert_string_equal(obj_str(nvm, "metadata.uid"), "vm-7");
	assert_string_equal(obj_str(nvm, "metadata.resourceVersion"), "99");
	assert_true(
	    obj_equal(obj_path(nvm, "metadata.finalizers"), obj_path(vm, "metadata.finalizers")));
	assert_true(obj_equal(
	    obj_path(nvm, "metadata.ownerReferences"), obj_path(vm, "metadata.ownerReferences")));
	/* labels replaced: the user's label is gone */
	assert_string_equal(compact(obj_path(nvm, "metadata.labels")),
	    "{\"app\":\"web\",\"kubevirt.io/vm-pool-revision-name\":\"web-4\"}");
	assert_null(obj_path(nvm, "metadata.annotations"));
	assert_string_equal(label(nvm, "spec.template.metadata.labels", rl), "web-4");
	assert_string_equal(obj_str(nvm, "spec.runStrategy"), "Always");
	assert_string_equal(obj_str(nvm, "spec.dataVolumeTemplates.0.metadata.name"), "disk-7");
	assert_string_equal(obj_str(nvm, "spec.template.spec.volumes.0.dataVolume.name"), "disk-7");
	/* the firmware identity is the actuator's to keep (vmupdate.c): the template's here */
	assert_null(obj_path(nvm, "spec.template.spec.domain.firmware"));
	assert_string_equal(
	    compact(obj_path(nvm, "spec.template.spec.domain.cpu")), "{\"cores\":2}");
	assert_null(obj_path(nvm, "status"));
	json_object_put(nvm);
	json_object_put(vm);

	/* no finalizers kept means none; zero-padded index */
	vm = mkvm("web-007", ",", "{\"uuid\":\"\",\"serial\":\"s2\"}");
	nvm = revision_updated_vm(pool, vm, "web-4");
	assert_non_null(nvm);
	assert_string_equal(obj_str(nvm, "metadata.name"), "web-007");
	assert_null(obj_path(nvm, "metadata.finalizers"));
	assert_string_equal(obj_str(nvm, "spec.dataVolumeTemplates.0.metadata.name"), "disk-7");
	json_object_put(nvm);
	json_object_put(vm);

	vm = mkvm("web-x", ",", "{}");
	assert_null(revision_updated_vm(pool, vm, "web-4"));
	json_object_put(vm);
	json_object_put(pool);
}

/* VM labelled web-5, VMI labelled as given, with the revisions given */
static enum revision_vmi_action action(
    const char *vmi_labels, json_object *vm_rev, json_object *vmi_rev)
{
	json_object *vm, *vmi;
	enum revision_vmi_action a;

	vm = mkobj("web-0", "{\"kubevirt.io/vm-pool-revision-name\":\"web-5\"}");
	vmi = mkobj("web-0", vmi_labels);
	a = revision_vmi_action(vm, vmi, vm_rev, vmi_rev);
	json_object_put(vmi);
	json_object_put(vm);
	return a;
}

static const char vmi_old[] = "{\"app\":\"web\",\"kubevirt.io/vm-pool-revision-name\":\"web-4\"}";

static void test_vmi_action(void **state)
{
	struct pp p = pp_default;
	json_object *pool = mkpool(&p), *r_old = revision_build(pool), *r_new, *vm, *vmi;

	/* 1. the VM carries no revision label */
	vm = mkobj("web-0", "{\"app\":\"web\"}");
	vmi = mkobj("web-0", vmi_old);
	assert_int_equal(revision_vmi_action(vm, vmi, r_old, r_old), VMI_NONE);
	assert_int_equal(revision_vmi_action(vm, NULL, r_old, r_old), VMI_NONE);
	json_object_put(vmi);
	json_object_put(vm);
	/* 2. the VMI carries none */
	assert_int_equal(action("{\"app\":\"web\"}", r_old, r_old), VMI_RESTART);
	assert_int_equal(action(NULL, r_old, r_old), VMI_RESTART);
	/* 3. same revision */
	assert_int_equal(
	    action("{\"kubevirt.io/vm-pool-revision-name\":\"web-5\"}", r_old, NULL), VMI_NONE);
	/* 4. the VM's revision is not in the cache */
	assert_int_equal(action(vmi_old, NULL, r_old), VMI_NONE);
	/* 5. the VMI's revision is not in the cache */
	assert_int_equal(action(vmi_old, r_old, NULL), VMI_RESTART);

	/* 6. dataVolumeTemplates changed, even if the VMI template changed too */
	p.dvts = "\"dataVolumeTemplates\":[{\"metadata\":{\"name\":\"disk2\"}}],";
	json_object_put(pool);
	pool = mkpool(&p);
	r_new = revision_build(pool);
	assert_int_equal(action(vmi_old, r_new, r_old), VMI_DELETE_VM);
	p.cores = 8;
	json_object_put(r_new);
	json_object_put(pool);
	pool = mkpool(&p);
	r_new = revision_build(pool);
	assert_int_equal(action(vmi_old, r_new, r_old), VMI_DELETE_VM);
	json_object_put(r_new);

	/* 7. the VMI template changed */
	p = pp_default;
	p.cores = 8;
	json_object_put(pool);
	pool = mkpool(&p);
	r_new = revision_build(pool);
	assert_int_equal(action(vmi_old, r_new, r_old), VMI_RESTART);
	json_object_put(r_new);

	/* 8. only what the VMI does not see changed: VM labels, replicas */
	p = pp_default;
	p.extra = ",\"tier\":\"fe\"";
	p.replicas = 9;
	json_object_put(pool);
	pool = mkpool(&p);
	r_new = revision_build(pool);
	assert_int_equal(action(vmi_old, r_new, r_old), VMI_PATCH_LABELS);
	json_object_put(r_new);
	json_object_put(r_old);

	/* no dataVolumeTemplates on either side (absent or empty) is no change */
	p = pp_default;
	p.dvts = "";
	json_object_put(pool);
	pool = mkpool(&p);
	r_old = revision_build(pool);
	p.dvts = "\"dataVolumeTemplates\":[],";
	p.replicas = 5;
	json_object_put(pool);
	pool = mkpool(&p);
	r_new = revision_build(pool);
	assert_int_equal(action(vmi_old, r_old, r_old), VMI_PATCH_LABELS);
	assert_int_equal(action(vmi_old, r_new, r_old), VMI_PATCH_LABELS);
	json_object_put(r_new);
	json_object_put(r_old);
	json_object_put(pool);
}

static void test_label_patch(void **state)
{
	json_object *vm, *vmi, *patch;

	vm = mkobj("web-0", "{\"app\":\"web\",\"kubevirt.io/vm-pool-revision-name\":\"web-5\"}");
	vmi = mkobj("web-0", NULL);
	patch = revision_vmi_label_patch(vm, vmi);
	assert_non_null(patch);
	assert_string_equal(compact(patch),
	    "[{\"op\":\"add\",\"path\":\"/metadata/labels\","
	    "\"value\":{\"kubevirt.io/vm-pool-revision-name\":\"web-5\"}}]");
	json_object_put(patch);
	json_object_put(vmi);

	vmi = mkobj("web-0", "{\"kubevirt.io/vm-pool-revision-name\":\"web-4\",\"x\":\"1\"}");
	patch = revision_vmi_label_patch(vm, vmi);
	assert_string_equal(compact(patch),
	    "[{\"op\":\"test\",\"path\":\"/metadata/labels\","
	    "\"value\":{\"kubevirt.io/vm-pool-revision-name\":\"web-4\",\"x\":\"1\"}},"
	    "{\"op\":\"replace\",\"path\":\"/metadata/labels\","
	    "\"value\":{\"kubevirt.io/vm-pool-revision-name\":\"web-5\",\"x\":\"1\"}}]");
	/* the patch owns its values: the VMI is untouched and can go first */
	assert_string_equal(label(vmi, "metadata.labels", REVISION_LABEL), "web-4");
	json_object_put(vmi);
	json_object_put(vm);
	assert_int_equal(json_object_array_length(patch), 2);
	json_object_put(patch);

	vm = mkobj("web-0", "{\"app\":\"web\"}");
	vmi = mkobj("web-0", NULL);
	assert_null(revision_vmi_label_patch(vm, vmi));
	json_object_put(vmi);
	json_object_put(vm);
}

static void test_unavailable(void **state)
{
	static const struct {
		const char *json;
		int want;
	} cases[] = {
	    {"{\"metadata\":{\"name\":\"a\",\"deletionTimestamp\":\"2024-01-01T00:00:00Z\"},"
	     "\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\","
	     "\"status\":\"True\"}]}}",
	        1},
	    {"{\"metadata\":{\"name\":\"a\"},\"status\":{\"phase\":\"Pending\","
	     "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}",
	        1},
	    {"{\"metadata\":{\"name\":\"a\"},\"status\":{\"phase\":\"Running\"}}", 1},
	    {"{\"metadata\":{\"name\":\"a\"},\"status\":{\"phase\":\"Running\","
	     "\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"}]}}",
	        1},
	    {"{\"metadata\":{\"name\":\"a\"}}", 1},
	    {"{\"metadata\":{\"name\":\"a\"},\"status\":{\"phase\":\"Running\","
	     "\"conditions\":[{\"type\":\"LiveMigratable\",\"status\":\"True\"},"
	     "{\"type\":\"Ready\",\"status\":\"True\"}]}}",
	        0},
	};
	json_object *o;
	size_t i;

	assert_true(revision_vmi_unavailable(NULL));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		o = parse(cases[i].json);
		if (revision_vmi_unavailable(o) != cases[i].want)
			fail_msg("case %zu: want %d", i, cases[i].want);
		json_object_put(o);
	}
}

static void test_index(void **state)
{
	assert_int_equal(revision_vm_index("p-12"), 12);
	assert_int_equal(revision_vm_index("my-pool-3"), 3);
	assert_int_equal(revision_vm_index("p-0"), 0);
	assert_int_equal(revision_vm_index("p-007"), 7);
	assert_int_equal(revision_vm_index("p-x"), -1);
	assert_int_equal(revision_vm_index("p-1x"), -1);
	assert_int_equal(revision_vm_index("p- 1"), -1);
	assert_int_equal(revision_vm_index("p-+1"), -1);
	assert_int_equal(revision_vm_index("p-"), -1);
	assert_int_equal(revision_vm_index("p"), -1);
	assert_int_equal(revision_vm_index("p--1"), -1);
	assert_int_equal(revision_vm_index("-5"), 5);
	assert_int_equal(revision_vm_index(NULL), -1);
	assert_int_equal(revision_vm_index("p-9223372036854775807"), 9223372036854775807L);
	assert_int_equal(revision_vm_index("p-9223372036854775808"), -1);
	assert_int_equal(revision_vm_index("p-99999999999999999999999"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_name),
	    cmocka_unit_test(test_build),
	    cmocka_unit_test(test_owned_by),
	    cmocka_unit_test(test_outdated),
	    cmocka_unit_test(test_updated_vm),
	    cmocka_unit_test(test_vmi_action),
	    cmocka_unit_test(test_label_patch),
	    cmocka_unit_test(test_unavailable),
	    cmocka_unit_test(test_index),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

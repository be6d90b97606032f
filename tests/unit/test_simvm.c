/*
 * test_simvm.c: the VM simulator's pure decisions (tools/simvm.c): which state a VM should
 * be in, the status patch for it, and whether an observed status already matches (the
 * simulator must not write to a converged cluster).
 */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "obj.h"
#include "../../tools/simvm.h"

static json_object *vm(const char *name, const char *spec, const char *annotations)
{
	char buf[1024];

	snprintf(buf, sizeof buf,
	    "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"ns\",\"annotations\":%s},\"spec\":%s}",
	    name, annotations ? annotations : "{}", spec);
	return json_tokener_parse(buf);
}

/* applies a merge patch's status to the VM the way the API server would (null removes) */
static void apply_status(json_object *v, json_object *patch)
{
	json_object *st = json_object_new_object();

	json_object_object_foreach(obj_path(patch, "status"), k, val)
	{
		if (val != NULL)
			json_object_object_add(st, k, json_object_get(val));
	}
	json_object_object_add(v, "status", st);
}

static void test_mode(void **state)
{
	struct simvm_opts o = {1.0, NULL, 0, 3, 1.0};
	const char *pr = NULL;
	json_object *v;

	(void)state;
	v = vm("a", "{\"runStrategy\":\"Always\"}", NULL);
	assert_int_equal(simvm_mode(v, &o, &pr), SIMVM_RUN);
	assert_string_equal(pr, "Running");
	json_object_put(v);
	v = vm("a", "{\"runStrategy\":\"Halted\"}", NULL);
	assert_int_equal(simvm_mode(v, &o, &pr), SIMVM_STOP);
	assert_string_equal(pr, "Stopped");
	json_object_put(v);
	v = vm("a", "{\"runStrategy\":\"Manual\"}", NULL);
	assert_int_equal(simvm_mode(v, &o, &pr), SIMVM_STOP);
	json_object_put(v);
	v = vm("a", "{\"running\":true}", NULL);
	assert_int_equal(simvm_mode(v, &o, &pr), SIMVM_RUN);
	json_object_put(v);
	v = vm("a", "{\"running\":false}", NULL);
	assert_int_equal(simvm_mode(v, &o, &pr), SIMVM_STOP);
	json_object_put(v);
	v = vm("a", "{\"runStrategy\":\"Always\"}",
	    "{\"vmpool-sim.kubevirt.io/fail\":\"ErrImagePull\"}");
	assert_int_equal(simvm_mode(v, &o, &pr), SIMVM_FAIL);
	assert_string_equal(pr, "ErrImagePull");
	json_object_put(v);
	/* a stopped VM does not fail, even when annotated */
	v = vm("a", "{\"runStrategy\":\"Halted\"}", "{\"vmpool-sim.kubevirt.io/fail\":\"\"}");
	assert_int_equal(simvm_mode(v, &o, &pr), SIMVM_STOP);
	json_object_put(v);
	/* a VM being deleted stops (its VMI goes) */
	v = vm("a", "{\"runStrategy\":\"Always\"}", NULL);
	json_object_object_add(obj_path(v, "metadata"), "deletionTimestamp",
	    json_object_new_string("2024-01-01T00:00:00Z"));
	assert_int_equal(simvm_mode(v, &o, &pr), SIMVM_STOP);
	assert_string_equal(pr, "Terminating");
	json_object_put(v);
}

static void test_fail_regex(void **state)
{
	struct simvm_opts o = {1.0, NULL, 600, 5, 1.0};
	regex_t re;
	const char *pr = NULL;
	json_object *v;

	(void)state;
	assert_int_equal(regcomp(&re, "^crashy-", REG_EXTENDED | REG_NOSUB), 0);
	o.fail_re = &re;
	v = vm("crashy-1", "{\"runStrategy\":\"Always\"}", NULL);
	assert_int_equal(simvm_mode(v, &o, &pr), SIMVM_FAIL);
	assert_string_equal(pr, "CrashLoopBackOff");
	json_object_put(v);
	v = vm("fine-1", "{\"runStrategy\":\"Always\"}", NULL);
	assert_int_equal(simvm_mode(v, &o, &pr), SIMVM_RUN);
	json_object_put(v);
	regfree(&re);
}

/* the wanted VM status follows the VMI: Ready only with a ready VMI */
static void test_want_follows_vmi(void **state)
{
	struct simvm_opts o = {1.0, NULL, 0, 3, 1.0};
	struct simvm_want w;
	json_object *v;

	(void)state;
	v = vm("a", "{\"runStrategy\":\"Always\"}", NULL);
	simvm_want(v, &o, SIMVMI_READY, &w);
	assert_int_equal(w.mode, SIMVM_RUN);
	assert_string_equal(w.printable, "Running");
	simvm_want(v, &o, SIMVMI_STARTING, &w);
	assert_int_equal(w.mode, SIMVM_STARTING);
	simvm_want(v, &o, SIMVMI_NONE, &w);
	assert_int_equal(w.mode, SIMVM_NOVMI);
	json_object_put(v);
	/* stopped and failing VMs do not care about a (leftover) VMI */
	v = vm("a", "{\"runStrategy\":\"Halted\"}", NULL);
	simvm_want(v, &o, SIMVMI_READY, &w);
	assert_int_equal(w.mode, SIMVM_STOP);
	json_object_put(v);
	v = vm("a", "{\"runStrategy\":\"Always\"}", "{\"vmpool-sim.kubevirt.io/fail\":\"\"}");
	simvm_want(v, &o, SIMVMI_READY, &w);
	assert_int_equal(w.mode, SIMVM_FAIL);
	assert_string_equal(w.printable, "CrashLoopBackOff");
	json_object_put(v);
}

/* a Ready VM whose VMI vanished becomes Ready=False VMINotExists */
static void test_vmi_gone(void **state)
{
	struct simvm_opts o = {1.0, NULL, 0, 3, 1.0};
	struct simvm_want run, novmi, starting;
	json_object *v, *p, *c;

	(void)state;
	v = vm("a", "{\"runStrategy\":\"Always\"}", NULL);
	simvm_want(v, &o, SIMVMI_READY, &run);
	simvm_want(v, &o, SIMVMI_NONE, &novmi);
	simvm_want(v, &o, SIMVMI_STARTING, &starting);
	/* a brand-new VM (no status) is not rewritten while its VMI is created and starts */
	assert_true(simvm_status_matches(v, &novmi));
	assert_true(simvm_status_matches(v, &starting));
	assert_false(simvm_status_matches(v, &run));
	p = simvm_patch(&run, 1700000000);
	apply_status(v, p);
	json_object_put(p);
	assert_true(simvm_status_matches(v, &run));
	assert_false(simvm_status_matches(v, &novmi));
	assert_false(simvm_status_matches(v, &starting));
	p = simvm_patch(&novmi, 1700000000);
	apply_status(v, p);
	json_object_put(p);
	c = obj_condition(v, "Ready");
	assert_string_equal(obj_str(c, "status"), "False");
	assert_string_equal(obj_str(c, "reason"), "VMINotExists");
	assert_false(obj_bool(v, "status.ready"));
	assert_true(simvm_status_matches(v, &novmi));
	/* the recreated VMI is still starting: no write until it is ready */
	assert_true(simvm_status_matches(v, &starting));
	assert_false(simvm_status_matches(v, &run));
	json_object_put(v);
}

/* the patch for each mode, once applied, is recognised as converged; other states are not */
static void test_patch_then_matches(void **state)
{
	struct simvm_want w[3] = {
	    {SIMVM_RUN, "Running", 0, 0},
	    {SIMVM_STOP, "Stopped", 0, 0},
	    {SIMVM_FAIL, "CrashLoopBackOff", 600, 4},
	};
	json_object *v, *p, *c;
	double now = 1700000000;
	size_t i, j;

	(void)state;
	for (i = 0; i < 3; i++) {
		v = vm("a", "{\"runStrategy\":\"Always\"}", NULL);
		json_object_object_add(
		    v, "status", json_tokener_parse("{\"printableStatus\":\"x\"}"));
		assert_false(simvm_status_matches(v, &w[i]));
		p = simvm_patch(&w[i], now);
		apply_status(v, p);
		assert_true(simvm_status_matches(v, &w[i]));
		for (j = 0; j < 3; j++)
			if (j != i)
				assert_false(simvm_status_matches(v, &w[j]));
		c = obj_condition(v, "Ready");
		assert_non_null(c);
		assert_string_equal(obj_str(c, "status"), i == 0 ? "True" : "False");
		json_object_put(p);
		json_object_put(v);
	}
}

static void test_fail_details(void **state)
{
	struct simvm_want w = {SIMVM_FAIL, "CrashLoopBackOff", 600, 4};
	json_object *p = simvm_patch(&w, 1700000600);
	json_object *c = json_object_array_get_idx(obj_path(p, "status.conditions"), 0);
	long long n = 0;

	(void)state;
	assert_int_equal(obj_int(p, "status.startFailure.consecutiveFailCount", &n), 0);
	assert_int_equal(n, 4);
	/* Ready=False probed fail_age seconds ago: autohealing's duration rule sees an old failure */
	assert_string_equal(obj_str(c, "lastProbeTime"), "2023-11-14T22:13:20Z");
	assert_string_equal(obj_str(c, "lastTransitionTime"), "2023-11-14T22:13:20Z");
	assert_string_equal(obj_str(c, "reason"), "CrashLoopBackOff");
	assert_string_equal(obj_str(p, "status.printableStatus"), "CrashLoopBackOff");
	assert_non_null(obj_str(p, "status.startFailure.retryAfterTimestamp"));
	json_object_put(p);
}

/* fail-age and fail-count per VM by annotation; changing them asks for a rewrite */
static void test_fail_annotations(void **state)
{
	struct simvm_opts o = {1.0, NULL, 0, 3, 1.0};
	struct simvm_want w, w2;
	json_object *v, *p, *ann;

	(void)state;
	v = vm("a", "{\"runStrategy\":\"Always\"}",
	    "{\"vmpool-sim.kubevirt.io/fail\":\"ErrImagePull\","
	    "\"vmpool-sim.kubevirt.io/fail-age\":\"600\","
	    "\"vmpool-sim.kubevirt.io/fail-count\":\"5\"}");
	simvm_want(v, &o, SIMVMI_NONE, &w);
	assert_int_equal(w.mode, SIMVM_FAIL);
	assert_string_equal(w.printable, "ErrImagePull");
	assert_true(w.fail_age == 600);
	assert_int_equal(w.fail_count, 5);
	p = simvm_patch(&w, 1700000600);
	apply_status(v, p);
	json_object_put(p);
	assert_true(simvm_status_matches(v, &w));
	ann = obj_path(v, "metadata.annotations");
	json_object_object_add(
	    ann, "vmpool-sim.kubevirt.io/fail-age", json_object_new_string("60"));
	simvm_want(v, &o, SIMVMI_NONE, &w2);
	assert_true(w2.fail_age == 60);
	assert_false(simvm_status_matches(v, &w2));
	/* a bad value falls back to the option */
	json_object_object_add(
	    ann, "vmpool-sim.kubevirt.io/fail-count", json_object_new_string("x"));
	simvm_want(v, &o, SIMVMI_NONE, &w2);
	assert_int_equal(w2.fail_count, 3);
	json_object_put(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mode),
	    cmocka_unit_test(test_fail_regex),
	    cmocka_unit_test(test_want_follows_vmi),
	    cmocka_unit_test(test_vmi_gone),
	    cmocka_unit_test(test_patch_then_matches),
	    cmocka_unit_test(test_fail_details),
	    cmocka_unit_test(test_fail_annotations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

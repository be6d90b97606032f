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
	struct simvm_opts o = {1.0, NULL, 0, 3};
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
}

static void test_fail_regex(void **state)
{
	struct simvm_opts o = {1.0, NULL, 600, 5};
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

/* the patch for each mode, once applied, is recognised as converged; other states are not */
static void test_patch_then_matches(void **state)
{
	struct simvm_opts o = {1.0, NULL, 600, 4};
	enum simvm_mode modes[] = {SIMVM_RUN, SIMVM_STOP, SIMVM_FAIL};
	const char *prs[] = {"Running", "Stopped", "CrashLoopBackOff"};
	json_object *v, *p, *c;
	double now = 1700000000;
	size_t i, j;

	(void)state;
	for (i = 0; i < 3; i++) {
		v = vm("a", "{\"runStrategy\":\"Always\"}", NULL);
		assert_false(simvm_status_matches(v, modes[i], prs[i], &o)); /* no status yet */
		p = simvm_patch(modes[i], prs[i], &o, now);
		apply_status(v, p);
		assert_true(simvm_status_matches(v, modes[i], prs[i], &o));
		for (j = 0; j < 3; j++)
			if (j != i)
				assert_false(simvm_status_matches(v, modes[j], prs[j], &o));
		c = obj_condition(v, "Ready");
		assert_non_null(c);
		assert_string_equal(obj_str(c, "status"), modes[i] == SIMVM_RUN ? "True" : "False");
		json_object_put(p);
		json_object_put(v);
	}
}

static void test_fail_details(void **state)
{
	struct simvm_opts o = {1.0, NULL, 600, 4};
	json_object *p = simvm_patch(SIMVM_FAIL, "CrashLoopBackOff", &o, 1700000600);
	json_object *c = json_object_array_get_idx(obj_path(p, "status.conditions"), 0);
	long long n = 0;

	(void)state;
	assert_int_equal(obj_int(p, "status.startFailure.consecutiveFailCount", &n), 0);
	assert_int_equal(n, 4);
	/* Ready=False probed fail_age seconds ago: autohealing's duration rule sees an old failure */
	assert_string_equal(obj_str(c, "lastProbeTime"), "2023-11-14T22:13:20Z");
	assert_string_equal(obj_str(p, "status.printableStatus"), "CrashLoopBackOff");
	json_object_put(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mode),
	    cmocka_unit_test(test_fail_regex),
	    cmocka_unit_test(test_patch_then_matches),
	    cmocka_unit_test(test_fail_details),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_policy.c: strategies read from the pool spec, selection order and filters,
 * the maxUnavailable budget, durations and the autohealing rule (planner/policy.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../planner/policy.h"
#include "obj.h"
#include "timeutil.h"

#define SI   "spec.scaleInStrategy"
#define SIP  SI ".proactive.selectionPolicy"
#define UPP  "spec.updateStrategy.proactive.selectionPolicy"
#define NODE SIP ".selectors.nodeSelectorRequirementMatcher"

static json_object *jparse(const char *s)
{
	json_object *j = json_tokener_parse(s);

	if (j == NULL)
		fail_msg("bad JSON in test: %s", s);
	return j;
}

/* the pool {"spec": <spec>} must parse */
static void parse_ok(const char *spec, struct policy *p)
{
	char buf[4096], err[1024] = "";
	json_object *pool;

	snprintf(buf, sizeof buf, "{\"metadata\":{\"name\":\"p\"},\"spec\":%s}", spec);
	pool = jparse(buf);
	if (policy_parse(pool, p, err, sizeof err) != 0)
		fail_msg("%s: %s", spec, err);
	json_object_put(pool);
}

/* the pool {"spec": <spec>} must fail with a message containing want (and want2) */
static void parse_bad(const char *spec, const char *want, const char *want2)
{
	char buf[4096], err[1024] = "";
	struct policy p;
	json_object *pool;
	int r;

	snprintf(buf, sizeof buf, "{\"spec\":%s}", spec);
	pool = jparse(buf);
	r = policy_parse(pool, &p, err, sizeof err);
	json_object_put(pool);
	if (r == 0) {
		policy_clear(&p);
		fail_msg("%s parsed but should fail with \"%s\"", spec, want);
	}
	assert_int_equal(r, -1);
	if (strstr(err, want) == NULL)
		fail_msg("%s: error \"%s\" lacks \"%s\"", spec, err, want);
	if (want2 != NULL && strstr(err, want2) == NULL)
		fail_msg("%s: error \"%s\" lacks \"%s\"", spec, err, want2);
}

static void check_defaults(const struct policy *p)
{
	assert_int_equal(p->paused, 0);
	assert_int_equal(p->scalein, SCALEIN_PROACTIVE);
	assert_int_equal(p->scalein_sel.sort, SORT_RANDOM);
	assert_null(p->scalein_sel.labels);
	assert_null(p->scalein_sel.nodes);
	assert_int_equal(p->preserve_proactive, PRESERVE_DISABLED);
	assert_int_equal(p->preserve_opportunistic, PRESERVE_DISABLED);
	assert_int_equal(p->update, UPDATE_PROACTIVE);
	assert_int_equal(p->update_sel.sort, SORT_NONE);
	assert_null(p->update_sel.labels);
	assert_null(p->update_sel.nodes);
	assert_int_equal(p->max_unavailable_percent, 1);
	assert_int_equal(p->max_unavailable, 100);
	assert_int_equal(p->autoheal, 0);
	assert_int_equal(p->autoheal_threshold, 3);
	assert_true(p->autoheal_duration == 300);
}

static void test_defaults(void **state)
{
	struct policy p;
	char err[64] = "";
	json_object *pool;

	(void)state;
	parse_ok("{}", &p);
	check_defaults(&p);
	policy_clear(&p);
	/* explicit nulls are absent fields */
	parse_ok("{\"paused\":null,\"scaleInStrategy\":null,\"updateStrategy\":null,"
	         "\"maxUnavailable\":null,\"autohealing\":null}",
	    &p);
	check_defaults(&p);
	policy_clear(&p);
	pool = jparse("{\"metadata\":{\"name\":\"p\"}}");
	assert_int_equal(policy_parse(pool, &p, err, sizeof err), 0);
	check_defaults(&p);
	policy_clear(&p);
	json_object_put(pool);
}

static void test_sort_names(void **state)
{
	static const struct {
		const char *name;
		enum policy_sort sort;
	} t[] = {
	    {"AscendingOrder", SORT_ASCENDING},
	    {"DescendingOrder", SORT_DESCENDING},
	    {"Newest", SORT_NEWEST},
	    {"Oldest", SORT_OLDEST},
	    {"Random", SORT_RANDOM},
	};
	char spec[512];
	struct policy p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		snprintf(spec, sizeof spec,
		    "{\"scaleInStrategy\":{\"proactive\":{\"selectionPolicy\":"
		    "{\"sortPolicy\":\"%s\"}}},\"updateStrategy\":{\"proactive\":"
		    "{\"selectionPolicy\":{\"sortPolicy\":\"%s\"}}}}",
		    t[i].name, t[i].name);
		parse_ok(spec, &p);
		assert_int_equal(p.scalein, SCALEIN_PROACTIVE);
		assert_int_equal(p.scalein_sel.sort, t[i].sort);
		assert_int_equal(p.update, UPDATE_PROACTIVE);
		assert_int_equal(p.update_sel.sort, t[i].sort);
		policy_clear(&p);
	}
	/* proactive without a sort policy: Random for both */
	parse_ok(
	    "{\"scaleInStrategy\":{\"proactive\":{}},\"updateStrategy\":{\"proactive\":{}}}", &p);
	assert_int_equal(p.scalein_sel.sort, SORT_RANDOM);
	assert_int_equal(p.update_sel.sort, SORT_RANDOM);
	policy_clear(&p);
}

static void test_strategies(void **state)
{
	static const struct {
		const char *name;
		enum policy_preserve v;
	} pres[] = {
	    {"Disabled", PRESERVE_DISABLED},
	    {"Offline", PRESERVE_OFFLINE},
	    {"Online", PRESERVE_ONLINE},
	};
	char spec[512];
	struct policy p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof pres / sizeof pres[0]; i++) {
		snprintf(spec, sizeof spec,
		    "{\"scaleInStrategy\":{\"proactive\":{\"statePreservation\":\"%s\"}}}",
		    pres[i].name);
		parse_ok(spec, &p);
		assert_int_equal(p.scalein, SCALEIN_PROACTIVE);
		assert_int_equal(p.preserve_proactive, pres[i].v);
		assert_int_equal(p.preserve_opportunistic, PRESERVE_DISABLED);
		policy_clear(&p);
		snprintf(spec, sizeof spec,
		    "{\"scaleInStrategy\":{\"opportunistic\":{\"statePreservation\":\"%s\"}}}",
		    pres[i].name);
		parse_ok(spec, &p);
		assert_int_equal(p.scalein, SCALEIN_OPPORTUNISTIC);
		assert_int_equal(p.preserve_opportunistic, pres[i].v);
		assert_int_equal(p.preserve_proactive, PRESERVE_DISABLED);
		policy_clear(&p);
	}
	parse_ok("{\"scaleInStrategy\":{\"opportunistic\":{}}}", &p);
	assert_int_equal(p.scalein, SCALEIN_OPPORTUNISTIC);
	assert_int_equal(p.preserve_opportunistic, PRESERVE_DISABLED);
	policy_clear(&p);
	parse_ok("{\"scaleInStrategy\":{\"unmanaged\":{}}}", &p);
	assert_int_equal(p.scalein, SCALEIN_UNMANAGED);
	policy_clear(&p);
	parse_ok("{\"scaleInStrategy\":{}}", &p);
	assert_int_equal(p.scalein, SCALEIN_PROACTIVE);
	assert_int_equal(p.scalein_sel.sort, SORT_RANDOM);
	policy_clear(&p);

	parse_ok("{\"updateStrategy\":{\"unmanaged\":{}}}", &p);
	assert_int_equal(p.update, UPDATE_UNMANAGED);
	assert_int_equal(p.update_sel.sort, SORT_NONE);
	policy_clear(&p);
	parse_ok("{\"updateStrategy\":{\"opportunistic\":{}}}", &p);
	assert_int_equal(p.update, UPDATE_OPPORTUNISTIC);
	assert_int_equal(p.update_sel.sort, SORT_NONE);
	policy_clear(&p);
	parse_ok("{\"updateStrategy\":{}}", &p);
	assert_int_equal(p.update, UPDATE_PROACTIVE);
	assert_int_equal(p.update_sel.sort, SORT_NONE);
	policy_clear(&p);

	parse_ok("{\"paused\":true}", &p);
	assert_int_equal(p.paused, 1);
	policy_clear(&p);
	parse_ok("{\"paused\":false}", &p);
	assert_int_equal(p.paused, 0);
	policy_clear(&p);
}

static void test_autohealing(void **state)
{
	struct policy p;

	(void)state;
	parse_ok("{\"autohealing\":{}}", &p);
	assert_int_equal(p.autoheal, 1);
	assert_int_equal(p.autoheal_threshold, 3);
	assert_true(p.autoheal_duration == 300);
	policy_clear(&p);
	parse_ok("{\"autohealing\":{\"startUpFailureThreshold\":5,"
	         "\"minFailingToStartDuration\":\"2m0s\"}}",
	    &p);
	assert_int_equal(p.autoheal, 1);
	assert_int_equal(p.autoheal_threshold, 5);
	assert_true(p.autoheal_duration == 120);
	policy_clear(&p);
	parse_ok("{\"autohealing\":{\"startUpFailureThreshold\":1,"
	         "\"minFailingToStartDuration\":\"0\"}}",
	    &p);
	assert_int_equal(p.autoheal_threshold, 1);
	assert_true(p.autoheal_duration == 0);
	policy_clear(&p);
}

static void test_max_unavailable_parse(void **state)
{
	struct policy p;

	(void)state;
	parse_ok("{\"maxUnavailable\":3}", &p);
	assert_int_equal(p.max_unavailable_percent, 0);
	assert_int_equal(p.max_unavailable, 3);
	policy_clear(&p);
	parse_ok("{\"maxUnavailable\":\"25%\"}", &p);
	assert_int_equal(p.max_unavailable_percent, 1);
	assert_int_equal(p.max_unavailable, 25);
	policy_clear(&p);
	parse_ok("{\"maxUnavailable\":\"100%\"}", &p);
	assert_int_equal(p.max_unavailable_percent, 1);
	assert_int_equal(p.max_unavailable, 100);
	policy_clear(&p);
	/* SPEC 11.6: the controller reads a string without % as a percentage */
	parse_ok("{\"maxUnavailable\":\"40\"}", &p);
	assert_int_equal(p.max_unavailable_percent, 1);
	assert_int_equal(p.max_unavailable, 40);
	policy_clear(&p);
}

static void test_bad_inputs(void **state)
{
	static const struct {
		const char *spec, *want, *want2;
	} t[] = {
	    {"{\"updateStrategy\":{\"opportunistic\":{},\"unmanaged\":{}}}",
	        "spec.updateStrategy: only one strategy can be set at a time",
	        "found opportunistic and unmanaged"},
	    {"{\"scaleInStrategy\":{\"unmanaged\":{},\"opportunistic\":{},\"proactive\":{}}}",
	        "spec.scaleInStrategy: only one strategy",
	        "found opportunistic, proactive and unmanaged"},
	    {"{\"scaleInStrategy\":\"Random\"}", "spec.scaleInStrategy: must be an object", NULL},
	    {"{\"updateStrategy\":{\"proactive\":[]}}", "spec.updateStrategy.proactive: must be",
	        NULL},
	    {"{\"scaleInStrategy\":{\"unmanaged\":true}}", "spec.scaleInStrategy.unmanaged", NULL},
	    {"{\"maxUnavailable\":\"1O%\"}", "spec.maxUnavailable: \"1O%\" is not an integer",
	        "\"25%\""},
	    {"{\"maxUnavailable\":0}", "spec.maxUnavailable: 0", ">= 1"},
	    {"{\"maxUnavailable\":-2}", "spec.maxUnavailable", ">= 1"},
	    {"{\"maxUnavailable\":\"0%\"}", "spec.maxUnavailable", "\"1%\""},
	    {"{\"maxUnavailable\":\"101%\"}", "spec.maxUnavailable", "\"100%\""},
	    {"{\"maxUnavailable\":\"0\"}", "spec.maxUnavailable", NULL},
	    {"{\"maxUnavailable\":\"\"}", "spec.maxUnavailable", NULL},
	    {"{\"maxUnavailable\":\"%\"}", "spec.maxUnavailable", NULL},
	    {"{\"maxUnavailable\":\"-5%\"}", "spec.maxUnavailable", NULL},
	    {"{\"maxUnavailable\":\"2.5%\"}", "spec.maxUnavailable", NULL},
	    {"{\"maxUnavailable\":1.5}", "spec.maxUnavailable", "integer"},
	    {"{\"maxUnavailable\":true}", "spec.maxUnavailable", NULL},
	    {"{\"scaleInStrategy\":{\"proactive\":{\"selectionPolicy\":"
	     "{\"sortPolicy\":\"Ascending\"}}}}",
	        SIP ".sortPolicy: unknown sort policy \"Ascending\"", "AscendingOrder"},
	    {"{\"scaleInStrategy\":{\"proactive\":{\"selectionPolicy\":{\"sortPolicy\":3}}}}",
	        SIP ".sortPolicy", "Random"},
	    {"{\"updateStrategy\":{\"proactive\":{\"selectionPolicy\":"
	     "{\"sortPolicy\":\"Newer\"}}}}",
	        UPP ".sortPolicy", "Newest"},
	    {"{\"scaleInStrategy\":{\"proactive\":{\"selectionPolicy\":[]}}}", SIP ": must be",
	        NULL},
	    {"{\"scaleInStrategy\":{\"proactive\":{\"statePreservation\":\"Frozen\"}}}",
	        SI ".proactive.statePreservation", "Disabled, Offline or Online"},
	    {"{\"scaleInStrategy\":{\"opportunistic\":{\"statePreservation\":\"offline\"}}}",
	        SI ".opportunistic.statePreservation", "Offline"},
	    {"{\"scaleInStrategy\":{\"proactive\":{\"selectionPolicy\":{\"selectors\":"
	     "{\"labelSelector\":{\"matchExpressions\":[{\"key\":\"a\","
	     "\"operator\":\"Near\"}]}}}}}}",
	        SIP ".selectors.labelSelector", "Near"},
	    {"{\"updateStrategy\":{\"proactive\":{\"selectionPolicy\":{\"selectors\":"
	     "{\"labelSelector\":\"app=a\"}}}}}",
	        UPP ".selectors.labelSelector", NULL},
	    {"{\"scaleInStrategy\":{\"proactive\":{\"selectionPolicy\":{\"selectors\":3}}}}",
	        SIP ".selectors: must be an object", NULL},
	    {"{\"scaleInStrategy\":{\"proactive\":{\"selectionPolicy\":{\"selectors\":"
	     "{\"nodeSelectorRequirementMatcher\":{}}}}}}",
	        NODE ": must be a list", NULL},
	    {"{\"scaleInStrategy\":{\"proactive\":{\"selectionPolicy\":{\"selectors\":"
	     "{\"nodeSelectorRequirementMatcher\":[{\"key\":\"zone\","
	     "\"operator\":\"Near\",\"values\":[\"a\"]}]}}}}}",
	        NODE "[0].operator: \"Near\"", "In, NotIn, Exists, DoesNotExist, Gt or Lt"},
	    {"{\"scaleInStrategy\":{\"proactive\":{\"selectionPolicy\":{\"selectors\":"
	     "{\"nodeSelectorRequirementMatcher\":[{\"key\":\"zone\","
	     "\"operator\":\"Exists\"},{\"key\":\"gen\",\"operator\":\"Gt\","
	     "\"values\":[\"1\",\"2\"]}]}}}}}",
	        NODE "[1]: operator Gt needs exactly one value", NULL},
	    {"{\"scaleInStrategy\":{\"proactive\":{\"selectionPolicy\":{\"selectors\":"
	     "{\"nodeSelectorRequirementMatcher\":[{\"key\":\"gen\",\"operator\":\"Lt\","
	     "\"values\":[\"abc\"]}]}}}}}",
	        NODE "[0]: operator Lt needs exactly one value, an integer", NULL},
	    {"{\"scaleInStrategy\":{\"proactive\":{\"selectionPolicy\":{\"selectors\":"
	     "{\"nodeSelectorRequirementMatcher\":[{\"key\":\"gen\","
	     "\"operator\":\"Gt\"}]}}}}}",
	        NODE "[0]: operator Gt", NULL},
	    {"{\"scaleInStrategy\":{\"proactive\":{\"selectionPolicy\":{\"selectors\":"
	     "{\"nodeSelectorRequirementMatcher\":[{\"key\":\"zone\","
	     "\"operator\":\"In\"}]}}}}}",
	        NODE "[0]", "non-empty"},
	    {"{\"scaleInStrategy\":{\"proactive\":{\"selectionPolicy\":{\"selectors\":"
	     "{\"nodeSelectorRequirementMatcher\":[{\"key\":\"zone\","
	     "\"operator\":\"NotIn\",\"values\":[]}]}}}}}",
	        NODE "[0]", "non-empty"},
	    {"{\"scaleInStrategy\":{\"proactive\":{\"selectionPolicy\":{\"selectors\":"
	     "{\"nodeSelectorRequirementMatcher\":[{\"key\":\"zone\","
	     "\"operator\":\"Exists\",\"values\":[\"a\"]}]}}}}}",
	        NODE "[0]", "empty"},
	    {"{\"scaleInStrategy\":{\"proactive\":{\"selectionPolicy\":{\"selectors\":"
	     "{\"nodeSelectorRequirementMatcher\":[{\"operator\":\"Gt\","
	     "\"values\":[\"1\"]}]}}}}}",
	        NODE "[0]", "key"},
	    {"{\"updateStrategy\":{\"proactive\":{\"selectionPolicy\":{\"selectors\":"
	     "{\"nodeSelectorRequirementMatcher\":[\"zone\"]}}}}}",
	        UPP ".selectors.nodeSelectorRequirementMatcher[0]: must be an object", NULL},
	    {"{\"autohealing\":{\"minFailingToStartDuration\":\"5x\"}}",
	        "spec.autohealing.minFailingToStartDuration: \"5x\"", "\"5m\""},
	    {"{\"autohealing\":{\"minFailingToStartDuration\":\"-5m\"}}",
	        "spec.autohealing.minFailingToStartDuration", NULL},
	    {"{\"autohealing\":{\"minFailingToStartDuration\":300}}",
	        "spec.autohealing.minFailingToStartDuration", NULL},
	    {"{\"autohealing\":{\"startUpFailureThreshold\":0}}",
	        "spec.autohealing.startUpFailureThreshold", ">= 1"},
	    {"{\"autohealing\":{\"startUpFailureThreshold\":\"3\"}}",
	        "spec.autohealing.startUpFailureThreshold", NULL},
	    {"{\"autohealing\":true}", "spec.autohealing: must be an object", NULL},
	    {"{\"paused\":\"yes\"}", "spec.paused: must be true or false", NULL},
	    /* several problems in one message */
	    {"{\"paused\":1,\"maxUnavailable\":\"x\"}", "spec.paused: must be true or false; ",
	        "; spec.maxUnavailable: \"x\""},
	    {"[]", "spec: must be an object", NULL},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof t / sizeof t[0]; i++)
		parse_bad(t[i].spec, t[i].want, t[i].want2);
}

static void test_bad_truncated(void **state)
{
	char err[24];
	struct policy p;
	json_object *pool = jparse("{\"spec\":{\"paused\":1,\"maxUnavailable\":\"x\","
	                           "\"autohealing\":{\"minFailingToStartDuration\":\"y\"}}}");

	(void)state;
	memset(err, 'Z', sizeof err);
	assert_int_equal(policy_parse(pool, &p, err, sizeof err), -1);
	assert_true(memchr(err, '\0', sizeof err) != NULL);
	assert_int_equal(strlen(err), sizeof err - 1);
	assert_int_equal(strncmp(err, "spec.paused", 11), 0);
	assert_int_equal(policy_parse(pool, &p, NULL, 0), -1);
	assert_int_equal(policy_parse(pool, &p, err, 1), -1);
	assert_string_equal(err, "");
	json_object_put(pool);
}

/* ---- ordering ---- */

static json_object *vm_new(const char *name, const char *ts, const char *labels, const char *nodes)
{
	char buf[1024], tsbuf[128];

	if (ts != NULL)
		snprintf(tsbuf, sizeof tsbuf, ",\"creationTimestamp\":\"%s\"", ts);
	else
		tsbuf[0] = '\0';
	snprintf(buf, sizeof buf,
	    "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"ns\"%s},\"spec\":{\"template\":"
	    "{\"metadata\":{\"labels\":%s},\"spec\":{\"nodeSelector\":%s,\"domain\":{}}}}}",
	    name, tsbuf, labels != NULL ? labels : "null", nodes != NULL ? nodes : "null");
	return jparse(buf);
}

static void vms_free(json_object **vms, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		json_object_put(vms[i]);
}

/* the names of vms[0..n) joined with "," */
static const char *names(json_object **vms, size_t n)
{
	static char out[512];
	size_t i;

	out[0] = '\0';
	for (i = 0; i < n; i++) {
		if (i > 0)
			strcat(out, ",");
		strcat(out, obj_name(vms[i]));
	}
	return out;
}

static size_t order_by(enum policy_sort sort, json_object **vms, size_t n, unsigned int seed)
{
	struct policy_selection sel = {sort, NULL, NULL};

	return policy_order(&sel, vms, n, seed);
}

/* p-0..p-9 created at scrambled seconds: p-i at 2024-01-01T00:00:0<(i*7)%10>Z */
static void make_timed(json_object **vms, int with_missing)
{
	static const int input[] = {4, 9, 0, 7, 2, 5, 1, 8, 3, 6};
	char name[16], ts[64];
	int i, idx;

	for (i = 0; i < 10; i++) {
		idx = input[i];
		snprintf(name, sizeof name, "p-%d", idx);
		snprintf(ts, sizeof ts, "2024-01-01T00:00:0%dZ", (idx * 7) % 10);
		vms[i] = vm_new(name, with_missing && idx == 5 ? NULL : ts, NULL, NULL);
	}
}

static void test_order_index(void **state)
{
	json_object *vms[12];

	(void)state;
	make_timed(vms, 0);
	assert_int_equal(order_by(SORT_NONE, vms, 10, 1), 10);
	assert_string_equal(names(vms, 10), "p-4,p-9,p-0,p-7,p-2,p-5,p-1,p-8,p-3,p-6");
	assert_int_equal(order_by(SORT_ASCENDING, vms, 10, 1), 10);
	assert_string_equal(names(vms, 10), "p-0,p-1,p-2,p-3,p-4,p-5,p-6,p-7,p-8,p-9");
	assert_int_equal(order_by(SORT_DESCENDING, vms, 10, 1), 10);
	assert_string_equal(names(vms, 10), "p-9,p-8,p-7,p-6,p-5,p-4,p-3,p-2,p-1,p-0");
	/* numeric, not textual; an unparsable index counts as 0, ties by name */
	vms[10] = vm_new("p-10", NULL, NULL, NULL);
	vms[11] = vm_new("p-x", NULL, NULL, NULL);
	assert_int_equal(order_by(SORT_ASCENDING, vms, 12, 1), 12);
	assert_string_equal(names(vms, 12), "p-0,p-x,p-1,p-2,p-3,p-4,p-5,p-6,p-7,p-8,p-9,p-10");
	assert_int_equal(order_by(SORT_DESCENDING, vms, 12, 1), 12);
	assert_string_equal(names(vms, 12), "p-10,p-9,p-8,p-7,p-6,p-5,p-4,p-3,p-2,p-1,p-0,p-x");
	vms_free(vms, 12);
}

static void test_order_time(void **state)
{
	json_object *vms[11];

	(void)state;
	/* seconds: p-0 0, p-1 7, p-2 4, p-3 1, p-4 8, p-5 5, p-6 2, p-7 9, p-8 6, p-9 3 */
	make_timed(vms, 0);
	assert_int_equal(order_by(SORT_NEWEST, vms, 10, 1), 10);
	assert_string_equal(names(vms, 10), "p-7,p-4,p-1,p-8,p-5,p-2,p-9,p-6,p-3,p-0");
	assert_int_equal(order_by(SORT_OLDEST, vms, 10, 1), 10);
	assert_string_equal(names(vms, 10), "p-0,p-3,p-6,p-9,p-2,p-5,p-8,p-1,p-4,p-7");
	/* equal timestamps: by name */
	vms[10] = vm_new("p-a", "2024-01-01T00:00:07Z", NULL, NULL);
	assert_int_equal(order_by(SORT_NEWEST, vms, 11, 1), 11);
	assert_string_equal(names(vms, 11), "p-7,p-4,p-1,p-a,p-8,p-5,p-2,p-9,p-6,p-3,p-0");
	assert_int_equal(order_by(SORT_OLDEST, vms, 11, 1), 11);
	assert_string_equal(names(vms, 11), "p-0,p-3,p-6,p-9,p-2,p-5,p-8,p-1,p-a,p-4,p-7");
	vms_free(vms, 11);

	/* no timestamp: time 0, the oldest */
	make_timed(vms, 1);
	assert_int_equal(order_by(SORT_OLDEST, vms, 10, 1), 10);
	assert_string_equal(names(vms, 10), "p-5,p-0,p-3,p-6,p-9,p-2,p-8,p-1,p-4,p-7");
	assert_int_equal(order_by(SORT_NEWEST, vms, 10, 1), 10);
	assert_string_equal(names(vms, 10), "p-7,p-4,p-1,p-8,p-2,p-9,p-6,p-3,p-0,p-5");
	vms_free(vms, 10);
}

static void test_order_random(void **state)
{
	json_object *a[10], *b[10], *c[10];
	char sa[512], sb[512], sc[512];
	size_t i, j;

	(void)state;
	make_timed(a, 0);
	for (i = 0; i < 10; i++) {
		b[i] = a[i];
		c[i] = a[i];
	}
	assert_int_equal(order_by(SORT_RANDOM, a, 10, 42), 10);
	assert_int_equal(order_by(SORT_RANDOM, b, 10, 42), 10);
	assert_int_equal(order_by(SORT_RANDOM, c, 10, 7), 10);
	snprintf(sa, sizeof sa, "%s", names(a, 10));
	snprintf(sb, sizeof sb, "%s", names(b, 10));
	snprintf(sc, sizeof sc, "%s", names(c, 10));
	/* same seed, same order; another seed, another order */
	assert_string_equal(sa, sb);
	assert_string_not_equal(sa, sc);
	/* a permutation: every VM exactly once */
	for (i = 0; i < 10; i++) {
		int seen = 0;

		for (j = 0; j < 10; j++)
			seen += a[j] == c[i];
		assert_int_equal(seen, 1);
	}
	/* seed 0 works (a fixed non-zero state) and shuffles too */
	for (i = 0; i < 10; i++)
		b[i] = c[i];
	assert_int_equal(order_by(SORT_RANDOM, b, 10, 0), 10);
	for (i = 0; i < 10; i++) {
		int seen = 0;

		for (j = 0; j < 10; j++)
			seen += b[j] == c[i];
		assert_int_equal(seen, 1);
	}
	/* one or no element */
	assert_int_equal(order_by(SORT_RANDOM, a, 1, 3), 1);
	assert_int_equal(order_by(SORT_RANDOM, a, 0, 3), 0);
	vms_free(a, 10);
}

/* ---- filters ---- */

static void sel_parse(const char *sp, struct policy *p)
{
	char spec[2048];

	snprintf(spec, sizeof spec,
	    "{\"scaleInStrategy\":{\"proactive\":{\"selectionPolicy\":%s}}}", sp);
	parse_ok(spec, p);
}

/* orders a scratch copy of all[0..n) (policy_order compacts it); the names kept */
static const char *order_names(const struct policy_selection *sel, json_object **all, size_t n)
{
	json_object *work[16];
	size_t kept;

	assert_true(n <= 16);
	memcpy(work, all, n * sizeof(*work));
	kept = policy_order(sel, work, n, 1);
	return names(work, kept);
}

static void test_filters(void **state)
{
	json_object *vms[6];
	struct policy p;

	(void)state;
	vms[0] = vm_new("p-0", NULL, "{\"tier\":\"db\"}", "{\"zone\":\"a\",\"gen\":\"3\"}");
	vms[1] = vm_new("p-1", NULL, "{\"tier\":\"web\"}", "{\"zone\":\"b\",\"gen\":\"5\"}");
	vms[2] = vm_new("p-2", NULL, "{\"tier\":\"db\"}", "{\"gen\":\"x\"}");
	vms[3] = vm_new("p-3", NULL, NULL, NULL);
	vms[4] = vm_new("p-4", NULL, "{\"tier\":\"db\"}", "{\"zone\":\"c\",\"gen\":\"10\"}");
	vms[5] = vm_new("p-5", NULL, "{\"tier\":\"db\"}", "{\"zone\":\"b\"}");

	/* no filters: all */
	sel_parse("{\"sortPolicy\":\"AscendingOrder\"}", &p);
	assert_string_equal(order_names(&p.scalein_sel, vms, 6), "p-0,p-1,p-2,p-3,p-4,p-5");
	policy_clear(&p);

	/* label selector on the template labels (the VMs' own labels are absent) */
	sel_parse("{\"sortPolicy\":\"DescendingOrder\",\"selectors\":{\"labelSelector\":"
	          "{\"matchLabels\":{\"tier\":\"db\"}}}}",
	    &p);
	assert_non_null(p.scalein_sel.labels);
	assert_null(p.scalein_sel.nodes);
	assert_false(policy_matches(&p.scalein_sel, vms[1]));
	assert_false(policy_matches(&p.scalein_sel, vms[3]));
	assert_true(policy_matches(&p.scalein_sel, vms[0]));
	assert_string_equal(order_names(&p.scalein_sel, vms, 6), "p-5,p-4,p-2,p-0");
	policy_clear(&p);
	sel_parse("{\"selectors\":{\"labelSelector\":{\"matchExpressions\":[{\"key\":\"tier\","
	          "\"operator\":\"NotIn\",\"values\":[\"db\"]}]}}}",
	    &p);
	assert_true(policy_matches(&p.scalein_sel, vms[1]));
	assert_true(policy_matches(&p.scalein_sel, vms[3]));
	assert_false(policy_matches(&p.scalein_sel, vms[0]));
	policy_clear(&p);

	/* node requirements against spec.template.spec.nodeSelector */
	sel_parse("{\"sortPolicy\":\"AscendingOrder\",\"selectors\":"
	          "{\"nodeSelectorRequirementMatcher\":[{\"key\":\"zone\",\"operator\":\"In\","
	          "\"values\":[\"a\",\"b\"]}]}}",
	    &p);
	assert_non_null(p.scalein_sel.nodes);
	assert_null(p.scalein_sel.labels);
	assert_string_equal(order_names(&p.scalein_sel, vms, 6), "p-0,p-1,p-5");
	policy_clear(&p);

	/* NotIn and DoesNotExist match VMs lacking the key */
	sel_parse("{\"selectors\":{\"nodeSelectorRequirementMatcher\":[{\"key\":\"zone\","
	          "\"operator\":\"NotIn\",\"values\":[\"b\"]}]}}",
	    &p);
	assert_true(policy_matches(&p.scalein_sel, vms[0]));
	assert_false(policy_matches(&p.scalein_sel, vms[1]));
	assert_true(policy_matches(&p.scalein_sel, vms[2]));
	assert_true(policy_matches(&p.scalein_sel, vms[3]));
	assert_true(policy_matches(&p.scalein_sel, vms[4]));
	assert_false(policy_matches(&p.scalein_sel, vms[5]));
	policy_clear(&p);
	sel_parse("{\"selectors\":{\"nodeSelectorRequirementMatcher\":[{\"key\":\"zone\","
	          "\"operator\":\"DoesNotExist\"}]}}",
	    &p);
	assert_false(policy_matches(&p.scalein_sel, vms[0]));
	assert_true(policy_matches(&p.scalein_sel, vms[2]));
	assert_true(policy_matches(&p.scalein_sel, vms[3]));
	policy_clear(&p);
	sel_parse("{\"selectors\":{\"nodeSelectorRequirementMatcher\":[{\"key\":\"zone\","
	          "\"operator\":\"Exists\"}]}}",
	    &p);
	assert_true(policy_matches(&p.scalein_sel, vms[0]));
	assert_false(policy_matches(&p.scalein_sel, vms[2]));
	assert_false(policy_matches(&p.scalein_sel, vms[3]));
	policy_clear(&p);

	/* Gt / Lt compare integers; missing or non-integer labels never match */
	sel_parse("{\"selectors\":{\"nodeSelectorRequirementMatcher\":[{\"key\":\"gen\","
	          "\"operator\":\"Gt\",\"values\":[\"4\"]}]}}",
	    &p);
	assert_false(policy_matches(&p.scalein_sel, vms[0])); /* 3 */
	assert_true(policy_matches(&p.scalein_sel, vms[1]));  /* 5 */
	assert_false(policy_matches(&p.scalein_sel, vms[2])); /* x */
	assert_false(policy_matches(&p.scalein_sel, vms[3])); /* no nodeSelector */
	assert_true(policy_matches(&p.scalein_sel, vms[4]));  /* 10: numeric, not "10" < "4" */
	assert_false(policy_matches(&p.scalein_sel, vms[5])); /* no gen */
	policy_clear(&p);
	sel_parse("{\"selectors\":{\"nodeSelectorRequirementMatcher\":[{\"key\":\"gen\","
	          "\"operator\":\"Lt\",\"values\":[\"5\"]}]}}",
	    &p);
	assert_true(policy_matches(&p.scalein_sel, vms[0]));
	assert_false(policy_matches(&p.scalein_sel, vms[1]));
	assert_false(policy_matches(&p.scalein_sel, vms[2]));
	assert_false(policy_matches(&p.scalein_sel, vms[3]));
	assert_false(policy_matches(&p.scalein_sel, vms[4]));
	policy_clear(&p);

	/* all filters at once; fewer matches than VMs, sorted order kept */
	sel_parse("{\"sortPolicy\":\"DescendingOrder\",\"selectors\":{\"labelSelector\":"
	          "{\"matchLabels\":{\"tier\":\"db\"}},\"nodeSelectorRequirementMatcher\":["
	          "{\"key\":\"zone\",\"operator\":\"Exists\"},{\"key\":\"gen\","
	          "\"operator\":\"Gt\",\"values\":[\"2\"]}]}}",
	    &p);
	assert_string_equal(order_names(&p.scalein_sel, vms, 6), "p-4,p-0");
	policy_clear(&p);

	/* update selection: nothing matches */
	parse_ok("{\"updateStrategy\":{\"proactive\":{\"selectionPolicy\":{\"selectors\":"
	         "{\"labelSelector\":{\"matchLabels\":{\"tier\":\"cache\"}}}}}}}",
	    &p);
	assert_int_equal(p.update_sel.sort, SORT_RANDOM);
	assert_non_null(p.update_sel.labels);
	assert_string_equal(order_names(&p.update_sel, vms, 6), "");
	policy_clear(&p);
	vms_free(vms, 6);
}

/* ---- budget ---- */

static long budget(const char *spec, long desired)
{
	struct policy p;
	long v;

	parse_ok(spec, &p);
	v = policy_max_unavailable(&p, desired);
	policy_clear(&p);
	return v;
}

static void test_budget(void **state)
{
	(void)state;
	assert_int_equal(budget("{\"maxUnavailable\":\"25%\"}", 10), 2);
	assert_int_equal(budget("{\"maxUnavailable\":\"10%\"}", 1), 1);
	assert_int_equal(budget("{\"maxUnavailable\":3}", 10), 3);
	assert_int_equal(budget("{\"maxUnavailable\":3}", 1), 3);
	assert_int_equal(budget("{}", 4), 4);
	assert_int_equal(budget("{}", 0), 1);
	assert_int_equal(budget("{\"maxUnavailable\":\"50%\"}", 0), 1);
	assert_int_equal(budget("{\"maxUnavailable\":\"50%\"}", 7), 3);
	assert_int_equal(budget("{\"maxUnavailable\":\"40\"}", 10), 4);
}

/* ---- durations ---- */

static void test_duration(void **state)
{
	static const struct {
		const char *s;
		double secs;
	} ok[] = {
	    {"5m", 300},
	    {"2m0s", 120},
	    {"1h30m", 5400},
	    {"90s", 90},
	    {"300ms", 0.3},
	    {"1.5h", 5400},
	    {"0", 0},
	    {"0s", 0},
	    {".5s", 0.5},
	    {"1us", 1e-6},
	    {"-1m", -60},
	};
	static const char *const bad[] = {
	    "5x",
	    "",
	    "5",
	    "m",
	    "1h30",
	    "-",
	    "1.h.",
	    "h1",
	    " 5m",
	    "5m ",
	    "1e3s",
	    ".s",
	};
	double d;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		d = -12345;
		if (policy_duration(ok[i].s, &d) != 0)
			fail_msg("\"%s\" did not parse", ok[i].s);
		if (d < ok[i].secs - 1e-9 || d > ok[i].secs + 1e-9)
			fail_msg("\"%s\" = %g, want %g", ok[i].s, d, ok[i].secs);
	}
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (policy_duration(bad[i], &d) != -1)
			fail_msg("\"%s\" parsed", bad[i]);
	}
	assert_int_equal(policy_duration(NULL, &d), -1);
}

/* ---- autohealing ---- */

static json_object *vm_status(const char *status)
{
	char buf[1024];

	snprintf(buf, sizeof buf, "{\"metadata\":{\"name\":\"p-0\"},\"status\":%s}", status);
	return jparse(buf);
}

static void test_failing(void **state)
{
	struct policy p;
	json_object *vm;
	double now = rfc3339_parse("2024-01-01T01:00:00Z"), wait;
	char st[512];

	(void)state;
	assert_true(now > 0);
	parse_ok("{\"autohealing\":{}}", &p);

	/* consecutive start failures at or over the threshold */
	vm = vm_status("{\"printableStatus\":\"Starting\",\"startFailure\":"
	               "{\"consecutiveFailCount\":3}}");
	assert_int_equal(policy_failing(&p, vm, now, &wait), 1);
	json_object_put(vm);
	vm = vm_status("{\"startFailure\":{\"consecutiveFailCount\":2}}");
	wait = 0;
	assert_int_equal(policy_failing(&p, vm, now, &wait), 0);
	assert_true(wait == -1);
	json_object_put(vm);

	/* CrashLoopBackOff, Ready=False probed 10 minutes ago: failing */
	snprintf(st, sizeof st,
	    "{\"printableStatus\":\"CrashLoopBackOff\",\"conditions\":[{\"type\":\"Ready\","
	    "\"status\":\"False\",\"lastProbeTime\":\"%s\","
	    "\"lastTransitionTime\":\"2024-01-01T00:59:00Z\"}]}",
	    "2024-01-01T00:50:00Z");
	vm = vm_status(st);
	assert_int_equal(policy_failing(&p, vm, now, &wait), 1);
	json_object_put(vm);

	/* probed 1 minute ago: not yet, about 240 s to go */
	vm = vm_status("{\"printableStatus\":\"ErrImagePull\",\"conditions\":[{\"type\":"
	               "\"Ready\",\"status\":\"False\",\"lastProbeTime\":"
	               "\"2024-01-01T00:59:00Z\"}]}");
	assert_int_equal(policy_failing(&p, vm, now, &wait), 0);
	assert_true(wait > 239.9 && wait < 240.1);
	assert_int_equal(policy_failing(&p, vm, now, NULL), 0);
	json_object_put(vm);

	/* no lastProbeTime (null): lastTransitionTime counts */
	vm = vm_status("{\"printableStatus\":\"ErrorUnschedulable\",\"conditions\":[{\"type\":"
	               "\"Ready\",\"status\":\"False\",\"lastProbeTime\":null,"
	               "\"lastTransitionTime\":\"2024-01-01T00:55:00Z\"}]}");
	assert_int_equal(policy_failing(&p, vm, now, &wait), 1);
	json_object_put(vm);

	/* a crash status with Ready=True, or no Ready condition: time will not help */
	vm = vm_status("{\"printableStatus\":\"CrashLoopBackOff\",\"conditions\":[{\"type\":"
	               "\"Ready\",\"status\":\"True\",\"lastProbeTime\":"
	               "\"2024-01-01T00:00:00Z\"}]}");
	assert_int_equal(policy_failing(&p, vm, now, &wait), 0);
	assert_true(wait == -1);
	json_object_put(vm);

	/* running VM: not failing, never by time alone */
	vm = vm_status("{\"printableStatus\":\"Running\",\"conditions\":[{\"type\":\"Ready\","
	               "\"status\":\"False\",\"lastProbeTime\":\"2024-01-01T00:00:00Z\"}]}");
	wait = 0;
	assert_int_equal(policy_failing(&p, vm, now, &wait), 0);
	assert_true(wait == -1);
	json_object_put(vm);
	vm = vm_status("{}");
	assert_int_equal(policy_failing(&p, vm, now, &wait), 0);
	assert_true(wait == -1);
	json_object_put(vm);
	policy_clear(&p);

	/* a custom threshold and duration */
	parse_ok("{\"autohealing\":{\"startUpFailureThreshold\":1,"
	         "\"minFailingToStartDuration\":\"30s\"}}",
	    &p);
	vm = vm_status("{\"startFailure\":{\"consecutiveFailCount\":1}}");
	assert_int_equal(policy_failing(&p, vm, now, &wait), 1);
	json_object_put(vm);
	vm = vm_status("{\"printableStatus\":\"ErrImagePull\",\"conditions\":[{\"type\":"
	               "\"Ready\",\"status\":\"False\",\"lastProbeTime\":"
	               "\"2024-01-01T00:59:00Z\"}]}");
	assert_int_equal(policy_failing(&p, vm, now, &wait), 1);
	json_object_put(vm);
	policy_clear(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_sort_names),
	    cmocka_unit_test(test_strategies),
	    cmocka_unit_test(test_autohealing),
	    cmocka_unit_test(test_max_unavailable_parse),
	    cmocka_unit_test(test_bad_inputs),
	    cmocka_unit_test(test_bad_truncated),
	    cmocka_unit_test(test_order_index),
	    cmocka_unit_test(test_order_time),
	    cmocka_unit_test(test_order_random),
	    cmocka_unit_test(test_filters),
	    cmocka_unit_test(test_budget),
	    cmocka_unit_test(test_duration),
	    cmocka_unit_test(test_failing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

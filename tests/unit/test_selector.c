/* test_selector.c: LabelSelector parsing, matching and the canonical string (SPEC 15). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "selector.h"

static struct selector *parse(const char *json, char *err, size_t errlen)
{
	json_object *j = json_tokener_parse(json);
	struct selector *s;

	if (strcmp(json, "null") != 0) /* json-c's null is NULL */
		assert_non_null(j);
	s = selector_parse(j, err, errlen);
	json_object_put(j);
	return s;
}

/* the canonical string of json, which must parse */
static void check_string(const char *json, const char *want)
{
	char err[256] = "";
	struct selector *s = parse(json, err, sizeof err);
	char *got;

	if (s == NULL)
		fail_msg("%s: %s", json, err);
	got = selector_string(s);
	assert_string_equal(got, want);
	free(got);
	selector_free(s);
}

/* json must fail with an error containing want */
static void check_error(const char *json, const char *want)
{
	char err[256] = "";
	struct selector *s = parse(json, err, sizeof err);

	if (s != NULL) {
		selector_free(s);
		fail_msg("%s parsed but should fail with \"%s\"", json, want);
	}
	if (strstr(err, want) == NULL)
		fail_msg("%s: error \"%s\" lacks \"%s\"", json, err, want);
}

static int matches(const char *sel, const char *labels)
{
	char err[256] = "";
	struct selector *s = parse(sel, err, sizeof err);
	json_object *l = labels != NULL ? json_tokener_parse(labels) : NULL;
	int m;

	if (s == NULL)
		fail_msg("%s: %s", sel, err);
	m = selector_matches(s, l);
	json_object_put(l);
	selector_free(s);
	return m;
}

static void test_required(void **state)
{
	char err[256] = "";

	assert_null(selector_parse(NULL, err, sizeof err));
	assert_string_equal(err, "selector is required");
	check_error("null", "selector is required");
	check_error("[]", "selector must be an object");
	check_error("\"app=a\"", "selector must be an object");
}

static void test_bad_shapes(void **state)
{
	check_error("{\"matchLabels\": []}", "matchLabels must be an object");
	check_error("{\"matchLabels\": {\"a\": 1}}", "matchLabels[a]: value must be a string");
	check_error("{\"matchLabels\": {\"a\": null}}", "matchLabels[a]: value must be a string");
	check_error("{\"matchExpressions\": {}}", "matchExpressions must be a list");
	check_error("{\"matchExpressions\": [1]}", "matchExpressions[0] must be an object");
	check_error("{\"matchExpressions\": [{\"operator\": \"Exists\"}]}",
	    "matchExpressions[0]: key must be a string");
	check_error("{\"matchExpressions\": [{\"key\": \"a\"}]}",
	    "matchExpressions[0]: operator must be a string");
	check_error("{\"matchExpressions\": [{\"key\": \"a\", \"operator\": \"Exists\"},"
	            "{\"key\": \"b\", \"operator\": \"Foo\"}]}",
	    "matchExpressions[1]: operator \"Foo\" is not In, NotIn, Exists or DoesNotExist");
	check_error("{\"matchExpressions\": [{\"key\": \"a\", \"operator\": \"in\", "
	            "\"values\": [\"x\"]}]}",
	    "operator \"in\" is not In, NotIn, Exists or DoesNotExist");
	check_error("{\"matchExpressions\": [{\"key\": \"a\", \"operator\": \"In\", "
	            "\"values\": \"x\"}]}",
	    "matchExpressions[0]: values must be a list");
	check_error("{\"matchExpressions\": [{\"key\": \"a\", \"operator\": \"In\", "
	            "\"values\": [\"x\", 2]}]}",
	    "matchExpressions[0]: values[1] must be a string");
}

static void test_values_rules(void **state)
{
	check_error("{\"matchExpressions\": [{\"key\": \"a\", \"operator\": \"In\"}]}",
	    "values must be non-empty for operator In");
	check_error("{\"matchExpressions\": [{\"key\": \"a\", \"operator\": \"NotIn\", "
	            "\"values\": []}]}",
	    "values must be non-empty for operator NotIn");
	check_error("{\"matchExpressions\": [{\"key\": \"a\", \"operator\": \"Exists\", "
	            "\"values\": [\"x\"]}]}",
	    "values must be empty for operator Exists");
	check_error("{\"matchExpressions\": [{\"key\": \"a\", \"operator\": \"DoesNotExist\", "
	            "\"values\": [\"x\"]}]}",
	    "values must be empty for operator DoesNotExist");
	/* empty and null values lists are fine for Exists / DoesNotExist */
	check_string("{\"matchExpressions\": [{\"key\": \"a\", \"operator\": \"Exists\", "
	             "\"values\": []}, {\"key\": \"b\", \"operator\": \"DoesNotExist\", "
	             "\"values\": null}]}",
	    "a,!b");
}

static void test_key_validation(void **state)
{
	check_error("{\"matchLabels\": {\"\": \"x\"}}", "name part must be non-empty");
	check_error("{\"matchLabels\": {\"-a\": \"x\"}}", "key \"-a\": must consist of");
	check_error("{\"matchLabels\": {\"a-\": \"x\"}}", "must start and end with");
	check_error("{\"matchLabels\": {\"a b\": \"x\"}}", "key \"a b\"");
	check_error("{\"matchLabels\": {\"/a\": \"x\"}}", "prefix part must be non-empty");
	check_error("{\"matchLabels\": {\"example.com/\": \"x\"}}", "name part must be non-empty");
	check_error("{\"matchLabels\": {\"Example.com/a\": \"x\"}}", "lowercase RFC 1123");
	check_error("{\"matchLabels\": {\"ex..com/a\": \"x\"}}", "lowercase RFC 1123");
	check_error("{\"matchLabels\": {\"ex.-com/a\": \"x\"}}", "lowercase RFC 1123");
	check_error("{\"matchLabels\": {\"a/b/c\": \"x\"}}", "at most one '/'");
	check_error(
	    "{\"matchLabels\": {\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "\": \"x\"}}",
	    "no more than 63 characters");
	check_error("{\"matchExpressions\": [{\"key\": \"a_\", \"operator\": \"Exists\"}]}",
	    "matchExpressions[0]: key \"a_\"");
	/* valid keys: 63 chars, prefixed, mixed case, inner punctuation */
	check_string("{\"matchLabels\": "
	             "{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":"
	             " \"x\"}}",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=x");
	check_string("{\"matchLabels\": {\"kubevirt.io/vm-pool.Name_x\": \"x\"}}",
	    "kubevirt.io/vm-pool.Name_x=x");
	check_string("{\"matchLabels\": {\"a-b.c/D\": \"x\"}}", "a-b.c/D=x");
}

static void test_value_validation(void **state)
{
	check_error("{\"matchLabels\": {\"a\": \"-x\"}}", "matchLabels[a]: value \"-x\"");
	check_error("{\"matchLabels\": {\"a\": \"x y\"}}", "must consist of");
	check_error("{\"matchLabels\": {\"a\": \"x/y\"}}", "value \"x/y\"");
	check_error("{\"matchLabels\": {\"a\": "
	            "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	            "\"}}",
	    "no more than 63 characters");
	check_error("{\"matchExpressions\": [{\"key\": \"a\", \"operator\": \"In\", "
	            "\"values\": [\"ok\", \"not ok\"]}]}",
	    "matchExpressions[0]: value \"not ok\"");
	/* an empty value is valid */
	check_string("{\"matchLabels\": {\"a\": \"\"}}", "a=");
	check_string("{\"matchLabels\": {\"a\": \"A.b_c-9\"}}", "a=A.b_c-9");
}

static void test_string_empty(void **state)
{
	check_string("{}", "");
	check_string("{\"matchLabels\": {}, \"matchExpressions\": []}", "");
	check_string("{\"matchLabels\": null, \"matchExpressions\": null}", "");
}

static void test_string_canonical(void **state)
{
	check_string("{\"matchLabels\": {\"app\": \"a\"}}", "app=a");
	check_string(
	    "{\"matchLabels\": {\"z\": \"1\", \"b\": \"2\", \"m\": \"3\"}}", "b=2,m=3,z=1");
	check_string("{\"matchExpressions\": [{\"key\": \"env\", \"operator\": \"In\", "
	             "\"values\": [\"prod\", \"dev\", \"qa\", \"dev\"]}]}",
	    "env in (dev,prod,qa)");
	check_string("{\"matchExpressions\": [{\"key\": \"env\", \"operator\": \"In\", "
	             "\"values\": [\"v\"]}]}",
	    "env in (v)");
	check_string("{\"matchExpressions\": [{\"key\": \"tier\", \"operator\": \"NotIn\", "
	             "\"values\": [\"b\", \"a\", \"b\"]}]}",
	    "tier notin (a,b)");
	check_string("{\"matchExpressions\": [{\"key\": \"x\", \"operator\": \"Exists\"}]}", "x");
	check_string(
	    "{\"matchExpressions\": [{\"key\": \"x\", \"operator\": \"DoesNotExist\"}]}", "!x");
	/* the example from selector.h */
	check_string("{\"matchLabels\": {\"app\": \"a\"}, \"matchExpressions\": ["
	             "{\"key\": \"gone\", \"operator\": \"DoesNotExist\"},"
	             "{\"key\": \"env\", \"operator\": \"In\", \"values\": [\"prod\", \"dev\"]}]}",
	    "app=a,env in (dev,prod),!gone");
	/* mixed, sorted by key across matchLabels and expressions */
	check_string(
	    "{\"matchLabels\": {\"zone\": \"z1\", \"app\": \"web\"}, "
	    "\"matchExpressions\": ["
	    "{\"key\": \"tier\", \"operator\": \"NotIn\", \"values\": [\"db\", \"cache\"]},"
	    "{\"key\": \"kubevirt.io/pool\", \"operator\": \"Exists\"},"
	    "{\"key\": \"beta\", \"operator\": \"DoesNotExist\"}]}",
	    "app=web,!beta,kubevirt.io/pool,tier notin (cache,db),zone=z1");
}

static void test_string_equal_keys(void **state)
{
	/* equal keys: matchLabels, then In, NotIn, Exists, DoesNotExist, whatever the input
	 * order; equal operators by their values */
	check_string("{\"matchLabels\": {\"k\": \"v\"}, \"matchExpressions\": ["
	             "{\"key\": \"k\", \"operator\": \"DoesNotExist\"},"
	             "{\"key\": \"k\", \"operator\": \"Exists\"},"
	             "{\"key\": \"k\", \"operator\": \"NotIn\", \"values\": [\"x\"]},"
	             "{\"key\": \"k\", \"operator\": \"In\", \"values\": [\"v\", \"w\"]},"
	             "{\"key\": \"k\", \"operator\": \"In\", \"values\": [\"a\"]}]}",
	    "k=v,k in (a),k in (v,w),k notin (x),k,!k");
	check_string("{\"matchExpressions\": ["
	             "{\"key\": \"k\", \"operator\": \"In\", \"values\": [\"a\"]},"
	             "{\"key\": \"k\", \"operator\": \"In\", \"values\": [\"v\", \"w\"]},"
	             "{\"key\": \"k\", \"operator\": \"NotIn\", \"values\": [\"x\"]}],"
	             "\"matchLabels\": {\"k\": \"v\"}}",
	    "k=v,k in (a),k in (v,w),k notin (x)");
}

static void test_empty_matches_all(void **state)
{
	char err[64];
	json_object *j = json_tokener_parse("{}");
	struct selector *s = selector_parse(j, err, sizeof err);

	assert_non_null(s);
	assert_true(selector_is_empty(s));
	assert_true(selector_matches(s, NULL));
	selector_free(s);
	json_object_put(j);
	assert_true(matches("{}", "{\"a\": \"b\"}"));
	j = json_tokener_parse("{\"matchLabels\": {\"a\": \"b\"}}");
	s = selector_parse(j, err, sizeof err);
	assert_false(selector_is_empty(s));
	selector_free(s);
	json_object_put(j);
}

static void test_match_labels(void **state)
{
	const char *sel = "{\"matchLabels\": {\"app\": \"web\", \"env\": \"prod\"}}";

	assert_true(matches(sel, "{\"app\": \"web\", \"env\": \"prod\", \"x\": \"y\"}"));
	assert_false(matches(sel, "{\"app\": \"web\"}"));
	assert_false(matches(sel, "{\"app\": \"web\", \"env\": \"dev\"}"));
	assert_false(matches(sel, "{}"));
	assert_false(matches(sel, NULL));
	assert_true(matches("{\"matchLabels\": {\"a\": \"\"}}", "{\"a\": \"\"}"));
	assert_false(matches("{\"matchLabels\": {\"a\": \"\"}}", "{}"));
}

static void test_match_expressions(void **state)
{
	const char *in = "{\"matchExpressions\": [{\"key\": \"env\", \"operator\": \"In\", "
	                 "\"values\": [\"dev\", \"prod\"]}]}";
	const char *notin = "{\"matchExpressions\": [{\"key\": \"env\", \"operator\": "
	                    "\"NotIn\", \"values\": [\"dev\", \"prod\"]}]}";
	const char *ex = "{\"matchExpressions\": [{\"key\": \"env\", \"operator\": \"Exists\"}]}";
	const char *nex = "{\"matchExpressions\": [{\"key\": \"env\", \"operator\": "
	                  "\"DoesNotExist\"}]}";

	assert_true(matches(in, "{\"env\": \"prod\"}"));
	assert_true(matches(in, "{\"env\": \"dev\"}"));
	assert_false(matches(in, "{\"env\": \"qa\"}"));
	assert_false(matches(in, "{}"));
	assert_false(matches(in, NULL));

	assert_false(matches(notin, "{\"env\": \"prod\"}"));
	assert_true(matches(notin, "{\"env\": \"qa\"}"));
	assert_true(matches(notin, "{}")); /* lacking the key matches NotIn */
	assert_true(matches(notin, NULL));

	assert_true(matches(ex, "{\"env\": \"\"}"));
	assert_false(matches(ex, "{\"other\": \"x\"}"));
	assert_false(matches(nex, "{\"env\": \"x\"}"));
	assert_true(matches(nex, "{\"other\": \"x\"}"));
	assert_true(matches(nex, NULL));
}

static void test_match_combined(void **state)
{
	const char *sel = "{\"matchLabels\": {\"app\": \"web\"}, \"matchExpressions\": ["
	                  "{\"key\": \"tier\", \"operator\": \"NotIn\", \"values\": [\"db\"]},"
	                  "{\"key\": \"canary\", \"operator\": \"DoesNotExist\"},"
	                  "{\"key\": \"zone\", \"operator\": \"Exists\"}]}";

	assert_true(matches(sel, "{\"app\": \"web\", \"zone\": \"a\"}"));
	assert_true(matches(sel, "{\"app\": \"web\", \"zone\": \"a\", \"tier\": \"fe\"}"));
	assert_false(matches(sel, "{\"app\": \"web\", \"zone\": \"a\", \"tier\": \"db\"}"));
	assert_false(matches(sel, "{\"app\": \"web\", \"zone\": \"a\", \"canary\": \"1\"}"));
	assert_false(matches(sel, "{\"app\": \"web\"}"));
	assert_false(matches(sel, "{\"app\": \"api\", \"zone\": \"a\"}"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_required),
	    cmocka_unit_test(test_bad_shapes),
	    cmocka_unit_test(test_values_rules),
	    cmocka_unit_test(test_key_validation),
	    cmocka_unit_test(test_value_validation),
	    cmocka_unit_test(test_string_empty),
	    cmocka_unit_test(test_string_canonical),
	    cmocka_unit_test(test_string_equal_keys),
	    cmocka_unit_test(test_empty_matches_all),
	    cmocka_unit_test(test_match_labels),
	    cmocka_unit_test(test_match_expressions),
	    cmocka_unit_test(test_match_combined),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_action.c: act_parse(), the actuator's strict check of ACTION bodies. Every op with a
 * minimal valid body; the payload each op requires (body map, non-empty patch array, event);
 * the optional propagation of the deletes (only Foreground, Background, Orphan, deletes
 * only); the common fields (id, op, namespace, name, uid, pool, events); act_result().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../actuator/act.h"
#include "log.h"
#include "obj.h"
#include "proto.h"

static json_object *parse(const char *json)
{
	json_object *o = json_tokener_parse(json);

	if (o == NULL)
		fail_msg("bad test json: %s", json);
	return o;
}

/* the body act_parse() last saw: a's pointers are borrowed from it, so it lives until the
 * next call */
static json_object *last;

/* parses json with act_parse; returns its result, err filled */
static int try_parse(const char *json, struct act_action *a, char *err, size_t errlen)
{
	json_object_put(last);
	last = parse(json);
	err[0] = '\0';
	return act_parse(last, a, err, errlen);
}

/* expects a refusal whose message contains want */
static void refused(const char *json, const char *want)
{
	struct act_action a;
	char err[256];

	if (try_parse(json, &a, err, sizeof err) != -1)
		fail_msg("accepted: %s", json);
	if (strstr(err, want) == NULL)
		fail_msg("%s: error \"%s\" lacks \"%s\"", json, err, want);
}

#define HEAD(op) "{\"id\":7,\"op\":\"" op "\",\"namespace\":\"ns\",\"name\":\"x\""
#define PATCH    ",\"patch\":[{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}]"
#define BODY     ",\"body\":{\"kind\":\"K\",\"metadata\":{\"name\":\"x\"}}"

static void test_every_op_valid(void **state)
{
	static const struct {
		const char *json;
		int body, patch;
	} ok[] = {
	    {HEAD(ACT_CREATE_VM) BODY "}", 1, 0},
	    {HEAD(ACT_DELETE_VM) "}", 0, 0},
	    {HEAD(ACT_PATCH_VM) PATCH "}", 0, 1},
	    {HEAD(ACT_PATCH_POOL) PATCH "}", 0, 1},
	    {HEAD(ACT_EVENT) ",\"event\":{\"type\":\"Normal\",\"reason\":\"R\",\"message\":\"m\"}}",
	        0, 0},
	    {HEAD(ACT_UPDATE_VM) BODY "}", 1, 0},
	    {HEAD(ACT_DELETE_VMI) "}", 0, 0},
	    {HEAD(ACT_PATCH_VMI) PATCH "}", 0, 1},
	    {HEAD(ACT_CREATE_REV) BODY "}", 1, 0},
	    {HEAD(ACT_DELETE_REV) "}", 0, 0},
	    {HEAD(ACT_PATCH_PVC) PATCH "}", 0, 1},
	    {HEAD(ACT_PATCH_DV) PATCH "}", 0, 1},
	};
	struct act_action a;
	json_object *o;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		o = parse(ok[i].json);
		if (act_parse(o, &a, err, sizeof err) != 0)
			fail_msg("refused %s: %s", ok[i].json, err);
		assert_int_equal(a.id, 7);
		assert_string_equal(a.ns, "ns");
		assert_string_equal(a.name, "x");
		assert_null(a.uid);
		assert_null(a.propagation);
		/* borrowed from the body, not copied */
		assert_ptr_equal(a.body, ok[i].body ? json_object_object_get(o, "body") : NULL);
		assert_ptr_equal(a.patch, ok[i].patch ? json_object_object_get(o, "patch") : NULL);
		json_object_put(o);
	}
}

static void test_body_required(void **state)
{
	static const char *const ops[] = {ACT_CREATE_VM, ACT_UPDATE_VM, ACT_CREATE_REV};
	char json[256], want[64];
	size_t i;

	for (i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		snprintf(want, sizeof want, "%s needs body (a map)", ops[i]);
		snprintf(json, sizeof json, HEAD("%s") "}", ops[i]);
		refused(json, want);
		/* the wrong type is msg.c's error */
		snprintf(json, sizeof json, HEAD("%s") ",\"body\":[1]}", ops[i]);
		refused(json, "ACTION: body is not a map");
		snprintf(json, sizeof json, HEAD("%s") ",\"body\":\"{}\"}", ops[i]);
		refused(json, "ACTION: body is not a map");
		snprintf(json, sizeof json, HEAD("%s") ",\"body\":null}", ops[i]);
		refused(json, want);
		/* a patch is no body */
		snprintf(json, sizeof json, HEAD("%s") PATCH "}", ops[i]);
		refused(json, want);
	}
}

static void test_patch_required(void **state)
{
	static const char *const ops[] = {
	    ACT_PATCH_VM, ACT_PATCH_POOL, ACT_PATCH_VMI, ACT_PATCH_PVC, ACT_PATCH_DV};
	char json[256], want[64];
	size_t i;

	for (i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		snprintf(want, sizeof want, "%s needs patch (a non-empty array)", ops[i]);
		snprintf(json, sizeof json, HEAD("%s") "}", ops[i]);
		refused(json, want);
		snprintf(json, sizeof json, HEAD("%s") ",\"patch\":[]}", ops[i]);
		refused(json, want);
		snprintf(json, sizeof json, HEAD("%s") ",\"patch\":{\"op\":\"add\"}}", ops[i]);
		refused(json, "ACTION: patch is not an array");
		/* a body is no patch */
		snprintf(json, sizeof json, HEAD("%s") BODY "}", ops[i]);
		refused(json, want);
	}
}

static void test_propagation(void **state)
{
	static const char *const dels[] = {ACT_DELETE_VM, ACT_DELETE_VMI, ACT_DELETE_REV};
	static const char *const vals[] = {"Foreground", "Background", "Orphan"};
	struct act_action a;
	char json[256], err[256];
	size_t i, j;

	for (i = 0; i < sizeof dels / sizeof dels[0]; i++) {
		for (j = 0; j < sizeof vals / sizeof vals[0]; j++) {
			snprintf(json, sizeof json,
			    HEAD("%s") ",\"uid\":\"u\",\"propagation\":\"%s\"}", dels[i], vals[j]);
			if (try_parse(json, &a, err, sizeof err) != 0)
				fail_msg("refused %s: %s", json, err);
			assert_string_equal(a.propagation, vals[j]);
			assert_string_equal(a.uid, "u");
		}
		/* null is absent */
		snprintf(json, sizeof json, HEAD("%s") ",\"propagation\":null}", dels[i]);
		assert_int_equal(try_parse(json, &a, err, sizeof err), 0);
		assert_null(a.propagation);
		snprintf(json, sizeof json, HEAD("%s") ",\"propagation\":\"foreground\"}", dels[i]);
		refused(json, "is not Foreground, Background or Orphan");
		snprintf(json, sizeof json, HEAD("%s") ",\"propagation\":\"\"}", dels[i]);
		refused(json, "is not Foreground, Background or Orphan");
		snprintf(json, sizeof json, HEAD("%s") ",\"propagation\":1}", dels[i]);
		refused(json, "propagation is not a string");
		snprintf(json, sizeof json, HEAD("%s") ",\"propagation\":[\"Orphan\"]}", dels[i]);
		refused(json, "propagation is not a string");
	}
	/* only deletes take one */
	refused(HEAD(ACT_UPDATE_VM) BODY ",\"propagation\":\"Orphan\"}", "deletes only");
	/* unfinalize: a non-empty patch, on delete_vm only */
	assert_int_equal(
	    try_parse(
	        HEAD(ACT_DELETE_VM) ",\"unfinalize\":"
	                            "[{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}]}",
	        &a, err, sizeof err),
	    0);
	assert_non_null(a.unfinalize);
	refused(HEAD(ACT_DELETE_VM) ",\"unfinalize\":[]}", "unfinalize must be");
	refused(HEAD(ACT_DELETE_VMI) ",\"unfinalize\":[{\"op\":\"remove\",\"path\":\"/a\"}]}",
	    "unfinalize must be");
	refused(HEAD(ACT_PATCH_VMI) PATCH ",\"propagation\":\"Background\"}", "deletes only");
	refused(HEAD(ACT_CREATE_REV) BODY ",\"propagation\":\"Foreground\"}", "deletes only");
}

static void test_common_fields(void **state)
{
	struct act_action a;
	char err[256];

	refused("[1]", "body is not a map");
	refused("{\"op\":\"delete_vmi\",\"namespace\":\"ns\",\"name\":\"x\"}", "id missing");
	refused("{\"id\":1,\"op\":\"delete_vmis\",\"namespace\":\"ns\",\"name\":\"x\"}",
	    "ACTION: op \"delete_vmis\" is unknown");
	refused("{\"id\":1,\"op\":\"delete_rev\",\"namespace\":\"\",\"name\":\"x\"}",
	    "ACTION: namespace is empty");
	refused("{\"id\":1,\"op\":\"delete_rev\",\"namespace\":\"ns\"}", "ACTION: name missing");
	refused(HEAD(ACT_DELETE_VMI) ",\"uid\":5}", "uid is not a string");
	refused(HEAD(ACT_CREATE_REV) BODY
	    ",\"event\":{\"type\":\"Normal\",\"reason\":\"R\",\"message\":\"m\"}}",
	    "an event needs the pool");
	refused(HEAD(ACT_PATCH_PVC) PATCH
	    ",\"fail_event\":{\"type\":\"Bad\",\"reason\":\"R\",\"message\":\"m\"}"
	    ",\"pool\":{\"name\":\"p\"}}",
	    "fail_event.type must be Normal or Warning");
	/* the id is read before a later error, for the RESULT */
	assert_int_equal(try_parse(HEAD(ACT_UPDATE_VM) "}", &a, err, sizeof err), -1);
	assert_int_equal(a.id, 7);
	/* an empty uid is no precondition; the pool and events are kept */
	assert_int_equal(
	    try_parse(HEAD(ACT_DELETE_REV) ",\"uid\":\"\",\"pool\":{\"name\":\"p\",\"uid\":\"pu\"}"
	                                   ",\"fail_event\":{\"type\":\"Warning\",\"reason\":\"R\","
	                                   "\"message\":\"m\"}}",
	        &a, err, sizeof err),
	    0);
	assert_null(a.uid);
	assert_string_equal(a.pool_name, "p");
	assert_string_equal(a.pool_uid, "pu");
	assert_true(a.fail_event.set);
	assert_false(a.event.set);
	assert_string_equal(a.fail_event.reason, "R");
}

/* patch_pool carries the pool's apiVersion as listed; anything else is refused */
static void test_pool_api_version(void **state)
{
	struct act_action a;
	char err[256];

	assert_int_equal(
	    try_parse(HEAD("patch_pool") PATCH ",\"api_version\":\"pool.kubevirt.io/v1alpha1\"}",
	        &a, err, sizeof err),
	    0);
	assert_string_equal(a.pool_api, "pool.kubevirt.io/v1alpha1");
	assert_int_equal(try_parse(HEAD("patch_pool") PATCH "}", &a, err, sizeof err), 0);
	assert_null(a.pool_api);
	refused(HEAD("patch_pool") PATCH ",\"api_version\":\"pool.kubevirt.io/v1/../../x\"}",
	    "api_version must be");
	refused(HEAD("patch_pool") PATCH ",\"api_version\":\"v1\"}", "api_version must be");
	refused(
	    HEAD("patch_pool") PATCH ",\"api_version\":3}", "ACTION: api_version is not a string");
}

static void test_result(void **state)
{
	json_object *r = act_result(9, 1, 404, "NotFound", NULL);
	long long v;

	assert_int_equal(obj_int(r, "id", &v), 0);
	assert_int_equal(v, 9);
	assert_true(obj_bool(r, "ok"));
	assert_int_equal(obj_int(r, "status", &v), 0);
	assert_int_equal(v, 404);
	assert_string_equal(obj_str(r, "reason"), "NotFound");
	assert_string_equal(obj_str(r, "message"), "");
	json_object_put(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_op_valid),
	    cmocka_unit_test(test_body_required),
	    cmocka_unit_test(test_patch_required),
	    cmocka_unit_test(test_propagation),
	    cmocka_unit_test(test_common_fields),
	    cmocka_unit_test(test_result),
	    cmocka_unit_test(test_pool_api_version),
	};

	int r;

	log_init("test_action", -1, LOG_FMT_TEXT);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	json_object_put(last);
	return r;
}

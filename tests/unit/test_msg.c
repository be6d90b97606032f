/*
 * test_msg.c: the typed messages. For every message: a full struct packs and unpacks to
 * the same struct (and through the byte codec); each required field missing and each field
 * of the wrong type is refused with an error naming the message and the field; an optional
 * field may be absent; unknown keys are ignored.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"
#include "msg.h"
#include "proto.h"

/* one message: a full sample and its required top-level keys */
struct sample {
	int type;
	const char *name;
	const char *json;     /* every field set */
	const char *required; /* space-separated, each with a space after */
};

static const struct sample samples[] = {
    {MSG_HELLO, "HELLO",
        "{\"version\":2,\"program\":\"vmpool-planner\",\"pid\":42,\"link\":\"actuator\","
        "\"recorded_by\":\"vmpoolctl\"}",
        "version program pid link "},
    {MSG_OBJ_SET, "OBJ_SET", "{\"kind\":\"vm\",\"obj\":{\"metadata\":{\"name\":\"a\"}}}",
        "kind obj "},
    {MSG_OBJ_DELETE, "OBJ_DELETE",
        "{\"kind\":\"vm\",\"namespace\":\"ns\",\"name\":\"a\",\"uid\":\"u1\"}", "kind name "},
    {MSG_ACTION, "ACTION",
        "{\"id\":7,\"op\":\"delete_vm\",\"namespace\":\"ns\",\"name\":\"p-1\",\"uid\":\"u1\","
        "\"pool\":{\"name\":\"p\",\"uid\":\"pu\"},\"body\":{\"a\":1},"
        "\"patch\":[{\"op\":\"remove\",\"path\":\"/x\"}],"
        "\"unfinalize\":[{\"op\":\"remove\",\"path\":\"/y\"}],"
        "\"api_version\":\"pool.kubevirt.io/v1beta1\",\"propagation\":\"Foreground\","
        "\"event\":{\"type\":\"Normal\",\"reason\":\"R\",\"message\":\"m\"},"
        "\"fail_event\":{\"type\":\"Warning\",\"reason\":\"F\",\"message\":\"f\"}}",
        "id op namespace name "},
    {MSG_RESULT, "RESULT",
        "{\"id\":7,\"ok\":false,\"status\":500,\"reason\":\"r\",\"message\":\"m\",\"rv\":\"9\","
        "\"gone\":true,\"unknown\":true,\"holder\":\"h\",\"duration\":15}",
        "id ok status reason message "},
    {MSG_LEADER, "LEADER",
        "{\"leading\":true,\"holder\":\"h\",\"lease\":\"ns/l\",\"stopping\":true}",
        "leading holder "},
    {MSG_POOL_RESULT, "POOL_RESULT",
        "{\"namespace\":\"ns\",\"name\":\"p\",\"uid\":\"u\",\"ok\":false,\"reason\":\"R\","
        "\"message\":\"m\",\"progress\":\"ScalingUp\"}",
        "namespace name uid ok reason message "},
    {MSG_POOL_FORGET, "POOL_FORGET", "{\"namespace\":\"ns\",\"name\":\"p\"}", "namespace name "},
};
#define NSAMPLES (sizeof samples / sizeof samples[0])

static int is_required(const struct sample *s, const char *key)
{
	char word[64], all[256];

	snprintf(word, sizeof word, " %s ", key);
	snprintf(all, sizeof all, " %s", s->required);
	return strstr(all, word) != NULL;
}

/* the sample packs back to itself, directly and through a frame */
static void test_roundtrip(void **state)
{
	union msg_any m, m2;
	struct buf b = {0};
	struct frame f;
	char err[256];
	size_t i;

	for (i = 0; i < NSAMPLES; i++) {
		json_object *in = json_tokener_parse(samples[i].json), *out, *out2;

		assert_non_null(in);
		assert_int_equal(msg_unpack(samples[i].type, in, &m, err, sizeof err), 0);
		out = msg_pack(samples[i].type, &m);
		assert_true(json_object_equal(in, out));
		/* through the byte codec, as a link carries it */
		b.len = 0;
		memset(&f, 0, sizeof f);
		codec_pack(&b, samples[i].type, 3, out);
		assert_int_equal(
		    codec_unpack(b.data, b.len, PROTO_MAX_FRAME_DEFAULT, &f, err, sizeof err),
		    (long)b.len);
		assert_int_equal(msg_unpack(f.type, f.body, &m2, err, sizeof err), 0);
		out2 = msg_pack(f.type, &m2);
		assert_true(json_object_equal(in, out2));
		frame_clear(&f);
		json_object_put(out2);
		json_object_put(out);
		json_object_put(in);
	}
	buf_clear(&b);
}

/* the typed values, for one message of each kind of field */
static void test_values(void **state)
{
	json_object *in = json_tokener_parse(samples[3].json);
	struct msg_action a;
	struct msg_result r;
	char err[256];

	assert_int_equal(msg_action_unpack(in, &a, err, sizeof err), 0);
	assert_int_equal(a.id, 7);
	assert_int_equal(a.op, MSG_OP_DELETE_VM);
	assert_string_equal(msg_op_name(a.op), ACT_DELETE_VM);
	assert_string_equal(a.pool_name, "p");
	assert_string_equal(a.pool_uid, "pu");
	assert_string_equal(a.event.reason, "R");
	assert_string_equal(a.fail_event.type, "Warning");
	assert_int_equal(json_object_array_length(a.patch), 1);
	json_object_put(in);

	in = json_tokener_parse(
	    "{\"id\":1,\"ok\":true,\"status\":0,\"reason\":\"\",\"message\":\"\"}");
	assert_int_equal(msg_result_unpack(in, &r, err, sizeof err), 0);
	assert_true(r.ok);
	assert_null(r.rv);
	assert_false(r.gone);
	assert_null(r.holder);
	json_object_put(in);
}

/* calls fn(sample, body, key, value) once per top-level key of every sample, with a fresh
 * copy of the sample as body (put afterwards) */
static void foreach_key(
    void (*fn)(const struct sample *, json_object *body, const char *key, json_object *val))
{
	size_t i;

	for (i = 0; i < NSAMPLES; i++) {
		json_object *full = json_tokener_parse(samples[i].json);

		json_object_object_foreach(full, key, val)
		{
			json_object *b = json_tokener_parse(samples[i].json);

			fn(&samples[i], b, key, val);
			json_object_put(b);
		}
		json_object_put(full);
	}
}

/* the key removed: refused if required (naming it), else accepted; null is the same */
static void check_missing(const struct sample *s, json_object *b, const char *key, json_object *val)
{
	union msg_any m;
	char err[256], want[128];
	int rc;

	json_object_object_del(b, key);
	err[0] = '\0';
	rc = msg_unpack(s->type, b, &m, err, sizeof err);
	if (is_required(s, key)) {
		snprintf(want, sizeof want, "%s: %s missing", s->name, key);
		assert_int_equal(rc, -1);
		assert_string_equal(err, want);
	} else
		assert_int_equal(rc, 0);
	json_object_object_add(b, key, NULL);
	assert_int_equal(msg_unpack(s->type, b, &m, err, sizeof err), rc);
}

static void test_missing(void **state)
{
	foreach_key(check_missing);
}

/* a value of another type for the key (a string becomes 1, anything else "x"): refused,
 * naming the message and the field */
static void check_wrong_type(
    const struct sample *s, json_object *b, const char *key, json_object *val)
{
	union msg_any m;
	char err[256], want[128];

	json_object_object_add(b, key,
	    json_object_is_type(val, json_type_string) ? json_object_new_int(1)
	                                               : json_object_new_string("x"));
	assert_int_equal(msg_unpack(s->type, b, &m, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s: %s is not", s->name, key);
	assert_memory_equal(err, want, strlen(want));
}

static void test_wrong_type(void **state)
{
	foreach_key(check_wrong_type);
}

static void test_nested(void **state)
{
	static const char *const cases[][2] = {
	    {"pool", "{\"uid\":\"pu\"}"},
	    {"pool", "{\"name\":3}"},
	    {"pool", "{\"name\":\"\"}"},
	    {"event", "{\"type\":\"Normal\",\"reason\":\"R\"}"},
	    {"fail_event", "{\"type\":\"Normal\",\"reason\":1,\"message\":\"m\"}"},
	};
	static const char *const errs[] = {
	    "ACTION: pool.name missing",
	    "ACTION: pool.name is not a string",
	    "ACTION: pool.name is empty",
	    "ACTION: event.message missing",
	    "ACTION: fail_event.reason is not a string",
	};
	struct msg_action a;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof errs / sizeof errs[0]; i++) {
		json_object *b = json_tokener_parse(samples[3].json);

		json_object_object_add(b, cases[i][0], json_tokener_parse(cases[i][1]));
		assert_int_equal(msg_action_unpack(b, &a, err, sizeof err), -1);
		assert_string_equal(err, errs[i]);
		json_object_put(b);
	}
	/* an unknown op, an empty name, a body that is not a map */
	{
		json_object *b = json_tokener_parse(samples[3].json);

		json_object_object_add(b, "op", json_object_new_string("launch"));
		assert_int_equal(msg_action_unpack(b, &a, err, sizeof err), -1);
		assert_string_equal(err, "ACTION: op \"launch\" is unknown");
		json_object_object_add(b, "op", json_object_new_string(ACT_EVENT));
		json_object_object_add(b, "name", json_object_new_string(""));
		assert_int_equal(msg_action_unpack(b, &a, err, sizeof err), -1);
		assert_string_equal(err, "ACTION: name is empty");
		json_object_put(b);
		b = json_tokener_parse("[1]");
		assert_int_equal(msg_action_unpack(b, &a, err, sizeof err), -1);
		assert_string_equal(err, "ACTION: body is not a map");
		json_object_put(b);
	}
}

/* unknown keys, at the top and inside nested maps, change nothing */
static void test_unknown_keys(void **state)
{
	union msg_any m;
	char err[256];
	size_t i;

	for (i = 0; i < NSAMPLES; i++) {
		json_object *b = json_tokener_parse(samples[i].json), *in, *out;

		in = json_tokener_parse(samples[i].json);
		json_object_object_add(b, "zz_future", json_object_new_string("whatever"));
		json_object_object_add(b, "zz_map", json_tokener_parse("{\"a\":[1]}"));
		if (samples[i].type == MSG_ACTION)
			json_object_object_add(
			    json_object_object_get(b, "pool"), "extra", json_object_new_int(1));
		assert_int_equal(msg_unpack(samples[i].type, b, &m, err, sizeof err), 0);
		out = msg_pack(samples[i].type, &m);
		assert_true(json_object_equal(in, out));
		json_object_put(out);
		json_object_put(in);
		json_object_put(b);
	}
}

/* markers: {} and a NULL body; pack of a type with no layout */
static void test_markers(void **state)
{
	struct msg_marker mk;
	json_object *b = msg_marker_pack(), *arr = json_object_new_array();
	char err[256];

	assert_int_equal(json_object_object_length(b), 0);
	assert_int_equal(msg_unpack(MSG_SYNC_END, b, &mk, err, sizeof err), 0);
	assert_int_equal(msg_unpack(MSG_PSYNC_BEGIN, NULL, &mk, err, sizeof err), 0);
	assert_int_equal(msg_unpack(MSG_SYNC_BEGIN, arr, &mk, err, sizeof err), -1);
	assert_string_equal(err, "SYNC_BEGIN: body is not a map");
	assert_int_equal(msg_unpack(999, b, &mk, err, sizeof err), -1);
	assert_null(msg_pack(999, &mk));
	json_object_put(arr);
	json_object_put(b);
}

/* optional fields left out when unset; required strings sent as "" */
static void test_pack_defaults(void **state)
{
	struct msg_result r = {.id = 5, .ok = 1};
	struct msg_action a = {.id = 1, .op = MSG_OP_EVENT, .ns = "ns", .name = "p"};
	json_object *b = msg_result_pack(&r);

	assert_string_equal(json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN),
	    "{\"id\":5,\"ok\":true,\"status\":0,\"reason\":\"\",\"message\":\"\"}");
	json_object_put(b);
	b = msg_action_pack(&a);
	assert_string_equal(json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN),
	    "{\"id\":1,\"op\":\"event\",\"namespace\":\"ns\",\"name\":\"p\"}");
	json_object_put(b);
	assert_int_equal(msg_op_parse("nope"), MSG_OP_NONE);
	assert_string_equal(msg_op_name(MSG_OP_NONE), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_missing),
	    cmocka_unit_test(test_wrong_type),
	    cmocka_unit_test(test_nested),
	    cmocka_unit_test(test_unknown_keys),
	    cmocka_unit_test(test_markers),
	    cmocka_unit_test(test_pack_defaults),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

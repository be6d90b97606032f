/*
 * test_codec.c: frame codec and json <-> msgpack transcoding: round trips, every malformed
 * input we know of, and random bytes / mutations that must never crash or leak.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "msg.h"
#include "obj.h"
#include "proto.h"
#include "xmalloc.h"

#define CAP (1024 * 1024)

static json_object *sample_body(void)
{
	const char *text =
	    "{\"kind\":\"vm\",\"n\":-42,\"big\":9223372036854775807,"
	    "\"min\":-9223372036854775808,\"zero\":0,\"pi\":3.25,\"neg\":-0.5,"
	    "\"t\":true,\"f\":false,\"nil\":null,\"empty\":\"\",\"s\":\"h\\u00e9llo\","
	    "\"arr\":[1,\"two\",[3,[4,{\"five\":5}]],{},[]],"
	    "\"obj\":{\"metadata\":{\"name\":\"pool-0\",\"labels\":{\"a\":\"b\"}},"
	    "\"spec\":{\"replicas\":3,\"running\":true}}}";
	json_object *o = json_tokener_parse(text);

	assert_non_null(o);
	json_object_object_add(o, "u64", json_object_new_uint64(UINT64_MAX));
	json_object_object_add(o, "nul", json_object_new_string_len("a\0b", 3));
	json_object_object_add(o, "long",
	    json_object_new_string_len("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	                               "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	                               "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	                               "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	                               "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	        280));
	return o;
}

/* a frame from hand-written payload bytes */
static void raw_frame(struct buf *b, const void *payload, size_t len)
{
	unsigned char hdr[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
	    (unsigned char)(len >> 8), (unsigned char)len};

	b->len = 0;
	buf_add(b, hdr, 4);
	buf_add(b, payload, len);
}

/* expects -1 and an error message containing want */
static void expect_bad(const struct buf *b, const char *want)
{
	struct frame f;
	char err[256];
	long r;

	r = codec_unpack(b->data, b->len, CAP, &f, err, sizeof err);
	if (r != -1 || strstr(err, want) == NULL)
		fail_msg("got %ld, err \"%s\", wanted -1 and \"%s\"", r, err, want);
	assert_null(f.body);
}

static void test_roundtrip(void **state)
{
	struct buf b = {0};
	struct frame f;
	json_object *body = sample_body(), *v;
	char err[256];
	long r;

	codec_pack(&b, MSG_OBJ_SET, 12345678901ULL, body);
	r = codec_unpack(b.data, b.len, CAP, &f, err, sizeof err);
	assert_int_equal(r, (long)b.len);
	assert_int_equal(f.type, MSG_OBJ_SET);
	assert_true(f.seq == 12345678901ULL);
	if (!json_object_equal(body, f.body))
		fail_msg("round trip differs: %s", json_object_to_json_string(f.body));
	assert_true(json_object_object_get_ex(f.body, "u64", &v));
	assert_true(json_object_get_uint64(v) == UINT64_MAX);
	assert_true(json_object_object_get_ex(f.body, "pi", &v));
	assert_true(json_object_is_type(v, json_type_double));
	frame_clear(&f);
	assert_null(f.body);
	json_object_put(body);
	buf_clear(&b);
}

static void test_null_body_and_two_frames(void **state)
{
	struct buf b = {0};
	struct frame f;
	char err[256];
	long r1, r2;

	codec_pack(&b, MSG_SYNC_BEGIN, 0, NULL);
	r1 = (long)b.len;
	codec_pack(&b, MSG_SYNC_END, 1, NULL);
	r2 = codec_unpack(b.data, b.len, CAP, &f, err, sizeof err);
	assert_int_equal(r2, r1);
	assert_int_equal(f.type, MSG_SYNC_BEGIN);
	assert_int_equal(json_object_object_length(f.body), 0);
	frame_clear(&f);
	r2 = codec_unpack(b.data + r1, b.len - (size_t)r1, CAP, &f, err, sizeof err);
	assert_int_equal(r2, (long)b.len - r1);
	assert_int_equal(f.type, MSG_SYNC_END);
	assert_true(f.seq == 1);
	frame_clear(&f);
	buf_clear(&b);
}

/* every strict prefix of a frame is "need more", never an error */
static void test_prefixes_incomplete(void **state)
{
	struct buf b = {0};
	struct frame f;
	json_object *body = sample_body();
	char err[256];
	size_t i;

	codec_pack(&b, MSG_OBJ_SET, 7, body);
	for (i = 0; i < b.len; i++)
		assert_int_equal(codec_unpack(b.data, i, CAP, &f, err, sizeof err), 0);
	json_object_put(body);
	buf_clear(&b);
}

static void test_value_roundtrip(void **state)
{
	struct buf b = {0};
	json_object *body = sample_body(), *back, *arr;
	char err[256];

	assert_int_equal(codec_value_pack(&b, body), 0);
	back = codec_value_unpack(b.data, b.len, err, sizeof err);
	assert_non_null(back);
	assert_true(json_object_equal(body, back));
	json_object_put(back);
	/* trailing bytes after a bare value */
	buf_add(&b, "\xc0", 1);
	assert_null(codec_value_unpack(b.data, b.len, err, sizeof err));
	assert_non_null(strstr(err, "trailing"));
	/* a bare array and scalars */
	b.len = 0;
	arr = json_tokener_parse("[1,-2,2.5,\"x\",null,true,[[]]]");
	codec_value_pack(&b, arr);
	back = codec_value_unpack(b.data, b.len, err, sizeof err);
	assert_true(json_object_equal(arr, back));
	json_object_put(back);
	json_object_put(arr);
	json_object_put(body);
	buf_clear(&b);
}

/* a frame built around stored object bytes is the frame of msg.c's OBJ_SET body packed
 * whole (codec_pack_obj knows that body's two keys: this keeps the two in step) */
static void test_pack_obj(void **state)
{
	json_object *obj = json_tokener_parse(
	    "{\"metadata\":{\"name\":\"a\",\"labels\":{\"x\":\"y\"}},\"n\":[1,2.5,null]}");
	struct msg_obj_set set;
	json_object *body;
	struct buf packed = {0}, a = {0}, b = {0};
	struct frame f;
	char err[128];

	(void)state;
	assert_non_null(obj);
	codec_value_pack(&packed, obj);
	codec_pack_obj(&a, MSG_OBJ_SET, 7, "vm", packed.data, packed.len);
	set.kind = "vm";
	set.obj = obj;
	body = msg_obj_set_pack(&set);
	codec_pack(&b, MSG_OBJ_SET, 7, body);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	memset(&f, 0, sizeof f);
	assert_int_equal(codec_unpack(a.data, a.len, CAP, &f, err, sizeof err), (long)a.len);
	assert_int_equal(f.type, MSG_OBJ_SET);
	assert_true(json_object_equal(json_object_object_get(f.body, "obj"), obj));
	frame_clear(&f);
	buf_clear(&packed);
	buf_clear(&a);
	buf_clear(&b);
	json_object_put(body);
	json_object_put(obj);
}

static void test_truncated_and_cap(void **state)
{
	struct buf b = {0};
	struct frame f;
	char err[256];

	/* truncated length prefix: need more */
	assert_int_equal(
	    codec_unpack((const unsigned char *)"\0\0\0", 3, CAP, &f, err, sizeof err), 0);
	/* length over the cap: refused from the 4 bytes alone */
	assert_int_equal(
	    codec_unpack((const unsigned char *)"\0\x10\0\x01", 4, CAP, &f, err, sizeof err), -1);
	assert_non_null(strstr(err, "frame of 1048577 bytes exceeds the 1048576-byte cap"));
	assert_int_equal(
	    codec_unpack((const unsigned char *)"\xff\xff\xff\xff", 4, CAP, &f, err, sizeof err),
	    -1);
	/* truncated payload: need more */
	codec_pack(&b, MSG_HELLO, 0, NULL);
	assert_int_equal(codec_unpack(b.data, b.len - 1, CAP, &f, err, sizeof err), 0);
	/* an empty payload is not a frame */
	raw_frame(&b, "", 0);
	expect_bad(&b, "truncated");
	buf_clear(&b);
}

static void test_malformed(void **state)
{
	struct buf b = {0};

	/* array header claiming 2^32-1 elements in a tiny frame */
	raw_frame(&b, "\x93\x01\x00\x81\xa1k\xdd\xff\xff\xff\xff\x01", 12);
	expect_bad(&b, "array header claims 4294967295 elements");
	raw_frame(&b, "\xdd\xff\xff\xff\xff\x01\x02", 7);
	expect_bad(&b, "array header claims");
	raw_frame(&b, "\x93\x01\x00\xdf\xff\xff\xff\xff", 8);
	expect_bad(&b, "map header claims");
	/* a map with an int key */
	raw_frame(&b, "\x93\x01\x00\x81\x01\x02", 6);
	expect_bad(&b, "not a string");
	/* nested int key */
	raw_frame(&b, "\x93\x01\x00\x81\xa1k\x81\x05\x06", 9);
	expect_bad(&b, "not a string");
	/* top level not an array, wrong arity, body not a map */
	raw_frame(&b, "\x81\xa1k\x01", 4);
	expect_bad(&b, "not an array of 3");
	raw_frame(&b, "\x92\x01\x00", 3);
	expect_bad(&b, "not an array of 3");
	raw_frame(&b, "\x94\x01\x00\x80\x01", 5);
	expect_bad(&b, "not an array of 3");
	raw_frame(&b, "\x93\x01\x00\x90", 4);
	expect_bad(&b, "body is not a map");
	raw_frame(&b, "\x93\xa1t\x00\x80", 5);
	expect_bad(&b, "type is not an int");
	raw_frame(&b, "\x93\x01\xff\x80", 4);
	expect_bad(&b, "seq is not an unsigned int");
	/* trailing bytes after the value */
	raw_frame(&b, "\x93\x01\x00\x80\xc0", 5);
	expect_bad(&b, "trailing");
	/* bin, ext, fixext, the reserved byte */
	raw_frame(&b, "\x93\x01\x00\x81\xa1k\xc4\x01x", 9);
	expect_bad(&b, "bin");
	raw_frame(&b, "\x93\x01\x00\x81\xa1k\xc7\x01\x05x", 10);
	expect_bad(&b, "ext");
	raw_frame(&b, "\x93\x01\x00\x81\xa1k\xd4\x05x", 9);
	expect_bad(&b, "ext");
	raw_frame(&b, "\x93\x01\x00\x81\xa1k\xc1", 7);
	expect_bad(&b, "reserved");
	/* a string longer than the frame */
	raw_frame(&b, "\x93\x01\x00\x81\xa1k\xdb\x7f\xff\xff\xff", 11);
	expect_bad(&b, "payload");
	/* a key with a NUL byte cannot be a json key */
	raw_frame(&b, "\x93\x01\x00\x81\xa2k\x00\x01", 8);
	expect_bad(&b, "NUL");
	buf_clear(&b);
}

/* [1, 0, {"a": [[[...]]]}] with depth nested arrays in total (frame array and map included) */
static void deep_frame(struct buf *b, int depth)
{
	struct buf p = {0};
	int i;

	buf_add(&p, "\x93\x01\x00\x81\xa1\x61", 6);
	for (i = 2; i < depth; i++)
		buf_add(&p, "\x91", 1);
	buf_add(&p, "\x01", 1);
	raw_frame(b, p.data, p.len);
	buf_clear(&p);
}

static void test_depth(void **state)
{
	struct buf b = {0};
	struct frame f;
	char err[256];

	deep_frame(&b, 64);
	assert_int_equal(codec_unpack(b.data, b.len, CAP, &f, err, sizeof err), (long)b.len);
	frame_clear(&f);
	deep_frame(&b, 65);
	expect_bad(&b, "nesting deeper than 64");
	deep_frame(&b, 1000);
	expect_bad(&b, "nesting deeper than 64");
	buf_clear(&b);
}

/* {"m": {"m": ... {}}} nesting depth levels (the outer object counts 1) */
static json_object *deep_obj(int depth)
{
	json_object *o = json_object_new_object(), *outer;
	int i;

	for (i = 1; i < depth; i++) {
		outer = json_object_new_object();
		json_object_object_add(outer, "m", o);
		o = outer;
	}
	return o;
}

/* packs body as a frame and unpacks it; the unpack result */
static long roundtrip(json_object *body)
{
	struct buf b = {0};
	struct frame f;
	char err[256];
	long r;

	codec_pack(&b, 102, 1, body);
	r = codec_unpack(b.data, b.len, 1u << 24, &f, err, sizeof err);
	frame_clear(&f);
	buf_clear(&b);
	return r;
}

/* the object limit the watcher applies leaves room for every envelope that carries one */
static void test_object_limit(void **state)
{
	json_object *obj = deep_obj(CODEC_OBJ_MAX_DEPTH), *set, *op, *patch, *act, *arr;

	assert_false(codec_too_deep(obj, CODEC_OBJ_MAX_DEPTH));
	assert_true(codec_too_deep(obj, CODEC_OBJ_MAX_DEPTH - 1));
	arr = json_object_new_string("x");
	assert_false(codec_too_deep(arr, 0));
	json_object_put(arr);
	arr = json_object_new_array();
	json_object_array_add(arr, json_object_new_array());
	assert_true(codec_too_deep(arr, 1));
	assert_false(codec_too_deep(arr, 2));
	json_object_put(arr);
	/* OBJ_SET {kind, obj} and ACTION {body} */
	set = json_object_new_object();
	json_object_object_add(set, "obj", json_object_get(obj));
	assert_true(roundtrip(set) > 0);
	json_object_put(set);
	/* ACTION {patch: [{op, path, value}]}: the deepest envelope */
	op = json_object_new_object();
	json_object_object_add(op, "value", json_object_get(obj));
	patch = json_object_new_array();
	json_object_array_add(patch, op);
	act = json_object_new_object();
	json_object_object_add(act, "patch", patch);
	assert_true(roundtrip(act) > 0);
	/* one level more than the limit does not fit that envelope */
	json_object_object_add(op, "value", deep_obj(CODEC_OBJ_MAX_DEPTH + 1));
	assert_int_equal(roundtrip(act), -1);
	json_object_put(act);
	json_object_put(obj);
}

/* numbers in every width msgpack has, including ones our packer never writes */
static void test_number_widths(void **state)
{
	static const unsigned char payload[] = {0x93, 0xcd, 0x01, 0x2c, 0xcf, 0, 0, 0, 0, 0, 0, 0,
	    9, 0x87, 0xa1, 'a', 0xd0, 0x80, 0xa1, 'b', 0xd1, 0xff, 0x00, 0xa1, 'c', 0xd2, 0xff,
	    0xff, 0xff, 0xfe, 0xa1, 'd', 0xca, 0x3f, 0xc0, 0, 0, 0xa1, 'e', 0xe0, 0xa1, 'f', 0xce,
	    0xff, 0xff, 0xff, 0xff, 0xa1, 'g', 0xd9, 2, 'h', 'i'};
	struct buf b = {0};
	struct frame f;
	json_object *want;
	char err[256];

	raw_frame(&b, payload, sizeof payload);
	assert_int_equal(codec_unpack(b.data, b.len, CAP, &f, err, sizeof err), (long)b.len);
	assert_int_equal(f.type, 300);
	assert_true(f.seq == 9);
	want = json_tokener_parse(
	    "{\"a\":-128,\"b\":-256,\"c\":-2,\"d\":1.5,\"e\":-32,\"f\":4294967295,\"g\":\"hi\"}");
	if (!json_object_equal(want, f.body))
		fail_msg("got %s", json_object_to_json_string(f.body));
	json_object_put(want);
	frame_clear(&f);
	buf_clear(&b);
}

static void check_result(long r, size_t len, struct frame *f)
{
	if (r < -1 || r > (long)len)
		fail_msg("codec_unpack returned %ld for %zu bytes", r, len);
	if (r > 0)
		assert_non_null(f->body);
	else
		assert_null(f->body);
	frame_clear(f);
}

/* ---- the compact form ---- */

static const char *const compact_local[] = {"ns-a", "vm-1", "x"};

/* an object with dictionary keys and values, local strings and strings that are neither */
static json_object *compact_sample(void)
{
	json_object *o = json_tokener_parse(
	    "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\",\"metadata\":{"
	    "\"name\":\"vm-1\",\"namespace\":\"ns-a\",\"labels\":{\"kubevirt.io/vmpool\":"
	    "\"vm\",\"vm-1\":\"ns-a\",\"x\":\"x\",\"\":\"\"}},\"status\":{\"conditions\":[{"
	    "\"type\":\"Ready\",\"status\":\"True\"}],\"n\":[1,-2,2.5,null,true,\"vm-12\"]}}");

	assert_non_null(o);
	/* a value with a NUL byte in it is never taken for the string before the NUL */
	json_object_object_add(o, "nul", json_object_new_string_len("vm-1\0x", 6));
	json_object_object_add(o, "nul2", json_object_new_string_len("Ready\0", 6));
	return o;
}

static void test_compact_roundtrip(void **state)
{
	struct buf plain = {0}, compact = {0};
	json_object *o = compact_sample(), *back;
	char err[256];

	codec_value_pack(&plain, o);
	codec_compact_pack(&compact, o, compact_local, 3);
	assert_true(compact.len < plain.len / 2 + 40);
	back = codec_compact_unpack(compact.data, compact.len, compact_local, 3, err, sizeof err);
	assert_non_null(back);
	assert_true(json_object_equal(o, back));
	assert_int_equal(json_object_get_string_len(json_object_object_get(back, "nul")), 6);
	/* keys keep their order */
	assert_string_equal(json_object_to_json_string(back), json_object_to_json_string(o));
	json_object_put(back);
	/* other local strings decode to other strings: the caller must pass the same ones */
	back = codec_compact_unpack(compact.data, compact.len,
	    (const char *const[]){"ns-b", "vm-2", "y"}, 3, err, sizeof err);
	assert_non_null(back);
	assert_string_equal(obj_str(back, "metadata.name"), "vm-2");
	json_object_put(back);
	/* without the table a reference is msgpack's reserved byte: refused (here the first
	 * key, a reference, is not a string) */
	assert_null(codec_value_unpack(compact.data, compact.len, err, sizeof err));
	assert_non_null(strstr(err, "not a string"));
	/* a reference to a local string that was not passed, or past the dictionary */
	assert_null(
	    codec_compact_unpack(compact.data, compact.len, compact_local, 1, err, sizeof err));
	assert_non_null(strstr(err, "unknown"));
	compact.len = 0;
	buf_add(&compact, "\xc1\xff", 2);
	assert_null(codec_compact_unpack(compact.data, compact.len, NULL, 0, err, sizeof err));
	compact.len = 1; /* cut after the reference byte */
	assert_null(codec_compact_unpack(compact.data, compact.len, NULL, 0, err, sizeof err));
	assert_non_null(strstr(err, "truncated"));
	/* plain msgpack is the compact form without references */
	back = codec_compact_unpack(plain.data, plain.len, NULL, 0, err, sizeof err);
	assert_true(json_object_equal(o, back));
	json_object_put(back);
	json_object_put(o);
	buf_clear(&plain);
	buf_clear(&compact);
}

/* expanded without decoding, the compact form gives codec_value_pack's bytes exactly, long
 * strings (str8/16/32 headers) and every dictionary entry included; bad bytes leave out as
 * it was */
static void test_compact_expand(void **state)
{
	struct buf plain = {0}, compact = {0}, out = {0};
	json_object *o = compact_sample(), *arr = json_object_new_array();
	char err[256], *big = xmalloc(70000);
	size_t i;

	(void)state;
	for (i = 0; i < codec_dict_size(); i++)
		json_object_array_add(arr, json_object_new_string(codec_dict_entry(i)));
	json_object_object_add(o, "dict", arr);
	memset(big, 'v', 69999);
	big[69999] = '\0';
	for (i = 0; i < 4; i++) /* 31, 32, 256 and 69999 bytes */
		json_object_array_add(
		    arr, json_object_new_string_len(big, (int[]){31, 32, 256, 69999}[i]));
	codec_value_pack(&plain, o);
	codec_compact_pack(&compact, o, compact_local, 3);
	assert_true(compact.len < plain.len);
	buf_add(&out, "ab", 2); /* appended to what is there */
	assert_int_equal(codec_compact_expand(
	                     &out, compact.data, compact.len, compact_local, 3, err, sizeof err),
	    0);
	assert_int_equal(out.len, plain.len + 2);
	assert_memory_equal(out.data + 2, plain.data, plain.len);
	/* plain msgpack expands to itself */
	out.len = 0;
	assert_int_equal(
	    codec_compact_expand(&out, plain.data, plain.len, NULL, 0, err, sizeof err), 0);
	assert_int_equal(out.len, plain.len);
	assert_memory_equal(out.data, plain.data, plain.len);
	/* an unknown reference, a cut value: refused, out unchanged */
	out.len = 0;
	buf_add(&out, "ab", 2);
	assert_int_equal(codec_compact_expand(
	                     &out, compact.data, compact.len, compact_local, 1, err, sizeof err),
	    -1);
	assert_non_null(strstr(err, "unknown"));
	assert_int_equal(codec_compact_expand(&out, compact.data, compact.len - 1, compact_local, 3,
	                     err, sizeof err),
	    -1);
	assert_int_equal(out.len, 2);
	free(big);
	json_object_put(o);
	buf_clear(&plain);
	buf_clear(&compact);
	buf_clear(&out);
}

/* a value's repeated strings are written once, times as the API server writes them as 6
 * bytes; both decode and expand to what was packed, anything else stays a string */
static void test_compact_back_and_time(void **state)
{
	static const char *const not_times[] = {
	    "2026-13-03T18:47:23Z",   /* no 13th month */
	    "2026-02-30T00:00:00Z",   /* no 30 February */
	    "2026-12-03t18:47:23Z",   /* lower-case t */
	    "2026-12-03T18:47:23+00", /* no Z */
	    "2026-12-03T18:47:23.5Z", /* a fraction */
	    "1969-12-31T23:59:59Z",   /* before 1970 */
	    "2106-02-07T06:28:16Z",   /* after 32 bits of seconds */
	    "2026-12-03T18:47:60Z",   /* a leap second */
	};
	struct buf plain = {0}, compact = {0}, out = {0};
	json_object *o = json_object_new_object(), *arr = json_object_new_array(), *back;
	char err[256], s[32];
	size_t i;

	(void)state;
	json_object_object_add(o, "a", json_object_new_string("2026-12-03T18:47:23Z"));
	codec_compact_pack(&compact, o, NULL, 0);
	assert_int_equal(compact.len, 1 + 2 + 6); /* the map, "a", the time */
	json_object_object_add(o, "2026-12-03T18:47:24Z", json_object_new_string("pool-1"));
	json_object_object_add(o, "b", json_object_new_string("pool-1"));
	json_object_object_add(o, "pool-1", json_object_new_string("pool-1-x"));
	for (i = 0; i < sizeof(not_times) / sizeof(not_times[0]); i++)
		json_object_array_add(arr, json_object_new_string(not_times[i]));
	for (i = 0; i < 40; i++) { /* more strings than back references, each twice */
		snprintf(s, sizeof(s), "str-%zu", i);
		json_object_array_add(arr, json_object_new_string(s));
		json_object_array_add(arr, json_object_new_string(s));
	}
	json_object_array_add(arr, json_object_new_string("1970-01-01T00:00:00Z"));
	json_object_array_add(arr, json_object_new_string("2106-02-07T06:28:15Z"));
	json_object_object_add(o, "list", arr);
	compact.len = 0;
	codec_value_pack(&plain, o);
	codec_compact_pack(&compact, o, NULL, 0);
	back = codec_compact_unpack(compact.data, compact.len, NULL, 0, err, sizeof err);
	assert_non_null(back);
	assert_string_equal(json_object_to_json_string(back), json_object_to_json_string(o));
	json_object_put(back);
	assert_int_equal(
	    codec_compact_expand(&out, compact.data, compact.len, NULL, 0, err, sizeof err), 0);
	assert_int_equal(out.len, plain.len);
	assert_memory_equal(out.data, plain.data, plain.len);
	/* 4 times of 21 bytes in 6 each; "pool-1" twice in 2 bytes each instead of 7; the
	 * back references' 31 slots taken by "pool-1", "pool-1-x", "list", the 8 strings that
	 * are no times and str-0 to str-19, whose second copies take 2 bytes instead of 6 and
	 * 7; str-20 on are written twice */
	assert_int_equal(plain.len - compact.len, 4 * 15 + 2 * 5 + 10 * 4 + 10 * 5);
	/* a back reference to a string not written yet */
	compact.len = 0;
	buf_add(&compact, "\x92\xc1\xe0\xa3xyz", 7);
	assert_null(codec_compact_unpack(compact.data, compact.len, NULL, 0, err, sizeof err));
	assert_non_null(strstr(err, "back reference"));
	compact.len = 0;
	buf_add(&compact, "\x92\xa3xyz\xc1\xe0", 7);
	back = codec_compact_unpack(compact.data, compact.len, NULL, 0, err, sizeof err);
	assert_string_equal(json_object_to_json_string(back), "[ \"xyz\", \"xyz\" ]");
	json_object_put(back);
	/* a time cut short */
	compact.len = 0;
	buf_add(&compact, "\xc1\xff\x01\x02\x03", 5);
	assert_null(codec_compact_unpack(compact.data, compact.len, NULL, 0, err, sizeof err));
	assert_non_null(strstr(err, "truncated"));
	json_object_put(o);
	buf_clear(&plain);
	buf_clear(&compact);
	buf_clear(&out);
}

/* every dictionary entry is worth a reference, and is there once */
static void test_compact_dict(void **state)
{
	size_t n = codec_dict_size(), i, j;

	assert_true(n > 100 && n <= CODEC_BACK_BASE - CODEC_LOCAL_MAX);
	assert_null(codec_dict_entry(n));
	for (i = 0; i < n; i++) {
		assert_true(strlen(codec_dict_entry(i)) >= 2);
		for (j = i + 1; j < n; j++)
			assert_string_not_equal(codec_dict_entry(i), codec_dict_entry(j));
	}
}

static void test_random_bytes(void **state)
{
	unsigned char in[300];
	struct frame f;
	char err[256];
	size_t len, i;
	int n;

	srandom(1);
	for (n = 0; n < 20000; n++) {
		len = (size_t)random() % sizeof in;
		for (i = 0; i < len; i++)
			in[i] = (unsigned char)random();
		/* half the time a plausible length prefix, so the payload is decoded */
		if (len >= 4 && n % 2 == 0) {
			in[0] = in[1] = 0;
			in[2] = (unsigned char)((len - 4) >> 8);
			in[3] = (unsigned char)(len - 4);
		}
		check_result(codec_unpack(in, len, CAP, &f, err, sizeof err), len, &f);
		json_object_put(codec_value_unpack(in, len, err, sizeof err));
		json_object_put(codec_compact_unpack(in, len, compact_local, 3, err, sizeof err));
	}
}

static void test_mutations(void **state)
{
	struct buf b = {0}, m = {0};
	struct frame f;
	json_object *body = sample_body();
	char err[256];
	int n, k, flips;
	size_t pos;

	codec_pack(&b, MSG_OBJ_SET, 99, body);
	srandom(2);
	for (n = 0; n < 20000; n++) {
		m.len = 0;
		buf_add(&m, b.data, b.len);
		flips = 1 + (int)(random() % 4);
		for (k = 0; k < flips; k++) {
			pos = 4 + (size_t)random() % (m.len - 4);
			if (random() % 3 == 0)
				m.data[pos] = (unsigned char)(0xc0 + random() % 32);
			else
				m.data[pos] ^= (unsigned char)(1u << (random() % 8));
		}
		if (n % 7 == 0) /* cut it short, with a consistent length prefix */
			m.len = 4 + (size_t)random() % (m.len - 4);
		if (n % 14 == 0) {
			m.data[2] = (unsigned char)((m.len - 4) >> 8);
			m.data[3] = (unsigned char)(m.len - 4);
		}
		check_result(codec_unpack(m.data, m.len, CAP, &f, err, sizeof err), m.len, &f);
	}
	json_object_put(body);
	buf_clear(&b);
	buf_clear(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_null_body_and_two_frames),
	    cmocka_unit_test(test_prefixes_incomplete),
	    cmocka_unit_test(test_value_roundtrip),
	    cmocka_unit_test(test_pack_obj),
	    cmocka_unit_test(test_truncated_and_cap),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_depth),
	    cmocka_unit_test(test_object_limit),
	    cmocka_unit_test(test_number_widths),
	    cmocka_unit_test(test_compact_roundtrip),
	    cmocka_unit_test(test_compact_expand),
	    cmocka_unit_test(test_compact_back_and_time),
	    cmocka_unit_test(test_compact_dict),
	    cmocka_unit_test(test_random_bytes),
	    cmocka_unit_test(test_mutations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * codec.c: frames on the wire and json-c <-> msgpack transcoding. The only file that
 * includes msgpack.h.
 *
 * Encoding uses msgpack-c's packer writing straight into a struct buf. Decoding is our own,
 * in two passes over bytes we do not trust: codec_walk() checks the whole value without
 * allocating anything (every header against the bytes that remain, nesting depth, reserved
 * bytes, bin/ext, string map keys, no trailing bytes), then codec_decode() builds the json-c
 * tree, which is therefore bounded by the input size. We do not use msgpack-c's unpacker:
 * its nesting limit is fixed at 32 when the library is built, below our 64, and a second
 * tree (msgpack_object, then json-c) would only cost time. CODEC_MAX_DEPTH (codec.h) is the
 * one nesting limit of the pipeline; the watcher checks objects against it where they enter.
 */
#include <msgpack.h>

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "log.h"
#include "proto.h"
#include "timeutil.h"
#include "xmalloc.h"

/* the kinds of msgpack value we tell apart */
enum mp_kind {
	MP_BAD,
	MP_NIL,
	MP_FALSE,
	MP_TRUE,
	MP_UINT,
	MP_INT,
	MP_F32,
	MP_F64,
	MP_STR,
	MP_BIN,
	MP_EXT,
	MP_FIXEXT,
	MP_ARRAY,
	MP_MAP,
};

/* 0xc0..0xdf: the kind and the width of the field that follows the type byte */
static const struct {
	unsigned char kind;
	unsigned char width;
} mp_table[32] = {
    {MP_NIL, 0}, {MP_BAD, 0}, {MP_FALSE, 0}, {MP_TRUE, 0},          /* c0-c3 */
    {MP_BIN, 1}, {MP_BIN, 2}, {MP_BIN, 4},                          /* c4-c6 */
    {MP_EXT, 1}, {MP_EXT, 2}, {MP_EXT, 4},                          /* c7-c9 */
    {MP_F32, 4}, {MP_F64, 8},                                       /* ca-cb */
    {MP_UINT, 1}, {MP_UINT, 2}, {MP_UINT, 4}, {MP_UINT, 8},         /* cc-cf */
    {MP_INT, 1}, {MP_INT, 2}, {MP_INT, 4}, {MP_INT, 8},             /* d0-d3 */
    {MP_FIXEXT, 1}, {MP_FIXEXT, 2}, {MP_FIXEXT, 4}, {MP_FIXEXT, 8}, /* d4-d7 */
    {MP_FIXEXT, 16},                                                /* d8 */
    {MP_STR, 1}, {MP_STR, 2}, {MP_STR, 4},                          /* d9-db */
    {MP_ARRAY, 2}, {MP_ARRAY, 4}, {MP_MAP, 2}, {MP_MAP, 4},         /* dc-df */
};

/* one decoded header; for str the bytes are at s, for array/map n is the count */
struct mp_item {
	enum mp_kind kind;
	uint64_t u; /* MP_UINT value, str length, array/map count */
	int64_t i;  /* MP_INT value */
	double d;
	const char *s;
};

struct mp_in {
	const unsigned char *p;
	size_t len;
	size_t off;
	char *err;
	size_t errlen;
	struct codec_tab *tab; /* the compact form's strings, or NULL: plain msgpack */
};

/* the strings a compact value may refer to (codec_compact_pack): the caller's, the
 * dictionary's, and the value's own literal strings so far (back references) */
struct codec_tab {
	const char *const *local;
	size_t nlocal;
	struct {
		const char *s;
		size_t len;
	} back[CODEC_BACK_MAX];
	size_t nback;
	char time[CODEC_TIME_LEN + 1]; /* the last time reference read, as its text */
};

static const char *codec_tab_str(const struct codec_tab *, unsigned, size_t *);
static void codec_back_add(struct codec_tab *, const char *, size_t);
static int codec_time_text(uint32_t secs, char out[CODEC_TIME_LEN + 1]);

static int codec_fail(struct mp_in *in, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int codec_fail(struct mp_in *in, const char *fmt, ...)
{
	va_list ap;

	if (in->err != NULL && in->errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(in->err, in->errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static size_t mp_left(const struct mp_in *in)
{
	return in->len - in->off;
}

/* reads a big-endian field of width bytes */
static int mp_field(struct mp_in *in, size_t width, uint64_t *v)
{
	size_t i;

	if (mp_left(in) < width)
		return codec_fail(in, "truncated value at byte %zu", in->off);
	*v = 0;
	for (i = 0; i < width; i++)
		*v = (*v << 8) | in->p[in->off + i];
	in->off += width;
	return 0;
}

/* skips n payload bytes (str, bin, ext) after checking they are there */
static int mp_skip(struct mp_in *in, uint64_t n)
{
	if (n > mp_left(in))
		return codec_fail(
		    in, "%" PRIu64 "-byte payload but only %zu bytes remain", n, mp_left(in));
	in->off += n;
	return 0;
}

/* fills the value of a fixed-width number from its raw field */
static void mp_number(struct mp_item *it, size_t width, uint64_t raw)
{
	float f;
	uint32_t r32;

	switch (it->kind) {
	case MP_INT:
		if (width < 8 && (raw >> (width * 8 - 1)) != 0)
			raw |= ~(uint64_t)0 << (width * 8); /* sign-extend */
		it->i = (int64_t)raw;
		break;
	case MP_F32:
		r32 = (uint32_t)raw;
		memcpy(&f, &r32, sizeof f);
		it->d = f;
		break;
	case MP_F64:
		memcpy(&it->d, &raw, sizeof it->d);
		break;
	default:
		it->u = raw;
		break;
	}
}

/* reads a header from the 0xc0..0xdf range */
static int mp_read_table(struct mp_in *in, unsigned char b, struct mp_item *it)
{
	size_t width = mp_table[b - 0xc0].width;
	uint64_t raw = 0;

	it->kind = mp_table[b - 0xc0].kind;
	if (it->kind == MP_BAD)
		return codec_fail(in, "reserved byte 0x%02x at byte %zu", b, in->off - 1);
	if (it->kind == MP_FIXEXT)
		return codec_fail(in, "ext values are not allowed");
	if (mp_field(in, width, &raw) == -1)
		return -1;
	switch (it->kind) {
	case MP_BIN:
		return codec_fail(in, "bin values are not allowed");
	case MP_EXT:
		return codec_fail(in, "ext values are not allowed");
	case MP_STR:
		it->u = raw;
		it->s = (const char *)in->p + in->off;
		return mp_skip(in, raw);
	default:
		mp_number(it, width, raw);
		return 0;
	}
}

/* the compact form's string reference: CODEC_REF and the string's index in the table, or
 * CODEC_TIME and 4 bytes of seconds */
static int mp_read_ref(struct mp_in *in, struct mp_item *it)
{
	unsigned char i;
	uint64_t secs;
	size_t len;

	if (mp_left(in) < 1)
		return codec_fail(in, "truncated string reference at byte %zu", in->off);
	it->kind = MP_STR;
	i = in->p[in->off++];
	if (i == CODEC_TIME) {
		if (mp_field(in, 4, &secs) == -1)
			return -1;
		if (codec_time_text((uint32_t)secs, in->tab->time) == -1)
			return codec_fail(
			    in, "time reference at byte %zu is out of range", in->off - 5);
		it->s = in->tab->time;
		it->u = CODEC_TIME_LEN;
		return 0;
	}
	if (i >= CODEC_BACK_BASE) {
		if ((size_t)(i - CODEC_BACK_BASE) >= in->tab->nback)
			return codec_fail(
			    in, "back reference %u at byte %zu is to no string", i, in->off - 1);
		it->s = in->tab->back[i - CODEC_BACK_BASE].s;
		it->u = in->tab->back[i - CODEC_BACK_BASE].len;
		return 0;
	}
	it->s = codec_tab_str(in->tab, i, &len);
	if (it->s == NULL)
		return codec_fail(in, "string reference %u at byte %zu is unknown", i, in->off - 1);
	it->u = len;
	return 0;
}

/* reads one header; str payloads are skipped over, containers are not */
static int mp_read(struct mp_in *in, struct mp_item *it)
{
	unsigned char b;

	if (mp_left(in) < 1)
		return codec_fail(in, "truncated value at byte %zu", in->off);
	b = in->p[in->off++];
	if (b <= 0x7f) {
		it->kind = MP_UINT;
		it->u = b;
	} else if (b >= 0xe0) {
		it->kind = MP_INT;
		it->i = (int8_t)b;
	} else if (b <= 0x8f) {
		it->kind = MP_MAP;
		it->u = b & 0x0f;
	} else if (b <= 0x9f) {
		it->kind = MP_ARRAY;
		it->u = b & 0x0f;
	} else if (b <= 0xbf) {
		it->kind = MP_STR;
		it->u = b & 0x1f;
		it->s = (const char *)in->p + in->off;
		if (mp_skip(in, it->u) == -1)
			return -1;
	} else if (b == CODEC_REF && in->tab != NULL)
		return mp_read_ref(in, it);
	else if (mp_read_table(in, b, it) == -1)
		return -1;
	if (it->kind == MP_STR && in->tab != NULL) /* a literal string of a compact value */
		codec_back_add(in->tab, it->s, it->u);
	return 0;
}

/* checks a container's count: every element takes at least one byte */
static int mp_check_count(struct mp_in *in, const struct mp_item *it)
{
	uint64_t need = it->u;

	if (it->kind == MP_MAP && need > mp_left(in) / 2)
		return codec_fail(in,
		    "map header claims %" PRIu64 " pairs but only %zu bytes remain", it->u,
		    mp_left(in));
	if (it->kind == MP_ARRAY && need > mp_left(in))
		return codec_fail(in,
		    "array header claims %" PRIu64 " elements but only %zu bytes remain", it->u,
		    mp_left(in));
	return 0;
}

/* is the next value a string? (a missing byte is reported by mp_read) */
static int mp_at_str(const struct mp_in *in)
{
	unsigned char b;

	if (mp_left(in) < 1)
		return 1;
	b = in->p[in->off];
	return (b & 0xe0) == 0xa0 || (b >= 0xd9 && b <= 0xdb) ||
	       (b == CODEC_REF && in->tab != NULL);
}

/* appends a msgpack str header for len bytes, as msgpack-c's packer writes it */
static void mp_put_str_header(struct buf *out, size_t len)
{
	unsigned char h[5];
	size_t n;

	if (len < 32) {
		h[0] = (unsigned char)(0xa0 | len);
		n = 1;
	} else if (len < 256) {
		h[0] = 0xd9;
		h[1] = (unsigned char)len;
		n = 2;
	} else if (len < 65536) {
		h[0] = 0xda;
		h[1] = (unsigned char)(len >> 8);
		h[2] = (unsigned char)len;
		n = 3;
	} else {
		h[0] = 0xdb;
		h[1] = (unsigned char)(len >> 24);
		h[2] = (unsigned char)(len >> 16);
		h[3] = (unsigned char)(len >> 8);
		h[4] = (unsigned char)len;
		n = 5;
	}
	buf_add(out, h, n);
}

/*
 * Walks one whole value without allocating: a stack of "elements left" per open container.
 * In a map, an element is a key when the count left (before taking it) is even. With out,
 * it also appends the value as plain msgpack: every item as it is, a string reference of
 * the compact form as the string it stands for.
 */
static int codec_walk(struct mp_in *in, struct buf *out)
{
	uint64_t left[CODEC_MAX_DEPTH + 1];
	unsigned char ismap[CODEC_MAX_DEPTH + 1];
	struct mp_item it;
	size_t start;
	int d = 0;

	left[0] = 1;
	ismap[0] = 0;
	while (d >= 0) {
		if (left[d] == 0) {
			d--;
			continue;
		}
		if (ismap[d] && left[d] % 2 == 0 && !mp_at_str(in))
			return codec_fail(in, "map key at byte %zu is not a string", in->off);
		left[d]--;
		start = in->off;
		if (mp_read(in, &it) == -1)
			return -1;
		if (out != NULL && in->tab != NULL && in->p[start] == CODEC_REF) {
			mp_put_str_header(out, it.u);
			buf_add(out, it.s, it.u);
		} else if (out != NULL)
			buf_add(out, in->p + start, in->off - start);
		if (it.kind != MP_ARRAY && it.kind != MP_MAP)
			continue;
		if (mp_check_count(in, &it) == -1)
			return -1;
		if (d + 1 > CODEC_MAX_DEPTH)
			return codec_fail(in, "nesting deeper than %d", CODEC_MAX_DEPTH);
		d++;
		ismap[d] = it.kind == MP_MAP;
		left[d] = ismap[d] ? it.u * 2 : it.u;
	}
	if (in->off != in->len)
		return codec_fail(in, "%zu trailing bytes after the value", in->len - in->off);
	return 0;
}

static int codec_decode(struct mp_in *, int, json_object **);

static int codec_decode_array(struct mp_in *in, uint64_t n, int depth, json_object **out)
{
	json_object *a, *v;
	uint64_t i;

	a = json_object_new_array_ext((int)n);
	for (i = 0; i < n; i++) {
		if (codec_decode(in, depth + 1, &v) == -1) {
			json_object_put(a);
			return -1;
		}
		json_object_array_add(a, v);
	}
	*out = a;
	return 0;
}

/* adds one key/value pair to o; keys must be strings without NUL bytes */
static int codec_decode_pair(struct mp_in *in, json_object *o, int depth)
{
	struct mp_item k;
	json_object *v;
	char small[128], *key;

	if (mp_read(in, &k) == -1)
		return -1;
	if (k.kind != MP_STR)
		return codec_fail(in, "map key is not a string");
	if (memchr(k.s, '\0', k.u) != NULL)
		return codec_fail(in, "map key contains a NUL byte");
	if (k.u < sizeof small) { /* copied first: a time reference's text is overwritten */
		memcpy(small, k.s, k.u);
		small[k.u] = '\0';
		key = small;
	} else
		key = xstrndup(k.s, k.u);
	if (codec_decode(in, depth + 1, &v) == -1) {
		if (key != small)
			free(key);
		return -1;
	}
	json_object_object_add(o, key, v);
	if (key != small)
		free(key);
	return 0;
}

static int codec_decode_map(struct mp_in *in, uint64_t n, int depth, json_object **out)
{
	json_object *o;
	uint64_t i;

	o = json_object_new_object();
	for (i = 0; i < n; i++) {
		if (codec_decode_pair(in, o, depth) == -1) {
			json_object_put(o);
			return -1;
		}
	}
	*out = o;
	return 0;
}

/*
 * Builds the json-c value at in->off into *out (NULL is json null); -1 (err set) on anything
 * we do not carry. codec_walk() has checked the bytes; the checks here only keep this safe
 * on its own.
 */
static int codec_decode(struct mp_in *in, int depth, json_object **out)
{
	struct mp_item it;

	*out = NULL;
	if (mp_read(in, &it) == -1)
		return -1;
	if (it.kind == MP_ARRAY || it.kind == MP_MAP) {
		if (depth > CODEC_MAX_DEPTH)
			return codec_fail(in, "nesting deeper than %d", CODEC_MAX_DEPTH);
		if (mp_check_count(in, &it) == -1)
			return -1;
	}
	switch (it.kind) {
	case MP_NIL:
		return 0;
	case MP_FALSE:
	case MP_TRUE:
		*out = json_object_new_boolean(it.kind == MP_TRUE);
		return 0;
	case MP_UINT:
		if (it.u > INT64_MAX)
			*out = json_object_new_uint64(it.u);
		else
			*out = json_object_new_int64((int64_t)it.u);
		return 0;
	case MP_INT:
		*out = json_object_new_int64(it.i);
		return 0;
	case MP_F32:
	case MP_F64:
		*out = json_object_new_double(it.d);
		return 0;
	case MP_STR:
		*out = json_object_new_string_len(it.s, (int)it.u);
		return 0;
	case MP_ARRAY:
		return codec_decode_array(in, it.u, depth, out);
	case MP_MAP:
		return codec_decode_map(in, it.u, depth, out);
	default:
		return codec_fail(in, "unsupported msgpack value");
	}
}

/* checks the [type, seq, {body}] shape and decodes the body */
static int codec_decode_frame(struct mp_in *in, struct frame *f)
{
	struct mp_item it;
	size_t bodyoff;

	if (mp_read(in, &it) == -1)
		return -1;
	if (it.kind != MP_ARRAY || it.u != 3)
		return codec_fail(in, "frame is not an array of 3");
	if (mp_read(in, &it) == -1)
		return -1;
	if (it.kind == MP_UINT && it.u <= INT_MAX)
		f->type = (int)it.u;
	else if (it.kind == MP_INT && it.i >= INT_MIN && it.i <= INT_MAX)
		f->type = (int)it.i;
	else
		return codec_fail(in, "frame type is not an int");
	if (mp_read(in, &it) == -1)
		return -1;
	if (it.kind != MP_UINT)
		return codec_fail(in, "frame seq is not an unsigned int");
	f->seq = it.u;
	bodyoff = in->off;
	if (mp_read(in, &it) == -1)
		return -1;
	if (it.kind != MP_MAP)
		return codec_fail(in, "frame body is not a map");
	in->off = bodyoff;
	return codec_decode(in, 2, &f->body);
}

long codec_unpack(const unsigned char *in, size_t len, size_t max_frame, struct frame *f, char *err,
    size_t errlen)
{
	struct mp_in m;
	uint32_t n;

	f->type = 0;
	f->seq = 0;
	f->body = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (max_frame == 0)
		max_frame = PROTO_MAX_FRAME_DEFAULT;
	if (len < 4)
		return 0;
	n = (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
	m = (struct mp_in){in + 4, n, 0, err, errlen, NULL};
	if (n > max_frame)
		return codec_fail(
		    &m, "frame of %" PRIu32 " bytes exceeds the %zu-byte cap", n, max_frame);
	if (len - 4 < n)
		return 0;
	if (codec_walk(&m, NULL) == -1)
		return -1;
	m.off = 0;
	if (codec_decode_frame(&m, f) == -1) {
		frame_clear(f);
		return -1;
	}
	return 4 + (long)n;
}

void frame_clear(struct frame *f)
{
	if (f == NULL)
		return;
	json_object_put(f->body);
	f->body = NULL;
}

static json_object *codec_unpack_value(
    const unsigned char *in, size_t len, struct codec_tab *tab, char *err, size_t errlen)
{
	struct mp_in m = {in, len, 0, err, errlen, tab};
	json_object *v;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (codec_walk(&m, NULL) == -1)
		return NULL;
	m.off = 0;
	if (tab != NULL)
		tab->nback = 0; /* the second pass meets the same strings again */
	if (codec_decode(&m, 1, &v) == -1)
		return NULL;
	return v;
}

json_object *codec_value_unpack(const unsigned char *in, size_t len, char *err, size_t errlen)
{
	return codec_unpack_value(in, len, NULL, err, errlen);
}

/* msgpack_packer's write callback: straight into the caller's buffer */
static int codec_write(void *data, const char *p, size_t len)
{
	buf_add(data, p, len);
	return 0;
}

static void codec_pack_value(msgpack_packer *, json_object *, struct codec_tab *);
static int codec_tab_find(const struct codec_tab *, const char *, size_t);
static int codec_time_secs(const char *, size_t, uint32_t *);

/* a string, as a reference into tab when it holds it, a time as its seconds (tab NULL:
 * plain msgpack) */
static void codec_pack_str(msgpack_packer *pk, const char *s, size_t len, struct codec_tab *tab)
{
	unsigned char ref[6] = {CODEC_REF, 0};
	int i = tab != NULL ? codec_tab_find(tab, s, len) : -1;
	uint32_t secs;

	if (i >= 0) {
		ref[1] = (unsigned char)i;
		codec_write(pk->data, (const char *)ref, 2);
		return;
	}
	if (tab != NULL && codec_time_secs(s, len, &secs) == 0) {
		ref[1] = CODEC_TIME;
		ref[2] = (unsigned char)(secs >> 24);
		ref[3] = (unsigned char)(secs >> 16);
		ref[4] = (unsigned char)(secs >> 8);
		ref[5] = (unsigned char)secs;
		codec_write(pk->data, (const char *)ref, 6);
		return;
	}
	msgpack_pack_str(pk, len);
	msgpack_pack_str_body(pk, s, len);
	if (tab != NULL)
		codec_back_add(tab, s, len);
}

static void codec_pack_int(msgpack_packer *pk, json_object *v)
{
	int64_t i = json_object_get_int64(v);

	/* json-c keeps integers above INT64_MAX as uint64 */
	if (i == INT64_MAX)
		msgpack_pack_uint64(pk, json_object_get_uint64(v));
	else
		msgpack_pack_int64(pk, i);
}

static void codec_pack_object(msgpack_packer *pk, json_object *v, struct codec_tab *tab)
{
	msgpack_pack_map(pk, (size_t)json_object_object_length(v));
	json_object_object_foreach(v, key, val)
	{
		codec_pack_str(pk, key, strlen(key), tab);
		codec_pack_value(pk, val, tab);
	}
}

static void codec_pack_value(msgpack_packer *pk, json_object *v, struct codec_tab *tab)
{
	size_t i, n;
	int slen;

	switch (json_object_get_type(v)) {
	case json_type_null:
		msgpack_pack_nil(pk);
		break;
	case json_type_boolean:
		if (json_object_get_boolean(v))
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		break;
	case json_type_int:
		codec_pack_int(pk, v);
		break;
	case json_type_double:
		msgpack_pack_double(pk, json_object_get_double(v));
		break;
	case json_type_string:
		slen = json_object_get_string_len(v);
		codec_pack_str(pk, json_object_get_string(v), (size_t)slen, tab);
		break;
	case json_type_array:
		n = json_object_array_length(v);
		msgpack_pack_array(pk, n);
		for (i = 0; i < n; i++)
			codec_pack_value(pk, json_object_array_get_idx(v, i), tab);
		break;
	case json_type_object:
		codec_pack_object(pk, v, tab);
		break;
	}
}

/* fills in the length prefix of the frame that starts at start */
static void codec_frame_len(struct buf *out, size_t start)
{
	size_t n = out->len - start - 4;

	out->data[start] = (unsigned char)(n >> 24);
	out->data[start + 1] = (unsigned char)(n >> 16);
	out->data[start + 2] = (unsigned char)(n >> 8);
	out->data[start + 3] = (unsigned char)n;
}

/* starts a frame [type, seq, ...] in out, its length to be filled in; returns where */
static size_t codec_frame_begin(struct buf *out, msgpack_packer *pk, int type, uint64_t seq)
{
	size_t start = out->len;

	buf_add(out, "\0\0\0\0", 4);
	msgpack_packer_init(pk, out, codec_write);
	msgpack_pack_array(pk, 3);
	msgpack_pack_int(pk, type);
	msgpack_pack_uint64(pk, seq);
	return start;
}

void codec_pack(struct buf *out, int type, uint64_t seq, json_object *body)
{
	msgpack_packer pk;
	size_t start = codec_frame_begin(out, &pk, type, seq);

	if (body != NULL && !json_object_is_type(body, json_type_object)) {
		log_warnx(NULL, "codec: %s body is not an object; sending {}", msg_type_name(type));
		body = NULL;
	}
	if (body == NULL)
		msgpack_pack_map(&pk, 0);
	else
		codec_pack_object(&pk, body, NULL);
	codec_frame_len(out, start);
}

void codec_pack_obj(
    struct buf *out, int type, uint64_t seq, const char *kind, const unsigned char *obj, size_t len)
{
	msgpack_packer pk;
	size_t start = codec_frame_begin(out, &pk, type, seq);

	msgpack_pack_map(&pk, 2);
	msgpack_pack_str(&pk, 4);
	msgpack_pack_str_body(&pk, "kind", 4);
	msgpack_pack_str(&pk, strlen(kind));
	msgpack_pack_str_body(&pk, kind, strlen(kind));
	msgpack_pack_str(&pk, 3);
	msgpack_pack_str_body(&pk, "obj", 3);
	buf_add(out, obj, len);
	codec_frame_len(out, start);
}

int codec_value_pack(struct buf *out, json_object *v)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, out, codec_write);
	codec_pack_value(&pk, v, NULL);
	return 0;
}

int codec_too_deep(json_object *v, int max)
{
	size_t i, n;

	if (v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_object) && !json_object_is_type(v, json_type_array))
		return 0;
	if (max < 1)
		return 1;
	if (json_object_is_type(v, json_type_array)) {
		n = json_object_array_length(v);
		for (i = 0; i < n; i++)
			if (codec_too_deep(json_object_array_get_idx(v, i), max - 1))
				return 1;
		return 0;
	}
	json_object_object_foreach(v, key, val)
	{
		(void)key;
		if (codec_too_deep(val, max - 1))
			return 1;
	}
	return 0;
}

/* ---- the compact form (codec.h) ---- */

/* the reference byte of s in tab, or -1; only strings of 2 bytes or more are worth one */
static int codec_tab_find(const struct codec_tab *tab, const char *s, size_t len)
{
	size_t i;
	int d;

	if (len < 2)
		return -1;
	for (i = 0; i < tab->nlocal; i++) {
		if (strlen(tab->local[i]) == len && memcmp(tab->local[i], s, len) == 0)
			return (int)i;
	}
	if ((d = codec_dict_find(s, len)) >= 0)
		return CODEC_LOCAL_MAX + d;
	for (i = 0; i < tab->nback; i++) {
		if (tab->back[i].len == len && memcmp(tab->back[i].s, s, len) == 0)
			return CODEC_BACK_BASE + (int)i;
	}
	return -1;
}

/* a literal string of the value, for back references to it while there is room (only
 * strings of 3 bytes or more: a 2-byte one costs 3 bytes written, its reference 2) */
static void codec_back_add(struct codec_tab *tab, const char *s, size_t len)
{
	if (len < 3 || tab->nback == CODEC_BACK_MAX)
		return;
	tab->back[tab->nback].s = s;
	tab->back[tab->nback].len = len;
	tab->nback++;
}

/* secs as the API server writes a time ("2006-01-02T15:04:05Z"); -1 if it cannot be */
static int codec_time_text(uint32_t secs, char out[CODEC_TIME_LEN + 1])
{
	char text[32];

	rfc3339_format((double)secs, text);
	if (strlen(text) != CODEC_TIME_LEN)
		return -1;
	memcpy(out, text, CODEC_TIME_LEN + 1);
	return 0;
}

/* 0 and the seconds of s (len bytes) if it is a time written exactly as codec_time_text
 * writes it back, else -1 */
static int codec_time_secs(const char *s, size_t len, uint32_t *secs)
{
	char text[CODEC_TIME_LEN + 1];
	double t;

	if (len != CODEC_TIME_LEN || s[10] != 'T' || s[19] != 'Z')
		return -1;
	memcpy(text, s, len);
	text[len] = '\0';
	t = rfc3339_parse(text);
	if (!(t >= 0 && t <= (double)UINT32_MAX))
		return -1;
	*secs = (uint32_t)t;
	if (codec_time_text(*secs, text) == -1 || memcmp(text, s, len) != 0)
		return -1;
	return 0;
}

/* the string of reference byte i, or NULL */
static const char *codec_tab_str(const struct codec_tab *tab, unsigned i, size_t *len)
{
	const char *s = NULL;

	if (i < tab->nlocal)
		s = tab->local[i];
	else if (i >= CODEC_LOCAL_MAX && i < CODEC_BACK_BASE)
		s = codec_dict_entry(i - CODEC_LOCAL_MAX);
	if (s == NULL || (*len = strlen(s)) < 2) /* never written so */
		return NULL;
	return s;
}

int codec_compact_pack(struct buf *out, json_object *v, const char *const *local, size_t nlocal)
{
	struct codec_tab tab = {
	    .local = local, .nlocal = nlocal < CODEC_LOCAL_MAX ? nlocal : CODEC_LOCAL_MAX};
	msgpack_packer pk;

	msgpack_packer_init(&pk, out, codec_write);
	codec_pack_value(&pk, v, &tab);
	return 0;
}

json_object *codec_compact_unpack(const unsigned char *in, size_t len, const char *const *local,
    size_t nlocal, char *err, size_t errlen)
{
	struct codec_tab tab = {
	    .local = local, .nlocal = nlocal < CODEC_LOCAL_MAX ? nlocal : CODEC_LOCAL_MAX};

	return codec_unpack_value(in, len, &tab, err, errlen);
}

int codec_compact_expand(struct buf *out, const unsigned char *in, size_t len,
    const char *const *local, size_t nlocal, char *err, size_t errlen)
{
	struct codec_tab tab = {
	    .local = local, .nlocal = nlocal < CODEC_LOCAL_MAX ? nlocal : CODEC_LOCAL_MAX};
	struct mp_in m = {in, len, 0, err, errlen, &tab};
	size_t was = out->len;

	if (codec_walk(&m, out) == -1) {
		out->len = was;
		return -1;
	}
	return 0;
}

/*
 * fuzz_frame.c: libFuzzer target for the frame decoder (codec_unpack) as link.c drives it on
 * a socket's bytes, for the typed messages (msg_unpack) every receiver applies to a frame's
 * body, and for the bare msgpack value decoder (codec_value_unpack). A frame that decodes
 * must pack again to bytes that decode to the same frame; a body that unpacks must pack to
 * a body that unpacks to the same message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "log.h"
#include "msg.h"
#include "proto.h"

#define FUZZ_MAX_FRAME (1024 * 1024)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz_frame", -1, LOG_FMT_TEXT);
	return 0;
}

/* pack f again and decode it: the same type, seq and body, or the codec is inconsistent */
static void fuzz_roundtrip(const struct frame *f)
{
	struct buf b = {0};
	struct frame g;
	char err[256];
	long used;

	memset(&g, 0, sizeof g);
	codec_pack(&b, f->type, f->seq, f->body);
	used = codec_unpack(b.data, b.len, (size_t)-1, &g, err, sizeof err);
	/* compared as text: json_object_equal() says NaN differs from itself */
	if (used != (long)b.len || g.type != f->type || g.seq != f->seq ||
	    strcmp(json_object_to_json_string_ext(f->body, JSON_C_TO_STRING_PLAIN),
	        json_object_to_json_string_ext(g.body, JSON_C_TO_STRING_PLAIN)) != 0) {
		fprintf(stderr, "roundtrip: used %ld of %zu: %s\n", used, b.len, err);
		abort();
	}
	frame_clear(&g);
	buf_clear(&b);
}

/* the typed message of f, if its body is one: packed again, it unpacks to the same */
static void fuzz_msg(const struct frame *f)
{
	union msg_any m, m2;
	json_object *b, *b2;
	char err[256];

	if (msg_unpack(f->type, f->body, &m, err, sizeof err) == -1)
		return;
	b = msg_pack(f->type, &m);
	if (msg_unpack(f->type, b, &m2, err, sizeof err) == -1) {
		fprintf(stderr, "msg: %s packed again does not unpack: %s\n",
		    msg_type_name(f->type), err);
		abort();
	}
	b2 = msg_pack(f->type, &m2);
	if (strcmp(json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN),
	        json_object_to_json_string_ext(b2, JSON_C_TO_STRING_PLAIN)) != 0) {
		fprintf(stderr, "msg: %s does not round-trip\n", msg_type_name(f->type));
		abort();
	}
	json_object_put(b2);
	json_object_put(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame f;
	json_object *v;
	char err[256];
	size_t off = 0;
	long used;

	/* a stream of frames, as read from a socket */
	while (off < size) {
		memset(&f, 0, sizeof f);
		used = codec_unpack(data + off, size - off, FUZZ_MAX_FRAME, &f, err, sizeof err);
		if (used <= 0)
			break;
		fuzz_roundtrip(&f);
		fuzz_msg(&f);
		frame_clear(&f);
		off += (size_t)used;
	}
	/* one bare value, as vmpoolctl dump decodes a recording's bodies */
	if ((v = codec_value_unpack(data, size, err, sizeof err)) != NULL)
		json_object_put(v);
	return 0;
}

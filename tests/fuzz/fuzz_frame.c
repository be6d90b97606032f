/*
 * fuzz_frame.c: libFuzzer target for the frame decoder (codec_unpack) as link.c drives it on
 * a socket's bytes, and for the bare msgpack value decoder (codec_value_unpack). A frame
 * that decodes must pack again to bytes that decode to the same frame.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "log.h"

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
		frame_clear(&f);
		off += (size_t)used;
	}
	/* one bare value, as vmpoolctl dump decodes a recording's bodies */
	if ((v = codec_value_unpack(data, size, err, sizeof err)) != NULL)
		json_object_put(v);
	return 0;
}

/*
 * fuzz_watch.c: libFuzzer target for what the watcher does with a watch stream: JSON
 * objects split across arbitrary chunks into json-c's incremental tokener (the loop of
 * kube.c's kwatch_feed, with its depth limit), each event transcoded to a msgpack frame
 * (codec_pack), decoded as a subscriber does (codec_unpack with the default frame cap)
 * and applied to a mirror's store (mirror_apply), between SYNC_BEGIN and SYNC_END.
 * The first input byte sets the chunk size.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "codec.h"
#include "log.h"
#include "mirror.h"
#include "proto.h"

#define FUZZ_JSON_DEPTH 256 /* kube.c's KUBE_JSON_DEPTH */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct event_base *fuzz_base;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz_watch", -1, LOG_FMT_TEXT);
	fuzz_base = event_base_new();
	return 0;
}

static const char *fuzz_kind(json_object *obj)
{
	static const struct {
		const char *api, *kind;
	} map[] = {
	    {"VirtualMachinePool", KIND_POOL},
	    {"VirtualMachineInstance", KIND_VMI},
	    {"ControllerRevision", KIND_REV},
	    {"PersistentVolumeClaim", KIND_PVC},
	    {"DataVolume", KIND_DV},
	};
	json_object *k;
	size_t i;

	if (json_object_object_get_ex(obj, "kind", &k) && json_object_is_type(k, json_type_string))
		for (i = 0; i < sizeof map / sizeof map[0]; i++)
			if (strcmp(json_object_get_string(k), map[i].api) == 0)
				return map[i].kind;
	return KIND_VM;
}

/* one watch event -> frame -> decoded frame -> mirror */
static void fuzz_event(struct mirror *m, json_object *ev, uint64_t seq)
{
	json_object *type, *obj, *body;
	struct buf b = {0};
	struct frame f;
	char err[256];
	long used;

	if (!json_object_is_type(ev, json_type_object) ||
	    !json_object_object_get_ex(ev, "type", &type) ||
	    !json_object_object_get_ex(ev, "object", &obj) ||
	    !json_object_is_type(obj, json_type_object))
		return;
	body = json_object_new_object();
	json_object_object_add(body, "kind", json_object_new_string(fuzz_kind(obj)));
	json_object_object_add(body, "obj", json_object_get(obj));
	codec_pack(&b,
	    strcmp(json_object_get_string(type), "DELETED") == 0 ? MSG_OBJ_DELETE : MSG_OBJ_SET,
	    seq, body);
	json_object_put(body);
	memset(&f, 0, sizeof f);
	used = codec_unpack(b.data, b.len, PROTO_MAX_FRAME_DEFAULT, &f, err, sizeof err);
	if (used == 0)
		abort(); /* a whole frame is decoded or refused, never "need more" */
	if (used > 0) {
		mirror_apply(m, f.type, f.body);
		frame_clear(&f);
	}
	buf_clear(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct mirror_cb cb = {NULL, NULL, NULL};
	json_tokener *tok;
	json_object *obj;
	struct mirror *m;
	size_t chunk, off, end, n;
	uint64_t seq = 0;

	if (size < 1)
		return 0;
	chunk = (size_t)data[0] + 1;
	data++;
	size--;
	m = mirror_new(fuzz_base, NULL, PROTO_MAX_FRAME_DEFAULT, &cb, NULL);
	mirror_apply(m, MSG_SYNC_BEGIN, NULL);
	tok = json_tokener_new_ex(FUZZ_JSON_DEPTH);
	for (off = 0; off < size; off = end) {
		end = off + chunk < size ? off + chunk : size;
		while (off < end) {
			obj =
			    json_tokener_parse_ex(tok, (const char *)data + off, (int)(end - off));
			if (obj == NULL) {
				if (json_tokener_get_error(tok) != json_tokener_continue)
					goto done; /* the watch is cut: bad JSON */
				off = end;
				continue;
			}
			n = json_tokener_get_parse_end(tok);
			off += n > 0 ? n : end - off;
			json_tokener_reset(tok);
			fuzz_event(m, obj, seq++);
			json_object_put(obj);
		}
	}
done:
	mirror_apply(m, MSG_SYNC_END, NULL);
	json_tokener_free(tok);
	mirror_free(m);
	return 0;
}

/*
 * codec.h: the frame codec and json <-> msgpack transcoding. The only module that includes
 * msgpack.h. Decoding is strict: the length is checked against the cap before anything is
 * buffered, every msgpack array/map header is checked against the bytes that remain before
 * anything is allocated, the top level must be [int type, int seq, map body], map keys must
 * be strings. Unknown body keys are the caller's to ignore.
 */
#ifndef VMPOOL_CODEC_H
#define VMPOOL_CODEC_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "xmalloc.h"

/*
 * The one nesting limit of the pipeline. A frame may nest containers CODEC_MAX_DEPTH deep
 * (the frame's array and its body map count); an object from the API is passed on only if it
 * nests at most CODEC_OBJ_MAX_DEPTH deep, which leaves room for the deepest envelope that
 * carries one (a JSON patch op's value: frame, body, patch array, op map).
 */
#define CODEC_MAX_DEPTH     64
#define CODEC_ENVELOPE      4
#define CODEC_OBJ_MAX_DEPTH (CODEC_MAX_DEPTH - CODEC_ENVELOPE)

struct frame {
	int type;
	uint64_t seq;
	json_object *body; /* owned by the frame; frame_clear() puts it */
};

/* Appends one complete frame (length prefix included) to out. body NULL means {}. */
void codec_pack(struct buf *out, int type, uint64_t seq, json_object *body);
/* Appends a frame with the body {"kind": kind, "obj": obj}, obj being msgpack bytes already
 * packed (codec_value_pack), copied as they are. */
void codec_pack_obj(struct buf *out, int type, uint64_t seq, const char *kind,
    const unsigned char *obj, size_t len);

/*
 * Looks at the front of in (len bytes). Returns:
 *   0  need more bytes (nothing consumed)
 *  >0  a frame was decoded into *f; the return value is the number of bytes it used
 *  -1  the stream is bad (length over max_frame, bad msgpack, wrong shape); err says why
 */
long codec_unpack(const unsigned char *in, size_t len, size_t max_frame, struct frame *f, char *err,
    size_t errlen);
void frame_clear(struct frame *);

/* 1 if v nests containers deeper than max (v itself counts 1, a scalar 0); looks no deeper
 * than max + 1 levels, so it is cheap on any input */
int codec_too_deep(json_object *v, int max);

/* msgpack bytes <-> json-c value (whole value, no framing); for the record/dump tools */
int codec_value_pack(struct buf *out, json_object *v);
json_object *codec_value_unpack(const unsigned char *in, size_t len, char *err, size_t errlen);

/*
 * The compact form: the compact store's own encoding (store_new_compact). msgpack in which a
 * string, a map key or a value of 2 bytes or more, may be written as 2 bytes: CODEC_REF (a
 * byte msgpack never uses) and an index. An index below CODEC_LOCAL_MAX is the caller's
 * local[index] (a record's own namespace, name, uid...: what it keeps beside the bytes), a
 * higher one an entry of a fixed dictionary of keys and values common in our objects
 * (codec.c). It never leaves the process: links and recordings carry plain msgpack, so the
 * dictionary may change in any release. Unpacking is as strict as codec_value_unpack's, and
 * the same local strings must be passed as for packing.
 */
#define CODEC_REF       0xc1
#define CODEC_LOCAL_MAX 8
/* More references: an index from CODEC_BACK_BASE is the value's own literal string of that
 * number (strings of 3 bytes or more, counted as they are written, the first
 * CODEC_BACK_MAX of them): a pool's name in a VM's labels, owner reference and template
 * labels is written once. CODEC_TIME and 4 big-endian bytes of seconds since 1970 is a
 * time as the API server writes it ("2006-01-02T15:04:05Z"): 6 bytes instead of 21. */
#define CODEC_BACK_BASE 224
#define CODEC_BACK_MAX  31
#define CODEC_TIME      255
#define CODEC_TIME_LEN  20
int codec_compact_pack(struct buf *out, json_object *v, const char *const *local, size_t nlocal);
json_object *codec_compact_unpack(const unsigned char *in, size_t len, const char *const *local,
    size_t nlocal, char *err, size_t errlen);
/* appends the compact value in (len bytes) as plain msgpack, the bytes codec_value_pack
 * gives for its tree, without decoding it (what a compact store sends on a link); -1 (out
 * unchanged, err says why) if the bytes are bad */
int codec_compact_expand(struct buf *out, const unsigned char *in, size_t len,
    const char *const *local, size_t nlocal, char *err, size_t errlen);
/* the dictionary (codecdict.c): an entry's index, or -1; the entries, for tests */
int codec_dict_find(const char *s, size_t len);
size_t codec_dict_size(void);
const char *codec_dict_entry(size_t i);

#endif

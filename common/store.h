/*
 * store.h: the compact store, last-known copies of cluster objects. Each object is one
 * record: its kind, namespace, name, uid, resourceVersion, controlling owner's uid and
 * whether it is being deleted, as C strings, and the object itself as msgpack bytes
 * (codec_value_pack; in a store_new_compact() store the compact form of codec.h, where the
 * record's own strings and common keys and values are 2-byte references). Records are found by (kind, namespace, name), by (kind, uid) and by
 * (kind, namespace, controller uid); controller uid "" holds the namespace's objects that
 * have no controller reference.
 *
 * Views. Readers still read json-c: store_get, store_get_uid, store_owned and store_put
 * hand out views, json-c trees decoded from the bytes on demand. A view is borrowed: it
 * stays valid until store_release_views(), or until its object is replaced or taken
 * (store_put/store_set/store_take/store_clear on that name), whichever comes first. Keep a
 * reference (json_object_get) to keep one longer. store_foreach's view is valid during the
 * callback only (unless it was cached already). Each event loop that reads a store
 * releases its views at a defined point (DESIGN.md, "Objects"), so that at most one pool's
 * objects are decoded at a time.
 */
#ifndef VMPOOL_STORE_H
#define VMPOOL_STORE_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "slab.h"    /* struct slabs_stats */
#include "xmalloc.h" /* struct buf */

struct store;
typedef void (*store_fn)(json_object *obj, void *arg);

/* a record's typed metadata, borrowed like a view of it */
struct store_meta {
	const char *kind, *ns, *name;
	const char *uid;        /* "" if none */
	const char *rv;         /* resourceVersion, "" if none */
	const char *owner;      /* controller owner uid, "" if no controller reference */
	unsigned char deleting; /* metadata.deletionTimestamp is set */
	unsigned char traits;   /* what the store's traits function said of it (store_traits) */
	unsigned mark;          /* the owner's tag (store_mark), 0 when stored; kept on replace */
	const unsigned char *bytes; /* plain msgpack, or the compact form (store_new_compact) */
	size_t len;
	uint64_t seq; /* the place in store order: grows with every name that enters */
	/* where uid and owner are written when the record keeps them as a UUID's 16 bytes */
	char uid_text[37], owner_text[37];
};
typedef void (*store_meta_fn)(const struct store_meta *, void *arg);
/* 0 stops a walk */
typedef int (*store_meta_until_fn)(const struct store_meta *, void *arg);

/* bits a reader wants of an object without decoding it, derived once when it is written
 * (the low 8 are kept: they share the record's padding with deleting) */
typedef unsigned (*store_traits_fn)(const char *kind, json_object *obj);

struct store *store_new(void);
/* a store whose records hold the compact form (codec.h): a projected VM in less than half
 * the bytes; its bytes are not for a link (store_plain gives those) */
struct store *store_new_compact(void);
void store_free(struct store *);
/* derives store_meta.traits with fn for the objects written from now on (set it while the
 * store is empty); without one traits is 0 */
void store_traits(struct store *, store_traits_fn fn);
/* groups by controller uid (store_owned, store_foreach_owned_meta) only the records of the
 * kinds in kinds, a NULL-terminated list that must outlive the store (NULL: every kind, the
 * default); the others cost no group, and an owned query of their kind finds nothing (a
 * group per VMI, each under its VM, was about 120 bytes of heap a VMI). Set it before the
 * first object is stored. */
void store_owner_kinds(struct store *, const char *const *kinds);
/* views; NULL if absent */
json_object *store_get(struct store *, const char *kind, const char *ns, const char *name);
json_object *store_get_uid(struct store *, const char *kind, const char *uid);
/* metadata without decoding, NULL if absent: the store's one struct, valid until the next
 * store_meta or store_meta_uid on the store or its next change */
const struct store_meta *store_meta(
    struct store *, const char *kind, const char *ns, const char *name);
const struct store_meta *store_meta_uid(struct store *, const char *kind, const char *uid);
/*
 * Takes over the caller's reference to obj, packs it and keeps obj as the record's view.
 * Returns the previous object as a new reference (the caller puts it) or NULL. Key from
 * obj's metadata; an object without metadata.name is dropped (logged) and NULL returned.
 */
json_object *store_put(struct store *, const char *kind, json_object *obj);
/* like store_put, but obj stays the caller's and nothing is decoded; -1 if dropped */
int store_set(struct store *, const char *kind, json_object *obj);
/* removes the record and returns its object as a new reference (caller puts it) or NULL */
json_object *store_take(struct store *, const char *kind, const char *ns, const char *name);
/* appends the record's object as plain msgpack (codec_value_pack's bytes, what a link
 * carries): its bytes, or in a compact store the bytes expanded without decoding */
void store_plain(struct store *, const struct store_meta *, struct buf *out);
/* appends obj packed as s stores it, to compare with a record's bytes */
void store_pack(struct store *, json_object *obj, struct buf *out);
/* sets the record's mark (a mirror's snapshot generation); 0 if it is absent */
int store_mark(struct store *, const char *kind, const char *ns, const char *name, unsigned mark);
/* removes the record without decoding it; 0 if it was absent */
int store_del(struct store *, const char *kind, const char *ns, const char *name);
/*
 * The objects of kind in store order: the order their names entered the store (a
 * replacement keeps its place). The callback must not modify the store; collect keys
 * first and change it afterwards.
 */
void store_foreach(struct store *, const char *kind, store_fn, void *);
void store_foreach_meta(struct store *, const char *kind, store_meta_fn, void *);
/*
 * The records of kind after seq (store_meta.seq; 0: from the first) in store order, until
 * fn returns 0. Returns 1 if the walk reached the end, 0 if fn stopped it. A name that
 * enters later comes after every record there is now, so a walk resumed from the last seq
 * it saw finds every name added meanwhile and none twice.
 */
int store_walk_meta_after(
    struct store *, const char *kind, uint64_t seq, store_meta_until_fn, void *);
/*
 * The views of kind in ns whose controller owner has uid owner ("": no controller), in
 * store order. *objs is allocated (free it, not the views) even when empty.
 */
size_t store_owned(
    struct store *, const char *kind, const char *ns, const char *owner, json_object ***objs);
/* store_owned's records as metadata, nothing decoded; fn may take views (store_get), not
 * change the store */
void store_foreach_owned_meta(struct store *, const char *kind, const char *ns, const char *owner,
    store_meta_fn fn, void *arg);
size_t store_count(struct store *, const char *kind);
void store_clear(struct store *);
/* ends every view handed out so far */
void store_release_views(struct store *);
size_t store_views(const struct store *); /* views held now */
size_t store_bytes(const struct store *); /* packed bytes held */
/* the store's slabs (slab.h): mapped, and in use by its records, links and metadata included */
void store_slabs_stats(const struct store *, struct slabs_stats *);
/* moves the records that live in the store's sparsest slabs into the free slots of its
 * others, so that those slabs go back to the kernel (slabs_evacuate_begin, slab.h); views
 * stay valid, a store_meta does not (a change). Returns how many records moved. */
size_t store_compact(struct store *);

#endif

/*
 * slab.h: where a store's records live (issue 9). A record lives as long as its object and
 * is replaced, not changed: every watch event frees one record and allocates its successor,
 * between the short-lived json-c trees of that event. Taken from glibc's heap, the records
 * ended up scattered among the holes those trees left (at 1,000 pools x 10 VMs the watcher's
 * heap held 5.8 MB of free chunks in 15.6 MB), and only whole free pages can go back to the
 * kernel. A slab set keeps records apart from everything else: 16 KB slabs mapped for
 * themselves, each cut into slots of one size class; a freed slot is taken by the next
 * record of its class (a replacement is usually the same size), a slab with nothing in it
 * goes back to the kernel unless it is its class's last. Sizes above SLAB_MAX_SIZE come
 * from malloc.
 *
 * Under AddressSanitizer a free slot is poisoned, so a record used after its free is still
 * caught.
 */
#ifndef VMPOOL_SLAB_H
#define VMPOOL_SLAB_H

#include <stddef.h>

#include "xmalloc.h"

#define SLAB_SIZE     (16 * 1024)
#define SLAB_MAX_SIZE 4096

struct slabs;

struct slabs *slabs_new(void);
/* unmaps every slab; what came from malloc must have been given back with slabs_free */
void slabs_destroy(struct slabs *);
/* n bytes, zeroed, aligned to 16; never NULL (xmalloc's way) */
void *slabs_alloc(struct slabs *, size_t n);
/* p from slabs_alloc of the same set with the same n; NULL is ignored */
void slabs_free(struct slabs *, void *p, size_t n);

/* bytes kept a long while in a buf of exactly their size (cap = len), in a slot of set:
 * slabs_buf_keep replaces what dst kept; slabs_buf_free gives it back and zeroes dst.
 * A buf kept this way is only read, and only ever freed with slabs_buf_free. */
void slabs_buf_keep(struct slabs *, struct buf *dst, const void *data, size_t len);
void slabs_buf_free(struct slabs *, struct buf *);

/* The same in one set for the whole process, for bytes a stage keeps beside its stores (the
 * planner's held and outstanding actions, vmpool-status's written and in-flight statuses):
 * slabs_keep keeps what scratch holds in dst and empties scratch for the next packing (its
 * buffer dropped when it grew over SLAB_SCRATCH_MAX); slabs_unkeep gives dst's bytes back. */
#define SLAB_SCRATCH_MAX (64 * 1024)
void slabs_keep(struct buf *dst, struct buf *scratch);
void slabs_unkeep(struct buf *);
/* gives back the process set's empty slabs kept for their class (memtrim's tick) */
void slabs_kept_release(void);

/*
 * Emptying sparse slabs. Records replaced by records of another size class leave their
 * class's slabs with a few long-lived records each among free slots, and a slab goes back
 * only once it is empty (1,000 pools x 10 VMs: a VMI's first copy is a class smaller than
 * its later ones; 58 slabs of that class held 1,081 records in 5,336 slots, 0.75 MB, in
 * the watcher and the planner alike). slabs_evacuate_begin marks, in each class, the
 * emptiest slabs (at most half full, never a class's last with room) whose slots in use fit
 * in the free slots of the class's other slabs, and returns how many it marked; until
 * slabs_evacuate_end nothing is allocated from a marked slab, and one is unmapped as soon
 * as its last slot is freed. The owner moves what lives there (slabs_evacuating tells) to a
 * new slot of the same size (slabs_alloc) and frees the old one. It first gives back each
 * class's last slab if nothing is in it (a free keeps that one: the next record of its class
 * often follows at once; a second later it has not).
 */
size_t slabs_evacuate_begin(struct slabs *);
int slabs_evacuating(const struct slabs *, const void *p); /* p: from slabs_alloc, in a slab */
void slabs_evacuate_end(struct slabs *);

/* for tests: bytes mapped in slabs, bytes handed out in slots */
struct slabs_stats {
	size_t mapped, used, slabs;
};
void slabs_stats(const struct slabs *, struct slabs_stats *);

#endif

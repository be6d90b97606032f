/*
 * memtrim.h: a stage's freed heap pages go back to the kernel. Long-lived allocations made
 * between the short-lived trees of each event or pass leave the heap full of holes: at 1,000
 * pools x 10 VMs the watcher's heap held 5.8 MB of free chunks in 15.6 MB, the actuator's
 * 6.1 in 9.5 (malloc_info). The stores' records and the bytes stages keep beside them now
 * live in slabs (slab.h); what is left in the heap (the actuator's requests and Event
 * caches, curl's buffers) still leaves holes. glibc gives back only the top of the heap by
 * itself; malloc_trim(0) also returns the whole free pages inside it. Once a second, when at least MEMTRIM_MIN_FREE bytes are free and that
 * figure moved since the last trim, the heap is trimmed (an idle stage stays idle: no change,
 * no trim). The same tick first compacts the stores the stage registered (store_compact:
 * records replaced by larger or smaller ones leave slabs with a few records each, which
 * only moving them gives back) and gives back the empty slabs kept for a class
 * (slabs_kept_release).
 */
#ifndef VMPOOL_MEMTRIM_H
#define VMPOOL_MEMTRIM_H

#include <stddef.h>

#include <event2/event.h>

#define MEMTRIM_MIN_FREE (1024 * 1024)

struct memtrim;
/* fatalx if libevent cannot create the timer (start-up only) */
struct memtrim *memtrim_new(struct event_base *);
void memtrim_free(struct memtrim *);
/* compacts s on every tick from now on (at most MEMTRIM_STORES stores; s outlives the loop) */
#define MEMTRIM_STORES 2
struct store;
void memtrim_store(struct memtrim *, struct store *s);
/* one check now: trims when the free bytes are at least min_free and not last_free (the
 * figure after the previous trim, 0 at first); returns the free bytes after it, which the
 * caller passes as last_free next time */
size_t memtrim_check(size_t min_free, size_t last_free, int *trimmed);

#endif

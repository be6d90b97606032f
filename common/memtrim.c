/* memtrim.c: the heap's free pages back to the kernel, once a second at most (memtrim.h). */
#include <malloc.h>
#include <stdlib.h>

#include "log.h"
#include "memtrim.h"
#include "slab.h"
#include "store.h"
#include "xmalloc.h"

#define MEMTRIM_PERIOD_SEC 1

struct memtrim {
	struct event *ev;
	size_t last_free;
	struct store *stores[MEMTRIM_STORES];
	size_t nstores;
};

size_t memtrim_check(size_t min_free, size_t last_free, int *trimmed)
{
	struct mallinfo2 mi = mallinfo2();

	*trimmed = 0;
	if (mi.fordblks < min_free || mi.fordblks == last_free)
		return mi.fordblks;
	malloc_trim(0);
	*trimmed = 1;
	return mallinfo2().fordblks;
}

static void memtrim_cb(evutil_socket_t fd, short what, void *arg)
{
	struct memtrim *t = arg;
	size_t i, moved;
	int trimmed;

	for (i = 0; i < t->nstores; i++) {
		if ((moved = store_compact(t->stores[i])) > 0)
			log_debug(NULL, "store compacted: %zu records moved", moved);
	}
	slabs_kept_release();
	t->last_free = memtrim_check(MEMTRIM_MIN_FREE, t->last_free, &trimmed);
	if (trimmed)
		log_debug(NULL, "heap trimmed: %zu bytes free in it", t->last_free);
}

struct memtrim *memtrim_new(struct event_base *base)
{
	struct memtrim *t = xcalloc(1, sizeof(*t));
	struct timeval tv = {MEMTRIM_PERIOD_SEC, 0};

	t->ev = event_new(base, -1, EV_PERSIST, memtrim_cb, t);
	if (t->ev == NULL || event_add(t->ev, &tv) == -1)
		fatalx("cannot set up the heap trim timer");
	return t;
}

void memtrim_store(struct memtrim *t, struct store *s)
{
	if (t->nstores == MEMTRIM_STORES)
		fatalx("memtrim: more than %d stores", MEMTRIM_STORES);
	t->stores[t->nstores++] = s;
}

void memtrim_free(struct memtrim *t)
{
	if (t == NULL)
		return;
	event_free(t->ev);
	free(t);
}

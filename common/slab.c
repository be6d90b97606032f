/*
 * slab.c: slabs for records (slab.h). Each slab is SLAB_SIZE bytes mapped at a multiple of
 * SLAB_SIZE, so a slot finds its slab by masking its address: a header, then slots of one
 * size class. A class lists its slabs that have a free slot ("partial"); a slot is taken
 * from the first of them, from its free list or else from the part never used. A slab that
 * becomes empty is unmapped unless it is the only one its class lists, so a class that
 * shrinks and grows again does not map and unmap at every record.
 */
#include "slab.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/queue.h>

#include "log.h"
#include "xmalloc.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define SLOT_POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define SLOT_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define SLOT_POISON(p, n)   ((void)(p), (void)(n))
#define SLOT_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* classes: 16-byte steps to 256, then 8 classes per doubling up to SLAB_MAX_SIZE */
#define NCLASS 48

struct slab {
	LIST_ENTRY(slab) pentry; /* the class's partial list, while on it */
	LIST_ENTRY(slab) aentry; /* every slab of the set */
	void *free;              /* freed slots, each holding the next */
	unsigned nused, nslots, bump;
	unsigned char cls, partial;
	unsigned char evac; /* marked by slabs_evacuate_begin: off the partial list */
};

#define SLAB_HDR ((sizeof(struct slab) + 15) & ~(size_t)15)

LIST_HEAD(slab_list, slab);

struct slabs {
	struct slab_list partial[NCLASS];
	struct slab_list all;
	struct slabs_stats st;
	size_t nevac; /* slabs marked by slabs_evacuate_begin and not yet empty */
};

static size_t class_size(unsigned c)
{
	unsigned step, base;

	if (c < 16)
		return (size_t)(c + 1) * 16;
	c -= 16;
	base = 256u << (c / 8);
	step = base / 8;
	return base + (size_t)(c % 8 + 1) * step;
}

static unsigned class_of(size_t n)
{
	unsigned c = 16;
	size_t base = 256;

	if (n <= 256)
		return n == 0 ? 0 : (unsigned)((n - 1) / 16);
	while (n > base * 2) {
		base *= 2;
		c += 8;
	}
	return c + (unsigned)((n - base + base / 8 - 1) / (base / 8)) - 1;
}

struct slabs *slabs_new(void)
{
	return xcalloc(1, sizeof(struct slabs));
}

static struct slab *slab_map(struct slabs *set, unsigned c)
{
	size_t len = 2 * (size_t)SLAB_SIZE, head;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct slab *s;

	if (p == MAP_FAILED)
		fatal("slab: cannot map %d bytes", SLAB_SIZE);
	/* keep the aligned SLAB_SIZE in the middle, give back what is around it */
	head = (SLAB_SIZE - (uintptr_t)p % SLAB_SIZE) % SLAB_SIZE;
	if (head > 0)
		munmap(p, head);
	munmap(p + head + SLAB_SIZE, len - head - SLAB_SIZE);
	s = (struct slab *)(p + head);
	s->cls = (unsigned char)c;
	s->nslots = (unsigned)((SLAB_SIZE - SLAB_HDR) / class_size(c));
	SLOT_POISON((char *)s + SLAB_HDR, SLAB_SIZE - SLAB_HDR);
	LIST_INSERT_HEAD(&set->all, s, aentry);
	set->st.mapped += SLAB_SIZE;
	set->st.slabs++;
	return s;
}

static void slab_unmap(struct slabs *set, struct slab *s)
{
	LIST_REMOVE(s, aentry);
	set->st.mapped -= SLAB_SIZE;
	set->st.slabs--;
	SLOT_UNPOISON(s, SLAB_SIZE);
	munmap(s, SLAB_SIZE);
}

void *slabs_alloc(struct slabs *set, size_t n)
{
	unsigned c;
	size_t size;
	struct slab *s;
	char *p;

	if (n > SLAB_MAX_SIZE)
		return xcalloc(1, n);
	c = class_of(n);
	size = class_size(c);
	if ((s = LIST_FIRST(&set->partial[c])) == NULL) {
		s = slab_map(set, c);
		LIST_INSERT_HEAD(&set->partial[c], s, pentry);
		s->partial = 1;
	}
	if (s->free != NULL) {
		p = s->free;
		SLOT_UNPOISON(p, size);
		memcpy(&s->free, p, sizeof(void *));
	} else {
		p = (char *)s + SLAB_HDR + (size_t)s->bump++ * size;
		SLOT_UNPOISON(p, size);
	}
	if (++s->nused == s->nslots) {
		LIST_REMOVE(s, pentry);
		s->partial = 0;
	}
	set->st.used += size;
	memset(p, 0, n);
	return p;
}

void slabs_free(struct slabs *set, void *p, size_t n)
{
	struct slab *s;
	size_t size;

	if (p == NULL)
		return;
	if (n > SLAB_MAX_SIZE) {
		free(p);
		return;
	}
	s = (struct slab *)((uintptr_t)p & ~(uintptr_t)(SLAB_SIZE - 1));
	size = class_size(s->cls);
	memcpy(p, &s->free, sizeof(void *));
	s->free = p;
	SLOT_POISON(p, size);
	s->nused--;
	set->st.used -= size;
	if (s->evac) { /* nothing is allocated from it until slabs_evacuate_end() */
		if (s->nused == 0) {
			set->nevac--;
			slab_unmap(set, s);
		}
		return;
	}
	if (!s->partial) {
		LIST_INSERT_HEAD(&set->partial[s->cls], s, pentry);
		s->partial = 1;
	}
	/* empty, and not the only one its class has with room */
	if (s->nused == 0 &&
	    (LIST_FIRST(&set->partial[s->cls]) != s || LIST_NEXT(s, pentry) != NULL)) {
		LIST_REMOVE(s, pentry);
		slab_unmap(set, s);
	}
}

void slabs_buf_keep(struct slabs *set, struct buf *dst, const void *data, size_t len)
{
	slabs_buf_free(set, dst);
	dst->data = slabs_alloc(set, len);
	memcpy(dst->data, data, len);
	dst->len = dst->cap = len;
}

void slabs_buf_free(struct slabs *set, struct buf *b)
{
	if (b->data != NULL)
		slabs_free(set, b->data, b->cap);
	memset(b, 0, sizeof(*b));
}

/* the process's set for slabs_keep: made at the first keep, kept for the process's life */
static struct slabs *slabs_kept_set;

void slabs_keep(struct buf *dst, struct buf *scratch)
{
	if (slabs_kept_set == NULL)
		slabs_kept_set = slabs_new();
	slabs_buf_keep(slabs_kept_set, dst, scratch->data, scratch->len);
	scratch->len = 0;
	if (scratch->cap > SLAB_SCRATCH_MAX) /* a huge one: its buffer is not kept */
		buf_clear(scratch);
}

void slabs_unkeep(struct buf *b)
{
	slabs_buf_free(slabs_kept_set, b);
}

void slabs_destroy(struct slabs *set)
{
	if (set == NULL)
		return;
	while (!LIST_EMPTY(&set->all))
		slab_unmap(set, LIST_FIRST(&set->all));
	free(set);
}

void slabs_stats(const struct slabs *set, struct slabs_stats *st)
{
	*st = set->st;
}

static int slab_cmp_used(const void *a, const void *b)
{
	const struct slab *x = *(struct slab *const *)a, *y = *(struct slab *const *)b;

	return x->nused < y->nused ? -1 : x->nused > y->nused;
}

/* a class's last slab with room, kept at its last free, goes back while nothing is in it */
static void slabs_release_empty(struct slabs *set)
{
	struct slab *s;
	unsigned c;

	for (c = 0; c < NCLASS; c++) {
		s = LIST_FIRST(&set->partial[c]);
		if (s != NULL && s->nused == 0 && LIST_NEXT(s, pentry) == NULL) {
			LIST_REMOVE(s, pentry);
			slab_unmap(set, s);
		}
	}
}

void slabs_kept_release(void)
{
	if (slabs_kept_set != NULL)
		slabs_release_empty(slabs_kept_set);
}

size_t slabs_evacuate_begin(struct slabs *set)
{
	struct slab **v = NULL, *s;
	size_t n, i, room, moving;
	unsigned c;

	slabs_release_empty(set);
	for (c = 0; c < NCLASS; c++) {
		n = 0;
		LIST_FOREACH(s, &set->partial[c], pentry)
		n++;
		if (n < 2)
			continue;
		v = xreallocarray(v, n, sizeof(*v));
		room = 0;
		i = 0;
		LIST_FOREACH(s, &set->partial[c], pentry)
		{
			v[i++] = s;
			room += s->nslots - s->nused;
		}
		qsort(v, n, sizeof(*v), slab_cmp_used);
		/* the emptiest first, while what they hold fits in the others' free slots; at most
		 * half full (a fuller one frees little for what its moves cost), never the last */
		moving = 0;
		for (i = 0; i + 1 < n; i++) {
			s = v[i];
			if (s->nused == 0 || s->nused * 2 > s->nslots ||
			    room - (s->nslots - s->nused) < moving + s->nused)
				break;
			room -= s->nslots - s->nused;
			moving += s->nused;
			LIST_REMOVE(s, pentry);
			s->partial = 0;
			s->evac = 1;
			set->nevac++;
		}
	}
	free(v);
	return set->nevac;
}

int slabs_evacuating(const struct slabs *set, const void *p)
{
	(void)set;
	return ((const struct slab *)((uintptr_t)p & ~(uintptr_t)(SLAB_SIZE - 1)))->evac;
}

void slabs_evacuate_end(struct slabs *set)
{
	struct slab *s;

	LIST_FOREACH(s, &set->all, aentry)
	{
		if (!s->evac)
			continue;
		s->evac = 0; /* something stayed (not moved): it takes allocations again */
		LIST_INSERT_HEAD(&set->partial[s->cls], s, pentry);
		s->partial = 1;
	}
	set->nevac = 0;
}

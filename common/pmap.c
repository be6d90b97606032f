/*
 * pmap.c: a small chained hash table from strings to pointers (pmap.h), for the planner's
 * tables (pool states by key, pool keys by uid, outstanding actions by id, queue items) and
 * the VM index.
 */
#include <stdlib.h>
#include <string.h>

#include "pmap.h"
#include "xmalloc.h"

struct pent {
	char *key;
	void *val;
	struct pent *next;
};

struct pmap {
	struct pent **tab;
	size_t size;
	size_t count;
	void (*freefn)(void *);
};

uint64_t pmap_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s != '\0')
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

struct pmap *pmap_new(void (*freefn)(void *))
{
	struct pmap *m = xcalloc(1, sizeof(*m));

	m->size = 64;
	m->tab = xcalloc(m->size, sizeof(*m->tab));
	m->freefn = freefn;
	return m;
}

void pmap_free(struct pmap *m)
{
	struct pent *e, *next;
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->size; i++) {
		for (e = m->tab[i]; e != NULL; e = next) {
			next = e->next;
			if (m->freefn != NULL)
				m->freefn(e->val);
			free(e->key);
			free(e);
		}
	}
	free(m->tab);
	free(m);
}

static struct pent **pmap_slot(struct pmap *m, const char *key)
{
	struct pent **pp = &m->tab[pmap_hash(key) % m->size];

	while (*pp != NULL && strcmp((*pp)->key, key) != 0)
		pp = &(*pp)->next;
	return pp;
}

static void pmap_grow(struct pmap *m)
{
	struct pent **old = m->tab, *e, *next;
	size_t oldsize = m->size, i, h;

	m->size *= 4;
	m->tab = xcalloc(m->size, sizeof(*m->tab));
	for (i = 0; i < oldsize; i++) {
		for (e = old[i]; e != NULL; e = next) {
			next = e->next;
			h = pmap_hash(e->key) % m->size;
			e->next = m->tab[h];
			m->tab[h] = e;
		}
	}
	free(old);
}

void *pmap_get(struct pmap *m, const char *key)
{
	struct pent *e = *pmap_slot(m, key);

	return e != NULL ? e->val : NULL;
}

void pmap_put(struct pmap *m, const char *key, void *val)
{
	struct pent **pp = pmap_slot(m, key), *e;

	if ((e = *pp) != NULL) {
		if (e->val != val && m->freefn != NULL)
			m->freefn(e->val);
		e->val = val;
		return;
	}
	e = xcalloc(1, sizeof(*e));
	e->key = xstrdup(key);
	e->val = val;
	*pp = e;
	if (++m->count > m->size * 2)
		pmap_grow(m);
}

void *pmap_take(struct pmap *m, const char *key)
{
	struct pent **pp = pmap_slot(m, key), *e;
	void *val;

	if ((e = *pp) == NULL)
		return NULL;
	*pp = e->next;
	val = e->val;
	free(e->key);
	free(e);
	m->count--;
	return val;
}

void pmap_del(struct pmap *m, const char *key)
{
	void *val = pmap_take(m, key);

	if (val != NULL && m->freefn != NULL)
		m->freefn(val);
}

size_t pmap_count(const struct pmap *m)
{
	return m->count;
}

void pmap_foreach(struct pmap *m, void (*fn)(const char *, void *, void *), void *arg)
{
	struct pent *e;
	size_t i;

	for (i = 0; i < m->size; i++)
		for (e = m->tab[i]; e != NULL; e = e->next)
			fn(e->key, e->val, arg);
}

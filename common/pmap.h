/*
 * pmap.h: a small chained hash table from strings to pointers; values freed with the free
 * function given (the planner's tables, the VM index).
 */
#ifndef VMPOOL_PMAP_H
#define VMPOOL_PMAP_H

#include <stddef.h>
#include <stdint.h>

/* the 64-bit FNV-1a hash of a string, as the table buckets its keys (k8sevent.c counts
 * distinct messages by it) */
uint64_t pmap_hash(const char *s);

struct pmap;
struct pmap *pmap_new(void (*freefn)(void *));
void pmap_free(struct pmap *);
void *pmap_get(struct pmap *, const char *key);
void pmap_put(struct pmap *, const char *key, void *val); /* replaces (and frees) */
void *pmap_take(struct pmap *, const char *key);          /* removes, does not free */
void pmap_del(struct pmap *, const char *key);            /* removes and frees */
size_t pmap_count(const struct pmap *);
/* fn must not add or remove entries */
void pmap_foreach(struct pmap *, void (*fn)(const char *key, void *val, void *arg), void *arg);

#endif

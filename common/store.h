/*
 * store.h: last-known copies of cluster objects, by kind, namespace and name. Values are
 * json-c objects; the store holds one reference to each.
 */
#ifndef VMPOOL_STORE_H
#define VMPOOL_STORE_H

#include <json-c/json.h>
#include <stddef.h>

struct store;
typedef void (*store_fn)(json_object *obj, void *arg);

struct store *store_new(void);
void store_free(struct store *);
/* borrowed; NULL if absent */
json_object *store_get(struct store *, const char *kind, const char *ns, const char *name);
/* takes over the caller's reference to obj; returns the previous value (caller puts it)
 * or NULL. Key from obj's metadata. */
json_object *store_put(struct store *, const char *kind, json_object *obj);
/* removes and returns the value (caller puts it) or NULL */
json_object *store_take(struct store *, const char *kind, const char *ns, const char *name);
void store_foreach(struct store *, const char *kind, store_fn, void *);
void store_foreach_ns(struct store *, const char *kind, const char *ns, store_fn, void *);
size_t store_count(struct store *, const char *kind);
void store_clear(struct store *);

#endif

/*
 * store.c: last-known copies of cluster objects. Three levels of json-c objects used as
 * hash maps: kind -> namespace -> name -> object. The store holds one reference to each
 * value; an emptied namespace map is dropped so deleted namespaces do not accumulate.
 *
 * The foreach functions walk the maps in place: the callback must not modify the store
 * (no store_put / store_take / store_clear) while it runs. Collect keys first and change
 * the store afterwards.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "obj.h"
#include "store.h"
#include "xmalloc.h"

struct store {
	json_object *kinds; /* kind -> {ns -> {name -> obj}} */
};

struct store *store_new(void)
{
	struct store *s = xcalloc(1, sizeof *s);

	s->kinds = json_object_new_object();
	if (s->kinds == NULL)
		fatalx("store_new: out of memory");
	return s;
}

void store_free(struct store *s)
{
	if (s == NULL)
		return;
	json_object_put(s->kinds);
	free(s);
}

/* the map at key in parent, created if create is set; NULL if absent */
static json_object *store_map(json_object *parent, const char *key, int create)
{
	json_object *m;

	if (json_object_object_get_ex(parent, key, &m))
		return m;
	if (!create)
		return NULL;
	if ((m = json_object_new_object()) == NULL)
		fatalx("store: out of memory");
	json_object_object_add(parent, key, m);
	return m;
}

static json_object *store_ns_map(struct store *s, const char *kind, const char *ns, int create)
{
	json_object *k;

	if ((k = store_map(s->kinds, kind, create)) == NULL)
		return NULL;
	return store_map(k, ns != NULL ? ns : "", create);
}

json_object *store_get(struct store *s, const char *kind, const char *ns, const char *name)
{
	json_object *m, *v;

	if ((m = store_ns_map(s, kind, ns, 0)) == NULL)
		return NULL;
	if (!json_object_object_get_ex(m, name, &v))
		return NULL;
	return v;
}

json_object *store_put(struct store *s, const char *kind, json_object *obj)
{
	const char *name = obj_name(obj);
	json_object *m, *old = NULL;

	if (name == NULL) {
		log_warnx(NULL, "store: %s object without metadata.name dropped", log_escape(kind));
		json_object_put(obj);
		return NULL;
	}
	m = store_ns_map(s, kind, obj_namespace(obj), 1);
	/* json_object_object_add puts the value it replaces: keep it for the caller */
	if (json_object_object_get_ex(m, name, &old))
		json_object_get(old);
	json_object_object_add(m, name, obj);
	return old;
}

json_object *store_take(struct store *s, const char *kind, const char *ns, const char *name)
{
	json_object *k, *m, *v;

	if ((k = store_map(s->kinds, kind, 0)) == NULL)
		return NULL;
	if (ns == NULL)
		ns = "";
	if ((m = store_map(k, ns, 0)) == NULL || !json_object_object_get_ex(m, name, &v))
		return NULL;
	json_object_get(v);
	json_object_object_del(m, name);
	if (json_object_object_length(m) == 0)
		json_object_object_del(k, ns);
	return v;
}

static void store_walk_ns(json_object *m, store_fn fn, void *arg)
{
	json_object_object_foreach(m, name, v)
	{
		(void)name;
		fn(v, arg);
	}
}

void store_foreach(struct store *s, const char *kind, store_fn fn, void *arg)
{
	json_object *k;

	if ((k = store_map(s->kinds, kind, 0)) == NULL)
		return;
	json_object_object_foreach(k, ns, m)
	{
		(void)ns;
		store_walk_ns(m, fn, arg);
	}
}

void store_foreach_ns(struct store *s, const char *kind, const char *ns, store_fn fn, void *arg)
{
	json_object *m;

	if ((m = store_ns_map(s, kind, ns, 0)) != NULL)
		store_walk_ns(m, fn, arg);
}

size_t store_count(struct store *s, const char *kind)
{
	json_object *k;
	size_t n = 0;

	if ((k = store_map(s->kinds, kind, 0)) == NULL)
		return 0;
	json_object_object_foreach(k, ns, m)
	{
		(void)ns;
		n += json_object_object_length(m);
	}
	return n;
}

void store_clear(struct store *s)
{
	json_object_put(s->kinds);
	if ((s->kinds = json_object_new_object()) == NULL)
		fatalx("store_clear: out of memory");
}

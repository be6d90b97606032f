/*
 * shard.c: a shard's watcher keeps only what its pools own (see shard.h). Every decision
 * is a lookup of a pool (namespace, name) in the store, so a pool joining or leaving is the
 * only moment what the filter says can change: a join relists the owned kinds, a leave
 * refilters them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "informer.h"
#include "log.h"
#include "obj.h"
#include "pmap.h"
#include "proto.h"
#include "shard.h"
#include "store.h"
#include "xmalloc.h"

#define SHARD_MEMBER  ((void *)1) /* published */
#define SHARD_JOINING ((void *)2) /* held until the owned kinds are listed again */

struct shard {
	struct store *store;
	struct informer *const *inf;
	size_t n;
	struct informer *pools; /* the pools' informer, among inf */
	shard_pub_fn publish;
	void *arg;
	struct pmap *state; /* "<ns>/<name>" of every pool in the picture: MEMBER or JOINING */
	size_t joining;
	int started;        /* the owned kinds' informers run */
	struct event *kick; /* the relist asked for by joins, once per turn of the loop */
	int kick_pending;
};

static int shard_pool_kept(struct shard *s, const char *ns, const char *name)
{
	return name != NULL && store_get(s->store, KIND_POOL, ns, name) != NULL;
}

/* a pool in the picture is named by "<pool>-<index>": VMs, their VMIs */
static int shard_pool_of(struct shard *s, const char *ns, const char *vm)
{
	const char *dash = vm != NULL ? strrchr(vm, '-') : NULL;
	char pool[256];
	size_t len;

	if (dash == NULL || dash == vm || dash[1] == '\0' ||
	    strspn(dash + 1, "0123456789") != strlen(dash + 1))
		return 0;
	len = (size_t)(dash - vm);
	if (len >= sizeof(pool))
		return 0;
	memcpy(pool, vm, len);
	pool[len] = '\0';
	return shard_pool_kept(s, ns, pool);
}

/* a controller reference of this kind, or NULL */
static const char *shard_controller(json_object *obj, const char *kind)
{
	json_object *ref = obj_controller_ref(obj);
	const char *k = obj_str(ref, "kind");

	return k != NULL && strcmp(k, kind) == 0 ? obj_str(ref, "name") : NULL;
}

/* some owner reference to a pool in the picture (revisions: keep() checked the kind) */
static int shard_pool_owned(struct shard *s, json_object *obj)
{
	json_object *refs = obj_path(obj, "metadata.ownerReferences");
	json_object *ref;
	const char *kind;
	size_t i, n;

	n = refs != NULL && json_object_is_type(refs, json_type_array)
	        ? json_object_array_length(refs)
	        : 0;
	for (i = 0; i < n; i++) {
		ref = json_object_array_get_idx(refs, i);
		kind = obj_str(ref, "kind");
		if (kind != NULL && strcmp(kind, POOL_KIND) == 0 &&
		    shard_pool_kept(s, obj_namespace(obj), obj_str(ref, "name")))
			return 1;
	}
	return 0;
}

int shard_filter(const char *kind, json_object *obj, void *arg)
{
	struct shard *s = arg;
	const char *ns = obj_namespace(obj), *owner;

	if (strcmp(kind, KIND_VM) == 0) {
		owner = shard_controller(obj, POOL_KIND);
		return owner != NULL ? shard_pool_kept(s, ns, owner)
		                     : shard_pool_of(s, ns, obj_name(obj));
	}
	if (strcmp(kind, KIND_VMI) == 0)
		return shard_pool_of(s, ns, obj_name(obj));
	if (strcmp(kind, KIND_REV) == 0)
		return shard_pool_owned(s, obj);
	if (strcmp(kind, KIND_PVC) == 0 || strcmp(kind, KIND_DV) == 0)
		return shard_pool_of(s, ns, shard_controller(obj, "VirtualMachine"));
	return 1;
}

/* ---- joins and leaves ---- */

static void shard_kick(evutil_socket_t fd, short ev, void *arg)
{
	struct shard *s = arg;
	size_t i;

	s->kick_pending = 0;
	log_info(NULL, "shard: %zu pool(s) joined; listing what they own", s->joining);
	for (i = 0; i < s->n; i++)
		if (s->inf[i] != s->pools)
			informer_relist(s->inf[i], "pools joined the shard");
	shard_on_synced(s); /* nothing to list (APIs missing): publish now */
}

static void shard_publish_one(const char *key, void *val, void *arg)
{
	struct shard *s = arg;
	char ns[256];
	const char *slash = strchr(key, '/');
	json_object *pool;

	if (val != SHARD_JOINING || slash == NULL || (size_t)(slash - key) >= sizeof(ns))
		return;
	snprintf(ns, sizeof(ns), "%.*s", (int)(slash - key), key);
	pool = store_get(s->store, KIND_POOL, ns, slash + 1);
	if (pool != NULL)
		s->publish(KIND_POOL, pool, s->arg);
}

static void shard_mark_member(const char *key, void *val, void *arg)
{
	(void)val;
	pmap_put(arg, key, SHARD_MEMBER); /* replaces a value: no entry added or removed */
}

/* the joining pools are published once every owned kind was listed since they joined */
static void shard_publish_joined(struct shard *s)
{
	size_t i;

	if (s->joining == 0 || s->kick_pending)
		return;
	for (i = 0; i < s->n; i++)
		if (informer_relisting(s->inf[i]))
			return;
	log_info(NULL, "shard: %zu pool(s) joined with what they own", s->joining);
	pmap_foreach(s->state, shard_publish_one, s);
	pmap_foreach(s->state, shard_mark_member, s->state);
	s->joining = 0;
}

int shard_on_set(struct shard *s, const char *kind, json_object *obj)
{
	char key[512];
	void *st;

	if (strcmp(kind, KIND_POOL) != 0)
		return 0;
	obj_key(obj, key, sizeof(key));
	st = pmap_get(s->state, key);
	if (st != NULL)
		return st == SHARD_JOINING;
	if (!s->started) { /* the first list: the owned kinds are listed after it */
		pmap_put(s->state, key, SHARD_MEMBER);
		return 0;
	}
	log_info(key, "shard: pool joined; held until what it owns is listed");
	pmap_put(s->state, key, SHARD_JOINING);
	s->joining++;
	if (!s->kick_pending) {
		struct timeval now = {0, 0};

		s->kick_pending = 1;
		evtimer_add(s->kick, &now);
	}
	return 1;
}

int shard_on_del(struct shard *s, const char *kind, json_object *obj)
{
	char key[512];
	void *st;
	size_t i;

	if (strcmp(kind, KIND_POOL) != 0)
		return 0;
	obj_key(obj, key, sizeof(key));
	st = pmap_take(s->state, key);
	if (st == SHARD_JOINING)
		s->joining--;
	log_info(key, "shard: pool left; forgetting what it owns");
	for (i = 0; i < s->n; i++)
		if (s->inf[i] != s->pools)
			informer_refilter(s->inf[i]);
	return st == SHARD_JOINING; /* subscribers never saw it */
}

void shard_on_synced(struct shard *s)
{
	size_t i;

	if (!s->started) {
		if (!informer_synced(s->pools))
			return;
		s->started = 1;
		for (i = 0; i < s->n; i++)
			if (s->inf[i] != s->pools)
				informer_start(s->inf[i]);
		return;
	}
	shard_publish_joined(s);
}

int shard_hidden(struct shard *s, const char *kind, json_object *obj)
{
	char key[512];

	return strcmp(kind, KIND_POOL) == 0 &&
	       pmap_get(s->state, obj_key(obj, key, sizeof(key))) == SHARD_JOINING;
}

/* ---- life cycle ---- */

struct shard *shard_new(struct event_base *base, struct store *store, struct informer *const *inf,
    const char *const *kinds, size_t n, shard_pub_fn publish, void *arg)
{
	struct shard *s = xcalloc(1, sizeof(*s));
	size_t i;

	s->store = store;
	s->inf = inf;
	s->n = n;
	s->publish = publish;
	s->arg = arg;
	s->state = pmap_new(NULL);
	s->kick = evtimer_new(base, shard_kick, s);
	if (s->kick == NULL)
		fatalx("shard: evtimer_new");
	for (i = 0; i < n; i++) {
		if (strcmp(kinds[i], KIND_POOL) == 0)
			s->pools = inf[i];
		else
			informer_set_filter(inf[i], shard_filter, s);
	}
	if (s->pools == NULL)
		fatalx("shard: no informer for pools");
	return s;
}

void shard_start(struct shard *s)
{
	informer_start(s->pools);
}

void shard_free(struct shard *s)
{
	if (s == NULL)
		return;
	event_free(s->kick);
	pmap_free(s->state);
	free(s);
}

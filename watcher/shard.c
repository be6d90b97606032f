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

/* a pool of the picture: held from subscribers while what it owns is listed again (it
 * joined, or a claim on it was given up); published is the copy they were last sent, last
 * the copy last seen */
struct shard_pool {
	int held;
	json_object *published;
	json_object *last;
};

struct shard {
	struct store *store;
	struct informer *const *inf;
	size_t n;
	struct informer *pools; /* the pools' informer, among inf */
	shard_pub_fn publish;
	void *arg;
	struct pmap *pools_in; /* "<ns>/<name>" -> struct shard_pool, every pool in the picture */
	size_t held;
	int started;        /* the owned kinds' informers run */
	struct event *kick; /* the relist asked for by joins, once per turn of the loop */
	int kick_pending;
};

static int shard_pool_kept(struct shard *s, const char *ns, const char *name)
{
	return name != NULL && store_meta(s->store, KIND_POOL, ns, name) != NULL;
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
	log_info(
	    NULL, "shard: %zu pool(s) joined or changed hands; listing what they own", s->held);
	for (i = 0; i < s->n; i++)
		if (s->inf[i] != s->pools)
			informer_relist(s->inf[i], "pools joined the shard");
	shard_on_synced(s); /* nothing to list (APIs missing): publish now */
}

static void shard_pool_free(void *p)
{
	struct shard_pool *sp = p;

	if (sp == NULL)
		return;
	json_object_put(sp->published);
	json_object_put(sp->last);
	free(sp);
}

static void shard_publish_one(const char *key, void *val, void *arg)
{
	struct shard *s = arg;
	struct shard_pool *sp = val;
	char ns[256];
	const char *slash = strchr(key, '/');
	json_object *pool;

	if (!sp->held || slash == NULL || (size_t)(slash - key) >= sizeof(ns))
		return;
	snprintf(ns, sizeof(ns), "%.*s", (int)(slash - key), key);
	pool = store_get(s->store, KIND_POOL, ns, slash + 1);
	sp->held = 0;
	if (pool == NULL)
		return;
	json_object_put(sp->published);
	sp->published = json_object_get(pool);
	s->publish(KIND_POOL, pool, s->arg);
}

/* the held pools are published once every owned kind was listed since they were held */
static void shard_publish_held(struct shard *s)
{
	size_t i;

	if (s->held == 0 || s->kick_pending)
		return;
	for (i = 0; i < s->n; i++)
		if (informer_relisting(s->inf[i]))
			return;
	log_info(NULL, "shard: %zu pool(s) published with what they own", s->held);
	pmap_foreach(s->pools_in, shard_publish_one, s);
	s->held = 0;
}

static const char *shard_claim(json_object *pool)
{
	const char *c = obj_annotation(pool, SHARD_CLAIM);

	return c != NULL ? c : "";
}

/* holds a pool until what it owns is listed again (from now: a held pool is listed once
 * more); one relist per turn of the loop */
static void shard_hold(struct shard *s, struct shard_pool *sp)
{
	struct timeval now = {0, 0};

	if (!sp->held)
		s->held++;
	sp->held = 1;
	if (!s->kick_pending) {
		s->kick_pending = 1;
		evtimer_add(s->kick, &now);
	}
}

/* a claim was given up or taken over: the claim seen last was set and is no longer */
static int shard_claim_moved(struct shard_pool *sp, json_object *obj)
{
	const char *was = sp->last != NULL ? shard_claim(sp->last) : "";

	return *was != '\0' && strcmp(was, shard_claim(obj)) != 0;
}

/*
 * A pool is held when it joins the shard, and when a claim on it is given up (the shard
 * that acted on it let it go): the planner then decides from what it owns as listed after
 * that, which includes every write the other shard made before it let go.
 */
int shard_on_set(struct shard *s, const char *kind, json_object *obj)
{
	struct shard_pool *sp;
	char key[512];
	int moved;

	if (strcmp(kind, KIND_POOL) != 0)
		return 0;
	obj_key(obj, key, sizeof(key));
	if ((sp = pmap_get(s->pools_in, key)) == NULL) {
		sp = xcalloc(1, sizeof(*sp));
		sp->last = json_object_get(obj);
		pmap_put(s->pools_in, key, sp);
		if (!s->started) { /* the first list: the owned kinds are listed after it */
			sp->published = json_object_get(obj);
			return 0;
		}
		log_info(key, "shard: pool joined; held until what it owns is listed");
		shard_hold(s, sp);
		return 1;
	}
	moved = shard_claim_moved(sp, obj);
	if (moved)
		log_info(key, "shard: claim %s -> %s; held until what it owns is listed again",
		    log_escape(shard_claim(sp->last)), log_escape(shard_claim(obj)));
	json_object_put(sp->last);
	sp->last = json_object_get(obj);
	if (moved || sp->held) {
		if (moved)
			shard_hold(s, sp);
		return 1;
	}
	json_object_put(sp->published);
	sp->published = json_object_get(obj);
	return 0;
}

int shard_on_del(struct shard *s, const char *kind, json_object *obj)
{
	struct shard_pool *sp;
	char key[512];
	int unseen;
	size_t i;

	if (strcmp(kind, KIND_POOL) != 0)
		return 0;
	obj_key(obj, key, sizeof(key));
	sp = pmap_take(s->pools_in, key);
	if (sp != NULL && sp->held)
		s->held--;
	unseen = sp == NULL || sp->published == NULL;
	shard_pool_free(sp);
	log_info(key, "shard: pool left; forgetting what it owns");
	for (i = 0; i < s->n; i++)
		if (s->inf[i] != s->pools)
			informer_refilter(s->inf[i]);
	return unseen; /* subscribers never saw it */
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
	shard_publish_held(s);
}

json_object *shard_published(struct shard *s, const char *ns, const char *name)
{
	struct shard_pool *sp;
	char key[512];

	if (*ns == '\0') /* keyed as obj_key() names it */
		snprintf(key, sizeof(key), "%s", name);
	else
		snprintf(key, sizeof(key), "%s/%s", ns, name);
	sp = pmap_get(s->pools_in, key);
	return sp != NULL ? sp->published : NULL;
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
	s->pools_in = pmap_new(shard_pool_free);
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
	pmap_free(s->pools_in);
	free(s);
}

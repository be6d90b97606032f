/*
 * claim.c: a shard's claim on its pools (--pool-selector; DESIGN.md "High availability",
 * shards). The pool annotation SHARD_CLAIM names the Lease of the one shard that may act
 * on it. This planner plans a pool only while the claim names its own shard; an unclaimed
 * pool is claimed first (a JSON patch that holds only on the resourceVersion seen), one
 * claimed by another shard waits until that shard lets it go. A pool that leaves the shard
 * is let go (its claim removed, if it is still ours) once no action sent for it is left
 * without RESULT, so the next shard plans it from a picture that holds every write of
 * ours (its watcher lists again what the pool owns when the claim goes).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "link.h"
#include "log.h"
#include "obj.h"
#include "planner.h"
#include "pmap.h"
#include "proto.h"
#include "timeutil.h"
#include "xmalloc.h"

enum claim_state {
	CLAIM_NONE,    /* not ours */
	CLAIM_TAKING,  /* the claim patch is out */
	CLAIM_UNSURE,  /* it may be ours (a claim was answered or lost): the picture tells */
	CLAIM_MINE,    /* the picture shows our claim */
	CLAIM_LEAVING, /* the pool left the shard: let go once its actions are answered */
	CLAIM_LETTING, /* the release patch is out */
};

/* SHARD_CLAIM as a JSON pointer */
#define CLAIM_PATH "/metadata/annotations/vmpoold.io~1claimed-by"

struct claim {
	enum claim_state state;
	uint64_t id; /* the patch out, or 0 */
	char *uid, *api;
};

/* another shard's Lease as this planner's reads (get_lease) showed it */
struct lease_seen {
	uint64_t id;  /* the read out, or 0 */
	double asked; /* when it was sent */
	int read;     /* a read was answered */
	int absent;   /* ... NotFound */
	char *rv, *holder;
	long long duration;
	double changed; /* when rv was first seen (monotonic) */
};

struct claims {
	char *name; /* this shard's Lease name */
	char *self; /* the claim written: "<ns>/<lease>/<identity>" once leading, else the name */
	struct pmap *pools;  /* pool key -> struct claim */
	struct pmap *waited; /* pool key -> the other shard's claim, as last logged */
	struct pmap *leases; /* "<ns>/<name>" -> struct lease_seen */
};

#define CLAIM_RECHECK 2.0 /* seconds between reads of a claiming shard's Lease */

static void lease_seen_free(void *v)
{
	struct lease_seen *ls = v;

	if (ls == NULL)
		return;
	free(ls->rv);
	free(ls->holder);
	free(ls);
}

static void claim_free(void *v)
{
	struct claim *c = v;

	if (c == NULL)
		return;
	free(c->uid);
	free(c->api);
	free(c);
}

void claim_init(struct planner *p, const char *name)
{
	struct claims *cs;

	if (name == NULL)
		return;
	cs = xcalloc(1, sizeof(*cs));
	cs->name = xstrdup(name);
	cs->self = xstrdup(name);
	cs->pools = pmap_new(claim_free);
	cs->waited = pmap_new(free);
	cs->leases = pmap_new(lease_seen_free);
	p->claims = cs;
	log_info(NULL, "shard: acting only on pools claimed for %s (annotation %s)",
	    log_escape(name), SHARD_CLAIM);
}

void claim_clear(struct planner *p)
{
	if (p->claims == NULL)
		return;
	pmap_free(p->claims->pools);
	pmap_free(p->claims->waited);
	pmap_free(p->claims->leases);
	free(p->claims->name);
	free(p->claims->self);
	free(p->claims);
	p->claims = NULL;
}

static const char *claim_of(json_object *pool)
{
	const char *c = obj_annotation(pool, SHARD_CLAIM);

	return c != NULL ? c : "";
}

/* sends a patch_pool ACTION for the pool "<ns>/<name>" key; its id, or 0 */
static uint64_t claim_send(struct planner *p, const char *key, struct claim *c, json_object *patch)
{
	const char *slash = strchr(key, '/');
	struct msg_action a = {.op = MSG_OP_PATCH_POOL,
	    .uid = c->uid,
	    .pool_uid = c->uid,
	    .api_version = c->api,
	    .patch = patch};
	json_object *b;
	char ns[256];
	uint64_t id = 0;

	if (slash != NULL) {
		id = ++p->next_id;
		snprintf(ns, sizeof ns, "%.*s", (int)(slash - key), key);
		a.id = (long long)id;
		a.ns = ns;
		a.name = a.pool_name = slash + 1;
		b = msg_action_pack(&a);
		if (link_send(p->act, MSG_ACTION, b) == -1)
			id = 0;
		json_object_put(b);
	}
	json_object_put(patch);
	return id;
}

/* the claim, made on the pool as this planner sees it (its resourceVersion) */
static void claim_take(struct planner *p, const char *key, json_object *pool, struct claim *c)
{
	json_object *patch = json_object_new_array(), *ann;
	const char *rv = obj_str(pool, "metadata.resourceVersion");

	if (rv == NULL)
		rv = ""; /* the test fails: nothing is claimed */

	json_object_array_add(
	    patch, obj_patch_op("test", "/metadata/resourceVersion", json_object_new_string(rv)));
	ann = obj_path(pool, "metadata.annotations");
	if (ann == NULL || !json_object_is_type(ann, json_type_object)) {
		ann = json_object_new_object();
		json_object_object_add(ann, SHARD_CLAIM, json_object_new_string(p->claims->self));
		json_object_array_add(patch, obj_patch_op("add", "/metadata/annotations", ann));
	} else
		json_object_array_add(patch,
		    obj_patch_op("add", CLAIM_PATH, json_object_new_string(p->claims->self)));
	c->state = CLAIM_TAKING;
	c->id = claim_send(p, key, c, patch);
	log_infos(
	    "Claiming the pool for this shard", LOG_POOL(key), LOG_STR("claim", p->claims->self));
}

/* our claim goes, if it is still ours */
static void claim_let_go(struct planner *p, const char *key, struct claim *c)
{
	json_object *patch = json_object_new_array();

	json_object_array_add(
	    patch, obj_patch_op("test", CLAIM_PATH, json_object_new_string(p->claims->self)));
	json_object_array_add(patch, obj_patch_op("remove", CLAIM_PATH, NULL));
	c->state = CLAIM_LETTING;
	c->id = claim_send(p, key, c, patch);
	log_infos("Letting the pool go: its actions are answered", LOG_POOL(key),
	    LOG_STR("claim", p->claims->self));
}

/* "<ns>/<lease>/<identity>" (an elected shard) or "<lease>": the parts, "" when absent */
static void claim_parts(const char *claim, char *ns, char *lease, char *id, size_t len)
{
	const char *a = strchr(claim, '/'), *b = a != NULL ? strchr(a + 1, '/') : NULL;

	ns[0] = id[0] = '\0';
	if (b == NULL) {
		snprintf(lease, len, "%s", claim);
		return;
	}
	snprintf(ns, len, "%.*s", (int)(a - claim), claim);
	snprintf(lease, len, "%.*s", (int)(b - a - 1), a + 1);
	snprintf(id, len, "%s", b + 1);
}

static int claim_can_send(struct planner *p)
{
	return link_is_up(p->act) && p->act_leading;
}

/* asks the actuator to read the Lease ns/name */
static void claim_read_lease(
    struct planner *p, struct lease_seen *ls, const char *ns, const char *name)
{
	struct msg_action a = {.op = MSG_OP_GET_LEASE, .ns = ns, .name = name};
	json_object *b;

	ls->id = ++p->next_id;
	a.id = (long long)ls->id;
	b = msg_action_pack(&a);
	if (link_send(p->act, MSG_ACTION, b) == -1)
		ls->id = 0;
	json_object_put(b);
}

/*
 * 0 when the shard that made a claim can no longer act: its Lease is absent or released,
 * held by another identity (that term is over: a leader stops writing before another can
 * take its Lease), or unchanged for its duration as this planner observed it (expired, as
 * client-go judges it). 1 otherwise, and while nothing is known yet (a read is asked for,
 * at most every CLAIM_RECHECK seconds per Lease).
 */
static int claim_live(struct planner *p, const char *ns, const char *lease, const char *id)
{
	struct lease_seen *ls;
	char key[512];
	double now = now_mono();

	if (*ns == '\0')
		return 1; /* a shard without leader election: only it lets go */
	snprintf(key, sizeof(key), "%s/%s", ns, lease);
	if ((ls = pmap_get(p->claims->leases, key)) == NULL) {
		ls = xcalloc(1, sizeof(*ls));
		ls->asked = -CLAIM_RECHECK;
		pmap_put(p->claims->leases, key, ls);
	}
	if (ls->id == 0 && now - ls->asked >= CLAIM_RECHECK && claim_can_send(p)) {
		ls->asked = now;
		claim_read_lease(p, ls, ns, lease);
	}
	if (!ls->read)
		return 1;
	if (ls->absent || ls->holder == NULL || *ls->holder == '\0')
		return 0;
	if (*id != '\0' && strcmp(ls->holder, id) != 0)
		return 0;
	return !(ls->duration > 0 && now - ls->changed >= (double)ls->duration);
}

/* the pool is claimed by another shard: 1 when that shard can no longer act on it */
static int claim_void(struct planner *p, const char *key, const char *has)
{
	char ns[256], lease[256], id[256], mine[256], mns[256], mid[256];
	const char *was;

	claim_parts(has, ns, lease, id, sizeof(ns));
	claim_parts(p->claims->self, mns, mine, mid, sizeof(mns));
	/* an older claim of this shard: that term is over, since this planner's actuator leads */
	if (strcmp(lease, mine) == 0)
		return 1;
	if (!claim_live(p, ns, lease, id)) {
		log_infos("Pool claimed by a shard that can no longer act: taking it over",
		    LOG_POOL(key), LOG_STR("claim", has));
		return 1;
	}
	if ((was = pmap_get(p->claims->waited, key)) == NULL || strcmp(was, has) != 0) {
		/* a shard gone for good without a Lease (no leader election) never lets go: the
		 * annotation is then removed by hand */
		log_infos("Pool claimed by another shard: waiting for it to let go", LOG_POOL(key),
		    LOG_STR("claim", has), LOG_STR("annotation", SHARD_CLAIM));
		pmap_put(p->claims->waited, key, xstrdup(has));
	}
	queue_after(p->q, key, CLAIM_RECHECK);
	return 0;
}

int claim_gate(struct planner *p, const char *key, json_object *pool)
{
	struct claims *cs = p->claims;
	const char *has = claim_of(pool);
	struct claim *c;

	if (cs == NULL || p->actions_stdout)
		return 1;
	if ((c = pmap_get(cs->pools, key)) == NULL) {
		c = xcalloc(1, sizeof(*c));
		c->state = CLAIM_NONE;
		pmap_put(cs->pools, key, c);
	}
	free(c->uid);
	c->uid = xstrdup(obj_uid(pool) != NULL ? obj_uid(pool) : "");
	free(c->api);
	c->api = xstrdup(obj_pool_api_version(pool));
	if (strcmp(has, cs->self) == 0) {
		c->state = CLAIM_MINE; /* a patch still out is matched by its id */
		pmap_del(cs->waited, key);
		return 1;
	}
	if (!claim_can_send(p))
		return 0;
	if (*has != '\0' && !claim_void(p, key, has)) {
		if (c->id == 0)
			pmap_del(cs->pools, key);
		else
			c->state = CLAIM_NONE;
		return 0;
	}
	if (c->id == 0 && c->state != CLAIM_LEAVING)
		claim_take(p, key, pool, c);
	return 0;
}

struct claim_busy {
	const char *key;
	int busy;
};

static void claim_busy_one(const char *id, void *val, void *arg)
{
	struct claim_busy *b = arg;

	b->busy |= strcmp(planrun_outstanding_key(val), b->key) == 0;
}

static void claim_settle_one(const char *key, void *val, void *arg)
{
	struct planner *p = arg;
	struct claim *c = val;
	struct claim_busy b = {key, 0};

	if (c->state != CLAIM_LEAVING || c->id != 0)
		return;
	pmap_foreach(p->out, claim_busy_one, &b);
	if (!b.busy)
		claim_let_go(p, key, c);
}

void claim_settle(struct planner *p)
{
	if (p->claims != NULL && claim_can_send(p))
		pmap_foreach(p->claims->pools, claim_settle_one, p);
}

void claim_forget(struct planner *p, const char *key)
{
	struct claim *c;

	if (p->claims == NULL)
		return;
	pmap_del(p->claims->waited, key);
	if ((c = pmap_get(p->claims->pools, key)) == NULL)
		return;
	if (c->state == CLAIM_NONE && c->id == 0)
		pmap_del(p->claims->pools, key);
	else if (c->state != CLAIM_LETTING)
		c->state = CLAIM_LEAVING; /* ours, or it may be: the release tests that it is */
	claim_settle(p);
}

struct claim_find {
	uint64_t id;
	const char *key;
	struct claim *c;
};

static void claim_find_one(const char *key, void *val, void *arg)
{
	struct claim_find *f = arg;
	struct claim *c = val;

	if (c->id == f->id) {
		f->key = key;
		f->c = c;
	}
}

struct lease_find {
	uint64_t id;
	struct lease_seen *ls;
};

static void lease_find_one(const char *key, void *val, void *arg)
{
	struct lease_find *f = arg;

	if (((struct lease_seen *)val)->id == f->id)
		f->ls = val;
}

/* a get_lease answered: 1 if it was one */
static int claim_lease_result(struct planner *p, const struct msg_result *r, uint64_t id)
{
	struct lease_find f = {id, NULL};
	struct lease_seen *ls;
	const char *rv = r->rv, *holder = r->holder;

	pmap_foreach(p->claims->leases, lease_find_one, &f);
	if ((ls = f.ls) == NULL)
		return 0;
	ls->id = 0;
	if (!r->ok)
		return 1; /* unknown: still live; read again later */
	ls->read = 1;
	ls->absent = r->status == 404;
	if (rv == NULL || ls->rv == NULL || strcmp(rv, ls->rv) != 0)
		ls->changed = now_mono();
	free(ls->rv);
	ls->rv = rv != NULL ? xstrdup(rv) : NULL;
	free(ls->holder);
	ls->holder = xstrdup(holder != NULL ? holder : "");
	ls->duration = r->duration;
	return 1;
}

int claim_result(struct planner *p, const struct msg_result *r, uint64_t id)
{
	struct claim_find f = {id, NULL, NULL};
	long long status = r->status;
	int ok = r->ok;
	char key[512];

	if (p->claims == NULL || id == 0)
		return 0;
	if (claim_lease_result(p, r, id))
		return 1;
	pmap_foreach(p->claims->pools, claim_find_one, &f);
	if (f.c == NULL)
		return 0;
	snprintf(key, sizeof(key), "%s", f.key);
	f.c->id = 0;
	if (!ok && f.c->state == CLAIM_TAKING && status == 422)
		log_infos("Claim not made: the pool changed since it was seen; trying again",
		    LOG_POOL(key)); /* its test on the resourceVersion failed */
	else if (!ok)
		log_warns("Claim patch failed", LOG_POOL(key), LOG_INT("status", status),
		    LOG_STR("reason", r->message));
	if (f.c->state == CLAIM_TAKING) {
		f.c->state = ok ? CLAIM_UNSURE : CLAIM_NONE;
		queue_retry(p->q, key); /* the picture decides: ours now, or try again */
	} else if (f.c->state == CLAIM_LETTING) {
		/* done, or no longer ours (the test failed), or the pool is gone */
		if (ok || (status >= 400 && status < 500 && status != 429)) {
			pmap_del(p->claims->pools, key);
			queue_retry(p->q, key); /* back in the picture meanwhile: claimed again */
		} else
			f.c->state = CLAIM_LEAVING; /* again at the next tick */
	} else if (f.c->state == CLAIM_LEAVING)
		claim_settle(p); /* a claim answered after the pool left */
	return 1;
}

/* the link dropped or the term ended: no RESULT will come for patches out */
static void claim_reset_one(const char *key, void *val, void *arg)
{
	struct claim *c = val;

	c->id = 0;
	if (c->state == CLAIM_TAKING)
		c->state = CLAIM_UNSURE;
	else if (c->state == CLAIM_LETTING)
		c->state = CLAIM_LEAVING;
}

static void claim_reset_lease(const char *key, void *val, void *arg)
{
	((struct lease_seen *)val)->id = 0;
}

void claim_reset(struct planner *p)
{
	if (p->claims == NULL)
		return;
	pmap_foreach(p->claims->pools, claim_reset_one, NULL);
	pmap_foreach(p->claims->leases, claim_reset_lease, NULL);
}

void claim_leader(struct planner *p, const struct msg_leader *ld)
{
	const char *lease = ld->lease, *holder = ld->holder;

	if (p->claims == NULL || !ld->leading || lease == NULL || *holder == '\0')
		return;
	free(p->claims->self);
	xasprintf(&p->claims->self, "%s/%s", lease, holder);
}

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

struct claims {
	char *name;          /* this shard's Lease */
	struct pmap *pools;  /* pool key -> struct claim */
	struct pmap *waited; /* pool key -> the other shard's claim, as last logged */
};

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
	cs->pools = pmap_new(claim_free);
	cs->waited = pmap_new(free);
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
	free(p->claims->name);
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
	json_object *b = json_object_new_object(), *pool = json_object_new_object();
	const char *slash = strchr(key, '/');
	uint64_t id = 0;

	if (slash != NULL) {
		id = ++p->next_id;
		json_object_object_add(b, "id", json_object_new_int64((int64_t)id));
		json_object_object_add(b, "op", json_object_new_string(ACT_PATCH_POOL));
		json_object_object_add(
		    b, "namespace", json_object_new_string_len(key, (int)(slash - key)));
		json_object_object_add(b, "name", json_object_new_string(slash + 1));
		json_object_object_add(b, "uid", json_object_new_string(c->uid));
		json_object_object_add(pool, "name", json_object_new_string(slash + 1));
		json_object_object_add(pool, "uid", json_object_new_string(c->uid));
		json_object_object_add(b, "pool", pool);
		json_object_object_add(b, "api_version", json_object_new_string(c->api));
		json_object_object_add(b, "patch", json_object_get(patch));
		if (link_send(p->act, MSG_ACTION, b) == -1)
			id = 0;
	} else
		json_object_put(pool);
	json_object_put(b);
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
		json_object_object_add(ann, SHARD_CLAIM, json_object_new_string(p->claims->name));
		json_object_array_add(patch, obj_patch_op("add", "/metadata/annotations", ann));
	} else
		json_object_array_add(patch,
		    obj_patch_op("add", CLAIM_PATH, json_object_new_string(p->claims->name)));
	c->state = CLAIM_TAKING;
	c->id = claim_send(p, key, c, patch);
	log_infos(
	    "Claiming the pool for this shard", LOG_POOL(key), LOG_STR("shard", p->claims->name));
}

/* our claim goes, if it is still ours */
static void claim_let_go(struct planner *p, const char *key, struct claim *c)
{
	json_object *patch = json_object_new_array();

	json_object_array_add(
	    patch, obj_patch_op("test", CLAIM_PATH, json_object_new_string(p->claims->name)));
	json_object_array_add(patch, obj_patch_op("remove", CLAIM_PATH, NULL));
	c->state = CLAIM_LETTING;
	c->id = claim_send(p, key, c, patch);
	log_infos("Letting the pool go: its actions are answered", LOG_POOL(key),
	    LOG_STR("shard", p->claims->name));
}

int claim_gate(struct planner *p, const char *key, json_object *pool)
{
	struct claims *cs = p->claims;
	const char *has = claim_of(pool), *was;
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
	if (strcmp(has, cs->name) == 0) {
		c->state = CLAIM_MINE; /* a patch still out is matched by its id */
		pmap_del(cs->waited, key);
		return 1;
	}
	if (*has != '\0') {
		if ((was = pmap_get(cs->waited, key)) == NULL || strcmp(was, has) != 0) {
			/* a shard gone for good never lets go: the annotation is then removed
			 * by hand */
			log_infos("Pool claimed by another shard: waiting for it to let go",
			    LOG_POOL(key), LOG_STR("claim", has),
			    LOG_STR("annotation", SHARD_CLAIM));
			pmap_put(cs->waited, key, xstrdup(has));
		}
		if (c->id == 0)
			pmap_del(cs->pools, key);
		else
			c->state = CLAIM_NONE;
		return 0;
	}
	if (c->id == 0 && c->state != CLAIM_LEAVING && link_is_up(p->act) && p->act_leading)
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
	if (p->claims != NULL && link_is_up(p->act) && p->act_leading)
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

int claim_result(struct planner *p, json_object *body, uint64_t id)
{
	struct claim_find f = {id, NULL, NULL};
	long long status = 0;
	int ok = obj_bool(body, "ok");
	char key[512];

	if (p->claims == NULL || id == 0)
		return 0;
	pmap_foreach(p->claims->pools, claim_find_one, &f);
	if (f.c == NULL)
		return 0;
	snprintf(key, sizeof(key), "%s", f.key);
	obj_int(body, "status", &status);
	f.c->id = 0;
	if (!ok && f.c->state == CLAIM_TAKING && status == 422)
		log_infos("Claim not made: the pool changed since it was seen; trying again",
		    LOG_POOL(key)); /* its test on the resourceVersion failed */
	else if (!ok)
		log_warns("Claim patch failed", LOG_POOL(key), LOG_INT("status", status),
		    LOG_STR("reason", obj_str(body, "message")));
	if (f.c->state == CLAIM_TAKING) {
		f.c->state = ok ? CLAIM_UNSURE : CLAIM_NONE;
		queue_retry(p->q, key); /* the picture decides: ours now, or try again */
	} else if (f.c->state == CLAIM_LETTING) {
		/* done, or no longer ours (the test failed), or the pool is gone */
		if (ok || (status >= 400 && status < 500 && status != 429))
			pmap_del(p->claims->pools, key);
		else
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

void claim_reset(struct planner *p)
{
	if (p->claims != NULL)
		pmap_foreach(p->claims->pools, claim_reset_one, NULL);
}

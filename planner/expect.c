/*
 * expect.c: expectations cover the lag between an action and the watcher's picture of its
 * effect. Every action is recorded from the start (creates included, SPEC 16 Q8): a create
 * until a VM of that name is in the cache, a delete until the VM is gone or terminating, a
 * patch until its RESULT arrived and the cache shows another resourceVersion. A failed
 * RESULT or the TTL ends an expectation at once. An unknown outcome (the answer was lost)
 * is not a failure: a create or delete then stays expected until the cache shows it or
 * the TTL ends it, so no pass counts that VM twice or picks another victim for it; a
 * patch is dropped (planning it again is harmless). Pure: the clock is passed in.
 */
#include <stdlib.h>
#include <string.h>

#include "obj.h"
#include "planner.h"
#include "xmalloc.h"

struct expectation {
	uint64_t id;
	char *pool; /* "<ns>/<name>" */
	enum expect_kind kind;
	char *key;        /* VM name (create) or uid */
	char *op;         /* patches: the action's op */
	char *rv;         /* patches: resourceVersion when planned */
	char *result_rv;  /* patches: resourceVersion the API answered with, if it did */
	int result_gone;  /* patches: the write let the API remove the object (last finalizer) */
	int result;       /* RESULT ok arrived */
	int needs_result; /* deletes: observed only with the RESULT (the actuator does more) */
	double t;         /* when recorded */
};

struct expect {
	struct expectation *v;
	size_t n, cap;
	double ttl;
};

struct expect *expect_new(double ttl)
{
	struct expect *e = xcalloc(1, sizeof(*e));

	e->ttl = ttl;
	return e;
}

static void expect_clear_one(struct expectation *x)
{
	free(x->pool);
	free(x->key);
	free(x->op);
	free(x->rv);
	free(x->result_rv);
}

void expect_free(struct expect *e)
{
	size_t i;

	if (e == NULL)
		return;
	for (i = 0; i < e->n; i++)
		expect_clear_one(&e->v[i]);
	free(e->v);
	free(e);
}

static char *expect_dup(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

void expect_add(struct expect *e, uint64_t id, const char *pool_key, enum expect_kind kind,
    const char *key, const char *op, const char *rv, double now)
{
	struct expectation *x;

	if (kind == EXPECT_NONE || key == NULL)
		return;
	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 16;
		e->v = xreallocarray(e->v, e->cap, sizeof(*e->v));
	}
	x = &e->v[e->n++];
	memset(x, 0, sizeof(*x));
	x->id = id;
	x->kind = kind;
	x->t = now;
	x->pool = xstrdup(pool_key != NULL ? pool_key : "");
	x->key = expect_dup(key);
	x->op = expect_dup(op);
	x->rv = expect_dup(rv);
}

static void expect_remove_at(struct expect *e, size_t i)
{
	expect_clear_one(&e->v[i]);
	e->v[i] = e->v[--e->n];
}

int expect_result(struct expect *e, uint64_t id, int ok)
{
	return expect_result_rv(e, id, ok, NULL, 0);
}

int expect_result_rv(struct expect *e, uint64_t id, int ok, const char *rv, int gone)
{
	size_t i;

	for (i = 0; i < e->n; i++) {
		if (e->v[i].id != id)
			continue;
		if (ok) {
			e->v[i].result = 1;
			free(e->v[i].result_rv);
			e->v[i].result_rv = expect_dup(rv);
			e->v[i].result_gone = gone;
		} else
			expect_remove_at(e, i);
		return 1;
	}
	return 0;
}

void expect_needs_result(struct expect *e, uint64_t id)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		if (e->v[i].id == id && e->v[i].kind == EXPECT_DELETE)
			e->v[i].needs_result = 1;
}

void expect_unknown(struct expect *e, uint64_t id)
{
	size_t i;

	for (i = 0; i < e->n; i++) {
		if (e->v[i].id != id)
			continue;
		e->v[i].needs_result = 0; /* no RESULT will tell more: the watcher decides */
		if (e->v[i].kind == EXPECT_PATCH)
			expect_remove_at(e, i);
		return;
	}
}

size_t expect_link_lost(struct expect *e)
{
	size_t i = 0, n = 0;

	while (i < e->n) {
		if (!e->v[i].result && e->v[i].kind == EXPECT_PATCH) {
			expect_remove_at(e, i);
			n++;
		} else {
			e->v[i].needs_result = 0; /* no RESULT will come: the watcher decides */
			i++;
		}
	}
	return n;
}

void expect_drop_pool(struct expect *e, const char *pool_key)
{
	size_t i = 0;

	while (i < e->n) {
		if (strcmp(e->v[i].pool, pool_key) == 0)
			expect_remove_at(e, i);
		else
			i++;
	}
}

/* the array behind expect_settle(): a scan of the namespace's VMs */
struct expect_scan {
	json_object **vms;
	size_t n;
};

static json_object *expect_scan_name(const char *name, void *arg)
{
	struct expect_scan *sc = arg;
	const char *s;
	size_t i;

	for (i = 0; i < sc->n; i++)
		if ((s = obj_name(sc->vms[i])) != NULL && strcmp(s, name) == 0)
			return sc->vms[i];
	return NULL;
}

static json_object *expect_scan_uid(const char *uid, void *arg)
{
	struct expect_scan *sc = arg;
	const char *s;
	size_t i;

	for (i = 0; i < sc->n; i++)
		if ((s = obj_uid(sc->vms[i])) != NULL && strcmp(s, uid) == 0)
			return sc->vms[i];
	return NULL;
}

/* the pool or a VM of its namespace with that uid */
static json_object *expect_find_uid(json_object *pool, const struct expect_view *v, const char *uid)
{
	const char *s;

	if (pool != NULL && (s = obj_uid(pool)) != NULL && strcmp(s, uid) == 0)
		return pool;
	return v->by_uid(uid, v->arg);
}

/* 1 if resourceVersion have is want or later. resourceVersions are opaque to clients, but
 * every API server on etcd uses increasing integers: compare them as such when both are */
static int expect_rv_reached(const char *have, const char *want)
{
	size_t lh = strspn(have, "0123456789"), lw = strspn(want, "0123456789");

	if (strcmp(have, want) == 0)
		return 1;
	if (lh == 0 || lw == 0 || have[lh] != '\0' || want[lw] != '\0')
		return 0;
	return lh != lw ? lh > lw : strcmp(have, want) > 0;
}

/* 1 if the cache shows what x was waiting for */
static int expect_done(const struct expectation *x, json_object *pool, const struct expect_view *v)
{
	json_object *o;
	const char *rv;

	switch (x->kind) {
	case EXPECT_CREATE:
		return v->by_name(x->key, v->arg) != NULL;
	case EXPECT_CREATE_REV:
		return v->rev_by_name == NULL || v->rev_by_name(x->key, v->arg) != NULL;
	case EXPECT_DELETE:
		o = v->by_uid(x->key, v->arg);
		/* with unfinalize: once the RESULT says the VM went (the patch took the last
		 * finalizer), only its absence settles it; else terminating does */
		return o == NULL ||
		       (obj_terminating(o) && (!x->needs_result || (x->result && !x->result_gone)));
	case EXPECT_PATCH:
		if ((o = expect_find_uid(pool, v, x->key)) == NULL)
			return 1;
		rv = obj_str(o, "metadata.resourceVersion");
		if (!x->result || x->result_gone) /* gone: settled above when it is */
			return 0;
		if (x->result_rv != NULL) /* the cache shows our write, or a later one */
			return rv != NULL && expect_rv_reached(rv, x->result_rv);
		return rv == NULL || x->rv == NULL || strcmp(rv, x->rv) != 0;
	default:
		return 1;
	}
}

void expect_settle_view(struct expect *e, const char *pool_key, json_object *pool,
    const struct expect_view *v, double now)
{
	struct expectation *x;
	size_t i = 0;

	while (i < e->n) {
		x = &e->v[i];
		if (strcmp(x->pool, pool_key) == 0 &&
		    (now - x->t >= e->ttl || expect_done(x, pool, v)))
			expect_remove_at(e, i);
		else
			i++;
	}
}

void expect_settle(struct expect *e, const char *pool_key, json_object *pool, json_object **vms,
    size_t nvms, double now)
{
	struct expect_scan sc = {vms, nvms};
	struct expect_view v = {expect_scan_name, expect_scan_uid, NULL, &sc};

	expect_settle_view(e, pool_key, pool, &v, now);
}

size_t expect_expire(struct expect *e, double now, void (*fn)(const char *, void *), void *arg)
{
	size_t i = 0, n = 0;

	while (i < e->n) {
		if (now - e->v[i].t < e->ttl) {
			i++;
			continue;
		}
		if (fn != NULL)
			fn(e->v[i].pool, arg);
		expect_remove_at(e, i);
		n++;
	}
	return n;
}

static int expect_live(const struct expect *e, const struct expectation *x, double now)
{
	return now - x->t < e->ttl;
}

/* live expectations of the pool (NULL: of every pool) whose kind is in mask (1 << kind) */
static size_t expect_count_kinds(
    const struct expect *e, const char *pool_key, unsigned mask, double now)
{
	const struct expectation *x;
	size_t i, n = 0;

	for (i = 0; i < e->n; i++) {
		x = &e->v[i];
		if ((mask & (1u << x->kind)) != 0 &&
		    (pool_key == NULL || strcmp(x->pool, pool_key) == 0) && expect_live(e, x, now))
			n++;
	}
	return n;
}

size_t expect_scale_pending(const struct expect *e, const char *pool_key, double now)
{
	return expect_count_kinds(
	    e, pool_key, 1u << EXPECT_CREATE | 1u << EXPECT_DELETE | 1u << EXPECT_CREATE_REV, now);
}

size_t expect_creates_unseen(const struct expect *e, const char *pool_key, double now)
{
	return expect_count_kinds(e, pool_key, 1u << EXPECT_CREATE, now);
}

static void expect_nofree(void *v)
{
	(void)v;
}

struct pmap *expect_pending_keys(
    const struct expect *e, const char *pool_key, enum expect_kind kind, double now)
{
	struct pmap *m = pmap_new(expect_nofree);
	const struct expectation *x;
	size_t i;

	for (i = 0; i < e->n; i++) {
		x = &e->v[i];
		if (x->kind == kind && strcmp(x->pool, pool_key) == 0 && expect_live(e, x, now))
			pmap_put(m, x->key, (void *)x);
	}
	return m;
}

int expect_create_pending(
    const struct expect *e, const char *pool_key, const char *name, double now)
{
	const struct expectation *x;
	size_t i;

	for (i = 0; i < e->n; i++) {
		x = &e->v[i];
		if (x->kind == EXPECT_CREATE && strcmp(x->key, name) == 0 &&
		    strcmp(x->pool, pool_key) == 0 && expect_live(e, x, now))
			return 1;
	}
	return 0;
}

int expect_patch_pending(const struct expect *e, const char *uid, const char *op, double now)
{
	const struct expectation *x;
	size_t i;

	for (i = 0; i < e->n; i++) {
		x = &e->v[i];
		if (x->kind == EXPECT_PATCH && strcmp(x->key, uid) == 0 &&
		    (op == NULL || (x->op != NULL && strcmp(x->op, op) == 0)) &&
		    expect_live(e, x, now))
			return 1;
	}
	return 0;
}

int expect_delete_pending(const struct expect *e, const char *uid, double now)
{
	const struct expectation *x;
	size_t i;

	for (i = 0; i < e->n; i++) {
		x = &e->v[i];
		if (x->kind == EXPECT_DELETE && strcmp(x->key, uid) == 0 && expect_live(e, x, now))
			return 1;
	}
	return 0;
}

size_t expect_count(const struct expect *e)
{
	return e->n;
}

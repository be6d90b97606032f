/*
 * queue.c: the work queue of the planner and vmpool-status (see queue.h). Marks coalesce: a
 * key marked many times before the next batch is processed once. A failing key is marked
 * again after its own backoff, reset when it succeeds. Measured as client-go measures its
 * work queues (workqueue_*{name=...}): a batch takes every dirty key at once.
 */
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "evpace.h"
#include "log.h"
#include "metrics.h"
#include "pmap.h"
#include "queue.h"
#include "xmalloc.h"
#include "timeutil.h"

struct qitem {
	struct queue *q;
	char *key;
	int dirty;        /* in q->dirty: waits for the next batch */
	int batched;      /* taken by the running batch, not processed yet: a mark coalesces */
	double marked_at; /* now_mono() when it became dirty */
	struct backoff bo;
	struct event *retry;
	struct event *later; /* queue_after() */
	double later_at;     /* now_mono() when it fires */
	double ran_at, cost; /* when its last pass ended, and what it took (seconds) */
};

struct queue {
	struct event_base *base;
	struct queue_opts o;
	char *name; /* o.name, owned */
	void (*run)(const char *, void *);
	void *arg;
	struct pmap *items;
	char **dirty; /* keys in marking order */
	size_t ndirty, cap;
	struct event *batch;
	double last_batch; /* now_mono() when the last batch started */
};

static void queue_item_free(void *p)
{
	struct qitem *it = p;

	if (it == NULL)
		return;
	if (it->retry != NULL)
		event_free(it->retry);
	if (it->later != NULL)
		event_free(it->later);
	free(it->key);
	free(it);
}

/* one loop turn later (or once the pace allows): process every key marked so far. A key
 * marked while it waits in this batch is still processed once; one marked while (or after)
 * it is processed goes into the next batch; a forgotten one is skipped. */
static void queue_batch(evutil_socket_t fd, short ev, void *arg)
{
	struct queue *q = arg;
	char **keys = q->dirty;
	size_t n = q->ndirty, i;
	struct qitem *it;
	double now = now_mono(), t;

	if (q->o.ready != NULL && !q->o.ready(q->arg))
		return; /* kept dirty: the next mark tries again */
	q->dirty = NULL;
	q->ndirty = q->cap = 0;
	q->last_batch = now;
	for (i = 0; i < n; i++) {
		if ((it = pmap_get(q->items, keys[i])) != NULL) {
			it->dirty = 0;
			it->batched = 1;
		}
	}
	metrics_wq_depth(q->name, 0);
	for (i = 0; i < n; i++) {
		/* forgotten meanwhile (perhaps marked again: then it is in the next batch) */
		if ((it = pmap_get(q->items, keys[i])) != NULL && it->batched) {
			it->batched = 0;
			t = now_mono();
			metrics_wq_started(q->name, t - it->marked_at);
			q->run(keys[i], q->arg);
			now = now_mono();
			metrics_wq_done(q->name, now - t);
			if ((it = pmap_get(q->items, keys[i])) != NULL) { /* unless run forgot it */
				it->ran_at = now;
				it->cost = now - t;
			}
		}
		free(keys[i]);
	}
	free(keys);
}

struct queue *queue_new(struct event_base *base, const struct queue_opts *o,
    void (*run)(const char *, void *), void *arg)
{
	struct queue *q = xcalloc(1, sizeof(*q));

	q->base = base;
	q->o = *o;
	q->name = xstrdup(o->name);
	q->run = run;
	q->arg = arg;
	q->items = pmap_new(queue_item_free);
	q->batch = event_new(base, -1, 0, queue_batch, q);
	metrics_wq_declare(q->name);
	return q;
}

void queue_free(struct queue *q)
{
	size_t i;

	if (q == NULL)
		return;
	for (i = 0; i < q->ndirty; i++)
		free(q->dirty[i]);
	free(q->dirty);
	pmap_free(q->items);
	event_free(q->batch);
	free(q->name);
	free(q);
}

static struct qitem *queue_item(struct queue *q, const char *key)
{
	struct qitem *it = pmap_get(q->items, key);

	if (it == NULL) {
		it = xcalloc(1, sizeof(*it));
		it->q = q;
		it->key = xstrdup(key);
		backoff_init(&it->bo, q->o.backoff_base, q->o.backoff_cap);
		pmap_put(q->items, key, it);
	}
	return it;
}

/* how long the key still waits before its next pass may run (opts.share), or 0 */
static double queue_hold(const struct queue *q, const struct qitem *it)
{
	double wait;

	if (q->o.share <= 0 || q->o.share >= 1 || it->cost <= 0)
		return 0;
	wait = it->ran_at + it->cost * (1 / q->o.share - 1) - now_mono();
	return wait > 0.001 ? wait : 0; /* less than a millisecond: not worth a timer */
}

/* the next batch: after the pace, or (soon) at once */
static void queue_kick(struct queue *q, int soon)
{
	if (!soon) {
		evpace_kick(q->batch, q->last_batch, q->o.pace);
		return;
	}
	event_del(q->batch); /* a batch waiting out the pace runs now instead */
	event_active(q->batch, EV_TIMEOUT, 0);
}

static void queue_mark_as(struct queue *q, const char *key, int soon)
{
	struct qitem *it = queue_item(q, key);
	double hold;

	if (it->dirty) {
		/* a batch held back by o.ready may run now */
		queue_kick(q, soon);
		return;
	}
	if (it->batched)
		return; /* the running batch processes it */
	if (!soon && (hold = queue_hold(q, it)) > 0) {
		queue_after(q, key, hold); /* marks it again then */
		return;
	}
	it->dirty = 1;
	it->marked_at = now_mono();
	if (q->ndirty == q->cap) {
		q->cap = q->cap ? q->cap * 2 : 16;
		q->dirty = xreallocarray(q->dirty, q->cap, sizeof(*q->dirty));
	}
	q->dirty[q->ndirty++] = xstrdup(key);
	metrics_wq_added(q->name, q->ndirty);
	queue_kick(q, soon);
}

void queue_mark(struct queue *q, const char *key)
{
	queue_mark_as(q, key, 0);
}

void queue_mark_soon(struct queue *q, const char *key)
{
	queue_mark_as(q, key, 1);
}

static void queue_retry_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct qitem *it = arg;

	queue_mark(it->q, it->key);
}

void queue_retry(struct queue *q, const char *key)
{
	struct qitem *it = queue_item(q, key);
	struct timeval tv;
	double d;

	if (it->retry == NULL)
		it->retry = evtimer_new(q->base, queue_retry_cb, it);
	if (evtimer_pending(it->retry, NULL))
		return;
	d = backoff_next(&it->bo);
	tv = secs_to_tv(d);
	log_debug(key, "requeue in %.1fs", d);
	metrics_wq_retry(q->name);
	evtimer_add(it->retry, &tv);
}

/* a pass wants another look after secs (a timer it waits for): the earliest request wins */
void queue_after(struct queue *q, const char *key, double secs)
{
	struct qitem *it = queue_item(q, key);
	struct timeval tv;
	double at = now_mono() + secs;

	if (it->later == NULL)
		it->later = evtimer_new(q->base, queue_retry_cb, it);
	if (evtimer_pending(it->later, NULL) && it->later_at <= at)
		return;
	it->later_at = at;
	tv = secs_to_tv(secs);
	log_debug(key, "look again in %.1fs", secs);
	evtimer_add(it->later, &tv);
}

void queue_ok(struct queue *q, const char *key)
{
	struct qitem *it = pmap_get(q->items, key);

	if (it != NULL)
		backoff_reset(&it->bo);
}

void queue_forget(struct queue *q, const char *key)
{
	struct qitem *it = pmap_get(q->items, key);
	size_t i;

	if (it == NULL)
		return;
	if (it->dirty) {
		for (i = 0; i < q->ndirty; i++) {
			if (strcmp(q->dirty[i], key) == 0) {
				free(q->dirty[i]);
				q->dirty[i] = q->dirty[--q->ndirty];
				metrics_wq_depth(q->name, q->ndirty);
				break;
			}
		}
	}
	pmap_del(q->items, key);
}

size_t queue_dirty(const struct queue *q)
{
	return q->ndirty;
}

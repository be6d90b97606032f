/*
 * kubegate.c: when the Kubernetes client's attempts may go. Writes wait in a FIFO for a
 * token of the --kube-api-qps/--kube-api-burst bucket, before every attempt (retries too).
 * The gate: when an attempt cannot reach the server at all, the client is down; requests
 * wait (parked) instead of failing, and one probe at a time tries again after a backoff
 * that all of them share, so an outage costs a few connection attempts, not one per
 * request and retry. A 429's Retry-After holds every request of the client. Requests past
 * their patience are answered as failed (never reached: no unknown outcome).
 * Events wait in a FIFO of their own, behind every object write (see kube_request_event()).
 */
#include <sys/queue.h>
#include <sys/stat.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <json-c/json.h>
#include "backoff.h"
#include "kube.h"
#include "log.h"
#include "timeutil.h"
#include "xmalloc.h"
#include "kube_int.h"

static void kube_wq_pump(struct kube *);
static void kube_lq_pump(struct kube *);
static void kube_lq_push(struct kreq *);

/* ---- the gate: one backoff for the whole client while the server is unreachable ---- */

/* 1 while new attempts must wait: the server is down and a probe is out or due later, or
 * the server asked for a pause (Retry-After) */
static int kube_blocked(struct kube *k)
{
	if (k->down)
		return k->probe != NULL || evtimer_pending(&k->gate_timer, NULL);
	return now_mono() < k->hold_until;
}

/* r gives back the slot it was let go into and did not use */
void kube_slot_drop(struct kreq *r)
{
	if (!r->slot)
		return;
	r->slot = 0;
	r->k->nslots--;
	if (!r->k->dead)
		kube_gate_kick(r->k);
}

void kreq_park(struct kreq *r, int head)
{
	kube_slot_drop(r);
	kreq_set_state(r, KR_PARKED);
	if (head)
		TAILQ_INSERT_HEAD(&r->k->parked, r, wentry);
	else
		TAILQ_INSERT_TAIL(&r->k->parked, r, wentry);
}

/* 1 if r must wait at the gate; while down, the first attempt when no probe is out or due
 * becomes the probe */
int kube_gate_closed(struct kube *k, struct kreq *r)
{
	if (kube_cred_wait(k))
		return 1; /* the exec plugin runs; kube_gate_kick() when it is done */
	if (r == k->probe)
		return 0;
	if (k->down) {
		if (k->probe == NULL && !evtimer_pending(&k->gate_timer, NULL)) {
			k->probe = r;
			return 0;
		}
		return 1;
	}
	if (now_mono() < k->hold_until)
		return 1;
	if (r->watch)
		return 0;
	if (r->slot) { /* its slot: it goes now */
		r->slot = 0;
		k->nslots--;
		return 0;
	}
	/* first come, first served: nothing new goes ahead of a parked request */
	return k->nrunning + k->nslots >= k->max_running || !TAILQ_EMPTY(&k->parked);
}

static void kube_gate_arm(struct kube *k, double delay)
{
	struct timeval tv = secs_to_tv(delay > 0 ? delay : 0);

	evtimer_add(&k->gate_timer, &tv);
}

/* parked requests go again (from the loop), oldest first, as many as max_running has
 * room for, watches all; writes keep their tokens */
static void kube_gate_open(struct kube *k)
{
	struct kreq *r, *next;
	double now = now_mono();
	int room = k->max_running - k->nrunning - k->nslots;

	if (now < k->hold_until) {
		kube_gate_arm(k, k->hold_until - now);
		return;
	}
	for (r = TAILQ_FIRST(&k->parked); r != NULL; r = next) {
		next = TAILQ_NEXT(r, wentry);
		if (!r->watch && room <= 0)
			continue;
		TAILQ_REMOVE(&k->parked, r, wentry);
		if (!r->watch) {
			room--;
			r->slot = 1;
			k->nslots++;
		}
		kreq_schedule(r, 0);
	}
	kube_wq_pump(k);
}

/* an attempt could not reach the server: from now on one probe at a time, after a backoff
 * shared by every request of this client */
void kube_set_down(struct kube *k, struct kreq *r, const char *why)
{
	double delay;

	if (k->probe == r)
		k->probe = NULL;
	if (!k->down) {
		k->down = 1;
		k->stats.outages++;
		backoff_reset(&k->down_bo);
		log_warnx(NULL,
		    "API server %s unreachable (%s): requests wait, one probe at a time",
		    k->cfg.server, log_escape(why));
	} else if (k->probe != NULL || evtimer_pending(&k->gate_timer, NULL))
		return; /* an attempt that started before: the probe or its timer decides */
	delay = backoff_next(&k->down_bo);
	log_debug(NULL, "API server unreachable: next probe in %.1fs", delay);
	kube_gate_arm(k, delay);
}

/* an attempt reached the server */
void kube_set_up(struct kube *k)
{
	if (!k->down)
		return;
	k->down = 0;
	k->probe = NULL;
	evtimer_del(&k->gate_timer);
	backoff_reset(&k->down_bo);
	log_info(NULL, "API server %s reachable again", k->cfg.server);
	kube_gate_open(k);
}

/* Retry-After on a 429: no new attempt of this client before then */
void kube_hold(struct kube *k, double until)
{
	if (until <= k->hold_until)
		return;
	if (k->hold_until <= now_mono())
		log_info(NULL, "API server asked to wait %.1fs: every request waits",
		    until - now_mono());
	k->hold_until = until;
	kube_lq_drop_all(k, "the API server answered 429");
	if (!k->down)
		kube_gate_arm(k, until - now_mono());
}

/* parked requests past their patience are answered: the server could not be reached */
static void kube_gate_expire(struct kube *k)
{
	struct kreq *r, *next;
	double now = now_mono();

	for (r = TAILQ_FIRST(&k->parked); r != NULL; r = next) {
		next = TAILQ_NEXT(r, wentry);
		if (r->watch || now - r->t0 < r->patience)
			continue;
		TAILQ_REMOVE(&k->parked, r, wentry); /* kreq_respond() unlinks by state: DONE */
		kreq_set_state(r, KR_NEW);
		if (k->cfg.exec != NULL && !k->cred_valid)
			snprintf(kreq_fail(r), KREQ_FAIL_MAX,
			    "no credential from the exec plugin for %.0fs", now - r->t0);
		else if (!k->down && now >= k->hold_until)
			snprintf(kreq_fail(r), KREQ_FAIL_MAX,
			    "waited %.0fs for one of the %d transfers to end", now - r->t0,
			    k->max_running);
		else
			snprintf(kreq_fail(r), KREQ_FAIL_MAX, "API server unreachable for %.0fs",
			    now - r->t0);
		kreq_respond(r, CURLE_COULDNT_CONNECT, 0);
	}
}

void kube_gate_event(evutil_socket_t fd, short kind, void *arg)
{
	struct kube *k = arg;
	struct kreq *r;

	kube_enter(k);
	kube_gate_expire(k);
	if (!k->down)
		kube_gate_open(k);
	else if (k->probe == NULL && (r = TAILQ_FIRST(&k->parked)) != NULL) {
		TAILQ_REMOVE(&k->parked, r, wentry);
		k->probe = r;
		kreq_schedule(r, 0);
	} else if (k->probe == NULL)
		kube_wq_pump(k); /* the first write waiting for a token becomes the probe */
	kube_leave(k);
}

void kube_gate_kick(struct kube *k)
{
	struct timeval zero = {0, 0};

	if (!k->down)
		evtimer_add(&k->gate_timer, &zero);
	else if (k->probe == NULL && !evtimer_pending(&k->gate_timer, NULL))
		evtimer_add(&k->gate_timer, &zero);
}

/* ---- the writer's token bucket: a FIFO, never blocking ---- */

/* a write with its token: it goes now (while the server is down, as the probe if none is out) */
static void kreq_admit(struct kreq *r)
{
	struct kube *k = r->k;

	if (r->low) {
		TAILQ_REMOVE(&k->lowq, r, wentry);
		k->nlow--;
	} else
		TAILQ_REMOVE(&k->writeq, r, wentry);
	r->ticket = 1;
	if (k->down && k->probe == NULL)
		k->probe = r;
	kreq_set_state(r, KR_NEW);
	kreq_launch(r);
}

void kube_wq_push(struct kreq *r)
{
	if (r->low) {
		kube_lq_push(r);
		return;
	}
	kreq_set_state(r, KR_QUEUED);
	if (r->first)
		TAILQ_INSERT_HEAD(&r->k->writeq, r, wentry);
	else
		TAILQ_INSERT_TAIL(&r->k->writeq, r, wentry);
	kube_wq_pump(r->k);
}

static void kube_wq_pump(struct kube *k)
{
	struct kreq *r;
	struct timeval tv;
	double delay;

	while (!k->wq_reserved && (r = TAILQ_FIRST(&k->writeq)) != NULL) {
		if (kube_blocked(k))
			return; /* the gate opens them when the server is back or the hold ends */
		delay = k->qps > 0 ? tb_take(&k->tb, now_mono()) : 0;
		if (delay > 0) {
			/* the token is reserved for the head; start it when it is due */
			k->wq_reserved = 1;
			tv = secs_to_tv(delay);
			evtimer_add(&k->wq_timer, &tv);
			return;
		}
		kreq_admit(r);
	}
	if (!k->wq_reserved)
		kube_lq_kick(k); /* no object write waits for a token: Events may go */
}

void kube_wq_event(evutil_socket_t fd, short kind, void *arg)
{
	struct kube *k = arg;
	struct kreq *r;

	kube_enter(k);
	k->wq_reserved = 0;
	if ((r = TAILQ_FIRST(&k->writeq)) != NULL)
		kreq_admit(r);
	if (!k->dead)
		kube_wq_pump(k);
	kube_leave(k);
}

/* ---- Events: a FIFO behind every object write, with its own bucket ---- */

/* answers r (queued Event) as dropped: it never reached the server */
static void kube_lq_drop(struct kreq *r, const char *why)
{
	struct kube *k = r->k;

	TAILQ_REMOVE(&k->lowq, r, wentry);
	k->nlow--;
	kreq_set_state(r, KR_NEW); /* off the queue: kreq_respond() unlinks by state */
	r->dropped = 1;
	snprintf(kreq_fail(r), KREQ_FAIL_MAX, "Event dropped: %s", why);
	kreq_respond(r, CURLE_ABORTED_BY_CALLBACK, 0);
}

void kube_lq_drop_all(struct kube *k, const char *why)
{
	struct kreq *r;

	if (!TAILQ_EMPTY(&k->lowq))
		log_debug(NULL, "dropping %zu waiting Events: %s", k->nlow, why);
	while ((r = TAILQ_FIRST(&k->lowq)) != NULL)
		kube_lq_drop(r, why);
}

static void kube_lq_push(struct kreq *r)
{
	struct kube *k = r->k;

	kreq_set_state(r, KR_QUEUED);
	TAILQ_INSERT_TAIL(&k->lowq, r, wentry);
	if (++k->nlow > KUBE_EVENT_QUEUE_MAX)
		kube_lq_drop(TAILQ_FIRST(&k->lowq), "too many Events waiting");
	kube_lq_kick(k);
}

/* the Event FIFO is looked at from the loop (never from a callback of ours or curl's) */
void kube_lq_kick(struct kube *k)
{
	struct timeval zero = {0, 0};

	if (TAILQ_EMPTY(&k->lowq) && k->lq_notify == NULL)
		return;
	evtimer_del(&k->lq_timer);
	evtimer_add(&k->lq_timer, &zero);
}

void kube_events_notify(struct kube *k, void (*fn)(void *), void *arg)
{
	if (k == NULL || k->dead)
		return;
	k->lq_notify = fn;
	k->lq_notify_arg = arg;
	kube_lq_kick(k);
}

static void kube_lq_arm(struct kube *k, double delay)
{
	struct timeval tv = secs_to_tv(delay);

	evtimer_del(&k->lq_timer);
	evtimer_add(&k->lq_timer, &tv);
}

/* Events go when no object write is queued or outstanding, at their own rate, with a spare
 * token of the writer's bucket; those that waited too long behind object writes are dropped.
 * With none waiting, the writer that asked to be told (kube_events_notify) is told. */
static void kube_lq_pump(struct kube *k)
{
	struct kreq *r;
	double now = now_mono(), wait, w2;
	void (*fn)(void *);

	while ((r = TAILQ_FIRST(&k->lowq)) != NULL || k->lq_notify != NULL) {
		if (kube_blocked(k))
			return; /* the gate opens them with the object writes */
		if (k->obj_writes > 0 || !TAILQ_EMPTY(&k->writeq) || k->wq_reserved) {
			while ((r = TAILQ_FIRST(&k->lowq)) != NULL &&
			       now - r->t0 >= KUBE_EVENT_MAX_WAIT)
				kube_lq_drop(r, "object writes kept it waiting");
			if (r != NULL)
				kube_lq_arm(k, KUBE_EVENT_MAX_WAIT - (now - r->t0));
			return; /* and kicked when the last object write is answered */
		}
		wait = k->qps > 0 ? tb_wait(&k->ltb, now) : 0;
		w2 = k->qps > 0 ? tb_wait(&k->tb, now) : 0;
		if (wait > 0 || w2 > 0) {
			kube_lq_arm(k, wait > w2 ? wait : w2);
			return;
		}
		if (r == NULL) {
			fn = k->lq_notify;
			k->lq_notify = NULL;
			fn(k->lq_notify_arg); /* what it asks for is looked at from the loop */
			return;
		}
		if (k->qps > 0) {
			tb_take(&k->ltb, now);
			tb_take(&k->tb, now);
		}
		kreq_admit(r);
	}
}

void kube_lq_event(evutil_socket_t fd, short kind, void *arg)
{
	struct kube *k = arg;

	kube_enter(k);
	kube_lq_pump(k);
	kube_leave(k);
}

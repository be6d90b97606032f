/*
 * test_queue.c: the work queue of the planner and vmpool-status (common/queue.c) on a real
 * event loop: marks coalesce while queued, a key marked while it is processed is processed
 * again, requeues back off per key (and reset), the ready gate holds batches back, forgotten
 * keys are not processed, batches keep their pace, and the workqueue_* series count it all.
 * Times are only checked from below (a timer never fires early); the loop is bounded by a
 * 10 s guard so that a broken queue fails instead of hanging.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "../support/metricskit.h"
#include "metrics.h"
#include "queue.h"
#include "timeutil.h"
#include "xmalloc.h"

#define MAXRUNS 32
#define GUARD   10.0

struct qt {
	struct event_base *base;
	struct queue *q;
	struct event *guard;
	int timed_out;
	int ready;
	/* what run() saw: keys in order, when, and in which batch */
	char *keys[MAXRUNS];
	double at[MAXRUNS];
	int nruns;
	/* what run() does */
	const char *remark; /* marks this key while processing it, once */
	const char *retry;  /* queue_retry() on this key while processing it */
	int ok_after;       /* queue_ok() on the retried key at this run (0: never) */
	const char *forget; /* forgets this key while processing the first one */
	const char *also;   /* marks this key while processing the first one */
	const char *busy;   /* takes busy_secs to process this key */
	double busy_secs;
	int busy_marks; /* marks of the busy key left to make */
};

static void qt_guard(evutil_socket_t fd, short ev, void *arg)
{
	struct qt *t = arg;

	t->timed_out = 1;
	event_base_loopbreak(t->base);
}

static void qt_run(const char *key, void *arg)
{
	struct qt *t = arg;

	if (t->nruns >= MAXRUNS)
		fail_msg("more than %d runs", MAXRUNS);
	t->keys[t->nruns] = xstrdup(key);
	t->at[t->nruns] = now_mono();
	t->nruns++;
	if (t->remark != NULL && strcmp(key, t->remark) == 0) {
		queue_mark(t->q, key);
		t->remark = NULL;
	}
	if (t->retry != NULL && strcmp(key, t->retry) == 0) {
		if (t->ok_after != 0 && t->nruns == t->ok_after)
			queue_ok(t->q, key);
		queue_retry(t->q, key);
	}
	if (t->nruns == 1 && t->forget != NULL)
		queue_forget(t->q, t->forget);
	if (t->nruns == 1 && t->also != NULL)
		queue_mark(t->q, t->also);
	if (t->busy != NULL && strcmp(key, t->busy) == 0) {
		while (now_mono() < t->at[t->nruns - 1] + t->busy_secs)
			;
	}
}

static int qt_ready(void *arg)
{
	return ((struct qt *)arg)->ready;
}

static struct qt *qt_new_share(const char *name, double pace, double base, double cap, double share)
{
	struct qt *t = xcalloc(1, sizeof(*t));
	struct queue_opts o = {name, pace, base, cap, qt_ready, share};
	struct timeval tv = secs_to_tv(GUARD);

	t->base = event_base_new();
	assert_non_null(t->base);
	t->ready = 1;
	t->q = queue_new(t->base, &o, qt_run, t);
	t->guard = evtimer_new(t->base, qt_guard, t);
	evtimer_add(t->guard, &tv);
	return t;
}

static struct qt *qt_new(const char *name, double pace, double base, double cap)
{
	return qt_new_share(name, pace, base, cap, 0);
}

static void qt_free(struct qt *t)
{
	int i;

	queue_free(t->q);
	event_free(t->guard);
	event_base_free(t->base);
	for (i = 0; i < t->nruns; i++)
		free(t->keys[i]);
	free(t);
}

/* runs the loop until n keys were processed (fails after the guard) */
static void qt_until(struct qt *t, int n)
{
	while (t->nruns < n && !t->timed_out)
		event_base_loop(t->base, EVLOOP_ONCE);
	if (t->timed_out)
		fail_msg("%d runs after %.0f s, wanted %d", t->nruns, GUARD, n);
}

/* runs the loop for secs (to see that nothing more happens) */
static void qt_idle(struct qt *t, double secs)
{
	struct timeval tv = secs_to_tv(secs);

	event_base_loopexit(t->base, &tv);
	event_base_dispatch(t->base);
}

#define render metricskit_render

static double sample(const char *text, const char *series)
{
	double v = 0;

	if (metricskit_sample(text, series, &v) == -1)
		fail_msg("no sample %s in:\n%s", series, text);
	return v;
}

static int teardown(void **state)
{
	metrics_stop();
	return 0;
}

static void test_dedupe_while_queued(void **state)
{
	struct qt *t = qt_new("qdedupe", 0, 1, 10);
	char *m;

	queue_mark(t->q, "ns/a");
	queue_mark(t->q, "ns/a");
	queue_mark(t->q, "ns/b");
	queue_mark(t->q, "ns/a");
	assert_int_equal(queue_dirty(t->q), 2);
	qt_until(t, 2);
	qt_idle(t, 0.05);
	assert_int_equal(t->nruns, 2);
	assert_string_equal(t->keys[0], "ns/a"); /* in marking order */
	assert_string_equal(t->keys[1], "ns/b");
	assert_int_equal(queue_dirty(t->q), 0);
	m = render();
	assert_true(sample(m, "workqueue_adds_total{name=\"qdedupe\"}") == 2);
	assert_true(sample(m, "workqueue_depth{name=\"qdedupe\"}") == 0);
	assert_true(sample(m, "workqueue_queue_duration_seconds_count{name=\"qdedupe\"}") == 2);
	assert_true(sample(m, "workqueue_work_duration_seconds_count{name=\"qdedupe\"}") == 2);
	assert_true(sample(m, "workqueue_retries_total{name=\"qdedupe\"}") == 0);
	free(m);
	qt_free(t);
}

static void test_marked_while_processing(void **state)
{
	struct qt *t = qt_new("qagain", 0, 1, 10);

	t->remark = "ns/a"; /* run() marks it again the first time */
	queue_mark(t->q, "ns/a");
	qt_until(t, 2);
	qt_idle(t, 0.05);
	assert_int_equal(t->nruns, 2);
	assert_string_equal(t->keys[1], "ns/a");
	qt_free(t);
}

/* a key marked by another key's run is processed in the next batch, once */
static void test_marked_by_another(void **state)
{
	struct qt *t = qt_new("qother", 0, 1, 10);

	t->also = "ns/b";
	queue_mark(t->q, "ns/a");
	queue_mark(t->q, "ns/b"); /* in this batch, after ns/a: marked again while queued */
	qt_until(t, 2);
	qt_idle(t, 0.05);
	assert_int_equal(t->nruns, 2);
	assert_string_equal(t->keys[1], "ns/b");
	qt_free(t);
}

static void test_retry_backoff(void **state)
{
	/* 20 ms doubling to 80 ms; reset by queue_ok at the 5th run */
	static const double want[] = {0.02, 0.04, 0.08, 0.08, 0.02};
	struct qt *t = qt_new("qretry", 0, 0.02, 0.08);
	char *m;
	int i;

	t->retry = "ns/a";
	t->ok_after = 5;
	queue_mark(t->q, "ns/a");
	qt_until(t, 7);
	for (i = 0; i < 5; i++)
		if (t->at[i + 1] - t->at[i] < want[i] - 0.002)
			fail_msg("retry %d after %.3f s, backoff %.3f s", i + 1,
			    t->at[i + 1] - t->at[i], want[i]);
	/* a retry asked while one is pending does not push it back */
	queue_retry(t->q, "ns/a");
	m = render();
	assert_true(sample(m, "workqueue_retries_total{name=\"qretry\"}") >= 7);
	free(m);
	t->retry = NULL;
	qt_free(t);
}

static void test_ready_gate(void **state)
{
	struct qt *t = qt_new("qgate", 0, 1, 10);

	t->ready = 0;
	queue_mark(t->q, "ns/a");
	qt_idle(t, 0.05);
	assert_int_equal(t->nruns, 0);
	assert_int_equal(queue_dirty(t->q), 1); /* kept dirty */
	t->ready = 1;
	queue_mark(t->q, "ns/a"); /* already dirty: lets the batch run */
	qt_until(t, 1);
	qt_idle(t, 0.05);
	assert_int_equal(t->nruns, 1);
	qt_free(t);
}

static void test_forget(void **state)
{
	struct qt *t = qt_new("qforget", 0, 1, 10);
	char *m;

	queue_mark(t->q, "ns/a");
	queue_mark(t->q, "ns/b");
	queue_mark(t->q, "ns/c");
	queue_forget(t->q, "ns/b");
	assert_int_equal(queue_dirty(t->q), 2);
	m = render();
	assert_true(sample(m, "workqueue_depth{name=\"qforget\"}") == 2);
	free(m);
	queue_retry(t->q, "ns/c"); /* its timer goes with it */
	queue_forget(t->q, "ns/c");
	qt_until(t, 1);
	qt_idle(t, 0.05);
	assert_int_equal(t->nruns, 1);
	assert_string_equal(t->keys[0], "ns/a");
	qt_free(t);
}

static void test_after_earliest_wins(void **state)
{
	struct qt *t = qt_new("qafter", 0, 1, 10);
	double t0 = now_mono();

	queue_after(t->q, "ns/a", 9);
	queue_after(t->q, "ns/a", 0.03);
	queue_after(t->q, "ns/a", 8); /* later than the pending one: ignored */
	qt_until(t, 1);
	assert_true(t->at[0] - t0 >= 0.03 - 0.002);
	assert_true(t->at[0] - t0 < 8); /* a loaded machine may be late, not that late */
	qt_free(t);
}

static void test_pace(void **state)
{
	struct qt *t = qt_new("qpace", 0.05, 1, 10);

	t->remark = "ns/a";
	queue_mark(t->q, "ns/a");
	qt_until(t, 2);
	if (t->at[1] - t->at[0] < 0.05 - 0.002)
		fail_msg("batches %.3f s apart, pace 0.05 s", t->at[1] - t->at[0]);
	qt_free(t);
}

/* share: a key whose pass took 40 ms, marked again after it, runs again no sooner than 40 ms
 * x (1 / 0.25 - 1) after that pass ended; marks while it waits coalesce into one pass;
 * another key is not held by it */
static void test_share(void **state)
{
	struct qt *t = qt_new_share("qshare", 0, 1, 10, 0.25);

	t->busy = "ns/big";
	t->busy_secs = 0.04;
	queue_mark(t->q, "ns/big");
	qt_until(t, 1);
	queue_mark(t->q, "ns/big");
	queue_mark(t->q, "ns/big"); /* while it waits: coalesces */
	queue_mark(t->q, "ns/small");
	qt_until(t, 3);
	qt_idle(t, 0.3);
	assert_int_equal(t->nruns, 3);
	assert_string_equal(t->keys[1], "ns/small");
	assert_string_equal(t->keys[2], "ns/big");
	/* started at least busy_secs + 3 x busy_secs after the first pass started */
	if (t->at[2] - t->at[0] < 0.16 - 0.002)
		fail_msg("big passed again %.3f s after its start, wanted >= 0.16 s",
		    t->at[2] - t->at[0]);
	qt_free(t);
}

/* queue_mark_soon: the batch starts at once instead of after the pace, and takes the keys
 * waiting for the pace along; the key's share does not hold it either (a plain mark then
 * would wait: test_share) */
static void test_soon(void **state)
{
	struct qt *t = qt_new("qsoon", 60, 1, 10);
	struct qt *sh;

	queue_mark(t->q, "ns/a"); /* the first batch: nothing to wait for */
	qt_until(t, 1);
	queue_mark(t->q, "ns/b"); /* waits for the pace (a minute) */
	qt_idle(t, 0.05);
	assert_int_equal(t->nruns, 1);
	queue_mark_soon(t->q, "ns/a");
	qt_until(t, 3); /* the guard fails it if the pace held them */
	assert_string_equal(t->keys[1], "ns/b");
	assert_string_equal(t->keys[2], "ns/a");
	if (t->at[2] - t->at[0] > GUARD / 2)
		fail_msg("soon batch %.3f s after the first", t->at[2] - t->at[0]);
	queue_mark_soon(t->q, "ns/a"); /* the pace does not hold the next one either */
	qt_until(t, 4);
	qt_idle(t, 0.05);
	assert_int_equal(t->nruns, 4);
	qt_free(t);

	/* a pass of 40 ms at a share of 0.5 %: a plain mark would wait about 8 s */
	sh = qt_new_share("qsoonshare", 0, 1, 10, 0.005);
	sh->busy = "ns/big";
	sh->busy_secs = 0.04;
	queue_mark(sh->q, "ns/big");
	qt_until(sh, 1);
	sh->busy = NULL;
	queue_mark_soon(sh->q, "ns/big");
	qt_until(sh, 2);
	if (sh->at[1] - sh->at[0] > GUARD / 4)
		fail_msg("big passed again %.3f s after its start: held by its share",
		    sh->at[1] - sh->at[0]);
	qt_free(sh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_dedupe_while_queued, teardown),
	    cmocka_unit_test_teardown(test_marked_while_processing, teardown),
	    cmocka_unit_test_teardown(test_marked_by_another, teardown),
	    cmocka_unit_test_teardown(test_retry_backoff, teardown),
	    cmocka_unit_test_teardown(test_ready_gate, teardown),
	    cmocka_unit_test_teardown(test_forget, teardown),
	    cmocka_unit_test_teardown(test_after_earliest_wins, teardown),
	    cmocka_unit_test_teardown(test_pace, teardown),
	    cmocka_unit_test_teardown(test_share, teardown),
	    cmocka_unit_test_teardown(test_soon, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

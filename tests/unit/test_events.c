/* test_events.c: Event building, naming and aggregation (common/k8sevent.c, pure parts).
 * The check that the caches keep their records out of glibc's heap needs glibc's allocator:
 * `make unit` also runs this program from the release build (build/rel). */
#include <malloc.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../support/asan.h"
#include "k8sevent.h"
#include "obj.h"

#define NOW 1700000000.0

static const struct k8sev_src src = {
    "ns", "p", "pu", "Normal", "SuccessfulCreate", "Created VM ns/p-0"};

static void test_name(void **state)
{
	uint64_t last = 0;
	char *a = k8sev_name("p", NOW, &last), *b = k8sev_name("p", NOW, &last);

	assert_int_equal(strlen(a), strlen("p.") + 16);
	assert_memory_equal(a, "p.", 2);
	assert_string_not_equal(a, b); /* same clock: still unique */
	free(a);
	free(b);
}

static void test_build(void **state)
{
	json_object *ev = k8sev_build(&src, "p.0000000000000001", NOW);
	long long n;

	assert_string_equal(obj_str(ev, "apiVersion"), "v1");
	assert_string_equal(obj_str(ev, "kind"), "Event");
	assert_string_equal(obj_str(ev, "metadata.name"), "p.0000000000000001");
	assert_string_equal(obj_str(ev, "metadata.namespace"), "ns");
	assert_string_equal(obj_str(ev, "involvedObject.apiVersion"), "pool.kubevirt.io/v1beta1");
	assert_string_equal(obj_str(ev, "involvedObject.kind"), "VirtualMachinePool");
	assert_string_equal(obj_str(ev, "involvedObject.name"), "p");
	assert_string_equal(obj_str(ev, "involvedObject.namespace"), "ns");
	assert_string_equal(obj_str(ev, "involvedObject.uid"), "pu");
	assert_string_equal(obj_str(ev, "reason"), "SuccessfulCreate");
	assert_string_equal(obj_str(ev, "message"), "Created VM ns/p-0");
	assert_string_equal(obj_str(ev, "type"), "Normal");
	assert_string_equal(obj_str(ev, "source.component"), "vmpoold");
	assert_string_equal(obj_str(ev, "reportingComponent"), "vmpoold");
	assert_string_equal(obj_str(ev, "firstTimestamp"), "2023-11-14T22:13:20Z");
	assert_string_equal(obj_str(ev, "lastTimestamp"), "2023-11-14T22:13:20Z");
	assert_int_equal(obj_int(ev, "count", &n), 0);
	assert_int_equal(n, 1);
	json_object_put(ev);
}

/* dedupe (client-go's eventLogger): the same Event again is a count on the same name */
static void test_dedupe(void **state)
{
	struct k8sev_corr *c = k8sev_corr_new();
	struct k8sev_src other = src;
	struct k8sev_entry *e;
	char *first;

	e = k8sev_correlate(c, &src, NOW);
	assert_int_equal(e->count, 1);
	assert_true(e->dirty && !e->exists && !e->combined);
	assert_string_equal(e->message, "Created VM ns/p-0");
	/* no copy of its own: a single Event's message is the end of its key (issue 9) */
	assert_ptr_equal(e->message, e->key + strlen(e->key) - strlen(e->message));
	first = strdup(e->name);
	e->exists = 1;
	e->dirty = 0;
	e = k8sev_correlate(c, &src, NOW + 60);
	assert_int_equal(e->count, 2);
	assert_string_equal(e->name, first);
	assert_true(e->first == NOW && e->last == NOW + 60 && e->dirty && e->exists);
	e = k8sev_correlate(c, &src, NOW + 660);
	assert_int_equal(e->count, 3); /* within 10 minutes of the last one */
	/* another uid: another involved object, another Event */
	other.uid = "pu2";
	e = k8sev_correlate(c, &other, NOW + 661);
	assert_int_equal(e->count, 1);
	assert_string_not_equal(e->name, first);
	/* quiet for more than 10 minutes: a new Event */
	e = k8sev_correlate(c, &src, NOW + 1261);
	assert_int_equal(e->count, 1);
	assert_false(e->exists);
	assert_string_not_equal(e->name, first);
	assert_int_equal(k8sev_corr_size(c), 2);
	free(first);
	k8sev_corr_free(c);
}

/* aggregation (EventAggregator): the 10th distinct message within 10 minutes and every one
 * after it go to one combined Event that names the latest message */
static void test_aggregate(void **state)
{
	struct k8sev_corr *c = k8sev_corr_new();
	struct k8sev_src x = src, warn = src;
	struct k8sev_entry *e, *comb = NULL;
	char msg[64], *name = NULL;
	int i;

	for (i = 0; i < 25; i++) {
		snprintf(msg, sizeof msg, "Created VM ns/p-%d", i);
		x.message = msg;
		e = k8sev_correlate(c, &x, NOW + i);
		if (i < K8SEV_AGG_EVENTS - 1) {
			assert_false(e->combined);
			assert_string_equal(e->message, msg);
			assert_int_equal(e->count, 1);
			continue;
		}
		assert_true(e->combined);
		if (name == NULL)
			name = strdup(e->name);
		assert_string_equal(e->name, name); /* one Event for all of them */
		assert_int_equal(e->count, i - (K8SEV_AGG_EVENTS - 1) + 1);
		comb = e;
	}
	assert_string_equal(comb->message, K8SEV_COMBINED "Created VM ns/p-24");
	/* 9 single Events + 1 combined: counts add up to the 25 occurrences */
	assert_int_equal(k8sev_corr_size(c), K8SEV_AGG_EVENTS);
	/* a message seen among the first nine is a count on its own Event */
	x.message = "Created VM ns/p-3";
	e = k8sev_correlate(c, &x, NOW + 30);
	assert_false(e->combined);
	assert_int_equal(e->count, 2);
	/* another reason (or type) is aggregated apart */
	warn.type = "Warning";
	warn.reason = "FailedCreate";
	warn.message = "Error creating VM ns/p-30: denied";
	e = k8sev_correlate(c, &warn, NOW + 31);
	assert_false(e->combined);
	/* 10 minutes after the last similar one the record starts afresh */
	x.message = "Created VM ns/p-99";
	e = k8sev_correlate(c, &x, NOW + 31 + K8SEV_AGG_WINDOW + 1);
	assert_false(e->combined);
	assert_string_equal(e->message, "Created VM ns/p-99");
	free(name);
	k8sev_corr_free(c);
}

/* the spam filter: burst 25 per involved object, then one token every 5 minutes */
static void test_spam(void **state)
{
	struct k8sev_corr *c = k8sev_corr_new();
	struct k8sev_src other = src;
	struct k8sev_entry *e = k8sev_correlate(c, &src, NOW), *o;
	double w;
	int i;

	for (i = 0; i < K8SEV_SPAM_BURST; i++)
		assert_true(k8sev_spam_take(c, e, NOW) == 0);
	w = k8sev_spam_take(c, e, NOW);
	assert_true(w > 299 && w <= 300);
	assert_true(k8sev_spam_take(c, e, NOW + 150) > 149); /* nothing was taken meanwhile */
	assert_true(k8sev_spam_take(c, e, NOW + 300) == 0);
	assert_true(k8sev_spam_take(c, e, NOW + 300) > 0);
	/* another pool has its own bucket; another reason on the same pool has not */
	other.pool = "q";
	o = k8sev_correlate(c, &other, NOW + 300);
	assert_true(k8sev_spam_take(c, o, NOW + 300) == 0);
	other = src;
	other.reason = "SuccessfulDelete";
	o = k8sev_correlate(c, &other, NOW + 300);
	assert_true(k8sev_spam_take(c, o, NOW + 300) > 0);
	/* a refunded token (a write that never reached the server) can be taken again */
	k8sev_spam_refund(c, o);
	assert_true(k8sev_spam_take(c, o, NOW + 300) == 0);
	k8sev_corr_free(c);
}

static void test_corr_bounded(void **state)
{
	struct k8sev_corr *c = k8sev_corr_new();
	struct k8sev_src x = src;
	char pool[64];
	int i;

	for (i = 0; i < K8SEV_AGG_MAX + 10; i++) {
		snprintf(pool, sizeof pool, "p%d", i);
		x.pool = pool;
		k8sev_spam_take(c, k8sev_correlate(c, &x, NOW + i), NOW + i);
	}
	assert_true(k8sev_corr_size(c) <= K8SEV_AGG_MAX);
	k8sev_corr_free(c);
}

/* An entry with a write pending stays (it is neither pruned nor started anew after the
 * window) until its write is no longer pending */
static void test_pending_kept(void **state)
{
	struct k8sev_corr *c = k8sev_corr_new();
	struct k8sev_entry *e = k8sev_correlate(c, &src, NOW), *again;

	assert_null(k8sev_pend(c, e));
	assert_null(k8sev_pend(c, e)); /* already pending: nothing changes */
	assert_int_equal(k8sev_corr_pending(c), 1);
	again = k8sev_correlate(c, &src, NOW + K8SEV_AGG_WINDOW + 60);
	assert_ptr_equal(again, e);
	assert_int_equal(e->count, 2);
	k8sev_unpend(c, e);
	k8sev_unpend(c, e);
	assert_int_equal(k8sev_corr_pending(c), 0);
	again = k8sev_correlate(c, &src, NOW + 2 * K8SEV_AGG_WINDOW + 120);
	assert_int_equal(again->count, 1); /* quiet for the window, nothing pending: anew */
	k8sev_corr_free(c);
}

/* A flood of distinct Events, every one with a write pending (none written: the API server
 * is under pressure): no more than K8SEV_PENDING_MAX stay pending, the one given up each
 * time is the oldest not at the client, and the logger cache, pending entries included,
 * stays within K8SEV_AGG_MAX. */
static void test_pending_bounded(void **state)
{
	struct k8sev_corr *c = k8sev_corr_new();
	struct k8sev_entry **ents, *e, *old;
	struct k8sev_src x = src;
	char pool[64];
	int i, nold = 0, nout = 8, n = 2 * K8SEV_AGG_MAX;

	ents = calloc((size_t)n, sizeof *ents);
	assert_non_null(ents);
	for (i = 0; i < n; i++) {
		snprintf(pool, sizeof pool, "p%d", i);
		x.pool = pool;
		e = k8sev_correlate(c, &x, NOW + i * 0.01);
		e->out = i < nout; /* the first ones went to the client */
		ents[i] = e;
		old = k8sev_pend(c, e);
		if (i < K8SEV_PENDING_MAX) {
			assert_null(old);
		} else {
			/* the oldest pending, the ones out skipped */
			assert_ptr_equal(old, ents[nout + nold]);
			assert_false(old->pending);
			nold++;
		}
		assert_true(k8sev_corr_pending(c) <= K8SEV_PENDING_MAX);
		assert_true(k8sev_corr_size(c) <= K8SEV_AGG_MAX);
	}
	assert_int_equal(nold, n - K8SEV_PENDING_MAX);
	assert_int_equal(k8sev_corr_pending(c), K8SEV_PENDING_MAX);
	for (i = 0; i < nout; i++)
		assert_true(ents[i]->pending); /* never given up while out */
	free(ents);
	k8sev_corr_free(c);
}

/* The caches full (K8SEV_AGG_MAX distinct Events of as many pools, each with its aggregation
 * record and spam bucket, about 2 MB) take next to nothing from glibc's heap: their records
 * live in slabs, apart from the short-lived allocations that left them in holes (issue 9).
 * The hash tables' arrays (327 KB each) are mapped for themselves, as in the stages, which
 * fix glibc's mmap threshold (kube_malloc_setup). */
static void test_caches_off_heap(void **state)
{
#ifdef ASAN
	skip(); /* ASan's allocator is not glibc's */
#else
	struct k8sev_corr *c = k8sev_corr_new();
	struct k8sev_src x = src;
	char pool[64], msg[96];
	size_t before;
	long grew;
	int i;

	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	before = mallinfo2().uordblks;
	for (i = 0; i < K8SEV_AGG_MAX; i++) {
		snprintf(pool, sizeof pool, "pool-%d", i);
		snprintf(msg, sizeof msg, "Created virtual machine: pool-%d-%08x", i, (unsigned)i);
		x.pool = pool;
		x.message = msg;
		k8sev_spam_take(c, k8sev_correlate(c, &x, NOW + i * 0.001), NOW + i * 0.001);
	}
	assert_int_equal(k8sev_corr_size(c), K8SEV_AGG_MAX);
	grew = (long)mallinfo2().uordblks - (long)before;
	printf("heap in use grew by %ld bytes for %d Events\n", grew, K8SEV_AGG_MAX);
	assert_true(grew < 256 * 1024);
	k8sev_corr_free(c);
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_name),
	    cmocka_unit_test(test_build),
	    cmocka_unit_test(test_dedupe),
	    cmocka_unit_test(test_aggregate),
	    cmocka_unit_test(test_spam),
	    cmocka_unit_test(test_corr_bounded),
	    cmocka_unit_test(test_pending_kept),
	    cmocka_unit_test(test_pending_bounded),
	    cmocka_unit_test(test_caches_off_heap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

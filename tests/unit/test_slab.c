/*
 * test_slab.c: common/slab.c. Every size up to SLAB_MAX_SIZE gets a zeroed, 16-aligned block
 * of at least that size that no other live block overlaps; a freed slot is the next one of
 * its class; a slab that empties is unmapped unless it is its class's last; sizes above the
 * largest class come from malloc; destroy unmaps what is left. Under ASan (make unit) a
 * freed slot is poisoned: test_poisoned checks that with ASan's own query. Sparse slabs are
 * emptied by moving what lives there (test_evacuate).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "slab.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

/* every size 1..SLAB_MAX_SIZE, each block filled with its own byte: no two overlap, all
 * zeroed on arrival, aligned */
static void test_sizes(void **state)
{
	static unsigned char *p[SLAB_MAX_SIZE + 1];
	struct slabs *set = slabs_new();
	struct slabs_stats st;
	size_t n, i;

	(void)state;
	for (n = 1; n <= SLAB_MAX_SIZE; n++) {
		p[n] = slabs_alloc(set, n);
		assert_int_equal((uintptr_t)p[n] % 16, 0);
		for (i = 0; i < n; i++)
			assert_int_equal(p[n][i], 0);
		memset(p[n], (int)(n & 0xff), n);
	}
	for (n = 1; n <= SLAB_MAX_SIZE; n++)
		for (i = 0; i < n; i++)
			assert_int_equal(p[n][i], n & 0xff);
	slabs_stats(set, &st);
	assert_true(st.used >= (size_t)SLAB_MAX_SIZE * (SLAB_MAX_SIZE + 1) / 2);
	/* the classes round up by at most an eighth (16 bytes below 256) */
	assert_true(st.used <= (size_t)SLAB_MAX_SIZE * (SLAB_MAX_SIZE + 1) / 2 * 9 / 8 + 16 * 256);
	assert_true(st.mapped >= st.used);
	for (n = 1; n <= SLAB_MAX_SIZE; n++)
		slabs_free(set, p[n], n);
	slabs_stats(set, &st);
	assert_int_equal(st.used, 0);
	slabs_destroy(set);
}

/* a replacement takes the slot its predecessor left, zeroed again */
static void test_reuse(void **state)
{
	struct slabs *set = slabs_new();
	unsigned char *a, *b, *c;

	(void)state;
	a = slabs_alloc(set, 300);
	b = slabs_alloc(set, 300);
	memset(a, 7, 300);
	slabs_free(set, a, 300);
	c = slabs_alloc(set, 290); /* the same class (288 < n <= 320) */
	assert_ptr_equal(c, a);
	assert_int_equal(c[0], 0);
	assert_int_equal(c[289], 0);
	slabs_free(set, b, 300);
	slabs_free(set, c, 290);
	slabs_destroy(set);
}

/* 10,000 records of 400 bytes, then all but every 100th freed: the slabs that emptied are
 * unmapped, the mapped figure follows what is in use; then they all go */
static void test_unmap(void **state)
{
	enum { N = 10000, SZ = 400 };
	static void *p[N];
	struct slabs *set = slabs_new();
	struct slabs_stats full, thin, none;
	int i;

	(void)state;
	for (i = 0; i < N; i++)
		p[i] = slabs_alloc(set, SZ);
	slabs_stats(set, &full);
	assert_true(full.mapped >= (size_t)N * SZ);
	assert_true(full.mapped <= (size_t)N * 448 * 11 / 10 + SLAB_SIZE);
	/* free all but the last 100: whole slabs empty, the 100 keep the slabs they span */
	for (i = 0; i < N - 100; i++)
		slabs_free(set, p[i], SZ);
	slabs_stats(set, &thin);
	assert_true(thin.slabs <= 100 / (SLAB_SIZE / 448) + 2);
	assert_true(thin.mapped < full.mapped / 10);
	for (; i < N; i++)
		slabs_free(set, p[i], SZ);
	slabs_stats(set, &none);
	assert_int_equal(none.used, 0);
	assert_int_equal(none.slabs, 1); /* the class keeps one */
	slabs_destroy(set);
}

/* above SLAB_MAX_SIZE: malloc's, zeroed, no slab mapped for it */
static void test_large(void **state)
{
	struct slabs *set = slabs_new();
	struct slabs_stats st;
	unsigned char *p;

	(void)state;
	p = slabs_alloc(set, SLAB_MAX_SIZE + 1);
	assert_int_equal(p[SLAB_MAX_SIZE], 0);
	slabs_stats(set, &st);
	assert_int_equal(st.slabs, 0);
	slabs_free(set, p, SLAB_MAX_SIZE + 1);
	slabs_free(set, NULL, 10);
	slabs_destroy(set);
}

/* destroy with blocks still in use unmaps them all (no leak report under ASan) */
static void test_destroy_live(void **state)
{
	struct slabs *set = slabs_new();
	int i;

	(void)state;
	for (i = 0; i < 1000; i++)
		(void)slabs_alloc(set, (size_t)(i % 700) + 1);
	slabs_destroy(set);
}

/* a kept buf: exactly its size, a copy, replaced by the next keep, zeroed by its free */
static void test_buf_keep(void **state)
{
	struct slabs *set = slabs_new();
	struct slabs_stats st;
	struct buf b = {0};
	char src[300];

	(void)state;
	memset(src, 'a', sizeof(src));
	slabs_buf_keep(set, &b, src, 100);
	assert_int_equal(b.len, 100);
	assert_int_equal(b.cap, 100);
	src[0] = 'b';
	assert_int_equal(b.data[0], 'a');
	slabs_buf_keep(set, &b, src, 300);
	assert_int_equal(b.len, 300);
	assert_int_equal(b.data[0], 'b');
	slabs_stats(set, &st);
	assert_int_equal(st.used, 320); /* 300 in its class of 320; the first one given back */
	slabs_buf_free(set, &b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	slabs_stats(set, &st);
	assert_int_equal(st.used, 0);
	slabs_buf_free(set, &b); /* twice: nothing */
	slabs_destroy(set);
}

static void test_poisoned(void **state)
{
#if defined(__SANITIZE_ADDRESS__)
	struct slabs *set = slabs_new();
	char *a = slabs_alloc(set, 100);

	(void)state;
	assert_int_equal(__asan_address_is_poisoned(a), 0);
	assert_int_equal(__asan_address_is_poisoned(a + 99), 0);
	slabs_free(set, a, 100);
	assert_int_not_equal(__asan_address_is_poisoned(a), 0);
	assert_int_not_equal(__asan_address_is_poisoned(a + 99), 0);
	a = slabs_alloc(set, 100);
	assert_int_equal(__asan_address_is_poisoned(a + 50), 0);
	slabs_free(set, a, 100);
	slabs_destroy(set);
#else
	(void)state;
	skip();
#endif
}

/* slabs_evacuate_begin marks the emptiest slabs whose slots fit in the others' free ones (at
 * most half full, never the last); no allocation comes from a marked slab, which is unmapped
 * once emptied; slabs_evacuate_end puts what was not emptied back in use */
static void test_evacuate(void **state)
{
	enum { N = 4096 };
	static void *p[N];
	struct slabs *set = slabs_new();
	struct slabs_stats st0, st1;
	void *q;
	size_t i, per, marked;

	(void)state;
	for (i = 0; i < N; i++)
		p[i] = slabs_alloc(set, 64);
	per = (SLAB_SIZE - 64) / 64;                    /* slots a slab, about */
	assert_int_equal(slabs_evacuate_begin(set), 0); /* all full: nothing to do */
	slabs_evacuate_end(set);
	for (i = 0; i < N; i++) { /* one in eight stays */
		if (i % 8 != 0) {
			slabs_free(set, p[i], 64);
			p[i] = NULL;
		}
	}
	slabs_stats(set, &st0);
	marked = slabs_evacuate_begin(set);
	assert_true(marked > 0 && marked < st0.slabs);
	for (i = 0; i < per; i++) { /* new ones never land in a marked slab */
		q = slabs_alloc(set, 64);
		assert_false(slabs_evacuating(set, q));
		slabs_free(set, q, 64);
	}
	for (i = 0; i < N; i++) { /* moved: a new slot, the old one freed */
		if (p[i] != NULL && slabs_evacuating(set, p[i])) {
			q = slabs_alloc(set, 64);
			assert_false(slabs_evacuating(set, q));
			slabs_free(set, p[i], 64);
			p[i] = q;
		}
	}
	slabs_evacuate_end(set);
	slabs_stats(set, &st1);
	assert_int_equal(st1.used, st0.used);
	assert_int_equal(st1.slabs, st0.slabs - marked);
	assert_int_equal(slabs_evacuate_begin(set), 0); /* what is left is full enough */
	slabs_evacuate_end(set);
	/* marked and left as it was: back in use */
	for (i = 0; i < N; i++) {
		if (p[i] != NULL && i % 16 == 0) {
			slabs_free(set, p[i], 64);
			p[i] = NULL;
		}
	}
	marked = slabs_evacuate_begin(set);
	slabs_evacuate_end(set);
	for (i = 0; i < N; i++)
		if (p[i] != NULL)
			slabs_free(set, p[i], 64);
	slabs_stats(set, &st1);
	assert_int_equal(st1.used, 0);
	assert_int_equal(st1.slabs, 1); /* kept at the last free... */
	assert_int_equal(slabs_evacuate_begin(set), 0);
	slabs_evacuate_end(set);
	slabs_stats(set, &st1);
	assert_int_equal(st1.slabs, 0); /* ...and given back by the next compaction */
	slabs_destroy(set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sizes),
	    cmocka_unit_test(test_reuse),
	    cmocka_unit_test(test_unmap),
	    cmocka_unit_test(test_large),
	    cmocka_unit_test(test_destroy_live),
	    cmocka_unit_test(test_buf_keep),
	    cmocka_unit_test(test_poisoned),
	    cmocka_unit_test(test_evacuate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_backoff.c: exponential backoff and token bucket arithmetic with a hand-driven clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backoff.h"

#define EPS 1e-9

static void test_backoff_doubles_to_cap(void **state)
{
	struct backoff b;

	backoff_init(&b, 0.5, 5);
	assert_float_equal(backoff_next(&b), 0.5, EPS);
	assert_float_equal(backoff_next(&b), 1, EPS);
	assert_float_equal(backoff_next(&b), 2, EPS);
	assert_float_equal(backoff_next(&b), 4, EPS);
	assert_float_equal(backoff_next(&b), 5, EPS);
	assert_float_equal(backoff_next(&b), 5, EPS);
}

static void test_backoff_reset(void **state)
{
	struct backoff b;

	backoff_init(&b, 1, 60);
	backoff_next(&b);
	backoff_next(&b);
	assert_float_equal(backoff_next(&b), 4, EPS);
	backoff_reset(&b);
	assert_float_equal(backoff_next(&b), 1, EPS);
	assert_float_equal(backoff_next(&b), 2, EPS);
}

static void test_backoff_cap_below_base(void **state)
{
	struct backoff b;

	backoff_init(&b, 2, 1);
	assert_float_equal(backoff_next(&b), 2, EPS);
	assert_float_equal(backoff_next(&b), 2, EPS);
}

static void test_tb_burst_then_rate(void **state)
{
	struct tokenbucket tb;
	int i;

	tb_init(&tb, 10, 3, 100);
	for (i = 0; i < 3; i++)
		assert_float_equal(tb_take(&tb, 100), 0, EPS);
	/* bucket empty: each further take is reserved 1/rate later than the previous */
	assert_float_equal(tb_take(&tb, 100), 0.1, EPS);
	assert_float_equal(tb_take(&tb, 100), 0.2, EPS);
	assert_float_equal(tb_take(&tb, 100), 0.3, EPS);
	/* 0.3 s later the debt is paid off: the next token is 0.1 s away */
	assert_float_equal(tb_take(&tb, 100.3), 0.1, EPS);
}

/* tb_wait only looks: no token taken, no debt */
static void test_tb_wait(void **state)
{
	struct tokenbucket tb;

	tb_init(&tb, 2, 2, 0);
	assert_float_equal(tb_wait(&tb, 0), 0, EPS);
	assert_float_equal(tb_wait(&tb, 0), 0, EPS); /* still there */
	assert_float_equal(tb_take(&tb, 0), 0, EPS);
	assert_float_equal(tb_take(&tb, 0), 0, EPS);
	assert_float_equal(tb_wait(&tb, 0), 0.5, EPS);
	assert_float_equal(tb_wait(&tb, 0.25), 0.25, EPS);
	assert_float_equal(tb_wait(&tb, 0.5), 0, EPS);
	tb_init(&tb, 0, 1, 0); /* unlimited */
	assert_float_equal(tb_wait(&tb, 0), 0, EPS);
}

static void test_tb_refill_capped_at_burst(void **state)
{
	struct tokenbucket tb;
	int i;

	tb_init(&tb, 2, 4, 0);
	for (i = 0; i < 4; i++)
		assert_float_equal(tb_take(&tb, 0), 0, EPS);
	/* a long idle period refills only up to the burst */
	for (i = 0; i < 4; i++)
		assert_float_equal(tb_take(&tb, 1000), 0, EPS);
	assert_float_equal(tb_take(&tb, 1000), 0.5, EPS);
}

static void test_tb_partial_refill(void **state)
{
	struct tokenbucket tb;

	tb_init(&tb, 4, 1, 10);
	assert_float_equal(tb_take(&tb, 10), 0, EPS);
	/* 0.125 s gives half a token: the rest arrives 0.125 s later */
	assert_float_equal(tb_take(&tb, 10.125), 0.125, EPS);
	/* clock going backwards refills nothing */
	assert_float_equal(tb_take(&tb, 9), 0.375, EPS);
}

static void test_tb_unlimited(void **state)
{
	struct tokenbucket tb;
	int i;

	tb_init(&tb, 0, 1, 0);
	for (i = 0; i < 1000; i++)
		assert_float_equal(tb_take(&tb, 0), 0, EPS);
	tb_init(&tb, -1, 1, 0);
	assert_float_equal(tb_take(&tb, 0), 0, EPS);
	assert_float_equal(tb_take(&tb, 0), 0, EPS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_backoff_doubles_to_cap),
	    cmocka_unit_test(test_backoff_reset),
	    cmocka_unit_test(test_backoff_cap_below_base),
	    cmocka_unit_test(test_tb_burst_then_rate),
	    cmocka_unit_test(test_tb_refill_capped_at_burst),
	    cmocka_unit_test(test_tb_wait),
	    cmocka_unit_test(test_tb_partial_refill),
	    cmocka_unit_test(test_tb_unlimited),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

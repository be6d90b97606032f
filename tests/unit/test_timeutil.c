/* test_timeutil.c: RFC 3339 parsing and formatting, and the clocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "timeutil.h"

#define EPS 1e-6

static void test_parse_utc(void **state)
{
	assert_float_equal(rfc3339_parse("1970-01-01T00:00:00Z"), 0, EPS);
	assert_float_equal(rfc3339_parse("2006-01-02T15:04:05Z"), 1136214245, EPS);
	assert_float_equal(rfc3339_parse("2024-02-29T00:00:00Z"), 1709164800, EPS);
	assert_float_equal(rfc3339_parse("2006-01-02t15:04:05z"), 1136214245, EPS);
}

static void test_parse_fraction_offset(void **state)
{
	assert_float_equal(rfc3339_parse("2006-01-02T15:04:05.5Z"), 1136214245.5, EPS);
	assert_float_equal(rfc3339_parse("2006-01-02T15:04:05.123456Z"), 1136214245.123456, EPS);
	/* 17:04:05+02:00 is 15:04:05Z */
	assert_float_equal(rfc3339_parse("2006-01-02T17:04:05+02:00"), 1136214245, EPS);
	assert_float_equal(rfc3339_parse("2006-01-02T07:34:05-07:30"), 1136214245, EPS);
	assert_float_equal(rfc3339_parse("2006-01-02T15:04:05.25+00:00"), 1136214245.25, EPS);
}

static void test_parse_rejects(void **state)
{
	static const char *bad[] = {
	    "",
	    "junk",
	    "2006-01-02",
	    "2006-01-02T15:04:05",   /* no zone */
	    "2006-01-02T15:04:05ZZ", /* trailing junk */
	    "2006-01-02T15:04:05Z ",
	    "2006-01-02T15:04Z",
	    "2006-1-02T15:04:05Z",
	    "2006-13-02T15:04:05Z",
	    "2006-00-02T15:04:05Z",
	    "2006-02-29T15:04:05Z", /* not a leap year */
	    "2006-04-31T15:04:05Z",
	    "2006-01-02T24:04:05Z",
	    "2006-01-02T15:60:05Z",
	    "2006-01-02T15:04:05.Z", /* fraction without digits */
	    "2006-01-02T15:04:05+0200",
	    "2006-01-02T15:04:05+02",
	    "2006-01-02T15:04:05+24:00",
	    "2006-01-02X15:04:05Z",
	    " 2006-01-02T15:04:05Z",
	};
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (rfc3339_parse(bad[i]) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	assert_float_equal(rfc3339_parse(NULL), -1, EPS);
}

static void test_format(void **state)
{
	char out[32];

	rfc3339_format(0, out);
	assert_string_equal(out, "1970-01-01T00:00:00Z");
	rfc3339_format(1136214245.999, out); /* seconds only: truncated, not rounded */
	assert_string_equal(out, "2006-01-02T15:04:05Z");
	rfc3339_format(1709164800, out);
	assert_string_equal(out, "2024-02-29T00:00:00Z");
}

static void test_round_trip(void **state)
{
	static const char *good[] = {
	    "2006-01-02T15:04:05Z",
	    "1999-12-31T23:59:59Z",
	    "2026-11-24T01:02:03Z",
	    "2100-03-01T00:00:00Z",
	};
	char out[32];
	double t;
	size_t i;

	for (i = 0; i < sizeof good / sizeof good[0]; i++) {
		rfc3339_format(rfc3339_parse(good[i]), out);
		assert_string_equal(out, good[i]);
	}
	for (t = 0; t < 4e9; t += 123456789) {
		rfc3339_format(t, out);
		assert_float_equal(rfc3339_parse(out), t, EPS);
	}
}

static void test_clocks(void **state)
{
	double m1 = now_mono(), m2 = now_mono();
	double r = now_real();

	assert_true(m2 >= m1);
	assert_true(r > 1.6e9); /* after 2020 */
}

/* tu_floor and tu_ceil agree with libm's floor and ceil (this test links libm) */
static void test_floor_ceil(void **state)
{
	static const double xs[] = {0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 1.999, -1.999, 2.5, -2.5,
	    1764782400.123456, -1764782400.123456, 4503599627370495.5, 9007199254740992.0,
	    -9007199254740992.0, 1e18, -1e18};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(xs) / sizeof(xs[0]); i++) {
		assert_true(tu_floor(xs[i]) == floor(xs[i]));
		assert_true(tu_ceil(xs[i]) == ceil(xs[i]));
	}
}

static void test_secs_to_tv(void **state)
{
	struct timeval tv;

	(void)state;
	tv = secs_to_tv(1.25);
	assert_int_equal(tv.tv_sec, 1);
	assert_int_equal(tv.tv_usec, 250000);
	tv = secs_to_tv(-3);
	assert_int_equal(tv.tv_sec, 0);
	assert_int_equal(tv.tv_usec, 0);
	tv = secs_to_tv(0.0000004);
	assert_int_equal(tv.tv_sec, 0);
	assert_true(tv.tv_usec >= 0 && tv.tv_usec < 1000000);
	tv = secs_to_tv(86400.5);
	assert_int_equal(tv.tv_sec, 86400);
	assert_int_equal(tv.tv_usec, 500000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_secs_to_tv),
	    cmocka_unit_test(test_floor_ceil),
	    cmocka_unit_test(test_parse_utc),
	    cmocka_unit_test(test_parse_fraction_offset),
	    cmocka_unit_test(test_parse_rejects),
	    cmocka_unit_test(test_format),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_clocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

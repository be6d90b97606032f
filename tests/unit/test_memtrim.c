/*
 * test_memtrim.c: memtrim_check gives the free pages inside the heap back (VmRSS drops) when
 * enough is free and that changed, and leaves an unchanged heap alone. glibc's allocator is
 * what it trims: under ASan (whose allocator replaces it) the RSS checks are skipped, so
 * `make unit` also runs this program from the release build (build/rel).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../support/asan.h"
#include "memtrim.h"

#define HOLES 1500
#define HOLE  (16 * 1024) /* freed: whole pages inside the heap */
#define KEEP  64          /* kept between them: the heap top cannot shrink past them */

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static void test_trim(void **state)
{
	static char *hole[HOLES], *keep[HOLES];
	size_t free_after, again;
	long before, after;
	int i, trimmed;

	(void)state;
	for (i = 0; i < HOLES; i++) {
		hole[i] = malloc(HOLE);
		keep[i] = malloc(KEEP);
		assert_non_null(hole[i]);
		assert_non_null(keep[i]);
		memset(hole[i], 1, HOLE); /* resident */
	}
	for (i = 0; i < HOLES; i++)
		free(hole[i]);
	before = rss_kb();
#ifdef ASAN
	free_after = memtrim_check(MEMTRIM_MIN_FREE, 0, &trimmed);
	print_message("ASan build: the allocator is not glibc's (%zu bytes free in glibc's heap, "
	              "VmRSS %ld kB); RSS checks skipped\n",
	    free_after, before);
	(void)after;
	(void)again;
#else
	/* more free than asked for, but no change since the "last trim": left alone */
	free_after =
	    memtrim_check(MEMTRIM_MIN_FREE, memtrim_check(SIZE_MAX, 0, &trimmed), &trimmed);
	assert_false(trimmed);
	assert_true(rss_kb() >= before - 1024);
	/* less free than the minimum: left alone */
	memtrim_check((size_t)HOLES * HOLE * 2, 0, &trimmed);
	assert_false(trimmed);
	free_after = memtrim_check(MEMTRIM_MIN_FREE, 0, &trimmed);
	assert_true(trimmed);
	after = rss_kb();
	print_message("VmRSS %ld -> %ld kB, %zu bytes free in the heap after the trim\n", before,
	    after, free_after);
	/* 1,500 holes of 16 KB: each gives back at least 2 of its 4 pages (3 here) */
	assert_true(before - after >= HOLES * 8);
	/* nothing moved since: no trim */
	again = memtrim_check(MEMTRIM_MIN_FREE, free_after, &trimmed);
	assert_false(trimmed);
	assert_int_equal(again, free_after);
#endif
	for (i = 0; i < HOLES; i++)
		free(keep[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_trim),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

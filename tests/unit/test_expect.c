/* test_expect.c: expectations (planner/expect.c) with an injected clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../planner/planner.h"

#define KEY "ns/p"

static json_object *vm(const char *name, const char *uid, const char *rv, int terminating)
{
	char buf[512];

	snprintf(buf, sizeof(buf),
	    "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"ns\",\"uid\":\"%s\","
	    "\"resourceVersion\":\"%s\"%s}}",
	    name, uid, rv, terminating ? ",\"deletionTimestamp\":\"2024-01-01T00:00:00Z\"" : "");
	return json_tokener_parse(buf);
}

static void test_create_until_seen(void **state)
{
	struct expect *e = expect_new(300);
	json_object *vms[1];

	expect_add(e, 1, KEY, EXPECT_CREATE, "p-0", "create_vm", NULL, 10);
	assert_int_equal(expect_scale_pending(e, KEY, 11), 1);
	assert_true(expect_create_pending(e, KEY, "p-0", 11));
	assert_false(expect_create_pending(e, KEY, "p-1", 11));
	assert_false(expect_create_pending(e, "ns/q", "p-0", 11));
	/* the RESULT alone does not satisfy it */
	assert_int_equal(expect_result(e, 1, 1), 1);
	expect_settle(e, KEY, NULL, NULL, 0, 12);
	assert_int_equal(expect_scale_pending(e, KEY, 12), 1);
	/* a VM of that name (whatever its uid) does */
	vms[0] = vm("p-0", "u0", "1", 0);
	expect_settle(e, KEY, NULL, vms, 1, 13);
	assert_int_equal(expect_scale_pending(e, KEY, 13), 0);
	assert_int_equal(expect_count(e), 0);
	json_object_put(vms[0]);
	expect_free(e);
}

static void test_delete_until_gone_or_terminating(void **state)
{
	struct expect *e = expect_new(300);
	json_object *vms[2];

	vms[0] = vm("p-0", "u0", "1", 0);
	vms[1] = vm("p-1", "u1", "1", 1);
	expect_add(e, 1, KEY, EXPECT_DELETE, "u0", "delete_vm", NULL, 10);
	expect_add(e, 2, KEY, EXPECT_DELETE, "u1", "delete_vm", NULL, 10);
	expect_add(e, 3, KEY, EXPECT_DELETE, "u2", "delete_vm", NULL, 10);
	expect_settle(e, KEY, NULL, vms, 2, 11);
	/* u1 terminating and u2 gone are done; u0 still there */
	assert_int_equal(expect_scale_pending(e, KEY, 11), 1);
	json_object_put(vms[0]);
	vms[0] = vm("p-0", "u0", "2", 1);
	expect_settle(e, KEY, NULL, vms, 2, 12);
	assert_int_equal(expect_scale_pending(e, KEY, 12), 0);
	json_object_put(vms[0]);
	json_object_put(vms[1]);
	expect_free(e);
}

/* a delete that also removes the finalizer: terminating is not enough, its RESULT is needed
 * (until then the planner leaves the VM alone); an unknown outcome falls back to the watch */
static void test_delete_needs_result(void **state)
{
	struct expect *e = expect_new(300);
	json_object *vms[1];

	vms[0] = vm("p-0", "u0", "2", 1);
	expect_add(e, 1, KEY, EXPECT_DELETE, "u0", "delete_vm", NULL, 10);
	expect_needs_result(e, 1);
	expect_settle(e, KEY, NULL, vms, 1, 11);
	assert_int_equal(expect_delete_pending(e, "u0", 11), 1);
	expect_result_rv(e, 1, 1, "3", 1); /* the patch took the last finalizer: gone */
	expect_settle(e, KEY, NULL, vms, 1, 12);
	assert_int_equal(expect_delete_pending(e, "u0", 12), 1); /* until the cache agrees */
	expect_settle(e, KEY, NULL, vms, 0, 12);
	assert_int_equal(expect_delete_pending(e, "u0", 12), 0);
	expect_add(e, 3, KEY, EXPECT_DELETE, "u0", "delete_vm", NULL, 12);
	expect_needs_result(e, 3);
	expect_result(e, 3, 1); /* the patch failed: terminating settles it, the planner strips */
	expect_settle(e, KEY, NULL, vms, 1, 12);
	assert_int_equal(expect_delete_pending(e, "u0", 12), 0);
	expect_add(e, 2, KEY, EXPECT_DELETE, "u0", "delete_vm", NULL, 13);
	expect_needs_result(e, 2);
	expect_unknown(e, 2);
	expect_settle(e, KEY, NULL, vms, 1, 14);
	assert_int_equal(expect_delete_pending(e, "u0", 14), 0);
	json_object_put(vms[0]);
	expect_free(e);
}

/* the API answered with the patched object's resourceVersion: another writer's version in
 * between (rv 7) does not settle it, ours (9) or a later one does */
static void test_patch_waits_for_its_own_rv(void **state)
{
	struct expect *e = expect_new(300);
	json_object *vms[1];
	const char *seen[] = {"7", "9", "10"};
	int want[] = {1, 0, 0}, k;

	/* a strip of the last finalizer: the API removes the VM and answers with an older
	 * version; only the VM's absence settles it */
	vms[0] = vm("p-0", "u0", "12", 0);
	expect_add(e, 1, KEY, EXPECT_PATCH, "u0", "patch_vm", "5", 10);
	assert_true(expect_result_rv(e, 1, 1, "5", 1));
	expect_settle(e, KEY, NULL, vms, 1, 11);
	assert_true(expect_patch_pending(e, "u0", "patch_vm", 11));
	expect_settle(e, KEY, NULL, vms, 0, 12);
	assert_int_equal(expect_count(e), 0);
	json_object_put(vms[0]);
	for (k = 0; k < 3; k++) {
		vms[0] = vm("p-0", "u0", "5", 0);
		expect_add(e, 1, KEY, EXPECT_PATCH, "u0", "patch_vm", "5", 10);
		assert_true(expect_result_rv(e, 1, 1, "9", 0));
		json_object_put(vms[0]);
		vms[0] = vm("p-0", "u0", seen[k], 0);
		expect_settle(e, KEY, NULL, vms, 1, 11);
		assert_int_equal(expect_patch_pending(e, "u0", "patch_vm", 11), want[k]);
		expect_settle(e, KEY, NULL, vms, 0, 12); /* gone: done */
		assert_int_equal(expect_count(e), 0);
		json_object_put(vms[0]);
	}
	expect_free(e);
}

static void test_patch_needs_result_and_new_rv(void **state)
{
	struct expect *e = expect_new(300);
	json_object *vms[1], *pool;

	vms[0] = vm("p-0", "u0", "5", 0);
	pool = vm("p", "pu", "7", 0);
	expect_add(e, 1, KEY, EXPECT_PATCH, "u0", "patch_vm", "5", 10);
	expect_add(e, 2, KEY, EXPECT_PATCH, "pu", "patch_pool", "7", 10);
	assert_true(expect_patch_pending(e, "u0", "patch_vm", 11));
	assert_false(expect_patch_pending(e, "u0", "patch_pool", 11));
	assert_true(expect_patch_pending(e, "pu", "patch_pool", 11));
	/* patches do not gate scaling */
	assert_int_equal(expect_scale_pending(e, KEY, 11), 0);
	/* new rv without a RESULT: still pending */
	json_object_put(vms[0]);
	vms[0] = vm("p-0", "u0", "6", 0);
	expect_settle(e, KEY, pool, vms, 1, 12);
	assert_true(expect_patch_pending(e, "u0", "patch_vm", 12));
	/* RESULT ok + new rv: done; the pool's rv is unchanged: pending */
	expect_result(e, 1, 1);
	expect_result(e, 2, 1);
	expect_settle(e, KEY, pool, vms, 1, 13);
	assert_false(expect_patch_pending(e, "u0", "patch_vm", 13));
	assert_true(expect_patch_pending(e, "pu", "patch_pool", 13));
	/* the pool gone: done */
	expect_settle(e, KEY, NULL, vms, 1, 14);
	assert_int_equal(expect_count(e), 0);
	json_object_put(vms[0]);
	json_object_put(pool);
	expect_free(e);
}

static void test_failed_result_lowers_at_once(void **state)
{
	struct expect *e = expect_new(300);

	expect_add(e, 1, KEY, EXPECT_CREATE, "p-0", "create_vm", NULL, 10);
	expect_add(e, 2, KEY, EXPECT_CREATE, "p-1", "create_vm", NULL, 10);
	assert_int_equal(expect_result(e, 2, 0), 1);
	assert_int_equal(expect_scale_pending(e, KEY, 11), 1);
	assert_false(expect_create_pending(e, KEY, "p-1", 11));
	assert_int_equal(expect_result(e, 99, 0), 0);
	expect_free(e);
}

static void test_ttl(void **state)
{
	struct expect *e = expect_new(300);
	expect_add(e, 1, KEY, EXPECT_CREATE, "p-0", "create_vm", NULL, 10);
	expect_add(e, 2, "ns/q", EXPECT_DELETE, "u", "delete_vm", NULL, 200);
	assert_int_equal(expect_scale_pending(e, KEY, 309), 1);
	assert_int_equal(expect_scale_pending(e, KEY, 310), 0);
	assert_int_equal(expect_expire(e, 310, NULL, NULL), 1);
	assert_int_equal(expect_count(e), 1);
	expect_settle(e, "ns/q", NULL, NULL, 0, 250); /* gone: done */
	assert_int_equal(expect_count(e), 0);
	expect_free(e);
}

static void count_key(const char *key, void *arg)
{
	assert_string_equal(key, KEY);
	(*(int *)arg)++;
}

static void test_expire_reports_pool(void **state)
{
	struct expect *e = expect_new(5);
	int n = 0;

	expect_add(e, 1, KEY, EXPECT_CREATE, "p-0", "create_vm", NULL, 0);
	expect_add(e, 2, KEY, EXPECT_CREATE, "p-1", "create_vm", NULL, 3);
	assert_int_equal(expect_expire(e, 6, count_key, &n), 1);
	assert_int_equal(n, 1);
	assert_true(expect_create_pending(e, KEY, "p-1", 6));
	expect_free(e);
}

static void test_link_lost_and_drop_pool(void **state)
{
	struct expect *e = expect_new(300);

	expect_add(e, 1, KEY, EXPECT_CREATE, "p-0", "create_vm", NULL, 10);
	expect_add(e, 2, KEY, EXPECT_CREATE, "p-1", "create_vm", NULL, 10);
	expect_add(e, 3, "ns/q", EXPECT_DELETE, "u", "delete_vm", NULL, 10);
	expect_add(e, 5, KEY, EXPECT_PATCH, "v", "patch_vm", "7", 10);
	expect_add(e, 6, KEY, EXPECT_PATCH, "w", "patch_vm", "7", 10);
	expect_result(e, 1, 1);
	expect_result(e, 6, 1);
	/* the outcome of every action without a RESULT is unknown: creates and deletes stay
	 * expected (they are sent again), only the patch still waiting is forgotten */
	assert_int_equal(expect_link_lost(e), 1);
	assert_true(expect_create_pending(e, KEY, "p-0", 11));
	assert_true(expect_create_pending(e, KEY, "p-1", 11));
	assert_true(expect_delete_pending(e, "u", 11));
	assert_false(expect_patch_pending(e, "v", NULL, 11));
	assert_true(expect_patch_pending(e, "w", NULL, 11));
	expect_add(e, 4, "ns/q", EXPECT_DELETE, "u", "delete_vm", NULL, 10);
	expect_drop_pool(e, KEY);
	assert_int_equal(expect_count(e), 2);
	assert_int_equal(expect_scale_pending(e, "ns/q", 11), 2);
	expect_free(e);
}

/* a lost answer is not a failure: a delete stays expected, so no pass picks another victim
 * for it, until the cache shows the VM gone (or the TTL); a patch is simply planned again */
static void test_unknown_outcome(void **state)
{
	struct expect *e = expect_new(300);
	json_object *v = vm("p-0", "u0", "5", 0);

	expect_add(e, 1, KEY, EXPECT_DELETE, "u0", "delete_vm", NULL, 10);
	expect_add(e, 2, KEY, EXPECT_CREATE, "p-1", "create_vm", NULL, 10);
	expect_add(e, 3, KEY, EXPECT_PATCH, "u0", "patch_vm", "5", 10);
	expect_unknown(e, 1);
	expect_unknown(e, 2);
	expect_unknown(e, 3);
	expect_unknown(e, 99); /* no such action: nothing happens */
	assert_true(expect_delete_pending(e, "u0", 11));
	assert_true(expect_create_pending(e, KEY, "p-1", 11));
	assert_false(expect_patch_pending(e, "u0", NULL, 11));
	assert_int_equal(expect_scale_pending(e, KEY, 11), 2);
	/* the stale cache still shows the VM alive: still pending */
	expect_settle(e, KEY, NULL, &v, 1, 12);
	assert_true(expect_delete_pending(e, "u0", 12));
	/* the watch catches up: gone */
	expect_settle(e, KEY, NULL, NULL, 0, 13);
	assert_false(expect_delete_pending(e, "u0", 13));
	json_object_put(v);
	expect_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_until_seen),
	    cmocka_unit_test(test_delete_until_gone_or_terminating),
	    cmocka_unit_test(test_delete_needs_result),
	    cmocka_unit_test(test_patch_needs_result_and_new_rv),
	    cmocka_unit_test(test_patch_waits_for_its_own_rv),
	    cmocka_unit_test(test_failed_result_lowers_at_once),
	    cmocka_unit_test(test_ttl),
	    cmocka_unit_test(test_expire_reports_pool),
	    cmocka_unit_test(test_link_lost_and_drop_pool),
	    cmocka_unit_test(test_unknown_outcome),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_lease.c: leader election's pure part (common/lease.c) on a hand-driven clock:
 * durations and flag checks, expiry by observed time (never the Lease's timestamps),
 * takeover, renewal deadline, release, the bodies written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "lease.h"
#include "obj.h"

#define EPS 1e-9

static void test_parse_duration(void **state)
{
	double d;

	assert_int_equal(lease_parse_duration("15s", &d), 0);
	assert_float_equal(d, 15, EPS);
	assert_int_equal(lease_parse_duration("1.5s", &d), 0);
	assert_float_equal(d, 1.5, EPS);
	assert_int_equal(lease_parse_duration("500ms", &d), 0);
	assert_float_equal(d, 0.5, EPS);
	assert_int_equal(lease_parse_duration("1m30s", &d), 0);
	assert_float_equal(d, 90, EPS);
	assert_int_equal(lease_parse_duration("2h", &d), 0);
	assert_float_equal(d, 7200, EPS);
	assert_int_equal(lease_parse_duration("0", &d), 0);
	assert_float_equal(d, 0, EPS);
	assert_int_equal(lease_parse_duration("15", &d), -1); /* Go wants a unit */
	assert_int_equal(lease_parse_duration("-1s", &d), -1);
	assert_int_equal(lease_parse_duration("s", &d), -1);
	assert_int_equal(lease_parse_duration("", &d), -1);
	assert_int_equal(lease_parse_duration("10x", &d), -1);
	assert_int_equal(lease_parse_duration("1s ", &d), -1);
	assert_int_equal(lease_parse_duration("99999999999h", &d), -1);
	assert_int_equal(lease_parse_duration(NULL, &d), -1);
}

static void test_cfg_check(void **state)
{
	struct lease_cfg c;
	char err[256];

	lease_cfg_init(&c);
	assert_int_equal(lease_cfg_check(&c, err, sizeof err), 0);
	assert_int_equal(lease_cfg_set(&c, LEASE_OPT_FIRST + 2, "15s"), 0);
	assert_int_equal(lease_cfg_check(&c, err, sizeof err), -1);
	assert_non_null(strstr(err, "shorter than --leader-elect-lease-duration"));
	assert_int_equal(lease_cfg_set(&c, LEASE_OPT_FIRST + 2, "2s"), 0);
	assert_int_equal(lease_cfg_check(&c, err, sizeof err), -1); /* 2 <= 1.2 x 2 */
	assert_non_null(strstr(err, "retry-period"));
	assert_int_equal(lease_cfg_set(&c, LEASE_OPT_FIRST + 3, "0"), 0);
	assert_int_equal(lease_cfg_check(&c, err, sizeof err), -1);
	assert_non_null(strstr(err, "greater than zero"));
	assert_int_equal(lease_cfg_set(&c, LEASE_OPT_FIRST + 1, "-5s"), -1);
	assert_int_equal(lease_cfg_set(&c, LEASE_OPT_FIRST + 4, "Bad_Name"), -1);
	assert_int_equal(lease_cfg_set(&c, LEASE_OPT_FIRST + 4, "shard-a"), 0);
	assert_string_equal(c.name, "shard-a");
	assert_int_equal(lease_cfg_set(&c, LEASE_OPT_FIRST + 5, "-x"), -1);
	assert_int_equal(lease_cfg_set(&c, 999, "x"), -1);
	lease_cfg_clear(&c);
	assert_null(c.name);
}

static void count_flag(const char *flag, const char *val, void *arg)
{
	int *n = arg;

	if (strcmp(flag, "leader-elect") == 0)
		assert_null(val);
	else
		assert_non_null(val);
	(*n)++;
}

static void test_cfg_foreach(void **state)
{
	struct lease_cfg c;
	int n = 0;

	lease_cfg_init(&c);
	lease_cfg_set(&c, LEASE_OPT_FIRST, NULL);
	lease_cfg_set(&c, LEASE_OPT_FIRST + 3, "1s");
	lease_cfg_foreach(&c, count_flag, &n);
	assert_int_equal(n, 2);
	assert_int_equal(c.enabled, 1);
	lease_cfg_clear(&c);
}

static void test_default_name(void **state)
{
	char a[64], b[64];

	lease_default_name(NULL, a, sizeof a);
	assert_string_equal(a, "vmpoold");
	lease_default_name("shard=a", a, sizeof a);
	lease_default_name("shard=b", b, sizeof b);
	assert_int_equal(strlen(a), strlen("vmpoold-") + 8);
	assert_string_not_equal(a, b);
}

/* a Lease as the API would answer */
static json_object *mklease(const char *holder, int dur, const char *renew, long trans, int rv)
{
	char buf[512];

	snprintf(buf, sizeof buf,
	    "{\"metadata\":{\"name\":\"vmpoold\",\"namespace\":\"default\",\"resourceVersion\":"
	    "\"%d\"},\"spec\":{\"holderIdentity\":\"%s\",\"leaseDurationSeconds\":%d,"
	    "\"acquireTime\":\"2020-01-01T00:00:00.000000Z\",\"renewTime\":\"%s\","
	    "\"leaseTransitions\":%ld}}",
	    rv, holder, dur, renew, trans);
	return json_tokener_parse(buf);
}

static void test_absent_then_create(void **state)
{
	struct lease_state st;
	struct lease_cfg c;
	json_object *b;

	lease_cfg_init(&c);
	lease_state_init(&st, "me_1");
	lease_observe(&st, NULL, 100);
	assert_int_equal(st.seen, 1);
	assert_int_equal(lease_decide(&st, 100), LEASE_CREATE);
	b = lease_body(&st, &c, "vmpoold", "default", 1.5e9, 0);
	assert_string_equal(obj_str(b, "spec.holderIdentity"), "me_1");
	assert_null(obj_str(b, "metadata.resourceVersion"));
	assert_string_equal(obj_str(b, "spec.renewTime"), "2017-07-14T02:40:00.000000Z");
	lease_written(&st, b, 100, 100.2);
	assert_int_equal(st.leading, 1);
	assert_float_equal(lease_deadline(&st, &c), 110, EPS);
	json_object_put(b);
}

/* expiry counts from when *we* saw the record change, whatever its timestamps say */
static void test_expiry_by_observed_time(void **state)
{
	struct lease_state st;
	json_object *l1 = mklease("other", 15, "1999-01-01T00:00:00.000000Z", 3, 7);
	json_object *l2 = mklease("other", 15, "1999-01-01T00:00:02.000000Z", 3, 8);

	lease_state_init(&st, "me");
	lease_observe(&st, l1, 1000);
	assert_int_equal(lease_decide(&st, 1000), LEASE_HELD); /* an old renewTime: still held */
	lease_observe(&st, l1, 1010);
	assert_int_equal(lease_decide(&st, 1014.9), LEASE_HELD);
	lease_observe(&st, l2, 1012); /* renewed: the clock starts again */
	assert_int_equal(lease_decide(&st, 1020), LEASE_HELD);
	assert_int_equal(lease_decide(&st, 1026.9), LEASE_HELD);
	lease_observe(&st, l2, 1027);
	assert_int_equal(lease_decide(&st, 1027), LEASE_UPDATE);
	assert_string_equal(st.rv, "8");
	json_object_put(l1);
	json_object_put(l2);
}

static void test_takeover_counts_transition(void **state)
{
	struct lease_state st;
	struct lease_cfg c;
	json_object *l = mklease("other", 15, "x", 3, 7), *b;

	lease_cfg_init(&c);
	lease_state_init(&st, "me");
	lease_observe(&st, l, 0);
	assert_int_equal(lease_decide(&st, 15), LEASE_UPDATE);
	b = lease_body(&st, &c, "vmpoold", "ns1", 1.5e9 + 0.25, 0);
	assert_string_equal(obj_str(b, "metadata.resourceVersion"), "7");
	assert_string_equal(obj_str(b, "metadata.namespace"), "ns1");
	assert_string_equal(obj_str(b, "spec.holderIdentity"), "me");
	assert_string_equal(obj_str(b, "spec.acquireTime"), "2017-07-14T02:40:00.250000Z");
	assert_int_equal(json_object_get_int(obj_path(b, "spec.leaseTransitions")), 4);
	assert_int_equal(json_object_get_int(obj_path(b, "spec.leaseDurationSeconds")), 15);
	json_object_put(b);
	json_object_put(l);
}

/* a renewal keeps acquireTime and transitions; the deadline counts from the send time */
static void test_renew_and_deadline(void **state)
{
	struct lease_state st;
	struct lease_cfg c;
	json_object *l = mklease("me", 15, "r1", 4, 9), *b;

	lease_cfg_init(&c);
	lease_state_init(&st, "me");
	lease_observe(&st, l, 50);
	assert_int_equal(lease_decide(&st, 50), LEASE_UPDATE); /* ours */
	b = lease_body(&st, &c, "vmpoold", "default", 1.5e9, 0);
	assert_string_equal(obj_str(b, "spec.acquireTime"), "2020-01-01T00:00:00.000000Z");
	assert_int_equal(json_object_get_int(obj_path(b, "spec.leaseTransitions")), 4);
	json_object_put(b);
	lease_written(&st, l, 49.5, 50);
	assert_int_equal(st.leading, 1);
	assert_int_equal(lease_overdue(&st, &c, 59.4), 0);
	assert_int_equal(lease_overdue(&st, &c, 59.5), 1);
	/* a standby is never overdue */
	st.leading = 0;
	assert_int_equal(lease_overdue(&st, &c, 100), 0);
	json_object_put(l);
}

/* release: holder "" and 1 s, so a standby takes it at its next attempt */
static void test_release(void **state)
{
	struct lease_state st, other;
	struct lease_cfg c;
	json_object *l = mklease("me", 15, "r1", 4, 9), *b;

	lease_cfg_init(&c);
	lease_state_init(&st, "me");
	lease_observe(&st, l, 0);
	lease_written(&st, l, 0, 0);
	b = lease_body(&st, &c, "vmpoold", "default", 1.5e9, 1);
	assert_string_equal(obj_str(b, "spec.holderIdentity"), "");
	assert_int_equal(json_object_get_int(obj_path(b, "spec.leaseDurationSeconds")), 1);
	assert_int_equal(json_object_get_int(obj_path(b, "spec.leaseTransitions")), 4);
	lease_written(&st, b, 1, 1);
	assert_int_equal(st.leading, 0);
	lease_state_init(&other, "you");
	lease_observe(&other, b, 5);
	assert_int_equal(lease_decide(&other, 5), LEASE_UPDATE);
	json_object_put(b);
	json_object_put(l);
}

static void test_junk_lease(void **state)
{
	struct lease_state st;
	json_object *j = json_tokener_parse("{\"spec\":7}");

	lease_state_init(&st, "me");
	lease_observe(&st, j, 0);
	assert_int_equal(st.exists, 0);
	assert_int_equal(lease_decide(&st, 0), LEASE_CREATE);
	json_object_put(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_duration),
	    cmocka_unit_test(test_cfg_check),
	    cmocka_unit_test(test_cfg_foreach),
	    cmocka_unit_test(test_default_name),
	    cmocka_unit_test(test_absent_then_create),
	    cmocka_unit_test(test_expiry_by_observed_time),
	    cmocka_unit_test(test_takeover_counts_transition),
	    cmocka_unit_test(test_renew_and_deadline),
	    cmocka_unit_test(test_release),
	    cmocka_unit_test(test_junk_lease),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

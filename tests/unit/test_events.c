/* test_events.c: Event building, naming and aggregation (common/k8sevent.c, pure parts). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

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

static void test_aggregate(void **state)
{
	struct k8sev_agg *a = k8sev_agg_new();
	struct k8sev_seen s;
	struct k8sev_src other = src;
	char *first;

	assert_int_equal(k8sev_agg_observe(a, &src, NOW, &s), 0);
	assert_int_equal(s.count, 1);
	first = strdup(s.name);
	/* identical within 10 minutes: patch the same Event */
	assert_int_equal(k8sev_agg_observe(a, &src, NOW + 60, &s), 1);
	assert_int_equal(s.count, 2);
	assert_string_equal(s.name, first);
	assert_true(s.first == NOW);
	assert_int_equal(k8sev_agg_observe(a, &src, NOW + 600, &s), 1);
	assert_int_equal(s.count, 3);
	/* another message or uid: a new Event */
	other.message = "Created VM ns/p-1";
	assert_int_equal(k8sev_agg_observe(a, &other, NOW + 601, &s), 0);
	other = src;
	other.uid = "pu2";
	assert_int_equal(k8sev_agg_observe(a, &other, NOW + 601, &s), 0);
	/* more than 10 minutes after the last one: a new Event */
	assert_int_equal(k8sev_agg_observe(a, &src, NOW + 1201, &s), 0);
	assert_int_equal(s.count, 1);
	assert_string_not_equal(s.name, first);
	/* forget: next one is new */
	k8sev_agg_forget(a, &src);
	assert_int_equal(k8sev_agg_observe(a, &src, NOW + 1202, &s), 0);
	assert_int_equal(k8sev_agg_size(a), 3);
	free(first);
	k8sev_agg_free(a);
}

static void test_agg_bounded(void **state)
{
	struct k8sev_agg *a = k8sev_agg_new();
	struct k8sev_seen s;
	struct k8sev_src x = src;
	char msg[64];
	int i;

	for (i = 0; i < K8SEV_AGG_MAX + 10; i++) {
		snprintf(msg, sizeof msg, "m%d", i);
		x.message = msg;
		k8sev_agg_observe(a, &x, NOW + i, &s);
	}
	assert_true(k8sev_agg_size(a) <= K8SEV_AGG_MAX);
	k8sev_agg_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_name),
	    cmocka_unit_test(test_build),
	    cmocka_unit_test(test_aggregate),
	    cmocka_unit_test(test_agg_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_store.c: the object store (kind -> namespace -> name), references and iteration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store.h"

static json_object *mkobj(const char *ns, const char *name, const char *rv)
{
	char tmp[512];
	json_object *o;

	if (ns != NULL)
		snprintf(tmp, sizeof tmp,
		    "{\"metadata\": {\"namespace\": \"%s\", \"name\": \"%s\", "
		    "\"resourceVersion\": \"%s\"}}",
		    ns, name, rv);
	else
		snprintf(tmp, sizeof tmp,
		    "{\"metadata\": {\"name\": \"%s\", \"resourceVersion\": \"%s\"}}", name, rv);
	o = json_tokener_parse(tmp);
	assert_non_null(o);
	return o;
}

static const char *rv(json_object *o)
{
	json_object *m, *v;

	assert_true(json_object_object_get_ex(o, "metadata", &m));
	assert_true(json_object_object_get_ex(m, "resourceVersion", &v));
	return json_object_get_string(v);
}

static void test_put_get(void **state)
{
	struct store *s = store_new();
	json_object *a = mkobj("ns1", "a", "1"), *old;

	assert_null(store_get(s, "vm", "ns1", "a"));
	assert_null(store_put(s, "vm", a));
	assert_ptr_equal(store_get(s, "vm", "ns1", "a"), a);
	assert_null(store_get(s, "vmi", "ns1", "a"));
	assert_null(store_get(s, "vm", "ns2", "a"));
	assert_null(store_get(s, "vm", "ns1", "b"));

	/* replacing returns the previous value with a reference for the caller */
	old = store_put(s, "vm", mkobj("ns1", "a", "2"));
	assert_ptr_equal(old, a);
	assert_string_equal(rv(old), "1");
	json_object_put(old);
	assert_string_equal(rv(store_get(s, "vm", "ns1", "a")), "2");
	assert_int_equal(store_count(s, "vm"), 1);
	store_free(s);
}

static void test_put_same_pointer(void **state)
{
	struct store *s = store_new();
	json_object *a = mkobj("ns", "a", "1"), *old;

	store_put(s, "vm", a);
	old = store_put(s, "vm", json_object_get(a));
	assert_ptr_equal(old, a);
	json_object_put(old);
	assert_ptr_equal(store_get(s, "vm", "ns", "a"), a);
	store_free(s);
}

static void test_cluster_scoped_and_bad(void **state)
{
	struct store *s = store_new();
	json_object *bad = json_tokener_parse("{\"metadata\": {}}");

	store_put(s, "rev", mkobj(NULL, "c", "1"));
	assert_non_null(store_get(s, "rev", "", "c"));
	assert_non_null(store_get(s, "rev", NULL, "c"));
	/* no name: dropped (and its reference released: ASan checks for the leak) */
	assert_null(store_put(s, "rev", bad));
	assert_int_equal(store_count(s, "rev"), 1);
	store_free(s);
}

static void test_take(void **state)
{
	struct store *s = store_new();
	json_object *t;

	store_put(s, "vm", mkobj("ns", "a", "1"));
	store_put(s, "vm", mkobj("ns", "b", "1"));
	assert_null(store_take(s, "vm", "ns", "zz"));
	assert_null(store_take(s, "vmi", "ns", "a"));
	assert_null(store_take(s, "vm", "other", "a"));
	t = store_take(s, "vm", "ns", "a");
	assert_non_null(t);
	assert_string_equal(rv(t), "1");
	json_object_put(t);
	assert_null(store_get(s, "vm", "ns", "a"));
	assert_int_equal(store_count(s, "vm"), 1);
	t = store_take(s, "vm", "ns", "b");
	json_object_put(t);
	assert_int_equal(store_count(s, "vm"), 0);
	/* the emptied namespace can be filled again */
	store_put(s, "vm", mkobj("ns", "c", "1"));
	assert_int_equal(store_count(s, "vm"), 1);
	store_free(s);
}

struct seen {
	char names[16][64];
	int n;
};

static void collect(json_object *o, void *arg)
{
	struct seen *sn = arg;
	json_object *m, *v;

	assert_true(sn->n < 16);
	json_object_object_get_ex(o, "metadata", &m);
	json_object_object_get_ex(m, "name", &v);
	snprintf(sn->names[sn->n++], 64, "%s", json_object_get_string(v));
}

static int has(const struct seen *sn, const char *name)
{
	int i;

	for (i = 0; i < sn->n; i++) {
		if (strcmp(sn->names[i], name) == 0)
			return 1;
	}
	return 0;
}

static void test_foreach(void **state)
{
	struct store *s = store_new();
	struct seen sn;

	store_put(s, "vm", mkobj("ns1", "a", "1"));
	store_put(s, "vm", mkobj("ns1", "b", "1"));
	store_put(s, "vm", mkobj("ns2", "c", "1"));
	store_put(s, "vmi", mkobj("ns1", "d", "1"));

	memset(&sn, 0, sizeof sn);
	store_foreach(s, "vm", collect, &sn);
	assert_int_equal(sn.n, 3);
	assert_true(has(&sn, "a") && has(&sn, "b") && has(&sn, "c"));

	memset(&sn, 0, sizeof sn);
	store_foreach_ns(s, "vm", "ns1", collect, &sn);
	assert_int_equal(sn.n, 2);
	assert_true(has(&sn, "a") && has(&sn, "b"));

	memset(&sn, 0, sizeof sn);
	store_foreach_ns(s, "vm", "ns3", collect, &sn);
	store_foreach(s, "pool", collect, &sn);
	store_foreach_ns(s, "pool", "ns1", collect, &sn);
	assert_int_equal(sn.n, 0);

	assert_int_equal(store_count(s, "vm"), 3);
	assert_int_equal(store_count(s, "vmi"), 1);
	assert_int_equal(store_count(s, "pool"), 0);
	store_free(s);
}

static void test_clear(void **state)
{
	struct store *s = store_new();
	json_object *keep = mkobj("ns", "a", "1");

	/* a reference held elsewhere survives the clear */
	store_put(s, "vm", json_object_get(keep));
	store_put(s, "vmi", mkobj("ns", "b", "1"));
	store_clear(s);
	assert_int_equal(store_count(s, "vm"), 0);
	assert_int_equal(store_count(s, "vmi"), 0);
	assert_null(store_get(s, "vm", "ns", "a"));
	assert_string_equal(rv(keep), "1");
	json_object_put(keep);
	store_put(s, "vm", mkobj("ns", "a", "2"));
	assert_int_equal(store_count(s, "vm"), 1);
	store_free(s);
	store_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_get),
	    cmocka_unit_test(test_put_same_pointer),
	    cmocka_unit_test(test_cluster_scoped_and_bad),
	    cmocka_unit_test(test_take),
	    cmocka_unit_test(test_foreach),
	    cmocka_unit_test(test_clear),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

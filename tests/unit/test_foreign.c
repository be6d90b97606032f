/* test_foreign.c: other field managers acting on a pool (status/foreign.c) and the
 * ForeignController condition statuscalc derives from them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../status/foreign.h"
#include "../../status/statuscalc.h"
#include "obj.h"
#include "proto.h"

#define POOL(status_managers)                                                                      \
	"{\"kind\":\"VirtualMachinePool\",\"metadata\":{\"name\":\"p\",\"namespace\":\"ns\","      \
	"\"uid\":\"pu\",\"vmpooldManagers\":{" status_managers "}},\"spec\":{\"selector\":"        \
	"{\"matchLabels\":{\"a\":\"b\"}}}}"
#define VM(name, owner_uid, owners)                                                                \
	"{\"metadata\":{\"name\":\"" name "\",\"namespace\":\"ns\",\"ownerReferences\":"           \
	"[{\"kind\":\"VirtualMachinePool\",\"uid\":\"" owner_uid "\",\"controller\":true}],"       \
	"\"vmpooldManagers\":{\"owners\":" owners "}}}"

static json_object *parse(const char *s)
{
	json_object *o = json_tokener_parse(s);

	assert_non_null(o);
	return o;
}

/* the message for a pool and up to three VMs; NULL VM texts end the list */
static char *message(const char *pool, const char *v1, const char *v2, const char *v3)
{
	json_object *p = parse(pool), *vms[3];
	const char *texts[3] = {v1, v2, v3};
	size_t n = 0, i;
	char *m;

	for (i = 0; i < 3 && texts[i] != NULL; i++)
		vms[n++] = parse(texts[i]);
	m = foreign_message(p, vms, n, FOREIGN_SELF);
	for (i = 0; i < n; i++)
		json_object_put(vms[i]);
	json_object_put(p);
	return m;
}

static void test_only_ours(void **state)
{
	(void)state;
	assert_null(message(
	    POOL("\"status\":[\"vmpoold\"]"), VM("p-0", "pu", "[\"vmpoold\"]"), NULL, NULL));
	assert_null(message(POOL(""), NULL, NULL, NULL));
	/* a VM another pool controls does not count */
	assert_null(message(POOL(""), VM("q-0", "other", "[\"kubectl-create\"]"), NULL, NULL));
}

static void test_named_once(void **state)
{
	char *m;

	(void)state;
	m = message(POOL("\"status\":[\"virt-controller\",\"vmpoold\"]"),
	    VM("p-0", "pu", "[\"kubectl-create\",\"vmpoold\"]"),
	    VM("p-1", "pu", "[\"kubectl-create\"]"), VM("p-2", "pu", "[\"virt-controller\"]"));
	assert_non_null(m);
	assert_string_equal(m,
	    "other field managers act on this pool: \"virt-controller\" (status), "
	    "\"kubectl-create\" (owner reference of VM ns/p-0)");
	free(m);
}

static void test_capped(void **state)
{
	char *m;

	(void)state;
	m = message(POOL("\"status\":[\"a\",\"b\",\"c\"]"), VM("p-0", "pu", "[\"d\",\"e\",\"f\"]"),
	    NULL, NULL);
	assert_non_null(m);
	assert_non_null(strstr(m, "\"d\" (owner reference of VM ns/p-0) and 2 more"));
	free(m);
}

/* bad projections: ignored, never a crash */
static void test_malformed(void **state)
{
	(void)state;
	assert_null(
	    message("{\"metadata\":{\"vmpooldManagers\":{\"status\":\"x\"}}}", NULL, NULL, NULL));
	assert_null(message(POOL("\"status\":[1,null,\"\"]"),
	    "{\"metadata\":{\"ownerReferences\":[{\"kind\":\"VirtualMachinePool\",\"uid\":\"pu\","
	    "\"controller\":true}],\"namespace\":\"ns\",\"vmpooldManagers\":[]}}",
	    NULL, NULL));
}

/* the condition: added with the message, kept while the message stays, gone with it; the
 * Event is due when it appears or its message changes */
static void test_condition(void **state)
{
	json_object *pool = parse(POOL("\"status\":[\"virt-controller\"]")), *st1, *st2, *none;
	struct statuscalc_in in = {.pool = pool, .now = 1000};
	json_object *c;

	(void)state;
	st1 = statuscalc_compute(&in);
	c = obj_find_condition(obj_path(st1, "conditions"), SC_COND_FOREIGN);
	assert_non_null(c);
	assert_string_equal(obj_str(c, "reason"), SC_REASON_FOREIGN);
	assert_string_equal(obj_str(c, "status"), "True");
	assert_non_null(strstr(obj_str(c, "message"), "\"virt-controller\" (status)"));
	assert_ptr_equal(statuscalc_foreign_added(NULL, st1), c);
	json_object_object_add(pool, "status", obj_copy(st1));
	in.now = 2000;
	st2 = statuscalc_compute(&in);
	assert_false(statuscalc_differs(pool, st2));
	assert_null(statuscalc_foreign_added(obj_path(pool, "status"), st2));
	json_object_object_del(obj_path(pool, "metadata"), "vmpooldManagers");
	none = statuscalc_compute(&in);
	assert_null(obj_find_condition(obj_path(none, "conditions"), SC_COND_FOREIGN));
	assert_true(statuscalc_differs(pool, none));
	json_object_put(st1);
	json_object_put(st2);
	json_object_put(none);
	json_object_put(pool);
}

static void test_trim_keeps_projection(void **state)
{
	json_object *vm = parse(VM("p-0", "pu", "[\"x\"]")), *t;

	(void)state;
	t = statuscalc_trim(KIND_VM, vm, NULL);
	assert_non_null(t);
	assert_string_equal(
	    obj_json(obj_path(t, "metadata.vmpooldManagers")), "{\"owners\":[\"x\"]}");
	json_object_put(t);
	json_object_put(vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_only_ours),
	    cmocka_unit_test(test_named_once),
	    cmocka_unit_test(test_capped),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_condition),
	    cmocka_unit_test(test_trim_keeps_projection),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

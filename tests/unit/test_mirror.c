/* test_mirror.c: the subscriber's picture, fed frames by hand (no socket). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <event2/event.h>
#include <unistd.h>

#include "link.h"
#include "mirror.h"
#include "obj.h"
#include "proto.h"

/* what the callbacks saw */
struct rec {
	char log[64][128]; /* "kind old-rv -> new-rv", "-" for NULL */
	int n;
	int synced;
	int lost;
	struct event_base *base; /* if set, every callback breaks the loop */
};

static void rec_break(struct rec *r)
{
	if (r->base != NULL)
		event_base_loopbreak(r->base);
}

static const char *rvof(json_object *o)
{
	const char *rv;

	if (o == NULL)
		return "-";
	rv = obj_str(o, "metadata.resourceVersion");
	return rv != NULL ? rv : "?";
}

static void on_changed(const char *kind, json_object *old, json_object *new_, void *arg)
{
	struct rec *r = arg;
	json_object *any = new_ != NULL ? new_ : old;

	assert_true(r->n < 64);
	snprintf(r->log[r->n++], 128, "%s %s %s->%s", kind, obj_name(any), rvof(old), rvof(new_));
	rec_break(r);
}

static void on_synced(void *arg)
{
	((struct rec *)arg)->synced++;
	rec_break(arg);
}

static void on_lost(void *arg)
{
	((struct rec *)arg)->lost++;
	rec_break(arg);
}

static const struct mirror_cb cbs = {on_changed, on_synced, on_lost};

static json_object *obj(const char *ns, const char *name, const char *uid, const char *rv)
{
	char tmp[512];
	json_object *o;

	snprintf(tmp, sizeof tmp,
	    "{\"metadata\": {\"namespace\": \"%s\", \"name\": \"%s\", \"uid\": \"%s\", "
	    "\"resourceVersion\": \"%s\"}, \"spec\": {}}",
	    ns, name, uid, rv);
	o = json_tokener_parse(tmp);
	assert_non_null(o);
	return o;
}

/* OBJ_SET; the body is freed right after, as a link would, so the mirror must keep its
 * own reference */
static int set(struct mirror *m, const char *kind, json_object *o)
{
	json_object *body = json_object_new_object();
	int rc;

	json_object_object_add(body, "kind", json_object_new_string(kind));
	json_object_object_add(body, "obj", o);
	rc = mirror_apply(m, MSG_OBJ_SET, body);
	json_object_put(body);
	return rc;
}

static int set_body_send(struct link *l, const char *kind, json_object *o)
{
	json_object *body = json_object_new_object();
	int rc;

	json_object_object_add(body, "kind", json_object_new_string(kind));
	json_object_object_add(body, "obj", o);
	rc = link_send(l, MSG_OBJ_SET, body);
	json_object_put(body);
	return rc;
}

static int del(
    struct mirror *m, const char *kind, const char *ns, const char *name, const char *uid)
{
	json_object *body = json_object_new_object();
	int rc;

	json_object_object_add(body, "kind", json_object_new_string(kind));
	json_object_object_add(body, "namespace", json_object_new_string(ns));
	json_object_object_add(body, "name", json_object_new_string(name));
	if (uid != NULL)
		json_object_object_add(body, "uid", json_object_new_string(uid));
	rc = mirror_apply(m, MSG_OBJ_DELETE, body);
	json_object_put(body);
	return rc;
}

static int marker(struct mirror *m, int type)
{
	json_object *body = json_object_new_object();
	int rc = mirror_apply(m, type, body);

	json_object_put(body);
	return rc;
}

static int raw(struct mirror *m, int type, const char *json)
{
	json_object *body = json_tokener_parse(json);
	int rc = mirror_apply(m, type, body);

	json_object_put(body);
	return rc;
}

static void test_set_update_noop_delete(void **state)
{
	struct rec r = {0};
	struct mirror *m = mirror_new(NULL, NULL, 0, &cbs, &r);

	assert_non_null(m);
	assert_int_equal(set(m, KIND_VM, obj("ns", "a", "u1", "1")), 0);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.log[0], "vm a -->1");
	assert_non_null(store_get(mirror_store(m), KIND_VM, "ns", "a"));

	/* the same resourceVersion and uid again: stored, not reported */
	assert_int_equal(set(m, KIND_VM, obj("ns", "a", "u1", "1")), 0);
	assert_int_equal(r.n, 1);

	assert_int_equal(set(m, KIND_VM, obj("ns", "a", "u1", "2")), 0);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.log[1], "vm a 1->2");
	assert_string_equal(rvof(store_get(mirror_store(m), KIND_VM, "ns", "a")), "2");

	/* same resourceVersion but a new uid (recreated): a change */
	assert_int_equal(set(m, KIND_VM, obj("ns", "a", "u2", "2")), 0);
	assert_int_equal(r.n, 3);

	/* the same name under another kind is another object */
	assert_int_equal(set(m, KIND_VMI, obj("ns", "a", "u9", "2")), 0);
	assert_int_equal(r.n, 4);
	assert_string_equal(r.log[3], "vmi a -->2");

	/* delete of an older incarnation (uid u1) leaves the current one */
	assert_int_equal(del(m, KIND_VM, "ns", "a", "u1"), 0);
	assert_int_equal(r.n, 4);
	assert_int_equal(del(m, KIND_VM, "ns", "a", "u2"), 0);
	assert_int_equal(r.n, 5);
	assert_string_equal(r.log[4], "vm a 2->-");
	assert_null(store_get(mirror_store(m), KIND_VM, "ns", "a"));
	/* deleting what is not there is quiet */
	assert_int_equal(del(m, KIND_VM, "ns", "a", NULL), 0);
	assert_int_equal(r.n, 5);
	assert_int_equal(r.synced, 0);
	assert_false(mirror_synced(m));
	mirror_free(m);
}

/* keeps metadata only, and no VMIs at all */
static json_object *trim_meta(const char *kind, json_object *o, void *arg)
{
	json_object *out;

	(*(int *)arg)++;
	if (strcmp(kind, KIND_VMI) == 0)
		return NULL;
	out = json_object_new_object();
	json_object_object_add(out, "metadata", obj_copy(obj_path(o, "metadata")));
	return out;
}

static void test_trim(void **state)
{
	struct rec r = {0};
	struct mirror *m = mirror_new(NULL, NULL, 0, &cbs, &r);
	json_object *kept;
	int calls = 0;

	mirror_set_trim(m, trim_meta, &calls);
	assert_int_equal(set(m, KIND_VM, obj("ns", "a", "u1", "1")), 0);
	kept = store_get(mirror_store(m), KIND_VM, "ns", "a");
	assert_non_null(kept);
	assert_null(obj_path(kept, "spec")); /* the trimmed copy is what is stored */
	assert_int_equal(r.n, 1);
	/* a re-send with the same resourceVersion is still no change */
	assert_int_equal(set(m, KIND_VM, obj("ns", "a", "u1", "1")), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(set(m, KIND_VM, obj("ns", "a", "u1", "2")), 0);
	assert_int_equal(r.n, 2);
	/* a kind the subscriber keeps nothing of */
	assert_int_equal(set(m, KIND_VMI, obj("ns", "a", "u9", "1")), 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(store_count(mirror_store(m), KIND_VMI), 0);
	assert_int_equal(calls, 4);
	/* a snapshot without the VM still removes the trimmed copy */
	assert_int_equal(marker(m, MSG_SYNC_BEGIN), 0);
	assert_int_equal(marker(m, MSG_SYNC_END), 0);
	assert_null(store_get(mirror_store(m), KIND_VM, "ns", "a"));
	assert_int_equal(r.n, 3);
	mirror_free(m);
}

static void test_bad_bodies(void **state)
{
	struct rec r = {0};
	struct mirror *m = mirror_new(NULL, NULL, 0, &cbs, &r);

	assert_int_equal(set(m, "pod", obj("ns", "a", "u", "1")), -1);
	assert_int_equal(raw(m, MSG_OBJ_SET, "{\"obj\": {\"metadata\": {\"name\": \"a\"}}}"), -1);
	assert_int_equal(raw(m, MSG_OBJ_SET,
	                     "{\"kind\": 5, \"obj\": {\"metadata\": "
	                     "{\"name\": \"a\"}}}"),
	    -1);
	assert_int_equal(raw(m, MSG_OBJ_SET, "{\"kind\": \"vm\"}"), -1);
	assert_int_equal(raw(m, MSG_OBJ_SET, "{\"kind\": \"vm\", \"obj\": [1]}"), -1);
	assert_int_equal(
	    raw(m, MSG_OBJ_SET, "{\"kind\": \"vm\", \"obj\": {\"metadata\": {}}}"), -1);
	assert_int_equal(raw(m, MSG_OBJ_SET,
	                     "{\"kind\": \"vm\", \"obj\": {\"metadata\": "
	                     "{\"name\": 7}}}"),
	    -1);
	assert_int_equal(raw(m, MSG_OBJ_DELETE, "{\"kind\": \"vm\", \"namespace\": \"ns\"}"), -1);
	assert_int_equal(raw(m, MSG_OBJ_DELETE, "{\"kind\": \"x\", \"name\": \"a\"}"), -1);
	assert_int_equal(raw(m, MSG_OBJ_DELETE,
	                     "{\"kind\": \"vm\", \"name\": \"a\", "
	                     "\"namespace\": 1}"),
	    -1);
	assert_int_equal(raw(m, MSG_OBJ_DELETE,
	                     "{\"kind\": \"vm\", \"name\": \"a\", "
	                     "\"uid\": []}"),
	    -1);
	assert_int_equal(raw(m, MSG_OBJ_SET, "[1, 2]"), -1);
	assert_int_equal(marker(m, MSG_HELLO), -1);
	assert_int_equal(marker(m, MSG_ACTION), -1);
	assert_int_equal(marker(m, 9999), -1);
	/* SYNC_END without SYNC_BEGIN */
	assert_int_equal(marker(m, MSG_SYNC_END), -1);
	assert_int_equal(r.synced, 0);
	assert_int_equal(r.n, 0);
	assert_int_equal(store_count(mirror_store(m), KIND_VM), 0);
	/* a cluster-scoped object (no namespace) is fine */
	assert_int_equal(raw(m, MSG_OBJ_SET,
	                     "{\"kind\": \"rev\", \"obj\": {\"metadata\": "
	                     "{\"name\": \"r\", \"resourceVersion\": \"1\"}}}"),
	    0);
	assert_non_null(store_get(mirror_store(m), KIND_REV, "", "r"));
	assert_int_equal(r.n, 1);
	mirror_free(m);
}

static void test_snapshot_replaces(void **state)
{
	struct rec r = {0};
	struct mirror *m = mirror_new(NULL, NULL, 0, &cbs, &r);
	struct store *st = mirror_store(m);

	/* first snapshot */
	assert_int_equal(marker(m, MSG_SYNC_BEGIN), 0);
	set(m, KIND_POOL, obj("ns", "p", "up", "1"));
	set(m, KIND_VM, obj("ns", "p-0", "u0", "1"));
	set(m, KIND_VM, obj("ns", "p-1", "u1", "1"));
	set(m, KIND_VMI, obj("ns", "p-1", "i1", "1"));
	assert_int_equal(r.synced, 0);
	assert_int_equal(marker(m, MSG_SYNC_END), 0);
	assert_int_equal(r.synced, 1);
	assert_true(mirror_synced(m));
	assert_int_equal(r.n, 4);
	/* a delta after the snapshot */
	set(m, KIND_VM, obj("ns2", "q-0", "uq", "5"));
	assert_int_equal(r.n, 5);

	/* a restarted watcher: p-0 unchanged, p-1 updated, the VMI and q-0 gone, p-2 new */
	r.n = 0;
	assert_int_equal(marker(m, MSG_SYNC_BEGIN), 0);
	set(m, KIND_POOL, obj("ns", "p", "up", "1"));
	set(m, KIND_VM, obj("ns", "p-0", "u0", "1"));
	set(m, KIND_VM, obj("ns", "p-1", "u1", "7"));
	set(m, KIND_VM, obj("ns", "p-2", "u2", "8"));
	assert_int_equal(r.n, 2);
	assert_string_equal(r.log[0], "vm p-1 1->7");
	assert_string_equal(r.log[1], "vm p-2 -->8");
	/* nothing is removed before the snapshot is complete */
	assert_non_null(store_get(st, KIND_VMI, "ns", "p-1"));
	assert_int_equal(marker(m, MSG_SYNC_END), 0);
	assert_int_equal(r.synced, 2);
	assert_int_equal(r.n, 4);
	/* removals are reported with the old object and NULL; order of kinds is fixed */
	assert_string_equal(r.log[2], "vm q-0 5->-");
	assert_string_equal(r.log[3], "vmi p-1 1->-");
	assert_null(store_get(st, KIND_VM, "ns2", "q-0"));
	assert_null(store_get(st, KIND_VMI, "ns", "p-1"));
	assert_int_equal(store_count(st, KIND_POOL), 1);
	assert_int_equal(store_count(st, KIND_VM), 3);
	assert_int_equal(store_count(st, KIND_VMI), 0);

	/* an empty snapshot empties the picture */
	r.n = 0;
	marker(m, MSG_SYNC_BEGIN);
	marker(m, MSG_SYNC_END);
	assert_int_equal(r.n, 4);
	assert_int_equal(r.synced, 3);
	assert_int_equal(store_count(st, KIND_POOL), 0);
	assert_int_equal(store_count(st, KIND_VM), 0);
	mirror_free(m);
}

static void test_snapshot_with_delete(void **state)
{
	struct rec r = {0};
	struct mirror *m = mirror_new(NULL, NULL, 0, &cbs, &r);

	marker(m, MSG_SYNC_BEGIN);
	set(m, KIND_VM, obj("ns", "a", "ua", "1"));
	marker(m, MSG_SYNC_END);
	/* a snapshot in which a re-sent object is deleted again before SYNC_END: reported once */
	r.n = 0;
	marker(m, MSG_SYNC_BEGIN);
	set(m, KIND_VM, obj("ns", "a", "ua", "1"));
	del(m, KIND_VM, "ns", "a", "ua");
	marker(m, MSG_SYNC_END);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.log[0], "vm a 1->-");
	/* a SYNC_BEGIN inside a snapshot starts over */
	r.n = 0;
	marker(m, MSG_SYNC_BEGIN);
	set(m, KIND_VM, obj("ns", "b", "ub", "1"));
	marker(m, MSG_SYNC_BEGIN);
	set(m, KIND_VM, obj("ns", "c", "uc", "1"));
	marker(m, MSG_SYNC_END);
	assert_int_equal(r.n, 3);
	assert_string_equal(r.log[2], "vm b 1->-");
	assert_non_null(store_get(mirror_store(m), KIND_VM, "ns", "c"));
	mirror_free(m);
}

static void test_no_callbacks(void **state)
{
	struct mirror *m = mirror_new(NULL, NULL, 0, NULL, NULL);

	marker(m, MSG_SYNC_BEGIN);
	set(m, KIND_VM, obj("ns", "a", "ua", "1"));
	marker(m, MSG_SYNC_END);
	marker(m, MSG_SYNC_BEGIN);
	marker(m, MSG_SYNC_END);
	assert_int_equal(store_count(mirror_store(m), KIND_VM), 0);
	assert_true(mirror_synced(m));
	mirror_free(m);
	mirror_free(NULL);
}

/* ---- the planner's results stream (mirror_results) ---- */

static struct mirror *results_mirror; /* for on_result's sweeping flag */

static void on_result(const char *kind, json_object *old, json_object *new_, void *arg)
{
	struct rec *r = arg;
	json_object *any = new_ != NULL ? new_ : old;

	assert_string_equal(kind, MIRROR_RESULT_KIND);
	assert_true(r->n < 64);
	snprintf(r->log[r->n++], 128, "%s %s->%s%s", obj_name(any),
	    old != NULL ? obj_str(old, "reason") : "-",
	    new_ != NULL ? obj_str(new_, "reason") : "-",
	    mirror_sweeping(results_mirror) ? " swept" : "");
}

static const struct mirror_cb result_cbs = {on_result, on_synced, on_lost};

static int presult(struct mirror *m, const char *name, int ok, const char *reason)
{
	char tmp[512];

	snprintf(tmp, sizeof tmp,
	    "{\"namespace\": \"ns\", \"name\": \"%s\", \"uid\": \"u-%s\", \"ok\": %s, "
	    "\"reason\": \"%s\", \"message\": \"m\"}",
	    name, name, ok ? "true" : "false", reason);
	return raw(m, MSG_POOL_RESULT, tmp);
}

static int pforget(struct mirror *m, const char *name)
{
	char tmp[256];

	snprintf(tmp, sizeof tmp, "{\"namespace\": \"ns\", \"name\": \"%s\"}", name);
	return raw(m, MSG_POOL_FORGET, tmp);
}

static void test_results_stream(void **state)
{
	struct rec r = {0};
	struct mirror *m = mirror_new_proto(NULL, &mirror_results, NULL, 0, &result_cbs, &r);
	struct store *st = mirror_store(m);
	json_object *o;

	results_mirror = m;
	/* first snapshot */
	assert_int_equal(marker(m, MSG_PSYNC_BEGIN), 0);
	assert_int_equal(presult(m, "a", 1, ""), 0);
	assert_int_equal(presult(m, "b", 0, "FailedScaleOut"), 0);
	assert_int_equal(presult(m, "c", 0, "FailedScaleIn"), 0);
	assert_int_equal(r.synced, 0);
	assert_int_equal(marker(m, MSG_PSYNC_END), 0);
	assert_int_equal(r.synced, 1);
	assert_true(mirror_synced(m));
	assert_int_equal(r.n, 3);
	assert_string_equal(r.log[1], "b -->FailedScaleOut");
	o = store_get(st, MIRROR_RESULT_KIND, "ns", "b");
	assert_non_null(o);
	assert_false(json_object_get_boolean(json_object_object_get(o, "ok")));
	assert_string_equal(obj_uid(o), "u-b");
	/* the same result again is no change; another one is */
	assert_int_equal(presult(m, "a", 1, ""), 0);
	assert_int_equal(r.n, 3);
	assert_int_equal(presult(m, "a", 0, "FailedScaleOut"), 0);
	assert_int_equal(r.n, 4);
	assert_string_equal(r.log[3], "a ->FailedScaleOut");
	/* POOL_FORGET: reported, not as a sweep; of an unknown pool: nothing */
	assert_int_equal(pforget(m, "c"), 0);
	assert_int_equal(pforget(m, "nosuch"), 0);
	assert_int_equal(r.n, 5);
	assert_string_equal(r.log[4], "c FailedScaleIn->-");

	/* bad frames are dropped and change nothing */
	assert_int_equal(raw(m, MSG_POOL_RESULT,
	                     "{\"namespace\": \"ns\", \"name\": \"a\", \"uid\": \"u-a\", "
	                     "\"ok\": \"no\", \"reason\": \"R\", \"message\": \"m\"}"),
	    -1);
	assert_int_equal(raw(m, MSG_POOL_RESULT,
	                     "{\"namespace\": \"ns\", \"name\": \"a\", \"ok\": true, "
	                     "\"reason\": \"\", \"message\": \"\"}"),
	    -1);
	assert_int_equal(raw(m, MSG_POOL_FORGET, "{\"namespace\": \"ns\"}"), -1);
	assert_int_equal(raw(m, MSG_POOL_RESULT, "[1]"), -1);
	assert_int_equal(set(m, KIND_VM, obj("ns", "v", "uv", "1")), -1); /* the watcher's */
	assert_int_equal(marker(m, MSG_SYNC_BEGIN), -1);
	assert_int_equal(r.n, 5);
	assert_int_equal(store_count(st, MIRROR_RESULT_KIND), 2);

	/* a restarted planner: a unchanged, b changed, d new, a bad frame inside the snapshot,
	 * and nothing removed before PSYNC_END */
	r.n = 0;
	assert_int_equal(marker(m, MSG_PSYNC_BEGIN), 0);
	assert_int_equal(presult(m, "b", 1, ""), 0);
	assert_int_equal(raw(m, MSG_POOL_RESULT, "{\"name\": 5}"), -1);
	assert_int_equal(presult(m, "d", 0, "FailedCreate"), 0);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.log[0], "b FailedScaleOut->");
	assert_string_equal(r.log[1], "d -->FailedCreate");
	assert_non_null(store_get(st, MIRROR_RESULT_KIND, "ns", "a"));
	assert_int_equal(marker(m, MSG_PSYNC_END), 0);
	assert_int_equal(r.synced, 2);
	/* a, not in the new snapshot, is swept and reported as such */
	assert_int_equal(r.n, 3);
	assert_string_equal(r.log[2], "a FailedScaleOut->- swept");
	assert_null(store_get(st, MIRROR_RESULT_KIND, "ns", "a"));
	assert_int_equal(store_count(st, MIRROR_RESULT_KIND), 2);
	assert_false(mirror_sweeping(m));
	assert_int_equal(store_views(st), 0);
	mirror_free(m);
}

/* the watcher side of the socket test: a snapshot of one pool and one VM */
static void snapshot(struct link *l, void *arg)
{
	json_object *body = json_object_new_object();

	link_send(l, MSG_SYNC_BEGIN, body);
	json_object_put(body);
	assert_int_equal(set_body_send(l, KIND_POOL, obj("ns", "p", "up", "1")), 0);
	assert_int_equal(set_body_send(l, KIND_VM, obj("ns", "p-0", "u0", "3")), 0);
	body = json_object_new_object();
	link_send(l, MSG_SYNC_END, body);
	json_object_put(body);
}

/* runs the loop until a callback fires (or 5 s pass) */
static void run_once(struct event_base *base)
{
	struct timeval tv = {5, 0};

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static void test_over_socket(void **state)
{
	static const int accept_none[] = {0};
	const struct link_spec spec = {LINK_WATCHER, accept_none, 0};
	char dir[] = "/tmp/test_mirror.XXXXXX", path[128];
	struct event_base *base = event_base_new();
	struct rec r = {0};
	struct mirror *m;
	struct pub *pub;
	json_object *body;
	int i;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/watcher.sock", dir);
	pub = pub_new(base, path, &spec, snapshot, NULL);
	assert_non_null(pub);
	pub_set_ready(pub, 1);
	r.base = base;
	m = mirror_new(base, path, 0, &cbs, &r);
	assert_non_null(m);
	for (i = 0; r.synced == 0 && i < 10; i++)
		run_once(base);
	assert_int_equal(r.synced, 1);
	assert_true(mirror_synced(m));
	assert_int_equal(r.n, 2);
	assert_string_equal(r.log[0], "pool p -->1");
	assert_string_equal(r.log[1], "vm p-0 -->3");

	/* a delta */
	body = json_object_new_object();
	json_object_object_add(body, "kind", json_object_new_string(KIND_VM));
	json_object_object_add(body, "obj", obj("ns", "p-0", "u0", "4"));
	pub_broadcast(pub, MSG_OBJ_SET, body);
	json_object_put(body);
	run_once(base);
	assert_int_equal(r.n, 3);
	assert_string_equal(r.log[2], "vm p-0 3->4");

	/* the watcher goes away: lost, the picture is kept */
	pub_free(pub);
	for (i = 0; r.lost == 0 && i < 10; i++)
		run_once(base);
	assert_int_equal(r.lost, 1);
	assert_false(mirror_synced(m));
	assert_int_equal(store_count(mirror_store(m), KIND_VM), 1);
	mirror_free(m);
	event_base_free(base);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_set_update_noop_delete),
	    cmocka_unit_test(test_trim),
	    cmocka_unit_test(test_bad_bodies),
	    cmocka_unit_test(test_snapshot_replaces),
	    cmocka_unit_test(test_snapshot_with_delete),
	    cmocka_unit_test(test_no_callbacks),
	    cmocka_unit_test(test_results_stream),
	    cmocka_unit_test(test_over_socket),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

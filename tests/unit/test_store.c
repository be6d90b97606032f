/*
 * test_store.c: the compact store: records and their three indexes (name, uid, controller
 * owner), replace and take, store order, views and their lifetime, uid reuse, the empty
 * namespace of cluster-scoped objects; every test runs on a plain and on a compact store
 * (store_new_compact: the compact form of codec.h); marks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "obj.h"
#include "store.h"

static int compact; /* the group running: store_new_compact() stores */

static struct store *snew(void)
{
	return compact ? store_new_compact() : store_new();
}

/* an object; owner NULL: no ownerReferences, "" an owner that is not the controller */
static json_object *mk(
    const char *ns, const char *name, const char *uid, const char *rv, const char *owner)
{
	char meta[512], refs[256] = "";
	json_object *o;

	if (owner != NULL)
		snprintf(refs, sizeof refs,
		    ", \"ownerReferences\": [{\"kind\": \"VirtualMachinePool\", \"name\": \"p\", "
		    "\"uid\": \"%s\", \"controller\": %s}]",
		    *owner ? owner : "other", *owner ? "true" : "false");
	snprintf(meta, sizeof meta,
	    "{\"metadata\": {%s%s%s\"name\": \"%s\", \"uid\": \"%s\", "
	    "\"resourceVersion\": \"%s\"%s}, \"spec\": {\"n\": [1, 2, {\"x\": \"y\"}]}}",
	    ns != NULL ? "\"namespace\": \"" : "", ns != NULL ? ns : "", ns != NULL ? "\", " : "",
	    name, uid, rv, refs);
	o = json_tokener_parse(meta);
	assert_non_null(o);
	return o;
}

static json_object *mkobj(const char *ns, const char *name, const char *rv)
{
	return mk(ns, name, "", rv, NULL);
}

/* store_set, then the caller's reference goes */
static void set(struct store *s, const char *kind, json_object *o)
{
	assert_int_equal(store_set(s, kind, o), 0);
	json_object_put(o);
}

static const char *rv(json_object *o)
{
	return obj_str(o, "metadata.resourceVersion");
}

/* the names of an owner query, space separated */
static const char *owned(struct store *s, const char *ns, const char *owner)
{
	static char buf[256];
	json_object **v;
	size_t i, n = store_owned(s, "vm", ns, owner, &v);

	buf[0] = '\0';
	for (i = 0; i < n; i++)
		snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? " " : "",
		    obj_name(v[i]));
	assert_null(v[n]);
	free(v);
	return buf;
}

static void test_put_get(void **state)
{
	struct store *s = snew();
	json_object *a = mkobj("ns1", "a", "1"), *old;

	(void)state;
	assert_null(store_get(s, "vm", "ns1", "a"));
	assert_null(store_put(s, "vm", a));
	assert_ptr_equal(store_get(s, "vm", "ns1", "a"), a); /* the put object is the view */
	assert_null(store_get(s, "vmi", "ns1", "a"));
	assert_null(store_get(s, "vm", "ns2", "a"));
	assert_null(store_get(s, "vm", "ns1", "b"));
	/* replacing hands the old object back, whole */
	old = store_put(s, "vm", mkobj("ns1", "a", "2"));
	assert_non_null(old);
	assert_string_equal(rv(old), "1");
	json_object_put(old);
	assert_string_equal(rv(store_get(s, "vm", "ns1", "a")), "2");
	assert_int_equal(store_count(s, "vm"), 1);
	store_free(s);
}

/* after a release the object is decoded from its bytes again: equal, not the same */
static void test_views_decode(void **state)
{
	struct store *s = snew();
	json_object *a = mk("ns", "a", "ua", "7", "P"), *keep = json_object_get(a), *v;
	const struct store_meta *m;

	(void)state;
	store_put(s, "vm", a);
	assert_int_equal(store_views(s), 1);
	store_release_views(s);
	assert_int_equal(store_views(s), 0);
	v = store_get(s, "vm", "ns", "a");
	assert_non_null(v);
	assert_ptr_not_equal(v, keep);
	assert_true(obj_equal(v, keep));
	assert_ptr_equal(store_get(s, "vm", "ns", "a"), v); /* cached until released */
	assert_int_equal(store_views(s), 1);
	m = store_meta(s, "vm", "ns", "a");
	assert_non_null(m);
	assert_string_equal(m->kind, "vm");
	assert_string_equal(m->ns, "ns");
	assert_string_equal(m->name, "a");
	assert_string_equal(m->uid, "ua");
	assert_string_equal(m->rv, "7");
	assert_string_equal(m->owner, "P");
	assert_false(m->deleting);
	assert_true(m->len > 0 && store_bytes(s) == m->len);
	/* a view outlives the store's hold only with a reference of its own */
	json_object_get(v);
	store_release_views(s);
	assert_true(obj_equal(v, keep));
	json_object_put(v);
	json_object_put(keep);
	assert_null(store_meta(s, "vm", "ns", "zz"));
	store_free(s);
}

/* a replaced or taken object's view ends then; a reference taken before keeps it */
static void test_view_lifetime(void **state)
{
	struct store *s = snew();
	json_object *v, *old;

	(void)state;
	set(s, "vm", mkobj("ns", "a", "1")); /* no view */
	assert_int_equal(store_views(s), 0);
	v = json_object_get(store_get(s, "vm", "ns", "a"));
	assert_int_equal(store_views(s), 1);
	old = store_put(s, "vm", mkobj("ns", "a", "2"));
	assert_ptr_equal(old, v); /* the cached view is handed over, not decoded again */
	assert_string_equal(rv(v), "1");
	json_object_put(old);
	json_object_put(v);
	assert_int_equal(store_views(s), 1); /* the new object */
	store_release_views(s);
	v = store_get(s, "vm", "ns", "a");
	assert_string_equal(rv(v), "2");
	v = store_take(s, "vm", "ns", "a"); /* the caller's now */
	assert_int_equal(store_views(s), 0);
	assert_string_equal(rv(v), "2");
	json_object_put(v);
	set(s, "vm", mkobj("ns", "b", "1"));
	assert_int_equal(store_del(s, "vm", "ns", "b"), 1);
	assert_int_equal(store_del(s, "vm", "ns", "b"), 0);
	assert_int_equal(store_count(s, "vm"), 0);
	assert_int_equal(store_bytes(s), 0);
	store_free(s);
}

/* many views: each record's view stays its own while others are replaced, taken and
 * deleted in the middle of the store's view array */
static void test_views_many(void **state)
{
	struct store *s = snew();
	json_object *v, *old;
	char name[16];
	int i;

	(void)state;
	for (i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "vm-%d", i);
		set(s, "vm", mkobj("ns", name, "1"));
		assert_non_null(store_get(s, "vm", "ns", name));
	}
	assert_int_equal(store_views(s), 200);
	for (i = 0; i < 200; i += 3) { /* replaced: the old view goes to the caller */
		snprintf(name, sizeof(name), "vm-%d", i);
		old = store_put(s, "vm", mkobj("ns", name, "2"));
		assert_string_equal(rv(old), "1");
		json_object_put(old);
	}
	for (i = 1; i < 200; i += 3) { /* taken or deleted */
		snprintf(name, sizeof(name), "vm-%d", i);
		if (i % 2 == 0)
			assert_int_equal(store_del(s, "vm", "ns", name), 1);
		else
			json_object_put(store_take(s, "vm", "ns", name));
	}
	assert_int_equal(store_views(s), 200 - 67);
	for (i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "vm-%d", i);
		v = store_get(s, "vm", "ns", name);
		if (i % 3 == 1) {
			assert_null(v);
			continue;
		}
		assert_string_equal(obj_name(v), name);
		assert_string_equal(rv(v), i % 3 == 0 ? "2" : "1");
	}
	store_release_views(s);
	assert_int_equal(store_views(s), 0);
	assert_int_equal(store_count(s, "vm"), 200 - 67);
	store_free(s);
}

/* metadata strings that do not fit a record (64 KB) drop the object; a stored one stays */
static void test_strings_too_long(void **state)
{
	struct store *s = snew();
	size_t n = 70000;
	char *uid = malloc(n + 1);
	json_object *o;

	(void)state;
	assert_non_null(uid);
	memset(uid, 'u', n);
	uid[n] = '\0';
	set(s, "vm", mk("ns", "a", "ua", "1", NULL));
	o = mk("ns", "a", "ub", "2", NULL);
	json_object_object_add(obj_path(o, "metadata"), "uid", json_object_new_string(uid));
	assert_int_equal(store_set(s, "vm", o), -1);
	json_object_put(o);
	assert_string_equal(store_meta(s, "vm", "ns", "a")->uid, "ua");
	assert_string_equal(store_meta(s, "vm", "ns", "a")->rv, "1");
	o = mk("ns", "b", "ub", "1", NULL);
	json_object_object_add(obj_path(o, "metadata"), "uid", json_object_new_string(uid));
	assert_null(store_put(s, "vm", o)); /* dropped: the store put the reference */
	assert_null(store_meta(s, "vm", "ns", "b"));
	assert_int_equal(store_count(s, "vm"), 1);
	free(uid);
	store_free(s);
}

static void test_put_same_pointer(void **state)
{
	struct store *s = snew();
	json_object *a = mkobj("ns", "a", "1"), *old;

	(void)state;
	store_put(s, "vm", a);
	old = store_put(s, "vm", json_object_get(a));
	assert_ptr_equal(old, a);
	json_object_put(old);
	assert_ptr_equal(store_get(s, "vm", "ns", "a"), a);
	store_free(s);
}

static void test_cluster_scoped_and_bad(void **state)
{
	struct store *s = snew();
	json_object *bad = json_tokener_parse("{\"metadata\": {}}");

	(void)state;
	store_put(s, "rev", mkobj(NULL, "c", "1"));
	assert_non_null(store_get(s, "rev", "", "c"));
	assert_non_null(store_get(s, "rev", NULL, "c"));
	assert_non_null(store_meta(s, "rev", NULL, "c"));
	assert_null(store_put(s, "rev", bad));
	bad = json_tokener_parse("{\"metadata\": {}}");
	assert_int_equal(store_set(s, "rev", bad), -1);
	json_object_put(bad);
	assert_int_equal(store_count(s, "rev"), 1);
	store_free(s);
}

static void test_take(void **state)
{
	struct store *s = snew();
	json_object *t;

	(void)state;
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
	/* an emptied namespace can be refilled */
	store_put(s, "vm", mkobj("ns", "c", "1"));
	assert_int_equal(store_count(s, "vm"), 1);
	store_free(s);
}

/* (kind, uid): found in any namespace; a reused uid finds the newest holder, and the older
 * one's removal leaves it findable */
static void test_uid_index(void **state)
{
	struct store *s = snew();

	(void)state;
	set(s, "vm", mk("ns", "a", "u1", "1", NULL));
	set(s, "vmi", mk("ns", "a", "u2", "1", NULL));
	assert_string_equal(obj_name(store_get_uid(s, "vm", "u1")), "a");
	assert_null(store_get_uid(s, "vm", "u2")); /* another kind's uid */
	assert_null(store_get_uid(s, "vm", ""));
	assert_null(store_get_uid(s, "vm", NULL));
	set(s, "vm", mk("other", "b", "u1", "1", NULL)); /* the same uid again */
	assert_string_equal(obj_namespace(store_get_uid(s, "vm", "u1")), "other");
	store_del(s, "vm", "other", "b");
	assert_string_equal(obj_namespace(store_get_uid(s, "vm", "u1")), "ns");
	/* re-created under the same name with a new uid: the old uid is gone */
	set(s, "vm", mk("ns", "a", "u3", "2", NULL));
	assert_null(store_get_uid(s, "vm", "u1"));
	assert_string_equal(obj_name(store_get_uid(s, "vm", "u3")), "a");
	assert_string_equal(store_meta_uid(s, "vm", "u3")->name, "a");
	assert_null(store_meta_uid(s, "vm", "u1"));
	assert_null(store_meta_uid(s, "vmi", "u3"));
	store_free(s);
}

/* (kind, ns, controller uid): a controller change moves the record between buckets and it
 * keeps its place in store order; "" is the namespace's objects without a controller */
static void test_owner_index(void **state)
{
	struct store *s = snew();
	size_t i;

	(void)state;
	set(s, "vm", mk("ns", "a-0", "u0", "1", "A"));
	set(s, "vm", mk("ns", "a-1", "u1", "1", "A"));
	set(s, "vm", mk("ns", "b-0", "u2", "1", "B"));
	set(s, "vm", mk("other", "a-9", "u3", "1", "A")); /* same owner, other namespace */
	set(s, "vm", mk("ns", "loose", "u4", "1", NULL));
	set(s, "vm", mk("ns", "ref", "u5", "1", "")); /* an owner, not the controller */
	set(s, "vmi", mk("ns", "a-0", "i0", "1", "A"));
	assert_string_equal(owned(s, "ns", "A"), "a-0 a-1");
	assert_string_equal(owned(s, "ns", "B"), "b-0");
	assert_string_equal(owned(s, "other", "A"), "a-9");
	assert_string_equal(owned(s, "ns", ""), "loose ref");
	assert_string_equal(owned(s, "ns", NULL), "loose ref");
	assert_string_equal(owned(s, "nope", "A"), "");
	/* a-0 moves to B: it keeps its place, so it comes before b-0 */
	set(s, "vm", mk("ns", "a-0", "u0", "2", "B"));
	assert_string_equal(owned(s, "ns", "A"), "a-1");
	assert_string_equal(owned(s, "ns", "B"), "a-0 b-0");
	/* detached: no controller any more */
	set(s, "vm", mk("ns", "a-1", "u1", "2", NULL));
	assert_string_equal(owned(s, "ns", "A"), "");
	assert_string_equal(owned(s, "ns", ""), "a-1 loose ref");
	/* deleted and re-created: last in store order */
	store_del(s, "vm", "ns", "a-0");
	assert_string_equal(owned(s, "ns", "B"), "b-0");
	set(s, "vm", mk("ns", "a-0", "u7", "1", "B"));
	assert_string_equal(owned(s, "ns", "B"), "b-0 a-0");
	/* many: the tables grow, every record stays findable */
	for (i = 0; i < 500; i++) {
		char name[32], uid[32];

		snprintf(name, sizeof name, "m-%zu", i);
		snprintf(uid, sizeof uid, "mu%zu", i);
		set(s, "vm", mk("big", name, uid, "1", "M"));
	}
	assert_int_equal(store_count(s, "vm"), 506);
	assert_string_equal(obj_name(store_get_uid(s, "vm", "mu321")), "m-321");
	assert_non_null(store_get(s, "vm", "big", "m-499"));
	assert_int_equal(strlen(owned(s, "big", "M")) > 0, 1);
	store_release_views(s);
	for (i = 0; i < 500; i += 2) {
		char name[32];

		snprintf(name, sizeof name, "m-%zu", i);
		store_del(s, "vm", "big", name);
	}
	assert_int_equal(store_count(s, "vm"), 256);
	assert_null(store_get_uid(s, "vm", "mu320"));
	assert_string_equal(obj_name(store_get_uid(s, "vm", "mu321")), "m-321");
	store_free(s);
}

static void test_deleting(void **state)
{
	struct store *s = snew();
	json_object *o = mkobj("ns", "a", "1");

	(void)state;
	json_object_object_add(json_object_object_get(o, "metadata"), "deletionTimestamp",
	    json_object_new_string("2026-01-01T00:00:00Z"));
	store_set(s, "vm", o);
	assert_true(store_meta(s, "vm", "ns", "a")->deleting);
	json_object_put(o);
	set(s, "vm", mkobj("ns", "b", "1"));
	assert_false(store_meta(s, "vm", "ns", "b")->deleting);
	store_free(s);
}

struct seen {
	char names[16][64];
	int n;
	uint64_t last;   /* collect_two: the seq of the last name */
	unsigned traits; /* collect_meta: the sum of the records' traits */
};

static void collect(json_object *o, void *arg)
{
	struct seen *sn = arg;

	assert_true(sn->n < 16);
	snprintf(sn->names[sn->n++], 64, "%s", obj_name(o));
}

static void collect_meta(const struct store_meta *m, void *arg)
{
	struct seen *sn = arg;

	assert_true(sn->n < 16);
	snprintf(sn->names[sn->n++], 64, "%s", m->name);
	sn->traits += m->traits;
}

/* walks go in store order; a walk caches no views */
static void test_foreach(void **state)
{
	struct store *s = snew();
	struct seen sn;

	(void)state;
	set(s, "vm", mkobj("ns2", "c", "1"));
	set(s, "vm", mkobj("ns1", "a", "1"));
	set(s, "vm", mkobj("ns1", "b", "1"));
	set(s, "vmi", mkobj("ns1", "d", "1"));
	set(s, "vm", mkobj("ns2", "c", "2")); /* keeps its place */
	memset(&sn, 0, sizeof sn);
	store_foreach(s, "vm", collect, &sn);
	assert_int_equal(sn.n, 3);
	assert_string_equal(sn.names[0], "c");
	assert_string_equal(sn.names[1], "a");
	assert_string_equal(sn.names[2], "b");
	assert_int_equal(store_views(s), 0);
	memset(&sn, 0, sizeof sn);
	store_foreach_meta(s, "vm", collect_meta, &sn);
	assert_int_equal(sn.n, 3);
	assert_string_equal(sn.names[2], "b");
	memset(&sn, 0, sizeof sn);
	store_foreach(s, "pool", collect, &sn);
	store_foreach_meta(s, "pool", collect_meta, &sn);
	assert_int_equal(sn.n, 0);
	assert_int_equal(store_count(s, "vm"), 3);
	assert_int_equal(store_count(s, "vmi"), 1);
	assert_int_equal(store_count(s, "pool"), 0);
	store_free(s);
}

/* collects up to two names, then stops the walk */
static int collect_two(const struct store_meta *m, void *arg)
{
	struct seen *sn = arg;

	snprintf(sn->names[sn->n++], 64, "%s", m->name);
	sn->last = m->seq;
	return sn->n < 2;
}

/* traits: derived by the store's function when an object is written (put, set, replace),
 * read by store_foreach_owned_meta without decoding anything */
static unsigned traits_rv(const char *kind, json_object *o)
{
	const char *rv = obj_str(o, "metadata.resourceVersion");

	return strcmp(kind, "vm") == 0 && rv != NULL ? (unsigned)atoi(rv) : 0;
}

static void test_traits(void **state)
{
	struct store *s = snew();
	struct seen sn;

	(void)state;
	set(s, "vm", mk("ns", "before", "u9", "64", "A")); /* written before: no traits */
	store_traits(s, traits_rv);
	set(s, "vm", mk("ns", "a-0", "u0", "1", "A"));
	json_object_put(store_put(s, "vm", mk("ns", "a-1", "u1", "2", "A")));
	set(s, "vm", mk("ns", "b-0", "u2", "4", "B"));
	set(s, "vmi", mk("ns", "a-0", "i0", "8", "A"));
	store_release_views(s);
	assert_int_equal(store_meta(s, "vm", "ns", "before")->traits, 0);
	assert_int_equal(store_meta(s, "vm", "ns", "a-1")->traits, 2);
	assert_int_equal(store_meta(s, "vmi", "ns", "a-0")->traits, 0);
	memset(&sn, 0, sizeof sn);
	store_foreach_owned_meta(s, "vm", "ns", "A", collect_meta, &sn);
	assert_int_equal(sn.n, 3);
	assert_string_equal(sn.names[0], "before");
	assert_string_equal(sn.names[1], "a-0");
	assert_string_equal(sn.names[2], "a-1");
	assert_int_equal(sn.traits, 3);
	assert_int_equal(store_views(s), 0); /* nothing decoded */
	/* a replacement derives them again, and moves with its owner */
	set(s, "vm", mk("ns", "a-0", "u0", "16", "B"));
	memset(&sn, 0, sizeof sn);
	store_foreach_owned_meta(s, "vm", "ns", "B", collect_meta, &sn);
	assert_int_equal(sn.n, 2);
	assert_string_equal(sn.names[0], "a-0");
	assert_string_equal(sn.names[1], "b-0");
	assert_int_equal(sn.traits, 20);
	memset(&sn, 0, sizeof sn);
	store_foreach_owned_meta(s, "vm", "nope", "A", collect_meta, &sn);
	assert_int_equal(sn.n, 0);
	store_free(s);
}

/* a walk resumed after the last seq it saw: no name twice, none missed, also when names
 * leave, are replaced and enter meanwhile */
static void test_walk_after(void **state)
{
	struct store *s = store_new();
	struct seen sn;

	(void)state;
	set(s, "vm", mkobj("ns", "a", "1"));
	set(s, "vm", mkobj("ns", "b", "1"));
	set(s, "vm", mkobj("ns", "c", "1"));
	set(s, "vm", mkobj("ns", "d", "1"));
	memset(&sn, 0, sizeof sn);
	assert_int_equal(store_walk_meta_after(s, "vm", 0, collect_two, &sn), 0);
	assert_string_equal(sn.names[1], "b");
	assert_int_equal(store_meta(s, "vm", "ns", "b")->seq, sn.last);
	assert_int_equal(store_del(s, "vm", "ns", "b"), 1); /* the last one seen leaves */
	set(s, "vm", mkobj("ns", "a", "2"));                /* one seen is replaced */
	set(s, "vm", mkobj("ns", "b", "2"));                /* and enters again: at the end */
	set(s, "vm", mkobj("ns", "e", "1"));                /* a new name: at the end */
	assert_int_equal(store_del(s, "vm", "ns", "c"), 1); /* one not seen leaves */
	sn.n = 0;
	assert_int_equal(store_walk_meta_after(s, "vm", sn.last, collect_two, &sn), 0);
	assert_string_equal(sn.names[0], "d");
	assert_string_equal(sn.names[1], "b");
	sn.n = 0;
	assert_int_equal(store_walk_meta_after(s, "vm", sn.last, collect_two, &sn), 1);
	assert_int_equal(sn.n, 1);
	assert_string_equal(sn.names[0], "e");
	sn.n = 0;
	assert_int_equal(store_walk_meta_after(s, "vm", sn.last, collect_two, &sn), 1);
	assert_int_equal(store_walk_meta_after(s, "pool", 0, collect_two, &sn), 1);
	assert_int_equal(sn.n, 0);
	store_free(s);
}

static void test_clear(void **state)
{
	struct store *s = snew();
	json_object *keep = mkobj("ns", "a", "1");

	(void)state;
	store_put(s, "vm", json_object_get(keep));
	store_put(s, "vmi", mkobj("ns", "b", "1"));
	store_clear(s);
	assert_int_equal(store_count(s, "vm"), 0);
	assert_int_equal(store_count(s, "vmi"), 0);
	assert_int_equal(store_views(s), 0);
	assert_int_equal(store_bytes(s), 0);
	assert_null(store_get(s, "vm", "ns", "a"));
	assert_string_equal(rv(keep), "1"); /* the caller's reference survives */
	json_object_put(keep);
	store_put(s, "vm", mkobj("ns", "a", "2"));
	assert_int_equal(store_count(s, "vm"), 1);
	store_free(s);
	store_free(NULL);
}

/* the same object in both forms: the compact one is smaller and decodes the same; marks */
static void test_compact_and_marks(void **state)
{
	struct store *p = store_new(), *c = store_new_compact();
	json_object *o = mk("ns", "pool-1-0", "u-0123456789", "42", "owner-uid-0123456789"), *v;
	const struct store_meta *mp, *mc;
	struct buf b = {0};

	(void)state;
	set(p, "vm", json_object_get(o));
	set(c, "vm", json_object_get(o));
	mp = store_meta(p, "vm", "ns", "pool-1-0");
	mc = store_meta(c, "vm", "ns", "pool-1-0");
	assert_true(mc->len < mp->len);
	store_pack(c, o, &b); /* what a mirror compares a resend with */
	assert_int_equal(b.len, mc->len);
	assert_memory_equal(b.data, mc->bytes, mc->len);
	b.len = 0;
	store_pack(p, o, &b);
	assert_int_equal(b.len, mp->len);
	assert_memory_equal(b.data, mp->bytes, mp->len);
	v = store_get(c, "vm", "ns", "pool-1-0");
	assert_true(obj_equal(v, o));
	/* a mark stays on its record when the object is replaced */
	assert_int_equal(mc->mark, 0);
	assert_int_equal(store_mark(c, "vm", "ns", "pool-1-0", 7), 1);
	assert_int_equal(store_mark(c, "vm", "ns", "nope", 7), 0);
	set(c, "vm", mk("ns", "pool-1-0", "u-0123456789", "43", ""));
	mc = store_meta(c, "vm", "ns", "pool-1-0");
	assert_int_equal(mc->mark, 7);
	assert_string_equal(mc->rv, "43");
	json_object_put(o);
	buf_clear(&b);
	store_free(p);
	store_free(c);
}

/* canonical UUIDs are kept as 16 bytes and read back as the same text; any other uid, even
 * one a character away from a UUID, is kept as it is */
static void test_uuid_uids(void **state)
{
	static const char *const uids[] = {
	    "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",  /* canonical */
	    "0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0",  /* upper case: not as the API server writes */
	    "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f",   /* one digit short */
	    "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f00", /* one too many */
	    "0f1e2d3c-4b5a-6978-8796a-5b4c3d2e1f0",  /* a dash misplaced */
	    "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1fg",  /* not hex */
	    "u-1",
	};
	const char *pool = "ffffffff-0000-0000-0000-000000000001";
	const struct store_meta *m;
	struct store *s = snew();
	json_object *v, **list;
	char name[16];
	size_t i, n = sizeof(uids) / sizeof(uids[0]);

	(void)state;
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "vm-%zu", i);
		set(s, "vm", mk("ns", name, uids[i], "1", i % 2 == 0 ? pool : uids[i]));
	}
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "vm-%zu", i);
		m = store_meta_uid(s, "vm", uids[i]);
		assert_non_null(m);
		assert_string_equal(m->name, name);
		assert_string_equal(m->uid, uids[i]);
		assert_string_equal(m->owner, i % 2 == 0 ? pool : uids[i]);
		v = store_get_uid(s, "vm", uids[i]);
		assert_string_equal(obj_uid(v), uids[i]);
		assert_string_equal(
		    obj_str(json_object_array_get_idx(obj_path(v, "metadata.ownerReferences"), 0),
		        "uid"),
		    i % 2 == 0 ? pool : uids[i]);
	}
	assert_null(store_meta_uid(s, "vm", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f1"));
	assert_null(store_meta_uid(s, "vmi", uids[0]));
	assert_string_equal(owned(s, "ns", pool), "vm-0 vm-2 vm-4 vm-6");
	assert_string_equal(owned(s, "ns", uids[1]), "vm-1");
	n = store_owned(s, "vm", "ns", "FFFFFFFF-0000-0000-0000-000000000001", &list);
	assert_int_equal(n, 0);
	free(list);
	/* the uid index after the table grew: 200 more, each found */
	for (i = 0; i < 200; i++) {
		char uid[40];

		snprintf(name, sizeof(name), "x-%zu", i);
		snprintf(uid, sizeof(uid), "00000000-0000-4000-8000-%012zx", i);
		set(s, "vm", mk("ns", name, uid, "1", pool));
	}
	for (i = 0; i < 200; i++) {
		char uid[40];

		snprintf(uid, sizeof(uid), "00000000-0000-4000-8000-%012zx", i);
		m = store_meta_uid(s, "vm", uid);
		assert_non_null(m);
		assert_string_equal(m->uid, uid);
		snprintf(name, sizeof(name), "x-%zu", i);
		assert_string_equal(m->name, name);
		if (i % 2 == 0)
			assert_int_equal(store_del(s, "vm", "ns", name), 1);
	}
	for (i = 0; i < 200; i++) {
		char uid[40];

		snprintf(uid, sizeof(uid), "00000000-0000-4000-8000-%012zx", i);
		assert_true((store_meta_uid(s, "vm", uid) != NULL) == (i % 2 == 1));
	}
	store_free(s);
}

/* store_owner_kinds: only the kinds named are grouped by controller; the others are stored,
 * found, walked, replaced and deleted all the same */
static void test_owner_kinds(void **state)
{
	static const char *const kinds[] = {"vm", NULL};
	struct store *s = snew();
	json_object **list;
	size_t n;

	(void)state;
	store_owner_kinds(s, kinds);
	set(s, "vm", mk("ns", "a", "u-a", "1", "p-1"));
	set(s, "vmi", mk("ns", "a", "i-a", "1", "u-a"));
	set(s, "vmi", mk("ns", "b", "i-b", "1", "u-b"));
	assert_string_equal(owned(s, "ns", "p-1"), "a");
	n = store_owned(s, "vmi", "ns", "u-a", &list);
	assert_int_equal(n, 0);
	free(list);
	assert_int_equal(store_count(s, "vmi"), 2);
	assert_string_equal(store_meta(s, "vmi", "ns", "a")->owner, "u-a");
	set(s, "vmi", mk("ns", "a", "i-a", "2", "u-c")); /* replaced */
	assert_string_equal(store_meta_uid(s, "vmi", "i-a")->owner, "u-c");
	assert_int_equal(store_del(s, "vmi", "ns", "a"), 1);
	json_object_put(store_take(s, "vmi", "ns", "b"));
	assert_int_equal(store_count(s, "vmi"), 0);
	assert_int_equal(store_del(s, "vm", "ns", "a"), 1);
	assert_string_equal(owned(s, "ns", "p-1"), "");
	store_free(s);
}

/* a record of a kind not grouped by controller has no place in an owner group: 24 bytes less
 * of slab (the watcher groups nothing, the planner not its VMIs: 22,000 and 10,000 records at
 * 1,000 pools x 10 VMs) */
static void test_owner_links_only_grouped(void **state)
{
	static const char *const none[] = {NULL};
	struct store *grouped = snew(), *plain = snew();
	char uid[40], owner[40], name[16];
	struct slabs_stats st;
	size_t i, a, b;

	(void)state;
	store_owner_kinds(plain, none);
	for (i = 0; i < 64; i++) {
		snprintf(name, sizeof(name), "vm-%zu", i);
		snprintf(uid, sizeof(uid), "00000000-0000-4000-8000-%012zx", i);
		snprintf(owner, sizeof(owner), "00000000-0000-4000-9000-%012zx", i / 8);
		set(grouped, "vmi", mk("ns", name, uid, "1", owner));
		set(plain, "vmi", mk("ns", name, uid, "1", owner));
	}
	store_slabs_stats(grouped, &st);
	a = st.used;
	store_slabs_stats(plain, &st);
	b = st.used;
	/* 24 bytes a record: 16 or 32 in the 16-byte size classes up to 256 bytes (a compact
	 * record here: 192 -> 160), 0 or 32 in the 32-byte ones above (plain msgpack) */
	if (compact)
		assert_true(a >= b + 64 * 16 && a <= b + 64 * 32);
	else
		assert_true(a > b && a <= b + 64 * 32);
	for (i = 0; i < 64; i += 2) { /* both still replace and delete */
		snprintf(name, sizeof(name), "vm-%zu", i);
		assert_int_equal(store_del(grouped, "vmi", "ns", name), 1);
		assert_int_equal(store_del(plain, "vmi", "ns", name), 1);
	}
	assert_int_equal(store_count(grouped, "vmi"), 32);
	assert_int_equal(store_count(plain, "vmi"), 32);
	store_free(grouped);
	store_free(plain);
}

/* an object with a string of n bytes in its spec: a record of another size class */
static json_object *mkpad(
    const char *name, const char *uid, const char *rv, const char *owner, size_t n)
{
	json_object *o = mk("ns", name, uid, rv, owner), *spec;
	char *pad = calloc(1, n + 1);

	assert_non_null(pad);
	memset(pad, 'p', n);
	assert_true(json_object_object_get_ex(o, "spec", &spec));
	json_object_object_add(spec, "pad", json_object_new_string(pad));
	free(pad);
	return o;
}

struct walked {
	char names[800][16];
	size_t n;
};

static void walk_names(const struct store_meta *m, void *arg)
{
	struct walked *w = arg;

	assert_true(w->n < 800);
	snprintf(w->names[w->n++], sizeof(w->names[0]), "%s", m->name);
}

/* store_compact: records replaced by larger ones leave a few in sparse slabs; compacting moves
 * those into the free slots of others and the emptied slabs go back, every index, group,
 * order and view still right */
static void test_compact(void **state)
{
	static const char *const kinds[] = {"vm", NULL}; /* vm grouped by controller, vmi not */
	static struct walked before, after;
	struct store *s = snew();
	struct slabs_stats st0, st1;
	char name[16], uid[40], owner[40];
	const char *kind[] = {"vm", "vmi"};
	json_object *view, **list;
	size_t i, k, n, moved;

	(void)state;
	store_owner_kinds(s, kinds);
	for (i = 0; i < 400; i++) {
		for (k = 0; k < 2; k++) {
			snprintf(name, sizeof(name), "r-%zu", i);
			snprintf(uid, sizeof(uid), "00000000-0000-4000-800%zu-%012zx", k, i);
			snprintf(owner, sizeof(owner), "00000000-0000-4000-9000-%012zx", i % 10);
			set(s, kind[k], mkpad(name, uid, "1", owner, 8));
		}
	}
	for (i = 0; i < 400; i++) { /* nine in ten grow into another size class */
		for (k = 0; k < 2 && i % 10 != 3; k++) {
			snprintf(name, sizeof(name), "r-%zu", i);
			snprintf(uid, sizeof(uid), "00000000-0000-4000-800%zu-%012zx", k, i);
			snprintf(owner, sizeof(owner), "00000000-0000-4000-9000-%012zx", i % 10);
			set(s, kind[k], mkpad(name, uid, "2", owner, 300));
		}
	}
	view = store_get(s, "vmi", "ns", "r-13"); /* a view of a record that will move */
	assert_non_null(view);
	store_foreach_meta(s, "vm", walk_names, &before);
	store_slabs_stats(s, &st0);
	moved = store_compact(s);
	store_slabs_stats(s, &st1);
	assert_true(moved > 0);
	assert_true(st1.mapped + SLAB_SIZE <= st0.mapped);
	assert_int_equal(st1.used, st0.used);
	assert_int_equal(store_compact(s), 0); /* nothing more worth moving */
	assert_string_equal(obj_name(view), "r-13");
	assert_true(store_get(s, "vmi", "ns", "r-13") == view);
	store_foreach_meta(s, "vm", walk_names, &after);
	assert_int_equal(after.n, 400);
	assert_memory_equal(before.names, after.names, sizeof(before.names));
	for (i = 0; i < 400; i++) {
		for (k = 0; k < 2; k++) {
			snprintf(name, sizeof(name), "r-%zu", i);
			snprintf(uid, sizeof(uid), "00000000-0000-4000-800%zu-%012zx", k, i);
			assert_non_null(store_meta(s, kind[k], "ns", name));
			assert_string_equal(store_meta_uid(s, kind[k], uid)->name, name);
			assert_string_equal(
			    store_meta(s, kind[k], "ns", name)->rv, i % 10 == 3 ? "1" : "2");
		}
	}
	for (i = 0; i < 10; i++) {
		snprintf(owner, sizeof(owner), "00000000-0000-4000-9000-%012zx", i);
		n = store_owned(s, "vm", "ns", owner, &list);
		assert_int_equal(n, 40);
		free(list);
	}
	store_release_views(s);
	for (i = 400; i < 410; i++) { /* new names go at the tail, walking back from it */
		snprintf(name, sizeof(name), "r-%zu", i);
		set(s, "vm", mkpad(name, "", "1", "00000000-0000-4000-9000-000000000001", 8));
	}
	assert_int_equal(
	    store_owned(s, "vm", "ns", "00000000-0000-4000-9000-000000000001", &list), 50);
	free(list);
	for (i = 410; i-- > 0;) { /* from the tail: the backward links */
		snprintf(name, sizeof(name), "r-%zu", i);
		assert_int_equal(store_del(s, "vm", "ns", name), 1);
		if (i < 400)
			assert_int_equal(store_del(s, "vmi", "ns", name), 1);
	}
	assert_int_equal(store_count(s, "vm") + store_count(s, "vmi"), 0);
	store_free(s);
	memset(&before, 0, sizeof(before));
	memset(&after, 0, sizeof(after));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_get),
	    cmocka_unit_test(test_views_decode),
	    cmocka_unit_test(test_view_lifetime),
	    cmocka_unit_test(test_views_many),
	    cmocka_unit_test(test_strings_too_long),
	    cmocka_unit_test(test_put_same_pointer),
	    cmocka_unit_test(test_cluster_scoped_and_bad),
	    cmocka_unit_test(test_take),
	    cmocka_unit_test(test_uid_index),
	    cmocka_unit_test(test_uuid_uids),
	    cmocka_unit_test(test_owner_index),
	    cmocka_unit_test(test_owner_kinds),
	    cmocka_unit_test(test_owner_links_only_grouped),
	    cmocka_unit_test(test_compact),
	    cmocka_unit_test(test_traits),
	    cmocka_unit_test(test_deleting),
	    cmocka_unit_test(test_foreach),
	    cmocka_unit_test(test_walk_after),
	    cmocka_unit_test(test_clear),
	    cmocka_unit_test(test_compact_and_marks),
	};
	int failed = cmocka_run_group_tests_name("plain", tests, NULL, NULL);

	compact = 1;
	return failed + cmocka_run_group_tests_name("compact", tests, NULL, NULL);
}

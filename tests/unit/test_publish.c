/*
 * test_publish.c: the watcher's paced snapshots (watcher/publish.c, link.c's pub) against
 * subscribers that read slowly, on a private run directory in one event loop. The store
 * changes while the snapshots are in progress (objects replaced, deleted, added, deleted
 * and created again under a new uid), the way the informer changes it (store first, then
 * the sink). At the end every subscriber's mirror (common/mirror.c, fed by hand) equals
 * the store, although it started with an older picture of its own; at every turn no
 * subscriber has more queued than the watermark and one object plus every change made so
 * far; one subscriber drops in the middle of its snapshot.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "codec.h"
#include "link.h"
#include "mirror.h"
#include "msg.h"
#include "proto.h"
#include "store.h"
#include "xmalloc.h"
#include "../../watcher/publish.h"

#define TP_POOLS  20
#define TP_VMS    3000 /* about 2.5 MB of snapshot: ten times the watermark */
#define TP_PAD    700
#define TP_FRAME  (TP_PAD + 512) /* an object's frame is smaller than this */
#define TP_SUBS   4
#define TP_ROUNDS 200000 /* a bound, never reached when the test passes */

static const char *const tp_kinds[] = {KIND_POOL, KIND_VM};
static const int tp_accept[] = {0};
static const struct link_spec tp_spec = {LINK_WATCHER, tp_accept, 0};

struct tp_sub {
	int fd;
	struct buf in;
	struct mirror *m;
	size_t per_round; /* bytes read each round */
	int ends;         /* SYNC_END frames applied */
	int sets;         /* OBJ_SET frames read */
	int hello;
};

struct tp {
	struct event_base *base;
	char dir[64];
	char *path;
	struct store *store;
	struct publish *pub;
	struct tp_sub sub[TP_SUBS];
	int vm_live[TP_VMS * 2];
	int nvm;        /* names vm-0 .. vm-(nvm-1) were used */
	long rv, uid;   /* the next resourceVersion and uid */
	size_t changed; /* frame bytes of every change published so far */
	unsigned rng;
};

static struct tp P;

static unsigned tp_rand(struct tp *t)
{
	t->rng = t->rng * 1103515245u + 12345u;
	return (t->rng >> 8) & 0xffffff;
}

static json_object *tp_obj(struct tp *t, const char *kind, const char *name, long uid)
{
	json_object *o = json_object_new_object(), *meta = json_object_new_object();
	char buf[TP_PAD + 1], s[64];

	memset(buf, 'a' + (int)(t->rv % 26), TP_PAD);
	buf[TP_PAD] = '\0';
	json_object_object_add(meta, "name", json_object_new_string(name));
	json_object_object_add(meta, "namespace", json_object_new_string("ns"));
	snprintf(s, sizeof s, "uid-%ld", uid);
	json_object_object_add(meta, "uid", json_object_new_string(s));
	snprintf(s, sizeof s, "%ld", t->rv++);
	json_object_object_add(meta, "resourceVersion", json_object_new_string(s));
	json_object_object_add(o, "kind", json_object_new_string(kind));
	json_object_object_add(o, "metadata", meta);
	json_object_object_add(o, "pad", json_object_new_string(buf));
	return o;
}

/* as the informer does it: the store first, then the sink */
static void tp_set(struct tp *t, const char *kind, const char *name, long uid)
{
	json_object *obj = tp_obj(t, kind, name, uid), *prev;

	prev = store_put(t->store, kind, json_object_get(obj));
	publish_set(t->pub, kind, obj);
	json_object_put(prev);
	json_object_put(obj);
	store_release_views(t->store);
	t->changed += TP_FRAME;
}

static void tp_del(struct tp *t, const char *kind, const char *name)
{
	json_object *old = store_take(t->store, kind, "ns", name);

	assert_non_null(old);
	publish_del(t->pub, kind, old);
	json_object_put(old);
	t->changed += TP_FRAME;
}

static long tp_uid_of(struct tp *t, const char *kind, const char *name)
{
	const struct store_meta *m = store_meta(t->store, kind, "ns", name);

	assert_non_null(m);
	return strtol(m->uid + 4, NULL, 10);
}

/* one change of the store, published */
static void tp_change(struct tp *t)
{
	char name[32];
	unsigned op = tp_rand(t) % 5;
	int i = (int)(tp_rand(t) % (unsigned)t->nvm);

	if (op == 4) { /* a pool: the part every snapshot sends first */
		snprintf(name, sizeof name, "pool-%u", tp_rand(t) % TP_POOLS);
		tp_set(t, KIND_POOL, name, tp_uid_of(t, KIND_POOL, name));
		return;
	}
	if (op == 3 && t->nvm < TP_VMS * 2) { /* a new name: it enters at the end */
		i = t->nvm++;
		snprintf(name, sizeof name, "vm-%d", i);
		tp_set(t, KIND_VM, name, t->uid++);
		t->vm_live[i] = 1;
		return;
	}
	snprintf(name, sizeof name, "vm-%d", i);
	if (!t->vm_live[i]) { /* created again, under a new uid */
		tp_set(t, KIND_VM, name, t->uid++);
		t->vm_live[i] = 1;
	} else if (op == 2) {
		tp_del(t, KIND_VM, name);
		t->vm_live[i] = 0;
	} else if (op == 1) { /* deleted and created again at once */
		tp_del(t, KIND_VM, name);
		tp_set(t, KIND_VM, name, t->uid++);
	} else {
		tp_set(t, KIND_VM, name, tp_uid_of(t, KIND_VM, name));
	}
}

static int tp_setup(void **state)
{
	char name[32];
	int i;

	memset(&P, 0, sizeof P);
	P.base = event_base_new();
	snprintf(P.dir, sizeof P.dir, "/tmp/test_publish.XXXXXX");
	assert_non_null(mkdtemp(P.dir));
	P.path = link_sock_path(P.dir, LINK_WATCHER);
	P.store = store_new_compact(); /* as the watcher's: sent expanded */
	P.pub = publish_new(P.base, P.path, &tp_spec, P.store, tp_kinds, 2);
	assert_non_null(P.pub);
	P.rv = 1;
	P.uid = 1;
	P.rng = 7;
	for (i = 0; i < TP_POOLS; i++) {
		snprintf(name, sizeof name, "pool-%d", i);
		tp_set(&P, KIND_POOL, name, P.uid++);
	}
	for (i = 0; i < TP_VMS; i++) {
		snprintf(name, sizeof name, "vm-%d", i);
		tp_set(&P, KIND_VM, name, P.uid++);
		P.vm_live[i] = 1;
	}
	P.nvm = TP_VMS;
	P.changed = 0;
	for (i = 0; i < TP_SUBS; i++)
		P.sub[i].fd = -1;
	*state = &P;
	return 0;
}

static int tp_teardown(void **state)
{
	char cmd[128];
	int i;

	for (i = 0; i < TP_SUBS; i++) {
		if (P.sub[i].fd != -1)
			close(P.sub[i].fd);
		buf_clear(&P.sub[i].in);
		mirror_free(P.sub[i].m);
	}
	publish_free(P.pub);
	store_free(P.store);
	event_base_free(P.base);
	free(P.path);
	snprintf(cmd, sizeof cmd, "rm -rf %s", P.dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", P.dir);
	return 0;
}

static void tp_apply(struct tp_sub *s, int type, json_object *body)
{
	assert_int_equal(mirror_apply(s->m, type, body), 0);
	if (type == MSG_SYNC_END)
		s->ends++;
	if (type == MSG_OBJ_SET)
		s->sets++;
}

/* a subscriber whose mirror holds an older picture: a VM of another uid, an older copy of
 * one, one the store never had */
static void tp_connect(struct tp *t, struct tp_sub *s, size_t per_round)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct msg_hello h = {PROTO_VERSION, "test_publish", getpid(), LINK_WATCHER, NULL};
	json_object *body = msg_hello_pack(&h), *set;
	struct buf out = {0};
	const char *stale[] = {"vm-1", "vm-2", "vm-gone"};
	long uids[] = {999999, tp_uid_of(t, KIND_VM, "vm-2"), 5};
	size_t i;

	s->m = mirror_new(t->base, NULL, 0, NULL, NULL);
	s->per_round = per_round;
	tp_apply(s, MSG_SYNC_BEGIN, NULL);
	for (i = 0; i < 3; i++) {
		set = json_object_new_object();
		json_object_object_add(set, "kind", json_object_new_string(KIND_VM));
		json_object_object_add(set, "obj", tp_obj(t, KIND_VM, stale[i], uids[i]));
		tp_apply(s, MSG_OBJ_SET, set);
		json_object_put(set);
	}
	tp_apply(s, MSG_SYNC_END, NULL);
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", t->path);
	s->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(s->fd >= 0);
	assert_int_equal(connect(s->fd, (struct sockaddr *)&sun, sizeof sun), 0);
	codec_pack(&out, MSG_HELLO, 0, body);
	assert_int_equal(write(s->fd, out.data, out.len), (ssize_t)out.len);
	assert_int_equal(fcntl(s->fd, F_SETFL, O_NONBLOCK), 0);
	buf_clear(&out);
	json_object_put(body);
}

/* reads up to per_round bytes and applies the complete frames; 0 if nothing came */
static size_t tp_read(struct tp_sub *s)
{
	unsigned char chunk[65536];
	struct frame f;
	char err[256];
	ssize_t n;
	long used;

	if (s->fd == -1)
		return 0;
	n = read(s->fd, chunk, s->per_round < sizeof chunk ? s->per_round : sizeof chunk);
	if (n <= 0) {
		assert_true(n == -1 && errno == EAGAIN);
		return 0;
	}
	buf_add(&s->in, chunk, (size_t)n);
	while ((used = codec_unpack(
	            s->in.data, s->in.len, PROTO_MAX_FRAME_DEFAULT, &f, err, sizeof err)) > 0) {
		if (s->hello)
			tp_apply(s, f.type, f.body);
		else
			s->hello = f.type == MSG_HELLO;
		frame_clear(&f);
		buf_consume(&s->in, (size_t)used);
	}
	assert_true(used == 0);
	return (size_t)n;
}

/* one turn of the publisher's loop and of every subscriber; checks the backlog */
static size_t tp_round(struct tp *t)
{
	size_t got = 0;
	int i;

	event_base_loop(t->base, EVLOOP_NONBLOCK);
	assert_true(publish_queued(t->pub) <= PUB_SNAP_HIGH + TP_FRAME + t->changed);
	for (i = 0; i < TP_SUBS; i++)
		got += tp_read(&t->sub[i]);
	return got;
}

/* the subscriber's mirror holds exactly the store's objects, byte for byte in the form the
 * mirror keeps them (the compact form) */
static void tp_compare_one(const struct store_meta *r, void *arg)
{
	struct tp_sub *s = arg;
	struct store *ms = mirror_store(s->m);
	const struct store_meta *m = store_meta(ms, r->kind, r->ns, r->name);
	struct buf want = {0};

	assert_non_null(m);
	assert_string_equal(m->uid, r->uid);
	assert_string_equal(m->rv, r->rv);
	store_pack(ms, store_get(P.store, r->kind, r->ns, r->name), &want);
	assert_int_equal(m->len, want.len);
	assert_memory_equal(m->bytes, want.data, want.len);
	buf_clear(&want);
	store_release_views(P.store);
}

static void tp_compare(struct tp *t, struct tp_sub *s)
{
	size_t i;

	for (i = 0; i < 2; i++) {
		assert_int_equal(store_count(mirror_store(s->m), tp_kinds[i]),
		    store_count(t->store, tp_kinds[i]));
		store_foreach_meta(t->store, tp_kinds[i], tp_compare_one, s);
	}
}

static int tp_all_synced(struct tp *t)
{
	int i;

	for (i = 0; i < TP_SUBS; i++) {
		if (t->sub[i].m != NULL && t->sub[i].fd != -1 && t->sub[i].ends < 2)
			return 0;
	}
	return 1;
}

static void test_paced_snapshots(void **state)
{
	struct tp *t = *state;
	int round, idle = 0, changes = 0;

	publish_ready(t->pub);
	tp_connect(t, &t->sub[0], 4096);
	tp_connect(t, &t->sub[1], 16384);
	for (round = 0; round < TP_ROUNDS && !tp_all_synced(t); round++) {
		if (round == 50) /* one more, half way through the others' */
			tp_connect(t, &t->sub[2], 8192);
		if (round == 120) /* one that leaves in the middle of its snapshot */
			tp_connect(t, &t->sub[3], 2048);
		if (round == 200) {
			assert_true(t->sub[3].ends < 2);
			close(t->sub[3].fd);
			t->sub[3].fd = -1;
		}
		if (round % 3 == 0) {
			tp_change(t);
			changes++;
		}
		tp_round(t);
		if (round % 50 == 0)
			fprintf(stderr,
			    "DBG round %d ends %d read-buffer %zu queued %zu changed %zu\n", round,
			    t->sub[0].ends, t->sub[0].in.len, publish_queued(t->pub), t->changed);
	}
	fprintf(stderr, "DBG end round %d\n", round);
	assert_true(tp_all_synced(t));
	assert_true(changes > 100); /* the snapshots were long enough to see changes */
	/* a few changes after the snapshots, then everything read */
	for (round = 0; round < 20; round++)
		tp_change(t);
	for (round = 0; round < TP_ROUNDS && idle < 20; round++)
		idle = tp_round(t) == 0 && publish_queued(t->pub) == 0 ? idle + 1 : 0;
	assert_int_equal(idle, 20);
	tp_compare(t, &t->sub[0]);
	tp_compare(t, &t->sub[1]);
	tp_compare(t, &t->sub[2]);
	assert_int_equal(publish_subscribers(t->pub), 3);
}

/*
 * Every object changes while a subscriber that has read nothing yet holds the first steps of
 * its snapshot: the changes to the objects its cursor passed, the last one sent included,
 * go out at once, the others only once, when the cursor gets there.
 */
static void test_every_object_changes(void **state)
{
	struct tp *t = *state;
	struct tp_sub *s = &t->sub[0];
	char name[32];
	int round, idle = 0, i;

	publish_ready(t->pub);
	tp_connect(t, s, 65536);
	for (round = 0; round < 50; round++)
		event_base_loop(t->base, EVLOOP_NONBLOCK);
	assert_true(publish_queued(t->pub) > PUB_SNAP_LOW); /* it stopped: no room */
	assert_true(publish_queued(t->pub) <= PUB_SNAP_HIGH + TP_FRAME);
	for (i = 0; i < TP_POOLS; i++) {
		snprintf(name, sizeof name, "pool-%d", i);
		tp_set(t, KIND_POOL, name, tp_uid_of(t, KIND_POOL, name));
	}
	for (i = 0; i < TP_VMS; i++) {
		snprintf(name, sizeof name, "vm-%d", i);
		tp_set(t, KIND_VM, name, tp_uid_of(t, KIND_VM, name));
	}
	for (round = 0; round < TP_ROUNDS && idle < 20; round++)
		idle = tp_round(t) == 0 && publish_queued(t->pub) == 0 ? idle + 1 : 0;
	assert_int_equal(s->ends, 2);
	tp_compare(t, s);
	/* 3 sets of the older picture, the snapshot, the changes behind the cursor (a few
	 * hundred: what the first steps held), not every change once more */
	assert_true(s->sets < 3 + TP_POOLS + TP_VMS + TP_VMS / 2);
	assert_true(s->sets > 3 + TP_POOLS + TP_VMS); /* some were behind the cursor */
}

/* a subscriber that connects before the publisher is ready waits for its snapshot */
static void test_held_until_ready(void **state)
{
	struct tp *t = *state;
	int round;

	tp_connect(t, &t->sub[0], 65536);
	for (round = 0; round < 50; round++) {
		if (round == 10) { /* changes before the first snapshot go nowhere */
			store_clear(t->store);
			tp_set(t, KIND_POOL, "pool-1", 1);
			tp_set(t, KIND_VM, "vm-1", 2);
		}
		tp_round(t);
	}
	assert_int_equal(t->sub[0].ends, 1); /* its own older picture only */
	publish_ready(t->pub);
	for (round = 0; round < 1000 && t->sub[0].ends < 2; round++)
		tp_round(t);
	assert_int_equal(t->sub[0].ends, 2);
	tp_compare(t, &t->sub[0]); /* the older picture was swept */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_paced_snapshots, tp_setup, tp_teardown),
	    cmocka_unit_test_setup_teardown(test_every_object_changes, tp_setup, tp_teardown),
	    cmocka_unit_test_setup_teardown(test_held_until_ready, tp_setup, tp_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

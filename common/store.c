/*
 * store.c: the compact store (store.h). One record per object, one allocation: the links
 * into the indexes, its typed metadata (offsets of its strings, flags) and, after them, its
 * strings and msgpack bytes (the blob); a replacement is a new record. The indexes:
 *
 *   - by (kind, ns, name) and by (kind, uid): two chained hash tables threaded through the
 *     records (hnext[]), doubled when they fill;
 *   - groups, each a list of records in store order: every record of a kind, of a kind in
 *     a namespace, of a kind in a namespace under one controller uid. A group is found by
 *     its key in a pmap and dropped when it empties, so deleted namespaces and pools leave
 *     nothing behind.
 *
 * Store order is the order names entered the store (seq); a replacement keeps its seq and
 * so its place, also when it moves to another owner's group (inserted by seq).
 *
 * A record's view, once decoded (or the object store_put was given), hangs on the record
 * and on the store's view array until store_release_views() or until the record is
 * replaced or taken.
 *
 * A record is 115 bytes before its blob (it was 192 bytes plus a blob of its own): a
 * walk's store_meta is filled from it on the stack, store_meta() fills the store's one.
 */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "log.h"
#include "obj.h"
#include "pmap.h"
#include "store.h"
#include "slab.h"
#include "xmalloc.h"

enum { H_NAME, H_UID, H_N };
enum { G_KIND, G_OWNER, G_N };
/* the record's strings, in the order of its blob: also the compact form's local strings */
enum { F_NS, F_NAME, F_UID, F_RV, F_OWNER, F_N };

struct sgroup {
	struct srec *head, *tail;
	size_t n;
};

struct srec {
	struct srec *hnext[H_N];
	struct srec *gprev[G_N], *gnext[G_N];
	struct sgroup *group[G_N];
	json_object *view;
	uint64_t seq;
	uint32_t hash[H_N];
	uint32_t len;  /* of the packed bytes */
	uint32_t vidx; /* the index in store.views while view != NULL */
	unsigned mark;
	uint16_t off[F_N + 1]; /* where each string starts in blob; off[F_N]: the bytes */
	unsigned char kind;    /* index into store.kinds */
	unsigned char deleting, traits;
	char blob[];
};

/* a record's strings with their terminators must fit its 16-bit offsets */
#define STORE_STRINGS_MAX UINT16_MAX

struct htab {
	struct srec **b;
	size_t nb, n;
};

struct store {
	struct htab tab[H_N];
	struct pmap *groups; /* group key -> struct sgroup */
	char **kinds;        /* interned kind names */
	size_t nkinds;
	struct srec **views; /* records with a view */
	size_t nviews, aviews, bytes;
	struct store_meta meta; /* what store_meta() and store_meta_uid() return */
	struct slabs *slabs;    /* where the records live (slab.h) */
	uint64_t seq;
	int compact; /* records hold the compact form (codec.h), not plain msgpack */
	store_traits_fn traits;
};

static uint32_t store_hash(uint32_t h, const char *s)
{
	while (*s != '\0')
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return (h ^ 0x1f) * 16777619u; /* a separator, so ("ab","c") != ("a","bc") */
}

/* kind's index in s->kinds, added if new */
static unsigned char store_kind(struct store *s, const char *kind)
{
	size_t i;

	for (i = 0; i < s->nkinds; i++) {
		if (strcmp(s->kinds[i], kind) == 0)
			return (unsigned char)i;
	}
	if (s->nkinds > UCHAR_MAX) /* the resource table has a handful */
		fatalx("store: more than %d kinds", UCHAR_MAX + 1);
	s->kinds = xreallocarray(s->kinds, s->nkinds + 1, sizeof(*s->kinds));
	s->kinds[s->nkinds] = xstrdup(kind);
	return (unsigned char)s->nkinds++;
}

static const char *rec_str(const struct srec *r, int f)
{
	return r->blob + r->off[f];
}

/* r's metadata into *m: strings and bytes point into r */
static void rec_meta(const struct store *s, const struct srec *r, struct store_meta *m)
{
	m->kind = s->kinds[r->kind];
	m->ns = rec_str(r, F_NS);
	m->name = rec_str(r, F_NAME);
	m->uid = rec_str(r, F_UID);
	m->rv = rec_str(r, F_RV);
	m->owner = rec_str(r, F_OWNER);
	m->deleting = r->deleting;
	m->traits = r->traits;
	m->mark = r->mark;
	m->bytes = (const unsigned char *)r->blob + r->off[F_N];
	m->len = r->len;
	m->seq = r->seq;
}

struct store *store_new(void)
{
	struct store *s = xcalloc(1, sizeof *s);
	int i;

	for (i = 0; i < H_N; i++) {
		s->tab[i].nb = 64;
		s->tab[i].b = xcalloc(s->tab[i].nb, sizeof(*s->tab[i].b));
	}
	s->groups = pmap_new(free);
	s->slabs = slabs_new();
	return s;
}

struct store *store_new_compact(void)
{
	struct store *s = store_new();

	s->compact = 1;
	return s;
}

void store_traits(struct store *s, store_traits_fn fn)
{
	s->traits = fn;
}

/* ---- views ---- */

static void store_view_unlink(struct store *s, struct srec *r)
{
	struct srec *last = s->views[--s->nviews];

	s->views[r->vidx] = last; /* r itself when it is the last */
	last->vidx = r->vidx;
	r->view = NULL;
}

static void store_view_drop(struct store *s, struct srec *r)
{
	json_object *v = r->view;

	if (v == NULL)
		return;
	store_view_unlink(s, r);
	json_object_put(v);
}

static void store_view_set(struct store *s, struct srec *r, json_object *v)
{
	store_view_drop(s, r);
	if (s->nviews == s->aviews) {
		s->aviews = s->aviews != 0 ? s->aviews * 2 : 64;
		s->views = xreallocarray(s->views, s->aviews, sizeof(*s->views));
	}
	r->view = v;
	r->vidx = (uint32_t)s->nviews;
	s->views[s->nviews++] = r;
}

/* the record's object, decoded from its bytes: a new reference */
static json_object *store_decode(struct store *s, struct srec *r)
{
	const char *f[F_N];
	const unsigned char *bytes = (const unsigned char *)r->blob + r->off[F_N];
	char err[128];
	json_object *v;
	int i;

	for (i = 0; i < F_N; i++)
		f[i] = rec_str(r, i);
	if (s->compact)
		v = codec_compact_unpack(bytes, r->len, f, F_N, err, sizeof(err));
	else
		v = codec_value_unpack(bytes, r->len, err, sizeof(err));
	if (v == NULL) /* the store packed these bytes itself */
		fatalx("store: %s %s/%s does not decode: %s", s->kinds[r->kind], f[F_NS], f[F_NAME],
		    err);
	return v;
}

void store_plain(struct store *s, const struct store_meta *m, struct buf *out)
{
	const char *f[F_N] = {m->ns, m->name, m->uid, m->rv, m->owner};
	char err[128];

	if (!s->compact)
		buf_add(out, m->bytes, m->len);
	else if (codec_compact_expand(out, m->bytes, m->len, f, F_N, err, sizeof(err)) == -1)
		fatalx("store: %s %s/%s does not expand: %s", m->kind, m->ns, m->name, err);
}

static json_object *store_view(struct store *s, struct srec *r)
{
	if (r == NULL)
		return NULL;
	if (r->view == NULL)
		store_view_set(s, r, store_decode(s, r));
	return r->view;
}

void store_release_views(struct store *s)
{
	while (s->nviews > 0)
		store_view_drop(s, s->views[s->nviews - 1]);
}

size_t store_views(const struct store *s)
{
	return s->nviews;
}

size_t store_bytes(const struct store *s)
{
	return s->bytes;
}

/* ---- hash tables ---- */

static void store_tab_grow(struct htab *t, int which)
{
	struct srec **nb = xcalloc(t->nb * 2, sizeof(*nb)), *r, *next;
	size_t i, j;

	for (i = 0; i < t->nb; i++) {
		for (r = t->b[i]; r != NULL; r = next) {
			next = r->hnext[which];
			j = r->hash[which] & (t->nb * 2 - 1);
			r->hnext[which] = nb[j];
			nb[j] = r;
		}
	}
	free(t->b);
	t->b = nb;
	t->nb *= 2;
}

static void store_tab_add(struct store *s, int which, struct srec *r)
{
	struct htab *t = &s->tab[which];
	size_t i;

	if (t->n >= t->nb)
		store_tab_grow(t, which);
	i = r->hash[which] & (t->nb - 1);
	r->hnext[which] = t->b[i]; /* first: the newest of a reused uid is found */
	t->b[i] = r;
	t->n++;
}

static void store_tab_del(struct store *s, int which, struct srec *r)
{
	struct htab *t = &s->tab[which];
	struct srec **p = &t->b[r->hash[which] & (t->nb - 1)];

	for (; *p != NULL; p = &(*p)->hnext[which]) {
		if (*p == r) {
			*p = r->hnext[which];
			r->hnext[which] = NULL;
			t->n--;
			return;
		}
	}
}

static uint32_t store_name_hash(const char *kind, const char *ns, const char *name)
{
	return store_hash(store_hash(store_hash(2166136261u, kind), ns), name);
}

static uint32_t store_uid_hash(const char *kind, const char *uid)
{
	return store_hash(store_hash(2166136261u, kind), uid);
}

static struct srec *store_find(struct store *s, const char *kind, const char *ns, const char *name)
{
	struct htab *t = &s->tab[H_NAME];
	struct srec *r;
	uint32_t h;

	if (kind == NULL || name == NULL)
		return NULL;
	if (ns == NULL)
		ns = "";
	h = store_name_hash(kind, ns, name);
	for (r = t->b[h & (t->nb - 1)]; r != NULL; r = r->hnext[H_NAME]) {
		if (r->hash[H_NAME] == h && strcmp(rec_str(r, F_NAME), name) == 0 &&
		    strcmp(rec_str(r, F_NS), ns) == 0 && strcmp(s->kinds[r->kind], kind) == 0)
			return r;
	}
	return NULL;
}

static struct srec *store_find_uid(struct store *s, const char *kind, const char *uid)
{
	struct htab *t = &s->tab[H_UID];
	struct srec *r;
	uint32_t h;

	if (kind == NULL || uid == NULL || *uid == '\0')
		return NULL;
	h = store_uid_hash(kind, uid);
	for (r = t->b[h & (t->nb - 1)]; r != NULL; r = r->hnext[H_UID]) {
		if (r->hash[H_UID] == h && strcmp(rec_str(r, F_UID), uid) == 0 &&
		    strcmp(s->kinds[r->kind], kind) == 0)
			return r;
	}
	return NULL;
}

/* ---- groups ---- */

static char *store_group_key(int fam, const char *kind, const char *ns, const char *owner)
{
	char *key;

	if (fam == G_KIND)
		xasprintf(&key, "k\x1f%s", kind);
	else
		xasprintf(&key, "o\x1f%s\x1f%s\x1f%s", kind, ns, owner);
	return key;
}

static struct sgroup *store_group(
    struct store *s, int fam, const char *kind, const char *ns, const char *owner, int create)
{
	char *key = store_group_key(fam, kind, ns != NULL ? ns : "", owner);
	struct sgroup *g = pmap_get(s->groups, key);

	if (g == NULL && create) {
		g = xcalloc(1, sizeof(*g));
		pmap_put(s->groups, key, g);
	}
	free(key);
	return g;
}

/* files r in group family fam, by seq (at the tail unless it is an older name) */
static void store_group_link(struct store *s, struct srec *r, int fam)
{
	struct sgroup *g =
	    store_group(s, fam, s->kinds[r->kind], rec_str(r, F_NS), rec_str(r, F_OWNER), 1);
	struct srec *at = g->tail;

	while (at != NULL && at->seq > r->seq)
		at = at->gprev[fam];
	r->gprev[fam] = at;
	r->gnext[fam] = at != NULL ? at->gnext[fam] : g->head;
	if (r->gnext[fam] != NULL)
		r->gnext[fam]->gprev[fam] = r;
	else
		g->tail = r;
	if (at != NULL)
		at->gnext[fam] = r;
	else
		g->head = r;
	r->group[fam] = g;
	g->n++;
}

static void store_group_unlink(struct store *s, struct srec *r, int fam)
{
	struct sgroup *g = r->group[fam];
	char *key;

	if (r->gprev[fam] != NULL)
		r->gprev[fam]->gnext[fam] = r->gnext[fam];
	else
		g->head = r->gnext[fam];
	if (r->gnext[fam] != NULL)
		r->gnext[fam]->gprev[fam] = r->gprev[fam];
	else
		g->tail = r->gprev[fam];
	r->gprev[fam] = r->gnext[fam] = NULL;
	r->group[fam] = NULL;
	if (--g->n == 0) {
		key =
		    store_group_key(fam, s->kinds[r->kind], rec_str(r, F_NS), rec_str(r, F_OWNER));
		pmap_del(s->groups, key);
		free(key);
	}
}

/* ---- records ---- */

static const char *store_owner_of(json_object *obj)
{
	json_object *ref = obj_controller_ref(obj);
	const char *uid;

	if (ref == NULL)
		return "";
	uid = obj_str(ref, "uid");
	return uid != NULL && *uid != '\0' ? uid : "-"; /* controlled, by nothing we can name */
}

static void store_strings(json_object *obj, const char *f[F_N])
{
	size_t i;

	f[F_NS] = obj_namespace(obj);
	f[F_NAME] = obj_name(obj);
	f[F_UID] = obj_uid(obj);
	f[F_RV] = obj_str(obj, "metadata.resourceVersion");
	f[F_OWNER] = store_owner_of(obj);
	for (i = 0; i < F_N; i++) {
		if (f[i] == NULL)
			f[i] = "";
	}
}

/* obj as s keeps it: plain msgpack, or the compact form over obj's own strings */
static void store_pack_strings(
    struct store *s, json_object *obj, const char *f[F_N], struct buf *out)
{
	if (s->compact)
		codec_compact_pack(out, obj, f, F_N);
	else
		codec_value_pack(out, obj);
}

void store_pack(struct store *s, json_object *obj, struct buf *out)
{
	const char *f[F_N];

	store_strings(obj, f);
	store_pack_strings(s, obj, f, out);
}

/*
 * A new record of kind for obj: its strings f and packed bytes after the links, at place
 * seq in store order, with mark; NULL (logged) if the strings do not fit the offsets.
 */
static struct srec *store_rec_new(struct store *s, unsigned char kind, json_object *obj,
    const char *f[F_N], const struct buf *packed, uint64_t seq, unsigned mark)
{
	size_t l[F_N], total = 0, i;
	struct srec *r;

	for (i = 0; i < F_N; i++)
		total += (l[i] = strlen(f[i]) + 1);
	if (total > STORE_STRINGS_MAX || packed->len > UINT32_MAX) {
		log_warnx(NULL, "store: %s %s with %zu bytes of metadata strings dropped",
		    log_escape(s->kinds[kind]), log_escape(f[F_NAME]), total);
		return NULL;
	}
	r = slabs_alloc(s->slabs, offsetof(struct srec, blob) + total + packed->len);
	for (i = 0, total = 0; i < F_N; i++) {
		r->off[i] = (uint16_t)total;
		memcpy(r->blob + total, f[i], l[i]);
		total += l[i];
	}
	r->off[F_N] = (uint16_t)total;
	memcpy(r->blob + total, packed->data, packed->len);
	r->len = (uint32_t)packed->len;
	r->kind = kind;
	r->seq = seq;
	r->mark = mark;
	r->deleting = obj_path(obj, "metadata.deletionTimestamp") != NULL;
	r->traits = s->traits != NULL ? s->traits(s->kinds[kind], obj) : 0;
	r->hash[H_NAME] = store_name_hash(s->kinds[kind], f[F_NS], f[F_NAME]);
	r->hash[H_UID] = store_uid_hash(s->kinds[kind], f[F_UID]);
	return r;
}

static void store_link(struct store *s, struct srec *r)
{
	int i;

	store_tab_add(s, H_NAME, r);
	if (*rec_str(r, F_UID) != '\0')
		store_tab_add(s, H_UID, r);
	for (i = 0; i < G_N; i++)
		store_group_link(s, r, i);
	s->bytes += r->len;
}

static void store_unlink(struct store *s, struct srec *r)
{
	int i;

	store_tab_del(s, H_NAME, r);
	if (*rec_str(r, F_UID) != '\0')
		store_tab_del(s, H_UID, r);
	for (i = 0; i < G_N; i++)
		store_group_unlink(s, r, i);
	s->bytes -= r->len;
}

static void store_drop(struct store *s, struct srec *r)
{
	store_view_drop(s, r);
	store_unlink(s, r);
	slabs_free(s->slabs, r, offsetof(struct srec, blob) + r->off[F_N] + r->len);
}

/*
 * Stores obj under kind. *old (if old is not NULL) gets the previous object as a new
 * reference; without old the previous view is just dropped. Returns the record, or NULL
 * if obj has no name.
 */
static struct srec *store_write(
    struct store *s, const char *kind, json_object *obj, json_object **old)
{
	struct buf packed = {0};
	const char *f[F_N];
	struct srec *r, *nr;
	uint64_t seq;
	unsigned mark = 0;
	unsigned char k;

	if (old != NULL)
		*old = NULL;
	if (obj_name(obj) == NULL) {
		log_warnx(NULL, "store: %s object without metadata.name dropped", log_escape(kind));
		return NULL;
	}
	if (codec_too_deep(obj, CODEC_OBJ_MAX_DEPTH)) { /* it must decode again */
		log_warnx(NULL, "store: %s %s nested deeper than %d dropped", log_escape(kind),
		    log_escape(obj_name(obj)), CODEC_OBJ_MAX_DEPTH);
		return NULL;
	}
	k = store_kind(s, kind);
	store_strings(obj, f);
	store_pack_strings(s, obj, f, &packed);
	r = store_find(s, kind, obj_namespace(obj), obj_name(obj));
	seq = r != NULL ? r->seq : s->seq + 1; /* a replacement keeps its place */
	if (r != NULL)
		mark = r->mark;
	nr = store_rec_new(s, k, obj, f, &packed, seq, mark);
	buf_clear(&packed);
	if (nr == NULL)
		return NULL; /* the stored one, if any, stays */
	if (r != NULL) {
		if (old != NULL && r->view != NULL) {
			*old = r->view; /* the store's reference passes to the caller */
			store_view_unlink(s, r);
		} else if (old != NULL)
			*old = store_decode(s, r);
		store_drop(s, r);
	} else
		s->seq = seq;
	store_link(s, nr);
	return nr;
}

json_object *store_put(struct store *s, const char *kind, json_object *obj)
{
	json_object *old;
	struct srec *r = store_write(s, kind, obj, &old);

	if (r == NULL) {
		json_object_put(obj);
		return NULL;
	}
	store_view_set(s, r, obj);
	return old;
}

int store_set(struct store *s, const char *kind, json_object *obj)
{
	return store_write(s, kind, obj, NULL) != NULL ? 0 : -1;
}

json_object *store_take(struct store *s, const char *kind, const char *ns, const char *name)
{
	struct srec *r = store_find(s, kind, ns, name);
	json_object *v;

	if (r == NULL)
		return NULL;
	if ((v = r->view) != NULL)
		store_view_unlink(s, r); /* the reference passes to the caller */
	else
		v = store_decode(s, r);
	store_drop(s, r);
	return v;
}

int store_del(struct store *s, const char *kind, const char *ns, const char *name)
{
	struct srec *r = store_find(s, kind, ns, name);

	if (r == NULL)
		return 0;
	store_drop(s, r);
	return 1;
}

int store_mark(struct store *s, const char *kind, const char *ns, const char *name, unsigned mark)
{
	struct srec *r = store_find(s, kind, ns, name);

	if (r == NULL)
		return 0;
	r->mark = mark;
	return 1;
}

json_object *store_get(struct store *s, const char *kind, const char *ns, const char *name)
{
	return store_view(s, store_find(s, kind, ns, name));
}

json_object *store_get_uid(struct store *s, const char *kind, const char *uid)
{
	return store_view(s, store_find_uid(s, kind, uid));
}

const struct store_meta *store_meta(
    struct store *s, const char *kind, const char *ns, const char *name)
{
	struct srec *r = store_find(s, kind, ns, name);

	if (r == NULL)
		return NULL;
	rec_meta(s, r, &s->meta);
	return &s->meta;
}

const struct store_meta *store_meta_uid(struct store *s, const char *kind, const char *uid)
{
	struct srec *r = store_find_uid(s, kind, uid);

	if (r == NULL)
		return NULL;
	rec_meta(s, r, &s->meta);
	return &s->meta;
}

/* ---- walks ---- */

static void store_walk(struct store *s, struct sgroup *g, int fam, store_fn fn, void *arg)
{
	struct srec *r;
	json_object *v;

	for (r = g != NULL ? g->head : NULL; r != NULL; r = r->gnext[fam]) {
		if (r->view != NULL) {
			fn(r->view, arg);
			continue;
		}
		v = store_decode(s, r); /* valid during the callback only */
		fn(v, arg);
		json_object_put(v);
	}
}

void store_foreach(struct store *s, const char *kind, store_fn fn, void *arg)
{
	store_walk(s, store_group(s, G_KIND, kind, NULL, NULL, 0), G_KIND, fn, arg);
}

void store_foreach_meta(struct store *s, const char *kind, store_meta_fn fn, void *arg)
{
	struct sgroup *g = store_group(s, G_KIND, kind, NULL, NULL, 0);
	struct store_meta m;
	struct srec *r;

	for (r = g != NULL ? g->head : NULL; r != NULL; r = r->gnext[G_KIND]) {
		rec_meta(s, r, &m);
		fn(&m, arg);
	}
}

int store_walk_meta_after(
    struct store *s, const char *kind, uint64_t seq, store_meta_until_fn fn, void *arg)
{
	struct sgroup *g = store_group(s, G_KIND, kind, NULL, NULL, 0);
	struct store_meta m;
	struct srec *r;

	/* the group is in seq order: skip what was walked before */
	for (r = g != NULL ? g->head : NULL; r != NULL && r->seq <= seq; r = r->gnext[G_KIND])
		;
	for (; r != NULL; r = r->gnext[G_KIND]) {
		rec_meta(s, r, &m);
		if (!fn(&m, arg))
			return 0;
	}
	return 1;
}

size_t store_owned(
    struct store *s, const char *kind, const char *ns, const char *owner, json_object ***objs)
{
	struct sgroup *g = store_group(s, G_OWNER, kind, ns, owner != NULL ? owner : "", 0);
	struct srec *r;
	size_t n = g != NULL ? g->n : 0, i = 0;

	*objs = xcalloc(n + 1, sizeof(**objs));
	for (r = g != NULL ? g->head : NULL; r != NULL && i < n; r = r->gnext[G_OWNER])
		(*objs)[i++] = store_view(s, r);
	return i;
}

void store_foreach_owned_meta(struct store *s, const char *kind, const char *ns, const char *owner,
    store_meta_fn fn, void *arg)
{
	struct sgroup *g = store_group(s, G_OWNER, kind, ns, owner != NULL ? owner : "", 0);
	struct store_meta m;
	struct srec *r;

	for (r = g != NULL ? g->head : NULL; r != NULL; r = r->gnext[G_OWNER]) {
		rec_meta(s, r, &m);
		fn(&m, arg);
	}
}

size_t store_count(struct store *s, const char *kind)
{
	struct sgroup *g = store_group(s, G_KIND, kind, NULL, NULL, 0);

	return g != NULL ? g->n : 0;
}

void store_clear(struct store *s)
{
	struct htab *t = &s->tab[H_NAME];
	struct srec *r;
	size_t i;

	for (i = 0; i < t->nb; i++) {
		while ((r = t->b[i]) != NULL)
			store_drop(s, r);
	}
}

void store_free(struct store *s)
{
	size_t i;

	if (s == NULL)
		return;
	store_clear(s);
	for (i = 0; i < H_N; i++)
		free(s->tab[i].b);
	pmap_free(s->groups);
	for (i = 0; i < s->nkinds; i++)
		free(s->kinds[i]);
	free(s->kinds);
	free(s->views);
	slabs_destroy(s->slabs);
	free(s);
}

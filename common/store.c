/*
 * store.c: the compact store (store.h). One record per object, one allocation: the links
 * into the indexes, its typed metadata (where its strings end, flags) and, after them, its
 * strings and msgpack bytes (the blob); a replacement is a new record. A uid or controller
 * uid that is a UUID as the API server writes it (36 lowercase characters) is kept as its
 * 16 bytes and written out again when read (store_meta's uid_text and owner_text). The
 * indexes:
 *
 *   - by (kind, ns, name) and by (kind, uid): two chained hash tables threaded through the
 *     records (hnext[]), doubled at two records a bucket; the name's hash is kept in the
 *     record, the uid's computed again when needed (table growth, removal);
 *   - groups, each a list of records in store order: every record of a kind (the store's
 *     array by kind), of a kind in a namespace under one controller uid (found by its key
 *     in a pmap and dropped when it empties, so deleted namespaces and pools leave nothing
 *     behind).
 *
 * Store order is the order names entered the store (seq); a replacement keeps its seq and
 * so its place, also when it moves to another owner's group (inserted by seq).
 *
 * A record's view, once decoded (or the object store_put was given), is held in the
 * store's view table (by record address) until store_release_views() or until the record
 * is replaced or taken; a flag in the record says it has one.
 *
 * A record is 65 bytes before its blob, and 24 more before it for a kind grouped by
 * controller (struct sown; 89 for every record until 2026-12-04, 115 with the view, uid hash
 * and kind group in it and uids as text until 2026-12-03; 192 and a second allocation before
 * that): a walk's store_meta is filled from it on the stack, store_meta() fills the store's
 * one.
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

/* srec.flags */
#define R_DELETING  0x01 /* metadata.deletionTimestamp is set */
#define R_VIEW      0x02 /* the record has a view in store.views */
#define R_UID_BIN   0x04 /* F_UID is a UUID's 16 bytes, not a string */
#define R_OWNER_BIN 0x08 /* F_OWNER likewise */
#define R_OWNED     0x10 /* its kind is grouped by controller: a struct sown precedes it */

/* a canonical UUID (8-4-4-4-12 lowercase hex digits) as text, with its terminator */
#define UUID_TEXT 37
#define UUID_BIN  16

struct sgroup {
	struct srec *head, *tail;
	size_t n;
};

struct srec {
	struct srec *hnext[H_N];
	struct srec *kprev, *knext; /* its G_KIND group, store.kgroups[kind] */
	uint64_t seq;
	uint32_t hash; /* of (kind, ns, name); the uid's is computed when needed */
	uint32_t len;  /* of the packed bytes */
	unsigned mark;
	uint16_t end[F_N];  /* where each string ends in blob (F_NS starts at 0), the bytes after */
	unsigned char kind; /* index into store.kinds */
	unsigned char flags, traits;
	char blob[];
};

/* a record's place in its G_OWNER group, in its slot just before it: only the records of a
 * kind grouped by controller (store_owner_kinds) have one (R_OWNED) */
struct sown {
	struct srec *prev, *next;
	struct sgroup *group;
};

/* a record's strings with their terminators must fit its 16-bit offsets */
#define STORE_STRINGS_MAX UINT16_MAX

struct htab {
	struct srec **b;
	size_t nb, n;
};

/* the records with a view: open addressing by record address, linear probing */
struct vslot {
	struct srec *r;
	json_object *v;
};

struct store {
	struct htab tab[H_N];
	struct pmap *groups;     /* G_OWNER group key -> struct sgroup */
	char **kinds;            /* interned kind names */
	struct sgroup **kgroups; /* each kind's G_KIND group */
	unsigned char *kowned;   /* whether each kind's records are grouped by controller */
	size_t nkinds;
	const char *const *owner_kinds; /* store_owner_kinds()'s, NULL: every kind */
	struct vslot *views;
	size_t nviews, aviews, bytes; /* aviews: a power of two, or 0 */
	struct store_meta meta;       /* what store_meta() and store_meta_uid() return */
	struct slabs *slabs;          /* where the records live (slab.h) */
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

/* kind's index in s->kinds, or -1 */
static int store_kind_find(const struct store *s, const char *kind)
{
	size_t i;

	for (i = 0; kind != NULL && i < s->nkinds; i++) {
		if (strcmp(s->kinds[i], kind) == 0)
			return (int)i;
	}
	return -1;
}

/* kind's index in s->kinds, added if new */
static unsigned char store_kind(struct store *s, const char *kind)
{
	int k = store_kind_find(s, kind);

	if (k != -1)
		return (unsigned char)k;
	if (s->nkinds > UCHAR_MAX) /* the resource table has a handful */
		fatalx("store: more than %d kinds", UCHAR_MAX + 1);
	s->kinds = xreallocarray(s->kinds, s->nkinds + 1, sizeof(*s->kinds));
	s->kgroups = xreallocarray(s->kgroups, s->nkinds + 1, sizeof(*s->kgroups));
	s->kowned = xreallocarray(s->kowned, s->nkinds + 1, sizeof(*s->kowned));
	s->kinds[s->nkinds] = xstrdup(kind);
	s->kgroups[s->nkinds] = xcalloc(1, sizeof(**s->kgroups));
	s->kowned[s->nkinds] = s->owner_kinds == NULL;
	for (k = 0; s->owner_kinds != NULL && s->owner_kinds[k] != NULL; k++) {
		if (strcmp(s->owner_kinds[k], kind) == 0)
			s->kowned[s->nkinds] = 1;
	}
	return (unsigned char)s->nkinds++;
}

/* ---- uids: a canonical UUID is kept as its 16 bytes ---- */

static int uuid_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* 0 and the bytes of text if it is a UUID as the API server writes it (lowercase), else -1 */
static int uuid_parse(const char *text, unsigned char bin[UUID_BIN])
{
	size_t i, n = 0;
	int hi, lo;

	for (i = 0; i < UUID_TEXT - 1; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (text[i] != '-')
				return -1;
			continue;
		}
		if ((hi = uuid_nibble(text[i])) == -1 || (lo = uuid_nibble(text[i + 1])) == -1)
			return -1;
		bin[n++] = (unsigned char)(hi << 4 | lo);
		i++;
	}
	return text[i] == '\0' ? 0 : -1;
}

static void uuid_format(const unsigned char bin[UUID_BIN], char text[UUID_TEXT])
{
	static const char hex[] = "0123456789abcdef";
	size_t i, n = 0;

	for (i = 0; i < UUID_BIN; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			text[n++] = '-';
		text[n++] = hex[bin[i] >> 4];
		text[n++] = hex[bin[i] & 0xf];
	}
	text[n] = '\0';
}

/* the flag that says field f is kept as a UUID's bytes (0: f is always a string) */
static unsigned char field_bin(int f)
{
	return f == F_UID ? R_UID_BIN : f == F_OWNER ? R_OWNER_BIN : 0;
}

static int rec_bin(const struct srec *r, int f)
{
	return (r->flags & field_bin(f)) != 0;
}

static const char *rec_start(const struct srec *r, int f)
{
	return r->blob + (f == 0 ? 0 : r->end[f - 1]);
}

/* field f as a C string: in the record, or (a UUID kept as bytes) written into text */
static const char *rec_str(const struct srec *r, int f, char text[UUID_TEXT])
{
	if (!rec_bin(r, f))
		return rec_start(r, f);
	uuid_format((const unsigned char *)rec_start(r, f), text);
	return text;
}

/* every string of r into f (UUIDs kept as bytes written into text) */
static void rec_strings(const struct srec *r, const char *f[F_N], char text[2][UUID_TEXT])
{
	int i;

	for (i = 0; i < F_N; i++)
		f[i] = rec_str(r, i, text[i == F_OWNER]);
}

static const unsigned char *rec_bytes(const struct srec *r)
{
	return (const unsigned char *)r->blob + r->end[F_N - 1];
}

/* the bytes before r in its slot */
static size_t rec_pre(const struct srec *r)
{
	return (r->flags & R_OWNED) ? sizeof(struct sown) : 0;
}

static size_t rec_size(const struct srec *r)
{
	return rec_pre(r) + offsetof(struct srec, blob) + r->end[F_N - 1] + r->len;
}

static struct sown *rec_own(struct srec *r)
{
	return (struct sown *)(void *)((char *)r - sizeof(struct sown));
}

/* r's link to the previous (next: the next) record of its group of family fam */
static struct srec **rec_link(struct srec *r, int fam, int next)
{
	if (fam == G_KIND)
		return next ? &r->knext : &r->kprev;
	return next ? &rec_own(r)->next : &rec_own(r)->prev;
}

#define PREV(r, fam) (*rec_link((r), (fam), 0))
#define NEXT(r, fam) (*rec_link((r), (fam), 1))

/* is field f of r the string str (parsed: its bytes if it is a UUID, else NULL)? */
static int rec_is(const struct srec *r, int f, const char *str, const unsigned char *parsed)
{
	if (rec_bin(r, f))
		return parsed != NULL && memcmp(rec_start(r, f), parsed, UUID_BIN) == 0;
	return strcmp(rec_start(r, f), str) == 0;
}

/* r's metadata into *m: strings and bytes point into r or into m */
static void rec_meta(const struct store *s, const struct srec *r, struct store_meta *m)
{
	m->kind = s->kinds[r->kind];
	m->ns = rec_str(r, F_NS, NULL);
	m->name = rec_str(r, F_NAME, NULL);
	m->uid = rec_str(r, F_UID, m->uid_text);
	m->rv = rec_str(r, F_RV, NULL);
	m->owner = rec_str(r, F_OWNER, m->owner_text);
	m->deleting = (r->flags & R_DELETING) != 0;
	m->traits = r->traits;
	m->mark = r->mark;
	m->bytes = rec_bytes(r);
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

void store_owner_kinds(struct store *s, const char *const *kinds)
{
	if (s->nkinds != 0) /* the kinds seen so far were grouped by the old rule */
		fatalx("store_owner_kinds on a store that has held objects");
	s->owner_kinds = kinds;
}

/* ---- views ---- */

static size_t store_view_slot(const struct store *s, const struct srec *r)
{
	uintptr_t h = (uintptr_t)r >> 4; /* records are 16-byte aligned */

	h ^= h >> 17;
	h *= 0x9e3779b97f4a7c15u;
	return (size_t)(h >> 7) & (s->aviews - 1);
}

/* r's slot: the one holding it, or the empty one where it would go */
static struct vslot *store_view_find(const struct store *s, const struct srec *r)
{
	size_t i = store_view_slot(s, r);

	while (s->views[i].r != NULL && s->views[i].r != r)
		i = (i + 1) & (s->aviews - 1);
	return &s->views[i];
}

static void store_view_resize(struct store *s, size_t n)
{
	struct vslot *old = s->views;
	size_t i, na = s->aviews;

	s->views = n != 0 ? xcalloc(n, sizeof(*s->views)) : NULL;
	s->aviews = n;
	for (i = 0; i < na; i++) {
		if (old[i].r != NULL)
			*store_view_find(s, old[i].r) = old[i];
	}
	free(old);
}

/* takes r's view out of the table (the caller has it) */
static json_object *store_view_unlink(struct store *s, struct srec *r)
{
	struct vslot *at = store_view_find(s, r);
	json_object *v = at->v;
	size_t i = (size_t)(at - s->views), j = i, k;

	/* backward-shift deletion: move up every later entry of the run that may move */
	for (;;) {
		s->views[i].r = NULL;
		s->views[i].v = NULL;
		for (;;) {
			j = (j + 1) & (s->aviews - 1);
			if (s->views[j].r == NULL)
				goto done;
			k = store_view_slot(s, s->views[j].r);
			/* the entry at j stays if its home k lies cyclically in (i, j] */
			if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
				continue;
			break;
		}
		s->views[i] = s->views[j];
		i = j;
	}
done:
	s->nviews--;
	r->flags &= (unsigned char)~R_VIEW;
	return v;
}

static void store_view_drop(struct store *s, struct srec *r)
{
	if (r->flags & R_VIEW)
		json_object_put(store_view_unlink(s, r));
}

static void store_view_set(struct store *s, struct srec *r, json_object *v)
{
	struct vslot *at;

	store_view_drop(s, r);
	if ((s->nviews + 1) * 2 > s->aviews)
		store_view_resize(s, s->aviews != 0 ? s->aviews * 2 : 64);
	at = store_view_find(s, r);
	at->r = r;
	at->v = v;
	s->nviews++;
	r->flags |= R_VIEW;
}

static json_object *rec_view(const struct store *s, const struct srec *r)
{
	return (r->flags & R_VIEW) ? store_view_find(s, r)->v : NULL;
}

/* the record's object, decoded from its bytes: a new reference */
static json_object *store_decode(struct store *s, struct srec *r)
{
	char err[128], text[2][UUID_TEXT];
	const char *f[F_N];
	json_object *v;

	rec_strings(r, f, text);
	if (s->compact)
		v = codec_compact_unpack(rec_bytes(r), r->len, f, F_N, err, sizeof(err));
	else
		v = codec_value_unpack(rec_bytes(r), r->len, err, sizeof(err));
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
	if (!(r->flags & R_VIEW))
		store_view_set(s, r, store_decode(s, r));
	return rec_view(s, r);
}

void store_release_views(struct store *s)
{
	size_t i;

	for (i = 0; i < s->aviews && s->nviews > 0; i++) {
		if (s->views[i].r == NULL)
			continue;
		s->views[i].r->flags &= (unsigned char)~R_VIEW;
		json_object_put(s->views[i].v);
		s->views[i].r = NULL;
		s->views[i].v = NULL;
		s->nviews--;
	}
	if (s->aviews > 64) /* a snapshot's many views do not keep their table */
		store_view_resize(s, 0);
}

size_t store_views(const struct store *s)
{
	return s->nviews;
}

size_t store_bytes(const struct store *s)
{
	return s->bytes;
}

void store_slabs_stats(const struct store *s, struct slabs_stats *st)
{
	slabs_stats(s->slabs, st);
}

/* ---- hash tables ---- */

static uint32_t store_name_hash(const char *kind, const char *ns, const char *name)
{
	return store_hash(store_hash(store_hash(2166136261u, kind), ns), name);
}

static uint32_t store_uid_hash(const char *kind, const char *uid)
{
	return store_hash(store_hash(2166136261u, kind), uid);
}

static uint32_t rec_hash(const struct store *s, const struct srec *r, int which)
{
	char text[UUID_TEXT];

	if (which == H_NAME)
		return r->hash;
	return store_uid_hash(s->kinds[r->kind], rec_str(r, F_UID, text));
}

static void store_tab_grow(struct store *s, struct htab *t, int which)
{
	struct srec **nb = xcalloc(t->nb * 2, sizeof(*nb)), *r, *next;
	size_t i, j;

	for (i = 0; i < t->nb; i++) {
		for (r = t->b[i]; r != NULL; r = next) {
			next = r->hnext[which];
			j = rec_hash(s, r, which) & (t->nb * 2 - 1);
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

	if (t->n >= t->nb * 2) /* chains of 1 to 2 on average: 4 to 8 bytes a record */
		store_tab_grow(s, t, which);
	i = rec_hash(s, r, which) & (t->nb - 1);
	r->hnext[which] = t->b[i]; /* first: the newest of a reused uid is found */
	t->b[i] = r;
	t->n++;
}

static void store_tab_del(struct store *s, int which, struct srec *r)
{
	struct htab *t = &s->tab[which];
	struct srec **p = &t->b[rec_hash(s, r, which) & (t->nb - 1)];

	for (; *p != NULL; p = &(*p)->hnext[which]) {
		if (*p == r) {
			*p = r->hnext[which];
			r->hnext[which] = NULL;
			t->n--;
			return;
		}
	}
}

/* r's place in its chain of table which: the bucket or the hnext that holds it */
static struct srec **store_tab_at(struct store *s, int which, struct srec *r)
{
	struct htab *t = &s->tab[which];
	struct srec **p = &t->b[rec_hash(s, r, which) & (t->nb - 1)];

	while (*p != r)
		p = &(*p)->hnext[which];
	return p;
}

/* moves r to a new slot of its size (slabs_evacuate_begin: never one being emptied), the
 * indexes, groups and view following; frees the old slot */
static void store_rec_move(struct store *s, struct srec *r)
{
	size_t pre = rec_pre(r), size = rec_size(r);
	json_object *v = (r->flags & R_VIEW) ? store_view_unlink(s, r) : NULL;
	struct srec **name_at = store_tab_at(s, H_NAME, r), **uid_at = NULL, *nr;
	struct sgroup *g = s->kgroups[r->kind];
	struct sown *o;

	if (*rec_start(r, F_UID) != '\0' || rec_bin(r, F_UID))
		uid_at = store_tab_at(s, H_UID, r);
	nr = (struct srec *)(void *)((char *)slabs_alloc(s->slabs, size) + pre);
	memcpy((char *)nr - pre, (char *)r - pre, size);
	*name_at = nr;
	if (uid_at != NULL)
		*uid_at = nr;
	*(nr->kprev != NULL ? &nr->kprev->knext : &g->head) = nr;
	*(nr->knext != NULL ? &nr->knext->kprev : &g->tail) = nr;
	if ((nr->flags & R_OWNED) && (o = rec_own(nr))->group != NULL) {
		*(o->prev != NULL ? &rec_own(o->prev)->next : &o->group->head) = nr;
		*(o->next != NULL ? &rec_own(o->next)->prev : &o->group->tail) = nr;
	}
	slabs_free(s->slabs, (char *)r - pre, size);
	if (v != NULL)
		store_view_set(s, nr, v);
}

size_t store_compact(struct store *s)
{
	struct srec *r, *next;
	size_t k, moved = 0;

	if (slabs_evacuate_begin(s->slabs) == 0)
		return 0;
	for (k = 0; k < s->nkinds; k++) {
		for (r = s->kgroups[k]->head; r != NULL; r = next) {
			next = r->knext;
			if (rec_size(r) <= SLAB_MAX_SIZE &&
			    slabs_evacuating(s->slabs, (char *)r - rec_pre(r))) {
				store_rec_move(s, r);
				moved++;
			}
		}
	}
	slabs_evacuate_end(s->slabs);
	return moved;
}

static struct srec *store_find(struct store *s, const char *kind, const char *ns, const char *name)
{
	struct htab *t = &s->tab[H_NAME];
	struct srec *r;
	uint32_t h;
	int k;

	if (kind == NULL || name == NULL || (k = store_kind_find(s, kind)) == -1)
		return NULL;
	if (ns == NULL)
		ns = "";
	h = store_name_hash(kind, ns, name);
	for (r = t->b[h & (t->nb - 1)]; r != NULL; r = r->hnext[H_NAME]) {
		if (r->hash == h && r->kind == k && strcmp(rec_start(r, F_NAME), name) == 0 &&
		    strcmp(rec_start(r, F_NS), ns) == 0)
			return r;
	}
	return NULL;
}

static struct srec *store_find_uid(struct store *s, const char *kind, const char *uid)
{
	struct htab *t = &s->tab[H_UID];
	unsigned char bin[UUID_BIN];
	const unsigned char *parsed;
	struct srec *r;
	uint32_t h;
	int k;

	if (kind == NULL || uid == NULL || *uid == '\0' || (k = store_kind_find(s, kind)) == -1)
		return NULL;
	parsed = uuid_parse(uid, bin) == 0 ? bin : NULL;
	h = store_uid_hash(kind, uid);
	for (r = t->b[h & (t->nb - 1)]; r != NULL; r = r->hnext[H_UID]) {
		if (r->kind == k && rec_is(r, F_UID, uid, parsed))
			return r;
	}
	return NULL;
}

/* ---- groups ---- */

static char *store_group_key(const char *kind, const char *ns, const char *owner)
{
	char *key;

	xasprintf(&key, "%s\x1f%s\x1f%s", kind, ns, owner);
	return key;
}

/* the G_OWNER group of (kind, ns, owner), made if create, else NULL if there is none */
static struct sgroup *store_group(
    struct store *s, const char *kind, const char *ns, const char *owner, int create)
{
	char *key = store_group_key(kind, ns != NULL ? ns : "", owner != NULL ? owner : "");
	struct sgroup *g = pmap_get(s->groups, key);

	if (g == NULL && create) {
		g = xcalloc(1, sizeof(*g));
		pmap_put(s->groups, key, g);
	}
	free(key);
	return g;
}

static struct sgroup *store_kind_group(struct store *s, const char *kind)
{
	int k = store_kind_find(s, kind);

	return k != -1 ? s->kgroups[k] : NULL;
}

static struct sgroup *rec_group(struct srec *r, const struct store *s, int fam)
{
	return fam == G_KIND ? s->kgroups[r->kind] : rec_own(r)->group;
}

/* files r in group g of family fam, by seq (at the tail unless it is an older name) */
static void store_group_link(struct srec *r, struct sgroup *g, int fam)
{
	struct srec *at = g->tail;

	while (at != NULL && at->seq > r->seq)
		at = PREV(at, fam);
	PREV(r, fam) = at;
	NEXT(r, fam) = at != NULL ? NEXT(at, fam) : g->head;
	if (NEXT(r, fam) != NULL)
		PREV(NEXT(r, fam), fam) = r;
	else
		g->tail = r;
	if (at != NULL)
		NEXT(at, fam) = r;
	else
		g->head = r;
	g->n++;
}

/* takes r out of its group of family fam; 1 if that group is now empty */
static int store_group_unlink(struct store *s, struct srec *r, int fam)
{
	struct sgroup *g = rec_group(r, s, fam);

	if (PREV(r, fam) != NULL)
		NEXT(PREV(r, fam), fam) = NEXT(r, fam);
	else
		g->head = NEXT(r, fam);
	if (NEXT(r, fam) != NULL)
		PREV(NEXT(r, fam), fam) = PREV(r, fam);
	else
		g->tail = PREV(r, fam);
	PREV(r, fam) = NEXT(r, fam) = NULL;
	return --g->n == 0;
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

/* the bytes field f takes in a record: a UUID's 16, or the string and its terminator */
static size_t field_size(int f, const char *str, unsigned char bin[UUID_BIN], unsigned char *flags)
{
	if (field_bin(f) != 0 && uuid_parse(str, bin) == 0) {
		*flags |= field_bin(f);
		return UUID_BIN;
	}
	return strlen(str) + 1;
}

/*
 * A new record of kind for obj: its strings f and packed bytes after the links, at place
 * seq in store order, with mark; NULL (logged) if the strings do not fit the offsets.
 */
static struct srec *store_rec_new(struct store *s, unsigned char kind, json_object *obj,
    const char *f[F_N], const struct buf *packed, uint64_t seq, unsigned mark)
{
	unsigned char bin[F_N][UUID_BIN], flags = 0;
	size_t l[F_N], total = 0, i, pre = s->kowned[kind] ? sizeof(struct sown) : 0;
	struct srec *r;

	for (i = 0; i < F_N; i++)
		total += (l[i] = field_size((int)i, f[i], bin[i], &flags));
	if (total > STORE_STRINGS_MAX || packed->len > UINT32_MAX) {
		log_warnx(NULL, "store: %s %s with %zu bytes of metadata strings dropped",
		    log_escape(s->kinds[kind]), log_escape(f[F_NAME]), total);
		return NULL;
	}
	r = (struct srec *)(void *)((char *)slabs_alloc(s->slabs,
	                                pre + offsetof(struct srec, blob) + total + packed->len) +
	                            pre);
	for (i = 0, total = 0; i < F_N; i++) {
		if (flags & field_bin((int)i))
			memcpy(r->blob + total, bin[i], UUID_BIN);
		else
			memcpy(r->blob + total, f[i], l[i]);
		total += l[i];
		r->end[i] = (uint16_t)total;
	}
	memcpy(r->blob + total, packed->data, packed->len);
	r->len = (uint32_t)packed->len;
	r->kind = kind;
	r->seq = seq;
	r->mark = mark;
	r->flags = flags | (pre != 0 ? R_OWNED : 0);
	if (obj_path(obj, "metadata.deletionTimestamp") != NULL)
		r->flags |= R_DELETING;
	r->traits = s->traits != NULL ? s->traits(s->kinds[kind], obj) : 0;
	r->hash = store_name_hash(s->kinds[kind], f[F_NS], f[F_NAME]);
	return r;
}

static void store_link(struct store *s, struct srec *r)
{
	char text[UUID_TEXT];

	store_tab_add(s, H_NAME, r);
	if (*rec_start(r, F_UID) != '\0' || rec_bin(r, F_UID))
		store_tab_add(s, H_UID, r);
	store_group_link(r, s->kgroups[r->kind], G_KIND);
	s->bytes += r->len;
	if (!s->kowned[r->kind])
		return;
	rec_own(r)->group =
	    store_group(s, s->kinds[r->kind], rec_start(r, F_NS), rec_str(r, F_OWNER, text), 1);
	store_group_link(r, rec_own(r)->group, G_OWNER);
}

static void store_unlink(struct store *s, struct srec *r)
{
	char text[UUID_TEXT], *key;

	store_tab_del(s, H_NAME, r);
	if (*rec_start(r, F_UID) != '\0' || rec_bin(r, F_UID))
		store_tab_del(s, H_UID, r);
	store_group_unlink(s, r, G_KIND);
	if ((r->flags & R_OWNED) && rec_own(r)->group != NULL &&
	    store_group_unlink(s, r, G_OWNER)) { /* none left behind */
		key = store_group_key(
		    s->kinds[r->kind], rec_start(r, F_NS), rec_str(r, F_OWNER, text));
		pmap_del(s->groups, key);
		free(key);
	}
	if (r->flags & R_OWNED)
		rec_own(r)->group = NULL;
	s->bytes -= r->len;
}

static void store_drop(struct store *s, struct srec *r)
{
	store_view_drop(s, r);
	store_unlink(s, r);
	slabs_free(s->slabs, (char *)r - rec_pre(r), rec_size(r));
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
		if (old != NULL && (r->flags & R_VIEW))
			*old = store_view_unlink(s, r); /* the store's reference passes on */
		else if (old != NULL)
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
	if (r->flags & R_VIEW)
		v = store_view_unlink(s, r); /* the reference passes to the caller */
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

	for (r = g != NULL ? g->head : NULL; r != NULL; r = NEXT(r, fam)) {
		if (r->flags & R_VIEW) {
			fn(rec_view(s, r), arg);
			continue;
		}
		v = store_decode(s, r); /* valid during the callback only */
		fn(v, arg);
		json_object_put(v);
	}
}

void store_foreach(struct store *s, const char *kind, store_fn fn, void *arg)
{
	store_walk(s, store_kind_group(s, kind), G_KIND, fn, arg);
}

void store_foreach_meta(struct store *s, const char *kind, store_meta_fn fn, void *arg)
{
	struct sgroup *g = store_kind_group(s, kind);
	struct store_meta m;
	struct srec *r;

	for (r = g != NULL ? g->head : NULL; r != NULL; r = r->knext) {
		rec_meta(s, r, &m);
		fn(&m, arg);
	}
}

int store_walk_meta_after(
    struct store *s, const char *kind, uint64_t seq, store_meta_until_fn fn, void *arg)
{
	struct sgroup *g = store_kind_group(s, kind);
	struct store_meta m;
	struct srec *r;

	/* the group is in seq order: skip what was walked before */
	for (r = g != NULL ? g->head : NULL; r != NULL && r->seq <= seq; r = r->knext)
		;
	for (; r != NULL; r = r->knext) {
		rec_meta(s, r, &m);
		if (!fn(&m, arg))
			return 0;
	}
	return 1;
}

size_t store_owned(
    struct store *s, const char *kind, const char *ns, const char *owner, json_object ***objs)
{
	struct sgroup *g = store_group(s, kind, ns, owner, 0);
	struct srec *r;
	size_t n = g != NULL ? g->n : 0, i = 0;

	*objs = xcalloc(n + 1, sizeof(**objs));
	for (r = g != NULL ? g->head : NULL; r != NULL && i < n; r = rec_own(r)->next)
		(*objs)[i++] = store_view(s, r);
	return i;
}

void store_foreach_owned_meta(struct store *s, const char *kind, const char *ns, const char *owner,
    store_meta_fn fn, void *arg)
{
	struct sgroup *g = store_group(s, kind, ns, owner, 0);
	struct store_meta m;
	struct srec *r;

	for (r = g != NULL ? g->head : NULL; r != NULL; r = rec_own(r)->next) {
		rec_meta(s, r, &m);
		fn(&m, arg);
	}
}

size_t store_count(struct store *s, const char *kind)
{
	struct sgroup *g = store_kind_group(s, kind);

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
	for (i = 0; i < s->nkinds; i++) {
		free(s->kinds[i]);
		free(s->kgroups[i]);
	}
	free(s->kinds);
	free(s->kgroups);
	free(s->kowned);
	free(s->views);
	slabs_destroy(s->slabs);
	free(s);
}

/*
 * publish.c: the watcher's snapshots and changes on watcher.sock (publish.h). A snapshot's
 * cursor is (kind, seq): the kind being sent (its index in the snapshot order) and the
 * store order (store_meta.seq) of the last object sent. Store order is stable and a name
 * entering the store comes after every name there, so "the cursor has passed this object"
 * is a comparison of (kind index, seq), and a resumed walk neither repeats nor misses a
 * name.
 */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "link.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "obj.h"
#include "proto.h"
#include "publish.h"
#include "shard.h"
#include "store.h"
#include "xmalloc.h"

#define M_SUBSCRIBERS      "vmpool_watcher_subscribers"
#define M_QUEUED           "vmpool_watcher_subscriber_queued_bytes"
#define PUBLISH_PLAIN_KEEP (64 * 1024)

struct publish {
	struct pub *pub;
	struct store *store;
	const char *const *kinds;
	size_t n;
	struct shard *shard;
	struct buf plain; /* a stored object expanded for a link (store_plain), reused */
};

/* the stored object of m as a link carries it; valid until the next call */
static const struct buf *publish_plain(struct publish *p, const struct store_meta *m)
{
	if (p->plain.cap > PUBLISH_PLAIN_KEEP)
		buf_clear(&p->plain); /* one big object does not keep its buffer */
	p->plain.len = 0;
	store_plain(p->store, m, &p->plain);
	return &p->plain;
}

/* one step's walk through a kind */
struct publish_walk {
	struct publish *p;
	struct link *link;
	struct pub_cursor *cur;
	int shard_pools; /* pools of a shard: as the shard published them */
};

/* a shard's pool goes as the shard published it, or not at all (held, never seen) */
static void publish_shard_pool(struct publish_walk *w, const struct store_meta *r)
{
	json_object *obj = shard_published(w->p->shard, r->ns, r->name);
	struct buf packed = {0};

	if (obj == NULL)
		return;
	codec_value_pack(&packed, obj);
	link_send_obj(w->link, MSG_OBJ_SET, r->kind, packed.data, packed.len);
	buf_clear(&packed);
}

/* sends r unless the output is full; everything else as the store keeps it */
static int publish_one(const struct store_meta *r, void *arg)
{
	struct publish_walk *w = arg;

	if (!pub_room(w->link))
		return 0;
	if (w->shard_pools)
		publish_shard_pool(w, r);
	else {
		const struct buf *b = publish_plain(w->p, r);

		link_send_obj(w->link, MSG_OBJ_SET, r->kind, b->data, b->len);
	}
	w->cur->at.seq = r->seq;
	return 1;
}

static void publish_marker(struct link *link, int type)
{
	json_object *empty = msg_marker_pack();

	link_send(link, type, empty);
	json_object_put(empty);
}

/* the snapshot from the cursor on, as far as the subscriber's output has room */
static int publish_step(struct link *link, struct pub_cursor *cur, void *arg)
{
	struct publish *p = arg;
	struct publish_walk w = {p, link, cur, 0};

	if (!cur->begun) {
		publish_marker(link, MSG_SYNC_BEGIN);
		cur->begun = 1;
	}
	for (; cur->at.part < p->n; cur->at.part++, cur->at.seq = 0) {
		w.shard_pools = p->shard != NULL && strcmp(p->kinds[cur->at.part], KIND_POOL) == 0;
		if (!store_walk_meta_after(
		        p->store, p->kinds[cur->at.part], cur->at.seq, publish_one, &w))
			return 0;
	}
	publish_marker(link, MSG_SYNC_END);
	log_info(NULL, "snapshot sent to %s", log_escape(link_peer_program(link)));
	publish_gauge(p);
	return 1;
}

/* where the stored copy of kind/ns/name is in snapshot order; NULL if not stored */
static const struct pub_pos *publish_pos(
    struct publish *p, const struct store_meta *m, const char *kind, struct pub_pos *pos)
{
	size_t i;

	if (m == NULL)
		return NULL;
	for (i = 0; i < p->n && strcmp(p->kinds[i], kind) != 0; i++)
		;
	if (i == p->n)
		return NULL;
	pos->part = i;
	pos->seq = m->seq;
	return pos;
}

/* 1 if the record m holds obj: the same uid and resourceVersion */
static int publish_stored_is(const struct store_meta *m, json_object *obj)
{
	const char *uid = obj_uid(obj), *rv = obj_str(obj, "metadata.resourceVersion");

	return m != NULL && uid != NULL && rv != NULL && *rv != '\0' && strcmp(m->uid, uid) == 0 &&
	       strcmp(m->rv, rv) == 0;
}

void publish_set(struct publish *p, const char *kind, json_object *obj)
{
	const struct store_meta *m = store_meta(p->store, kind, obj_namespace(obj), obj_name(obj));
	const struct pub_pos *at;
	struct pub_pos pos;
	struct buf packed = {0};
	char key[512];

	log_debug(obj_key(obj, key, sizeof(key)), "%s set, resourceVersion %s", kind,
	    log_escape(obj_str(obj, "metadata.resourceVersion")));
	at = publish_pos(p, m, kind, &pos);
	if (publish_stored_is(m, obj)) {
		const struct buf *b = publish_plain(p, m);

		pub_broadcast_obj(p->pub, at, MSG_OBJ_SET, kind, b->data, b->len);
		return;
	}
	codec_value_pack(&packed, obj);
	pub_broadcast_obj(p->pub, at, MSG_OBJ_SET, kind, packed.data, packed.len);
	buf_clear(&packed);
}

void publish_del(struct publish *p, const char *kind, json_object *obj)
{
	const char *uid = obj_uid(obj);
	struct msg_obj_delete del = {kind, obj_namespace(obj), obj_name(obj), uid ? uid : ""};
	json_object *body = msg_obj_delete_pack(&del);
	char key[512];

	log_debug(obj_key(obj, key, sizeof(key)), "%s deleted", kind);
	pub_broadcast(p->pub, MSG_OBJ_DELETE, body);
	json_object_put(body);
}

struct publish *publish_new(struct event_base *base, const char *path, const struct link_spec *spec,
    struct store *store, const char *const *kinds, size_t n)
{
	struct publish *p = xcalloc(1, sizeof(*p));

	p->store = store;
	p->kinds = kinds;
	p->n = n;
	if ((p->pub = pub_new_paced(base, path, spec, publish_step, p)) == NULL) {
		free(p);
		return NULL;
	}
	return p;
}

void publish_free(struct publish *p)
{
	if (p == NULL)
		return;
	pub_free(p->pub);
	buf_clear(&p->plain);
	free(p);
}

void publish_set_shard(struct publish *p, struct shard *shard)
{
	p->shard = shard;
}

void publish_ready(struct publish *p)
{
	pub_set_ready(p->pub, 1);
}

int publish_subscribers(const struct publish *p)
{
	return pub_subscribers(p->pub);
}

void publish_metrics_declare(void)
{
	metrics_declare(M_SUBSCRIBERS, "gauge", "Subscribers connected to watcher.sock.");
	metrics_set(M_SUBSCRIBERS, NULL, 0);
	metrics_declare(M_QUEUED, "gauge",
	    "Bytes queued in the watcher for its slowest subscriber (sampled every 2 s).");
	metrics_set(M_QUEUED, NULL, 0);
}

void publish_gauge(struct publish *p)
{
	metrics_set(M_SUBSCRIBERS, NULL, pub_subscribers(p->pub));
	metrics_set(M_QUEUED, NULL, (double)pub_queued(p->pub));
}

size_t publish_queued(const struct publish *p)
{
	return pub_queued(p->pub);
}

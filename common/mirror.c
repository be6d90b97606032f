/*
 * mirror.c: the one snapshot subscriber. Frames of a snapshot stream (struct mirror_proto:
 * the watcher's objects, or the planner's pool results) from its socket (or handed in with
 * mirror_apply) are applied to a store; every real change is reported.
 *
 * Snapshots: a begin frame (SYNC_BEGIN, PSYNC_BEGIN) starts a snapshot, a new generation;
 * every set frame (OBJ_SET, POOL_RESULT) until the end frame marks its stored object with it
 * (store_mark: a field of the record, so a snapshot of 20,000 objects costs no set of keys).
 * At the end frame every stored object of an older generation is removed and reported as
 * changed(kind, old, NULL), so a restarted publisher replaces the picture wholesale without
 * the subscriber dropping objects that did not change.
 *
 * mirror_synced() is 1 from the first end frame on a connection until the link drops.
 * Callbacks must not free the mirror.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "link.h"
#include "log.h"
#include "mirror.h"
#include "msg.h"
#include "obj.h"
#include "proto.h"
#include "xmalloc.h"

struct mirror {
	const struct mirror_proto *proto;
	struct link *link;
	struct link_spec spec; /* the link keeps a pointer to it */
	struct store *store;
	struct mirror_cb cb;
	void *arg;
	int syncing;         /* between SYNC_BEGIN and SYNC_END */
	int sweeping;        /* at SYNC_END, reporting what the snapshot lacked */
	int synced;          /* a snapshot completed on this connection */
	unsigned gen;        /* the snapshot's generation: the mark of what it sent */
	mirror_trim_fn trim; /* what is kept of each object, or NULL: everything */
	void *trim_arg;
};

void mirror_set_trim(struct mirror *m, mirror_trim_fn trim, void *arg)
{
	m->trim = trim;
	m->trim_arg = arg;
}

/* ---- the two streams ---- */

static const char *const mirror_watcher_kinds[] = {
    KIND_POOL, KIND_VM, KIND_VMI, KIND_REV, KIND_PVC, KIND_DV, NULL};
static const int mirror_watcher_accept[] = {
    MSG_SYNC_BEGIN, MSG_SYNC_END, MSG_OBJ_SET, MSG_OBJ_DELETE, 0};

static int mirror_watcher_set(json_object *body, struct mirror_set *out, char *err, size_t errlen)
{
	struct msg_obj_set set;

	if (msg_obj_set_unpack(body, &set, err, errlen) == -1)
		return -1;
	out->kind = set.kind;
	out->obj = json_object_get(set.obj);
	return 0;
}

static int mirror_watcher_del(json_object *body, struct mirror_del *out, char *err, size_t errlen)
{
	struct msg_obj_delete del;

	if (msg_obj_delete_unpack(body, &del, err, errlen) == -1)
		return -1;
	out->kind = del.kind;
	out->ns = del.ns != NULL ? del.ns : "";
	out->name = del.name;
	out->uid = del.uid;
	return 0;
}

const struct mirror_proto mirror_watcher = {
    LINK_WATCHER,
    mirror_watcher_accept,
    MSG_SYNC_BEGIN,
    MSG_SYNC_END,
    MSG_OBJ_SET,
    MSG_OBJ_DELETE,
    mirror_watcher_kinds,
    mirror_watcher_set,
    mirror_watcher_del,
};

static const char *const mirror_results_kinds[] = {MIRROR_RESULT_KIND, NULL};
static const int mirror_results_accept[] = {
    MSG_PSYNC_BEGIN, MSG_PSYNC_END, MSG_POOL_RESULT, MSG_POOL_FORGET, 0};

/* a POOL_RESULT as stored: {metadata{namespace,name,uid}, ok, reason, message[, progress]} */
static int mirror_results_set(json_object *body, struct mirror_set *out, char *err, size_t errlen)
{
	struct msg_pool_result r;
	json_object *o, *md;

	if (msg_pool_result_unpack(body, &r, err, errlen) == -1)
		return -1;
	o = json_object_new_object();
	md = json_object_new_object();
	json_object_object_add(md, "namespace", json_object_new_string(r.ns));
	json_object_object_add(md, "name", json_object_new_string(r.name));
	json_object_object_add(md, "uid", json_object_new_string(r.uid));
	json_object_object_add(o, "metadata", md);
	json_object_object_add(o, "ok", json_object_new_boolean(r.ok));
	json_object_object_add(o, "reason", json_object_new_string(r.reason));
	json_object_object_add(o, "message", json_object_new_string(r.message));
	if (r.progress != NULL)
		json_object_object_add(o, "progress", json_object_new_string(r.progress));
	out->kind = MIRROR_RESULT_KIND;
	out->obj = o;
	return 0;
}

static int mirror_results_del(json_object *body, struct mirror_del *out, char *err, size_t errlen)
{
	struct msg_pool_forget f;

	if (msg_pool_forget_unpack(body, &f, err, errlen) == -1)
		return -1;
	out->kind = MIRROR_RESULT_KIND;
	out->ns = f.ns;
	out->name = f.name;
	out->uid = NULL;
	return 0;
}

const struct mirror_proto mirror_results = {
    LINK_PLANNER,
    mirror_results_accept,
    MSG_PSYNC_BEGIN,
    MSG_PSYNC_END,
    MSG_POOL_RESULT,
    MSG_POOL_FORGET,
    mirror_results_kinds,
    mirror_results_set,
    mirror_results_del,
};

/* ---- the subscriber ---- */

/* the canonical spelling of kind if it is one of KIND_*, else NULL */
static const char *mirror_kind(const struct mirror *m, const char *kind)
{
	const char *const *k;

	for (k = m->proto->kinds; *k != NULL; k++) {
		if (strcmp(kind, *k) == 0)
			return *k;
	}
	return NULL;
}

/* a frame msg.c refused: logged with the peer, dropped */
static int mirror_bad(struct mirror *m, const char *err)
{
	log_warnx(NULL, "mirror (%s): %s from %s; ignored", m->proto->link, err,
	    m->link != NULL ? log_escape(link_peer_program(m->link)) : "a recording");
	return -1;
}

/* during a snapshot: the stored object is in it */
static void mirror_mark_seen(struct mirror *m, const char *kind, json_object *obj)
{
	if (m->syncing)
		store_mark(m->store, kind, obj_namespace(obj), obj_name(obj), m->gen);
}

static void mirror_changed(struct mirror *m, const char *kind, json_object *old, json_object *new_)
{
	if (m->cb.changed != NULL)
		m->cb.changed(kind, old, new_, m->arg);
}

static int mirror_sync_begin(struct mirror *m, json_object *body)
{
	if (m->syncing)
		log_warnx(NULL, "mirror: %s inside a snapshot; starting over",
		    msg_type_name(m->proto->begin));
	if (++m->gen == 0) /* 0 is every record's mark before its first snapshot */
		m->gen = 1;
	m->syncing = 1;
	return 0;
}

struct mirror_sweep {
	struct mirror *m;
	json_object *gone; /* [ns, name] of each object to drop */
};

static void mirror_sweep_collect(const struct store_meta *r, void *arg)
{
	struct mirror_sweep *sw = arg;
	json_object *key;

	if (r->mark != sw->m->gen) {
		key = json_object_new_array();
		json_object_array_add(key, json_object_new_string(r->ns));
		json_object_array_add(key, json_object_new_string(r->name));
		json_object_array_add(sw->gone, key);
	}
}

/* removes and reports every object of kind that the snapshot did not contain */
static void mirror_sweep_kind(struct mirror *m, const char *kind)
{
	struct mirror_sweep sw = {m, json_object_new_array()};
	json_object *o, *old;
	const char *ns, *name;
	size_t i, n;

	if (sw.gone == NULL)
		fatalx("mirror: out of memory");
	store_foreach_meta(m->store, kind, mirror_sweep_collect, &sw);
	n = json_object_array_length(sw.gone);
	for (i = 0; i < n; i++) {
		o = json_object_array_get_idx(sw.gone, i);
		ns = json_object_get_string(json_object_array_get_idx(o, 0));
		name = json_object_get_string(json_object_array_get_idx(o, 1));
		old = store_take(m->store, kind, ns, name);
		if (old == NULL)
			continue;
		log_debug(NULL, "mirror: %s %s/%s not in the new snapshot", kind, log_escape(ns),
		    log_escape(name));
		mirror_changed(m, kind, old, NULL);
		json_object_put(old);
		store_release_views(m->store);
	}
	json_object_put(sw.gone);
}

static int mirror_sync_end(struct mirror *m, json_object *body)
{
	const char *const *k;

	if (!m->syncing) {
		log_warnx(NULL, "mirror: %s without %s ignored", msg_type_name(m->proto->end),
		    msg_type_name(m->proto->begin));
		return -1;
	}
	m->sweeping = 1;
	for (k = m->proto->kinds; *k != NULL; k++)
		mirror_sweep_kind(m, *k);
	m->sweeping = 0;
	m->syncing = 0;
	m->synced = 1;
	if (m->cb.synced != NULL)
		m->cb.synced(m->arg);
	return 0;
}

/* 1 if new is a resend of the stored cur: same uid and resourceVersion (or, without a
 * resourceVersion, the same content) */
static int mirror_same(struct store *store, const struct store_meta *cur, json_object *new_)
{
	const char *nu = obj_uid(new_), *nrv = obj_str(new_, "metadata.resourceVersion");
	struct buf packed = {0};
	int same;

	if (strcmp(cur->uid, nu != NULL ? nu : "") != 0)
		return 0;
	if (*cur->rv != '\0' || (nrv != NULL && *nrv != '\0'))
		return nrv != NULL && strcmp(cur->rv, nrv) == 0;
	store_pack(store, new_, &packed);
	same = packed.len == cur->len && memcmp(packed.data, cur->bytes, cur->len) == 0;
	buf_clear(&packed);
	return same;
}

static int mirror_obj_set(struct mirror *m, json_object *body)
{
	struct mirror_set set;
	const char *kind, *tname = msg_type_name(m->proto->set);
	json_object *obj, *old, *kept;
	const struct store_meta *cur;
	char err[256];

	if (m->proto->unpack_set(body, &set, err, sizeof err) == -1)
		return mirror_bad(m, err);
	obj = set.obj;
	if ((kind = mirror_kind(m, set.kind)) == NULL) {
		log_warnx(NULL, "mirror: %s with kind \"%s\" ignored", tname, log_escape(set.kind));
		json_object_put(obj);
		return -1;
	}
	if (obj_name(obj) == NULL) {
		log_warnx(NULL, "mirror: %s %s without an object with metadata.name ignored", tname,
		    kind);
		json_object_put(obj);
		return -1;
	}
	kept = m->trim != NULL ? m->trim(kind, obj, m->trim_arg) : json_object_get(obj);
	json_object_put(obj);
	if (kept == NULL) /* this subscriber keeps no objects of the kind */
		return 0;
	cur = store_meta(m->store, kind, obj_namespace(kept), obj_name(kept));
	if (cur != NULL && mirror_same(m->store, cur, kept)) {
		mirror_mark_seen(m, kind, kept);
		json_object_put(kept);
		return 0;
	}
	old = store_put(m->store, kind, json_object_get(kept));
	mirror_mark_seen(m, kind, kept);
	mirror_changed(m, kind, old, kept);
	json_object_put(old);
	json_object_put(kept);
	return 0;
}

static int mirror_obj_delete(struct mirror *m, json_object *body)
{
	struct mirror_del del;
	const char *kind, *ns, *name, *uid, *cur_uid;
	const struct store_meta *cur;
	json_object *old;
	char err[256];

	if (m->proto->unpack_del(body, &del, err, sizeof err) == -1)
		return mirror_bad(m, err);
	if ((kind = mirror_kind(m, del.kind)) == NULL) {
		log_warnx(NULL, "mirror: %s with kind \"%s\" ignored", msg_type_name(m->proto->del),
		    log_escape(del.kind));
		return -1;
	}
	ns = del.ns;
	name = del.name;
	uid = del.uid;
	if ((cur = store_meta(m->store, kind, ns, name)) == NULL)
		return 0;
	/* a delete of an older incarnation must not remove the current one */
	cur_uid = cur->uid;
	if (uid != NULL && *uid != '\0' && *cur_uid != '\0' && strcmp(uid, cur_uid) != 0) {
		log_debug(NULL, "mirror: delete of %s %s/%s uid %s ignored (have %s)", kind,
		    log_escape(ns), log_escape(name), log_escape(uid), log_escape(cur_uid));
		return 0;
	}
	old = store_take(m->store, kind, ns, name);
	mirror_changed(m, kind, old, NULL);
	json_object_put(old);
	return 0;
}

int mirror_apply(struct mirror *m, int type, json_object *body)
{
	int rc;

	if (body != NULL && !json_object_is_type(body, json_type_object)) {
		log_warnx(NULL, "mirror: %s body is not a map", msg_type_name(type));
		return -1;
	}
	if (type == m->proto->begin)
		rc = mirror_sync_begin(m, body);
	else if (type == m->proto->end)
		rc = mirror_sync_end(m, body);
	else if (type == m->proto->set)
		rc = mirror_obj_set(m, body);
	else if (type == m->proto->del)
		rc = mirror_obj_delete(m, body);
	else {
		log_warnx(NULL, "mirror: unexpected frame %s (%d)", msg_type_name(type), type);
		return -1;
	}
	store_release_views(m->store); /* views live through changed() only */
	return rc;
}

static void mirror_link_up(struct link *l, void *arg)
{
	struct mirror *m = arg;

	log_info(
	    NULL, "mirror: connected to %s (%s)", m->proto->link, log_escape(link_peer_program(l)));
}

static void mirror_link_frame(struct link *l, int type, json_object *body, void *arg)
{
	mirror_apply(arg, type, body);
}

static void mirror_link_down(struct link *l, void *arg)
{
	struct mirror *m = arg;

	log_info(NULL, "mirror: lost the %s; keeping the picture until the next snapshot",
	    m->proto->link);
	m->syncing = 0;
	m->synced = 0;
	if (m->cb.lost != NULL)
		m->cb.lost(m->arg);
}

static const struct link_cb mirror_link_cb = {
    mirror_link_up,
    mirror_link_frame,
    mirror_link_down,
};

struct mirror *mirror_new(struct event_base *base, const char *sock_path, size_t max_frame,
    const struct mirror_cb *cb, void *arg)
{
	return mirror_new_proto(base, &mirror_watcher, sock_path, max_frame, cb, arg);
}

struct mirror *mirror_new_proto(struct event_base *base, const struct mirror_proto *proto,
    const char *sock_path, size_t max_frame, const struct mirror_cb *cb, void *arg)
{
	struct mirror *m = xcalloc(1, sizeof *m);

	m->proto = proto;
	m->store = store_new_compact();
	if (cb != NULL)
		m->cb = *cb;
	m->arg = arg;
	if (sock_path == NULL)
		return m;
	m->spec.name = proto->link;
	m->spec.accept = proto->accept;
	m->spec.max_frame = max_frame;
	if ((m->link = link_connect(base, sock_path, &m->spec, &mirror_link_cb, m)) == NULL) {
		log_warnx(NULL, "mirror: cannot connect to %s", log_escape(sock_path));
		mirror_free(m);
		return NULL;
	}
	return m;
}

void mirror_free(struct mirror *m)
{
	if (m == NULL)
		return;
	if (m->link != NULL)
		link_free(m->link);
	store_free(m->store);
	free(m);
}

struct store *mirror_store(struct mirror *m)
{
	return m->store;
}

int mirror_synced(const struct mirror *m)
{
	return m->synced;
}

int mirror_sweeping(const struct mirror *m)
{
	return m->sweeping;
}

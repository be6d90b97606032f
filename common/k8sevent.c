/*
 * k8sevent.c: Kubernetes Events about pools, built and correlated like client-go's recorder
 * (aggregation of similar Events, dedupe into count patches, the spam filter per involved
 * object; see k8sevent.h), and written through the kube client's low-priority Event queue.
 * An Event waits out an unreachable API server (K8SEV_PATIENCE, like client-go's 12 tries
 * 10 s apart) instead of being lost, and its name is chosen once, so a POST repeated after a
 * lost answer finds AlreadyExists: written. A rejected Event (403, 422, ...) is logged once
 * per namespace and status and never tried again.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/queue.h>
#include <string.h>

#include <json-c/linkhash.h>

#include <event2/event.h>

#include "backoff.h"
#include "k8sevent.h"
#include "kube.h"
#include "obj.h"
#include "pmap.h"
#include "log.h"
#include "metrics.h"
#include "slab.h"
#include "timeutil.h"
#include "xmalloc.h"

char *k8sev_name(const char *pool, double now, uint64_t *last)
{
	uint64_t ns;
	char *name;

	ns = now > 0 ? (uint64_t)(now * 1e9) : 0;
	if (ns <= *last)
		ns = *last + 1;
	*last = ns;
	xasprintf(&name, "%s.%016" PRIx64, pool, ns);
	return name;
}

static void k8sev_add_str(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v != NULL ? v : ""));
}

json_object *k8sev_build(const struct k8sev_src *src, const char *name, double now)
{
	json_object *ev, *md, *inv, *source;
	char ts[32];

	rfc3339_format(now, ts);
	ev = json_object_new_object();
	k8sev_add_str(ev, "apiVersion", "v1");
	k8sev_add_str(ev, "kind", "Event");
	md = json_object_new_object();
	k8sev_add_str(md, "name", name);
	k8sev_add_str(md, "namespace", src->ns);
	json_object_object_add(ev, "metadata", md);
	inv = json_object_new_object();
	k8sev_add_str(inv, "apiVersion", "pool.kubevirt.io/v1beta1");
	k8sev_add_str(inv, "kind", "VirtualMachinePool");
	k8sev_add_str(inv, "name", src->pool);
	k8sev_add_str(inv, "namespace", src->ns);
	if (src->uid != NULL && src->uid[0] != '\0')
		k8sev_add_str(inv, "uid", src->uid);
	json_object_object_add(ev, "involvedObject", inv);
	k8sev_add_str(ev, "reason", src->reason);
	k8sev_add_str(ev, "message", src->message);
	k8sev_add_str(ev, "type", src->type);
	source = json_object_new_object();
	k8sev_add_str(source, "component", K8SEV_COMPONENT);
	json_object_object_add(ev, "source", source);
	k8sev_add_str(ev, "reportingComponent", K8SEV_COMPONENT);
	k8sev_add_str(ev, "firstTimestamp", ts);
	k8sev_add_str(ev, "lastTimestamp", ts);
	json_object_object_add(ev, "count", json_object_new_int(1));
	return ev;
}

/* ---- the correlator ---- */

/* The caches' records (entries, aggregation records, spam buckets, their keys and messages)
 * live in a slab set (slab.h), not in glibc's heap: thousands of them live for minutes,
 * come and go one by one, and were scattered among the holes of the short-lived requests
 * and curl transfers around them, so a trim gave little back (issue 9). One set serves
 * every correlator of the process (the caches' free callbacks are not told their table). */
static struct slabs *k8sev_slabs;
static unsigned k8sev_slab_users;

static void *k8sev_alloc(size_t n)
{
	return slabs_alloc(k8sev_slabs, n);
}

static void k8sev_release(void *p, size_t n)
{
	slabs_free(k8sev_slabs, p, n);
}

static char *k8sev_strdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(k8sev_alloc(n), s, n);
}

static void k8sev_strfree(char *s)
{
	if (s != NULL)
		k8sev_release(s, strlen(s) + 1);
}

/* client-go's aggregateRecord: the distinct messages seen for an aggregate key, each as a
 * 64-bit hash (pmap_hash, FNV-1a): the set is only counted, never read back, and a copy of
 * each message was most of a record (9 x 48 bytes for "Created virtual machine: ...", a
 * record per pool) */
struct k8sev_aggrec {
	char *key;
	uint64_t msgs[K8SEV_AGG_EVENTS - 1];
	int n;
	double last;
};

struct k8sev_spam {
	char *key;
	struct tokenbucket tb;
};

struct k8sev_corr {
	struct lh_table *agg;              /* aggregate key -> struct k8sev_aggrec */
	struct lh_table *log;              /* logger key -> struct k8sev_entry */
	struct lh_table *spam;             /* involved object -> struct k8sev_spam */
	TAILQ_HEAD(, k8sev_entry) pending; /* entries of log with a write pending */
	unsigned long npending;
	uint64_t last_ns;
};

static void k8sev_aggrec_free(struct lh_entry *e)
{
	struct k8sev_aggrec *a = lh_entry_v(e);

	k8sev_strfree(a->key);
	k8sev_release(a, sizeof *a);
}

/* an entry's strings live in its own allocation (k8sev_entry_new), its name last; the
 * message of a single Event is the last line of its key, a combined Event's (which
 * changes) is a copy of its own */
static size_t k8sev_entry_size(const struct k8sev_entry *ent)
{
	return (size_t)(ent->name + strlen(ent->name) + 1 - (const char *)ent);
}

static void k8sev_entry_free(struct lh_entry *e)
{
	struct k8sev_entry *ent = lh_entry_v(e);

	if (ent->combined)
		k8sev_strfree(ent->message);
	k8sev_release(ent, k8sev_entry_size(ent));
}

static void k8sev_spam_free(struct lh_entry *e)
{
	struct k8sev_spam *sp = lh_entry_v(e);

	k8sev_strfree(sp->key);
	k8sev_release(sp, sizeof *sp);
}

static struct lh_table *k8sev_table(lh_entry_free_fn *fn)
{
	struct lh_table *t = lh_kchar_table_new(64, fn);

	if (t == NULL)
		fatalx("k8sevent: out of memory");
	return t;
}

struct k8sev_corr *k8sev_corr_new(void)
{
	struct k8sev_corr *c = xcalloc(1, sizeof *c);

	if (k8sev_slab_users++ == 0)
		k8sev_slabs = slabs_new();
	c->agg = k8sev_table(k8sev_aggrec_free);
	c->log = k8sev_table(k8sev_entry_free);
	c->spam = k8sev_table(k8sev_spam_free);
	TAILQ_INIT(&c->pending);
	return c;
}

void k8sev_corr_free(struct k8sev_corr *c)
{
	if (c == NULL)
		return;
	lh_table_free(c->agg);
	lh_table_free(c->log);
	lh_table_free(c->spam);
	free(c);
	if (--k8sev_slab_users == 0) {
		slabs_destroy(k8sev_slabs);
		k8sev_slabs = NULL;
	}
}

unsigned long k8sev_corr_size(const struct k8sev_corr *c)
{
	return (unsigned long)c->log->count;
}

unsigned long k8sev_corr_pending(const struct k8sev_corr *c)
{
	return c->npending;
}

void k8sev_unpend(struct k8sev_corr *c, struct k8sev_entry *ent)
{
	if (!ent->pending)
		return;
	TAILQ_REMOVE(&c->pending, ent, pentry);
	ent->pending = 0;
	c->npending--;
}

struct k8sev_entry *k8sev_pend(struct k8sev_corr *c, struct k8sev_entry *ent)
{
	struct k8sev_entry *old;

	if (ent->pending)
		return NULL;
	ent->pending = 1;
	TAILQ_INSERT_TAIL(&c->pending, ent, pentry);
	if (++c->npending <= K8SEV_PENDING_MAX)
		return NULL;
	TAILQ_FOREACH(old, &c->pending, pentry)
	{
		if (!old->out && old != ent) {
			k8sev_unpend(c, old);
			return old;
		}
	}
	return NULL;
}

/* The caches are bounded like client-go's LRUs: when one is full, what is stale goes (out
 * of the window, a full spam bucket); if that is not enough, everything that may go. */
static void k8sev_prune_agg(struct lh_table *t, double now)
{
	struct lh_entry *e, *tmp;
	int all;

	for (all = 0; all < 2 && t->count >= K8SEV_AGG_MAX; all++)
		lh_foreach_safe(t, e, tmp)
		{
			if (all ||
			    now - ((struct k8sev_aggrec *)lh_entry_v(e))->last > K8SEV_AGG_WINDOW)
				lh_table_delete_entry(t, e);
		}
}

static void k8sev_prune_log(struct lh_table *t, double now)
{
	struct lh_entry *e, *tmp;
	struct k8sev_entry *ent;
	int all;

	for (all = 0; all < 2 && t->count >= K8SEV_AGG_MAX; all++)
		lh_foreach_safe(t, e, tmp)
		{
			ent = lh_entry_v(e);
			if (!ent->pending && (all || now - ent->last > K8SEV_AGG_WINDOW))
				lh_table_delete_entry(t, e);
		}
}

static void k8sev_prune_spam(struct lh_table *t, double now)
{
	struct lh_entry *e, *tmp;
	struct k8sev_spam *sp;
	int all;

	for (all = 0; all < 2 && t->count >= K8SEV_AGG_MAX; all++)
		lh_foreach_safe(t, e, tmp)
		{
			sp = lh_entry_v(e);
			tb_wait(&sp->tb, now);
			if (all || sp->tb.tokens >= sp->tb.burst)
				lh_table_delete_entry(t, e);
		}
}

/* client-go's EventAggregatorByReasonFunc: everything but the message */
static char *k8sev_agg_key(const struct k8sev_src *src)
{
	char *key;

	xasprintf(&key, "%s\n%s\n%s\n%s\n%s", src->ns, src->pool, src->uid ? src->uid : "",
	    src->type, src->reason);
	return key;
}

/* EventAggregate: 1 when this occurrence goes to the combined Event (the 10th distinct
 * message within the window, and every new one after it); frees akey */
static int k8sev_aggregate(struct k8sev_corr *c, char *akey, const char *msg, double now)
{
	struct k8sev_aggrec *a;
	uint64_t h = pmap_hash(msg);
	void *v;
	int i;

	if (lh_table_lookup_ex(c->agg, akey, &v) &&
	    now - ((struct k8sev_aggrec *)v)->last <= K8SEV_AGG_WINDOW)
		a = v;
	else {
		lh_table_delete(c->agg, akey);
		k8sev_prune_agg(c->agg, now);
		a = k8sev_alloc(sizeof *a);
		a->key = k8sev_strdup(akey);
		lh_table_insert(c->agg, a->key, a);
	}
	free(akey);
	a->last = now;
	for (i = 0; i < a->n; i++)
		if (a->msgs[i] == h)
			return 0;
	if (a->n < K8SEV_AGG_EVENTS - 1) {
		a->msgs[a->n++] = h;
		return 0;
	}
	return 1; /* the set is full: it stays at 9, as client-go pops one after inserting */
}

static void k8sev_set(char **dst, const char *v)
{
	k8sev_strfree(*dst);
	*dst = k8sev_strdup(v != NULL ? v : "");
}

/* s copied to *p, which moves past it */
static char *k8sev_put(char **p, const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = memcpy(*p, s, n);

	*p += n;
	return d;
}

/* a logger entry with its fixed strings in one allocation: while Events wait under
 * pressure the logger keeps thousands of them (issue 9) */
static struct k8sev_entry *k8sev_entry_new(
    const char *key, const struct k8sev_src *src, const char *name)
{
	const char *uid = src->uid != NULL ? src->uid : "";
	const char *strs[] = {key, src->ns, src->pool, uid, src->type, src->reason, name};
	struct k8sev_entry *ent;
	size_t i, len = 0;
	char *p;

	for (i = 0; i < sizeof strs / sizeof strs[0]; i++)
		len += strlen(strs[i]) + 1;
	ent = k8sev_alloc(sizeof *ent + len);
	p = (char *)(ent + 1);
	ent->key = k8sev_put(&p, key);
	ent->ns = k8sev_put(&p, src->ns);
	ent->pool = k8sev_put(&p, src->pool);
	ent->uid = k8sev_put(&p, uid);
	ent->type = k8sev_put(&p, src->type);
	ent->reason = k8sev_put(&p, src->reason);
	ent->name = k8sev_put(&p, name);
	return ent;
}

struct k8sev_entry *k8sev_correlate(struct k8sev_corr *c, const struct k8sev_src *src, double now)
{
	char *akey = k8sev_agg_key(src), *key, *msg = NULL, *name;
	struct k8sev_entry *ent;
	int combined;
	void *v;

	xasprintf(&key, "%s\n%s", akey, src->message);
	combined = k8sev_aggregate(c, akey, src->message, now); /* frees akey */
	if (combined) {
		/* the aggregate key stands for the combined Event in the logger */
		free(key);
		key = k8sev_agg_key(src);
		xasprintf(&msg, "%s%s", K8SEV_COMBINED, src->message);
	}
	ent = lh_table_lookup_ex(c->log, key, &v) ? v : NULL;
	if (ent != NULL && !ent->pending && now - ent->last > K8SEV_AGG_WINDOW) {
		lh_table_delete(c->log, key); /* quiet for the window: a new Event */
		ent = NULL;
	}
	if (ent == NULL) {
		k8sev_prune_log(c->log, now);
		name = k8sev_name(src->pool, now, &c->last_ns);
		ent = k8sev_entry_new(key, src, name);
		free(name);
		ent->first = now;
		ent->combined = combined;
		if (!combined) /* the key ends with the message, which a single Event keeps */
			ent->message = ent->key + strlen(ent->key) - strlen(src->message);
		lh_table_insert(c->log, ent->key, ent);
	}
	free(key);
	if (combined)
		k8sev_set(&ent->message, msg);
	free(msg);
	ent->count++;
	ent->last = now;
	ent->dirty = 1;
	return ent;
}

/* client-go's getSpamKey: the source (always ours) and the involved object */
static struct k8sev_spam *k8sev_spam_get(
    struct k8sev_corr *c, const struct k8sev_entry *ent, double now)
{
	struct k8sev_spam *sp;
	char *key;
	void *v;

	xasprintf(&key, "%s\n%s\n%s", ent->ns, ent->pool, ent->uid);
	if (lh_table_lookup_ex(c->spam, key, &v)) {
		free(key);
		return v;
	}
	k8sev_prune_spam(c->spam, now);
	sp = k8sev_alloc(sizeof *sp);
	sp->key = k8sev_strdup(key);
	free(key);
	tb_init(&sp->tb, K8SEV_SPAM_QPS, K8SEV_SPAM_BURST, now);
	lh_table_insert(c->spam, sp->key, sp);
	return sp;
}

double k8sev_spam_take(struct k8sev_corr *c, const struct k8sev_entry *ent, double now)
{
	struct k8sev_spam *sp = k8sev_spam_get(c, ent, now);
	double wait = tb_wait(&sp->tb, now);

	if (wait > 0)
		return wait;
	tb_take(&sp->tb, now);
	return 0;
}

void k8sev_spam_refund(struct k8sev_corr *c, const struct k8sev_entry *ent)
{
	struct k8sev_spam *sp;
	char *key;
	void *v;

	xasprintf(&key, "%s\n%s\n%s", ent->ns, ent->pool, ent->uid);
	if (lh_table_lookup_ex(c->spam, key, &v)) {
		sp = v;
		if (sp->tb.tokens + 1 <= sp->tb.burst)
			sp->tb.tokens += 1;
	}
	free(key);
}

/* ---- the recorder ---- */

/* The pending write of one Event: waiting (its timer: K8SEV_LINGER, the spam filter), due
 * (on rec->ready, oldest first, until the client may take it) or out (at the client). */
struct k8sev_req {
	TAILQ_ENTRY(k8sev_req) entry; /* on rec->ready while due */
	struct k8sev_recorder *rec;
	struct k8sev_entry *ent;
	struct event *timer;
	unsigned long seq; /* the order in which the writes became due */
	int due;           /* on rec->ready */
	int tries;         /* attempts dropped under pressure */
	int patch;         /* the request out is a PATCH */
	int retried;       /* a PATCH that found nothing was posted again */
};

struct k8sev_recorder {
	struct kube *kube;
	struct event_base *base;
	struct k8sev_corr *corr;
	unsigned long posted;
	struct lh_table *rejected;     /* "<ns> <status>" already logged as rejected */
	TAILQ_HEAD(, k8sev_req) ready; /* due writes, in the order they became due */
	unsigned long seq;
	int nout; /* writes at the client */
	/* a write was dropped under pressure: none goes to the client until it says Events may
	 * go (kube_events_notify) */
	int held;
};

static void k8sev_rejected_free(struct lh_entry *e)
{
	free(lh_entry_k(e));
}

struct k8sev_recorder *k8sev_recorder_new(struct kube *kube)
{
	struct k8sev_recorder *rec = xcalloc(1, sizeof *rec);

	rec->kube = kube;
	rec->base = kube_base(kube);
	rec->corr = k8sev_corr_new();
	rec->rejected = lh_kchar_table_new(16, k8sev_rejected_free);
	if (rec->rejected == NULL)
		fatalx("k8sev_recorder_new: out of memory");
	TAILQ_INIT(&rec->ready);
	metrics_declare(K8SEV_M_DROPPED, "counter",
	    "Event writes lost or put off: pressure (an attempt dropped before reaching the API "
	    "server: a 429, or object writes kept it waiting; tried again when the pressure "
	    "ends), tries (given up after 12 such attempts), overflow (given up: too many Events "
	    "waiting), rejected (refused by the API server). An Event given up keeps its count "
	    "for its next occurrence.");
	metrics_add(K8SEV_M_DROPPED, "reason=\"pressure\"", 0);
	metrics_add(K8SEV_M_DROPPED, "reason=\"tries\"", 0);
	metrics_add(K8SEV_M_DROPPED, "reason=\"overflow\"", 0);
	metrics_add(K8SEV_M_DROPPED, "reason=\"rejected\"", 0);
	return rec;
}

static void k8sev_req_free(struct k8sev_req *r)
{
	struct k8sev_recorder *rec = r->rec;

	if (r->due)
		TAILQ_REMOVE(&rec->ready, r, entry);
	if (r->ent != NULL) {
		r->ent->req = NULL;
		r->ent->out = 0;
		k8sev_unpend(rec->corr, r->ent);
	}
	if (r->timer != NULL)
		event_free(r->timer);
	free(r);
}

void k8sev_recorder_free(struct k8sev_recorder *rec)
{
	struct k8sev_entry *ent;

	if (rec == NULL)
		return;
	/* the pending FIFO of the correlator lists every request */
	while ((ent = TAILQ_FIRST(&rec->corr->pending)) != NULL) {
		if (ent->req != NULL)
			k8sev_req_free(ent->req);
		else
			k8sev_unpend(rec->corr, ent);
	}
	k8sev_corr_free(rec->corr);
	lh_table_free(rec->rejected);
	free(rec);
}

unsigned long k8sev_recorder_count(const struct k8sev_recorder *rec)
{
	return rec->posted;
}

unsigned long k8sev_recorder_pending(const struct k8sev_recorder *rec)
{
	return k8sev_corr_pending(rec->corr);
}

static char *k8sev_path(const struct k8sev_entry *ent, int patch)
{
	char *ns = kube_escape(ent->ns), *name = NULL, *path;

	if (patch) {
		name = kube_escape(ent->name);
		xasprintf(&path, "/api/v1/namespaces/%s/events/%s", ns, name);
	} else
		xasprintf(&path, "/api/v1/namespaces/%s/events", ns);
	free(ns);
	free(name);
	return path;
}

static void k8sev_done(const struct kube_response *, void *);

/* the POST of the whole Event, or the PATCH of count, lastTimestamp and message; -1 when it
 * cannot be queued */
static int k8sev_send(struct k8sev_req *r)
{
	struct k8sev_entry *ent = r->ent;
	struct k8sev_src src = {ent->ns, ent->pool, ent->uid, ent->type, ent->reason, ent->message};
	json_object *body;
	char ts[32], *path;
	int rv;

	r->patch = ent->exists;
	rfc3339_format(ent->last, ts);
	if (r->patch)
		body = json_object_new_object();
	else
		body = k8sev_build(&src, ent->name, ent->first);
	json_object_object_add(body, "count", json_object_new_int64(ent->count));
	json_object_object_add(body, "lastTimestamp", json_object_new_string(ts));
	if (r->patch)
		json_object_object_add(body, "message", json_object_new_string(ent->message));
	path = k8sev_path(ent, r->patch);
	rv = kube_request_event(r->rec->kube, r->patch ? "PATCH" : "POST", path,
	    r->patch ? "application/merge-patch+json" : NULL, obj_json(body), K8SEV_PATIENCE,
	    k8sev_done, r);
	if (rv == -1)
		log_warnx(ent->ns, "event %s: cannot queue request %s", ent->reason, path);
	else {
		ent->out = 1;
		r->rec->nout++;
		ent->dirty = 0;
	}
	free(path);
	json_object_put(body);
	return rv;
}

static void k8sev_arm(struct k8sev_req *r, double delay)
{
	struct timeval tv = secs_to_tv(delay);

	evtimer_add(r->timer, &tv);
}

/* due writes go to the client, oldest first, while it has room for them and no write was
 * dropped since it last said that Events may go */
static void k8sev_pump(struct k8sev_recorder *rec)
{
	struct k8sev_req *r;

	while (!rec->held && rec->nout < K8SEV_OUT_MAX && (r = TAILQ_FIRST(&rec->ready)) != NULL) {
		TAILQ_REMOVE(&rec->ready, r, entry);
		r->due = 0;
		/* count and dirty kept when it cannot go: the next occurrence tries again */
		if (k8sev_send(r) == -1)
			k8sev_req_free(r);
	}
}

/* r is due again: back among the due writes in the order they first became due */
static void k8sev_requeue(struct k8sev_req *r)
{
	struct k8sev_recorder *rec = r->rec;
	struct k8sev_req *o;

	/* the writes handed to the client were the oldest: r goes near the head */
	TAILQ_FOREACH(o, &rec->ready, entry)
	{
		if (o->seq > r->seq)
			break;
	}
	if (o != NULL)
		TAILQ_INSERT_BEFORE(o, r, entry);
	else
		TAILQ_INSERT_TAIL(&rec->ready, r, entry);
	r->due = 1;
}

/* the client says Events may go: the pressure is over */
static void k8sev_go(void *arg)
{
	struct k8sev_recorder *rec = arg;

	rec->held = 0;
	k8sev_pump(rec);
}

/* the write is due: the spam filter decides whether it goes now or at its next token */
static void k8sev_due(evutil_socket_t fd, short what, void *arg)
{
	struct k8sev_req *r = arg;
	double wait = k8sev_spam_take(r->rec->corr, r->ent, now_real());

	if (wait > 0) {
		log_debug(r->ent->ns, "event %s on %s: spam filter, held for %.0fs", r->ent->reason,
		    r->ent->pool, wait);
		k8sev_arm(r, wait);
		return;
	}
	r->seq = ++r->rec->seq;
	r->due = 1;
	TAILQ_INSERT_TAIL(&r->rec->ready, r, entry);
	k8sev_pump(r->rec);
}

/* a pending write given up to keep K8SEV_PENDING_MAX: the oldest waiting one */
static void k8sev_overflow(struct k8sev_recorder *rec, struct k8sev_entry *old)
{
	metrics_add(K8SEV_M_DROPPED, "reason=\"overflow\"", 1);
	log_debug(old->ns, "event %s %s on %s given up: %d Events waiting", old->reason,
	    log_escape(old->name), old->pool, K8SEV_PENDING_MAX);
	old->dirty = 1; /* its count goes with its next occurrence */
	if (old->req != NULL) {
		if (old->req->due)
			k8sev_spam_refund(rec->corr, old); /* its token was taken */
		k8sev_req_free(old->req);
	}
}

/* a write of ent is due after delay (0: now) */
static void k8sev_schedule(struct k8sev_recorder *rec, struct k8sev_entry *ent, double delay)
{
	struct k8sev_req *r = ent->req;
	struct k8sev_entry *old;

	if (r == NULL) {
		r = xcalloc(1, sizeof *r);
		r->rec = rec;
		r->ent = ent;
		r->timer = evtimer_new(rec->base, k8sev_due, r);
		if (r->timer == NULL)
			fatalx("k8sevent: out of memory");
		ent->req = r;
		if ((old = k8sev_pend(rec->corr, ent)) != NULL)
			k8sev_overflow(rec, old);
	}
	if (delay > 0)
		k8sev_arm(r, delay);
	else
		k8sev_due(-1, 0, r);
}

/* a 4xx that is not ours to retry: logged once per namespace and status, then at debug */
static void k8sev_rejected(struct k8sev_req *r, const struct kube_response *resp)
{
	struct k8sev_entry *ent = r->ent;
	char key[320];

	snprintf(key, sizeof key, "%.256s %ld", ent->ns, resp->status);
	metrics_add(K8SEV_M_DROPPED, "reason=\"rejected\"", 1);
	if (lh_table_lookup_entry(r->rec->rejected, key) == NULL && r->rec->rejected->count < 64) {
		lh_table_insert(r->rec->rejected, xstrdup(key), NULL);
		log_warnx(ent->ns,
		    "event %s %s rejected: status %ld %s: %s (not retried; further rejections in "
		    "this namespace with this status are logged at debug level)",
		    ent->reason, log_escape(ent->name), resp->status, resp->reason,
		    log_escape(resp->message));
	} else
		log_debug(ent->ns, "event %s %s rejected: status %ld %s", ent->reason,
		    log_escape(ent->name), resp->status, resp->reason);
}

/* an attempt dropped under pressure (it never reached the server): the write waits until
 * the client says Events may go, up to K8SEV_TRIES attempts */
static void k8sev_dropped(struct k8sev_req *r, const struct kube_response *resp)
{
	struct k8sev_entry *ent = r->ent;

	metrics_add(K8SEV_M_DROPPED, "reason=\"pressure\"", 1);
	ent->dirty = 1;
	if (++r->tries >= K8SEV_TRIES) {
		metrics_add(K8SEV_M_DROPPED, "reason=\"tries\"", 1);
		log_debug(ent->ns, "event %s %s on %s given up after %d attempts dropped: %s",
		    ent->reason, log_escape(ent->name), ent->pool, r->tries,
		    log_escape(resp->message));
		k8sev_spam_refund(r->rec->corr, ent);
		k8sev_req_free(r); /* the count goes with the next occurrence */
		return;
	}
	log_debug(ent->ns, "event %s %s on %s dropped under pressure: %s", ent->reason,
	    log_escape(ent->name), ent->pool, log_escape(resp->message));
	k8sev_requeue(r); /* its spam token kept: it goes as soon as it may */
	if (!r->rec->held) {
		r->rec->held = 1;
		kube_events_notify(r->rec->kube, k8sev_go, r->rec);
	}
}

static void k8sev_done(const struct kube_response *resp, void *arg)
{
	struct k8sev_req *r = arg;
	struct k8sev_recorder *rec = r->rec;
	struct k8sev_entry *ent = r->ent;
	int ok = resp->status >= 200 && resp->status < 300;
	char key[512];

	snprintf(key, sizeof key, "%s/%s", ent->ns, ent->pool);
	ent->out = 0;
	rec->nout--;
	/* 409 on a POST: an earlier attempt of this very POST got through, its answer was lost */
	if (ok ||
	    (!r->patch && resp->status == 409 && strcmp(resp->reason, "AlreadyExists") == 0)) {
		rec->posted++;
		ent->exists = 1;
		r->tries = 0;
		log_debug(key, "event %s %s %s, count %ld", ent->reason, log_escape(ent->name),
		    r->patch ? "patched" : "posted", ent->count);
		if (ent->dirty)
			k8sev_schedule(rec, ent, K8SEV_LINGER);
		else
			k8sev_req_free(r);
	} else if (r->patch && resp->status == 404 && !r->retried) {
		/* gone (expired, deleted): written again whole, with the count so far */
		ent->exists = 0;
		r->retried = 1;
		if (k8sev_send(r) == -1)
			k8sev_req_free(r);
	} else if (resp->dropped)
		k8sev_dropped(r, resp);
	else if (resp->status >= 400 && resp->status < 500 && resp->status != 429) {
		k8sev_rejected(r, resp);
		ent->exists = 0;
		k8sev_req_free(r);
	} else {
		log_warnx(key, "event %s %s failed: status %ld %s: %s", ent->reason,
		    log_escape(ent->name), resp->status, resp->reason, log_escape(resp->message));
		ent->dirty = 1; /* the next occurrence writes the count */
		k8sev_req_free(r);
	}
	k8sev_pump(rec);
}

static int k8sev_src_valid(const struct k8sev_src *src)
{
	return src->ns != NULL && src->ns[0] != '\0' && src->pool != NULL && src->pool[0] != '\0' &&
	       src->type != NULL && src->reason != NULL && src->message != NULL;
}

int k8sev_post(struct k8sev_recorder *rec, const struct k8sev_src *src, double now)
{
	struct k8sev_entry *ent;
	char key[512];

	if (!k8sev_src_valid(src)) {
		log_warnx(NULL, "event: incomplete source, not posted");
		return -1;
	}
	snprintf(key, sizeof key, "%s/%s", src->ns, src->pool);
	if (rec->kube == NULL) {
		log_info(key, "dry-run: would post %s event %s: %s", src->type, src->reason,
		    log_escape(src->message));
		rec->posted++;
		return 0;
	}
	ent = k8sev_correlate(rec->corr, src, now);
	if (ent->pending)
		return 0; /* goes with the write already pending for this Event */
	k8sev_schedule(rec, ent, 0);
	return 0;
}

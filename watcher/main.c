/*
 * main.c: vmpool-watcher. Lists and watches pools, VMs, VMIs, pool-owned controller
 * revisions and VM-controlled PVCs and DataVolumes (metadata only; one informer each) and
 * publishes the kept objects on watcher.sock: every subscriber gets SYNC_BEGIN, the whole
 * picture as OBJ_SET, SYNC_END, then the deltas.
 * Reads the API only.
 */
#include <sys/types.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "cli.h"
#include "admit.h"
#include "codec.h"
#include "informer.h"
#include "kube.h"
#include "link.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "obj.h"
#include "proto.h"
#include "shard.h"
#include "store.h"
#include "xmalloc.h"
#include "stopsig.h"

#define WATCHER_PROG         "vmpool-watcher"
#define WATCHER_SUBS_REFRESH 2.0 /* seconds between subscriber gauge updates */
#define M_SUBSCRIBERS        "vmpool_watcher_subscribers"
/* A draining API server keeps watches open and silent for up to 60 s: a watch silent for
 * half that is re-established from its last resourceVersion. A healthy but quiet watch pays
 * a re-watch every 30 s (a read, no relist); the API server's own bookmarks come only a
 * minute after a change, too late to tell a silent stream from a quiet one. */
#define WATCHER_SILENCE 30.0
#define OPT_SILENCE     1000
#define OPT_POOL_SEL    1001

/* group, version, plural and projection of each: common/resource.c. PVCs and DataVolumes:
 * read-only lookups for state preservation (SPEC 9.3); a cluster without CDI answers 404 for
 * DataVolumes, which the informer treats as empty and synced */
static const struct informer_res watcher_resources[] = {
    {.kind = KIND_POOL, .required = 1, .transform = admit_project},
    {.kind = KIND_VM, .required = 1, .transform = admit_project},
    {.kind = KIND_VMI, .transform = admit_project},
    {.kind = KIND_REV, .keep = informer_keep_pool_owned, .transform = admit_project},
    {.kind = KIND_PVC, .keep = informer_keep_vm_controlled, .transform = admit_project},
    {.kind = KIND_DV, .keep = informer_keep_vm_controlled, .transform = admit_project},
};
#define WATCHER_NRES (sizeof(watcher_resources) / sizeof(watcher_resources[0]))

struct watcher {
	struct event_base *base;
	struct cli cli;
	struct kube_config kc;
	struct kube *kube;
	struct store *store;
	struct pub *pub;
	struct informer *inf[WATCHER_NRES];
	struct stopsig *stop;
	struct event *subs_timer;
	double silence;      /* --watch-silence-timeout */
	char *pool_selector; /* --pool-selector: this instance's shard */
	struct shard *shard; /* with --pool-selector: keeps only what the shard's pools own */
	int ready;
};

static const struct option watcher_opts[] = {
    {"watch-silence-timeout", required_argument, NULL, OPT_SILENCE},
    {"pool-selector", required_argument, NULL, OPT_POOL_SEL},
    {NULL, 0, NULL, 0},
};

static int watcher_opt(int opt, const char *val, void *arg)
{
	struct watcher *w = arg;

	if (opt == OPT_SILENCE)
		return cli_double(val, 0, 86400, &w->silence);
	if (opt == OPT_POOL_SEL) {
		if (val[0] == '\0' || strlen(val) > 1024)
			return -1;
		free(w->pool_selector);
		w->pool_selector = xstrdup(val);
		return 0;
	}
	return -1;
}

/* subscribers may send nothing but HELLO */
static const int watcher_accept[] = {0};

static void watcher_usage_exit(const char *why)
{
	log_warnx(NULL, "%s", why);
	fprintf(stderr, "usage: %s [common flags]; see --help\n", WATCHER_PROG);
	exit(EXIT_CONFIG);
}

/* ---- publishing ---- */

/* 1 if the record m holds obj: the same uid and resourceVersion */
static int watcher_stored_is(const struct store_meta *m, json_object *obj)
{
	const char *uid = obj_uid(obj), *rv = obj_str(obj, "metadata.resourceVersion");

	return m != NULL && uid != NULL && rv != NULL && *rv != '\0' && strcmp(m->uid, uid) == 0 &&
	       strcmp(m->rv, rv) == 0;
}

/* every subscriber gets the same bytes: the stored ones when the store holds obj (a
 * shard's pool may go out as an older copy), else obj packed once */
static void watcher_publish_set(const char *kind, json_object *obj, void *arg)
{
	struct watcher *w = arg;
	const struct store_meta *m = store_meta(w->store, kind, obj_namespace(obj), obj_name(obj));
	struct buf packed = {0};
	char key[512];

	log_debug(obj_key(obj, key, sizeof(key)), "%s set, resourceVersion %s", kind,
	    log_escape(obj_str(obj, "metadata.resourceVersion")));
	if (watcher_stored_is(m, obj)) {
		pub_broadcast_obj(w->pub, MSG_OBJ_SET, kind, m->bytes, m->len);
		return;
	}
	codec_value_pack(&packed, obj);
	pub_broadcast_obj(w->pub, MSG_OBJ_SET, kind, packed.data, packed.len);
	buf_clear(&packed);
}

static void watcher_on_set(const char *kind, json_object *obj, void *arg)
{
	struct watcher *w = arg;

	if (w->shard == NULL || !shard_on_set(w->shard, kind, obj))
		watcher_publish_set(kind, obj, arg);
}

static void watcher_on_del(const char *kind, json_object *obj, void *arg)
{
	struct watcher *w = arg;
	struct msg_obj_delete del;
	json_object *body;
	const char *uid = obj_uid(obj);
	char key[512];

	if (w->shard != NULL && shard_on_del(w->shard, kind, obj))
		return;
	log_debug(obj_key(obj, key, sizeof(key)), "%s deleted", kind);
	del = (struct msg_obj_delete){kind, obj_namespace(obj), obj_name(obj), uid ? uid : ""};
	body = msg_obj_delete_pack(&del);
	pub_broadcast(w->pub, MSG_OBJ_DELETE, body);
	json_object_put(body);
}

/* ready while every informer is synced; subscribers get their first snapshot only then, and
 * keep their deltas if a required API goes missing later (/readyz says so) */
static void watcher_on_synced(const char *kind, void *arg)
{
	struct watcher *w = arg;
	int ready = 1;
	size_t i;

	if (w->shard != NULL)
		shard_on_synced(w->shard);
	for (i = 0; i < WATCHER_NRES; i++)
		ready &= informer_synced(w->inf[i]) != 0;
	if (ready == w->ready)
		return;
	w->ready = ready;
	metrics_set_ready(ready);
	if (!ready) {
		log_warnx(NULL, "%s is missing: not ready", kind);
		return;
	}
	log_info(NULL, "every resource listed: ready, publishing on %s", w->cli.run_dir);
	pub_set_ready(w->pub, 1);
}

struct watcher_snap {
	struct link *link;
	const char *kind;
	struct shard *shard;
};

/* a shard's pool goes as the shard published it */
static void watcher_snap_one(json_object *obj, void *arg)
{
	struct watcher_snap *s = arg;
	struct buf packed = {0};

	if ((obj = shard_snapshot_obj(s->shard, s->kind, obj)) == NULL)
		return;
	codec_value_pack(&packed, obj);
	link_send_obj(s->link, MSG_OBJ_SET, s->kind, packed.data, packed.len);
	buf_clear(&packed);
}

/* every other object goes as the store keeps it, not encoded again */
static void watcher_snap_rec(const struct store_meta *r, void *arg)
{
	struct watcher_snap *s = arg;

	link_send_obj(s->link, MSG_OBJ_SET, s->kind, r->bytes, r->len);
}

/* a new subscriber: the whole picture between SYNC_BEGIN and SYNC_END */
static void watcher_snapshot(struct link *link, void *arg)
{
	struct watcher *w = arg;
	struct watcher_snap s = {link, NULL, w->shard};
	json_object *empty = msg_marker_pack();
	size_t i;

	link_send(link, MSG_SYNC_BEGIN, empty);
	for (i = 0; i < WATCHER_NRES; i++) {
		s.kind = watcher_resources[i].kind;
		if (s.shard != NULL && strcmp(s.kind, KIND_POOL) == 0)
			store_foreach(w->store, s.kind, watcher_snap_one, &s);
		else
			store_foreach_meta(w->store, s.kind, watcher_snap_rec, &s);
	}
	link_send(link, MSG_SYNC_END, empty);
	json_object_put(empty);
	log_info(NULL, "snapshot sent to %s", log_escape(link_peer_program(link)));
	metrics_set(M_SUBSCRIBERS, NULL, pub_subscribers(w->pub));
}

static void watcher_subs_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct watcher *w = arg;

	metrics_set(M_SUBSCRIBERS, NULL, pub_subscribers(w->pub));
}

/* ---- start and stop ---- */

static void watcher_events(struct watcher *w)
{
	struct timeval tv = {WATCHER_SUBS_REFRESH, 0};

	w->stop = stopsig_new(w->base);
	w->subs_timer = event_new(w->base, -1, EV_PERSIST, watcher_subs_tick, w);
	if (w->subs_timer == NULL)
		fatalx("cannot create events");
	evtimer_add(w->subs_timer, &tv);
	signal(SIGPIPE, SIG_IGN);
}

static void watcher_metrics(struct watcher *w)
{
	informer_metrics_declare("vmpool_watcher");
	admit_metrics_declare();
	metrics_declare(M_SUBSCRIBERS, "gauge", "Subscribers connected to watcher.sock.");
	metrics_set(M_SUBSCRIBERS, NULL, 0);
	cli_start_endpoints(w->base, &w->cli);
}

/* --pool-selector: only what the shard's pools own is kept (watcher/shard.c); the pools
 * are listed first, what they own after */
static void watcher_shard(struct watcher *w)
{
	const char *kinds[WATCHER_NRES];
	size_t i;

	for (i = 0; i < WATCHER_NRES; i++)
		kinds[i] = watcher_resources[i].kind;
	w->shard =
	    shard_new(w->base, w->store, w->inf, kinds, WATCHER_NRES, watcher_publish_set, w);
	log_info(
	    NULL, "shard: pools with labels %s and what they own", log_escape(w->pool_selector));
	shard_start(w->shard);
}

static void watcher_start(struct watcher *w)
{
	static const struct link_spec spec = {LINK_WATCHER, watcher_accept, 0};
	static const struct informer_sink sink = {
	    watcher_on_set, watcher_on_del, watcher_on_synced};
	struct link_spec lspec = spec;
	struct kube_opts ko = {w->cli.qps, w->cli.burst, WATCHER_PROG, 0, 0};
	char *sock;
	size_t i;

	w->kube = kube_new(w->base, &w->kc, &ko);
	if (w->kube == NULL)
		fatal_config("cannot set up the API client for %s", log_escape(w->kc.server));
	w->store = store_new();
	lspec.max_frame = w->cli.max_frame;
	sock = link_sock_path(w->cli.run_dir, LINK_WATCHER);
	w->pub = pub_new(w->base, sock, &lspec, watcher_snapshot, w);
	if (w->pub == NULL)
		fatal_config("cannot publish on %s", sock);
	free(sock);
	for (i = 0; i < WATCHER_NRES; i++) {
		w->inf[i] = informer_new(
		    w->base, w->kube, w->store, &watcher_resources[i], w->cli.namespace, &sink, w);
		informer_set_silence(w->inf[i], w->silence);
		/* a shard: the API server sends only its pools; watcher_shard() filters the rest */
		if (w->pool_selector != NULL && strcmp(watcher_resources[i].kind, KIND_POOL) == 0)
			informer_set_selector(w->inf[i], w->pool_selector);
	}
	log_info(NULL, "watching %s in %s", log_escape(w->kc.server),
	    w->cli.namespace != NULL ? log_escape(w->cli.namespace) : "all namespaces");
	if (w->pool_selector != NULL) {
		watcher_shard(w);
		return;
	}
	for (i = 0; i < WATCHER_NRES; i++)
		informer_start(w->inf[i]);
}

static void watcher_stop(struct watcher *w)
{
	size_t i;

	for (i = 0; i < WATCHER_NRES; i++)
		informer_stop(w->inf[i]);
	kube_free(w->kube); /* requests still in flight die here */
	for (i = 0; i < WATCHER_NRES; i++)
		informer_free(w->inf[i]);
	shard_free(w->shard);
	pub_free(w->pub);
	store_free(w->store);
	metrics_stop();
	stopsig_free(w->stop);
	event_free(w->subs_timer);
	kubeconfig_clear(&w->kc);
	free(w->pool_selector);
	cli_free(&w->cli);
	event_base_free(w->base);
}

int main(int argc, char **argv)
{
	struct watcher w;
	char err[512];
	int ind;

	kube_malloc_setup();
	memset(&w, 0, sizeof(w));
	w.silence = WATCHER_SILENCE;
	ind = cli_parse(&w.cli, WATCHER_PROG, argc, argv, watcher_opts, watcher_opt, &w,
	    "  --watch-silence-timeout SECS  restart a watch that sent no event and no bookmark\n"
	    "                       for SECS from its last resourceVersion (default 30;\n"
	    "                       0: only past timeoutSeconds + 60 s)\n"
	    "  --pool-selector SEL  list and watch only the pools with these labels (a shard)\n");
	if (ind < argc)
		watcher_usage_exit("unexpected arguments");
	cli_check_run_dir(&w.cli);
	if (kubeconfig_load(w.cli.kubeconfig, &w.kc, err, sizeof(err)) == -1)
		fatal_config("kubeconfig: %s", err);
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());
	w.base = event_base_new();
	if (w.base == NULL)
		fatalx("event_base_new failed");
	watcher_events(&w);
	watcher_metrics(&w);
	watcher_start(&w);
	event_base_dispatch(w.base);
	watcher_stop(&w);
	log_info(NULL, "exiting");
	return 0;
}

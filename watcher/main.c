/*
 * main.c: vmpool-watcher. Lists and watches pools, VMs, VMIs, pool-owned controller
 * revisions and VM-controlled PVCs and DataVolumes (metadata only; one informer each) and
 * publishes the kept objects on watcher.sock: every subscriber gets SYNC_BEGIN, the whole
 * picture as OBJ_SET, SYNC_END, then the deltas. Subscribes to actuator.sock for the objects
 * the actuator's creates were answered with (WRITTEN): one the watch has not shown yet is
 * published at once, as its watch event would be (informer_written()).
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
#include "informer.h"
#include "kube.h"
#include "link.h"
#include "log.h"
#include "metrics.h"
#include "multicall.h"
#include "obj.h"
#include "proto.h"
#include "publish.h"
#include "shard.h"
#include "store.h"
#include "xmalloc.h"
#include "memtrim.h"
#include "msg.h"
#include "stopsig.h"

#define WATCHER_PROG         PROG_WATCHER
#define WATCHER_SUBS_REFRESH 2.0 /* seconds between subscriber gauge updates */
/* A draining API server keeps watches open and silent for up to 60 s: a watch silent for
 * half that is re-established from its last resourceVersion. A healthy but quiet watch pays
 * a re-watch every 30 s (a read, no relist); the API server's own bookmarks come only a
 * minute after a change, too late to tell a silent stream from a quiet one. */
#define WATCHER_SILENCE 30.0
#define OPT_SILENCE     1000
#define OPT_POOL_SEL    1001

/* group, version, plural and projection of each: common/resource.c. PVCs and DataVolumes:
 * read-only lookups for state preservation (SPEC 9.3); a cluster without CDI answers 404 for
 * DataVolumes, which the informer treats as empty and synced. A 404 for what was listed
 * before keeps it for WATCHER_ABSENT_KEEP: a restarted API server (up to 1.22) answers 404
 * for custom resources until it has loaded their CRDs, and VMs reported gone then would be
 * created again (AlreadyExists, a second SuccessfulCreate), a pool's VMIs reported gone would
 * drop its readyReplicas. A CRD deleted for good takes its objects with it (the watch reports
 * them gone); one deleted while no watch was open is taken as gone after the grace. */
#define WATCHER_ABSENT_KEEP 60.0
static const struct informer_res watcher_resources[] = {
    {.kind = KIND_POOL,
        .required = 1,
        .transform = admit_project,
        .absent_keep = WATCHER_ABSENT_KEEP},
    {.kind = KIND_VM,
        .required = 1,
        .transform = admit_project,
        .absent_keep = WATCHER_ABSENT_KEEP},
    {.kind = KIND_VMI, .transform = admit_project, .absent_keep = WATCHER_ABSENT_KEEP},
    {.kind = KIND_REV,
        .keep = informer_keep_pool_owned,
        .transform = admit_project,
        .absent_keep = WATCHER_ABSENT_KEEP},
    {.kind = KIND_PVC,
        .keep = informer_keep_vm_controlled,
        .transform = admit_project,
        .absent_keep = WATCHER_ABSENT_KEEP},
    {.kind = KIND_DV,
        .keep = informer_keep_vm_controlled,
        .transform = admit_project,
        .absent_keep = WATCHER_ABSENT_KEEP},
};
#define WATCHER_NRES (sizeof(watcher_resources) / sizeof(watcher_resources[0]))

struct watcher {
	struct event_base *base;
	struct cli cli;
	struct kube_config kc;
	struct kube *kube;
	struct store *store;
	struct publish *pub;
	struct informer *inf[WATCHER_NRES];
	const char *kinds[WATCHER_NRES]; /* watcher_resources' kinds: the snapshot order */
	struct stopsig *stop;
	struct memtrim *trim;
	struct event *subs_timer;
	double silence;        /* --watch-silence-timeout */
	char *pool_selector;   /* --pool-selector: this instance's shard */
	struct shard *shard;   /* with --pool-selector: keeps only what the shard's pools own */
	struct link *actuator; /* the actuator's answers to creates (MSG_WRITTEN) */
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
/* from the actuator: what its creates were answered with; LEADER is for others */
static const int watcher_actuator_accept[] = {MSG_WRITTEN, MSG_LEADER, 0};

/* the store is read by name and in store order only */
static const char *const no_owner_kinds[] = {NULL};

static void watcher_usage_exit(const char *why)
{
	log_warnx(NULL, "%s", why);
	fprintf(stderr, "usage: %s [common flags]; see --help\n", WATCHER_PROG);
	exit(EXIT_CONFIG);
}

/* ---- publishing (publish.c) ---- */

static void watcher_publish_set(const char *kind, json_object *obj, void *arg)
{
	struct watcher *w = arg;

	publish_set(w->pub, kind, obj);
}

static void watcher_on_set(const char *kind, json_object *obj, void *arg)
{
	struct watcher *w = arg;

	if (w->shard == NULL || !shard_on_set(w->shard, kind, obj))
		publish_set(w->pub, kind, obj);
}

static void watcher_on_del(const char *kind, json_object *obj, void *arg)
{
	struct watcher *w = arg;

	if (w->shard == NULL || !shard_on_del(w->shard, kind, obj))
		publish_del(w->pub, kind, obj);
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
	publish_ready(w->pub);
}

static void watcher_subs_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct watcher *w = arg;

	publish_gauge(w->pub);
}

/* ---- the actuator's written objects ---- */

static void watcher_written(struct link *l, int type, json_object *body, void *arg)
{
	struct watcher *w = arg;
	struct msg_obj_set m;
	const char *what;
	char err[256];
	size_t i;

	if (type != MSG_WRITTEN)
		return;
	if (msg_written_unpack(body, &m, err, sizeof err) == -1) {
		log_warnx(NULL, "%s from %s", err, link_peer_program(l));
		return;
	}
	for (i = 0; i < WATCHER_NRES; i++) {
		if (strcmp(w->kinds[i], m.kind) == 0) {
			what = informer_written(w->inf[i], m.obj); /* not in log_debug's args */
			log_debug(
			    NULL, "written %s %s: %s", m.kind, log_escape(obj_name(m.obj)), what);
			return;
		}
	}
	log_warnx(
	    NULL, "WRITTEN of unknown kind %s from %s", log_escape(m.kind), link_peer_program(l));
}

/* ---- start and stop ---- */

static void watcher_events(struct watcher *w)
{
	struct timeval tv = {WATCHER_SUBS_REFRESH, 0};

	w->stop = stopsig_new(w->base);
	w->trim = memtrim_new(w->base);
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
	publish_metrics_declare();
	cli_start_endpoints(w->base, &w->cli);
}

/* --pool-selector: only what the shard's pools own is kept (watcher/shard.c); the pools
 * are listed first, what they own after */
static void watcher_shard(struct watcher *w)
{
	w->shard =
	    shard_new(w->base, w->store, w->inf, w->kinds, WATCHER_NRES, watcher_publish_set, w);
	publish_set_shard(w->pub, w->shard);
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
	struct link_spec aspec = {LINK_ACTUATOR, watcher_actuator_accept, 0};
	struct link_cb acb = {NULL, watcher_written, NULL};
	struct kube_opts ko = {w->cli.qps, w->cli.burst, WATCHER_PROG, 0, 0};
	char *sock;
	size_t i;

	w->kube = kube_new(w->base, &w->kc, &ko);
	if (w->kube == NULL)
		fatal_config("cannot set up the API client for %s", log_escape(w->kc.server));
	w->store = store_new_compact();              /* sent expanded (store_plain) */
	store_owner_kinds(w->store, no_owner_kinds); /* nothing here reads by controller */
	memtrim_store(w->trim, w->store);
	for (i = 0; i < WATCHER_NRES; i++)
		w->kinds[i] = watcher_resources[i].kind;
	lspec.max_frame = w->cli.max_frame;
	sock = link_sock_path(w->cli.run_dir, LINK_WATCHER);
	w->pub = publish_new(w->base, sock, &lspec, w->store, w->kinds, WATCHER_NRES);
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
	aspec.max_frame = w->cli.max_frame;
	sock = link_sock_path(w->cli.run_dir, LINK_ACTUATOR);
	w->actuator = link_connect(w->base, sock, &aspec, &acb, w);
	free(sock);
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
	link_free(w->actuator);
	for (i = 0; i < WATCHER_NRES; i++)
		informer_free(w->inf[i]);
	shard_free(w->shard);
	publish_free(w->pub);
	store_free(w->store);
	metrics_stop();
	stopsig_free(w->stop);
	memtrim_free(w->trim);
	event_free(w->subs_timer);
	kubeconfig_clear(&w->kc);
	free(w->pool_selector);
	cli_free(&w->cli);
	event_base_free(w->base);
}

int vmpool_watcher_main(int argc, char **argv)
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

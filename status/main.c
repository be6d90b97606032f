/*
 * vmpool-status: readiness aggregation. Mirrors the watcher's objects (watcher.sock) and
 * the planner's per-pool sync results (planner.sock), computes each pool's status
 * (statuscalc.c) and writes /status only when it differs from the observed one
 * (statuswrite.c).
 * With --leader-elect it also subscribes to actuator.sock and writes (status and Events)
 * only while the actuator says it leads, i.e. holds the Lease; when that ends it exits at
 * once (LEASE_EXIT_LOST), dropping whatever its client still holds.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cli.h"
#include "k8sevent.h"
#include "kube.h"
#include "lease.h"
#include "link.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "mirror.h"
#include "multicall.h"
#include "obj.h"
#include "proto.h"
#include "statuscalc.h"
#include "statuswrite.h"
#include "store.h"
#include "memtrim.h"
#include "stopsig.h"

/* status PATCHes and Events at once: each is a few hundred bytes and is answered in a few
 * milliseconds, so 25 keep up with the API's token bucket; curl holds about 29 KB for each
 * running one, and 1,000 pools converging at once had the default 100 running (2.9 MB) */
#define ST_MAX_RUNNING 25

struct status {
	struct mirror *mirror;  /* the watcher's objects */
	struct mirror *results; /* the planner's sync results */
	struct stw *w;
	struct lease_cfg lease;
	struct link *actuator; /* --leader-elect: who leads */
	int leading;           /* may write */
	struct event_base *base;
};

/* ---- watcher ---- */

static void st_changed(const char *kind, json_object *old, json_object *new_, void *arg)
{
	struct status *st = arg;

	stw_changed(st->w, kind, old, new_);
}

static void st_synced(void *arg)
{
	struct status *st = arg;

	log_info(NULL, "watcher snapshot complete: %zu pools, %zu VMs",
	    store_count(mirror_store(st->mirror), KIND_POOL),
	    store_count(mirror_store(st->mirror), KIND_VM));
	metrics_set_ready(1);
	stw_dirty_all(st->w);
}

static void st_lost(void *arg)
{
	log_info(NULL, "watcher link lost; no writes until the next snapshot");
}

static int st_ready(void *arg)
{
	struct status *st = arg;

	return mirror_synced(st->mirror) && st->leading;
}

/* ---- actuator: leadership ---- */

static const int st_actuator_accept[] = {MSG_LEADER, 0};

static void st_not_leading(struct status *st, const char *why)
{
	if (!st->leading)
		return;
	log_warnx(NULL, "%s: exiting now so that no queued status write or Event goes out", why);
	fflush(NULL);
	_exit(LEASE_EXIT_LOST);
}

static void st_actuator_frame(struct link *l, int type, json_object *body, void *arg)
{
	struct status *st = arg;
	struct msg_leader ld;
	char err[256];

	if (type != MSG_LEADER)
		return;
	if (msg_leader_unpack(body, &ld, err, sizeof err) == -1) {
		log_warnx(NULL, "%s from %s; ignored", err, log_escape(link_peer_program(l)));
		return;
	}
	if (!ld.leading && ld.stopping && st->leading) {
		/* the actuator stops cleanly (SIGTERM, the pod going): so does this writer, with
		 * the usual clean exit; nothing more is written from here on */
		st->leading = 0;
		log_info(NULL, "the actuator stops and gives the Lease up: stopping too");
		event_base_loopexit(st->base, NULL);
		return;
	}
	if (!ld.leading) {
		st_not_leading(st, "the actuator does not lead");
		return;
	}
	if (!st->leading) {
		st->leading = 1;
		log_info(NULL, "the actuator leads: writing status");
		stw_dirty_all(st->w);
	}
}

static void st_actuator_down(struct link *l, void *arg)
{
	st_not_leading(arg, "the actuator link is gone");
}

static int st_opt(int opt, const char *val, void *arg)
{
	struct status *st = arg;

	return lease_cfg_set(&st->lease, opt, val);
}

/* ---- planner: its per-pool results, a second mirror (mirror_results) ---- */

static void st_result_changed(const char *kind, json_object *old, json_object *new_, void *arg)
{
	struct status *st = arg;
	json_object *o = new_ != NULL ? new_ : old;

	/* a POOL_FORGET is not marked dirty: the planner forgets only a pool the watcher
	 * removed, and that removal reaches this stage on its own link, maybe later.
	 * Recomputing the pool in between wrote the status of a pool another shard had just
	 * taken over (--pool-selector, e2e ha_shards). A result a new planner snapshot lacks
	 * is. */
	if (new_ == NULL && !mirror_sweeping(st->results))
		return;
	stw_dirty(st->w, obj_namespace(o), obj_name(o));
}

static void st_results_synced(void *arg)
{
	struct status *st = arg;

	log_info(NULL, "planner snapshot: %zu pool results",
	    store_count(mirror_store(st->results), MIRROR_RESULT_KIND));
}

/* ---- main ---- */

int vmpool_status_main(int argc, char **argv)
{
	struct link_spec aspec = {LINK_ACTUATOR, st_actuator_accept, 0};
	struct link_cb acb = {NULL, st_actuator_frame, st_actuator_down};
	struct mirror_cb mcb = {st_changed, st_synced, st_lost};
	struct mirror_cb rcb = {st_result_changed, st_results_synced, NULL};
	struct status st;
	struct cli cli;
	struct event_base *base;
	struct stopsig *stop;
	struct memtrim *trim;
	struct kube *kube;
	struct k8sev_recorder *rec;
	char *wpath, *ppath, *apath, err[256];
	struct option *opts = lease_options_with(NULL);

	kube_malloc_setup();
	memset(&st, 0, sizeof st);
	lease_cfg_init(&st.lease);
	cli_parse(&cli, "vmpool-status", argc, argv, opts, st_opt, &st,
	    "  --leader-elect       write only while the actuator leads (the other\n"
	    "                       --leader-elect-* flags and --pool-selector are taken and\n"
	    "                       checked but used by the watcher and actuator)\n");
	free(opts);
	if (lease_cfg_check(&st.lease, err, sizeof err) == -1)
		fatal_config("%s", err);
	st.leading = !st.lease.enabled;
	cli_check_run_dir(&cli);
	signal(SIGPIPE, SIG_IGN);
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	st.base = base;
	kube = kube_open(base, cli.kubeconfig, cli.qps, cli.burst, "vmpool-status");
	kube_set_max_running(kube, ST_MAX_RUNNING);
	rec = k8sev_recorder_new(kube);
	stw_metrics_declare();
	cli_start_endpoints(base, &cli);
	wpath = link_sock_path(cli.run_dir, LINK_WATCHER);
	ppath = link_sock_path(cli.run_dir, LINK_PLANNER);
	st.mirror = mirror_new(base, wpath, cli.max_frame, &mcb, &st);
	mirror_set_trim(st.mirror, statuscalc_trim, NULL);
	st.results = mirror_new_proto(base, &mirror_results, ppath, cli.max_frame, &rcb, &st);
	if (st.mirror == NULL || st.results == NULL)
		fatalx("cannot subscribe to %s and %s", wpath, ppath);
	st.w = stw_new(
	    base, kube, rec, mirror_store(st.mirror), mirror_store(st.results), st_ready, &st);
	apath = link_sock_path(cli.run_dir, LINK_ACTUATOR);
	aspec.max_frame = cli.max_frame;
	if (st.lease.enabled)
		st.actuator = link_connect(base, apath, &aspec, &acb, &st);
	log_info(NULL, "watching %s and %s", wpath, ppath);
	stop = stopsig_new(base);
	trim = memtrim_new(base);
	memtrim_store(trim, mirror_store(st.mirror));
	memtrim_store(trim, mirror_store(st.results));
	event_base_dispatch(base);

	link_free(st.actuator);
	lease_cfg_clear(&st.lease);
	free(apath);
	stw_free(st.w);
	mirror_free(st.mirror);
	mirror_free(st.results);
	kube_free(kube);
	k8sev_recorder_free(rec);
	metrics_stop();
	stopsig_free(stop);
	memtrim_free(trim);
	event_base_free(base);
	free(wpath);
	free(ppath);
	cli_free(&cli);
	return 0;
}

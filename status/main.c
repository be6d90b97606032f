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
#include "obj.h"
#include "proto.h"
#include "statuscalc.h"
#include "statuswrite.h"
#include "store.h"
#include "stopsig.h"

struct status {
	struct mirror *mirror;
	struct link *planner;
	struct stw *w;
	struct store *results; /* the planner's sync results */
	struct store *pending; /* results of a PSYNC snapshot in progress, or NULL */
	struct lease_cfg lease;
	struct link *actuator; /* --leader-elect: who leads */
	int leading;           /* may write */
	struct event_base *base;
};

static const int st_planner_accept[] = {
    MSG_PSYNC_BEGIN, MSG_PSYNC_END, MSG_POOL_RESULT, MSG_POOL_FORGET, 0};

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

/* ---- planner ---- */

/* a POOL_RESULT as stored: {metadata{namespace,name,uid}, ok, reason, message[, progress]} */
static json_object *st_result_obj(const struct msg_pool_result *r)
{
	json_object *o, *md;

	o = json_object_new_object();
	md = json_object_new_object();
	json_object_object_add(md, "namespace", json_object_new_string(r->ns));
	json_object_object_add(md, "name", json_object_new_string(r->name));
	json_object_object_add(md, "uid", json_object_new_string(r->uid));
	json_object_object_add(o, "metadata", md);
	json_object_object_add(o, "ok", json_object_new_boolean(r->ok));
	json_object_object_add(o, "reason", json_object_new_string(r->reason));
	json_object_object_add(o, "message", json_object_new_string(r->message));
	if (r->progress != NULL)
		json_object_object_add(o, "progress", json_object_new_string(r->progress));
	return o;
}

/* stores o (reference taken) and marks the pool dirty if it changed */
static void st_result_put(struct status *st, struct store *s, json_object *o)
{
	json_object *prev = store_put(s, STW_RESULT_KIND, o);

	if (s == st->results && !obj_equal(prev, o))
		stw_dirty(st->w, obj_namespace(o), obj_name(o));
	json_object_put(prev);
}

static void st_pool_result(struct status *st, const void *m)
{
	json_object *o = st_result_obj(m);

	st_result_put(st, st->pending != NULL ? st->pending : st->results, o);
}

static void st_pool_forget(struct status *st, const void *m)
{
	const struct msg_pool_forget *f = m;
	const char *ns = f->ns, *name = f->name;
	json_object *prev;

	if (st->pending != NULL)
		json_object_put(store_take(st->pending, STW_RESULT_KIND, ns, name));
	/* not marked dirty: the planner forgets only a pool the watcher removed, and that
	 * removal reaches this stage on its own link, maybe later. Recomputing the pool in
	 * between wrote the status of a pool another shard had just taken over (--pool-selector,
	 * e2e ha_shards). */
	if ((prev = store_take(st->results, STW_RESULT_KIND, ns, name)) != NULL)
		json_object_put(prev);
}

static void st_psync_begin(struct status *st, const void *m)
{
	store_free(st->pending);
	st->pending = store_new();
}

/* marks every result that differs between the old and the new snapshot */
static void st_diff_one(json_object *o, void *arg)
{
	struct status *st = arg;
	json_object *n = st->pending != NULL ? store_get(st->pending, STW_RESULT_KIND,
	                                           obj_namespace(o), obj_name(o))
	                                     : NULL;

	if (!obj_equal(o, n))
		stw_dirty(st->w, obj_namespace(o), obj_name(o));
}

static void st_diff_new(json_object *o, void *arg)
{
	struct status *st = arg;

	if (store_meta(st->results, STW_RESULT_KIND, obj_namespace(o), obj_name(o)) == NULL)
		stw_dirty(st->w, obj_namespace(o), obj_name(o));
}

static void st_psync_end(struct status *st, const void *m)
{
	if (st->pending == NULL) {
		log_warnx(NULL, "PSYNC_END without PSYNC_BEGIN: ignored");
		return;
	}
	store_foreach(st->results, STW_RESULT_KIND, st_diff_one, st);
	store_foreach(st->pending, STW_RESULT_KIND, st_diff_new, st);
	store_free(st->results);
	st->results = st->pending;
	st->pending = NULL;
	stw_set_results(st->w, st->results);
	log_info(
	    NULL, "planner snapshot: %zu pool results", store_count(st->results, STW_RESULT_KIND));
}

/* the planner link's dispatch table */
static const struct {
	int type;
	void (*fn)(struct status *, const void *msg);
} st_planner_handlers[] = {
    {MSG_PSYNC_BEGIN, st_psync_begin},
    {MSG_PSYNC_END, st_psync_end},
    {MSG_POOL_RESULT, st_pool_result},
    {MSG_POOL_FORGET, st_pool_forget},
};

/* the results' views live through one planner frame (store.h) */
static void st_release_views(struct status *st)
{
	store_release_views(st->results);
	if (st->pending != NULL)
		store_release_views(st->pending);
}

static void st_planner_frame(struct link *l, int type, json_object *body, void *arg)
{
	union msg_any m;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof st_planner_handlers / sizeof st_planner_handlers[0]; i++) {
		if (st_planner_handlers[i].type != type)
			continue;
		if (msg_unpack(type, body, &m, err, sizeof err) == -1) {
			log_warnx(
			    NULL, "%s from %s; ignored", err, log_escape(link_peer_program(l)));
			return;
		}
		st_planner_handlers[i].fn(arg, &m);
		st_release_views(arg);
		return;
	}
}

static void st_planner_down(struct link *l, void *arg)
{
	struct status *st = arg;

	/* keep the results until the next snapshot; drop a half-received one */
	store_free(st->pending);
	st->pending = NULL;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
	struct link_spec pspec = {LINK_PLANNER, st_planner_accept, 0};
	struct link_cb pcb = {NULL, st_planner_frame, st_planner_down};
	struct link_spec aspec = {LINK_ACTUATOR, st_actuator_accept, 0};
	struct link_cb acb = {NULL, st_actuator_frame, st_actuator_down};
	struct mirror_cb mcb = {st_changed, st_synced, st_lost};
	struct status st;
	struct cli cli;
	struct event_base *base;
	struct stopsig *stop;
	struct kube *kube;
	struct k8sev_recorder *rec;
	char *wpath, *ppath, *apath, err[256];
	struct option *opts = lease_options_with(NULL);

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
	rec = k8sev_recorder_new(kube);
	stw_metrics_declare();
	cli_start_endpoints(base, &cli);
	wpath = link_sock_path(cli.run_dir, LINK_WATCHER);
	ppath = link_sock_path(cli.run_dir, LINK_PLANNER);
	st.results = store_new();
	st.mirror = mirror_new(base, wpath, cli.max_frame, &mcb, &st);
	mirror_set_trim(st.mirror, statuscalc_trim, NULL);
	st.w = stw_new(base, kube, rec, mirror_store(st.mirror), st.results, st_ready, &st);
	pspec.max_frame = cli.max_frame;
	st.planner = link_connect(base, ppath, &pspec, &pcb, &st);
	apath = link_sock_path(cli.run_dir, LINK_ACTUATOR);
	aspec.max_frame = cli.max_frame;
	if (st.lease.enabled)
		st.actuator = link_connect(base, apath, &aspec, &acb, &st);
	log_info(NULL, "watching %s and %s", wpath, ppath);
	stop = stopsig_new(base);
	event_base_dispatch(base);

	link_free(st.planner);
	link_free(st.actuator);
	lease_cfg_clear(&st.lease);
	free(apath);
	mirror_free(st.mirror);
	stw_free(st.w);
	store_free(st.results);
	store_free(st.pending);
	kube_free(kube);
	k8sev_recorder_free(rec);
	metrics_stop();
	stopsig_free(stop);
	event_base_free(base);
	free(wpath);
	free(ppath);
	cli_free(&cli);
	return 0;
}

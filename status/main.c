/*
 * vmpool-status: readiness aggregation. Mirrors the watcher's objects (watcher.sock) and
 * the planner's per-pool sync results (planner.sock), computes each pool's status
 * (statuscalc.c) and writes /status only when it differs from the observed one
 * (statuswrite.c).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cli.h"
#include "k8sevent.h"
#include "kube.h"
#include "link.h"
#include "log.h"
#include "metrics.h"
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

	return mirror_synced(st->mirror);
}

/* ---- planner ---- */

/* a POOL_RESULT body as stored: {metadata{namespace,name,uid}, ok, reason, message[,
 * progress]} */
static json_object *st_result_obj(json_object *body)
{
	const char *ns = obj_str(body, "namespace"), *name = obj_str(body, "name");
	const char *uid = obj_str(body, "uid"), *reason = obj_str(body, "reason");
	const char *msg = obj_str(body, "message"), *progress = obj_str(body, "progress");
	json_object *ok, *o, *md;

	if (ns == NULL || name == NULL || ns[0] == '\0' || name[0] == '\0' ||
	    !json_object_object_get_ex(body, "ok", &ok) ||
	    !json_object_is_type(ok, json_type_boolean))
		return NULL;
	o = json_object_new_object();
	md = json_object_new_object();
	json_object_object_add(md, "namespace", json_object_new_string(ns));
	json_object_object_add(md, "name", json_object_new_string(name));
	json_object_object_add(md, "uid", json_object_new_string(uid ? uid : ""));
	json_object_object_add(o, "metadata", md);
	json_object_object_add(o, "ok", json_object_new_boolean(json_object_get_boolean(ok)));
	json_object_object_add(o, "reason", json_object_new_string(reason ? reason : ""));
	json_object_object_add(o, "message", json_object_new_string(msg ? msg : ""));
	if (progress != NULL)
		json_object_object_add(o, "progress", json_object_new_string(progress));
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

static void st_pool_result(struct status *st, json_object *body)
{
	json_object *o = st_result_obj(body);

	if (o == NULL) {
		log_warnx(NULL, "POOL_RESULT without namespace, name or ok: ignored");
		return;
	}
	st_result_put(st, st->pending != NULL ? st->pending : st->results, o);
}

static void st_pool_forget(struct status *st, json_object *body)
{
	const char *ns = obj_str(body, "namespace"), *name = obj_str(body, "name");
	json_object *prev;

	if (ns == NULL || name == NULL)
		return;
	if (st->pending != NULL)
		json_object_put(store_take(st->pending, STW_RESULT_KIND, ns, name));
	if ((prev = store_take(st->results, STW_RESULT_KIND, ns, name)) != NULL) {
		json_object_put(prev);
		stw_dirty(st->w, ns, name);
	}
}

static void st_psync_begin(struct status *st, json_object *body)
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

	if (store_get(st->results, STW_RESULT_KIND, obj_namespace(o), obj_name(o)) == NULL)
		stw_dirty(st->w, obj_namespace(o), obj_name(o));
}

static void st_psync_end(struct status *st, json_object *body)
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
	void (*fn)(struct status *, json_object *);
} st_planner_handlers[] = {
    {MSG_PSYNC_BEGIN, st_psync_begin},
    {MSG_PSYNC_END, st_psync_end},
    {MSG_POOL_RESULT, st_pool_result},
    {MSG_POOL_FORGET, st_pool_forget},
};

static void st_planner_frame(struct link *l, int type, json_object *body, void *arg)
{
	size_t i;

	for (i = 0; i < sizeof st_planner_handlers / sizeof st_planner_handlers[0]; i++) {
		if (st_planner_handlers[i].type == type) {
			st_planner_handlers[i].fn(arg, body);
			return;
		}
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
	struct mirror_cb mcb = {st_changed, st_synced, st_lost};
	struct status st;
	struct cli cli;
	struct event_base *base;
	struct stopsig *stop;
	struct kube *kube;
	struct k8sev_recorder *rec;
	char *wpath, *ppath;

	memset(&st, 0, sizeof st);
	cli_parse(&cli, "vmpool-status", argc, argv, NULL, NULL, NULL, NULL);
	cli_check_run_dir(&cli);
	signal(SIGPIPE, SIG_IGN);
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
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
	log_info(NULL, "watching %s and %s", wpath, ppath);
	stop = stopsig_new(base);
	event_base_dispatch(base);

	link_free(st.planner);
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

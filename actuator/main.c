/*
 * vmpool-actuator: executes the planner's actions. Listens on <run-dir>/actuator.sock,
 * takes ACTION frames, performs the API write (rate-limited by the kube client's token
 * bucket) and answers RESULT on the same connection, then posts the action's Event.
 * --dry-run answers every action as done without calling the API.
 * --leader-elect: writes only while this instance holds the Lease (elect.c); every peer is
 * told LEADER {leading, holder} after HELLO and on every change. A leader that stops
 * leading exits at once (LEASE_EXIT_LOST), so nothing queued in its client is written
 * after another instance may have taken over; on SIGTERM it drops its queued writes and
 * releases the Lease.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "act.h"
#include "cli.h"
#include "elect.h"
#include "lease.h"
#include "k8sevent.h"
#include "kube.h"
#include "link.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "multicall.h"
#include "proto.h"
#include "memtrim.h"
#include "stopsig.h"
#include "xmalloc.h"

#define OPT_DRY_RUN 1000

static const struct option act_extra[] = {
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {NULL, 0, NULL, 0},
};

static const int act_accept[] = {MSG_ACTION, 0};

#define ACT_M_LEADER     "vmpoold_leader"
#define ACT_RELEASE_WAIT 3.0 /* seconds a clean exit waits for the Lease's release */

struct act_main {
	struct actuator act;
	struct lease_cfg lease;
	struct elect *elect;
	struct link_server *srv;
	int stopping; /* SIGTERM: the clean exit is under way */
};

static int act_opt(int opt, const char *val, void *arg)
{
	struct act_main *m = arg;

	if (opt == OPT_DRY_RUN) {
		m->act.dry_run = 1;
		return 0;
	}
	return lease_cfg_set(&m->lease, opt, val);
}

/* LEADER {leading, holder[, lease][, stopping]} to one peer (lease: "<ns>/<name>") */
static void act_send_leader(struct link *l, void *arg)
{
	struct act_main *m = arg;
	struct msg_leader ld = {m->act.leading, m->elect != NULL ? elect_holder(m->elect) : "",
	    m->elect != NULL ? elect_lease(m->elect) : NULL, m->stopping};
	json_object *b = msg_leader_pack(&ld);

	link_send(l, MSG_LEADER, b);
	json_object_put(b);
}

/* WRITTEN to one peer, if it is a watcher (the others never asked for it) */
static void act_send_written(struct link *l, void *arg)
{
	if (strcmp(link_peer_program(l), PROG_WATCHER) == 0)
		link_send(l, MSG_WRITTEN, arg);
}

/* act->written: a create's answer to the watchers among the peers */
static void act_written(const char *kind, json_object *obj, void *arg)
{
	struct act_main *m = arg;
	struct msg_obj_set w = {kind, obj};
	json_object *b = msg_written_pack(&w);

	link_server_foreach(m->srv, act_send_written, b);
	json_object_put(b);
}

static void act_leader_gauge(struct act_main *m)
{
	char labels[128];

	snprintf(labels, sizeof labels, "name=\"%s\"",
	    m->elect != NULL ? elect_name(m->elect) : LEASE_DEFAULT_NAME);
	metrics_set(ACT_M_LEADER, labels, m->act.leading);
}

static void act_elected(struct elect *e, enum elect_event ev, void *arg)
{
	struct act_main *m = arg;

	switch (ev) {
	case ELECT_SYNCED:
		metrics_set_ready(1); /* a standby that knows who leads is ready */
		break;
	case ELECT_LEADING:
		m->act.leading = 1;
		act_leader_gauge(m);
		link_server_foreach(m->srv, act_send_leader, m);
		break;
	case ELECT_LOST:
		/* the writers' client may hold queued and parked requests: only the end of the
		 * process drops them all before another instance may act */
		log_warnx(NULL, "leadership lost: exiting now so that no queued write goes out");
		fflush(NULL);
		_exit(LEASE_EXIT_LOST);
	}
}

static void act_link_up(struct link *l, void *arg)
{
	struct act_main *m = arg;

	if (link_get_data(l) == NULL)
		link_set_data(l, act_conn_new(&m->act, l));
	log_info(NULL, "%s connected", link_peer_program(l));
	act_send_leader(l, m);
}

static void act_link_frame(struct link *l, int type, json_object *body, void *arg)
{
	struct act_conn *c = link_get_data(l);

	if (type != MSG_ACTION)
		return;
	if (c == NULL) {
		c = act_conn_new(&((struct act_main *)arg)->act, l);
		link_set_data(l, c);
	}
	act_handle(c, body);
}

static void act_link_down(struct link *l, void *arg)
{
	act_conn_gone(link_get_data(l));
	link_set_data(l, NULL);
	log_info(NULL, "%s link closed", link_peer_program(l));
}

/* at exit: the server does not call down() for the links it frees */
static void act_link_release(struct link *l, void *arg)
{
	act_conn_gone(link_get_data(l));
	link_set_data(l, NULL);
}

int vmpool_actuator_main(int argc, char **argv)
{
	struct link_spec spec = {LINK_ACTUATOR, act_accept, 0};
	struct link_cb cb = {act_link_up, act_link_frame, act_link_down};
	struct act_main m;
	struct actuator *act = &m.act;
	struct cli cli;
	struct event_base *base;
	struct stopsig *stop;
	struct memtrim *trim;
	struct option *opts = lease_options_with(act_extra);
	char *path, *usage, err[256];

	kube_malloc_setup();
	memset(&m, 0, sizeof m);
	act_init(&m.act);
	lease_cfg_init(&m.lease);
	xasprintf(&usage, "%s%s",
	    "  --dry-run            answer every action as done without calling the API\n",
	    lease_usage);
	cli_parse(&cli, "vmpool-actuator", argc, argv, opts, act_opt, &m, usage);
	free(opts);
	free(usage);
	if (lease_cfg_check(&m.lease, err, sizeof err) == -1)
		fatal_config("%s", err);
	cli_check_run_dir(&cli);
	signal(SIGPIPE, SIG_IGN);
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	if (!act->dry_run)
		act->kube = kube_open(base, cli.kubeconfig, cli.qps, cli.burst, "vmpool-actuator");
	act->rec = k8sev_recorder_new(act->kube);
	act_metrics_declare();
	metrics_declare(ACT_M_LEADER, "gauge",
	    "1 while this instance leads (holds the Lease, or --leader-elect is off), else 0.");
	act->leading = !m.lease.enabled;
	act->written = act_written;
	act->written_arg = &m;
	cli_start_endpoints(base, &cli);
	spec.max_frame = cli.max_frame;
	path = link_sock_path(cli.run_dir, LINK_ACTUATOR);
	if ((m.srv = link_listen(base, path, &spec, &cb, &m)) == NULL)
		fatal_config("cannot listen on %s", path);
	if (m.lease.enabled)
		m.elect = elect_new(base, &m.lease, cli.kubeconfig, m.lease.pool_selector,
		    cli.run_dir, act_elected, &m);
	else
		metrics_set_ready(1);
	act_leader_gauge(&m);
	log_info(NULL, "listening on %s%s", path, act->dry_run ? " (dry run)" : "");
	stop = stopsig_new(base);
	trim = memtrim_new(base);
	event_base_dispatch(base);

	/* a clean stop: the peers hear that this instance no longer leads and is stopping (so
	 * status stops too, with a clean exit), queued writes are dropped, then the Lease goes
	 * (its release runs the loop, which also delivers the LEADER frames) */
	if (act->leading && m.elect != NULL) {
		act->leading = 0;
		m.stopping = 1;
		link_server_foreach(m.srv, act_send_leader, &m);
	}
	kube_free(act->kube);
	act->kube = NULL;
	act_drop_waiting(act);
	elect_release(m.elect, ACT_RELEASE_WAIT);
	link_server_foreach(m.srv, act_link_release, NULL);
	link_server_free(m.srv);
	elect_free(m.elect);
	lease_cfg_clear(&m.lease);
	k8sev_recorder_free(act->rec);
	metrics_stop();
	stopsig_free(stop);
	memtrim_free(trim);
	event_base_free(base);
	free(path);
	cli_free(&cli);
	return 0;
}

/*
 * vmpool-actuator: executes the planner's actions. Listens on <run-dir>/actuator.sock,
 * takes ACTION frames, performs the API write (rate-limited by the kube client's token
 * bucket) and answers RESULT on the same connection, then posts the action's Event.
 * --dry-run answers every action as done without calling the API.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "act.h"
#include "cli.h"
#include "k8sevent.h"
#include "kube.h"
#include "link.h"
#include "log.h"
#include "metrics.h"
#include "proto.h"
#include "stopsig.h"

#define OPT_DRY_RUN 1000

static const struct option act_extra[] = {
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {NULL, 0, NULL, 0},
};

static const int act_accept[] = {MSG_ACTION, 0};

static int act_opt(int opt, const char *val, void *arg)
{
	struct actuator *act = arg;

	if (opt == OPT_DRY_RUN) {
		act->dry_run = 1;
		return 0;
	}
	return -1;
}

static void act_link_up(struct link *l, void *arg)
{
	struct actuator *act = arg;

	if (link_get_data(l) == NULL)
		link_set_data(l, act_conn_new(act, l));
	log_info(NULL, "planner connected (%s)", link_peer_program(l));
}

static void act_link_frame(struct link *l, int type, json_object *body, void *arg)
{
	struct act_conn *c = link_get_data(l);

	if (type != MSG_ACTION)
		return;
	if (c == NULL) {
		c = act_conn_new(arg, l);
		link_set_data(l, c);
	}
	act_handle(c, body);
}

static void act_link_down(struct link *l, void *arg)
{
	act_conn_gone(link_get_data(l));
	link_set_data(l, NULL);
	log_info(NULL, "planner link closed");
}

/* at exit: the server does not call down() for the links it frees */
static void act_link_release(struct link *l, void *arg)
{
	act_conn_gone(link_get_data(l));
	link_set_data(l, NULL);
}

int main(int argc, char **argv)
{
	struct link_spec spec = {LINK_ACTUATOR, act_accept, 0};
	struct link_cb cb = {act_link_up, act_link_frame, act_link_down};
	struct actuator act;
	struct cli cli;
	struct event_base *base;
	struct stopsig *stop;
	struct link_server *srv;
	char *path;

	memset(&act, 0, sizeof act);
	cli_parse(&cli, "vmpool-actuator", argc, argv, act_extra, act_opt, &act,
	    "  --dry-run            answer every action as done without calling the API\n");
	cli_check_run_dir(&cli);
	signal(SIGPIPE, SIG_IGN);
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	if (!act.dry_run)
		act.kube = kube_open(base, cli.kubeconfig, cli.qps, cli.burst, "vmpool-actuator");
	act.rec = k8sev_recorder_new(act.kube);
	act_metrics_declare();
	cli_start_endpoints(base, &cli);
	spec.max_frame = cli.max_frame;
	path = link_sock_path(cli.run_dir, LINK_ACTUATOR);
	if ((srv = link_listen(base, path, &spec, &cb, &act)) == NULL)
		fatal_config("cannot listen on %s", path);
	metrics_set_ready(1);
	log_info(NULL, "listening on %s%s", path, act.dry_run ? " (dry run)" : "");
	stop = stopsig_new(base);
	event_base_dispatch(base);

	link_server_foreach(srv, act_link_release, NULL);
	link_server_free(srv);
	kube_free(act.kube);
	k8sev_recorder_free(act.rec);
	metrics_stop();
	stopsig_free(stop);
	event_base_free(base);
	free(path);
	cli_free(&cli);
	return 0;
}

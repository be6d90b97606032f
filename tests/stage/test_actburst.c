/*
 * test_actburst.c: black-box test of vmpool-actuator under a burst of writes (issue 9).
 * A fake API server (evhttp, plain http) holds every VM create it gets until the test lets
 * go. The planner's side sends more creates than the actuator hands to its API client at
 * once (ACT_SUBMIT_MAX, twice KUBE_MAX_RUNNING): the client still runs KUBE_MAX_RUNNING of
 * them at once, none of the last ones sent, which wait in the actuator
 * (vmpool_actuator_waiting) while every one counts as in flight. Once the server answers,
 * every create is POSTed exactly once with the body the planner built, every RESULT is ok,
 * and nothing waits any more.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "kube.h"
#include "link.h"
#include "log.h"
#include "obj.h"
#include "proto.h"
#include "../support/metricskit.h"
#include "../support/stagekit.h"
#include "timeutil.h"
#include "xmalloc.h"

#define TOKEN  "burst-token"
#define NBURST 250 /* more than the actuator hands to its client at once (200) */
#define WAITS  (NBURST - 2 * KUBE_MAX_RUNNING)

static struct event_base *base;

/* the fake API server */
static struct {
	struct evhttp_request *held[NBURST];
	int nheld, released;
	int posts[NBURST];    /* POSTs per VM index */
	int held_ok;          /* held ones handed to the client (not among the last WAITS) */
	int bodies_ok, nbody; /* bodies as the planner built them */
} api;

/* the planner's side */
static struct {
	struct link *link;
	int up, nresults, nok;
} pl;

static void pl_up(struct link *l, void *arg)
{
	pl.up = 1;
}

static void pl_frame(struct link *l, int type, json_object *body, void *arg)
{
	if (type != MSG_RESULT)
		return;
	pl.nresults++;
	pl.nok += obj_bool(body, "ok");
}

static void pl_down(struct link *l, void *arg)
{
	pl.up = 0;
}

/* the VM the planner sends for index i */
static json_object *burst_vm(int i)
{
	char text[512];

	snprintf(text, sizeof text,
	    "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\",\"metadata\":{"
	    "\"name\":\"vm-%d\",\"namespace\":\"ns\",\"labels\":{\"kubevirt.io/vmpool\":\"p\"}},"
	    "\"spec\":{\"runStrategy\":\"Always\",\"template\":{\"spec\":{\"domain\":{"
	    "\"resources\":{\"requests\":{\"memory\":\"128Mi\"}}},\"index\":%d,\"ratio\":0.5}}}}",
	    i, i);
	return json_tokener_parse(text);
}

static void api_answer(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	char *text = xstrndup((const char *)evbuffer_pullup(in, (ev_ssize_t)n), n);

	stagekit_http_reply(req, 201, text, n);
	free(text);
}

static void api_handle(struct evhttp_request *req, void *arg)
{
	json_object *rec = stagekit_http_record(req), *want;
	const char *name = obj_str(rec, "body.metadata.name");
	int i;

	if (strcmp(obj_str(rec, "method"), "POST") != 0 || name == NULL ||
	    sscanf(name, "vm-%d", &i) != 1 || i < 0 || i >= NBURST) {
		stagekit_http_reply(req, 201, "{}", 2); /* Events */
		json_object_put(rec);
		return;
	}
	api.posts[i]++;
	want = burst_vm(i);
	api.nbody++;
	api.bodies_ok += obj_equal(obj_path(rec, "body"), want);
	json_object_put(want);
	json_object_put(rec);
	if (api.released) {
		api_answer(req);
		return;
	}
	api.held_ok += i < NBURST - WAITS;
	api.held[api.nheld++] = req;
}

static void api_release(void)
{
	int i;

	api.released = 1;
	for (i = 0; i < api.nheld; i++)
		api_answer(api.held[i]);
	api.nheld = 0;
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
}

/* a sample of the actuator's metrics page, -1 if it has none */
static int metrics_port;
static double sample(const char *series)
{
	struct stagekit_http_answer *h = xcalloc(1, sizeof *h);
	double v = -1;

	stagekit_http_get(base, metrics_port, "/metrics", h, 5);
	if (h->code != 200 || metricskit_sample(h->body, series, &v) == -1)
		v = -1;
	free(h);
	return v;
}

static int burst_all_held(void *arg)
{
	return api.nheld >= KUBE_MAX_RUNNING && sample("vmpool_actuator_waiting") == WAITS;
}

static int burst_answered(void *arg)
{
	return pl.nresults >= NBURST;
}

static int burst_up(void *arg)
{
	return pl.up;
}

static void burst_send(void)
{
	char text[256];
	json_object *a;
	int i;

	for (i = 0; i < NBURST; i++) {
		snprintf(text, sizeof text,
		    "{\"id\":%d,\"op\":\"create_vm\",\"namespace\":\"ns\",\"name\":\"vm-%d\","
		    "\"pool\":{\"name\":\"p\",\"uid\":\"pu\"}}",
		    1000 + i, i);
		a = json_tokener_parse(text);
		json_object_object_add(a, "body", burst_vm(i));
		link_send(pl.link, MSG_ACTION, a);
		json_object_put(a);
	}
}

/* exactly one POST per VM */
static int burst_posted_once(void)
{
	int i;

	for (i = 0; i < NBURST; i++)
		if (api.posts[i] != 1) {
			fprintf(stderr, "  vm-%d POSTed %d times\n", i, api.posts[i]);
			return 0;
		}
	return 1;
}

/* the actuator under test, its fake API server and its planner link */
struct burst_env {
	char tmpl[64], bin[1024], kc[1100], rd[1100], logp[1100], mbind[64], *sock;
	struct event *tick;
	struct evhttp *http;
	pid_t pid;
	int st;
};

static int burst_start(struct burst_env *e)
{
	static const int accept[] = {MSG_RESULT, MSG_LEADER, 0};
	static const struct link_spec spec = {LINK_ACTUATOR, accept, 0};
	static const struct link_cb cb = {pl_up, pl_frame, pl_down};
	const char *bindir = getenv("VMPOOL_BIN");
	struct timeval tv = {0, 50000};
	int port = stagekit_free_port();

	snprintf(e->tmpl, sizeof e->tmpl, "/tmp/test_actburst.XXXXXX");
	if (mkdtemp(e->tmpl) == NULL)
		return -1;
	snprintf(e->bin, sizeof e->bin, "%s/vmpool-actuator", bindir ? bindir : "bin-asan");
	snprintf(e->kc, sizeof e->kc, "%s/kubeconfig", e->tmpl);
	snprintf(e->rd, sizeof e->rd, "%s/run", e->tmpl);
	snprintf(e->logp, sizeof e->logp, "%s/actuator.log", e->tmpl);
	metrics_port = stagekit_free_port();
	snprintf(e->mbind, sizeof e->mbind, "127.0.0.1:%d", metrics_port);
	stagekit_write_kubeconfig(e->kc, port, TOKEN, NULL);
	base = event_base_new();
	e->tick = event_new(base, -1, EV_PERSIST, tick, NULL);
	event_add(e->tick, &tv); /* the waits look at their condition at least every 50 ms */
	STAGEKIT_CHECK(
	    stagekit_http_serve(base, port, api_handle, &e->http) == 0, "fake API listens");
	{
		char *argv[] = {e->bin, "--run-dir", e->rd, "--kubeconfig", e->kc, "--kube-api-qps",
		    "0", "--metrics-bind-address", e->mbind, NULL};
		e->pid = stagekit_spawn(e->bin, argv, e->logp);
	}
	e->sock = link_sock_path(e->rd, LINK_ACTUATOR);
	pl.link = link_connect(base, e->sock, &spec, &cb, NULL);
	return 0;
}

static void burst_stop(struct burst_env *e)
{
	kill(e->pid, SIGTERM);
	while (e->pid > 0 && waitpid(e->pid, &e->st, 0) == -1)
		;
	STAGEKIT_CHECK(
	    WIFEXITED(e->st) && WEXITSTATUS(e->st) == 0, "SIGTERM exits 0 (status %d)", e->st);
	if (stagekit_failed > 0)
		fprintf(stderr, "actuator log kept: %s\n", e->logp);
	else
		unlink(e->logp);
	link_free(pl.link);
	evhttp_free(e->http);
	event_free(e->tick);
	event_base_free(base);
	unlink(e->kc);
	rmdir(e->rd);
	rmdir(e->tmpl);
	free(e->sock);
}

int main(void)
{
	struct burst_env e;

	log_init("test_actburst", 0, LOG_FMT_TEXT);
	signal(SIGPIPE, SIG_IGN);
	memset(&e, 0, sizeof e);
	if (burst_start(&e) == -1)
		return 1;
	STAGEKIT_CHECK(stagekit_wait(base, &e.pid, &e.st, burst_up, NULL, 10), "planner link up");

	burst_send();
	STAGEKIT_CHECK(stagekit_wait(base, &e.pid, &e.st, burst_all_held, NULL, 30),
	    "the server holds %d creates, %d wait in the actuator (held %d)", KUBE_MAX_RUNNING,
	    WAITS, api.nheld);
	STAGEKIT_CHECK(api.nheld == KUBE_MAX_RUNNING && api.held_ok == KUBE_MAX_RUNNING,
	    "the client runs %d at once, none of the waiting ones (%d of %d held)",
	    KUBE_MAX_RUNNING, api.held_ok, api.nheld);
	STAGEKIT_CHECK(
	    sample("vmpool_actuator_inflight") == NBURST, "all %d count as in flight", NBURST);
	STAGEKIT_CHECK(pl.nresults == 0, "no RESULT while the server holds them");

	api_release();
	STAGEKIT_CHECK(stagekit_wait(base, &e.pid, &e.st, burst_answered, NULL, 60),
	    "every create answered (%d of %d)", pl.nresults, NBURST);
	STAGEKIT_CHECK(pl.nok == NBURST, "every RESULT ok (%d)", pl.nok);
	STAGEKIT_CHECK(burst_posted_once(), "every VM POSTed exactly once");
	STAGEKIT_CHECK(api.nbody == NBURST && api.bodies_ok == NBURST,
	    "every body as the planner built it (%d of %d)", api.bodies_ok, api.nbody);
	STAGEKIT_CHECK(
	    sample("vmpool_actuator_waiting") == 0 && sample("vmpool_actuator_inflight") == 0,
	    "nothing waits or is in flight any more");
	burst_stop(&e);
	return stagekit_summary("test_actburst");
}

/*
 * test_evq.c: the Event recorder (common/k8sevent.c) and the kube client's Event queue
 * under sustained pressure (issue 10), in one process against a fake API server (evhttp,
 * plain http). The test keeps one object write outstanding at all times (the server holds
 * each for a moment, the next is asked for as it is answered), so no Event may go, and posts
 * more distinct Events than K8SEV_PENDING_MAX. It checks:
 * (a) the Event write attempts stay bounded: no more than K8SEV_OUT_MAX are at the client,
 *     dropped once when they have waited KUBE_EVENT_MAX_WAIT, and none after that while the
 *     pressure lasts (no polling);
 * (b) no more than K8SEV_PENDING_MAX Events have a write pending, the oldest given up and
 *     counted (vmpool_events_dropped_total{reason="overflow"});
 * (c) once the pressure ends every pending Event is written, once, about in the order they
 *     were posted;
 * (d) object writes are never delayed by Events: between the moment an object write is
 *     asked for and the moment it reaches the server, no more Events reach the server than
 *     the client had already let go;
 * and that an Event answered 422 is tried once, counted as rejected, and not retried.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/http.h>

#include "k8sevent.h"
#include "kube.h"
#include "kube_int.h"
#include "log.h"
#include "metrics.h"
#include "obj.h"
#include "timeutil.h"
#include "xmalloc.h"
#include "../support/metricskit.h"
#include "../support/stagekit.h"

#define NEV  (K8SEV_PENDING_MAX + 500) /* distinct Events posted under pressure */
#define NOBJ 4096                      /* object writes the test may ask for */

static struct event_base *base;

/* the fake API server: what it saw */
static struct {
	struct evhttp_request *held; /* the object write it holds */
	int nobj;                    /* object writes received */
	int nev;                     /* Event writes received */
	int order[NEV];              /* the pools of the Events, in the order they came */
	int posts[NEV];              /* POSTs per pool */
	int bad;                     /* writes of the Event answered 422 */
	int other;                   /* anything else */
} api;

/* the test's object writes: the server's Event count when each was asked for and when it
 * reached the server */
static struct {
	int pressure; /* ask for the next one when one is answered */
	int n, ndone;
	int ev_asked[NOBJ], ev_arrived[NOBJ];
} obj;

static struct kube *k;
static struct k8sev_recorder *rec;

static void obj_write(void);

static void obj_done(const struct kube_response *resp, void *arg)
{
	obj.ndone++;
	if (obj.pressure)
		obj_write();
}

static void obj_write(void)
{
	if (obj.n >= NOBJ)
		return;
	obj.ev_asked[obj.n++] = api.nev;
	kube_request(k, "POST", "/api/v1/namespaces/t/configmaps", NULL, "{}", obj_done, NULL);
}

static void api_handle(struct evhttp_request *req, void *arg)
{
	json_object *r = stagekit_http_record(req);
	const char *path = obj_str(r, "path"), *name = obj_str(r, "body.involvedObject.name");
	int i;

	if (path != NULL && strstr(path, "/configmaps") != NULL) {
		if (api.nobj < NOBJ)
			obj.ev_arrived[api.nobj] = api.nev;
		api.nobj++;
		if (api.held != NULL)
			stagekit_http_reply(api.held, 201, "{}", 2);
		api.held = req; /* answered by the tick, or when the next one comes */
	} else if (name != NULL && strcmp(name, "bad") == 0) {
		api.bad++;
		stagekit_http_reply(req, 422, "{\"kind\":\"Status\",\"reason\":\"Invalid\"}", 36);
	} else if (name != NULL && sscanf(name, "p%d", &i) == 1 && i >= 0 && i < NEV &&
	           strcmp(obj_str(r, "method"), "POST") == 0) {
		api.posts[i]++;
		if (api.nev < NEV)
			api.order[api.nev] = i;
		api.nev++;
		stagekit_http_reply(req, 201, "{}", 2);
	} else {
		api.other++;
		stagekit_http_reply(req, 201, "{}", 2);
	}
	json_object_put(r);
}

/* every 20 ms the object write held is answered: writes go on one after the other */
static void tick(evutil_socket_t fd, short what, void *arg)
{
	if (api.held != NULL) {
		stagekit_http_reply(api.held, 201, "{}", 2);
		api.held = NULL;
	}
}

/* runs the loop until cond() holds or secs pass; returns cond() */
static int wait_for(int (*cond)(void), double secs)
{
	double end = now_mono() + secs;

	while (!cond() && now_mono() < end)
		event_base_loop(base, EVLOOP_ONCE);
	return cond();
}

static double sample(const char *series)
{
	char *text = metricskit_render();
	double v;

	if (metricskit_sample(text, series, &v) == -1)
		v = -1;
	free(text);
	return v;
}

static unsigned long attempts_dropped(void)
{
	struct kube_stats st;

	kube_get_stats(k, &st);
	return st.events_dropped;
}

static double pressure_until;
static int first_drop(void)
{
	return attempts_dropped() > 0;
}
static int pressure_over(void)
{
	return now_mono() >= pressure_until;
}
static int obj_held(void)
{
	return api.nobj > 0;
}
/* written, and the answers taken in */
static int all_written(void)
{
	return api.nev >= K8SEV_PENDING_MAX && k8sev_recorder_pending(rec) == 0;
}
static int drain_half(void)
{
	return api.nev >= K8SEV_PENDING_MAX / 2;
}
static int obj_all_done(void)
{
	return obj.ndone == obj.n;
}
static int bad_answered(void)
{
	return api.bad > 0 && api.nev > K8SEV_PENDING_MAX && k8sev_recorder_pending(rec) == 0;
}

static void post_event(const char *pool, const char *msg)
{
	struct k8sev_src src = {"t", pool, "", "Normal", "SuccessfulCreate", msg};

	if (k8sev_post(rec, &src, now_real()) != 0)
		STAGEKIT_CHECK(0, "posted %s", pool);
}

/* (c): the Events written are the K8SEV_OUT_MAX oldest (at the client when the flood came,
 * never given up) and the newest, each once, about in the order they were posted */
static void check_written(void)
{
	int i, once = 0, lost = 0, late = 0, rank = 0;

	for (i = 0; i < NEV; i++) {
		if (i < K8SEV_OUT_MAX || i >= NEV - (K8SEV_PENDING_MAX - K8SEV_OUT_MAX))
			once += api.posts[i] == 1;
		else
			lost += api.posts[i] != 0;
	}
	STAGEKIT_CHECK(once == K8SEV_PENDING_MAX && lost == 0,
	    "the %d Events pending were written once each (%d), none of those given up (%d)",
	    K8SEV_PENDING_MAX, once, lost);
	/* in order, but for the writes the client runs at once */
	for (i = 0; i < api.nev && i < NEV; i++) {
		rank = api.order[i] < K8SEV_OUT_MAX ? api.order[i]
		                                    : api.order[i] - (NEV - K8SEV_PENDING_MAX);
		late += abs(rank - i) > K8SEV_OUT_MAX;
	}
	STAGEKIT_CHECK(late == 0, "written in the order posted, within %d (%d out of place)",
	    K8SEV_OUT_MAX, late);
}

/* (d): while an object write went from the client to the server, only the Events the
 * client had already let go could reach the server first */
static void check_objects(void)
{
	int i, worst = 0, n = api.nobj < obj.n ? api.nobj : obj.n;

	for (i = 0; i < n; i++)
		if (obj.ev_arrived[i] - obj.ev_asked[i] > worst)
			worst = obj.ev_arrived[i] - obj.ev_asked[i];
	STAGEKIT_CHECK(api.nobj == obj.n && obj.ndone == obj.n,
	    "every object write reached the server and was answered (%d, %d of %d)", api.nobj,
	    obj.ndone, obj.n);
	STAGEKIT_CHECK(worst <= K8SEV_OUT_MAX,
	    "no object write waited behind Events: at most %d reached the server meanwhile", worst);
}

int main(void)
{
	struct kube_config cfg;
	struct kube_opts o = {0, 1, "test_evq", 5, 60};
	struct timeval tv = {0, 20000};
	struct evhttp *http = NULL;
	struct event *t;
	char server[64], pool[32];
	int port = stagekit_free_port(), i;
	unsigned long dropped;

	log_init("test_evq", 0, LOG_FMT_TEXT);
	base = event_base_new();
	memset(&cfg, 0, sizeof cfg);
	snprintf(server, sizeof server, "http://127.0.0.1:%d", port);
	cfg.server = server;
	STAGEKIT_CHECK(stagekit_http_serve(base, port, api_handle, &http) == 0, "fake API listens");
	k = kube_new(base, &cfg, &o);
	rec = k8sev_recorder_new(k);
	t = event_new(base, -1, EV_PERSIST, tick, NULL);
	event_add(t, &tv);

	/* the pressure: one object write outstanding at all times */
	obj.pressure = 1;
	obj_write();
	STAGEKIT_CHECK(wait_for(obj_held, 10), "the object writes reach the server");
	for (i = 0; i < NEV; i++) {
		snprintf(pool, sizeof pool, "p%d", i);
		post_event(pool, "Created VM");
	}
	/* (b) */
	STAGEKIT_CHECK(k8sev_recorder_pending(rec) == K8SEV_PENDING_MAX,
	    "%lu Events pending of %d posted (at most %d)", k8sev_recorder_pending(rec), NEV,
	    K8SEV_PENDING_MAX);
	STAGEKIT_CHECK(sample(K8SEV_M_DROPPED "{reason=\"overflow\"}") == NEV - K8SEV_PENDING_MAX,
	    "the oldest %d given up, counted as overflow (%g)", NEV - K8SEV_PENDING_MAX,
	    sample(K8SEV_M_DROPPED "{reason=\"overflow\"}"));

	/* (a): the writes at the client wait KUBE_EVENT_MAX_WAIT, are dropped once; then none
	 * is tried while the pressure lasts (longer than the old 5 s retry period) */
	STAGEKIT_CHECK(wait_for(first_drop, KUBE_EVENT_MAX_WAIT + 10),
	    "the Events at the client dropped after waiting behind object writes");
	pressure_until = now_mono() + 7;
	wait_for(pressure_over, 10);
	dropped = attempts_dropped();
	STAGEKIT_CHECK(dropped == K8SEV_OUT_MAX,
	    "under %.0fs of pressure %lu Event write attempts were dropped (the %d at the "
	    "client), not one per pending Event every few seconds",
	    KUBE_EVENT_MAX_WAIT + 7, dropped, K8SEV_OUT_MAX);
	STAGEKIT_CHECK(sample(K8SEV_M_DROPPED "{reason=\"pressure\"}") == (double)dropped,
	    "counted as pressure (%g)", sample(K8SEV_M_DROPPED "{reason=\"pressure\"}"));
	STAGEKIT_CHECK(api.nev == 0 && api.nobj > 100,
	    "no Event reached the server while %d object writes went one after the other",
	    api.nobj);
	STAGEKIT_CHECK(k8sev_recorder_pending(rec) == K8SEV_PENDING_MAX,
	    "the %d Events still pending", K8SEV_PENDING_MAX);

	/* (c): the pressure ends; halfway through, object writes again, which go first (d) */
	obj.pressure = 0;
	STAGEKIT_CHECK(wait_for(drain_half, 60), "half of the Events written (%d)", api.nev);
	for (i = 0; i < 5; i++)
		obj_write();
	STAGEKIT_CHECK(wait_for(all_written, 120) && wait_for(obj_all_done, 10),
	    "every pending Event written once the pressure ended (%d of %d)", api.nev,
	    K8SEV_PENDING_MAX);
	check_written();
	check_objects();
	STAGEKIT_CHECK(k8sev_recorder_pending(rec) == 0 && attempts_dropped() == dropped &&
	                   sample(K8SEV_M_DROPPED "{reason=\"tries\"}") == 0,
	    "nothing pending (%lu), no attempt dropped (%lu), none given up (%g) after the "
	    "pressure",
	    k8sev_recorder_pending(rec), attempts_dropped() - dropped,
	    sample(K8SEV_M_DROPPED "{reason=\"tries\"}"));

	/* an Event rejected (422): tried once, counted, not retried */
	post_event("bad", "Created VM");
	post_event("p0", "Created VM again"); /* goes after it */
	STAGEKIT_CHECK(wait_for(bad_answered, 10), "the rejected Event and the next one answered");
	STAGEKIT_CHECK(api.bad == 1 && sample(K8SEV_M_DROPPED "{reason=\"rejected\"}") == 1,
	    "422: one attempt (%d), counted as rejected (%g)", api.bad,
	    sample(K8SEV_M_DROPPED "{reason=\"rejected\"}"));
	STAGEKIT_CHECK(k8sev_recorder_pending(rec) == 0 && api.other == 0,
	    "nothing else pending (%lu) or written (%d other requests)",
	    k8sev_recorder_pending(rec), api.other);

	kube_free(k);
	k8sev_recorder_free(rec);
	event_free(t);
	evhttp_free(http);
	event_base_free(base);
	return stagekit_summary("test_evq");
}

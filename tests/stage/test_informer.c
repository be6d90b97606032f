/*
 * test_informer.c: the informer as the simulator uses it (common/informer.c: no transform,
 * whole objects, a 404 keeping what it knew, its own store and metric prefix) against a fake API
 * server in this process that serves VMs, holds watches open, answers a watch with an ERROR
 * 410 event, or answers everything 404 (an API server that has not loaded its CRDs yet).
 * In order:
 *   1. the first list: every VM reported once, whole (nothing projected away), synced;
 *   2. a watch answered 410: a relist whose difference is reported (one VM gone, one new),
 *      counted in <prefix>_relists_total;
 *   3. every request 404: not synced, and nothing reported gone (what the simulator knew
 *      stays, so it deletes no VMI);
 *   4. the API answers again: the next list reports what vanished and what changed
 *      meanwhile (an object unchanged since the last list is not reported), synced again;
 *   5. the watcher's way: the same 404 keeps both VMs for its absent_keep (a restarted API
 *      server still loading its CRDs), then reports them gone; with absent_keep 0 it empties
 *      the informer at once, so the check of 3 is not one that cannot fail;
 *   6. watches that fail before any event (503, or cut inside the event) lead to a list
 *      after three; watches the server closes cleanly before any event do not;
 *   7. informer_written(): an object our create was answered with is kept only while
 *      watching and when newer than the watch (as numbers: 9 is older than 10), not under
 *      a kept name nor with a version that is not a number, and it does not move the
 *      version the watch resumes from.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <json-c/json.h>

#include "../support/metricskit.h"
#include "../support/stagekit.h"
#include "informer.h"
#include "kube.h"
#include "log.h"
#include "metrics.h"
#include "obj.h"
#include "proto.h"
#include "store.h"
#include "timeutil.h"

enum fake_mode { FAKE_OK, FAKE_GONE, FAKE_404, FAKE_WATCH503, FAKE_WATCH_CUT, FAKE_WATCH_CLOSED };

/* the fake API server: the VMs it lists, how it answers, the watch it holds open */
static struct {
	const char *names[4];
	int rv;
	int bump; /* names[0] is listed at resourceVersion 8 instead of 7 */
	enum fake_mode mode;
	struct evhttp_request *held;
	int lists, watches;
	char watch_rv[32]; /* the resourceVersion the last watch asked for */
} F;

/* what the sink saw */
static struct {
	int sets, dels, synced_calls;
	char last_set[64], last_del[64];
	int whole; /* the last set object still had spec.template.spec.domain */
} K;

static struct event_base *base;

static void fake_list(struct evhttp_request *req)
{
	struct evbuffer *b = evbuffer_new();
	int i;

	evbuffer_add_printf(b,
	    "{\"kind\":\"VirtualMachineList\",\"apiVersion\":\"kubevirt.io/v1\","
	    "\"metadata\":{\"resourceVersion\":\"%d\"},\"items\":[",
	    F.rv);
	for (i = 0; i < 4 && F.names[i] != NULL; i++)
		evbuffer_add_printf(b,
		    "%s{\"metadata\":{\"name\":\"%s\",\"namespace\":\"t\",\"uid\":\"u-%s\","
		    "\"resourceVersion\":\"%d\"},\"spec\":{\"running\":true,\"template\":{"
		    "\"spec\":{\"domain\":{\"devices\":{}}}}}}",
		    i ? "," : "", F.names[i], F.names[i], i == 0 && F.bump ? 8 : 7);
	evbuffer_add_printf(b, "]}");
	stagekit_http_reply(req, 200, (const char *)evbuffer_pullup(b, -1), evbuffer_get_length(b));
	evbuffer_free(b);
}

static void fake_serve(struct evhttp_request *req, void *arg)
{
	const char *uri = evhttp_request_get_uri(req);
	struct evbuffer *b;

	if (F.mode == FAKE_404) {
		static const char nf[] =
		    "{\"kind\":\"Status\",\"code\":404,\"reason\":\"NotFound\"}";

		stagekit_http_reply(req, 404, nf, sizeof nf - 1);
		return;
	}
	if (strstr(uri, "watch=1") == NULL) {
		F.lists++;
		fake_list(req);
		return;
	}
	F.watches++;
	if (strstr(uri, "resourceVersion=") != NULL)
		sscanf(strstr(uri, "resourceVersion=") + strlen("resourceVersion="), "%31[0-9]",
		    F.watch_rv);
	if (F.mode == FAKE_WATCH503) {
		static const char su[] =
		    "{\"kind\":\"Status\",\"code\":503,\"reason\":\"ServiceUnavailable\"}";

		stagekit_http_reply(req, 503, su, sizeof su - 1);
		return;
	}
	evhttp_add_header(
	    evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evhttp_send_reply_start(req, 200, "OK");
	b = evbuffer_new();
	if (F.mode == FAKE_GONE) {
		evbuffer_add_printf(b, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\","
		                       "\"code\":410,\"reason\":\"Expired\"}}\n");
		evhttp_send_reply_chunk(req, b);
		evhttp_send_reply_end(req);
	} else if (F.mode == FAKE_WATCH_CUT || F.mode == FAKE_WATCH_CLOSED) {
		/* a stream cut inside its first event, or closed before any */
		if (F.mode == FAKE_WATCH_CUT)
			evbuffer_add_printf(b, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{");
		else
			evbuffer_add_printf(b, "\n");
		evhttp_send_reply_chunk(req, b);
		evhttp_send_reply_end(req);
	} else {
		evbuffer_add_printf(b,
		    "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"VirtualMachine\","
		    "\"metadata\":{\"resourceVersion\":\"%d\"}}}\n",
		    F.rv);
		evhttp_send_reply_chunk(req, b);
		F.held = req;
	}
	evbuffer_free(b);
}

/* ends the watch held open, so that the informer watches again (in the new mode) */
static void fake_end_watch(void)
{
	if (F.held != NULL)
		evhttp_send_reply_end(F.held);
	F.held = NULL;
}

static void sink_set(const char *kind, json_object *obj, void *arg)
{
	K.sets++;
	snprintf(K.last_set, sizeof K.last_set, "%s", obj_name(obj) ? obj_name(obj) : "?");
	K.whole = obj_path(obj, "spec.template.spec.domain") != NULL;
}

static void sink_del(const char *kind, json_object *obj, void *arg)
{
	K.dels++;
	snprintf(K.last_del, sizeof K.last_del, "%s", obj_name(obj) ? obj_name(obj) : "?");
}

static void sink_synced(const char *kind, void *arg)
{
	K.synced_calls++;
}

/* runs the loop until cond holds or secs pass; returns cond */
static int run_until(int (*cond)(void *), void *arg, double secs)
{
	double end = now_mono() + secs;
	struct timeval tv = {0, 20000};

	while (!cond(arg) && now_mono() < end) {
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	return cond(arg);
}

static int synced_now(void *arg)
{
	return informer_synced(arg);
}

static int not_synced(void *arg)
{
	return !informer_synced(arg);
}

static int watch_held(void *arg)
{
	return F.held != NULL;
}

static int dels_at_least(void *arg)
{
	return K.dels >= *(int *)arg;
}

static double relists(void)
{
	char *m = metricskit_render();
	double v = -1;

	metricskit_sample(m, "vmpool_itest_relists_total{kind=\"vm\"}", &v);
	free(m);
	return v;
}

static struct kube *client(int port)
{
	struct kube_config cfg;
	struct kube_opts o = {0, 100, "test_informer", 5, 10};
	char server[64];

	memset(&cfg, 0, sizeof cfg);
	snprintf(server, sizeof server, "http://127.0.0.1:%d", port);
	cfg.server = server;
	return kube_new(base, &cfg, &o);
}

static void reset(void)
{
	memset(&F, 0, sizeof F);
	memset(&K, 0, sizeof K);
	F.names[0] = "a";
	F.names[1] = "b";
	F.rv = 10;
}

static const struct informer_sink sink = {sink_set, sink_del, sink_synced};

/* 1-4: the simulator's informer */
static void test_keep_always(void)
{
	static const struct informer_res res = {
	    .kind = KIND_VM, .required = 1, .absent_keep = INFORMER_KEEP_ALWAYS};
	int port = stagekit_free_port(), want, ok;
	double n;
	struct evhttp *http = NULL;
	struct kube *k = client(port);
	struct store *store = store_new();
	struct informer *inf;

	reset();
	STAGEKIT_CHECK(stagekit_http_serve(base, port, fake_serve, &http) == 0, "fake listens");
	inf = informer_new(base, k, store, &res, "t", &sink, NULL);
	informer_start(inf);
	ok = run_until(synced_now, inf, 10) && K.sets == 2 && K.dels == 0;
	stagekit_check(ok, "first list: synced, 2 VMs reported (%d sets, %d dels)", K.sets, K.dels);
	stagekit_check(K.whole, "no transform: VMs kept whole (spec.template.spec.domain)");

	/* 2: a watch answered 410 -> relist {a, c} */
	F.names[1] = "c";
	F.rv = 20;
	F.mode = FAKE_GONE;
	fake_end_watch();
	want = 1;
	ok = run_until(dels_at_least, &want, 10) && strcmp(K.last_del, "b") == 0;
	stagekit_check(ok, "410: relisted, b reported gone (%d dels, last %s)", K.dels, K.last_del);
	F.mode = FAKE_OK; /* the relist's own watch may have been answered 410 again */
	ok = run_until(synced_now, inf, 10) && K.sets == 3 && strcmp(K.last_set, "c") == 0 &&
	     store_count(store, KIND_VM) == 2;
	stagekit_check(
	    ok, "410: c reported new, a not again (%d sets, last %s)", K.sets, K.last_set);
	n = relists();
	stagekit_check(n >= 1, "vmpool_itest_relists_total{kind=\"vm\"} %.0f", n);

	/* 3: everything 404 -> not synced, nothing reported gone */
	stagekit_check(run_until(watch_held, NULL, 10), "watching again after the relist");
	F.mode = FAKE_404;
	fake_end_watch();
	ok = run_until(not_synced, inf, 10);
	stagekit_check(ok, "404: not synced (state %s)", informer_state_name(informer_state(inf)));
	stagekit_check(K.dels == 1 && store_count(store, KIND_VM) == 2,
	    "404, kept always: nothing reported gone (%d dels), 2 kept", K.dels);

	/* 4: the API answers again with only a, changed meanwhile (relists so far found it
	 * unchanged and did not report it) */
	F.names[1] = NULL;
	F.rv = 30;
	F.bump = 1;
	F.mode = FAKE_OK;
	want = 2;
	ok = run_until(dels_at_least, &want, 15) && strcmp(K.last_del, "c") == 0 &&
	     run_until(synced_now, inf, 10);
	stagekit_check(ok, "back: c reported gone by the next list, synced (%d dels, last %s)",
	    K.dels, K.last_del);
	stagekit_check(K.sets == 4 && strcmp(K.last_set, "a") == 0,
	    "back: a reported changed (%d sets, last %s)", K.sets, K.last_set);

	fake_end_watch();
	informer_free(inf);
	store_free(store);
	kube_free(k);
	evhttp_free(http);
}

/* an informer as the watcher sets it up (a 404 keeps what it knew for t->res.absent_keep),
 * synced and watching */
struct itest {
	struct informer_res res;
	struct evhttp *http;
	struct kube *k;
	struct store *store;
	struct informer *inf;
};

static void itest_start(struct itest *t, double absent_keep)
{
	int port = stagekit_free_port();

	reset();
	t->http = NULL;
	t->k = client(port);
	t->store = store_new();
	stagekit_http_serve(base, port, fake_serve, &t->http);
	memset(&t->res, 0, sizeof t->res);
	t->res.kind = KIND_VM;
	t->res.required = 1;
	t->res.absent_keep = absent_keep;
	t->inf = informer_new(base, t->k, t->store, &t->res, "t", &sink, NULL);
	informer_start(t->inf);
	run_until(synced_now, t->inf, 10);
	run_until(watch_held, NULL, 10);
}

static void itest_stop(struct itest *t)
{
	informer_free(t->inf);
	store_free(t->store);
	kube_free(t->k);
	evhttp_free(t->http);
}

/* 5: the watcher's way: kept for absent_keep (1.5 s here), then gone; with 0, gone at once */
static void test_absent_grace(void)
{
	struct itest t;
	int want = 2, ok;
	double t0, kept;

	itest_start(&t, 1.5);
	F.mode = FAKE_404;
	t0 = now_mono();
	fake_end_watch();
	ok = run_until(not_synced, t.inf, 10) && K.dels == 0 && store_count(t.store, KIND_VM) == 2;
	stagekit_check(
	    ok, "404 within absent_keep: not synced, nothing reported gone (%d dels)", K.dels);
	ok = run_until(dels_at_least, &want, 15) && store_count(t.store, KIND_VM) == 0;
	kept = now_mono() - t0;
	stagekit_check(ok && kept >= 1.5,
	    "404 past absent_keep: both reported gone after %.1f s "
	    "(%d dels; want >= 1.5 s)",
	    kept, K.dels);
	F.mode = FAKE_OK;
	ok = run_until(synced_now, t.inf, 20) && store_count(t.store, KIND_VM) == 2 && K.sets == 4;
	stagekit_check(ok, "back: listed again, both reported new (%d sets)", K.sets);
	fake_end_watch();
	itest_stop(&t);

	itest_start(&t, 0);
	F.mode = FAKE_404;
	fake_end_watch();
	ok = run_until(dels_at_least, &want, 10) && store_count(t.store, KIND_VM) == 0;
	stagekit_check(ok, "404 with absent_keep 0: both reported gone (%d dels)", K.dels);
	itest_stop(&t);
}

static int lists_above(void *arg)
{
	return F.lists > *(int *)arg;
}

/* watches that keep failing before any event (an error answer, or a proxy cutting every
 * stream inside the same first event) lead to a list after INF_WATCH_FAILS, not to watching
 * the same resourceVersion forever */
static void test_failing_watches_relist(enum fake_mode mode, const char *what)
{
	struct itest t;
	int lists0, watches0, ok;

	itest_start(&t, 60);
	lists0 = F.lists;
	watches0 = F.watches;
	F.mode = mode;
	fake_end_watch();
	ok = run_until(lists_above, &lists0, 30);
	stagekit_check(ok && F.watches - watches0 >= 3,
	    "watches %s: listed again after %d of them (%d lists before, %d after)", what,
	    F.watches - watches0, lists0, F.lists);
	F.mode = FAKE_OK;
	stagekit_check(run_until(watch_held, NULL, 20), "watching again after the list");
	itest_stop(&t);
}

static int watches_at_least(void *arg)
{
	return F.watches >= *(int *)arg;
}

/* watches the server closes cleanly before any event (kube-apiserver drops a watcher whose
 * buffer it cannot empty, as under load) are watched again after the backoff, from the same
 * resourceVersion, with no list: at 1,000 pools a list of the VMs cost 47 s of a loaded
 * server */
static void test_closed_watches_no_relist(void)
{
	struct itest t;
	int lists0, want;

	itest_start(&t, 60);
	lists0 = F.lists;
	want = F.watches + 5; /* 0.5 + 1 + 2 + 4 s of backoff */
	F.mode = FAKE_WATCH_CLOSED;
	fake_end_watch();
	run_until(watches_at_least, &want, 30);
	stagekit_check(F.watches >= want && F.lists == lists0,
	    "watches closed before any event: %d watches, %d lists (want >= %d, %d)", F.watches,
	    F.lists, want, lists0);
	F.mode = FAKE_OK;
	stagekit_check(run_until(watch_held, NULL, 20), "watching again, no list (%d lists)",
	    F.lists - lists0);
	stagekit_check(F.lists == lists0, "no list after the closed watches");
	itest_stop(&t);
}

/* a VM as a create's answer: name, resourceVersion (NULL: none) */
static json_object *answer(const char *name, const char *rv)
{
	char text[256];

	snprintf(text, sizeof text,
	    "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"t\",\"uid\":\"u-%s\"%s%s%s},"
	    "\"spec\":{\"running\":true}}",
	    name, name, rv ? ",\"resourceVersion\":\"" : "", rv ? rv : "", rv ? "\"" : "");
	return json_tokener_parse(text);
}

/* informer_written(inf, answer(name, rv)) is want */
static int written_is(struct informer *inf, const char *name, const char *rv, const char *want)
{
	json_object *o = answer(name, rv);
	const char *got = informer_written(inf, o);

	json_object_put(o);
	if (strcmp(got, want) != 0)
		fprintf(stderr, "  written %s at %s: %s, not %s\n", name, rv ? rv : "-", got, want);
	return strcmp(got, want) == 0;
}

/* 7: what informer_written() keeps, against a watch at resourceVersion 10 */
static void test_written(void)
{
	static const struct informer_res res = {.kind = KIND_VM, .required = 1};
	struct store *idle_store = store_new();
	struct informer *idle = informer_new(base, NULL, idle_store, &res, "t", &sink, NULL);
	struct itest t;
	int sets;

	stagekit_check(written_is(idle, "w", "11", "not_watching"), "not started: not used");
	informer_free(idle);
	store_free(idle_store);
	itest_start(&t, 60);
	sets = K.sets;
	stagekit_check(
	    written_is(t.inf, "w", "9", "watched") && written_is(t.inf, "w", "10", "watched"),
	    "versions 9 and 10 against a watch at 10: the watch has shown them");
	stagekit_check(written_is(t.inf, "w", "x11", "unordered") &&
	                   written_is(t.inf, "w", "011", "unordered") &&
	                   written_is(t.inf, "w", NULL, "unordered"),
	    "a version that is not a number, or none: not used");
	stagekit_check(written_is(t.inf, "a", "11", "known"), "a kept name: not used");
	stagekit_check(K.sets == sets && store_get(t.store, KIND_VM, "t", "w") == NULL,
	    "nothing reported or kept for them (%d sets)", K.sets - sets);
	stagekit_check(written_is(t.inf, "w", "11", "kept") && K.sets == sets + 1 &&
	                   strcmp(K.last_set, "w") == 0 &&
	                   store_get(t.store, KIND_VM, "t", "w") != NULL,
	    "version 11, a new name: kept and reported");
	store_release_views(t.store);
	fake_end_watch();
	stagekit_check(run_until(watch_held, NULL, 10) && strcmp(F.watch_rv, "10") == 0,
	    "the watch resumes from 10, not from the answer's 11 (%s)", F.watch_rv);
	itest_stop(&t);
}

int main(void)
{
	log_init("test_informer", 0, LOG_FMT_TEXT);
	base = event_base_new();
	informer_metrics_declare("vmpool_itest");
	test_keep_always();
	test_absent_grace();
	test_failing_watches_relist(FAKE_WATCH503, "failing with no event");
	test_failing_watches_relist(FAKE_WATCH_CUT, "cut inside their first event");
	test_closed_watches_no_relist();
	test_written();
	event_base_free(base);
	return stagekit_summary("test_informer");
}

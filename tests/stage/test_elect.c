/*
 * test_elect.c: black-box test of vmpool-actuator --leader-elect against a fake API server
 * that keeps one Lease (GET, POST, PUT with resourceVersion checks, 409 on a stale one) and
 * answers VM creates. Short durations (lease 2s, renew deadline 1.5s, retry 0.5s).
 *  - standby: the Lease is held by "other", whose renewTime is ancient (expiry must come
 *    from observed time, not the timestamps); while "other" keeps renewing, the actuator
 *    stays standby: LEADER {leading: false} to the planner, an ACTION is refused NotLeader
 *    and reaches no API, no Lease write, vmpoold_leader 0, /readyz 200;
 *  - takeover: "other" stops renewing; the actuator takes the Lease no sooner than the lease
 *    duration after it last saw a change, with the observed resourceVersion and one more
 *    transition, tells the planner, and performs actions; it renews every retry period;
 *  - renew deadline: the fake answers 503 to every Lease request; the actuator exits 3
 *    within the renew deadline of its last successful renewal (plus slack);
 *  - restart: an actuator started again on the same run directory keeps the identity of
 *    the one that exited and renews its Lease at once (no lease duration lost);
 *  - release: on SIGTERM the leader PUTs holder "" with
 *    leaseDurationSeconds 1 and exits 0; also when the SIGTERM comes while a renewal is out
 *    (the release waits for its answer and its resourceVersion);
 *  - RBAC: the fake answers 403 to Lease writes; the actuator logs it once and stays standby.
 */
#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "link.h"
#include "log.h"
#include "obj.h"
#include "proto.h"
#include "../support/stagekit.h"
#include "timeutil.h"

#define TOKEN "elect-test-token"
#define LPATH "/apis/coordination.k8s.io/v1/namespaces/default/leases"

static struct event_base *base;

/* ---- the fake API ---- */

static struct {
	json_object *lease; /* NULL: absent */
	long rv;
	int fail;          /* answer every Lease request 503 */
	int deny_writes;   /* answer Lease POST/PUT 403 */
	int puts, creates; /* Lease PUTs that succeeded, VM creates */
	double last_put;   /* monotonic time of the last successful PUT */
	int hold;          /* keep the next Lease PUT unanswered in held */
	struct evhttp_request *held;
	json_object *held_body;
	json_object *last_body;
} api;

static void api_reply(struct evhttp_request *req, int code, const char *reason, json_object *obj)
{
	struct evbuffer *b = evbuffer_new();
	char st[256];

	if (reason != NULL)
		snprintf(st, sizeof st,
		    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
		    "\"reason\":\"%s\",\"message\":\"fake says no\",\"code\":%d}",
		    reason, code);
	evbuffer_add_printf(b, "%s", reason != NULL ? st : obj != NULL ? obj_json(obj) : "{}");
	evhttp_add_header(
	    evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evhttp_send_reply(req, code, code < 300 ? "OK" : "Error", b);
	evbuffer_free(b);
}

/* stores body as the Lease with the next resourceVersion */
static void api_store(json_object *body)
{
	char rv[32];

	json_object_put(api.lease);
	api.lease = json_object_get(body);
	snprintf(rv, sizeof rv, "%ld", ++api.rv);
	json_object_object_add(
	    obj_ensure(api.lease, "metadata"), "resourceVersion", json_object_new_string(rv));
}

static void api_lease(struct evhttp_request *req, const char *m, json_object *body)
{
	const char *rv = obj_str(body, "metadata.resourceVersion");
	char cur[32];

	if (api.fail) {
		api_reply(req, 503, "ServiceUnavailable", NULL);
		return;
	}
	if (strcmp(m, "GET") == 0) {
		api_reply(req, api.lease ? 200 : 404, api.lease ? NULL : "NotFound", api.lease);
		return;
	}
	if (api.deny_writes) {
		api_reply(req, 403, "Forbidden", NULL);
		return;
	}
	if (api.hold && strcmp(m, "PUT") == 0 && api.held == NULL) {
		api.held = req;
		api.held_body = json_object_get(body);
		return;
	}
	snprintf(cur, sizeof cur, "%ld", api.rv);
	json_object_put(api.last_body);
	api.last_body = json_object_get(body);
	if (strcmp(m, "POST") == 0 && api.lease != NULL)
		api_reply(req, 409, "AlreadyExists", NULL);
	else if (strcmp(m, "PUT") == 0 && (api.lease == NULL || rv == NULL || strcmp(rv, cur) != 0))
		api_reply(req, 409, "Conflict", NULL);
	else {
		api_store(body);
		if (strcmp(m, "PUT") == 0) {
			api.puts++;
			api.last_put = now_mono();
		}
		api_reply(req, strcmp(m, "POST") == 0 ? 201 : 200, NULL, api.lease);
	}
}

static void api_handle(struct evhttp_request *req, void *arg)
{
	json_object *rec = stagekit_http_record(req);
	const char *m = obj_str(rec, "method"), *path = obj_str(rec, "path");
	const char *auth =
	    evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");

	if (auth == NULL || strcmp(auth, "Bearer " TOKEN) != 0)
		api_reply(req, 401, "Unauthorized", NULL);
	else if (strncmp(path, LPATH, strlen(LPATH)) == 0)
		api_lease(req, m, obj_path(rec, "body"));
	else if (strcmp(m, "POST") == 0 && strstr(path, "/virtualmachines") != NULL) {
		api.creates++;
		api_reply(req, 201, NULL, obj_path(rec, "body"));
	} else
		api_reply(req, 404, "NotFound", NULL);
	json_object_put(rec);
}

/* "other" holds (or renews) the Lease, with an ancient renewTime */
static void api_other_renews(void)
{
	char buf[512];
	json_object *l;

	snprintf(buf, sizeof buf,
	    "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{\"name\":"
	    "\"t\",\"namespace\":\"default\"},\"spec\":{\"holderIdentity\":\"other\","
	    "\"leaseDurationSeconds\":2,\"acquireTime\":\"2000-01-01T00:00:00.000000Z\","
	    "\"renewTime\":\"2000-01-01T00:00:%02ld.000000Z\",\"leaseTransitions\":5}}",
	    api.rv % 60);
	l = json_tokener_parse(buf);
	api_store(l);
	json_object_put(l);
}

/* ---- the planner's side ---- */

struct peer {
	struct link *link;
	int up, leaders, leading; /* LEADER frames seen, the last one's value */
	json_object *results;
};

static void pe_up(struct link *l, void *arg)
{
	((struct peer *)arg)->up = 1;
}

static void pe_frame(struct link *l, int type, json_object *body, void *arg)
{
	struct peer *p = arg;
	long long id = -1;
	char key[32];

	if (type == MSG_LEADER) {
		p->leaders++;
		p->leading = obj_bool(body, "leading");
	} else if (type == MSG_RESULT) {
		obj_int(body, "id", &id);
		snprintf(key, sizeof key, "%lld", id);
		json_object_object_add(p->results, key, json_object_get(body));
	}
}

static void pe_down(struct link *l, void *arg)
{
	((struct peer *)arg)->up = 0;
}

static void peer_open(struct peer *p, const char *sock)
{
	static const int accept[] = {MSG_RESULT, MSG_LEADER, 0};
	static const struct link_spec spec = {LINK_ACTUATOR, accept, 0};
	static const struct link_cb cb = {pe_up, pe_frame, pe_down};

	memset(p, 0, sizeof *p);
	p->results = json_object_new_object();
	p->link = link_connect(base, sock, &spec, &cb, p);
}

static void peer_close(struct peer *p)
{
	link_free(p->link);
	json_object_put(p->results);
}

/* ---- waiting ---- */

static pid_t pid;
static int status;
static struct peer P;

static int c_leader_seen(void *arg)
{
	return P.leaders > 0;
}
static int c_leading(void *arg)
{
	return P.leading;
}
static int c_exited(void *arg)
{
	return pid == -1;
}
static int c_result(void *arg)
{
	return json_object_object_get_ex(P.results, arg, NULL);
}
static int c_never(void *arg)
{
	return 0;
}

static void wake(evutil_socket_t fd, short what, void *arg)
{
}

static json_object *action(long long id)
{
	char buf[512], key[32];
	json_object *b;

	snprintf(buf, sizeof buf,
	    "{\"id\":%lld,\"op\":\"create_vm\",\"namespace\":\"ns\",\"name\":\"vm-%lld\","
	    "\"pool\":{\"name\":\"p\",\"uid\":\"pu\"},\"body\":{\"metadata\":{\"name\":\"vm-%lld\"}"
	    "}}",
	    id, id, id);
	b = json_tokener_parse(buf);
	link_send(P.link, MSG_ACTION, b);
	json_object_put(b);
	snprintf(key, sizeof key, "%lld", id);
	stagekit_wait(base, &pid, &status, c_result, key, 5);
	return json_object_object_get_ex(P.results, key, &b) ? b : NULL;
}

static int exit_code(void)
{
	return pid != -1 ? -2 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static char kc[1100], logp[1100], rundir[1100], maddr[64];

static void start(void)
{
	char *argv[] = {getenv("BIN"), "--run-dir", rundir, "--kubeconfig", kc, "--metrics-addr",
	    maddr, "--leader-elect", "--leader-elect-lease-duration", "2s",
	    "--leader-elect-renew-deadline", "1.5s", "--leader-elect-retry-period", "500ms",
	    "--leader-elect-resource-name", "t", NULL};
	char *sock = link_sock_path(rundir, LINK_ACTUATOR);

	pid = stagekit_spawn(argv[0], argv, logp);
	peer_open(&P, sock);
	free(sock);
}

static void stop(void)
{
	if (pid != -1) {
		kill(pid, SIGTERM);
		stagekit_wait(base, &pid, &status, c_exited, NULL, 10);
	}
	peer_close(&P);
}

static int log_count(const char *what)
{
	char line[2048];
	FILE *f = fopen(logp, "r");
	int n = 0;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		n += strstr(line, what) != NULL;
	fclose(f);
	return n;
}

static void test_standby_then_takeover(int mport)
{
	struct stagekit_http_answer h;
	json_object *r;
	double t0, tlast = 0;
	const char *id;

	api_other_renews();
	start();
	STAGEKIT_CHECK(stagekit_wait(base, &pid, &status, c_leader_seen, NULL, 10),
	    "the planner is told who leads");
	STAGEKIT_CHECK(P.leading == 0, "LEADER {leading: false} while other holds the Lease");
	r = action(1);
	STAGEKIT_CHECK(r != NULL && !obj_bool(r, "ok") && obj_str(r, "reason") != NULL &&
	                   strcmp(obj_str(r, "reason"), "NotLeader") == 0,
	    "a standby refuses an action with NotLeader");
	stagekit_http_get(base, mport, "/readyz", &h, 5);
	STAGEKIT_CHECK(h.code == 200, "a synced standby is ready (%d)", h.code);
	stagekit_http_get(base, mport, "/metrics", &h, 5);
	STAGEKIT_CHECK(strstr(h.body, "vmpoold_leader{name=\"t\"} 0") != NULL, "vmpoold_leader 0");
	/* other renews for 3 s (more than a lease duration): still standby */
	for (t0 = now_mono(); now_mono() - t0 < 3;) {
		api_other_renews();
		tlast = now_mono();
		stagekit_wait(base, &pid, &status, c_never, NULL, 0.4);
	}
	STAGEKIT_CHECK(P.leading == 0 && api.puts == 0 && api.creates == 0,
	    "standby while the holder renews: no Lease write, no VM create (puts %d, creates %d)",
	    api.puts, api.creates);
	STAGEKIT_CHECK(stagekit_wait(base, &pid, &status, c_leading, NULL, 6), "takes over");
	STAGEKIT_CHECK(now_mono() - tlast >= 2.0, "not before the lease duration (%.2f s)",
	    now_mono() - tlast);
	id = obj_str(api.lease, "spec.holderIdentity");
	STAGEKIT_CHECK(id != NULL && strcmp(id, "other") != 0 && *id != '\0', "holder is %s",
	    id ? id : "(none)");
	STAGEKIT_CHECK(json_object_get_int(obj_path(api.lease, "spec.leaseTransitions")) == 6,
	    "leaseTransitions counted");
	r = action(2);
	STAGEKIT_CHECK(r != NULL && obj_bool(r, "ok") && api.creates == 1, "the leader acts");
	stagekit_http_get(base, mport, "/metrics", &h, 5);
	STAGEKIT_CHECK(strstr(h.body, "vmpoold_leader{name=\"t\"} 1") != NULL, "vmpoold_leader 1");
	t0 = now_mono();
	api.puts = 0;
	stagekit_wait(base, &pid, &status, c_never, NULL, 2);
	STAGEKIT_CHECK(api.puts >= 3, "renews every retry period (%d PUTs in 2 s)", api.puts);
}

static void test_renew_deadline(void)
{
	double t;

	api.fail = 1;
	STAGEKIT_CHECK(
	    stagekit_wait(base, &pid, &status, c_exited, NULL, 6), "exits when renewals fail");
	t = now_mono() - api.last_put;
	STAGEKIT_CHECK(exit_code() == 3, "exit status 3 (got %d)", exit_code());
	STAGEKIT_CHECK(
	    t >= 1.4 && t <= 2.5, "within the renew deadline of the last renewal (%.2f s)", t);
	STAGEKIT_CHECK(log_count("stopped leading") == 1, "says so");
	stop();
	api.fail = 0;
}

static int c_held(void *arg)
{
	return api.held != NULL;
}

static void test_release(int during_renewal)
{
	json_object *b;

	char before[256];
	double t0 = now_mono();

	snprintf(before, sizeof before, "%s", obj_str(api.lease, "spec.holderIdentity") ?: "");
	start();
	STAGEKIT_CHECK(stagekit_wait(base, &pid, &status, c_leading, NULL, 8),
	    "a new actuator takes the Lease its predecessor left");
	if (!during_renewal) {
		/* restarted on the same run directory: the same candidate, at once */
		STAGEKIT_CHECK(strcmp(obj_str(api.lease, "spec.holderIdentity") ?: "", before) == 0,
		    "a restarted actuator keeps its identity (%s)", before);
		STAGEKIT_CHECK(
		    now_mono() - t0 < 1.5, "and renews at once (%.2f s)", now_mono() - t0);
	}
	if (during_renewal) {
		/* SIGTERM while a renewal is out: the release waits for its answer */
		api.hold = 1;
		STAGEKIT_CHECK(
		    stagekit_wait(base, &pid, &status, c_held, NULL, 3), "a renewal held");
		kill(pid, SIGTERM);
		stagekit_wait(base, &pid, &status, c_never, NULL, 0.3);
		api.hold = 0;
		b = api.held_body;
		api.held_body = NULL;
		{
			struct evhttp_request *req = api.held;

			api.held = NULL;
			api_lease(req, "PUT", b);
		}
		json_object_put(b);
	} else
		kill(pid, SIGTERM);
	stagekit_wait(base, &pid, &status, c_exited, NULL, 10);
	STAGEKIT_CHECK(exit_code() == 0, "SIGTERM exits 0 (got %d)", exit_code());
	STAGEKIT_CHECK(
	    obj_str(api.lease, "spec.holderIdentity") != NULL &&
	        strcmp(obj_str(api.lease, "spec.holderIdentity"), "") == 0 &&
	        json_object_get_int(obj_path(api.lease, "spec.leaseDurationSeconds")) == 1,
	    "released: holder \"\", leaseDurationSeconds 1");
	peer_close(&P);
}

static void test_forbidden(void)
{
	api.deny_writes = 1;
	start();
	stagekit_wait(base, &pid, &status, c_never, NULL, 3);
	STAGEKIT_CHECK(pid != -1 && P.up && P.leaders > 0 && !P.leading, "stays standby");
	STAGEKIT_CHECK(log_count("staying standby") == 1, "logs the 403 once (%d)",
	    log_count("staying standby"));
	stop();
	api.deny_writes = 0;
}

int main(void)
{
	const char *bindir = getenv("VMPOOL_BIN");
	char tmpl[] = "/tmp/test_elect.XXXXXX", bin[1024];
	struct evhttp *http;
	struct event *tick;
	struct timeval tv = {0, 50000};
	int port = stagekit_free_port(), mport = stagekit_free_port();

	log_init("test_elect", 0, LOG_FMT_TEXT);
	signal(SIGPIPE, SIG_IGN);
	snprintf(bin, sizeof bin, "%s/vmpool-actuator", bindir ? bindir : "bin-asan");
	setenv("BIN", bin, 1);
	if (mkdtemp(tmpl) == NULL)
		return 1;
	snprintf(kc, sizeof kc, "%s/kubeconfig", tmpl);
	snprintf(logp, sizeof logp, "%s/actuator.log", tmpl);
	snprintf(rundir, sizeof rundir, "%s/run", tmpl);
	snprintf(maddr, sizeof maddr, "127.0.0.1:%d", mport);
	stagekit_write_kubeconfig(kc, port, TOKEN, NULL);
	base = event_base_new();
	tick = event_new(base, -1, EV_PERSIST, wake, NULL); /* the waits poll clocks */
	event_add(tick, &tv);
	STAGEKIT_CHECK(stagekit_http_serve(base, port, api_handle, &http) == 0, "fake API up");

	test_standby_then_takeover(mport);
	test_renew_deadline();
	test_release(0);
	test_release(1);
	test_forbidden();

	if (stagekit_failed > 0)
		fprintf(stderr, "actuator log kept: %s\n", logp);
	else {
		unlink(logp);
		unlink(kc);
		rmdir(rundir);
		rmdir(tmpl);
	}
	evhttp_free(http);
	event_free(tick);
	json_object_put(api.lease);
	json_object_put(api.last_body);
	event_base_free(base);
	return stagekit_summary("test_elect");
}

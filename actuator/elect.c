/*
 * elect.c: the actuator's leader election, the I/O around common/lease.c. Its own API
 * client (no share of the writers' token bucket, a patience of one renew deadline), one
 * request at a time: a standby GETs the Lease every retry period (jittered) and, when
 * lease_decide() says so, POSTs or PUTs it with the observed resourceVersion; a leader PUTs
 * its renewal every retry period. A deadline timer ends leadership when no renewal has
 * succeeded within the renew deadline of the last one's sending; the caller must then stop
 * every write at once (the actuator exits). A 401/403 leaves the instance standby with one
 * clear log line per verb.
 */
#include <sys/random.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elect.h"
#include "kube.h"
#include "log.h"
#include "timeutil.h"
#include "xmalloc.h"

#define ELECT_PATH "/apis/coordination.k8s.io/v1/namespaces/%s/leases"

struct elect {
	struct event_base *base;
	struct kube *kube;
	struct lease_cfg cfg; /* durations only (name and ns are below) */
	struct lease_state st;
	char *name, *ns, *key;
	struct event *tick, *deadline;
	int busy;          /* a request is out */
	int denied;        /* a 401/403 was logged for the current streak */
	int releasing;     /* elect_release() waits for its PUT */
	int release_after; /* elect_release() waits for the request out, then releases */
	const char *verb;  /* of the write out: "create" or "update" */
	double sent_at;    /* when the current write was sent */
	elect_fn fn;
	void *arg;
};

static void elect_attempt(struct elect *);
static void elect_arm_deadline(struct elect *);

/* hostname plus a random suffix, as client-go's (pod name in a cluster) */
static void elect_identity(char *out, size_t len)
{
	unsigned char r[6];
	char host[128];
	size_t i;
	int n;

	if (gethostname(host, sizeof host) == -1 || host[0] == '\0')
		snprintf(host, sizeof host, "vmpoold");
	host[sizeof host - 1] = '\0';
	if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
		for (i = 0; i < sizeof r; i++)
			r[i] = (unsigned char)random();
	}
	n = snprintf(out, len, "%s_", host);
	for (i = 0; i < sizeof r && n > 0 && (size_t)n + 2 < len; i++, n += 2)
		snprintf(out + n, len - (size_t)n, "%02x", r[i]);
}

/*
 * The identity of the last actuator on this run directory, kept in <run-dir>/lease-<name>.id:
 * a restarted actuator (a crash, a container restart in the same pod) is the same candidate
 * and renews its own Lease at once instead of waiting a lease duration for it to expire.
 * Safe because only one actuator can listen on a run directory, so the previous one is gone
 * with everything it had queued. A new identity is made when there is none.
 */
static void elect_identity_kept(const char *run_dir, const char *name, char *out, size_t len)
{
	char *path, *old;
	size_t n, i;
	FILE *f;
	int ok;

	xasprintf(&path, "%s/lease-%s.id", run_dir, name);
	if ((old = kubeconfig_read_file(path, &n)) != NULL) {
		ok = n > 0 && n < len && n < 254;
		for (i = 0; ok && i < n; i++)
			ok = old[i] > 0x20 && old[i] < 0x7f;
		if (ok) {
			snprintf(out, len, "%s", old);
			log_info(NULL, "lease %s: the identity of the last actuator here: %s", name,
			    out);
			free(old);
			free(path);
			return;
		}
		free(old);
	}
	elect_identity(out, len);
	if ((f = fopen(path, "w")) == NULL || fputs(out, f) == EOF || fclose(f) != 0)
		log_warn(NULL, "cannot keep the lease identity in %s", log_escape(path));
	free(path);
}

static void elect_schedule(struct elect *e, double secs)
{
	struct timeval tv = secs_to_tv(secs);

	evtimer_add(e->tick, &tv);
}

/* client-go's wait.Jitter(retryPeriod, 1.2) for a candidate; a leader renews on time */
static double elect_next(const struct elect *e)
{
	if (e->st.leading)
		return e->cfg.retry_period;
	return e->cfg.retry_period * (1 + (LEASE_JITTER - 1) * ((double)random() / RAND_MAX));
}

static void elect_lost(struct elect *e, const char *why)
{
	if (!e->st.leading)
		return;
	e->st.leading = 0;
	evtimer_del(e->deadline);
	log_warnx(e->key, "stopped leading: %s", why);
	e->fn(e, ELECT_LOST, e->arg);
}

static void elect_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct elect *e = arg;
	char why[128];

	if (!lease_overdue(&e->st, &e->cfg, now_mono())) {
		elect_arm_deadline(e); /* a timer a little early */
		return;
	}
	snprintf(why, sizeof why, "no renewal succeeded within the renew deadline (%gs)",
	    e->cfg.renew_deadline);
	elect_lost(e, why);
}

static void elect_arm_deadline(struct elect *e)
{
	struct timeval tv = secs_to_tv(lease_deadline(&e->st, &e->cfg) - now_mono());

	evtimer_add(e->deadline, &tv);
}

/* 401/403: once per streak, then at debug level; the instance stays standby */
static void elect_denied(struct elect *e, const char *verb, const struct kube_response *r)
{
	if (e->denied++ == 0)
		log_warnx(e->key,
		    "not allowed to %s leases.coordination.k8s.io in namespace %s (%ld: %s): "
		    "staying standby; grant get, create and update on leases there",
		    verb, e->ns, r->status, log_escape(r->message));
	else
		log_debug(e->key, "%s lease: still %ld", verb, r->status);
}

static void elect_failed(struct elect *e, const char *verb, const struct kube_response *r)
{
	if (r->status == 401 || r->status == 403)
		elect_denied(e, verb, r);
	else if (r->status == 409)
		log_debug(e->key, "%s lease: conflict (someone else wrote it first)", verb);
	else
		log_info(e->key, "%s lease failed: %ld %s", verb, r->status,
		    log_escape(r->message[0] != '\0' ? r->message : r->reason));
}

static void elect_write(struct elect *, const char *method, int release);

/* the request that was out when elect_release() came has its answer: release now if the
 * Lease is still ours, else just end the wait */
static void elect_release_now(struct elect *e)
{
	e->release_after = 0;
	if (e->st.leading && strcmp(e->st.observed.holder, e->st.identity) == 0) {
		e->releasing = 1;
		elect_write(e, "PUT", 1);
		if (e->busy)
			return;
		e->releasing = 0;
	}
	event_base_loopexit(e->base, NULL);
}

static void elect_written(const struct kube_response *r, void *arg)
{
	struct elect *e = arg;
	int was = e->st.leading;

	e->busy = 0;
	if (e->release_after) {
		if (r->status >= 200 && r->status < 300)
			lease_written(&e->st, r->body, e->sent_at, now_mono());
		elect_release_now(e);
		return;
	}
	if (r->status < 200 || r->status >= 300) {
		elect_failed(e, e->verb, r);
		if (r->status == 409 && e->st.leading)
			e->st.seen = 0; /* re-read before the next renewal */
		if (e->releasing) {
			e->releasing = 0;
			event_base_loopexit(e->base, NULL);
			return;
		}
		elect_schedule(e, r->status == 409 ? 0 : elect_next(e));
		return;
	}
	e->denied = 0;
	lease_written(&e->st, r->body, e->sent_at, now_mono());
	if (e->releasing) {
		e->releasing = 0;
		log_info(e->key, "released the Lease");
		event_base_loopexit(e->base, NULL);
		return;
	}
	if (e->st.leading) {
		elect_arm_deadline(e);
		if (!was) {
			log_info(e->key, "acquired the Lease: leading as %s", e->st.identity);
			e->fn(e, ELECT_LEADING, e->arg);
		}
	} else if (was)
		elect_lost(e, "the Lease names another holder");
	elect_schedule(e, elect_next(e));
}

static void elect_write(struct elect *e, const char *method, int release)
{
	json_object *b = lease_body(&e->st, &e->cfg, e->name, e->ns, now_real(), release);
	char *path;

	if (strcmp(method, "POST") == 0)
		xasprintf(&path, ELECT_PATH, e->ns);
	else
		xasprintf(&path, ELECT_PATH "/%s", e->ns, e->name);
	e->busy = 1;
	e->verb = strcmp(method, "POST") == 0 ? "create" : "update";
	e->sent_at = now_mono();
	if (kube_request_patient(e->kube, method, path, NULL, json_object_to_json_string(b),
	        e->cfg.renew_deadline, elect_written, e) == -1) {
		e->busy = 0;
		elect_schedule(e, elect_next(e));
	}
	free(path);
	json_object_put(b);
}

static void elect_got(const struct kube_response *r, void *arg)
{
	struct elect *e = arg;
	int first = !e->st.seen;

	e->busy = 0;
	if (r->status != 200 && r->status != 404) {
		elect_failed(e, "get", r);
		elect_schedule(e, elect_next(e));
		return;
	}
	lease_observe(&e->st, r->status == 200 ? r->body : NULL, now_mono());
	if (e->release_after) {
		elect_release_now(e);
		return;
	}
	if (first)
		e->fn(e, ELECT_SYNCED, e->arg);
	if (e->st.leading && strcmp(e->st.observed.holder, e->st.identity) != 0) {
		elect_lost(e, "the Lease names another holder");
		return;
	}
	switch (lease_decide(&e->st, now_mono())) {
	case LEASE_HELD:
		if (first)
			log_info(e->key, "standby: the Lease is held by %s",
			    log_escape(e->st.observed.holder));
		elect_schedule(e, elect_next(e));
		break;
	case LEASE_CREATE:
		elect_write(e, "POST", 0);
		break;
	case LEASE_UPDATE:
		elect_write(e, "PUT", 0);
		break;
	}
}

static void elect_attempt(struct elect *e)
{
	char *path;

	if (e->busy || e->releasing)
		return;
	if (e->st.leading && e->st.seen) {
		elect_write(e, "PUT", 0); /* a renewal: our own record, our resourceVersion */
		return;
	}
	xasprintf(&path, ELECT_PATH "/%s", e->ns, e->name);
	e->busy = 1;
	if (kube_request_patient(
	        e->kube, "GET", path, NULL, NULL, e->cfg.renew_deadline, elect_got, e) == -1) {
		e->busy = 0;
		elect_schedule(e, elect_next(e));
	}
	free(path);
}

static void elect_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	elect_attempt(arg);
}

struct elect *elect_new(struct event_base *base, const struct lease_cfg *cfg,
    const char *kubeconfig, const char *pool_selector, const char *run_dir, elect_fn fn, void *arg)
{
	struct elect *e = xcalloc(1, sizeof *e);
	struct kube_config kc;
	struct kube_opts ko;
	char err[512], id[254], name[64];

	memset(&kc, 0, sizeof kc);
	if (kubeconfig_load(kubeconfig, &kc, err, sizeof err) == -1)
		fatal_config("kubeconfig: %s", err);
	e->base = base;
	e->cfg.duration = cfg->duration;
	e->cfg.renew_deadline = cfg->renew_deadline;
	e->cfg.retry_period = cfg->retry_period;
	lease_default_name(pool_selector, name, sizeof name);
	e->name = xstrdup(cfg->name != NULL ? cfg->name : name);
	if (cfg->ns != NULL)
		e->ns = xstrdup(cfg->ns);
	else if (kc.source != NULL && strncmp(kc.source, "in-cluster", 10) == 0)
		e->ns = xstrdup(kc.namespace != NULL ? kc.namespace : "default");
	else
		e->ns = xstrdup("default");
	xasprintf(&e->key, "lease %s/%s", e->ns, e->name);
	memset(&ko, 0, sizeof ko);
	ko.user_agent = "vmpool-actuator";
	ko.timeout = (long)tu_ceil(cfg->renew_deadline);
	ko.patience = cfg->renew_deadline;
	if ((e->kube = kube_new(base, &kc, &ko)) == NULL)
		fatal_config("cannot set up the API client for %s", kc.server);
	kubeconfig_clear(&kc);
	elect_identity_kept(run_dir, e->name, id, sizeof id);
	lease_state_init(&e->st, id);
	e->fn = fn;
	e->arg = arg;
	e->tick = evtimer_new(base, elect_tick_cb, e);
	e->deadline = evtimer_new(base, elect_deadline_cb, e);
	log_info(e->key, "leader election as %s: lease %gs, renew deadline %gs, retry %gs", id,
	    cfg->duration, cfg->renew_deadline, cfg->retry_period);
	elect_schedule(e, 0);
	return e;
}

int elect_leading(const struct elect *e)
{
	return e != NULL && e->st.leading;
}

const char *elect_identity_of(const struct elect *e)
{
	return e->st.identity;
}

const char *elect_holder(const struct elect *e)
{
	return e->st.observed.holder;
}

const char *elect_name(const struct elect *e)
{
	return e->name;
}

const char *elect_lease(const struct elect *e)
{
	return e->key + strlen("lease ");
}

/* client-go's ReleaseOnCancel: holder "" and 1 s, so a standby takes over at its next try */
void elect_release(struct elect *e, double wait)
{
	struct timeval tv = secs_to_tv(wait);

	if (e == NULL || !e->st.leading)
		return;
	evtimer_del(e->tick);
	evtimer_del(e->deadline);
	if (e->busy)
		e->release_after = 1; /* its answer carries the resourceVersion to release with */
	else {
		e->releasing = 1;
		elect_write(e, "PUT", 1);
		if (!e->busy) {
			e->releasing = 0;
			return;
		}
	}
	event_base_loopexit(e->base, &tv);
	event_base_dispatch(e->base);
	if (e->releasing || e->release_after)
		log_warnx(e->key, "the release got no answer within %gs", wait);
	e->releasing = e->release_after = 0;
	e->st.leading = 0;
}

void elect_free(struct elect *e)
{
	if (e == NULL)
		return;
	event_free(e->tick);
	event_free(e->deadline);
	kube_free(e->kube);
	free(e->name);
	free(e->ns);
	free(e->key);
	free(e);
}

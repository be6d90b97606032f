/*
 * simvm.c: VM status simulation. The pure half decides the wanted status of one VM and
 * whether the observed one already matches; the other half keeps one entry per VM (latest
 * observed copy, ready-delay timer, at most one PATCH in flight) and writes only changes.
 */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "obj.h"
#include "simvm.h"
#include "timeutil.h"
#include "xmalloc.h"

#define SIMVM_RETRY       2.0  /* seconds before retrying a failed PATCH */
#define SIMVM_RETRY_AFTER 60.0 /* startFailure.retryAfterTimestamp: now + this */

struct simvm {
	TAILQ_ENTRY(simvm) entry;
	struct simvms *owner;
	char *ns, *name;
	char key[512];
	json_object *vm;  /* latest observed copy (one reference) */
	double run_since; /* now_mono() when it was first seen wanting Running; 0 if not */
	struct event *timer;
	int inflight; /* a PATCH is outstanding */
	int gone;     /* deleted while a PATCH was in flight: free on completion */
	int seen;     /* seen in the current relist */
};
TAILQ_HEAD(simvm_list, simvm);

struct simvms {
	struct event_base *base;
	struct kube *kube;
	struct simvm_opts opts;
	struct simvm_list vms;
};

static const char *simvm_annotation(json_object *vm, const char *key)
{
	json_object *ann = obj_path(vm, "metadata.annotations"), *v;

	if (ann == NULL || !json_object_object_get_ex(ann, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

enum simvm_mode simvm_mode(json_object *vm, const struct simvm_opts *o, const char **printable)
{
	static const char *run_strategies[] = {"Always", "RerunOnFailure", "Once", NULL};
	const char *rs = obj_str(vm, "spec.runStrategy"), *fail;
	const char *name = obj_name(vm);
	int run = obj_bool(vm, "spec.running"), i;

	for (i = 0; rs != NULL && run_strategies[i] != NULL; i++)
		if (strcmp(rs, run_strategies[i]) == 0)
			run = 1;
	if (!run) {
		*printable = "Stopped";
		return SIMVM_STOP;
	}
	fail = simvm_annotation(vm, SIMVM_FAIL_ANNOTATION);
	if (fail != NULL ||
	    (o->fail_re != NULL && name != NULL && regexec(o->fail_re, name, 0, NULL, 0) == 0)) {
		*printable = fail != NULL && *fail != '\0' ? fail : "CrashLoopBackOff";
		return SIMVM_FAIL;
	}
	*printable = "Running";
	return SIMVM_RUN;
}

static int simvm_streq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

int simvm_status_matches(
    json_object *vm, enum simvm_mode m, const char *printable, const struct simvm_opts *o)
{
	json_object *ready = obj_condition(vm, "Ready");
	long long n;
	int run = m == SIMVM_RUN;

	if (!simvm_streq(obj_str(vm, "status.printableStatus"), printable))
		return 0;
	if (obj_bool(vm, "status.ready") != run || obj_bool(vm, "status.created") != run)
		return 0;
	if (ready == NULL || !simvm_streq(obj_str(ready, "status"), run ? "True" : "False"))
		return 0;
	if (m == SIMVM_STOP && !simvm_streq(obj_str(ready, "reason"), "VMINotExists"))
		return 0;
	if (m == SIMVM_FAIL) {
		if (!simvm_streq(obj_str(ready, "reason"), printable))
			return 0;
		return obj_int(vm, "status.startFailure.consecutiveFailCount", &n) == 0 &&
		       n == o->fail_count;
	}
	return obj_path(vm, "status.startFailure") == NULL;
}

static json_object *simvm_time(double t)
{
	char s[32];

	rfc3339_format(t, s);
	return json_object_new_string(s);
}

static json_object *simvm_condition(
    enum simvm_mode m, const char *printable, const struct simvm_opts *o, double now)
{
	json_object *c = json_object_new_object();

	json_object_object_add(c, "type", json_object_new_string("Ready"));
	json_object_object_add(
	    c, "status", json_object_new_string(m == SIMVM_RUN ? "True" : "False"));
	if (m == SIMVM_STOP)
		json_object_object_add(c, "reason", json_object_new_string("VMINotExists"));
	if (m == SIMVM_FAIL) {
		json_object_object_add(c, "reason", json_object_new_string(printable));
		json_object_object_add(c, "message",
		    json_object_new_string("simulated start-up failure (vmpool-sim)"));
	}
	json_object_object_add(
	    c, "lastProbeTime", m == SIMVM_FAIL ? simvm_time(now - o->fail_age) : NULL);
	json_object_object_add(c, "lastTransitionTime", simvm_time(now));
	return c;
}

json_object *simvm_patch(
    enum simvm_mode m, const char *printable, const struct simvm_opts *o, double now)
{
	json_object *p = json_object_new_object(), *st = json_object_new_object();
	json_object *conds = json_object_new_array(), *sf = NULL;
	int run = m == SIMVM_RUN;

	/* merge patch: null removes a field */
	json_object_object_add(st, "created", run ? json_object_new_boolean(1) : NULL);
	json_object_object_add(st, "ready", run ? json_object_new_boolean(1) : NULL);
	json_object_object_add(st, "printableStatus", json_object_new_string(printable));
	json_object_array_add(conds, simvm_condition(m, printable, o, now));
	json_object_object_add(st, "conditions", conds);
	if (m == SIMVM_FAIL) {
		sf = json_object_new_object();
		json_object_object_add(
		    sf, "consecutiveFailCount", json_object_new_int64(o->fail_count));
		json_object_object_add(
		    sf, "retryAfterTimestamp", simvm_time(now + SIMVM_RETRY_AFTER));
	}
	json_object_object_add(st, "startFailure", sf);
	json_object_object_add(p, "status", st);
	return p;
}

/* ---- per-VM entries ---- */

static void simvm_eval(struct simvm *);

static void simvm_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	simvm_eval(arg);
}

static void simvm_arm(struct simvm *v, double secs)
{
	struct timeval tv;

	if (secs < 0)
		secs = 0;
	tv = secs_to_tv(secs);
	evtimer_add(v->timer, &tv);
}

static struct simvm *simvm_find(struct simvms *s, const char *ns, const char *name)
{
	struct simvm *v;

	TAILQ_FOREACH(v, &s->vms, entry)
	if (strcmp(v->ns, ns) == 0 && strcmp(v->name, name) == 0)
		return v;
	return NULL;
}

static struct simvm *simvm_new(struct simvms *s, const char *ns, const char *name)
{
	struct simvm *v = xcalloc(1, sizeof(*v));

	v->owner = s;
	v->ns = xstrdup(ns);
	v->name = xstrdup(name);
	snprintf(v->key, sizeof(v->key), "%s/%s", ns, name);
	v->timer = evtimer_new(s->base, simvm_timer_cb, v);
	if (v->timer == NULL)
		fatalx("evtimer_new failed");
	TAILQ_INSERT_TAIL(&s->vms, v, entry);
	return v;
}

static void simvm_free(struct simvm *v)
{
	event_free(v->timer);
	json_object_put(v->vm);
	free(v->ns);
	free(v->name);
	free(v);
}

/* forgets a VM; with a PATCH outstanding the completion frees it */
static void simvm_drop(struct simvm *v)
{
	TAILQ_REMOVE(&v->owner->vms, v, entry);
	evtimer_del(v->timer);
	if (v->inflight)
		v->gone = 1;
	else
		simvm_free(v);
}

/* resourceVersions are opaque, but etcd's are numbers: refuse an older copy when both are */
static int simvm_older(json_object *have, json_object *got)
{
	const char *a = obj_str(have, "metadata.resourceVersion");
	const char *b = obj_str(got, "metadata.resourceVersion");
	char *ea, *eb;
	unsigned long long na, nb;

	if (a == NULL || b == NULL)
		return 0;
	na = strtoull(a, &ea, 10);
	nb = strtoull(b, &eb, 10);
	return *a != '\0' && *b != '\0' && *ea == '\0' && *eb == '\0' && nb < na;
}

static void simvm_observe(struct simvm *v, json_object *obj)
{
	if (v->vm != NULL && simvm_older(v->vm, obj))
		return;
	json_object_put(v->vm);
	v->vm = obj_copy(obj);
}

static void simvm_patch_done(const struct kube_response *r, void *arg)
{
	struct simvm *v = arg;

	v->inflight = 0;
	if (v->gone) {
		simvm_free(v);
		return;
	}
	if (r->status == 200 && r->body != NULL) {
		simvm_observe(v, r->body);
	} else if (r->status == 404 || r->status == 409) {
		log_debug(
		    v->key, "status patch: HTTP %ld (the next watch event decides)", r->status);
	} else {
		log_warnx(v->key, "status patch: HTTP %ld %s %s", r->status, log_escape(r->reason),
		    log_escape(r->message));
		simvm_arm(v, SIMVM_RETRY);
		return;
	}
	simvm_eval(v);
}

static void simvm_write(struct simvm *v, enum simvm_mode m, const char *printable)
{
	struct simvms *s = v->owner;
	json_object *p = simvm_patch(m, printable, &s->opts, now_real());
	char *ns = kube_escape(v->ns), *name = kube_escape(v->name), *path;

	xasprintf(&path, "/apis/kubevirt.io/v1/namespaces/%s/virtualmachines/%s/status", ns, name);
	log_info(v->key, "status -> %s", printable);
	if (kube_request(s->kube, "PATCH", path, "application/merge-patch+json", obj_json(p),
	        simvm_patch_done, v) == 0)
		v->inflight = 1;
	else {
		log_warnx(v->key, "status patch: cannot queue the request");
		simvm_arm(v, SIMVM_RETRY);
	}
	free(path);
	free(ns);
	free(name);
	json_object_put(p);
}

/* level-triggered: decide from the latest observed copy, whatever woke us */
static void simvm_eval(struct simvm *v)
{
	struct simvms *s = v->owner;
	enum simvm_mode m;
	const char *printable;
	double left;

	if (v->inflight || v->vm == NULL)
		return;
	evtimer_del(v->timer);
	if (obj_terminating(v->vm))
		return;
	m = simvm_mode(v->vm, &s->opts, &printable);
	if (m != SIMVM_RUN)
		v->run_since = 0; /* a VM leaving a crash loop also waits out the delay */
	else if (v->run_since == 0)
		v->run_since = now_mono();
	if (simvm_status_matches(v->vm, m, printable, &s->opts))
		return;
	if (m == SIMVM_RUN) {
		left = v->run_since + s->opts.ready_delay - now_mono();
		if (left > 0) {
			log_debug(v->key, "ready in %.1f s", left);
			simvm_arm(v, left);
			return;
		}
	}
	simvm_write(v, m, printable);
}

struct simvms *simvms_new(struct event_base *base, struct kube *kube, const struct simvm_opts *o)
{
	struct simvms *s = xcalloc(1, sizeof(*s));

	s->base = base;
	s->kube = kube;
	s->opts = *o;
	TAILQ_INIT(&s->vms);
	return s;
}

void simvms_free(struct simvms *s)
{
	struct simvm *v;

	if (s == NULL)
		return;
	while ((v = TAILQ_FIRST(&s->vms)) != NULL) {
		TAILQ_REMOVE(&s->vms, v, entry);
		simvm_free(v);
	}
	free(s);
}

void simvms_list_begin(void *arg)
{
	struct simvms *s = arg;
	struct simvm *v;

	TAILQ_FOREACH(v, &s->vms, entry)
	v->seen = 0;
}

void simvms_upsert(json_object *obj, void *arg)
{
	struct simvms *s = arg;
	const char *ns = obj_namespace(obj), *name = obj_name(obj);
	struct simvm *v;

	if (name == NULL || ns == NULL)
		return;
	v = simvm_find(s, ns, name);
	if (v == NULL)
		v = simvm_new(s, ns, name);
	v->seen = 1;
	simvm_observe(v, obj);
	simvm_eval(v);
}

void simvms_remove(json_object *obj, void *arg)
{
	struct simvms *s = arg;
	const char *ns = obj_namespace(obj), *name = obj_name(obj);
	struct simvm *v;

	if (name != NULL && ns != NULL && (v = simvm_find(s, ns, name)) != NULL)
		simvm_drop(v);
}

void simvms_list_end(void *arg)
{
	struct simvms *s = arg;
	struct simvm *v, *next;

	for (v = TAILQ_FIRST(&s->vms); v != NULL; v = next) {
		next = TAILQ_NEXT(v, entry);
		if (!v->seen)
			simvm_drop(v);
	}
}

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
	json_object *vm;    /* latest observed copy (one reference) */
	int had_vmi;        /* its VMI existed at the last evaluation */
	double vmi_gone_at; /* now_mono() when its VMI was last seen vanishing; 0: never */
	struct event *timer;
	int inflight; /* a PATCH is outstanding */
	int gone;     /* deleted while a PATCH was in flight: free on completion */
};
TAILQ_HEAD(simvm_list, simvm);

struct simvms {
	struct event_base *base;
	struct kube *kube;
	struct simvm_opts opts;
	struct simvmis *vmis;
	int synced; /* the VM list completed once: a VMI without its VM is an orphan */
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
	if (obj_terminating(vm)) { /* KubeVirt stops the VMI of a VM being deleted */
		*printable = "Terminating";
		return SIMVM_STOP;
	}
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

/* per-VM fail parameters: annotation if it parses, else the option */
static void simvm_fail_params(json_object *vm, const struct simvm_opts *o, struct simvm_want *w)
{
	const char *a;
	char *end;
	double d;
	long n;

	w->fail_age = o->fail_age;
	w->fail_count = o->fail_count;
	if ((a = simvm_annotation(vm, SIMVM_FAIL_AGE_ANNOTATION)) != NULL) {
		d = strtod(a, &end);
		if (*a != '\0' && *end == '\0' && d >= 0 && d <= 1e9)
			w->fail_age = d;
	}
	if ((a = simvm_annotation(vm, SIMVM_FAIL_COUNT_ANNOTATION)) != NULL) {
		n = strtol(a, &end, 10);
		if (*a != '\0' && *end == '\0' && n >= 0 && n <= 1000000)
			w->fail_count = n;
	}
}

void simvm_want(
    json_object *vm, const struct simvm_opts *o, enum simvmi_state vmi, struct simvm_want *w)
{
	memset(w, 0, sizeof(*w));
	w->mode = simvm_mode(vm, o, &w->printable);
	if (w->mode == SIMVM_FAIL)
		simvm_fail_params(vm, o, w);
	if (w->mode != SIMVM_RUN || vmi == SIMVMI_READY)
		return;
	w->mode = vmi == SIMVMI_NONE ? SIMVM_NOVMI : SIMVM_STARTING;
	w->printable = "Starting";
}

static int simvm_streq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* the Ready condition's message: carries what a test may change on a failing VM */
static void simvm_message(const struct simvm_want *w, char *buf, size_t len)
{
	if (w->mode == SIMVM_FAIL)
		snprintf(buf, len, "simulated start-up failure (vmpool-sim: age %.0f s, count %ld)",
		    w->fail_age, w->fail_count);
	else if (w->mode == SIMVM_STOP || w->mode == SIMVM_NOVMI)
		snprintf(buf, len, "VMI does not exist");
	else
		snprintf(buf, len, "VMI is not ready");
}

static const char *simvm_reason(const struct simvm_want *w)
{
	switch (w->mode) {
	case SIMVM_STOP:
	case SIMVM_NOVMI:
		return "VMINotExists";
	case SIMVM_STARTING:
		return "VMIConditionMissing";
	case SIMVM_FAIL:
		return w->printable;
	default:
		return NULL;
	}
}

/* "not ready" is all a starting VM needs: no write while its VMI comes up. A VM that has
 * never had a status is left alone too while it has no VMI (it is being created). */
static int simvm_not_ready(json_object *vm, const char *printable, int fresh)
{
	json_object *ready = obj_condition(vm, "Ready");
	const char *pr = obj_str(vm, "status.printableStatus");

	if (obj_bool(vm, "status.ready") || obj_path(vm, "status.startFailure") != NULL)
		return 0;
	if (fresh)
		return ready == NULL && pr == NULL && !obj_bool(vm, "status.created");
	return (pr == NULL || strcmp(pr, printable) == 0) &&
	       (ready == NULL || !simvm_streq(obj_str(ready, "status"), "True"));
}

int simvm_status_matches(json_object *vm, const struct simvm_want *w)
{
	json_object *ready = obj_condition(vm, "Ready");
	char msg[128];
	long long n;
	int run = w->mode == SIMVM_RUN;

	if (w->mode == SIMVM_STARTING)
		return simvm_not_ready(vm, w->printable, 0);
	if (w->mode == SIMVM_NOVMI && simvm_not_ready(vm, w->printable, 1))
		return 1;
	if (!simvm_streq(obj_str(vm, "status.printableStatus"), w->printable))
		return 0;
	if (obj_bool(vm, "status.ready") != run || obj_bool(vm, "status.created") != run)
		return 0;
	if (ready == NULL || !simvm_streq(obj_str(ready, "status"), run ? "True" : "False"))
		return 0;
	if (!run && !simvm_streq(obj_str(ready, "reason"), simvm_reason(w)))
		return 0;
	if (w->mode == SIMVM_FAIL) {
		simvm_message(w, msg, sizeof(msg));
		return simvm_streq(obj_str(ready, "message"), msg) &&
		       obj_int(vm, "status.startFailure.consecutiveFailCount", &n) == 0 &&
		       n == w->fail_count;
	}
	return obj_path(vm, "status.startFailure") == NULL;
}

static json_object *simvm_time(double t)
{
	char s[32];

	rfc3339_format(t, s);
	return json_object_new_string(s);
}

static json_object *simvm_condition(const struct simvm_want *w, double now)
{
	json_object *c = json_object_new_object();
	double at = w->mode == SIMVM_FAIL ? now - w->fail_age : now;
	char msg[128];

	json_object_object_add(c, "type", json_object_new_string("Ready"));
	json_object_object_add(
	    c, "status", json_object_new_string(w->mode == SIMVM_RUN ? "True" : "False"));
	if (w->mode != SIMVM_RUN) {
		simvm_message(w, msg, sizeof(msg));
		json_object_object_add(c, "reason", json_object_new_string(simvm_reason(w)));
		json_object_object_add(c, "message", json_object_new_string(msg));
	}
	json_object_object_add(c, "lastProbeTime", w->mode == SIMVM_FAIL ? simvm_time(at) : NULL);
	json_object_object_add(c, "lastTransitionTime", simvm_time(at));
	return c;
}

json_object *simvm_patch(const struct simvm_want *w, double now)
{
	json_object *p = json_object_new_object(), *st = json_object_new_object();
	json_object *conds = json_object_new_array(), *sf = NULL;
	int run = w->mode == SIMVM_RUN, created = run || w->mode == SIMVM_STARTING;

	/* merge patch: null removes a field */
	json_object_object_add(st, "created", created ? json_object_new_boolean(1) : NULL);
	json_object_object_add(st, "ready", run ? json_object_new_boolean(1) : NULL);
	json_object_object_add(st, "printableStatus", json_object_new_string(w->printable));
	json_object_array_add(conds, simvm_condition(w, now));
	json_object_object_add(st, "conditions", conds);
	if (w->mode == SIMVM_FAIL) {
		sf = json_object_new_object();
		json_object_object_add(
		    sf, "consecutiveFailCount", json_object_new_int64(w->fail_count));
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
		simvm_arm(v, SIMVM_RETRY); /* unless the watch decides first */
		return;
	} else {
		log_warnx(v->key, "status patch: HTTP %ld %s %s", r->status, log_escape(r->reason),
		    log_escape(r->message));
		simvm_arm(v, SIMVM_RETRY);
		return;
	}
	simvm_eval(v);
}

static void simvm_write(struct simvm *v, const struct simvm_want *w)
{
	struct simvms *s = v->owner;
	json_object *p = simvm_patch(w, now_real());
	char *ns = kube_escape(v->ns), *name = kube_escape(v->name), *path;

	xasprintf(&path, "/apis/kubevirt.io/v1/namespaces/%s/virtualmachines/%s/status", ns, name);
	log_info(v->key, "status -> %s", w->printable);
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

/* deletes a VMI unless it already goes or a request about it is outstanding */
static void simvm_vmi_delete(struct simvms *s, json_object *vmi, const char *why)
{
	const char *ns = obj_namespace(vmi), *name = obj_name(vmi);
	char key[512];

	if (ns == NULL || name == NULL || obj_terminating(vmi) || simvmis_busy(s->vmis, ns, name))
		return;
	log_info(obj_key(vmi, key, sizeof(key)), "VMI: %s", why);
	simvmis_delete(s->vmis, ns, name);
}

/* 1 if vmi is controlled by a VirtualMachine other than vm (a previous VM of that name) */
static int simvm_vmi_foreign(json_object *vm, json_object *vmi)
{
	json_object *ref = obj_controller_ref(vmi);
	const char *kind = ref != NULL ? obj_str(ref, "kind") : NULL;

	return kind != NULL && strcmp(kind, "VirtualMachine") == 0 &&
	       !obj_controlled_by(vmi, "VirtualMachine", obj_uid(vm));
}

/* a VM that should run and has no VMI: create one, after restart_delay if one vanished */
static void simvm_vmi_start(struct simvm *v)
{
	struct simvms *s = v->owner;
	json_object *vmi;
	double left;

	if (simvmis_busy(s->vmis, v->ns, v->name)) {
		/* its completion or hold calls us again; a retry of our own besides, so that
		 * no single missed callback leaves the VM without a VMI */
		log_debug(v->key, "VMI side busy; looking again in %.0f s", SIMVM_RETRY);
		simvm_arm(v, SIMVM_RETRY);
		return;
	}
	left = v->vmi_gone_at + s->opts.restart_delay - now_mono();
	if (v->vmi_gone_at != 0 && left > 0) {
		log_debug(v->key, "VMI back in %.1f s", left);
		simvm_arm(v, left);
		return;
	}
	vmi = simvmi_build(v->vm);
	if (vmi == NULL || simvmis_create(s->vmis, vmi) == -1)
		simvm_arm(v, SIMVM_RETRY);
	json_object_put(vmi);
}

/* makes the VMI follow the VM; returns the VMI's state as seen now */
static enum simvmi_state simvm_vmi_sync(struct simvm *v, enum simvm_mode m)
{
	struct simvms *s = v->owner;
	json_object *vmi = simvmis_get(s->vmis, v->ns, v->name);

	if (vmi != NULL)
		v->had_vmi = 1;
	else if (v->had_vmi) {
		v->had_vmi = 0;
		v->vmi_gone_at = now_mono();
	}
	if (vmi != NULL && simvm_vmi_foreign(v->vm, vmi))
		simvm_vmi_delete(s, vmi, "belongs to an older VM of that name");
	else if (vmi != NULL && m != SIMVM_RUN)
		simvm_vmi_delete(s, vmi, "the VM should not run");
	else if (vmi == NULL && m == SIMVM_RUN)
		simvm_vmi_start(v);
	return simvmi_state(vmi);
}

/* level-triggered: decide from the latest observed copies, whatever woke us */
static void simvm_eval(struct simvm *v)
{
	struct simvms *s = v->owner;
	struct simvm_want w;
	enum simvmi_state vs;
	const char *printable;

	if (v->vm == NULL || !simvmis_synced(s->vmis))
		return;
	evtimer_del(v->timer);
	vs = simvm_vmi_sync(v, simvm_mode(v->vm, &s->opts, &printable));
	if (v->inflight)
		return;
	simvm_want(v->vm, &s->opts, vs, &w);
	if (simvm_status_matches(v->vm, &w))
		return;
	simvm_write(v, &w);
}

struct simvms *simvms_new(
    struct event_base *base, struct kube *kube, const struct simvm_opts *o, struct simvmis *vmis)
{
	struct simvms *s = xcalloc(1, sizeof(*s));

	s->base = base;
	s->kube = kube;
	s->opts = *o;
	s->vmis = vmis;
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

/* a VMI controlled by a VirtualMachine that does not exist (any more) is deleted */
static void simvm_orphan(json_object *vmi, void *arg)
{
	struct simvms *s = arg;
	json_object *ref = obj_controller_ref(vmi);
	const char *kind = ref != NULL ? obj_str(ref, "kind") : NULL;

	if (!s->synced || kind == NULL || strcmp(kind, "VirtualMachine") != 0)
		return;
	if (simvm_find(s, obj_namespace(vmi), obj_name(vmi)) == NULL)
		simvm_vmi_delete(s, vmi, "its VM is gone");
}

void simvms_vmi_changed(const char *ns, const char *name, void *arg)
{
	struct simvms *s = arg;
	struct simvm *v = simvm_find(s, ns, name);
	json_object *vmi;

	if (v != NULL)
		simvm_eval(v);
	else if ((vmi = simvmis_get(s->vmis, ns, name)) != NULL)
		simvm_orphan(vmi, s);
}

/* both pictures complete: evaluate everything */
static void simvm_resync(struct simvms *s)
{
	struct simvm *v, *next;

	for (v = TAILQ_FIRST(&s->vms); v != NULL; v = next) {
		next = TAILQ_NEXT(v, entry);
		simvm_eval(v);
	}
	simvmis_foreach(s->vmis, simvm_orphan, s);
}

void simvms_vmi_synced(void *arg)
{
	simvm_resync(arg);
}

void simvms_on_set(const char *kind, json_object *obj, void *arg)
{
	struct simvms *s = arg;
	const char *ns = obj_namespace(obj), *name = obj_name(obj);
	struct simvm *v;

	if (name == NULL || ns == NULL)
		return;
	v = simvm_find(s, ns, name);
	if (v == NULL)
		v = simvm_new(s, ns, name);
	log_debug(v->key, "VM seen at resourceVersion %s",
	    log_escape(obj_str(obj, "metadata.resourceVersion") ?: "?"));
	simvm_observe(v, obj);
	simvm_eval(v);
}

/* forgets the VM, then deletes its VMI */
static void simvm_gone(struct simvms *s, struct simvm *v)
{
	char *ns = xstrdup(v->ns), *name = xstrdup(v->name);
	json_object *vmi;

	simvm_drop(v);
	if ((vmi = simvmis_get(s->vmis, ns, name)) != NULL)
		simvm_orphan(vmi, s);
	free(ns);
	free(name);
}

void simvms_on_del(const char *kind, json_object *obj, void *arg)
{
	struct simvms *s = arg;
	const char *ns = obj_namespace(obj), *name = obj_name(obj);
	struct simvm *v;

	if (name != NULL && ns != NULL && (v = simvm_find(s, ns, name)) != NULL)
		simvm_gone(s, v);
}

/* a list completed: the informer reported what vanished (simvms_on_del) and what changed
 * (simvms_on_set) before this; everything is evaluated again, as after a VMI list */
void simvms_on_synced(const char *kind, void *arg)
{
	struct simvms *s = arg;

	s->synced = 1;
	if (simvmis_synced(s->vmis))
		simvm_resync(s);
}

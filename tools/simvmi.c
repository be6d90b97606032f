/*
 * simvmi.c: VMI simulation. The pure half builds a VM's VMI and reads a VMI's state; the
 * other half keeps one entry per observed VMI (latest copy, ready-delay timer, at most one
 * request in flight, a hold after a failed one) and tells the VM side about every change.
 */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "obj.h"
#include "simvmi.h"
#include "timeutil.h"
#include "xmalloc.h"

#define SIMVMI_RETRY    2.0 /* seconds before a failed request may be retried */
#define SIMVMI_CONFLICT 0.5 /* ... after a conflict the watch will soon explain */

/* ---- pure ---- */

static void simvmi_copy_field(json_object *dst, const char *key, json_object *src)
{
	if (src != NULL && json_object_is_type(src, json_type_object))
		json_object_object_add(dst, key, obj_copy(src));
}

json_object *simvmi_build(json_object *vm)
{
	json_object *vmi, *md, *spec;
	const char *name = obj_name(vm), *ns = obj_namespace(vm);

	if (name == NULL || ns == NULL)
		return NULL;
	vmi = json_object_new_object();
	md = json_object_new_object();
	json_object_object_add(vmi, "apiVersion", json_object_new_string("kubevirt.io/v1"));
	json_object_object_add(vmi, "kind", json_object_new_string("VirtualMachineInstance"));
	json_object_object_add(md, "name", json_object_new_string(name));
	json_object_object_add(md, "namespace", json_object_new_string(ns));
	simvmi_copy_field(md, "labels", obj_path(vm, "spec.template.metadata.labels"));
	simvmi_copy_field(md, "annotations", obj_path(vm, "spec.template.metadata.annotations"));
	if (obj_uid(vm) != NULL)
		json_object_object_add(
		    md, "ownerReferences", obj_owner_refs("kubevirt.io/v1", "VirtualMachine", vm));
	json_object_object_add(vmi, "metadata", md);
	spec = obj_path(vm, "spec.template.spec");
	json_object_object_add(vmi, "spec",
	    spec != NULL && json_object_is_type(spec, json_type_object) ? obj_copy(spec)
	                                                                : json_object_new_object());
	return vmi;
}

enum simvmi_state simvmi_state(json_object *vmi)
{
	json_object *ready;
	const char *phase, *st;

	if (vmi == NULL)
		return SIMVMI_NONE;
	if (obj_terminating(vmi))
		return SIMVMI_STARTING;
	phase = obj_str(vmi, "status.phase");
	ready = obj_condition(vmi, "Ready");
	st = ready != NULL ? obj_str(ready, "status") : NULL;
	if (phase != NULL && strcmp(phase, "Running") == 0 && st != NULL && strcmp(st, "True") == 0)
		return SIMVMI_READY;
	return SIMVMI_STARTING;
}

json_object *simvmi_status_patch(double now)
{
	json_object *p = json_object_new_object(), *st = json_object_new_object();
	json_object *conds = json_object_new_array(), *c = json_object_new_object();
	char ts[32];

	rfc3339_format(now, ts);
	json_object_object_add(c, "type", json_object_new_string("Ready"));
	json_object_object_add(c, "status", json_object_new_string("True"));
	json_object_object_add(c, "lastProbeTime", NULL);
	json_object_object_add(c, "lastTransitionTime", json_object_new_string(ts));
	json_object_array_add(conds, c);
	json_object_object_add(st, "phase", json_object_new_string("Running"));
	json_object_object_add(st, "conditions", conds);
	json_object_object_add(p, "status", st);
	return p;
}

/* ---- per-VMI entries ---- */

struct simvmi {
	TAILQ_ENTRY(simvmi) entry;
	struct simvmis *owner;
	char *ns, *name;
	char key[512];
	json_object *vmi;  /* latest observed copy (one reference); NULL: none */
	double seen_at;    /* now_mono() when this VMI (uid) was first observed */
	double hold_until; /* now_mono() before which no request is made; 0: none */
	struct event *timer;
	int inflight;
};
TAILQ_HEAD(simvmi_list, simvmi);

struct simvmis {
	struct event_base *base;
	struct kube *kube;
	double ready_delay;
	int synced;
	simvmi_changed_fn changed;
	simvmi_synced_fn on_synced;
	void *arg;
	struct simvmi_list vmis;
};

static void simvmi_eval(struct simvmi *);

static void simvmi_arm(struct simvmi *e, double secs)
{
	struct timeval tv = secs_to_tv(secs < 0 ? 0 : secs);

	evtimer_add(e->timer, &tv);
}

static struct simvmi *simvmi_find(struct simvmis *s, const char *ns, const char *name)
{
	struct simvmi *e;

	TAILQ_FOREACH(e, &s->vmis, entry)
	if (strcmp(e->ns, ns) == 0 && strcmp(e->name, name) == 0)
		return e;
	return NULL;
}

static void simvmi_free(struct simvmi *e)
{
	event_free(e->timer);
	json_object_put(e->vmi);
	free(e->ns);
	free(e->name);
	free(e);
}

/* forgets an entry nobody needs any more: no VMI, no request, no hold */
static void simvmi_settle(struct simvmi *e)
{
	if (e->vmi != NULL || e->inflight || e->hold_until != 0) {
		simvmi_eval(e);
		return;
	}
	TAILQ_REMOVE(&e->owner->vmis, e, entry);
	simvmi_free(e);
}

/* settles the entry (it may be freed), then tells the VM side */
static void simvmi_changed(struct simvmi *e)
{
	struct simvmis *s = e->owner;
	char *ns = xstrdup(e->ns), *name = xstrdup(e->name);

	simvmi_settle(e);
	if (s->changed != NULL)
		s->changed(ns, name, s->arg);
	free(ns);
	free(name);
}

static void simvmi_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct simvmi *e = arg;

	double left = e->hold_until - now_mono();

	/* the timer is the hold's own: a hold it finds not quite over (the timer and
	 * hold_until read the clock at different moments) is waited out, never left set
	 * with nothing to clear it, which stalled the VM's VMI for good */
	if (e->hold_until != 0 && left > 0) {
		log_debug(e->key, "hold timer fired %.6f s early; waiting", left);
		simvmi_arm(e, left);
		return;
	}
	if (e->hold_until != 0) {
		e->hold_until = 0;
		simvmi_changed(e);
		return;
	}
	simvmi_eval(e);
}

static struct simvmi *simvmi_new(struct simvmis *s, const char *ns, const char *name)
{
	struct simvmi *e = xcalloc(1, sizeof(*e));

	e->owner = s;
	e->ns = xstrdup(ns);
	e->name = xstrdup(name);
	snprintf(e->key, sizeof(e->key), "%s/%s", ns, name);
	e->timer = evtimer_new(s->base, simvmi_timer_cb, e);
	if (e->timer == NULL)
		fatalx("evtimer_new failed");
	TAILQ_INSERT_TAIL(&s->vmis, e, entry);
	return e;
}

static struct simvmi *simvmi_get_entry(struct simvmis *s, const char *ns, const char *name)
{
	struct simvmi *e = simvmi_find(s, ns, name);

	return e != NULL ? e : simvmi_new(s, ns, name);
}

/* etcd resourceVersions are numbers: refuse an older copy when both are */
static int simvmi_older(json_object *have, json_object *got)
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

static void simvmi_observe(struct simvmi *e, json_object *obj)
{
	const char *old_uid = e->vmi != NULL ? obj_uid(e->vmi) : NULL;
	const char *uid = obj_uid(obj);

	if (e->vmi != NULL && old_uid != NULL && uid != NULL && strcmp(old_uid, uid) == 0 &&
	    simvmi_older(e->vmi, obj))
		return;
	if (e->vmi == NULL || old_uid == NULL || uid == NULL || strcmp(old_uid, uid) != 0)
		e->seen_at = now_mono();
	json_object_put(e->vmi);
	e->vmi = obj_copy(obj);
}

static void simvmi_hold(struct simvmi *e, double secs)
{
	e->hold_until = now_mono() + secs;
	simvmi_arm(e, secs);
}

/* common completion: returns 1 if the request worked, else logs and holds */
static int simvmi_done(struct simvmi *e, const struct kube_response *r, const char *what)
{
	e->inflight = 0;
	if (r->status >= 200 && r->status < 300)
		return 1;
	if (r->status == 404 || r->status == 409) {
		log_debug(e->key, "%s: HTTP %ld %s (the watch will tell)", what, r->status,
		    log_escape(r->reason));
		simvmi_hold(e, SIMVMI_CONFLICT);
		return 0;
	}
	log_warnx(e->key, "%s: HTTP %ld %s %s", what, r->status, log_escape(r->reason),
	    log_escape(r->message));
	simvmi_hold(e, SIMVMI_RETRY);
	return 0;
}

static void simvmi_status_done(const struct kube_response *r, void *arg)
{
	struct simvmi *e = arg;

	if (simvmi_done(e, r, "VMI status patch") && r->body != NULL && e->vmi != NULL)
		simvmi_observe(e, r->body);
	simvmi_changed(e);
}

static void simvmi_create_done(const struct kube_response *r, void *arg)
{
	struct simvmi *e = arg;

	if (simvmi_done(e, r, "VMI create") && r->body != NULL)
		simvmi_observe(e, r->body);
	simvmi_changed(e);
}

static void simvmi_delete_done(const struct kube_response *r, void *arg)
{
	struct simvmi *e = arg;
	json_object *md;

	/* until the watch says DELETED, remember that it goes: no second DELETE meanwhile */
	if (simvmi_done(e, r, "VMI delete") && e->vmi != NULL && !obj_terminating(e->vmi) &&
	    (md = obj_path(e->vmi, "metadata")) != NULL)
		json_object_object_add(
		    md, "deletionTimestamp", json_object_new_string("1970-01-01T00:00:00Z"));
	simvmi_changed(e);
}

static char *simvmi_path(const char *ns, const char *name, const char *sub)
{
	char *ens = kube_escape(ns), *ename = name != NULL ? kube_escape(name) : NULL, *path;

	xasprintf(&path, "/apis/kubevirt.io/v1/namespaces/%s/virtualmachineinstances%s%s%s", ens,
	    ename != NULL ? "/" : "", ename != NULL ? ename : "", sub);
	free(ens);
	free(ename);
	return path;
}

static int simvmi_send(struct simvmi *e, const char *method, char *path, const char *ctype,
    json_object *body, kube_done_fn done)
{
	int rc = kube_request(
	    e->owner->kube, method, path, ctype, body != NULL ? obj_json(body) : NULL, done, e);

	free(path);
	json_object_put(body);
	if (rc == 0) {
		e->inflight = 1;
		return 0;
	}
	log_warnx(e->key, "%s: cannot queue the request", method);
	simvmi_hold(e, SIMVMI_RETRY);
	return -1;
}

/* the VMI's own life: Running and Ready once ready_delay has passed since it appeared */
static void simvmi_eval(struct simvmi *e)
{
	double left;

	if (e->inflight || e->vmi == NULL || e->hold_until != 0)
		return;
	evtimer_del(e->timer);
	if (simvmi_state(e->vmi) != SIMVMI_STARTING || obj_terminating(e->vmi))
		return;
	left = e->seen_at + e->owner->ready_delay - now_mono();
	if (left > 0) {
		simvmi_arm(e, left);
		return;
	}
	log_info(e->key, "VMI -> Running");
	simvmi_send(e, "PATCH", simvmi_path(e->ns, e->name, "/status"),
	    "application/merge-patch+json", simvmi_status_patch(now_real()), simvmi_status_done);
}

/* ---- interface ---- */

struct simvmis *simvmis_new(struct event_base *base, struct kube *kube, double ready_delay)
{
	struct simvmis *s = xcalloc(1, sizeof(*s));

	s->base = base;
	s->kube = kube;
	s->ready_delay = ready_delay;
	TAILQ_INIT(&s->vmis);
	return s;
}

void simvmis_free(struct simvmis *s)
{
	struct simvmi *e;

	if (s == NULL)
		return;
	while ((e = TAILQ_FIRST(&s->vmis)) != NULL) {
		TAILQ_REMOVE(&s->vmis, e, entry);
		simvmi_free(e);
	}
	free(s);
}

void simvmis_set_hooks(
    struct simvmis *s, simvmi_changed_fn changed, simvmi_synced_fn on_synced, void *arg)
{
	s->changed = changed;
	s->on_synced = on_synced;
	s->arg = arg;
}

int simvmis_synced(const struct simvmis *s)
{
	return s->synced;
}

json_object *simvmis_get(struct simvmis *s, const char *ns, const char *name)
{
	struct simvmi *e = simvmi_find(s, ns, name);

	return e != NULL ? e->vmi : NULL;
}

int simvmis_busy(struct simvmis *s, const char *ns, const char *name)
{
	struct simvmi *e = simvmi_find(s, ns, name);

	return e != NULL && (e->inflight || e->hold_until != 0);
}

int simvmis_create(struct simvmis *s, json_object *vmi)
{
	const char *ns = obj_namespace(vmi), *name = obj_name(vmi);
	struct simvmi *e;

	if (ns == NULL || name == NULL)
		return -1;
	e = simvmi_get_entry(s, ns, name);
	if (e->inflight || e->hold_until != 0)
		return -1;
	log_info(e->key, "creating the VMI");
	return simvmi_send(
	    e, "POST", simvmi_path(ns, NULL, ""), NULL, obj_copy(vmi), simvmi_create_done);
}

int simvmis_delete(struct simvmis *s, const char *ns, const char *name)
{
	struct simvmi *e = simvmi_find(s, ns, name);
	json_object *opts, *pre;

	if (e == NULL || e->vmi == NULL || e->inflight || e->hold_until != 0)
		return -1;
	opts = json_object_new_object();
	pre = json_object_new_object();
	if (obj_uid(e->vmi) != NULL)
		json_object_object_add(pre, "uid", json_object_new_string(obj_uid(e->vmi)));
	json_object_object_add(opts, "preconditions", pre);
	log_info(e->key, "deleting the VMI");
	evtimer_del(e->timer);
	return simvmi_send(e, "DELETE", simvmi_path(ns, name, ""), NULL, opts, simvmi_delete_done);
}

void simvmis_foreach(struct simvmis *s, void (*fn)(json_object *, void *), void *arg)
{
	struct simvmi *e, *next;

	for (e = TAILQ_FIRST(&s->vmis); e != NULL; e = next) {
		next = TAILQ_NEXT(e, entry);
		if (e->vmi != NULL)
			fn(e->vmi, arg);
	}
}

void simvmis_on_set(const char *kind, json_object *obj, void *arg)
{
	struct simvmis *s = arg;
	const char *ns = obj_namespace(obj), *name = obj_name(obj);
	struct simvmi *e;

	if (ns == NULL || name == NULL)
		return;
	e = simvmi_get_entry(s, ns, name);
	log_debug(e->key, "VMI seen at resourceVersion %s",
	    log_escape(obj_str(obj, "metadata.resourceVersion") ?: "?"));
	simvmi_observe(e, obj);
	simvmi_changed(e);
}

static void simvmi_forget(struct simvmi *e)
{
	json_object_put(e->vmi);
	e->vmi = NULL;
	simvmi_changed(e);
}

void simvmis_on_del(const char *kind, json_object *obj, void *arg)
{
	struct simvmis *s = arg;
	const char *ns = obj_namespace(obj), *name = obj_name(obj), *uid = obj_uid(obj);
	struct simvmi *e;

	if (ns == NULL || name == NULL || (e = simvmi_find(s, ns, name)) == NULL || e->vmi == NULL)
		return;
	/* a DELETED of an older VMI of the same name must not hide the new one */
	if (uid != NULL && obj_uid(e->vmi) != NULL && strcmp(uid, obj_uid(e->vmi)) != 0)
		return;
	log_debug(e->key, "VMI gone");
	simvmi_forget(e);
}

/* a list completed: the informer reported what vanished (simvmis_on_del) before this */
void simvmis_on_synced(const char *kind, void *arg)
{
	struct simvmis *s = arg;

	s->synced = 1;
	if (s->on_synced != NULL)
		s->on_synced(s->arg);
}

/*
 * actrun.c: runs checked actions against the API and answers RESULT on the connection the
 * ACTION came from. A request outlives its connection: when the planner's link goes, the
 * request is detached and its outcome only logged (the planner re-plans from the watcher).
 * Idempotent outcomes count as success: create -> AlreadyExists, delete/patch/update ->
 * NotFound, delete with a uid precondition -> Conflict (another object has the name now).
 * An update's Conflict (stale resourceVersion) is a failure: the planner re-plans.
 * A delete_vm with "unfinalize" (the pool finalizer's removal, guarded by the VM's uid and
 * finalizer list) sends that patch first and the DELETE right after it, whatever the patch's
 * outcome, and answers with the DELETE's: the VM is then removed by its DELETE, where the
 * other order (upstream's) has the DELETE only mark it and the patch remove it, which costs
 * the API server about twice the CPU (DESIGN.md, "Links"). A failed patch is logged; the
 * planner strips the finalizer of the terminating VM later, as upstream's order would.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act.h"
#include "msg.h"
#include "k8sevent.h"
#include "kube.h"
#include "obj.h"
#include "link.h"
#include "log.h"
#include "metrics.h"
#include "proto.h"
#include "timeutil.h"
#include "vmupdate.h"
#include "xmalloc.h"

/* update_vm: tries of GET + PUT while the PUT meets a newer resourceVersion (409) */
#define ACT_UPDATE_TRIES 3

struct act_req;
TAILQ_HEAD(act_reqs, act_req);

struct act_conn {
	struct actuator *act;
	struct link *link;
	struct act_reqs reqs;
};

/* an owned copy of an optional event */
struct act_evcopy {
	char *type, *reason, *message;
};

struct act_req {
	TAILQ_ENTRY(act_req) entry;
	struct act_conn *conn; /* NULL once the link is gone */
	struct actuator *act;
	const struct act_op *op;
	long long id;
	char *ns, *name, *pool, *pool_uid;
	char key[512];
	struct act_evcopy event, fail_event;
	char *unfinalize; /* delete_vm: the patch to send before the DELETE */
	char *del_body; /* delete_vm with unfinalize: the DELETE's options, while the patch runs */
	json_object *built; /* update_vm: what the planner built, merged into the VM read */
	char *path;         /* update_vm: the VM's path, for the GET and the PUT; delete_vm with
	                     * unfinalize: the VM's path, for the patch and the DELETE */
	int tries;          /* update_vm: PUTs sent */
};

/* the table of operations: the API call each one makes */
struct act_op {
	const char *name;
	const char *method; /* NULL: no API call (ACT_EVENT) */
	const char *content_type;
	int (*idempotent)(const struct kube_response *);
	const char *group;    /* /api/v1, /apis/<group>/<version> */
	const char *resource; /* plural */
	int with_name;        /* the path names the object (all but a create) */
	char *(*body)(const struct act_action *);
};

#define ACT_KUBEVIRT "/apis/kubevirt.io/v1"
#define ACT_APPS     "/apis/apps/v1"
#define ACT_CORE     "/api/v1"
#define ACT_CDI      "/apis/cdi.kubevirt.io/v1beta1"
#define ACT_POOLS    "/apis/pool.kubevirt.io/v1beta1"
#define ACT_JSONP    "application/json-patch+json"

static int act_idem_create(const struct kube_response *r)
{
	return r->status == 409 && strcmp(r->reason, "AlreadyExists") == 0;
}

/* NotFound: gone already; Conflict: the uid precondition failed, another object has the
 * name now (the planner sees it from the watcher) */
static int act_idem_delete(const struct kube_response *r)
{
	return r->status == 404 || r->status == 409;
}

/* patch and update: NotFound only; a Conflict on update means a stale resourceVersion */
static int act_idem_notfound(const struct kube_response *r)
{
	return r->status == 404;
}

/* <group>/namespaces/<ns>/<resource>[/<name>] with ns and name escaped */
static char *act_path(const struct act_op *op, const struct act_action *a)
{
	char *ns = kube_escape(a->ns), *name = kube_escape(a->name), *path, *group = NULL;

	/* a pool at the version the watcher listed it (v1alpha1 on KubeVirt up to v1.6) */
	if (strcmp(op->name, ACT_PATCH_POOL) == 0 && a->pool_api != NULL)
		xasprintf(&group, "/apis/%s", a->pool_api);
	xasprintf(&path, "%s/namespaces/%s/%s%s%s", group != NULL ? group : op->group, ns,
	    op->resource, op->with_name ? "/" : "", op->with_name ? name : "");
	free(group);
	free(ns);
	free(name);
	return path;
}

static char *act_json(json_object *o)
{
	return xstrdup(obj_json(o));
}

static char *act_body_object(const struct act_action *a)
{
	return act_json(a->body);
}

static char *act_body_patch(const struct act_action *a)
{
	return act_json(a->patch);
}

/* DeleteOptions with the uid precondition and the propagation policy, NULL with neither */
static char *act_body_delete(const struct act_action *a)
{
	json_object *o, *pre;
	char *s;

	if (a->uid == NULL && a->propagation == NULL)
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "kind", json_object_new_string("DeleteOptions"));
	json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
	if (a->uid != NULL) {
		pre = json_object_new_object();
		json_object_object_add(pre, "uid", json_object_new_string(a->uid));
		json_object_object_add(o, "preconditions", pre);
	}
	if (a->propagation != NULL)
		json_object_object_add(
		    o, "propagationPolicy", json_object_new_string(a->propagation));
	s = act_json(o);
	json_object_put(o);
	return s;
}

static char *act_body_none(const struct act_action *a)
{
	return NULL;
}

static const struct act_op act_ops[] = {
    {ACT_CREATE_VM, "POST", NULL, act_idem_create, ACT_KUBEVIRT, "virtualmachines", 0,
        act_body_object},
    {ACT_DELETE_VM, "DELETE", NULL, act_idem_delete, ACT_KUBEVIRT, "virtualmachines", 1,
        act_body_delete},
    {ACT_PATCH_VM, "PATCH", ACT_JSONP, act_idem_notfound, ACT_KUBEVIRT, "virtualmachines", 1,
        act_body_patch},
    {ACT_UPDATE_VM, "PUT", NULL, act_idem_notfound, ACT_KUBEVIRT, "virtualmachines", 1,
        act_body_object},
    {ACT_DELETE_VMI, "DELETE", NULL, act_idem_delete, ACT_KUBEVIRT, "virtualmachineinstances", 1,
        act_body_delete},
    {ACT_PATCH_VMI, "PATCH", ACT_JSONP, act_idem_notfound, ACT_KUBEVIRT, "virtualmachineinstances",
        1, act_body_patch},
    {ACT_CREATE_REV, "POST", NULL, act_idem_create, ACT_APPS, "controllerrevisions", 0,
        act_body_object},
    {ACT_DELETE_REV, "DELETE", NULL, act_idem_delete, ACT_APPS, "controllerrevisions", 1,
        act_body_delete},
    {ACT_PATCH_PVC, "PATCH", ACT_JSONP, act_idem_notfound, ACT_CORE, "persistentvolumeclaims", 1,
        act_body_patch},
    {ACT_PATCH_DV, "PATCH", ACT_JSONP, act_idem_notfound, ACT_CDI, "datavolumes", 1,
        act_body_patch},
    {ACT_PATCH_POOL, "PATCH", ACT_JSONP, act_idem_notfound, ACT_POOLS, "virtualmachinepools", 1,
        act_body_patch},
    {ACT_GET_LEASE, "GET", NULL, act_idem_notfound, "/apis/coordination.k8s.io/v1", "leases", 1,
        act_body_none},
    {ACT_EVENT, NULL, NULL, NULL, NULL, NULL, 0, NULL},
};

static const struct act_op *act_op_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof act_ops / sizeof act_ops[0]; i++)
		if (strcmp(act_ops[i].name, name) == 0)
			return &act_ops[i];
	return NULL;
}

void act_metrics_declare(void)
{
	metrics_declare(ACT_M_ACTIONS, "counter", "Actions handled by op and result.");
	metrics_declare(ACT_M_INFLIGHT, "gauge", "API requests in flight for actions.");
	metrics_declare(ACT_M_EVENTS, "counter", "Kubernetes Events posted or aggregated.");
	metrics_set(ACT_M_INFLIGHT, NULL, 0);
	metrics_add(ACT_M_EVENTS, NULL, 0);
}

static void act_count(const char *op, const char *result)
{
	char labels[128];

	snprintf(labels, sizeof labels, "op=\"%s\",result=\"%s\"", op, result);
	metrics_add(ACT_M_ACTIONS, labels, 1);
}

struct act_conn *act_conn_new(struct actuator *act, struct link *link)
{
	struct act_conn *c = xcalloc(1, sizeof *c);

	c->act = act;
	c->link = link;
	TAILQ_INIT(&c->reqs);
	return c;
}

void act_conn_gone(struct act_conn *c)
{
	struct act_req *r;

	if (c == NULL)
		return;
	while ((r = TAILQ_FIRST(&c->reqs)) != NULL) {
		TAILQ_REMOVE(&c->reqs, r, entry);
		r->conn = NULL;
	}
	free(c);
}

/* get_lease: what another shard's Lease says (its holder, its duration) */
static void act_reply_lease(struct msg_result *res, json_object *obj)
{
	const char *kind = obj_str(obj, "kind"), *holder = obj_str(obj, "spec.holderIdentity");

	if (kind == NULL || strcmp(kind, "Lease") != 0)
		return;
	obj_int(obj, "spec.leaseDurationSeconds", &res->duration);
	res->holder = holder != NULL ? holder : "";
}

/* answers on the link if it is still there, else only logs; obj (may be NULL) is the object
 * the API answered a write with: its resourceVersion goes back as rv, or gone when the write
 * took the last finalizer of an object being deleted (the API then removes it); unknown: the
 * answer was lost, the write may have happened */
static void act_reply_rv(struct act_conn *c, const char *key, long long id, int ok, int unknown,
    long status, const char *reason, const char *message, json_object *obj)
{
	json_object *fins = obj_path(obj, "metadata.finalizers");
	struct msg_result r = {.id = id,
	    .ok = ok,
	    .status = status,
	    .reason = reason,
	    .message = message,
	    .unknown = unknown};
	json_object *res;

	if (c == NULL || c->link == NULL) {
		log_info(key, "action %lld finished after its link went (ok=%d)", id, ok);
		return;
	}
	r.gone =
	    obj_terminating(obj) && (fins == NULL || !json_object_is_type(fins, json_type_array) ||
	                                json_object_array_length(fins) == 0);
	if (!r.gone)
		r.rv = obj_str(obj, "metadata.resourceVersion");
	act_reply_lease(&r, obj);
	res = msg_result_pack(&r);
	if (link_send(c->link, MSG_RESULT, res) == -1)
		log_info(key, "action %lld: link not up, result dropped", id);
	json_object_put(res);
}

static void act_reply(struct act_conn *c, const char *key, long long id, int ok, long status,
    const char *reason, const char *message)
{
	act_reply_rv(c, key, id, ok, 0, status, reason, message, NULL);
}

static void act_post_event(
    struct actuator *act, const struct act_req *r, const struct act_evcopy *ev, const char *suffix)
{
	struct k8sev_src src;
	char *msg = NULL;

	if (ev->type == NULL)
		return;
	if (suffix != NULL)
		xasprintf(&msg, "%s: %s", ev->message, suffix);
	src.ns = r->ns;
	src.pool = r->pool;
	src.uid = r->pool_uid;
	src.type = ev->type;
	src.reason = ev->reason;
	src.message = msg != NULL ? msg : ev->message;
	if (k8sev_post(act->rec, &src, now_real()) == 0)
		metrics_add(ACT_M_EVENTS, NULL, 1);
	free(msg);
}

static void act_evcopy(struct act_evcopy *dst, const struct act_ev *src)
{
	memset(dst, 0, sizeof *dst);
	if (!src->set)
		return;
	dst->type = xstrdup(src->type);
	dst->reason = xstrdup(src->reason);
	dst->message = xstrdup(src->message);
}

static void act_evfree(struct act_evcopy *ev)
{
	free(ev->type);
	free(ev->reason);
	free(ev->message);
}

static struct act_req *act_req_new(
    struct act_conn *c, const struct act_op *op, const struct act_action *a)
{
	struct act_req *r = xcalloc(1, sizeof *r);

	r->conn = c;
	r->act = c->act;
	r->op = op;
	r->id = a->id;
	r->ns = xstrdup(a->ns);
	r->name = xstrdup(a->name);
	r->pool = xstrdup(a->pool_name != NULL ? a->pool_name : "");
	r->pool_uid = xstrdup(a->pool_uid != NULL ? a->pool_uid : "");
	snprintf(r->key, sizeof r->key, "%s/%s", a->ns, a->name);
	act_evcopy(&r->event, &a->event);
	act_evcopy(&r->fail_event, &a->fail_event);
	if (a->unfinalize != NULL)
		r->unfinalize = act_json(a->unfinalize);
	if (strcmp(op->name, ACT_UPDATE_VM) == 0)
		r->built = json_object_get(a->body);
	return r;
}

static void act_req_free(struct act_req *r)
{
	if (r->conn != NULL)
		TAILQ_REMOVE(&r->conn->reqs, r, entry);
	free(r->ns);
	free(r->name);
	free(r->pool);
	free(r->pool_uid);
	act_evfree(&r->event);
	act_evfree(&r->fail_event);
	free(r->unfinalize);
	free(r->del_body);
	json_object_put(r->built);
	free(r->path);
	free(r);
}

/* the pool an action is for, as "ns/name" for a log line's pool= */
static const char *act_pool_key(const struct act_req *r, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", r->ns, r->pool);
	return buf;
}

/* one line per action: done, unknown (a warning: no failure) or failed (an error) */
static void act_log_outcome(const struct act_req *r, const struct kube_response *resp, int ok)
{
	char pool[512];

	act_pool_key(r, pool, sizeof pool);
	if (ok)
		log_infos("Action done", LOG_POOL(pool), LOG_INT("id", r->id),
		    LOG_STR("op", r->op->name), LOG_REF("object", r->key),
		    LOG_INT("status", resp->status), LOG_STR("reason", resp->reason));
	else if (resp->unknown)
		log_warns("Action outcome unknown: the answer was lost", LOG_POOL(pool),
		    LOG_INT("id", r->id), LOG_STR("op", r->op->name), LOG_REF("object", r->key),
		    LOG_STR("reason", resp->message));
	else
		log_errors(resp->message, "Action failed", LOG_POOL(pool), LOG_INT("id", r->id),
		    LOG_STR("op", r->op->name), LOG_REF("object", r->key),
		    LOG_INT("status", resp->status), LOG_STR("reason", resp->reason));
}

/* the API answered (or the request failed for good) */
static void act_done(const struct kube_response *resp, void *arg)
{
	struct act_req *r = arg;
	struct actuator *act = r->act;
	int ok, idem;

	idem = r->op->idempotent(resp);
	ok = (resp->status >= 200 && resp->status < 300) || idem;
	act_log_outcome(r, resp, ok);
	act_count(r->op->name, ok ? "ok" : resp->unknown ? "unknown" : "error");
	act_reply_rv(r->conn, r->key, r->id, ok, !ok && resp->unknown, resp->status, resp->reason,
	    resp->message, resp->status >= 200 && resp->status < 300 ? resp->body : NULL);
	act->inflight--;
	metrics_set(ACT_M_INFLIGHT, NULL, act->inflight);
	/* an unknown outcome is no failure: no Warning; the watcher will show what happened */
	if (ok)
		act_post_event(act, r, &r->event, NULL);
	else if (!resp->unknown)
		act_post_event(act, r, &r->fail_event,
		    resp->message[0] != '\0' ? resp->message : resp->reason);
	act_req_free(r);
}

/* a request that cannot even be queued: the action fails at once */
static void act_queue_failed(struct act_req *r)
{
	log_errors("cannot queue the API request", "Action failed", LOG_INT("id", r->id),
	    LOG_STR("op", r->op->name), LOG_REF("object", r->key));
	r->act->inflight--;
	metrics_set(ACT_M_INFLIGHT, NULL, r->act->inflight);
	act_count(r->op->name, "error");
	act_reply(r->conn, r->key, r->id, 0, 0, "InternalError", "cannot queue the API request");
	act_post_event(r->act, r, &r->fail_event, "cannot queue the API request");
	act_req_free(r);
}

/* ---- delete_vm with unfinalize: the finalizer patch, then the DELETE ---- */

/* the patch's answer: the DELETE goes whatever it was (NotFound: the DELETE finds the VM
 * gone too and is done; any other failure leaves the finalizer to the planner, which strips
 * it from the terminating VM as upstream's order would) */
static void act_unfinalized(const struct kube_response *resp, void *arg)
{
	struct act_req *r = arg;

	if (resp->status >= 200 && resp->status < 300)
		log_debug(r->key, "%s id %lld: finalizer removed (%ld), deleting", r->op->name,
		    r->id, resp->status);
	else if (resp->status != 404)
		log_warnx(r->key,
		    "%s id %lld: finalizer not removed before the delete: %ld %s: %s (deleting "
		    "anyway; the finalizer is planned again)",
		    r->op->name, r->id, resp->status, resp->reason, log_escape(resp->message));
	if (kube_request_next(r->act->kube, r->op->method, r->path, r->op->content_type,
	        r->del_body, act_done, r) == -1)
		act_queue_failed(r);
}

/* ---- update_vm: GET, merge, PUT guarded by the resourceVersion read (vmupdate.h) ---- */

static void act_update_fetched(const struct kube_response *, void *);

static int act_update_fetch(struct act_req *r)
{
	return kube_request(r->act->kube, "GET", r->path, NULL, NULL, act_update_fetched, r);
}

/* the PUT's answer: a Conflict (the VM changed since the GET) is tried again from a GET */
static void act_update_put(const struct kube_response *resp, void *arg)
{
	struct act_req *r = arg;

	if (resp->status == 409 && strcmp(resp->reason, "Conflict") == 0 &&
	    r->tries < ACT_UPDATE_TRIES) {
		log_info(r->key,
		    "%s id %lld: the VM changed since it was read (409); reading it again",
		    r->op->name, r->id);
		if (act_update_fetch(r) == 0)
			return;
	}
	act_done(resp, r);
}

/* the VM as it is now (or why it could not be read: NotFound is done, as for the PUT) */
static void act_update_fetched(const struct kube_response *resp, void *arg)
{
	struct act_req *r = arg;
	struct kube_response fail = {409, NULL, "Conflict", "", 0, 0};
	json_object *vm;
	char err[256], *body;

	if (resp->status != 200) {
		act_done(resp, r);
		return;
	}
	if ((vm = vmupdate_merge(resp->body, r->built, err, sizeof err)) == NULL) {
		fail.message = err;
		act_done(&fail, r);
		return;
	}
	body = act_json(vm);
	json_object_put(vm);
	r->tries++;
	if (kube_request(r->act->kube, "PUT", r->path, NULL, body, act_update_put, r) == -1) {
		fail.status = 0;
		fail.reason = "InternalError";
		fail.message = "cannot queue the API request";
		act_done(&fail, r);
	}
	free(body);
}

static void act_dry_run(struct act_conn *c, const struct act_action *a, const struct act_req *r)
{
	char pool[512];

	log_infos("Dry run: action not performed", LOG_POOL(act_pool_key(r, pool, sizeof pool)),
	    LOG_INT("id", a->id), LOG_STR("op", a->op), LOG_REF("object", r->key));
	act_count(a->op, "ok");
	act_reply(c, r->key, a->id, 1, 200, "", "dry-run");
	act_post_event(c->act, r, &r->event, NULL);
}

/* starts the API call; answers at once when it cannot even be queued */
static void act_start(struct act_conn *c, const struct act_action *a, struct act_req *r)
{
	char *path = act_path(r->op, a), *body = r->op->body(a);

	TAILQ_INSERT_TAIL(&c->reqs, r, entry);
	c->act->inflight++;
	metrics_set(ACT_M_INFLIGHT, NULL, c->act->inflight);
	log_debug(r->key, "%s id %lld: %s %s", a->op, a->id, r->op->method, path);
	if (r->built != NULL || r->unfinalize != NULL)
		r->path = xstrdup(path);
	if (r->unfinalize != NULL) {
		r->del_body = body;
		body = NULL;
	}
	if (r->built != NULL        ? act_update_fetch(r) == -1
	    : r->unfinalize != NULL ? kube_request(c->act->kube, "PATCH", path, ACT_JSONP,
	                                  r->unfinalize, act_unfinalized, r) == -1
	                            : kube_request(c->act->kube, r->op->method, path,
	                                  r->op->content_type, body, act_done, r) == -1)
		act_queue_failed(r);
	free(path);
	free(body);
}

void act_handle(struct act_conn *c, json_object *body)
{
	const struct act_op *op;
	struct act_action a;
	struct act_req *r;
	char err[256], key[512];

	if (act_parse(body, &a, err, sizeof err) == -1) {
		snprintf(key, sizeof key, "%s/%s", a.ns != NULL ? a.ns : "?",
		    a.name != NULL ? a.name : "?");
		log_warnx(key, "bad action id %lld from %s: %s", a.id,
		    c->link != NULL ? log_escape(link_peer_program(c->link)) : "?", err);
		act_count(
		    a.op != NULL && act_op_find(a.op) != NULL ? a.op : "unknown", "bad_request");
		act_reply(c, NULL, a.id, 0, 0, "BadRequest", err);
		return;
	}
	if (!c->act->leading) {
		/* a planner that did not wait for LEADER: nothing was done, nothing is posted */
		log_info(NULL, "action id %lld refused: this instance does not lead", a.id);
		act_count(a.op, "not_leader");
		act_reply(
		    c, NULL, a.id, 0, 0, REASON_NOT_LEADER, "this vmpoold instance does not lead");
		return;
	}
	if ((op = act_op_find(a.op)) == NULL) {
		/* act_parse() knows an op this table lacks: a broken invariant, not the peer's */
		log_warnx(NULL, "action id %lld: op %s has no API call", a.id, a.op);
		act_reply(c, NULL, a.id, 0, 0, "InternalError", "op not implemented");
		return;
	}
	r = act_req_new(c, op, &a);
	if (c->act->dry_run) {
		act_dry_run(c, &a, r);
		r->conn = NULL;
		act_req_free(r);
		return;
	}
	if (r->op->method == NULL) {
		/* ACT_EVENT: only the Event */
		log_infos("Event action", LOG_INT("id", a.id), LOG_REF("object", r->key),
		    LOG_STR("type", a.event.type), LOG_STR("reason", a.event.reason));
		act_count(a.op, "ok");
		act_reply(c, r->key, a.id, 1, 0, "", "");
		act_post_event(c->act, r, &r->event, NULL);
		r->conn = NULL;
		act_req_free(r);
		return;
	}
	act_start(c, &a, r);
}

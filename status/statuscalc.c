/*
 * statuscalc.c: computes a pool's status (pure). replicas counts every owned VM, terminating
 * ones included; readyReplicas only looks at the VM's Ready condition (counted from each
 * VM's traits, statuscalc_vm_traits(), derived once when it is stored); labelSelector is the
 * canonical selector string; ReplicaFailure and ReplicaPaused follow SPEC 1.4: an existing
 * condition is never rewritten, only added or removed. Ready and Progressing are for tools
 * (kubectl wait, kstatus, Argo CD): Ready is True once the planner's last pass had nothing
 * to do and every replica exists, is ready and is not terminating; Progressing is True while
 * the planner scales or updates or VMs are not ready yet. Their lastTransitionTime moves
 * only when their status does. Zero values are omitted. Also builds the JSON patch that
 * writes a status (uid precondition, no resourceVersion).
 */
#include <stdlib.h>
#include <string.h>

#include "foreign.h"
#include "managers.h"
#include "obj.h"
#include "proto.h"
#include "resource.h"
#include "selector.h"
#include "statuscalc.h"
#include "timeutil.h"

int statuscalc_owns(json_object *pool, json_object *vm)
{
	const char *uid = obj_uid(pool), *pns = obj_namespace(pool), *vns = obj_namespace(vm);

	if (uid == NULL || uid[0] == '\0' || pns == NULL || vns == NULL || strcmp(pns, vns) != 0)
		return 0;
	return obj_controlled_by(vm, SC_POOL_KIND, uid);
}

static int statuscalc_ready(json_object *vm)
{
	json_object *c = obj_condition(vm, "Ready");
	const char *s = c != NULL ? obj_str(c, "status") : NULL;

	return s != NULL && strcmp(s, "True") == 0;
}

/* 1 when list (a managers array) names a manager other than vmpoold */
static int statuscalc_other_managers(json_object *list)
{
	size_t i, n = list != NULL ? json_object_array_length(list) : 0;
	json_object *v;

	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(list, i);
		if (!json_object_is_type(v, json_type_string) ||
		    strcmp(json_object_get_string(v), FOREIGN_SELF) != 0)
			return 1; /* foreign_message() tells which */
	}
	return 0;
}

unsigned statuscalc_vm_traits(json_object *vm)
{
	json_object *ref = obj_controller_ref(vm);
	const char *kind = ref != NULL ? obj_str(ref, "kind") : NULL;
	unsigned t = 0;

	if (kind != NULL && strcmp(kind, SC_POOL_KIND) == 0)
		t |= SC_VM_POOL;
	if (statuscalc_ready(vm))
		t |= SC_VM_READY;
	if (obj_terminating(vm))
		t |= SC_VM_TERMINATING;
	if (statuscalc_other_managers(managers_list(vm, MANAGERS_OWNERS)))
		t |= SC_VM_MANAGERS;
	return t;
}

unsigned statuscalc_traits(const char *kind, json_object *obj)
{
	return strcmp(kind, KIND_VM) == 0 ? statuscalc_vm_traits(obj) : 0;
}

void statuscalc_count(struct statuscalc_counts *n, unsigned traits)
{
	if (!(traits & SC_VM_POOL))
		return;
	n->replicas++;
	n->ready += (traits & SC_VM_READY) != 0;
	n->terminating += (traits & SC_VM_TERMINATING) != 0;
}

void statuscalc_tally(json_object *pool, json_object **vms, size_t n, struct statuscalc_counts *c)
{
	size_t i;

	memset(c, 0, sizeof *c);
	for (i = 0; i < n; i++) {
		if (statuscalc_owns(pool, vms[i]))
			statuscalc_count(c, statuscalc_vm_traits(vms[i]));
	}
}

/* the condition of this type in a status object's conditions, or NULL */
static json_object *statuscalc_cond(json_object *status, const char *type)
{
	return obj_find_condition(obj_path(status, "conditions"), type);
}

static json_object *statuscalc_newcond(
    const char *type, const char *reason, const char *message, double now)
{
	json_object *c = json_object_new_object();
	char ts[32];

	rfc3339_format(now, ts);
	json_object_object_add(c, "type", json_object_new_string(type));
	json_object_object_add(c, "status", json_object_new_string("True"));
	if (reason != NULL && reason[0] != '\0')
		json_object_object_add(c, "reason", json_object_new_string(reason));
	if (message != NULL && message[0] != '\0')
		json_object_object_add(c, "message", json_object_new_string(message));
	json_object_object_add(c, "lastTransitionTime", json_object_new_string(ts));
	return c;
}

/* what the owned VMs are */
/* copies every existing condition except the ones of type drop1 and drop2 (NULL: none), the
 * computed Ready and Progressing, and ForeignController, which statuscalc_foreign() adds
 * back as it is now */
static void statuscalc_keep(
    json_object *out, json_object *old, const char *drop1, const char *drop2)
{
	json_object *conds, *c;
	const char *t;
	size_t i, n;

	if (old == NULL || !json_object_object_get_ex(old, "conditions", &conds) ||
	    !json_object_is_type(conds, json_type_array))
		return;
	n = json_object_array_length(conds);
	for (i = 0; i < n; i++) {
		c = json_object_array_get_idx(conds, i);
		t = obj_str(c, "type");
		if (t != NULL &&
		    ((drop1 != NULL && strcmp(t, drop1) == 0) ||
		        (drop2 != NULL && strcmp(t, drop2) == 0) || strcmp(t, SC_COND_READY) == 0 ||
		        strcmp(t, SC_COND_PROGRESSING) == 0 || strcmp(t, SC_COND_FOREIGN) == 0))
			continue;
		json_object_array_add(out, obj_copy(c));
	}
}

/* ForeignController while other field managers act on the pool; kept as it was (with its
 * lastTransitionTime) while its message stays the same */
static void statuscalc_foreign(json_object *conds, const struct statuscalc_in *in, json_object *old)
{
	char *msg = foreign_message(in->pool, in->vms, in->nvms, FOREIGN_SELF);
	json_object *prev = statuscalc_cond(old, SC_COND_FOREIGN);
	const char *pmsg = prev != NULL ? obj_str(prev, "message") : NULL;

	if (msg == NULL)
		return;
	if (pmsg != NULL && strcmp(pmsg, msg) == 0)
		json_object_array_add(conds, obj_copy(prev));
	else
		json_object_array_add(
		    conds, statuscalc_newcond(SC_COND_FOREIGN, SC_REASON_FOREIGN, msg, in->now));
	free(msg);
}

/* a condition whose lastTransitionTime stays while its status does */
static json_object *statuscalc_tool_cond(json_object *old, const char *type, int status,
    const char *reason, const char *message, double now)
{
	json_object *c = statuscalc_newcond(type, reason, message, now), *prev, *ts;
	const char *was;

	json_object_object_add(c, "status", json_object_new_string(status ? "True" : "False"));
	prev = statuscalc_cond(old, type);
	was = prev != NULL ? obj_str(prev, "status") : NULL;
	if (was != NULL && strcmp(was, status ? "True" : "False") == 0 &&
	    json_object_object_get_ex(prev, "lastTransitionTime", &ts))
		json_object_object_add(c, "lastTransitionTime", obj_copy(ts));
	return c;
}

/* Ready and Progressing, from the planner's progress and the counts */
static void statuscalc_tool_conds(const struct statuscalc_in *in, const struct statuscalc_counts *n,
    json_object *old, json_object *conds)
{
	const struct statuscalc_result *res = in->result;
	long long want = statuscalc_desired(in->pool);
	const char *why = NULL, *msg;
	int ready, progressing;

	if (res == NULL || res->progress == NULL)
		return; /* no word from the planner on its progress: nothing to tell */
	if (obj_bool(in->pool, "spec.paused"))
		why = "Paused";
	else if (!res->ok)
		why = res->reason != NULL && res->reason[0] != '\0' ? res->reason : "Failed";
	else if (res->progress[0] != '\0')
		why = res->progress;
	else if (n->replicas != want || n->terminating > 0)
		why = n->replicas < want ? PROGRESS_SCALING_UP : PROGRESS_SCALING_DOWN;
	else if (n->ready < want)
		why = "WaitingForReady";
	ready = why == NULL;
	progressing =
	    !ready &&
	    (strcmp(why, "WaitingForReady") == 0 || strcmp(why, PROGRESS_SCALING_UP) == 0 ||
	        strcmp(why, PROGRESS_SCALING_DOWN) == 0 || strcmp(why, PROGRESS_UPDATING) == 0);
	msg = ready ? "Every VM exists, is up to date and ready" : NULL;
	json_object_array_add(conds,
	    statuscalc_tool_cond(old, SC_COND_READY, ready, ready ? "Ready" : why, msg, in->now));
	json_object_array_add(conds, statuscalc_tool_cond(old, SC_COND_PROGRESSING, progressing,
	                                 ready ? "Complete" : why, NULL, in->now));
}

/* the conditions list per SPEC 1.4, then Ready and Progressing (may come back empty) */
static json_object *statuscalc_conditions(
    const struct statuscalc_in *in, const struct statuscalc_counts *n, json_object *old)
{
	const struct statuscalc_result *res = in->result;
	json_object *conds = json_object_new_array(), *tool = json_object_new_array();
	int paused = obj_bool(in->pool, "spec.paused");
	int drop_failure = res != NULL && res->ok;
	size_t i;

	statuscalc_keep(
	    conds, old, drop_failure ? SC_COND_FAILURE : NULL, paused ? NULL : SC_COND_PAUSED);
	if (res != NULL && !res->ok && statuscalc_cond(old, SC_COND_FAILURE) == NULL)
		json_object_array_add(
		    conds, statuscalc_newcond(SC_COND_FAILURE, res->reason, res->message, in->now));
	if (paused && statuscalc_cond(old, SC_COND_PAUSED) == NULL)
		json_object_array_add(conds, statuscalc_newcond(SC_COND_PAUSED, "SuccessfulPaused",
		                                 "Pool controller is paused", in->now));
	statuscalc_foreign(conds, in, old);
	statuscalc_tool_conds(in, n, old, tool);
	for (i = 0; i < json_object_array_length(tool); i++)
		json_object_array_add(conds, obj_copy(json_object_array_get_idx(tool, i)));
	json_object_put(tool);
	return conds;
}

static char *statuscalc_selector(json_object *pool)
{
	struct selector *sel;
	char err[256], *s;

	if ((sel = selector_parse(obj_path(pool, "spec.selector"), err, sizeof err)) == NULL)
		return NULL;
	s = selector_string(sel);
	selector_free(sel);
	return s;
}

json_object *statuscalc_compute(const struct statuscalc_in *in)
{
	json_object *st = json_object_new_object(), *old, *conds;
	struct statuscalc_counts n = in->counts;
	char *sel;

	if (n.replicas > 0)
		json_object_object_add(st, "replicas", json_object_new_int64(n.replicas));
	if (n.ready > 0)
		json_object_object_add(st, "readyReplicas", json_object_new_int64(n.ready));
	sel = statuscalc_selector(in->pool);
	if (sel != NULL && sel[0] != '\0')
		json_object_object_add(st, "labelSelector", json_object_new_string(sel));
	free(sel);
	old = obj_path(in->pool, "status");
	if (old != NULL && !json_object_is_type(old, json_type_object))
		old = NULL;
	conds = statuscalc_conditions(in, &n, old);
	if (json_object_array_length(conds) > 0)
		json_object_object_add(st, "conditions", conds);
	else
		json_object_put(conds);
	return st;
}

int statuscalc_differs(json_object *pool, json_object *computed)
{
	json_object *old = obj_path(pool, "status"), *empty;
	int eq;

	if (old != NULL && json_object_is_type(old, json_type_object))
		return !obj_equal(old, computed);
	empty = json_object_new_object();
	eq = obj_equal(empty, computed);
	json_object_put(empty);
	return !eq;
}

json_object *statuscalc_patch(json_object *pool, json_object *computed)
{
	const char *uid = obj_uid(pool);
	json_object *patch;

	if (!statuscalc_differs(pool, computed))
		return NULL;
	patch = json_object_new_array();
	if (uid != NULL && uid[0] != '\0')
		json_object_array_add(
		    patch, obj_patch_op("test", "/metadata/uid", json_object_new_string(uid)));
	json_object_array_add(patch, obj_patch_op("add", "/status", obj_copy(computed)));
	return patch;
}

int statuscalc_paused_change(json_object *old_status, json_object *new_status)
{
	int was = statuscalc_cond(old_status, SC_COND_PAUSED) != NULL;
	int is = statuscalc_cond(new_status, SC_COND_PAUSED) != NULL;

	return is - was;
}

json_object *statuscalc_failure_added(json_object *old_status, json_object *new_status)
{
	if (statuscalc_cond(old_status, SC_COND_FAILURE) != NULL)
		return NULL;
	return statuscalc_cond(new_status, SC_COND_FAILURE);
}

json_object *statuscalc_foreign_added(json_object *old_status, json_object *new_status)
{
	json_object *c = statuscalc_cond(new_status, SC_COND_FOREIGN);
	json_object *o = statuscalc_cond(old_status, SC_COND_FOREIGN);
	const char *m = c != NULL ? obj_str(c, "message") : NULL;
	const char *om = o != NULL ? obj_str(o, "message") : NULL;

	if (c == NULL || (om != NULL && m != NULL && strcmp(om, m) == 0))
		return NULL;
	return c;
}

long long statuscalc_desired(json_object *pool)
{
	long long n;

	if (obj_int(pool, "spec.replicas", &n) == -1)
		return 1;
	return n;
}

json_object *statuscalc_trim(const char *kind, json_object *obj, void *arg)
{
	const struct resource *rs = resource_get(kind);
	json_object *out;
	char err[256];

	(void)arg;
	if (rs == NULL || rs->status_fields == NULL)
		return NULL;
	/* the watcher's stub of an unreadable pool may not fit: kept as it is */
	if ((out = resource_project_status(rs, obj, err, sizeof(err))) == NULL)
		out = json_object_get(obj);
	return out;
}

/*
 * action.c: strict checking of ACTION bodies (pure). msg.c checks the layout (required
 * fields present, every field of its type, unknown keys ignored); this file what each op
 * needs (a body, a patch, an event, which propagation). Nothing here touches the API.
 */
#include <stdio.h>
#include <string.h>

#include "act.h"
#include "msg.h"
#include "obj.h"
#include "proto.h"

/* what each op needs besides namespace and name */
#define ACT_NEEDS_BODY    0x01 /* body: a map */
#define ACT_NEEDS_PATCH   0x02 /* patch: a non-empty array */
#define ACT_NEEDS_EVENT   0x04 /* event {type, reason, message} */
#define ACT_MAY_PROPAGATE 0x08 /* a delete: propagation allowed */

struct act_spec {
	const char *op;
	int flags;
};

static const struct act_spec act_specs[] = {
    {ACT_CREATE_VM, ACT_NEEDS_BODY},
    {ACT_DELETE_VM, ACT_MAY_PROPAGATE},
    {ACT_PATCH_VM, ACT_NEEDS_PATCH},
    {ACT_PATCH_POOL, ACT_NEEDS_PATCH},
    {ACT_EVENT, ACT_NEEDS_EVENT},
    {ACT_UPDATE_VM, ACT_NEEDS_BODY},
    {ACT_DELETE_VMI, ACT_MAY_PROPAGATE},
    {ACT_PATCH_VMI, ACT_NEEDS_PATCH},
    {ACT_CREATE_REV, ACT_NEEDS_BODY},
    {ACT_DELETE_REV, ACT_MAY_PROPAGATE},
    {ACT_PATCH_PVC, ACT_NEEDS_PATCH},
    {ACT_PATCH_DV, ACT_NEEDS_PATCH},
    {ACT_GET_LEASE, 0},
};

/* DeleteOptions.propagationPolicy values */
static const char *const act_propagations[] = {"Foreground", "Background", "Orphan", NULL};

static int act_check_ev(const struct act_ev *ev, const char *key, char *err, size_t errlen)
{
	if (ev->set && strcmp(ev->type, "Normal") != 0 && strcmp(ev->type, "Warning") != 0) {
		snprintf(err, errlen, "%s.type must be Normal or Warning", key);
		return -1;
	}
	return 0;
}

static int act_check_pool(struct act_action *a, char *err, size_t errlen)
{
	if (a->pool_name == NULL &&
	    (strcmp(a->op, ACT_PATCH_POOL) == 0 || strcmp(a->op, ACT_EVENT) == 0)) {
		/* for these the action's own object is the pool */
		a->pool_name = a->name;
		a->pool_uid = a->uid;
	}
	if (a->pool_api != NULL && !obj_pool_api_valid(a->pool_api)) {
		snprintf(err, errlen, "api_version must be \"pool.kubevirt.io/<version>\"");
		return -1;
	}
	if ((a->event.set || a->fail_event.set) && a->pool_name == NULL) {
		snprintf(err, errlen, "an event needs the pool {name, uid}");
		return -1;
	}
	return 0;
}

static const struct act_spec *act_find_spec(const char *op)
{
	size_t i;

	for (i = 0; i < sizeof act_specs / sizeof act_specs[0]; i++)
		if (strcmp(op, act_specs[i].op) == 0)
			return &act_specs[i];
	return NULL;
}

/* the optional propagation: deletes only, one of act_propagations */
static int act_check_propagation(struct act_action *a, int flags, char *err, size_t errlen)
{
	size_t i;

	if (a->propagation == NULL)
		return 0;
	if (!(flags & ACT_MAY_PROPAGATE)) {
		snprintf(err, errlen, "%s takes no propagation (deletes only)", a->op);
		return -1;
	}
	for (i = 0; act_propagations[i] != NULL; i++)
		if (strcmp(a->propagation, act_propagations[i]) == 0)
			return 0;
	snprintf(err, errlen, "propagation \"%.64s\" is not Foreground, Background or Orphan",
	    a->propagation);
	return -1;
}

/* the op-specific payload: body for create/update, patch for the patches, event for event */
static int act_check_payload(struct act_action *a, int flags, char *err, size_t errlen)
{
	if ((flags & ACT_NEEDS_BODY) && a->body == NULL) {
		snprintf(err, errlen, "%s needs body (a map)", a->op);
		return -1;
	}
	if ((flags & ACT_NEEDS_PATCH) &&
	    (a->patch == NULL || json_object_array_length(a->patch) == 0)) {
		snprintf(err, errlen, "%s needs patch (a non-empty array)", a->op);
		return -1;
	}
	if (a->unfinalize != NULL &&
	    (strcmp(a->op, ACT_DELETE_VM) != 0 || json_object_array_length(a->unfinalize) == 0)) {
		snprintf(err, errlen, "unfinalize must be a non-empty array, on delete_vm only");
		return -1;
	}
	if ((flags & ACT_NEEDS_EVENT) && !a->event.set) {
		snprintf(err, errlen, "%s needs event {type, reason, message}", a->op);
		return -1;
	}
	return act_check_propagation(a, flags, err, errlen);
}

static void act_ev_from(struct act_ev *ev, const struct msg_event *m)
{
	ev->set = m->type != NULL;
	ev->type = m->type;
	ev->reason = m->reason;
	ev->message = m->message;
}

/* the typed ACTION as the actuator uses it (an empty uid is no precondition) */
static void act_from_msg(struct act_action *a, const struct msg_action *m)
{
	memset(a, 0, sizeof *a);
	a->id = m->id;
	a->op = m->op != MSG_OP_NONE ? msg_op_name(m->op) : NULL;
	a->ns = m->ns;
	a->name = m->name;
	a->uid = m->uid != NULL && m->uid[0] != '\0' ? m->uid : NULL;
	a->pool_name = m->pool_name;
	a->pool_uid = m->pool_uid;
	a->pool_api = m->api_version;
	a->body = m->body;
	a->patch = m->patch;
	a->propagation = m->propagation;
	a->unfinalize = m->unfinalize;
	act_ev_from(&a->event, &m->event);
	act_ev_from(&a->fail_event, &m->fail_event);
}

int act_parse(json_object *o, struct act_action *a, char *err, size_t errlen)
{
	const struct act_spec *spec;
	struct msg_action m;
	int rc;

	/* msg.c checks the layout and types (filling what it read, the id first, for the
	 * RESULT); what each op needs is checked here */
	rc = msg_action_unpack(o, &m, err, errlen);
	act_from_msg(a, &m);
	if (rc == -1)
		return -1;
	if ((spec = act_find_spec(a->op)) == NULL) {
		snprintf(err, errlen, "op %s has no spec", a->op);
		return -1;
	}
	if (act_check_ev(&a->event, "event", err, errlen) == -1 ||
	    act_check_ev(&a->fail_event, "fail_event", err, errlen) == -1 ||
	    act_check_pool(a, err, errlen) == -1)
		return -1;
	return act_check_payload(a, spec->flags, err, errlen);
}

json_object *act_result(long long id, int ok, long status, const char *reason, const char *message)
{
	struct msg_result r = {
	    .id = id, .ok = ok, .status = status, .reason = reason, .message = message};

	return msg_result_pack(&r);
}

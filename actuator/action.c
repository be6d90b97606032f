/*
 * action.c: strict checking of ACTION bodies (pure). Required fields must be present and
 * of the right type; unknown keys are ignored. Nothing here touches the API.
 */
#include <stdio.h>
#include <string.h>

#include "act.h"
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

/* a required non-empty string; NULL when absent, wrong type or empty */
static const char *act_str(json_object *o, const char *key)
{
	json_object *v;
	const char *s;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	s = json_object_get_string(v);
	return s[0] != '\0' ? s : NULL;
}

/* an optional string: 0 absent (or null), 1 present, -1 wrong type */
static int act_optstr(json_object *o, const char *key, const char **out)
{
	json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return -1;
	*out = json_object_get_string(v);
	return 1;
}

/* an optional value of type t: 0 absent (or null), 1 present, -1 wrong type */
static int act_opt(json_object *o, const char *key, json_type t, json_object **out)
{
	json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, t))
		return -1;
	*out = v;
	return 1;
}

static int act_parse_ev(
    json_object *o, const char *key, struct act_ev *ev, char *err, size_t errlen)
{
	json_object *m;
	int r;

	memset(ev, 0, sizeof *ev);
	if ((r = act_opt(o, key, json_type_object, &m)) <= 0) {
		if (r == -1)
			snprintf(err, errlen, "%s is not a map", key);
		return r;
	}
	ev->type = act_str(m, "type");
	ev->reason = act_str(m, "reason");
	ev->message = act_str(m, "message");
	if (ev->type == NULL || ev->reason == NULL || ev->message == NULL) {
		snprintf(err, errlen, "%s needs string type, reason and message", key);
		return -1;
	}
	if (strcmp(ev->type, "Normal") != 0 && strcmp(ev->type, "Warning") != 0) {
		snprintf(err, errlen, "%s.type must be Normal or Warning", key);
		return -1;
	}
	ev->set = 1;
	return 1;
}

static int act_parse_pool(json_object *o, struct act_action *a, char *err, size_t errlen)
{
	json_object *m;
	int r;

	if ((r = act_opt(o, "pool", json_type_object, &m)) == -1) {
		snprintf(err, errlen, "pool is not a map");
		return -1;
	}
	if (r == 1) {
		a->pool_name = act_str(m, "name");
		if (a->pool_name == NULL || act_optstr(m, "uid", &a->pool_uid) == -1) {
			snprintf(err, errlen, "pool needs a string name (and string uid)");
			return -1;
		}
	} else if (strcmp(a->op, ACT_PATCH_POOL) == 0 || strcmp(a->op, ACT_EVENT) == 0) {
		/* for these the action's own object is the pool */
		a->pool_name = a->name;
		a->pool_uid = a->uid;
	}
	if (act_optstr(o, "api_version", &a->pool_api) == -1 ||
	    (a->pool_api != NULL && !obj_pool_api_valid(a->pool_api))) {
		snprintf(err, errlen, "api_version must be \"pool.kubevirt.io/<version>\"");
		return -1;
	}
	if ((a->event.set || a->fail_event.set) && a->pool_name == NULL) {
		snprintf(err, errlen, "an event needs the pool {name, uid}");
		return -1;
	}
	return 0;
}

static const struct act_spec *act_parse_op(
    json_object *o, struct act_action *a, char *err, size_t errlen)
{
	size_t i;

	if ((a->op = act_str(o, "op")) == NULL) {
		snprintf(err, errlen, "op missing or not a string");
		return NULL;
	}
	for (i = 0; i < sizeof act_specs / sizeof act_specs[0]; i++)
		if (strcmp(a->op, act_specs[i].op) == 0)
			return &act_specs[i];
	snprintf(err, errlen, "unknown op \"%.64s\"", a->op);
	return NULL;
}

/* the optional propagation: deletes only, one of act_propagations */
static int act_parse_propagation(
    json_object *o, struct act_action *a, int flags, char *err, size_t errlen)
{
	size_t i;
	int r;

	if ((r = act_optstr(o, "propagation", &a->propagation)) == 0)
		return 0;
	if (r == -1) {
		snprintf(err, errlen, "propagation is not a string");
		return -1;
	}
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
static int act_parse_payload(
    json_object *o, struct act_action *a, int flags, char *err, size_t errlen)
{
	if ((flags & ACT_NEEDS_BODY) && act_opt(o, "body", json_type_object, &a->body) != 1) {
		snprintf(err, errlen, "%s needs body (a map)", a->op);
		return -1;
	}
	if ((flags & ACT_NEEDS_PATCH) && (act_opt(o, "patch", json_type_array, &a->patch) != 1 ||
	                                     json_object_array_length(a->patch) == 0)) {
		snprintf(err, errlen, "%s needs patch (a non-empty array)", a->op);
		return -1;
	}
	if (act_opt(o, "unfinalize", json_type_array, &a->unfinalize) == -1 ||
	    (a->unfinalize != NULL && (strcmp(a->op, ACT_DELETE_VM) != 0 ||
	                                  json_object_array_length(a->unfinalize) == 0))) {
		snprintf(err, errlen, "unfinalize must be a non-empty array, on delete_vm only");
		return -1;
	}
	if ((flags & ACT_NEEDS_EVENT) && !a->event.set) {
		snprintf(err, errlen, "%s needs event {type, reason, message}", a->op);
		return -1;
	}
	return act_parse_propagation(o, a, flags, err, errlen);
}

int act_parse(json_object *o, struct act_action *a, char *err, size_t errlen)
{
	const struct act_spec *spec;
	json_object *id;

	memset(a, 0, sizeof *a);
	if (o == NULL || !json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "body is not a map");
		return -1;
	}
	if (!json_object_object_get_ex(o, "id", &id) || !json_object_is_type(id, json_type_int)) {
		snprintf(err, errlen, "id missing or not an integer");
		return -1;
	}
	a->id = json_object_get_int64(id);
	if ((spec = act_parse_op(o, a, err, errlen)) == NULL)
		return -1;
	a->ns = act_str(o, "namespace");
	a->name = act_str(o, "name");
	if (a->ns == NULL || a->name == NULL) {
		snprintf(err, errlen, "namespace and name must be non-empty strings");
		return -1;
	}
	if (act_optstr(o, "uid", &a->uid) == -1) {
		snprintf(err, errlen, "uid is not a string");
		return -1;
	}
	if (a->uid != NULL && a->uid[0] == '\0')
		a->uid = NULL;
	if (act_parse_ev(o, "event", &a->event, err, errlen) == -1 ||
	    act_parse_ev(o, "fail_event", &a->fail_event, err, errlen) == -1)
		return -1;
	if (act_parse_pool(o, a, err, errlen) == -1)
		return -1;
	return act_parse_payload(o, a, spec->flags, err, errlen);
}

json_object *act_result(long long id, int ok, long status, const char *reason, const char *message)
{
	json_object *r = json_object_new_object();

	json_object_object_add(r, "id", json_object_new_int64(id));
	json_object_object_add(r, "ok", json_object_new_boolean(ok));
	json_object_object_add(r, "status", json_object_new_int64(status));
	json_object_object_add(r, "reason", json_object_new_string(reason ? reason : ""));
	json_object_object_add(r, "message", json_object_new_string(message ? message : ""));
	return r;
}

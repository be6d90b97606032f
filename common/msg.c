/*
 * msg.c: the typed messages (msg.h). Every message is a table of fields; one generic
 * unpack and one generic pack walk it, so the checks are the same for every message and a
 * field is added in one place (its struct member and its row here).
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "msg.h"
#include "proto.h"
#include "xmalloc.h"

enum msg_ftype {
	MF_STR,   /* const char * */
	MF_INT,   /* long long */
	MF_BOOL,  /* int */
	MF_MAP,   /* json_object *, a map */
	MF_ARRAY, /* json_object *, an array */
	MF_OP,    /* enum msg_op, an ACT_* string on the wire */
	MF_SUB,   /* a nested map: sub's fields, at off from this struct */
};

#define MF_REQ      0x01 /* required (else optional: absent or null is fine) */
#define MF_NONEMPTY 0x02 /* a string that may not be "" */

struct msg_field {
	const char *name;
	enum msg_ftype type;
	int flags;
	size_t off;
	const struct msg_fields *sub; /* MF_SUB */
};

struct msg_fields {
	const char *msg; /* the message's name, for errors */
	const struct msg_field *f;
	size_t n;
};

#define MSG_FIELDS(name, table)                                                                    \
	{                                                                                          \
		name, table, sizeof table / sizeof table[0]                                        \
	}
#define F(st, key, member, type, flags)                                                            \
	{                                                                                          \
		key, type, flags, offsetof(st, member), NULL                                       \
	}

static const struct msg_field hello_f[] = {
    F(struct msg_hello, "version", version, MF_INT, MF_REQ),
    F(struct msg_hello, "program", program, MF_STR, MF_REQ),
    F(struct msg_hello, "pid", pid, MF_INT, MF_REQ),
    F(struct msg_hello, "link", link, MF_STR, MF_REQ),
    F(struct msg_hello, "recorded_by", recorded_by, MF_STR, 0),
};
static const struct msg_fields hello_t = MSG_FIELDS("HELLO", hello_f);

static const struct msg_fields marker_t = {"marker", NULL, 0};

static const struct msg_field obj_set_f[] = {
    F(struct msg_obj_set, "kind", kind, MF_STR, MF_REQ | MF_NONEMPTY),
    F(struct msg_obj_set, "obj", obj, MF_MAP, MF_REQ),
};
static const struct msg_fields obj_set_t = MSG_FIELDS("OBJ_SET", obj_set_f);
static const struct msg_fields written_t = MSG_FIELDS("WRITTEN", obj_set_f);

static const struct msg_field obj_delete_f[] = {
    F(struct msg_obj_delete, "kind", kind, MF_STR, MF_REQ | MF_NONEMPTY),
    F(struct msg_obj_delete, "namespace", ns, MF_STR, 0),
    F(struct msg_obj_delete, "name", name, MF_STR, MF_REQ | MF_NONEMPTY),
    F(struct msg_obj_delete, "uid", uid, MF_STR, 0),
};
static const struct msg_fields obj_delete_t = MSG_FIELDS("OBJ_DELETE", obj_delete_f);

/* an Event's fields, relative to struct msg_event */
static const struct msg_field event_f[] = {
    F(struct msg_event, "type", type, MF_STR, MF_REQ | MF_NONEMPTY),
    F(struct msg_event, "reason", reason, MF_STR, MF_REQ | MF_NONEMPTY),
    F(struct msg_event, "message", message, MF_STR, MF_REQ | MF_NONEMPTY),
};
static const struct msg_fields event_t = MSG_FIELDS("event", event_f);
static const struct msg_fields fail_event_t = MSG_FIELDS("fail_event", event_f);

/* ACTION's pool {name, uid}, relative to struct msg_action itself */
static const struct msg_field pool_f[] = {
    F(struct msg_action, "name", pool_name, MF_STR, MF_REQ | MF_NONEMPTY),
    F(struct msg_action, "uid", pool_uid, MF_STR, 0),
};
static const struct msg_fields pool_t = MSG_FIELDS("pool", pool_f);

static const struct msg_field action_f[] = {
    F(struct msg_action, "id", id, MF_INT, MF_REQ),
    F(struct msg_action, "op", op, MF_OP, MF_REQ),
    F(struct msg_action, "namespace", ns, MF_STR, MF_REQ | MF_NONEMPTY),
    F(struct msg_action, "name", name, MF_STR, MF_REQ | MF_NONEMPTY),
    F(struct msg_action, "uid", uid, MF_STR, 0),
    {"pool", MF_SUB, 0, 0, &pool_t},
    F(struct msg_action, "body", body, MF_MAP, 0),
    F(struct msg_action, "patch", patch, MF_ARRAY, 0),
    F(struct msg_action, "unfinalize", unfinalize, MF_ARRAY, 0),
    F(struct msg_action, "api_version", api_version, MF_STR, 0),
    F(struct msg_action, "propagation", propagation, MF_STR, 0),
    {"event", MF_SUB, 0, offsetof(struct msg_action, event), &event_t},
    {"fail_event", MF_SUB, 0, offsetof(struct msg_action, fail_event), &fail_event_t},
};
static const struct msg_fields action_t = MSG_FIELDS("ACTION", action_f);

static const struct msg_field result_f[] = {
    F(struct msg_result, "id", id, MF_INT, MF_REQ),
    F(struct msg_result, "ok", ok, MF_BOOL, MF_REQ),
    F(struct msg_result, "status", status, MF_INT, MF_REQ),
    F(struct msg_result, "reason", reason, MF_STR, MF_REQ),
    F(struct msg_result, "message", message, MF_STR, MF_REQ),
    F(struct msg_result, "rv", rv, MF_STR, 0),
    F(struct msg_result, "gone", gone, MF_BOOL, 0),
    F(struct msg_result, "unknown", unknown, MF_BOOL, 0),
    F(struct msg_result, "holder", holder, MF_STR, 0),
    F(struct msg_result, "duration", duration, MF_INT, 0),
};
static const struct msg_fields result_t = MSG_FIELDS("RESULT", result_f);

static const struct msg_field leader_f[] = {
    F(struct msg_leader, "leading", leading, MF_BOOL, MF_REQ),
    F(struct msg_leader, "holder", holder, MF_STR, MF_REQ),
    F(struct msg_leader, "lease", lease, MF_STR, 0),
    F(struct msg_leader, "stopping", stopping, MF_BOOL, 0),
};
static const struct msg_fields leader_t = MSG_FIELDS("LEADER", leader_f);

static const struct msg_field pool_result_f[] = {
    F(struct msg_pool_result, "namespace", ns, MF_STR, MF_REQ | MF_NONEMPTY),
    F(struct msg_pool_result, "name", name, MF_STR, MF_REQ | MF_NONEMPTY),
    F(struct msg_pool_result, "uid", uid, MF_STR, MF_REQ),
    F(struct msg_pool_result, "ok", ok, MF_BOOL, MF_REQ),
    F(struct msg_pool_result, "reason", reason, MF_STR, MF_REQ),
    F(struct msg_pool_result, "message", message, MF_STR, MF_REQ),
    F(struct msg_pool_result, "progress", progress, MF_STR, 0),
};
static const struct msg_fields pool_result_t = MSG_FIELDS("POOL_RESULT", pool_result_f);

static const struct msg_field pool_forget_f[] = {
    F(struct msg_pool_forget, "namespace", ns, MF_STR, MF_REQ | MF_NONEMPTY),
    F(struct msg_pool_forget, "name", name, MF_STR, MF_REQ | MF_NONEMPTY),
};
static const struct msg_fields pool_forget_t = MSG_FIELDS("POOL_FORGET", pool_forget_f);

/* the message types and their tables; sz is the struct's size */
static const struct {
	int type;
	const struct msg_fields *t;
	size_t sz;
} msg_types[] = {
    {MSG_HELLO, &hello_t, sizeof(struct msg_hello)},
    {MSG_SYNC_BEGIN, &marker_t, sizeof(struct msg_marker)},
    {MSG_SYNC_END, &marker_t, sizeof(struct msg_marker)},
    {MSG_OBJ_SET, &obj_set_t, sizeof(struct msg_obj_set)},
    {MSG_OBJ_DELETE, &obj_delete_t, sizeof(struct msg_obj_delete)},
    {MSG_ACTION, &action_t, sizeof(struct msg_action)},
    {MSG_RESULT, &result_t, sizeof(struct msg_result)},
    {MSG_LEADER, &leader_t, sizeof(struct msg_leader)},
    {MSG_WRITTEN, &written_t, sizeof(struct msg_obj_set)},
    {MSG_PSYNC_BEGIN, &marker_t, sizeof(struct msg_marker)},
    {MSG_PSYNC_END, &marker_t, sizeof(struct msg_marker)},
    {MSG_POOL_RESULT, &pool_result_t, sizeof(struct msg_pool_result)},
    {MSG_POOL_FORGET, &pool_forget_t, sizeof(struct msg_pool_forget)},
};

static const char *const msg_ops[] = {
    [MSG_OP_NONE] = NULL,
    [MSG_OP_CREATE_VM] = ACT_CREATE_VM,
    [MSG_OP_DELETE_VM] = ACT_DELETE_VM,
    [MSG_OP_PATCH_VM] = ACT_PATCH_VM,
    [MSG_OP_PATCH_POOL] = ACT_PATCH_POOL,
    [MSG_OP_EVENT] = ACT_EVENT,
    [MSG_OP_UPDATE_VM] = ACT_UPDATE_VM,
    [MSG_OP_DELETE_VMI] = ACT_DELETE_VMI,
    [MSG_OP_PATCH_VMI] = ACT_PATCH_VMI,
    [MSG_OP_CREATE_REV] = ACT_CREATE_REV,
    [MSG_OP_DELETE_REV] = ACT_DELETE_REV,
    [MSG_OP_PATCH_PVC] = ACT_PATCH_PVC,
    [MSG_OP_PATCH_DV] = ACT_PATCH_DV,
    [MSG_OP_GET_LEASE] = ACT_GET_LEASE,
};
#define MSG_NOPS (sizeof msg_ops / sizeof msg_ops[0])

const char *msg_op_name(enum msg_op op)
{
	return (size_t)op < MSG_NOPS && msg_ops[op] != NULL ? msg_ops[op] : "?";
}

enum msg_op msg_op_parse(const char *op)
{
	size_t i;

	for (i = 1; op != NULL && i < MSG_NOPS; i++) {
		if (strcmp(op, msg_ops[i]) == 0)
			return (enum msg_op)i;
	}
	return MSG_OP_NONE;
}

/* each field type's json type and its name in errors */
static const struct {
	json_type jt;
	const char *word;
} msg_ftypes[] = {
    [MF_STR] = {json_type_string, "a string"},
    [MF_INT] = {json_type_int, "an integer"},
    [MF_BOOL] = {json_type_boolean, "a boolean"},
    [MF_MAP] = {json_type_object, "a map"},
    [MF_ARRAY] = {json_type_array, "an array"},
    [MF_OP] = {json_type_string, "an op string"},
    [MF_SUB] = {json_type_object, "a map"},
};

static int msg_unpack_fields(const struct msg_fields *, const char *msg, const char *prefix,
    json_object *body, char *base, char *err, size_t errlen);

/* one present value v of field f into base; -1 with err filled */
static int msg_unpack_value(const struct msg_field *f, const char *msg, const char *prefix,
    json_object *v, char *base, char *err, size_t errlen)
{
	void *p = base + f->off;
	char sub[64];

	switch (f->type) {
	case MF_STR:
		*(const char **)p = json_object_get_string(v);
		if ((f->flags & MF_NONEMPTY) && **(const char **)p == '\0') {
			snprintf(err, errlen, "%s: %s%s is empty", msg, prefix, f->name);
			return -1;
		}
		return 0;
	case MF_INT:
		*(long long *)p = (long long)json_object_get_int64(v);
		return 0;
	case MF_BOOL:
		*(int *)p = json_object_get_boolean(v) ? 1 : 0;
		return 0;
	case MF_MAP:
	case MF_ARRAY:
		*(json_object **)p = v;
		return 0;
	case MF_OP:
		if ((*(enum msg_op *)p = msg_op_parse(json_object_get_string(v))) == MSG_OP_NONE) {
			snprintf(err, errlen, "%s: %s%s \"%.64s\" is unknown", msg, prefix, f->name,
			    json_object_get_string(v));
			return -1;
		}
		return 0;
	case MF_SUB:
		snprintf(sub, sizeof sub, "%s%s.", prefix, f->name);
		return msg_unpack_fields(f->sub, msg, sub, v, p, err, errlen);
	}
	return -1;
}

static int msg_unpack_fields(const struct msg_fields *t, const char *msg, const char *prefix,
    json_object *body, char *base, char *err, size_t errlen)
{
	json_object *v;
	size_t i;

	for (i = 0; i < t->n; i++) {
		const struct msg_field *f = &t->f[i];

		if (!json_object_object_get_ex(body, f->name, &v) || v == NULL) {
			if (!(f->flags & MF_REQ))
				continue;
			snprintf(err, errlen, "%s: %s%s missing", msg, prefix, f->name);
			return -1;
		}
		if (!json_object_is_type(v, msg_ftypes[f->type].jt)) {
			snprintf(err, errlen, "%s: %s%s is not %s", msg, prefix, f->name,
			    msg_ftypes[f->type].word);
			return -1;
		}
		if (msg_unpack_value(f, msg, prefix, v, base, err, errlen) == -1)
			return -1;
	}
	return 0;
}

int msg_unpack(int type, json_object *body, void *m, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < sizeof msg_types / sizeof msg_types[0]; i++) {
		if (msg_types[i].type != type)
			continue;
		memset(m, 0, msg_types[i].sz);
		if (body != NULL && !json_object_is_type(body, json_type_object)) {
			snprintf(err, errlen, "%s: body is not a map", msg_type_name(type));
			return -1;
		}
		if (msg_types[i].t == &marker_t) {
			((struct msg_marker *)m)->type = type;
			return 0;
		}
		return msg_unpack_fields(
		    msg_types[i].t, msg_type_name(type), "", body, m, err, errlen);
	}
	snprintf(err, errlen, "message type %d has no body layout", type);
	return -1;
}

static void msg_pack_fields(const struct msg_fields *t, const char *base, json_object *out);

/* adds field f of base to out, unless it is optional and empty */
static void msg_pack_field(const struct msg_field *f, const char *base, json_object *out)
{
	const void *p = base + f->off;
	int req = f->flags & MF_REQ;
	const char *s;
	json_object *v = NULL;

	switch (f->type) {
	case MF_STR:
		if ((s = *(const char *const *)p) != NULL || req)
			v = json_object_new_string(s != NULL ? s : "");
		break;
	case MF_INT:
		if (*(const long long *)p != 0 || req)
			v = json_object_new_int64(*(const long long *)p);
		break;
	case MF_BOOL:
		if (*(const int *)p != 0 || req)
			v = json_object_new_boolean(*(const int *)p);
		break;
	case MF_MAP:
	case MF_ARRAY:
		if (*(json_object *const *)p != NULL)
			v = json_object_get(*(json_object *const *)p);
		else if (req)
			v = f->type == MF_MAP ? json_object_new_object() : json_object_new_array();
		break;
	case MF_OP:
		v = json_object_new_string(msg_op_name(*(const enum msg_op *)p));
		break;
	case MF_SUB:
		/* present when its first (required) field is set */
		if (*(const char *const *)((const char *)p + f->sub->f[0].off) == NULL && !req)
			break;
		v = json_object_new_object();
		msg_pack_fields(f->sub, p, v);
		break;
	}
	if (v != NULL)
		json_object_object_add(out, f->name, v);
}

static void msg_pack_fields(const struct msg_fields *t, const char *base, json_object *out)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		msg_pack_field(&t->f[i], base, out);
}

json_object *msg_pack(int type, const void *m)
{
	json_object *out;
	size_t i;

	for (i = 0; i < sizeof msg_types / sizeof msg_types[0]; i++) {
		if (msg_types[i].type != type)
			continue;
		if ((out = json_object_new_object()) == NULL)
			fatalx("msg: out of memory");
		msg_pack_fields(msg_types[i].t, m, out);
		return out;
	}
	return NULL;
}

#define MSG_PAIR(name, type)                                                                       \
	json_object *msg_##name##_pack(const struct msg_##name *m)                                 \
	{                                                                                          \
		return msg_pack(type, m);                                                          \
	}                                                                                          \
	int msg_##name##_unpack(json_object *b, struct msg_##name *m, char *err, size_t errlen)    \
	{                                                                                          \
		return msg_unpack(type, b, m, err, errlen);                                        \
	}

MSG_PAIR(hello, MSG_HELLO)
MSG_PAIR(obj_set, MSG_OBJ_SET)
MSG_PAIR(obj_delete, MSG_OBJ_DELETE)
MSG_PAIR(action, MSG_ACTION)
MSG_PAIR(result, MSG_RESULT)
MSG_PAIR(leader, MSG_LEADER)
MSG_PAIR(pool_result, MSG_POOL_RESULT)
MSG_PAIR(pool_forget, MSG_POOL_FORGET)

/* WRITTEN has OBJ_SET's fields and struct */
json_object *msg_written_pack(const struct msg_obj_set *m)
{
	return msg_pack(MSG_WRITTEN, m);
}

int msg_written_unpack(json_object *b, struct msg_obj_set *m, char *err, size_t errlen)
{
	return msg_unpack(MSG_WRITTEN, b, m, err, errlen);
}

void msg_action_set_id(json_object *body, long long id)
{
	json_object_object_add(body, action_f[0].name, json_object_new_int64(id));
}

int msg_hello_check(json_object *b, struct msg_hello *h, char *err, size_t errlen)
{
	if (msg_hello_unpack(b, h, err, errlen) == -1)
		return -1;
	if (h->version != PROTO_VERSION) {
		snprintf(err, errlen, "protocol version %lld, we speak version %d", h->version,
		    PROTO_VERSION);
		return -1;
	}
	return 0;
}

json_object *msg_marker_pack(void)
{
	return msg_pack(MSG_SYNC_BEGIN, NULL);
}

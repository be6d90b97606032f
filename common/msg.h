/*
 * msg.h: the typed messages of proto.h. One C struct per message type and one strict
 * pack/unpack pair each; with codec.c (the bytes) this is the only code that knows a body's
 * layout. Each message's fields are one table in msg.c (name, type, required or optional,
 * where in the struct): adding a field is a struct member and a table row.
 *
 * Unpack checks that every required field is present with its type and that an optional
 * one, when present (and not null), has its type; unknown keys are ignored. On failure it
 * returns -1 with err naming the message and the field ("ACTION: namespace missing").
 * Strings and json values in an unpacked struct are borrowed from the body: valid until the
 * body is put (for a frame: until its handler returns).
 *
 * Pack returns a new body (a new reference): an optional string or json value is left out
 * when NULL, an optional integer or boolean when 0; a required string that is NULL is sent
 * as "". json values are referenced, not taken: the caller keeps its own reference.
 */
#ifndef VMPOOL_MSG_H
#define VMPOOL_MSG_H

#include <json-c/json.h>
#include <stddef.h>

/* HELLO, first frame each way; recorded_by is set in recordings (vmpoolctl record) */
struct msg_hello {
	long long version;
	const char *program;
	long long pid;
	const char *link;
	const char *recorded_by; /* optional */
};

/* SYNC_BEGIN, SYNC_END, PSYNC_BEGIN, PSYNC_END: an empty map (any keys ignored) */
struct msg_marker {
	int type; /* which one: the type msg_unpack was given */
};

/* OBJ_SET, and WRITTEN (the same fields): kind is one of KIND_* (checked by the receiver),
 * obj a map */
struct msg_obj_set {
	const char *kind;
	json_object *obj;
};

/* OBJ_DELETE: namespace and uid are optional (NULL: absent) */
struct msg_obj_delete {
	const char *kind;
	const char *ns;
	const char *name;
	const char *uid;
};

/* ACTION op: one of proto.h's ACT_* strings on the wire */
enum msg_op {
	MSG_OP_NONE = 0,
	MSG_OP_CREATE_VM,
	MSG_OP_DELETE_VM,
	MSG_OP_PATCH_VM,
	MSG_OP_PATCH_POOL,
	MSG_OP_EVENT,
	MSG_OP_UPDATE_VM,
	MSG_OP_DELETE_VMI,
	MSG_OP_PATCH_VMI,
	MSG_OP_CREATE_REV,
	MSG_OP_DELETE_REV,
	MSG_OP_PATCH_PVC,
	MSG_OP_PATCH_DV,
	MSG_OP_GET_LEASE,
};
const char *msg_op_name(enum msg_op);     /* the ACT_* string, or "?" */
enum msg_op msg_op_parse(const char *op); /* MSG_OP_NONE if unknown */

/* an Event {type, reason, message} an action carries; absent when type is NULL */
struct msg_event {
	const char *type;
	const char *reason;
	const char *message;
};

/* ACTION (proto.h's comment says what each field means) */
struct msg_action {
	long long id;
	enum msg_op op;
	const char *ns;
	const char *name;
	const char *uid;             /* optional */
	const char *pool_name;       /* pool {name, uid}: optional as a whole */
	const char *pool_uid;        /* optional inside pool */
	json_object *body;           /* optional map */
	json_object *patch;          /* optional array */
	json_object *unfinalize;     /* optional array (delete_vm) */
	const char *api_version;     /* optional */
	const char *propagation;     /* optional */
	struct msg_event event;      /* optional */
	struct msg_event fail_event; /* optional */
};

/* RESULT */
struct msg_result {
	long long id;
	int ok;
	long long status;
	const char *reason;
	const char *message;
	const char *rv; /* optional */
	int gone;       /* optional */
	int unknown;    /* optional */
	/* get_lease: the Lease's spec.holderIdentity and leaseDurationSeconds (optional) */
	const char *holder;
	long long duration;
};

/* LEADER */
struct msg_leader {
	int leading;
	const char *holder;
	const char *lease; /* optional, "<ns>/<name>" */
	int stopping;      /* optional */
};

/* POOL_RESULT */
struct msg_pool_result {
	const char *ns;
	const char *name;
	const char *uid;
	int ok;
	const char *reason;
	const char *message;
	const char *progress; /* optional: absent is unknown */
};

/* POOL_FORGET */
struct msg_pool_forget {
	const char *ns;
	const char *name;
};

/* room for any message's struct, for a generic dispatcher */
union msg_any {
	struct msg_hello hello;
	struct msg_marker marker;
	struct msg_obj_set obj_set;
	struct msg_obj_delete obj_delete;
	struct msg_action action;
	struct msg_result result;
	struct msg_leader leader;
	struct msg_pool_result pool_result;
	struct msg_pool_forget pool_forget;
};

/*
 * The generic pair: type is a MSG_* and m points at that type's struct. msg_unpack
 * accepts body NULL as {} (an empty marker). msg_pack returns NULL, msg_unpack -1, for a
 * type that has no message.
 */
json_object *msg_pack(int type, const void *m);
int msg_unpack(int type, json_object *body, void *m, char *err, size_t errlen);

/* the typed pairs */
json_object *msg_hello_pack(const struct msg_hello *);
int msg_hello_unpack(json_object *, struct msg_hello *, char *err, size_t errlen);
json_object *msg_obj_set_pack(const struct msg_obj_set *);
int msg_obj_set_unpack(json_object *, struct msg_obj_set *, char *err, size_t errlen);
json_object *msg_written_pack(const struct msg_obj_set *);
int msg_written_unpack(json_object *, struct msg_obj_set *, char *err, size_t errlen);
json_object *msg_obj_delete_pack(const struct msg_obj_delete *);
int msg_obj_delete_unpack(json_object *, struct msg_obj_delete *, char *err, size_t errlen);
json_object *msg_action_pack(const struct msg_action *);
int msg_action_unpack(json_object *, struct msg_action *, char *err, size_t errlen);
json_object *msg_result_pack(const struct msg_result *);
int msg_result_unpack(json_object *, struct msg_result *, char *err, size_t errlen);
json_object *msg_leader_pack(const struct msg_leader *);
int msg_leader_unpack(json_object *, struct msg_leader *, char *err, size_t errlen);
json_object *msg_pool_result_pack(const struct msg_pool_result *);
int msg_pool_result_unpack(json_object *, struct msg_pool_result *, char *err, size_t errlen);
json_object *msg_pool_forget_pack(const struct msg_pool_forget *);
int msg_pool_forget_unpack(json_object *, struct msg_pool_forget *, char *err, size_t errlen);
/* numbers an ACTION body packed earlier (the planner numbers an action as it sends it) */
void msg_action_set_id(json_object *body, long long id);
/* a HELLO that unpacks and speaks PROTO_VERSION: 0; else -1 with err naming the problem
 * (for another version: "protocol version 1, we speak version 2"); h is filled when the
 * body unpacked */
int msg_hello_check(json_object *, struct msg_hello *h, char *err, size_t errlen);
/* the four empty markers' body (unpacked with msg_unpack, which knows the type) */
json_object *msg_marker_pack(void);

#endif

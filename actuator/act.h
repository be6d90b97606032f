/*
 * act.h: the actuator's private header. act_parse() checks an ACTION body strictly (pure);
 * act_* below run one action against the API and answer RESULT on the planner's link.
 */
#ifndef VMPOOL_ACT_H
#define VMPOOL_ACT_H

#include <sys/queue.h>

#include <json-c/json.h>
#include <stddef.h>

struct kube;
struct link;
struct k8sev_recorder;

/* an optional {type, reason, message} to post; strings borrowed from the ACTION body */
struct act_ev {
	int set;
	const char *type;
	const char *reason;
	const char *message;
};

/* a checked ACTION; every pointer is borrowed from the body */
struct act_action {
	long long id;
	const char *op;
	const char *ns;
	const char *name;
	const char *uid;       /* NULL when absent */
	const char *pool_name; /* the Event's involvedObject */
	const char *pool_uid;
	const char *pool_api;    /* patch_pool: "pool.kubevirt.io/<version>", or NULL */
	json_object *body;       /* create_vm, create_rev: to POST; update_vm: to PUT */
	json_object *patch;      /* patch_*: an RFC 6902 JSON patch */
	const char *propagation; /* deletes: Foreground, Background, Orphan or NULL */
	json_object *unfinalize; /* delete_vm: a JSON patch sent once the DELETE succeeded */
	struct act_ev event;
	struct act_ev fail_event;
};

/* 0 when the body is a valid action; -1 with err filled (a->id is set when it was read) */
int act_parse(json_object *body, struct act_action *a, char *err, size_t errlen);

/* the RESULT body (new reference) */
json_object *act_result(long long id, int ok, long status, const char *reason, const char *message);

/* the running actuator */
struct act_req;
struct actuator {
	struct kube *kube; /* NULL in dry-run */
	struct k8sev_recorder *rec;
	int dry_run;
	long inflight;
	int leading; /* may write: always, or while holding the Lease (--leader-elect) */
	/* writes not handed to the client yet, oldest first (actrun.c) */
	TAILQ_HEAD(act_waitq, act_req) waiting;
	long nwaiting;
	int submitted; /* writes handed to the client and not answered */
	int pumping;   /* act_pump() runs: no nested pump */
	/* the object the API answered a create of a VM or ControllerRevision with (borrowed),
	 * after the RESULT: main.c sends it to the watcher (MSG_WRITTEN); NULL: nobody */
	void (*written)(const char *kind, json_object *obj, void *arg);
	void *written_arg;
};
/* an actuator zeroed (memset) needs this before its first action */
void act_init(struct actuator *);
/* at exit, after kube_free(): the writes still waiting are dropped, unanswered */
void act_drop_waiting(struct actuator *);

/* per planner connection; outstanding requests are detached when it goes */
struct act_conn;
struct act_conn *act_conn_new(struct actuator *, struct link *);
void act_conn_gone(struct act_conn *);
/* handles one ACTION frame (body borrowed) */
void act_handle(struct act_conn *, json_object *body);

/* metric families */
#define ACT_M_ACTIONS  "vmpool_actuator_actions_total"
#define ACT_M_INFLIGHT "vmpool_actuator_inflight"
#define ACT_M_EVENTS   "vmpool_actuator_events_total"
#define ACT_M_WAITING  "vmpool_actuator_waiting"
void act_metrics_declare(void);

#endif

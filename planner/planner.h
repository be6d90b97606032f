/*
 * planner.h: the planner's private interfaces. plan.c decides (pure), expect.c remembers
 * what was asked for until the cache shows it (pure, clock passed in), vmbuild.c builds the
 * VirtualMachine of SPEC 7 (pure). The dirty-pool work queue (queue.h, shared with
 * vmpool-status), the store (store.h: by name, uid and owner) and pmap.h are in common/.
 */
#ifndef VMPOOL_PLANNER_H
#define VMPOOL_PLANNER_H

#include <sys/queue.h>

#include <event2/event.h>
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"
#include "pmap.h"
#include "proto.h"
#include "queue.h" /* the dirty pools: common/queue.c */
#include "store.h"
#include "xmalloc.h" /* struct buf */

#define EXPECT_TTL    (5 * 60.0)
#define BURST_DEFAULT 250
/* VM creates out at once, all pools together: each is held by the planner (to be sent again
 * if the link drops) and waits in the actuator's FIFO until its API client has room (it hands
 * 200 on); 1,000 pools scaled out at once had about 1,500 actions out, 1,300 of them waiting
 * there */
#define CREATES_OUT_MAX 512

/* expect.c */
enum expect_kind {
	EXPECT_NONE = 0,
	EXPECT_CREATE,     /* key = VM name; until a VM of that name is in the cache */
	EXPECT_DELETE,     /* key = uid; until the VM is gone or terminating */
	EXPECT_PATCH,      /* key = uid + op; until RESULT ok and a new resourceVersion (or gone) */
	EXPECT_CREATE_REV, /* key = revision name; until the revision is in the cache */
};
struct expect;
struct expect *expect_new(double ttl);
void expect_free(struct expect *);
void expect_add(struct expect *, uint64_t id, const char *pool_key, enum expect_kind,
    const char *key, const char *op, const char *rv, double now);
/* a RESULT arrived: a failure removes the expectation at once. 1 if id was known. */
int expect_result(struct expect *, uint64_t id, int ok);
/* the same with the resourceVersion the API answered with (NULL: none): a patch then waits
 * until the cache shows that version or a later one, not just any other; gone: the write
 * let the API remove the object (it took the last finalizer of a deleted object), so the
 * patch waits until the object is gone from the cache */
int expect_result_rv(struct expect *, uint64_t id, int ok, const char *rv, int gone);
/* the outcome is unknown (the API's answer was lost): creates and deletes stay expected
 * until the cache shows them (or the TTL), patches are forgotten */
void expect_unknown(struct expect *, uint64_t id);
/* the actuator link dropped: every outcome still without a RESULT is unknown; forgets the
 * patches among them, keeps creates and deletes (their actions are sent again) */
size_t expect_link_lost(struct expect *);
void expect_drop_pool(struct expect *, const char *pool_key);
/* removes what the cache now shows as done; pool may be NULL, vms are the namespace's */
void expect_settle(struct expect *, const char *pool_key, json_object *pool, json_object **vms,
    size_t nvms, double now);
/* the same, looking VMs of the pool's namespace up instead of scanning them: each function
 * returns the VM of that name (uid) in the namespace, or NULL (borrowed) */
struct expect_view {
	json_object *(*by_name)(const char *name, void *arg);     /* VMs */
	json_object *(*by_uid)(const char *uid, void *arg);       /* any kind */
	json_object *(*rev_by_name)(const char *name, void *arg); /* NULL: settle at once */
	void *arg;
};
void expect_settle_view(struct expect *, const char *pool_key, json_object *pool,
    const struct expect_view *, double now);
/* removes expired expectations, calling fn with the pool key of each; returns how many */
size_t expect_expire(struct expect *, double now, void (*fn)(const char *, void *), void *);
/* unsatisfied create + delete expectations of the pool */
size_t expect_scale_pending(const struct expect *, const char *pool_key, double now);
/* the pool's creates the cache does not show yet (pool_key NULL: every pool's) */
size_t expect_creates_unseen(const struct expect *, const char *pool_key, double now);
int expect_create_pending(
    const struct expect *, const char *pool_key, const char *name, double now);
/* the keys (VM names of creates, uids of deletes) of the pool's live expectations of one
 * kind, as a set for lookups in a pass (the values are not to be used); pmap_free() it */
struct pmap *expect_pending_keys(
    const struct expect *, const char *pool_key, enum expect_kind, double now);
int expect_patch_pending(const struct expect *, const char *uid, const char *op, double now);
int expect_delete_pending(const struct expect *, const char *uid, double now);
/* a delete that also removes the finalizer (ACT_DELETE_VM with unfinalize) is observed only
 * once its RESULT is in too: until then the planner leaves the terminating VM alone */
void expect_needs_result(struct expect *, uint64_t id);
size_t expect_count(const struct expect *);

/* vmbuild.c: the VM for index i of the pool (SPEC 7); revision NULL adds no revision label */
json_object *vmbuild_vm(json_object *pool, long index, const char *revision);
char *vmbuild_name(const char *pool, long index);

/* plan.c */
struct plan_in {
	json_object *pool; /* NULL: the pool is gone */
	const char *key;   /* "<ns>/<name>" */
	/* the VMs of the pool's namespace whose controller is the pool, in store order */
	json_object **owned;
	size_t nowned;
	/* the namespace's VMs without a controller that carry the pool finalizer (Q7) */
	json_object **detached;
	size_t ndetached;
	/* 1 if ANY VM of the namespace (owned, foreign, orphan, terminating) has that name */
	int (*name_used)(const char *ns, const char *name, void *arg);
	void *name_arg;
	/* any object of the namespace by kind (KIND_VMI, KIND_REV, KIND_PVC, KIND_DV), or NULL */
	json_object *(*get)(const char *kind, const char *ns, const char *name, void *arg);
	void *get_arg;
	/* the namespace's ControllerRevisions whose controller is the pool */
	json_object **revs;
	size_t nrevs;
	/* -1: the planner did not remove this VM itself; else the statePreservation it used */
	int (*removed)(const char *uid, void *arg);
	void *removed_arg;
	struct expect *exp; /* read only */
	int burst;
	/* slow start: at most this many creates now (the pool's window less its creates out:
	 * not answered and not in the cache yet; 0: none); < 0: no slow start (replays, tests) */
	long create_room;
	unsigned int seed;
	double now;           /* monotonic, for expectations */
	double wallnow;       /* seconds since the epoch, for object timestamps */
	long long warned_gen; /* generation already warned about (InvalidSelector), or -1 */
};

struct plan_act {
	json_object *body; /* ACTION body without id */
	enum expect_kind kind;
	const char *ekey;   /* borrowed from body: VM name (create) or uid */
	char *rv;           /* resourceVersion seen (patches) */
	const char *reason; /* sync error reason if it fails; NULL: no condition */
	const char *prefix; /* sync error text before ": <err>" */
	int preserve;       /* ACT_DELETE_VM that removes a VM: its statePreservation, else -1 */
	int autoheal;       /* ACT_DELETE_VM of a failing VM (autohealing, SPEC 12) */
};

struct plan_out {
	struct plan_act *acts;
	size_t nacts, cap;
	int forget;  /* the pool is gone */
	int invalid; /* the pass failed now: reason / message */
	const char *reason;
	char *message;
	long long warned_gen;
	int gated;       /* expectations held back scaling */
	int create_held; /* the slow-start window held back creates (plan_in.create_room) */
	int ncreate, ndelete;
	double requeue_after; /* > 0: plan this pool again after so many seconds */
};

int plan_pool(const struct plan_in *, struct plan_out *);
void plan_out_clear(struct plan_out *);

/* planrun.c: the planner process state, one pass per dirty pool, results, publishing */
struct pstate {
	char *key;
	char *uid;
	int published; /* a POOL_RESULT went out */
	int ok;
	char *reason, *message;
	uint64_t pass; /* the latest pass that sent actions */
	int pending;   /* its actions still without RESULT */
	int failed;    /* one failed with a condition reason */
	int aborted;   /* one failed without one (finalizers, release) */
	char *fail_reason, *fail_message;
	long long warned_gen;
	const char *progress; /* PROGRESS_* or "" (nothing to do); NULL before the first pass */
	/* slow start for creates, as client-go's slowStartBatch: at most create_window creates
	 * are out at once (1, then every create that succeeds adds one: 1, 2, 4, ... up to the
	 * burst); a create's RESULT runs the pool's pass again, which sends the next ones while
	 * the watcher has not shown the earlier ones yet (they count as VMs: expectations);
	 * nothing is planned ahead and held. A failed create starts again at 1. */
	long create_window;
	long creating;   /* the pool's creates sent and not answered, of any pass (the room
	                  * counts no more of them than the cache does not show yet) */
	int create_held; /* its last pass: the window held creates back */
	int room_wait;   /* in planner.room_waits */
};

/* a pool whose creates wait for CREATES_OUT_MAX to have room */
struct room_wait {
	STAILQ_ENTRY(room_wait) entry;
	char *key;
};
STAILQ_HEAD(room_waits, room_wait);

struct planner {
	struct event_base *base;
	long burst;
	long seed;          /* >= 0: fixed seed (replays) */
	int actions_stdout; /* --actions -: print instead of sending */
	int replay_done;    /* --events: the whole file was applied */
	struct mirror *mirror;
	struct link *act;
	int elect;       /* --leader-elect: send only while the actuator says it leads */
	int act_leading; /* the actuator link is up and may write */
	struct pub *pub;
	struct expect *exp;
	struct queue *q;
	struct pmap *pools;   /* key -> struct pstate */
	struct pmap *uids;    /* pool uid -> key */
	struct pmap *out;     /* action id -> outstanding action */
	struct pmap *removed; /* VM uid -> struct removal: VMs this planner deleted */
	uint64_t next_id, next_pass;
	struct claims *claims; /* --pool-selector: this shard's claims (claim.c), else NULL */
	unsigned long passes;
	double pass_seconds;
	long creates_out;             /* VM creates in out (not answered), all pools */
	struct room_waits room_waits; /* first come, first planned again */
};

void planrun_init(struct planner *);
void planrun_clear(struct planner *);
void planrun_run(const char *key, void *arg); /* the queue's callback */
size_t planrun_owned(struct store *, const char *ns, const char *pool_uid, json_object ***vms);
size_t planrun_detached(struct store *, const char *ns, json_object ***vms);
void planrun_mark_all(struct planner *);
void planrun_changed(const char *kind, json_object *old, json_object *new_, void *arg);
void planrun_result(struct planner *, const struct msg_result *);
void planrun_link_lost(struct planner *);
/* the actuator link is up again: sends the creates and deletes the lost link left unknown */
void planrun_resend(struct planner *);
/* the actuator leads (may write) or no longer does: like the link coming up or going */
void planrun_leader(struct planner *, int leading);
/* --leader-elect: the actuator's term ended; forgets every outstanding action and expectation */
void planrun_term_over(struct planner *);
void planrun_snapshot(struct link *, void *arg);
void planrun_metrics_declare(void);
/* the pool key of an outstanding action (a value of planner.out) */
const char *planrun_outstanding_key(const void *);

/* claim.c: a shard plans a pool only while the pool's claim names its Lease (see there) */
void claim_init(struct planner *, const char *lease_name);
void claim_clear(struct planner *);
/* 1: plan the pool; 0: not ours (yet), the claim is asked for if nobody has it */
int claim_gate(struct planner *, const char *key, json_object *pool);
/* the pool left the picture: its claim goes once its actions are answered */
void claim_forget(struct planner *, const char *key);
/* lets go of the claims whose pools left and have no action out */
void claim_settle(struct planner *);
/* 1 if the RESULT with this id answered a claim patch (handled) */
int claim_result(struct planner *, const struct msg_result *, uint64_t id);
/* no RESULT will come for what was sent (link lost, term over) */
void claim_reset(struct planner *);
/* LEADER: while leading, claims name the Lease and this holder ("<ns>/<lease>/<id>") */
void claim_leader(struct planner *, const struct msg_leader *);

#endif

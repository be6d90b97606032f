/*
 * proto.h: the messages between stages. A frame is a 4-byte big-endian length and one
 * msgpack array [type, seq, body-map]. Types are numbered in blocks per link and never
 * reused; a new field is added, never repurposed. Bodies are carried in memory as json-c
 * objects (see codec.h); msg.h gives each message its struct and its one strict pack/unpack
 * pair, the only code besides codec.c that knows a body's field names.
 */
#ifndef VMPOOL_PROTO_H
#define VMPOOL_PROTO_H

#define PROTO_VERSION           2 /* 2: bodies checked by msg.c (typed messages) */
#define PROTO_MAX_FRAME_DEFAULT (4u * 1024 * 1024)

enum msg_type {
	/* every link, first frame each way */
	MSG_HELLO = 1, /* {version, program, pid, link} */

	/* watcher.sock: watcher -> subscribers */
	MSG_SYNC_BEGIN = 100, /* {} a full snapshot follows; forget everything */
	MSG_SYNC_END = 101,   /* {} the snapshot is complete */
	MSG_OBJ_SET = 102,    /* {kind, obj} object added or changed */
	MSG_OBJ_DELETE = 103, /* {kind, namespace, name, uid} */

	/* actuator.sock: planner -> actuator and back */
	MSG_ACTION = 200, /* see below */
	MSG_RESULT = 201, /* {id, ok, status, reason, message} */
	/* actuator -> every peer (planner, status), after HELLO and whenever it changes:
	 * {leading, holder[, stopping]}. With --leader-elect the planner sends actions and
	 * status writes only while the actuator says it leads (it holds the Lease); stopping:
	 * a leader's clean exit (SIGTERM), after which status stops too. */
	MSG_LEADER = 202,
	/* actuator -> the peers named vmpool-watcher: {kind, obj}, the object the API answered a
	 * create with (a VM or ControllerRevision), sent after the RESULT. The watcher keeps it
	 * as observed when its watch has not yet reached that resourceVersion (DESIGN.md,
	 * "Links"); a peer that did not ask for it (any other program) never gets it. */
	MSG_WRITTEN = 203,

	/* planner.sock: planner -> subscribers (status, taps) */
	MSG_PSYNC_BEGIN = 300, /* {} */
	MSG_PSYNC_END = 301,   /* {} */
	MSG_POOL_RESULT = 302, /* {namespace, name, uid, ok, reason, message, progress} */
	MSG_POOL_FORGET = 303, /* {namespace, name} */
};

const char *msg_type_name(int type); /* "HELLO", "OBJ_SET", ... or "UNKNOWN" */

/* link names carried in HELLO */
#define LINK_WATCHER  "watcher"
#define LINK_ACTUATOR "actuator"
#define LINK_PLANNER  "planner"
/* the watcher's program name, as its HELLO carries it: the peer of actuator.sock that gets
 * WRITTEN */
#define PROG_WATCHER "vmpool-watcher"

/* the pool API's kind and the finalizer the controller puts on pools and the VMs it owns */
#define POOL_KIND      "VirtualMachinePool"
#define POOL_FINALIZER "pool.kubevirt.io/finalizer"
/* a shard's claim on a pool: the Lease name of the shard that may act on it (DESIGN.md
 * "High availability", shards) */
#define SHARD_CLAIM "vmpoold.io/claimed-by"

/* object kinds in OBJ_SET / OBJ_DELETE */
#define KIND_POOL "pool" /* pool.kubevirt.io VirtualMachinePool */
#define KIND_VM   "vm"   /* kubevirt.io/v1 VirtualMachine */
#define KIND_VMI  "vmi"  /* kubevirt.io/v1 VirtualMachineInstance */
#define KIND_REV  "rev"  /* apps/v1 ControllerRevision (only those a pool controls) */
#define KIND_PVC  "pvc"  /* v1 PersistentVolumeClaim (metadata only, only VM-controlled) */
#define KIND_DV   "dv"   /* cdi.kubevirt.io/v1beta1 DataVolume (metadata only, VM-controlled) */

/*
 * ACTION body:
 *   id        int    unique per planner connection
 *   op        string one of ACT_*
 *   namespace string
 *   name      string object name (VM name; pool name for ACT_PATCH_POOL / ACT_EVENT)
 *   uid       string optional precondition (delete) / the object's uid
 *   pool      map    {name, uid}: the pool the action is for (the Event's involvedObject)
 *   body      map    ACT_CREATE_VM / ACT_CREATE_REV: the object to POST;
 *                    ACT_UPDATE_VM: the whole VirtualMachine to PUT (with resourceVersion)
 *   patch     array  ACT_PATCH_*: an RFC 6902 JSON patch
 *   api_version string optional, ACT_PATCH_POOL: the pool's apiVersion as listed
 *                    ("pool.kubevirt.io/v1beta1" or ".../v1alpha1"; absent: v1beta1)
 *   propagation string optional, deletes: "Foreground", "Background" or "Orphan"
 *                    (DeleteOptions.propagationPolicy; absent: the API's default)
 *   event     map    optional {type, reason, message}: Event to post when the action succeeds
 *   fail_event map   optional {type, reason, message}: on failure, posted with ": <error>"
 *                    appended to message
 * ACT_EVENT posts only `event`.
 * RESULT: rv (optional) is the resourceVersion of the object the API answered with (creates,
 * updates, patches); gone (optional, true) instead when that write took the last finalizer
 * of an object being deleted, which the API then removes. unknown (optional, true, with ok
 * false) says the outcome is not known: the request reached the API server and its answer
 * was lost, so the write may have happened; the planner then waits for the watcher to show
 * it, never counts it as failed. ok is true for success and for the idempotent outcomes
 * (create -> AlreadyExists,
 * delete/patch -> NotFound); status is the HTTP status (0 if none), reason the API's
 * Status.reason, message the API's message or the transport error.
 */
#define ACT_CREATE_VM  "create_vm"
#define ACT_DELETE_VM  "delete_vm"
#define ACT_PATCH_VM   "patch_vm"
#define ACT_PATCH_POOL "patch_pool"
#define ACT_EVENT      "event"
#define ACT_UPDATE_VM  "update_vm"  /* PUT the VM; 404 counts as success */
#define ACT_DELETE_VMI "delete_vmi" /* VirtualMachineInstance of that name; uid precondition */
#define ACT_PATCH_VMI  "patch_vmi"
#define ACT_CREATE_REV "create_rev" /* apps/v1 ControllerRevision; AlreadyExists is success */
#define ACT_DELETE_REV "delete_rev" /* uid precondition */
#define ACT_PATCH_PVC  "patch_pvc"  /* v1 PersistentVolumeClaim */
#define ACT_PATCH_DV   "patch_dv"   /* cdi.kubevirt.io/v1beta1 DataVolume */
/* reads a coordination.k8s.io/v1 Lease (namespace, name): another shard's, to judge its
 * claim; RESULT adds holder and duration (its spec) to rv; NotFound is ok (status 404) */
#define ACT_GET_LEASE "get_lease"

/* POOL_RESULT reason for a pool whose selector cannot be parsed or does not match its
 * template's labels. The planner posts its own Warning Event for it (once per generation),
 * so vmpool-status does not post another when it adds the ReplicaFailure condition. */
/* POOL_RESULT progress: what the planner's last pass did for the pool. "" when it found
 * nothing to do (the pool's objects are as its spec says), else one of these. Optional in
 * a frame (absent: unknown, e.g. an older planner). vmpool-status turns it into the Ready
 * and Progressing conditions. */
#define PROGRESS_SCALING_UP   "ScalingUp"
#define PROGRESS_SCALING_DOWN "ScalingDown"
#define PROGRESS_UPDATING     "Updating"

#define REASON_INVALID_SELECTOR "InvalidSelector"
/* RESULT reason of an ACTION a standby actuator (--leader-elect, not holding the Lease)
 * refused: nothing was done; the planner stops sending until LEADER says it leads */
#define REASON_NOT_LEADER "NotLeader"

/*
 * A pool the watcher cannot pass on whole (nested deeper than CODEC_OBJ_MAX_DEPTH) is
 * published as a stub: apiVersion, kind, metadata, spec.{replicas,selector,paused}, status
 * and OBJ_INVALID = {reason, message}. A real object never has that top-level key (the
 * API server prunes unknown root fields). The planner treats a stub like an invalid spec:
 * it touches nothing and reports POOL_RESULT failure with that reason and message, so
 * vmpool-status sets ReplicaFailure and posts the Warning Event.
 */
#define OBJ_INVALID           "vmpooldInvalidObject"
#define REASON_INVALID_OBJECT "InvalidObject"

#endif

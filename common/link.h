/*
 * link.h: Unix stream socket links between stages, on libevent. A link exchanges HELLO
 * first (version checked: a mismatch closes the link with a clear log line), then frames.
 * Every incoming frame is checked for size and for being a type this side accepts from
 * that peer before it is dispatched; a bad frame closes the link (the peer reconnects and
 * re-syncs). Servers create and check the run directory (rundir.h) and the socket (0600).
 * Both sides check the peer's uid (SO_PEERCRED): a server refuses clients, and a client
 * servers, that do not run as our effective uid. Clients reconnect by themselves with
 * backoff (0.1 s doubling to 5 s, reset only after a link stayed up 5 s, so a peer that
 * drops us at once is not retried 10 times a second). A peer that stops reading is dropped
 * once more than 16 x max_frame bytes are queued for it (plus the size of its last
 * snapshot, or of its last step, for pub).
 *
 * Ownership: the body passed to on_frame is borrowed until the callback returns.
 * A link may be freed from inside its own callbacks only through link_close().
 */
#ifndef VMPOOL_LINK_H
#define VMPOOL_LINK_H

#include <event2/event.h>
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

struct link;
struct link_server;

struct link_spec {
	const char *name;  /* LINK_WATCHER, LINK_ACTUATOR, LINK_PLANNER */
	const int *accept; /* types accepted from the peer, 0-terminated (HELLO implied) */
	size_t max_frame;  /* 0 = PROTO_MAX_FRAME_DEFAULT */
};

struct link_cb {
	/* HELLO exchanged: the link is usable */
	void (*up)(struct link *, void *arg);
	/* a checked frame arrived */
	void (*frame)(struct link *, int type, json_object *body, void *arg);
	/* the link is gone (peer closed, bad frame, write error). For a server-side link the
	 * struct is freed after this returns; a client link stays and reconnects. */
	void (*down)(struct link *, void *arg);
};

/* server side: path is the socket; its directory is created 0700 if missing */
struct link_server *link_listen(struct event_base *, const char *path, const struct link_spec *,
    const struct link_cb *, void *arg);
void link_server_free(struct link_server *);
/* calls fn for every link that is up */
void link_server_foreach(struct link_server *, void (*fn)(struct link *, void *), void *);

/* client side: connects now and again after every loss, with backoff */
struct link *link_connect(struct event_base *, const char *path, const struct link_spec *,
    const struct link_cb *, void *arg);
void link_free(struct link *); /* client links only */

/* 0 on success (queued), -1 if the link is not up */
int link_send(struct link *, int type, json_object *body);
/* the body {kind, obj} with obj's msgpack bytes sent as they are (a store record's) */
int link_send_obj(struct link *, int type, const char *kind, const unsigned char *obj, size_t len);
int link_is_up(const struct link *);
/* closes the connection (a client reconnects later); safe inside callbacks */
void link_close(struct link *, const char *why);
const char *link_peer_program(const struct link *); /* from the peer's HELLO, or "?" */
size_t link_outbuf_len(const struct link *);
void link_set_data(struct link *, void *); /* per-connection user pointer */
void *link_get_data(const struct link *);

/* the run directory: --run-dir, else $XDG_RUNTIME_DIR/vmpoold, else /tmp/vmpoold-$UID */
char *link_default_run_dir(void);
char *link_sock_path(const char *run_dir, const char *name); /* <dir>/<name>.sock */

/*
 * pub: a publisher of snapshot-then-deltas. A new subscriber is held until the publisher
 * is ready, then gets the whole picture: with pub_new, snapshot(link) sends it at once
 * (the caller sends the begin/end markers and objects with link_send); with
 * pub_new_paced, as a paced stream: step(link, cur) sends from the cursor on while
 * pub_room() says the subscriber's output has room, moves the cursor past what it sent and
 * returns 1 once it sent the end marker (0: not done, called again when the output has
 * drained to PUB_SNAP_LOW). So a subscriber holds at most PUB_SNAP_HIGH plus one object of
 * its snapshot queued, however large the picture. pub_broadcast goes to every subscriber
 * that had its snapshot or is getting it; pub_broadcast_obj to those, but for a
 * subscriber whose snapshot has not passed at yet, nothing: its cursor sends the object
 * as it is when it gets there. pub_resync() sends a fresh snapshot to everyone.
 */
#define PUB_SNAP_HIGH (256 * 1024) /* a step stops once this much is queued */
#define PUB_SNAP_LOW  (64 * 1024)  /* the next step runs when the output drained to this */

/* a place in a paced snapshot: the part (the publisher's kinds, in order) and an object's
 * place in it (0: before the first), in an order that new objects enter at the end */
struct pub_pos {
	size_t part;
	uint64_t seq;
};
struct pub_cursor {
	int begun;         /* the begin marker went */
	struct pub_pos at; /* everything up to here went */
};

struct pub;
struct pub *pub_new(struct event_base *, const char *path, const struct link_spec *,
    void (*snapshot)(struct link *, void *), void *arg);
struct pub *pub_new_paced(struct event_base *, const char *path, const struct link_spec *,
    int (*step)(struct link *, struct pub_cursor *, void *), void *arg);
void pub_free(struct pub *);
void pub_set_ready(struct pub *, int ready);
void pub_broadcast(struct pub *, int type, json_object *body);
/* pub_broadcast of link_send_obj's body, the same bytes to every subscriber, the object
 * at `at` in the snapshot order (NULL: to every subscriber as pub_broadcast) */
void pub_broadcast_obj(struct pub *, const struct pub_pos *at, int type, const char *kind,
    const unsigned char *obj, size_t len);
void pub_resync(struct pub *);
int pub_subscribers(const struct pub *);
/* 1 while a paced step may queue more for this subscriber */
int pub_room(const struct link *);
/* the most bytes queued for one subscriber now */
size_t pub_queued(const struct pub *);

#endif

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
 * snapshot, for pub).
 *
 * Ownership: the body passed to on_frame is borrowed until the callback returns.
 * A link may be freed from inside its own callbacks only through link_close().
 */
#ifndef VMPOOL_LINK_H
#define VMPOOL_LINK_H

#include <event2/event.h>
#include <json-c/json.h>
#include <stddef.h>

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
 * is ready, then snapshot(link) is called to send the whole picture (the caller sends the
 * begin/end markers and objects with link_send). pub_broadcast goes to every subscriber
 * that already had its snapshot. pub_resync() sends a fresh snapshot to everyone.
 */
struct pub;
struct pub *pub_new(struct event_base *, const char *path, const struct link_spec *,
    void (*snapshot)(struct link *, void *), void *arg);
void pub_free(struct pub *);
void pub_set_ready(struct pub *, int ready);
void pub_broadcast(struct pub *, int type, json_object *body);
/* pub_broadcast of link_send_obj's body: the same bytes to every subscriber */
void pub_broadcast_obj(
    struct pub *, int type, const char *kind, const unsigned char *obj, size_t len);
void pub_resync(struct pub *);
int pub_subscribers(const struct pub *);

#endif

/*
 * link.c: Unix stream socket links between stages on one libevent base, and the
 * snapshot-then-deltas publisher (pub_*) built on them.
 *
 * A link is a small state machine: idle (client waiting to reconnect) -> connecting ->
 * hello (connected, HELLO sent, waiting for the peer's) -> up -> closed. Every incoming
 * frame is size-capped before it is buffered in full, decoded strictly by codec.c and
 * checked against the types this side accepts; anything else closes the connection.
 * Server-side links are freed from a deferred event so link_close() is safe inside
 * callbacks; client links stay and reconnect with backoff.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/queue.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backoff.h"
#include "codec.h"
#include "link.h"
#include "log.h"
#include "msg.h"
#include "proto.h"
#include "rundir.h"
#include "xmalloc.h"
#include "timeutil.h"

#define LINK_OUTBUF_FRAMES 16 /* a peer that stops reading: this many --max-frame queued */
#define LINK_BACKOFF_BASE  0.1
#define LINK_BACKOFF_CAP   5.0
#define LINK_HELLO_TIMEOUT 10  /* seconds to wait for the peer's HELLO */
#define LINK_HEALTHY       5.0 /* seconds up before a loss resets the reconnect backoff */
#define LINK_BACKLOG       128

enum link_state {
	LINK_IDLE,       /* client: not connected, a retry is scheduled */
	LINK_CONNECTING, /* client: connect() in progress */
	LINK_HELLO,      /* connected, our HELLO sent, waiting for the peer's */
	LINK_UP,         /* HELLO exchanged */
	LINK_DEAD,       /* server side: closed, freed by the reap event */
};

static const char *link_state_names[] = {"idle", "connecting", "hello", "up", "dead"};

/* pub: where a subscriber's snapshot is */
enum pub_snap {
	PUB_HELD,    /* none yet: the publisher is not ready */
	PUB_SENDING, /* a paced snapshot is in progress, at cur */
	PUB_SYNCED,  /* the whole snapshot is queued: deltas follow */
};

struct link {
	struct event_base *base;
	struct link_spec spec;
	struct link_cb cb;
	void *arg;
	struct link_server *server; /* NULL for a client link */
	char *path;                 /* the socket */
	enum link_state state;
	struct bufferevent *bev;
	struct event *timer; /* client: reconnect; server: deferred free */
	struct backoff bo;
	int failures; /* connect failures since the last HELLO */
	double up_at; /* now_mono() when HELLO completed */
	uint64_t seq; /* frames we sent on this connection */
	char *peer;   /* program from the peer's HELLO */
	long peer_pid;
	void *data;
	enum pub_snap snap;    /* pub: this subscriber's snapshot */
	struct pub_cursor cur; /* pub: how far it went, while PUB_SENDING */
	int bulk;              /* pub: a snapshot is being queued, no backlog check */
	size_t slack;   /* pub: bytes of the last snapshot (or step), allowed on top of the cap */
	struct buf out; /* scratch for packing */
	TAILQ_ENTRY(link) entry;
};

struct link_server {
	struct event_base *base;
	struct link_spec spec;
	struct link_cb cb;
	void *arg;
	char *path;
	struct evconnlistener *listener;
	struct event *pause; /* re-enables accept after an accept error */
	TAILQ_HEAD(, link) links;
};

struct pub {
	struct link_server *srv;
	void (*snapshot)(struct link *, void *);                 /* all at once, or */
	int (*step)(struct link *, struct pub_cursor *, void *); /* paced */
	void *arg;
	int ready;
};

static void link_start(struct link *);
static void link_teardown(struct link *);
static void pub_step(struct pub *, struct link *);

/* writes to a closed socket must come back as EPIPE, not kill the process */
static void link_ignore_sigpipe(void)
{
	static int done;

	if (!done) {
		signal(SIGPIPE, SIG_IGN);
		done = 1;
	}
}

static const char *link_peer(const struct link *l)
{
	return l->peer != NULL ? log_escape(l->peer) : "?";
}

static void link_set_state(struct link *l, enum link_state state)
{
	if (l->state == state)
		return;
	log_debug(NULL, "link %s: %s -> %s (%s)", l->spec.name, link_state_names[l->state],
	    link_state_names[state], l->path);
	l->state = state;
}

static struct link *link_new(struct event_base *base, const char *path,
    const struct link_spec *spec, const struct link_cb *cb, void *arg)
{
	struct link *l;

	l = xcalloc(1, sizeof *l);
	l->base = base;
	l->spec = *spec;
	if (l->spec.max_frame == 0)
		l->spec.max_frame = PROTO_MAX_FRAME_DEFAULT;
	if (cb != NULL)
		l->cb = *cb;
	l->arg = arg;
	l->path = xstrdup(path);
	l->peer_pid = -1;
	backoff_init(&l->bo, LINK_BACKOFF_BASE, LINK_BACKOFF_CAP);
	return l;
}

/* frees everything without running callbacks */
static void link_destroy(struct link *l)
{
	if (l->bev != NULL)
		bufferevent_free(l->bev);
	if (l->timer != NULL)
		event_free(l->timer);
	free(l->path);
	free(l->peer);
	buf_clear(&l->out);
	free(l);
}

/* closes with a warning: the peer or its bytes misbehaved */
static void link_fail(struct link *, const char *, ...) __attribute__((format(printf, 2, 3)));

static void link_fail(struct link *l, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_warnx(NULL, "link %s: %s; closing", l->spec.name, msg);
	link_teardown(l);
}

void link_close(struct link *l, const char *why)
{
	if (l == NULL || l->state == LINK_DEAD || l->state == LINK_IDLE)
		return;
	log_info(NULL, "link %s: closing connection with %s: %s", l->spec.name, link_peer(l),
	    why != NULL ? why : "closed");
	link_teardown(l);
}

/* packs and queues one frame; frames over the cap are refused, not sent */
/* sends the frame packed into l->out */
static int link_write_out(struct link *l, int type)
{
	size_t queued;

	if (l->out.len - 4 > l->spec.max_frame) {
		log_warnx(NULL, "link %s: not sending %s of %zu bytes to %s: over the %zu-byte cap",
		    l->spec.name, msg_type_name(type), l->out.len, link_peer(l), l->spec.max_frame);
		return -1;
	}
	l->seq++;
	if (bufferevent_write(l->bev, l->out.data, l->out.len) == -1) {
		link_fail(l, "cannot queue %s for %s", msg_type_name(type), link_peer(l));
		return -1;
	}
	if (l->out.cap > 2 * l->spec.max_frame) /* do not keep a huge scratch around */
		buf_clear(&l->out);
	/* a peer that stops reading is dropped, not buffered without bound; a subscriber
	 * reconnects and gets a fresh snapshot */
	queued = evbuffer_get_length(bufferevent_get_output(l->bev));
	if (!l->bulk && queued > LINK_OUTBUF_FRAMES * l->spec.max_frame + l->slack) {
		link_fail(l, "%s is not reading: %zu bytes queued (cap %zu)", link_peer(l), queued,
		    LINK_OUTBUF_FRAMES * l->spec.max_frame + l->slack);
		return -1;
	}
	return 0;
}

static int link_write(struct link *l, int type, json_object *body)
{
	l->out.len = 0;
	codec_pack(&l->out, type, l->seq, body);
	return link_write_out(l, type);
}

int link_send(struct link *l, int type, json_object *body)
{
	if (l == NULL || l->state != LINK_UP)
		return -1;
	return link_write(l, type, body);
}

int link_send_obj(struct link *l, int type, const char *kind, const unsigned char *obj, size_t len)
{
	if (l == NULL || l->state != LINK_UP)
		return -1;
	l->out.len = 0;
	codec_pack_obj(&l->out, type, l->seq, kind, obj, len);
	return link_write_out(l, type);
}

static int link_send_hello(struct link *l)
{
	const char *program = log_procname();
	struct msg_hello h = {PROTO_VERSION, program ? program : "?", getpid(), l->spec.name, NULL};
	json_object *o = msg_hello_pack(&h);
	int rv;

	rv = link_write(l, MSG_HELLO, o);
	json_object_put(o);
	return rv;
}

/* the first frame from the peer: HELLO with our version and link name */
static void link_hello(struct link *l, const struct frame *f)
{
	struct msg_hello h;
	char err[256];

	if (f->type != MSG_HELLO) {
		link_fail(l, "expected HELLO, got %s (%d)", msg_type_name(f->type), f->type);
		return;
	}
	if (msg_hello_check(f->body, &h, err, sizeof err) == -1) {
		if (h.program != NULL) {
			free(l->peer);
			l->peer = xstrdup(h.program);
		}
		link_fail(l, "%s speaks %s", link_peer(l), err);
		return;
	}
	free(l->peer);
	l->peer = xstrdup(h.program);
	l->peer_pid = (long)h.pid;
	if (strcmp(h.link, l->spec.name) != 0) {
		link_fail(l, "%s says it is on link \"%s\"", link_peer(l), log_escape(h.link));
		return;
	}
	link_set_state(l, LINK_UP);
	bufferevent_set_timeouts(l->bev, NULL, NULL);
	l->failures = 0;
	l->up_at = now_mono();
	log_info(NULL, "link %s: up with %s (pid %ld)", l->spec.name, link_peer(l), l->peer_pid);
	if (l->cb.up != NULL)
		l->cb.up(l, l->arg);
}

static int link_accepts(const struct link *l, int type)
{
	const int *t;

	for (t = l->spec.accept; t != NULL && *t != 0; t++) {
		if (*t == type)
			return 1;
	}
	return 0;
}

static void link_dispatch(struct link *l, const struct frame *f)
{
	if (l->state == LINK_HELLO) {
		link_hello(l, f);
		return;
	}
	if (!link_accepts(l, f->type)) {
		link_fail(l, "unexpected frame %s (%d) from %s", msg_type_name(f->type), f->type,
		    link_peer(l));
		return;
	}
	if (l->cb.frame != NULL)
		l->cb.frame(l, f->type, f->body, l->arg);
}

/* decodes and dispatches one frame: 1 done, 0 need more bytes, -1 the link was closed */
static int link_read_frame(struct link *l, struct evbuffer *in)
{
	unsigned char hdr[4], *p;
	char err[256];
	struct frame f;
	size_t have = evbuffer_get_length(in), n;
	long r;

	if (have < 4)
		return 0;
	evbuffer_copyout(in, hdr, 4);
	/* the length alone: over the cap is refused before the frame is buffered */
	if (codec_unpack(hdr, 4, l->spec.max_frame, &f, err, sizeof err) == -1) {
		link_fail(l, "bad frame from %s: %s", link_peer(l), err);
		return -1;
	}
	n = 4 + ((size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3]);
	if (have < n)
		return 0;
	p = evbuffer_pullup(in, (ev_ssize_t)n);
	r = codec_unpack(p, n, l->spec.max_frame, &f, err, sizeof err);
	if (r <= 0) {
		link_fail(l, "bad frame from %s: %s", link_peer(l), r == 0 ? "incomplete" : err);
		return -1;
	}
	evbuffer_drain(in, (size_t)r);
	link_dispatch(l, &f);
	frame_clear(&f);
	return 1;
}

static void link_readcb(struct bufferevent *bev, void *arg)
{
	struct link *l = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	/* a callback may close the link: stop as soon as it is no longer this connection */
	while (l->bev == bev && (l->state == LINK_HELLO || l->state == LINK_UP)) {
		if (link_read_frame(l, in) != 1)
			break;
	}
}

/* the peer must run as our uid: a server checks its clients, a client its server */
static int link_check_peer(const char *name, int fd, const char *what)
{
	struct ucred cr;
	socklen_t len = sizeof cr;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == -1) {
		log_warn(NULL, "link %s: SO_PEERCRED", name);
		return -1;
	}
	if (cr.uid != geteuid()) {
		log_warnx(NULL, "link %s: refusing %s pid %ld: uid %lu is not ours (%lu)", name,
		    what, (long)cr.pid, (unsigned long)cr.uid, (unsigned long)geteuid());
		return -1;
	}
	return 0;
}

static void link_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct link *l = arg;
	int error = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED) {
		/* a server in a squatted run directory must not feed us (or take our actions) */
		if (link_check_peer(l->spec.name, bufferevent_getfd(bev), "server") == -1) {
			link_teardown(l);
			return;
		}
		link_start(l);
		return;
	}
	if (l->state == LINK_CONNECTING) {
		if (l->failures++ == 0)
			log_info(NULL, "link %s: cannot connect to %s: %s; retrying", l->spec.name,
			    l->path, strerror(error));
		link_teardown(l);
	} else if (what & BEV_EVENT_TIMEOUT)
		link_fail(l, "no HELLO from %s within %d s", link_peer(l), LINK_HELLO_TIMEOUT);
	else if (what & BEV_EVENT_EOF)
		link_close(l, "the peer closed the connection");
	else
		link_fail(l, "connection with %s: %s", link_peer(l), strerror(error));
}

/* the output drained to its low watermark: a paced snapshot goes on (server links of a
 * pub, whose arg is the pub) */
static void link_writecb(struct bufferevent *bev, void *arg)
{
	struct link *l = arg;

	if (l->state == LINK_UP && l->snap == PUB_SENDING && l->server != NULL)
		pub_step(l->arg, l);
}

/* connected: send HELLO and wait for the peer's */
static void link_start(struct link *l)
{
	struct timeval tv = {LINK_HELLO_TIMEOUT, 0};

	link_set_state(l, LINK_HELLO);
	l->seq = 0;
	bufferevent_setcb(l->bev, link_readcb, link_writecb, link_eventcb, l);
	bufferevent_set_timeouts(l->bev, &tv, NULL);
	bufferevent_enable(l->bev, EV_READ | EV_WRITE);
	link_send_hello(l);
}

static void link_retry_later(struct link *l)
{
	double d = backoff_next(&l->bo);
	struct timeval tv;

	tv = secs_to_tv(d);
	evtimer_add(l->timer, &tv);
}

/* drops the connection; a server link is reaped later, a client link retries */
static void link_teardown(struct link *l)
{
	int was_up = l->state == LINK_UP;

	if (l->state == LINK_DEAD || l->state == LINK_IDLE)
		return;
	if (l->bev != NULL) {
		bufferevent_free(l->bev);
		l->bev = NULL;
	}
	l->snap = PUB_HELD;
	if (l->server != NULL) {
		link_set_state(l, LINK_DEAD);
		event_active(l->timer, EV_TIMEOUT, 1);
	} else {
		/* not on each handshake: a peer that drops us at once (a frame we refuse, say)
		 * must not make us reconnect ten times a second */
		if (was_up && now_mono() - l->up_at >= LINK_HEALTHY)
			backoff_reset(&l->bo);
		link_set_state(l, LINK_IDLE);
		link_retry_later(l);
	}
	if (was_up && l->cb.down != NULL)
		l->cb.down(l, l->arg);
}

static int link_sockaddr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof *sun);
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun->sun_path) {
		log_warnx(NULL, "socket path %s is too long", log_escape(path));
		return -1;
	}
	memcpy(sun->sun_path, path, strlen(path) + 1);
	return 0;
}

static void link_connect_now(struct link *l)
{
	struct sockaddr_un sun;
	int fd;

	link_set_state(l, LINK_CONNECTING);
	if (link_sockaddr(l->path, &sun) == -1 ||
	    (fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		if (l->failures++ == 0)
			log_warn(NULL, "link %s: socket", l->spec.name);
		link_teardown(l);
		return;
	}
	l->bev = bufferevent_socket_new(l->base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(l->bev, link_readcb, NULL, link_eventcb, l);
	if (bufferevent_socket_connect(l->bev, (struct sockaddr *)&sun, sizeof sun) == -1) {
		if (l->failures++ == 0)
			log_info(NULL, "link %s: cannot connect to %s: %s; retrying", l->spec.name,
			    l->path, strerror(errno));
		link_teardown(l);
	}
}

static void link_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	link_connect_now(arg);
}

struct link *link_connect(struct event_base *base, const char *path, const struct link_spec *spec,
    const struct link_cb *cb, void *arg)
{
	struct link *l;

	link_ignore_sigpipe();
	l = link_new(base, path, spec, cb, arg);
	l->timer = evtimer_new(base, link_retry_cb, l);
	link_connect_now(l);
	return l;
}

void link_free(struct link *l)
{
	if (l == NULL)
		return;
	if (l->server != NULL) {
		log_warnx(
		    NULL, "link %s: link_free on a server link; closing it instead", l->spec.name);
		link_close(l, "freed");
		return;
	}
	link_destroy(l);
}

int link_is_up(const struct link *l)
{
	return l != NULL && l->state == LINK_UP;
}

const char *link_peer_program(const struct link *l)
{
	return l != NULL && l->peer != NULL ? l->peer : "?";
}

size_t link_outbuf_len(const struct link *l)
{
	if (l == NULL || l->bev == NULL)
		return 0;
	return evbuffer_get_length(bufferevent_get_output(l->bev));
}

void link_set_data(struct link *l, void *data)
{
	l->data = data;
}

void *link_get_data(const struct link *l)
{
	return l->data;
}

/* server side ---------------------------------------------------------------------------- */

/* removes a socket left by a dead server; refuses if a server still answers on it */
static int link_unlink_stale(const char *path, const struct sockaddr_un *sun)
{
	struct stat st;
	int fd, live;

	if (lstat(path, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		log_warn(NULL, "%s", log_escape(path));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_warnx(NULL, "%s exists and is not a socket", log_escape(path));
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		log_warn(NULL, "socket");
		return -1;
	}
	live = connect(fd, (const struct sockaddr *)sun, sizeof *sun) == 0 || errno == EAGAIN;
	close(fd);
	if (live) {
		log_warnx(NULL, "%s is in use by a running server", log_escape(path));
		return -1;
	}
	if (unlink(path) == -1 && errno != ENOENT) {
		log_warn(NULL, "unlink %s", log_escape(path));
		return -1;
	}
	return 0;
}

/* the listening socket: run directory checked (rundir.h), stale socket removed, socket 0600 */
static int link_bind(const char *path)
{
	struct sockaddr_un sun;
	char *dir, *slash, err[512];
	int fd, rv;

	if (link_sockaddr(path, &sun) == -1)
		return -1;
	dir = xstrdup(path);
	rv = 0;
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if ((rv = rundir_check(dir, err, sizeof err)) == -1)
			log_warnx(NULL, "%s", err);
	}
	free(dir);
	if (rv == -1 || link_unlink_stale(path, &sun) == -1)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		log_warn(NULL, "socket");
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) == -1 || chmod(path, 0600) == -1 ||
	    listen(fd, LINK_BACKLOG) == -1) {
		log_warn(NULL, "listen on %s", log_escape(path));
		close(fd);
		return -1;
	}
	return fd;
}

static void link_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct link *l = arg;

	TAILQ_REMOVE(&l->server->links, l, entry);
	link_destroy(l);
}

static void link_accept_cb(
    struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct link_server *s = arg;
	struct link *l;

	if (link_check_peer(s->spec.name, fd, "client") == -1) {
		close(fd);
		return;
	}
	l = link_new(s->base, s->path, &s->spec, &s->cb, s->arg);
	l->server = s;
	l->timer = evtimer_new(s->base, link_reap_cb, l);
	l->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	TAILQ_INSERT_TAIL(&s->links, l, entry);
	link_start(l);
}

static void link_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct link_server *s = arg;

	evconnlistener_enable(s->listener);
}

/* accept failed (EMFILE...): pause a second instead of spinning on a readable socket */
static void link_accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct link_server *s = arg;
	struct timeval tv = {1, 0};

	log_warn(NULL, "link %s: accept on %s", s->spec.name, s->path);
	evconnlistener_disable(lev);
	evtimer_add(s->pause, &tv);
}

struct link_server *link_listen(struct event_base *base, const char *path,
    const struct link_spec *spec, const struct link_cb *cb, void *arg)
{
	struct link_server *s;
	int fd;

	link_ignore_sigpipe();
	if ((fd = link_bind(path)) == -1)
		return NULL;
	s = xcalloc(1, sizeof *s);
	s->base = base;
	s->spec = *spec;
	if (s->spec.max_frame == 0)
		s->spec.max_frame = PROTO_MAX_FRAME_DEFAULT;
	if (cb != NULL)
		s->cb = *cb;
	s->arg = arg;
	s->path = xstrdup(path);
	TAILQ_INIT(&s->links);
	s->pause = evtimer_new(base, link_resume_cb, s);
	s->listener = evconnlistener_new(
	    base, link_accept_cb, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (s->listener == NULL) {
		log_warnx(NULL, "link %s: cannot listen on %s", spec->name, log_escape(path));
		close(fd);
		event_free(s->pause);
		free(s->path);
		free(s);
		return NULL;
	}
	evconnlistener_set_error_cb(s->listener, link_accept_error_cb);
	log_info(NULL, "link %s: listening on %s", spec->name, log_escape(path));
	return s;
}

void link_server_free(struct link_server *s)
{
	struct link *l;

	if (s == NULL)
		return;
	while ((l = TAILQ_FIRST(&s->links)) != NULL) {
		TAILQ_REMOVE(&s->links, l, entry);
		link_destroy(l);
	}
	evconnlistener_free(s->listener);
	event_free(s->pause);
	unlink(s->path);
	free(s->path);
	free(s);
}

void link_server_foreach(struct link_server *s, void (*fn)(struct link *, void *), void *arg)
{
	struct link *l;

	/* closed links stay in the list until reaped, so fn may close any of them */
	TAILQ_FOREACH(l, &s->links, entry)
	{
		if (l->state == LINK_UP)
			fn(l, arg);
	}
}

/* paths ------------------------------------------------------------------------------------ */

char *link_default_run_dir(void)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char *dir;

	if (xdg != NULL && *xdg == '/')
		xasprintf(&dir, "%s/vmpoold", xdg);
	else
		xasprintf(&dir, "/tmp/vmpoold-%lu", (unsigned long)getuid());
	return dir;
}

char *link_sock_path(const char *run_dir, const char *name)
{
	char *path;

	xasprintf(&path, "%s/%s.sock", run_dir, name);
	return path;
}

/* pub ---------------------------------------------------------------------------------------- */

/*
 * One step of a subscriber's snapshot: all of it (pub_new), or as much as the output has
 * room for (pub_new_paced; the next step runs from link_writecb). What a step queues may
 * be larger than the backlog cap: its size is allowed on top of the cap, so a big
 * snapshot does not drop its subscriber.
 */
static void pub_step(struct pub *p, struct link *l)
{
	size_t before = link_outbuf_len(l), after;
	int done = 1;

	l->bulk = 1;
	if (p->step != NULL)
		done = p->step(l, &l->cur, p->arg);
	else
		p->snapshot(l, p->arg);
	l->bulk = 0;
	if (l->state != LINK_UP)
		return; /* it failed while we wrote */
	after = link_outbuf_len(l);
	l->slack = after > before ? after - before : 0;
	if (done)
		l->snap = PUB_SYNCED;
	else if (pub_room(l)) /* a step stops only when the output is full */
		fatalx("link %s: a snapshot step stopped with room left", l->spec.name);
}

/* a (new) snapshot from the start */
static void pub_sync(struct pub *p, struct link *l)
{
	l->snap = PUB_SENDING;
	memset(&l->cur, 0, sizeof l->cur);
	if (p->step != NULL)
		bufferevent_setwatermark(l->bev, EV_WRITE, PUB_SNAP_LOW, 0);
	pub_step(p, l);
}

int pub_room(const struct link *l)
{
	return l != NULL && l->state == LINK_UP && link_outbuf_len(l) < PUB_SNAP_HIGH;
}

static void pub_up(struct link *l, void *arg)
{
	struct pub *p = arg;

	if (p->ready)
		pub_sync(p, l);
}

static struct pub *pub_start(
    struct event_base *base, const char *path, const struct link_spec *spec, struct pub *p)
{
	static const struct link_cb cb = {pub_up, NULL, NULL};

	if ((p->srv = link_listen(base, path, spec, &cb, p)) == NULL) {
		free(p);
		return NULL;
	}
	return p;
}

struct pub *pub_new(struct event_base *base, const char *path, const struct link_spec *spec,
    void (*snapshot)(struct link *, void *), void *arg)
{
	struct pub *p = xcalloc(1, sizeof *p);

	p->snapshot = snapshot;
	p->arg = arg;
	return pub_start(base, path, spec, p);
}

struct pub *pub_new_paced(struct event_base *base, const char *path, const struct link_spec *spec,
    int (*step)(struct link *, struct pub_cursor *, void *), void *arg)
{
	struct pub *p = xcalloc(1, sizeof *p);

	p->step = step;
	p->arg = arg;
	return pub_start(base, path, spec, p);
}

void pub_free(struct pub *p)
{
	if (p == NULL)
		return;
	link_server_free(p->srv);
	free(p);
}

/* subscribers held while not ready get their snapshot now */
void pub_set_ready(struct pub *p, int ready)
{
	struct link *l;

	p->ready = ready;
	if (!ready)
		return;
	TAILQ_FOREACH(l, &p->srv->links, entry)
	{
		if (l->state == LINK_UP && l->snap == PUB_HELD)
			pub_sync(p, l);
	}
}

void pub_broadcast(struct pub *p, int type, json_object *body)
{
	struct link *l;

	TAILQ_FOREACH(l, &p->srv->links, entry)
	{
		if (l->state == LINK_UP && l->snap != PUB_HELD)
			link_send(l, type, body);
	}
}

/* 1 if the subscriber was sent what is at `at` (NULL: anything), or will never be */
static int pub_passed(const struct link *l, const struct pub_pos *at)
{
	if (l->snap != PUB_SENDING || at == NULL)
		return l->snap != PUB_HELD;
	return at->part < l->cur.at.part ||
	       (at->part == l->cur.at.part && at->seq <= l->cur.at.seq);
}

void pub_broadcast_obj(struct pub *p, const struct pub_pos *at, int type, const char *kind,
    const unsigned char *obj, size_t len)
{
	struct link *l;

	TAILQ_FOREACH(l, &p->srv->links, entry)
	{
		if (l->state == LINK_UP && pub_passed(l, at))
			link_send_obj(l, type, kind, obj, len);
	}
}

void pub_resync(struct pub *p)
{
	struct link *l;

	if (!p->ready)
		return;
	TAILQ_FOREACH(l, &p->srv->links, entry)
	{
		if (l->state == LINK_UP)
			pub_sync(p, l);
	}
}

size_t pub_queued(const struct pub *p)
{
	const struct link *l;
	size_t n, most = 0;

	TAILQ_FOREACH(l, &p->srv->links, entry)
	{
		if (l->state == LINK_UP && (n = link_outbuf_len(l)) > most)
			most = n;
	}
	return most;
}

int pub_subscribers(const struct pub *p)
{
	const struct link *l;
	int n = 0;

	TAILQ_FOREACH(l, &p->srv->links, entry)
	{
		if (l->state == LINK_UP)
			n++;
	}
	return n;
}

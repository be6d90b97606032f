/*
 * faultproxy.c: vmpool-faultproxy, a fault-injecting proxy in front of the kube-apiserver for
 * the end-to-end fault cases (issue 12). A test tool, never part of the product image.
 *
 *   vmpool-faultproxy --upstream IP:PORT --log FILE [--listen PORT] [--control PORT]
 *                     [--tls-cert CRT --tls-key KEY] [--seed N]
 *
 * Both listen on 127.0.0.1; a port 0 (the default) is chosen by the kernel. The first log line
 * says which: "T ports LISTEN CONTROL".
 *
 * Without --tls-cert it relays TCP: TLS passes through untouched, only connection faults
 * (refuse, cut) apply. With --tls-cert/--tls-key it terminates TLS (no ALPN, so clients speak
 * HTTP/1.1), reads each HTTP/1.1 request, and forwards a client connection over its own TLS
 * connection to the upstream (the upstream certificate is not verified: a test tool). Request
 * faults then apply too. Clients must not pipeline (libcurl does not).
 *
 * Control interface: HTTP on 127.0.0.1:CONTROL, GET only; answers "ok\n" (or the state):
 *   /set?KEY=VALUE&...  change faults (an unknown key or a bad value: 400, nothing changed)
 *     refuse=0|1         an outage: every open connection is reset, and each new one is
 *                        accepted and reset at once (logged, so attempts can be counted)
 *     cut=P              probability that a connection is reset after a random number of
 *                        bytes (both directions counted), in [cutmin, cutmax]; drawn for each
 *                        new connection, and for each open one when cut changes
 *     cutmin=N cutmax=N  that byte range (default 200..40000)
 *     match=METHOD:SUBS  the request faults below apply only to requests of METHOD (* for any)
 *                        whose request target contains one of the |-separated substrings
 *                        SUBS; default "*:" (every request)
 *     err=P code=N       answer N (default 503; reason ServiceUnavailable, NotFound for 404,
 *                        InternalError for others) without forwarding, with probability P
 *     throttle=P retry=N answer 429 with Retry-After N (default 1), with probability P
 *     lose=P             forward the request (the write happens), then drop the answer: the
 *                        connection is closed when the answer's head arrives
 *     watchcut=P         cut a watch stream (?watch=1|true) after a random number of body bytes
 *                        in [cutmin, cutmax]: mid-line; drawn for each new watch, and for each
 *                        open one when watchcut changes
 *     watch410=P         answer a watch with a 200 and one ERROR event (410 Expired), then end
 *   /freeze?close=N      every watch stream open now goes silent (the upstream is not read
 *                        any more, nothing is delivered); after N seconds (default 60, 0: never)
 *                        they are closed. Watches opened later are not frozen (a draining
 *                        server while its successor is ready)
 *   /reset               every fault off, frozen watches closed
 *   /state               settings and counters, one "key value" per line
 *
 * Log (--log FILE, line-buffered), one line per event; T is seconds since the epoch (ms):
 *   T conn ID accept|refuse|cut|reset|close    (reset: by an outage's start)
 *   T req ID METHOD TARGET STATUS FAULT    FAULT: - (forwarded), err, throttle, lose, w410,
 *                                          wcut, frozen; STATUS is - when there was none
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stddef.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "log.h"
#include "xmalloc.h"

#define FP_HEAD_MAX  (64 * 1024)
#define FP_BODY_MAX  (16 * 1024 * 1024)
#define FP_METHOD_SZ 16
#define FP_TARGET_SZ 1024

struct fp_faults {
	int refuse;
	double cut, err, throttle, lose, watchcut, watch410;
	long cutmin, cutmax;
	int code, retry;
	char mmethod[FP_METHOD_SZ];
	char msub[256];
};

struct fp_stats {
	unsigned long accepted, refused, cut, requests, err, throttle, lose, w410, wcut, frozen;
};

struct fp_conn {
	unsigned long id;
	struct bufferevent *down; /* the client */
	struct bufferevent *up;   /* the upstream */
	long cut_left;            /* bytes before a connection cut, -1: none */
	/* terminating mode: the request whose answer is awaited or streaming */
	char method[FP_METHOD_SZ];
	char target[FP_TARGET_SZ];
	int resp_pending; /* forwarded, answer head not seen yet */
	int watch;        /* the current request is a watch */
	int lose;         /* drop the answer of the current request */
	long wcut_left;   /* watch body bytes before a cut, -1: none */
	int frozen;
	int closing; /* close once the output to the client is written */
	LIST_ENTRY(fp_conn) entry;
};

static struct {
	struct event_base *base;
	struct sockaddr_storage upstream;
	int upstream_len;
	SSL_CTX *server_ctx; /* NULL: TCP passthrough */
	SSL_CTX *client_ctx;
	FILE *log;
	struct fp_faults f;
	struct fp_stats st;
	unsigned long next_id;
	struct event *thaw; /* closes frozen watches */
	LIST_HEAD(, fp_conn) conns;
} fp;

static void fp_conn_free(struct fp_conn *c);
static void fp_down_read(struct bufferevent *bev, void *arg);

static void fp_faults_reset(struct fp_faults *f)
{
	memset(f, 0, sizeof(*f));
	f->cutmin = 200;
	f->cutmax = 40000;
	f->code = 503;
	f->retry = 1;
	strcpy(f->mmethod, "*");
}

static double fp_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fp_log_conn(const struct fp_conn *c, const char *what)
{
	fprintf(fp.log, "%.3f conn %lu %s\n", fp_now(), c->id, what);
}

static void fp_log_req(const struct fp_conn *c, int status, const char *fault)
{
	char st[16] = "-";

	if (status > 0)
		snprintf(st, sizeof(st), "%d", status);
	fprintf(
	    fp.log, "%.3f req %lu %s %s %s %s\n", fp_now(), c->id, c->method, c->target, st, fault);
}

static int fp_chance(double p)
{
	return p > 0 && drand48() < p;
}

static long fp_cut_bytes(void)
{
	long lo = fp.f.cutmin, hi = fp.f.cutmax;

	if (hi < lo)
		hi = lo;
	return lo + (long)(drand48() * (double)(hi - lo + 1));
}

/* a reset, not a FIN: the peer sees ECONNRESET, as after a crash or a cut cable */
static void fp_set_rst(struct bufferevent *bev)
{
	struct linger l = {1, 0};
	evutil_socket_t fd;

	if (bev == NULL || (fd = bufferevent_getfd(bev)) < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

static void fp_conn_abort(struct fp_conn *c, const char *why)
{
	fp_log_conn(c, why);
	fp_set_rst(c->down);
	fp_set_rst(c->up);
	fp_conn_free(c);
}

static void fp_conn_free(struct fp_conn *c)
{
	if (c == NULL)
		return;
	LIST_REMOVE(c, entry);
	if (c->down != NULL)
		bufferevent_free(c->down);
	if (c->up != NULL)
		bufferevent_free(c->up);
	free(c);
}

static void fp_conn_close(struct fp_conn *c)
{
	fp_log_conn(c, "close");
	fp_conn_free(c);
}

static void fp_down_written(struct bufferevent *bev, void *arg)
{
	struct fp_conn *c = arg;

	if (c->closing)
		fp_conn_close(c);
}

/* close once what is queued for the client is written */
static void fp_conn_close_flushed(struct fp_conn *c)
{
	if (c->up != NULL) {
		bufferevent_free(c->up);
		c->up = NULL;
	}
	bufferevent_disable(c->down, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->down)) == 0) {
		fp_conn_close(c);
		return;
	}
	c->closing = 1;
}

/* counts n relayed bytes against the connection's cut budget; 1: the connection is gone */
static int fp_conn_charge(struct fp_conn *c, size_t n)
{
	if (c->cut_left < 0)
		return 0;
	if ((long)n < c->cut_left) {
		c->cut_left -= (long)n;
		return 0;
	}
	fp.st.cut++;
	fp_conn_abort(c, "cut");
	return 1;
}

/* --- TCP passthrough ------------------------------------------------------------------------ */

/* -1: the connection is gone */
static int fp_relay(struct bufferevent *from, struct bufferevent *to, struct fp_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(from);
	size_t n = evbuffer_get_length(in);

	if (n == 0)
		return 0;
	if (fp_conn_charge(c, n))
		return -1;
	bufferevent_write_buffer(to, in);
	return 0;
}

static void fp_pass_down_read(struct bufferevent *bev, void *arg)
{
	struct fp_conn *c = arg;

	fp_relay(bev, c->up, c);
}

static void fp_pass_up_read(struct bufferevent *bev, void *arg)
{
	struct fp_conn *c = arg;

	fp_relay(bev, c->down, c);
}

/* --- HTTP/1.1 (terminating mode) ------------------------------------------------------------ */

/* value of header NAME in the head (NUL-terminated), copied into out; 0 or -1 when absent */
static int fp_header(const char *head, const char *name, char *out, size_t outsz)
{
	size_t nl = strlen(name);
	const char *p = strstr(head, "\r\n");

	while (p != NULL && p[2] != '\r') {
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1, *e = strstr(v, "\r\n");
			size_t len;

			while (*v == ' ' || *v == '\t')
				v++;
			len = e != NULL ? (size_t)(e - v) : strlen(v);
			if (len >= outsz)
				len = outsz - 1;
			memcpy(out, v, len);
			out[len] = '\0';
			return 0;
		}
		p = strstr(p, "\r\n");
	}
	return -1;
}

static int fp_is_watch(const char *target)
{
	const char *q = strchr(target, '?');

	return q != NULL && (strstr(q, "watch=1") != NULL || strstr(q, "watch=true") != NULL);
}

/* the request faults apply to c's request: method and one of the |-separated substrings */
static int fp_matches(const struct fp_conn *c)
{
	const char *p = fp.f.msub, *bar;
	char sub[sizeof(fp.f.msub)];
	size_t n;

	if (strcmp(fp.f.mmethod, "*") != 0 && strcmp(fp.f.mmethod, c->method) != 0)
		return 0;
	for (;;) {
		bar = strchr(p, '|');
		n = bar != NULL ? (size_t)(bar - p) : strlen(p);
		memcpy(sub, p, n);
		sub[n] = '\0';
		if (strstr(c->target, sub) != NULL)
			return 1;
		if (bar == NULL)
			return 0;
		p = bar + 1;
	}
}

/* parses the request line into c; -1 on a malformed line */
static int fp_parse_request_line(struct fp_conn *c, const char *head)
{
	const char *sp1 = strchr(head, ' '), *sp2, *eol = strstr(head, "\r\n");

	if (sp1 == NULL || eol == NULL || sp1 > eol || (size_t)(sp1 - head) >= FP_METHOD_SZ)
		return -1;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
	if (sp2 == NULL || (size_t)(sp2 - sp1 - 1) >= FP_TARGET_SZ)
		return -1;
	memcpy(c->method, head, (size_t)(sp1 - head));
	c->method[sp1 - head] = '\0';
	memcpy(c->target, sp1 + 1, (size_t)(sp2 - sp1 - 1));
	c->target[sp2 - sp1 - 1] = '\0';
	return 0;
}

/* answers the current request ourselves (keep-alive) */
static void fp_answer(struct fp_conn *c, int code, const char *reason, const char *extra,
    const char *body, const char *fault)
{
	evbuffer_add_printf(bufferevent_get_output(c->down),
	    "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n%s",
	    code, reason, extra, strlen(body), body);
	fp_log_req(c, code, fault);
}

static void fp_answer_status(struct fp_conn *c, int code, const char *reason, const char *extra,
    const char *details, const char *fault)
{
	char body[512];

	snprintf(body, sizeof(body),
	    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
	    "\"message\":\"injected by vmpool-faultproxy\",\"reason\":\"%s\",%s\"code\":%d}\n",
	    reason, details, code);
	fp_answer(c, code, reason, extra, body, fault);
}

static void fp_answer_410(struct fp_conn *c)
{
	fp.st.w410++;
	fp_answer(c, 200, "OK", "",
	    "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\","
	    "\"metadata\":{},\"status\":\"Failure\",\"message\":\"too old resource version: 1 "
	    "(2) (injected by vmpool-faultproxy)\",\"reason\":\"Expired\",\"code\":410}}\n",
	    "w410");
}

/* a request fault for the request in c, answered here; 1 when one was injected */
static int fp_inject(struct fp_conn *c)
{
	char extra[64], details[64];

	if (c->watch && fp_chance(fp.f.watch410)) {
		fp_answer_410(c);
		return 1;
	}
	if (!fp_matches(c))
		return 0;
	if (fp_chance(fp.f.throttle)) {
		fp.st.throttle++;
		snprintf(extra, sizeof(extra), "Retry-After: %d\r\n", fp.f.retry);
		snprintf(details, sizeof(details), "\"details\":{\"retryAfterSeconds\":%d},",
		    fp.f.retry);
		fp_answer_status(c, 429, "TooManyRequests", extra, details, "throttle");
		return 1;
	}
	if (fp_chance(fp.f.err)) {
		fp.st.err++;
		fp_answer_status(c, fp.f.code,
		    fp.f.code == 503   ? "ServiceUnavailable"
		    : fp.f.code == 404 ? "NotFound"
		                       : "InternalError",
		    "", "", "err");
		return 1;
	}
	c->lose = fp_chance(fp.f.lose);
	return 0;
}

/* takes one complete request off the client's input, if there is one; 1: handled one, 0:
 * incomplete, -1: the connection is gone */
static int fp_take_request(struct fp_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->down);
	struct evbuffer_ptr eoh = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	size_t headlen, bodylen = 0;
	char *head, val[32];

	if (eoh.pos < 0) {
		if (evbuffer_get_length(in) > FP_HEAD_MAX)
			goto bad;
		return 0;
	}
	headlen = (size_t)eoh.pos + 4;
	head = xmalloc(headlen + 1);
	evbuffer_copyout(in, head, headlen);
	head[headlen] = '\0';
	if (fp_parse_request_line(c, head) == -1 ||
	    fp_header(head, "Transfer-Encoding", val, sizeof(val)) == 0) {
		free(head);
		goto bad;
	}
	if (fp_header(head, "Content-Length", val, sizeof(val)) == 0)
		bodylen = strtoul(val, NULL, 10);
	free(head);
	if (bodylen > FP_BODY_MAX)
		goto bad;
	if (evbuffer_get_length(in) < headlen + bodylen)
		return 0;
	fp.st.requests++;
	c->watch = fp_is_watch(c->target);
	c->lose = 0;
	if (fp_inject(c)) {
		evbuffer_drain(in, headlen + bodylen);
		return 1;
	}
	c->resp_pending = 1;
	evbuffer_remove_buffer(in, bufferevent_get_output(c->up), headlen + bodylen);
	return 1;
bad:
	log_warnx(NULL, "connection %lu: a request we cannot parse, closing", c->id);
	fp_conn_abort(c, "close");
	return -1;
}

static void fp_down_read(struct bufferevent *bev, void *arg)
{
	struct fp_conn *c = arg;
	int r;

	if (fp_conn_charge(c, evbuffer_get_length(bufferevent_get_input(bev))))
		return;
	while ((r = fp_take_request(c)) == 1)
		;
}

/* the head of the upstream's answer: logs it, drops it (lose) or starts a watch cut; 1: the
 * head was forwarded, 0: incomplete, -1: the connection is gone */
static int fp_take_answer_head(struct fp_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->up);
	struct evbuffer_ptr eoh = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	char line[16] = "";
	int status;

	if (eoh.pos < 0)
		return 0;
	evbuffer_copyout(in, line, sizeof(line) - 1);
	status = atoi(line + (strncmp(line, "HTTP/1.", 7) == 0 ? 9 : 0));
	if (status >= 100 && status < 200) { /* 100 Continue: the real head follows */
		evbuffer_remove_buffer(in, bufferevent_get_output(c->down), (size_t)eoh.pos + 4);
		return 1;
	}
	c->resp_pending = 0;
	if (c->lose) {
		fp.st.lose++;
		fp_log_req(c, status, "lose");
		fp_conn_abort(c, "close");
		return -1;
	}
	fp_log_req(c, status, "-");
	c->wcut_left = -1;
	if (c->watch && status == 200 && fp_chance(fp.f.watchcut))
		c->wcut_left = fp_cut_bytes();
	evbuffer_remove_buffer(in, bufferevent_get_output(c->down), (size_t)eoh.pos + 4);
	return 1;
}

/* body bytes of the answer; a watch cut ends the stream after wcut_left of them; -1: the
 * connection is gone */
static int fp_pass_body(struct fp_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->up);
	size_t n = evbuffer_get_length(in);

	if (c->wcut_left >= 0 && (long)n >= c->wcut_left) {
		evbuffer_remove_buffer(in, bufferevent_get_output(c->down), (size_t)c->wcut_left);
		fp.st.wcut++;
		fp_log_req(c, -1, "wcut");
		fp_conn_close_flushed(c);
		return -1;
	}
	if (c->wcut_left >= 0)
		c->wcut_left -= (long)n;
	bufferevent_write_buffer(c->down, in);
	return 0;
}

/* what the upstream sent, to the client; -1: the connection is gone */
static int fp_up_process(struct fp_conn *c)
{
	int r;

	if (c->frozen)
		return 0;
	if (fp_conn_charge(c, evbuffer_get_length(bufferevent_get_input(c->up))))
		return -1;
	while (c->resp_pending) {
		if ((r = fp_take_answer_head(c)) != 1)
			return r;
	}
	return fp_pass_body(c);
}

static void fp_up_read(struct bufferevent *bev, void *arg)
{
	fp_up_process(arg);
}

/* --- connections ---------------------------------------------------------------------------- */

static void fp_down_event(struct bufferevent *bev, short what, void *arg)
{
	struct fp_conn *c = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		fp_conn_close(c);
}

static void fp_up_event(struct bufferevent *bev, short what, void *arg)
{
	struct fp_conn *c = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_ERROR && evbuffer_get_length(bufferevent_get_input(bev)) == 0 &&
	    c->resp_pending)
		log_warnx(NULL, "connection %lu: upstream error, closing", c->id);
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if (fp.server_ctx == NULL ? fp_relay(bev, c->down, c) : fp_up_process(c))
			return;
		fp_conn_close_flushed(c);
	}
}

static struct bufferevent *fp_bev_up(void)
{
	struct bufferevent *bev;
	SSL *ssl;

	if (fp.server_ctx == NULL)
		return bufferevent_socket_new(fp.base, -1, BEV_OPT_CLOSE_ON_FREE);
	if ((ssl = SSL_new(fp.client_ctx)) == NULL)
		return NULL;
	bev = bufferevent_openssl_socket_new(
	    fp.base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev != NULL)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

static struct bufferevent *fp_bev_down(evutil_socket_t fd)
{
	struct bufferevent *bev;
	SSL *ssl;

	if (fp.server_ctx == NULL)
		return bufferevent_socket_new(fp.base, fd, BEV_OPT_CLOSE_ON_FREE);
	if ((ssl = SSL_new(fp.server_ctx)) == NULL)
		return NULL;
	bev = bufferevent_openssl_socket_new(
	    fp.base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev != NULL)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

static void fp_refuse(evutil_socket_t fd)
{
	struct linger l = {1, 0};

	fp.st.refused++;
	fprintf(fp.log, "%.3f conn %lu refuse\n", fp_now(), ++fp.next_id);
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	evutil_closesocket(fd);
}

static void fp_accept(
    struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
	struct fp_conn *c;
	int tls = fp.server_ctx != NULL;

	if (fp.f.refuse) {
		fp_refuse(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->id = ++fp.next_id;
	c->cut_left = fp_chance(fp.f.cut) ? fp_cut_bytes() : -1;
	LIST_INSERT_HEAD(&fp.conns, c, entry);
	fp.st.accepted++;
	fp_log_conn(c, "accept");
	c->down = fp_bev_down(fd);
	c->up = fp_bev_up();
	if (c->down == NULL || c->up == NULL ||
	    bufferevent_socket_connect(c->up, (struct sockaddr *)&fp.upstream, fp.upstream_len) ==
	        -1) {
		if (c->down == NULL)
			evutil_closesocket(fd);
		log_warnx(NULL, "connection %lu: cannot connect to the upstream", c->id);
		fp_conn_close(c);
		return;
	}
	bufferevent_setcb(
	    c->down, tls ? fp_down_read : fp_pass_down_read, fp_down_written, fp_down_event, c);
	bufferevent_setcb(c->up, tls ? fp_up_read : fp_pass_up_read, NULL, fp_up_event, c);
	bufferevent_enable(c->down, EV_READ | EV_WRITE);
	bufferevent_enable(c->up, EV_READ | EV_WRITE);
}

/* --- watch freezing ------------------------------------------------------------------------- */

static void fp_thaw_close(evutil_socket_t fd, short what, void *arg)
{
	struct fp_conn *c, *next;

	for (c = LIST_FIRST(&fp.conns); c != NULL; c = next) {
		next = LIST_NEXT(c, entry);
		if (c->frozen)
			fp_conn_close(c);
	}
}

static void fp_freeze(int close_after)
{
	struct fp_conn *c;
	struct timeval tv = {close_after, 0};

	LIST_FOREACH(c, &fp.conns, entry)
	{
		if (!c->watch || c->resp_pending || c->up == NULL || c->frozen)
			continue;
		c->frozen = 1;
		fp.st.frozen++;
		bufferevent_disable(c->up, EV_READ);
		fp_log_req(c, -1, "frozen");
	}
	if (close_after > 0)
		evtimer_add(fp.thaw, &tv);
}

static void fp_reset(void)
{
	fp_faults_reset(&fp.f);
	evtimer_del(fp.thaw);
	fp_thaw_close(-1, 0, NULL);
}

/* a new refuse or cut setting also hits the connections open now: an outage resets them all
 * (the server is gone), a cut or watchcut probability gives each open connection or watch
 * stream its chance too */
static void fp_apply_open(const struct fp_faults *old, const struct fp_faults *new)
{
	struct fp_conn *c, *next;

	for (c = LIST_FIRST(&fp.conns); c != NULL; c = next) {
		next = LIST_NEXT(c, entry);
		if (new->refuse && !old->refuse) {
			fp_conn_abort(c, "reset");
			continue;
		}
		if (new->cut != old->cut)
			c->cut_left = drand48() < new->cut ? fp_cut_bytes() : -1;
		if (new->watchcut != old->watchcut && c->watch && !c->resp_pending && !c->frozen)
			c->wcut_left = drand48() < new->watchcut ? fp_cut_bytes() : -1;
	}
}

/* --- control interface ---------------------------------------------------------------------- */

static int fp_prob(const char *v, double *out)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (errno != 0 || end == v || *end != '\0' || !(d >= 0 && d <= 1))
		return -1;
	*out = d;
	return 0;
}

static int fp_long(const char *v, long lo, long hi, long *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < lo || n > hi)
		return -1;
	*out = n;
	return 0;
}

static int fp_set_match(struct fp_faults *f, const char *v)
{
	const char *colon = strchr(v, ':');

	if (colon == NULL || colon == v || (size_t)(colon - v) >= sizeof(f->mmethod) ||
	    strlen(colon + 1) >= sizeof(f->msub))
		return -1;
	memcpy(f->mmethod, v, (size_t)(colon - v));
	f->mmethod[colon - v] = '\0';
	strcpy(f->msub, colon + 1);
	return 0;
}

/* one KEY=VALUE of /set into f; -1: unknown key or bad value */
static int fp_set_one(struct fp_faults *f, const char *k, const char *v)
{
	static const struct {
		const char *key;
		size_t off;
	} probs[] = {{"cut", offsetof(struct fp_faults, cut)},
	    {"err", offsetof(struct fp_faults, err)},
	    {"throttle", offsetof(struct fp_faults, throttle)},
	    {"lose", offsetof(struct fp_faults, lose)},
	    {"watchcut", offsetof(struct fp_faults, watchcut)},
	    {"watch410", offsetof(struct fp_faults, watch410)}};
	long n;
	size_t i;

	for (i = 0; i < sizeof(probs) / sizeof(probs[0]); i++)
		if (strcmp(k, probs[i].key) == 0)
			return fp_prob(v, (double *)((char *)f + probs[i].off));
	if (strcmp(k, "match") == 0)
		return fp_set_match(f, v);
	if (strcmp(k, "refuse") == 0 && fp_long(v, 0, 1, &n) == 0)
		f->refuse = (int)n;
	else if (strcmp(k, "cutmin") == 0 && fp_long(v, 0, 1L << 30, &n) == 0)
		f->cutmin = n;
	else if (strcmp(k, "cutmax") == 0 && fp_long(v, 0, 1L << 30, &n) == 0)
		f->cutmax = n;
	else if (strcmp(k, "code") == 0 && fp_long(v, 400, 599, &n) == 0)
		f->code = (int)n;
	else if (strcmp(k, "retry") == 0 && fp_long(v, 0, 3600, &n) == 0)
		f->retry = (int)n;
	else
		return -1;
	return 0;
}

static int fp_ctl_set(struct evkeyvalq *q, struct evbuffer *out)
{
	struct fp_faults f = fp.f, old = fp.f;
	struct evkeyval *kv;

	TAILQ_FOREACH(kv, q, next)
	{
		if (fp_set_one(&f, kv->key, kv->value) == -1) {
			evbuffer_add_printf(out, "bad setting %s=%s\n", kv->key, kv->value);
			return -1;
		}
	}
	fprintf(fp.log, "%.3f ctl set\n", fp_now());
	fp.f = f;
	fp_apply_open(&old, &fp.f);
	return 0;
}

static void fp_ctl_state(struct evbuffer *out)
{
	const struct fp_faults *f = &fp.f;
	const struct fp_stats *s = &fp.st;

	evbuffer_add_printf(out,
	    "refuse %d\ncut %g\ncutmin %ld\ncutmax %ld\nmatch %s:%s\nerr %g\ncode %d\nthrottle %g\n"
	    "retry %d\nlose %g\nwatchcut %g\nwatch410 %g\n",
	    f->refuse, f->cut, f->cutmin, f->cutmax, f->mmethod, f->msub, f->err, f->code,
	    f->throttle, f->retry, f->lose, f->watchcut, f->watch410);
	evbuffer_add_printf(out,
	    "accepted %lu\nrefused %lu\ncuts %lu\nrequests %lu\nerrs %lu\nthrottled %lu\nlost %lu\n"
	    "w410s %lu\nwcuts %lu\nfrozen %lu\n",
	    s->accepted, s->refused, s->cut, s->requests, s->err, s->throttle, s->lose, s->w410,
	    s->wcut, s->frozen);
}

/* /set, /freeze, /reset, /state; -1: a bad request (the reason is in out) */
static int fp_ctl_dispatch(const char *path, struct evkeyvalq *q, struct evbuffer *out)
{
	const char *v;
	long n = 60;

	if (strcmp(path, "/set") == 0)
		return fp_ctl_set(q, out);
	if (strcmp(path, "/reset") == 0) {
		fp_reset();
		fprintf(fp.log, "%.3f ctl reset\n", fp_now());
	} else if (strcmp(path, "/freeze") == 0) {
		if ((v = evhttp_find_header(q, "close")) != NULL &&
		    fp_long(v, 0, 86400, &n) == -1) {
			evbuffer_add_printf(out, "bad close=%s\n", v);
			return -1;
		}
		fprintf(fp.log, "%.3f ctl freeze %ld\n", fp_now(), n);
		fp_freeze((int)n);
	} else if (strcmp(path, "/state") == 0) {
		fp_ctl_state(out);
		return 0;
	} else {
		evbuffer_add_printf(out, "unknown path %s\n", path);
		return -1;
	}
	evbuffer_add_printf(out, "ok\n");
	return 0;
}

static void fp_ctl(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = evhttp_uri_get_path(uri), *query = evhttp_uri_get_query(uri);
	struct evbuffer *out = evbuffer_new();
	struct evkeyvalq q;
	int rc;

	TAILQ_INIT(&q);
	if (query != NULL && evhttp_parse_query_str(query, &q) == -1) {
		evhttp_send_reply(req, 400, "Bad Request", NULL);
		evbuffer_free(out);
		return;
	}
	rc = fp_ctl_dispatch(path != NULL ? path : "/", &q, out);
	evhttp_clear_headers(&q);
	evhttp_send_reply(req, rc == 0 ? 200 : 400, rc == 0 ? "OK" : "Bad Request", out);
	evbuffer_free(out);
}

/* --- start-up ------------------------------------------------------------------------------- */

struct fp_opts {
	int listen, control;
	const char *upstream, *cert, *key, *log;
	long seed;
};

static void fp_usage(void)
{
	fprintf(stderr, "usage: vmpool-faultproxy --upstream IP:PORT --log FILE [--listen PORT] "
	                "[--control PORT] [--tls-cert CRT --tls-key KEY] [--seed N]\n");
	exit(EXIT_CONFIG);
}

static void fp_opts_parse(int argc, char **argv, struct fp_opts *o)
{
	static const struct option lopts[] = {{"listen", required_argument, NULL, 'l'},
	    {"upstream", required_argument, NULL, 'u'}, {"control", required_argument, NULL, 'c'},
	    {"log", required_argument, NULL, 'L'}, {"tls-cert", required_argument, NULL, 'C'},
	    {"tls-key", required_argument, NULL, 'K'}, {"seed", required_argument, NULL, 's'},
	    {NULL, 0, NULL, 0}};
	long n;
	int ch;

	memset(o, 0, sizeof(*o));
	o->seed = (long)time(NULL) ^ getpid();
	while ((ch = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		if (ch == 'l' || ch == 'c') {
			if (fp_long(optarg, 0, 65535, &n) == -1)
				fatal_config("bad port %s", optarg);
			*(ch == 'l' ? &o->listen : &o->control) = (int)n;
		} else if (ch == 'u')
			o->upstream = optarg;
		else if (ch == 'L')
			o->log = optarg;
		else if (ch == 'C')
			o->cert = optarg;
		else if (ch == 'K')
			o->key = optarg;
		else if (ch == 's' && fp_long(optarg, 0, 1L << 62, &o->seed) == 0)
			;
		else
			fp_usage();
	}
	if (optind != argc || o->upstream == NULL || o->log == NULL ||
	    (o->cert == NULL) != (o->key == NULL))
		fp_usage();
}

static void fp_tls_init(const struct fp_opts *o)
{
	if (o->cert == NULL)
		return;
	fp.server_ctx = SSL_CTX_new(TLS_server_method());
	fp.client_ctx = SSL_CTX_new(TLS_client_method());
	if (fp.server_ctx == NULL || fp.client_ctx == NULL)
		fatalx("SSL_CTX_new failed");
	if (SSL_CTX_use_certificate_chain_file(fp.server_ctx, o->cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(fp.server_ctx, o->key, SSL_FILETYPE_PEM) != 1)
		fatal_config("cannot load %s / %s: %s", o->cert, o->key,
		    ERR_error_string(ERR_get_error(), NULL));
	SSL_CTX_set_verify(fp.client_ctx, SSL_VERIFY_NONE, NULL);
}

static int fp_bound_port(evutil_socket_t fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	if (getsockname(fd, (struct sockaddr *)&sin, &len) == -1)
		fatal("getsockname");
	return ntohs(sin.sin_port);
}

/* listens (proxy and control); returns the ports in lport/cport */
static void fp_listen(const struct fp_opts *o, int *lport, int *cport)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct evconnlistener *l;
	struct evhttp_bound_socket *hs;
	struct evhttp *http;

	fp.upstream_len = sizeof(fp.upstream);
	if (evutil_parse_sockaddr_port(
	        o->upstream, (struct sockaddr *)&fp.upstream, &fp.upstream_len) == -1)
		fatal_config("bad upstream %s (want IP:PORT)", o->upstream);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)o->listen);
	l = evconnlistener_new_bind(fp.base, fp_accept, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 128, (struct sockaddr *)&sin, sizeof(sin));
	if (l == NULL)
		fatal("cannot listen on 127.0.0.1:%d", o->listen);
	if ((http = evhttp_new(fp.base)) == NULL ||
	    (hs = evhttp_bind_socket_with_handle(http, "127.0.0.1", (uint16_t)o->control)) == NULL)
		fatal("cannot listen on 127.0.0.1:%d (control)", o->control);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET);
	evhttp_set_gencb(http, fp_ctl, NULL);
	*lport = fp_bound_port(evconnlistener_get_fd(l));
	*cport = fp_bound_port(evhttp_bound_socket_get_fd(hs));
}

int main(int argc, char **argv)
{
	struct fp_opts o;
	int lport, cport;

	log_init("vmpool-faultproxy", 0, LOG_FMT_TEXT);
	fp_opts_parse(argc, argv, &o);
	srand48(o.seed);
	signal(SIGPIPE, SIG_IGN);
	if ((fp.log = fopen(o.log, "a")) == NULL)
		fatal_config("cannot open %s", o.log);
	setvbuf(fp.log, NULL, _IOLBF, 0);
	fp_faults_reset(&fp.f);
	LIST_INIT(&fp.conns);
	fp_tls_init(&o);
	if ((fp.base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	fp.thaw = evtimer_new(fp.base, fp_thaw_close, NULL);
	fp_listen(&o, &lport, &cport);
	fprintf(fp.log, "%.3f ports %d %d\n", fp_now(), lport, cport);
	log_info(NULL,
	    "listening on 127.0.0.1:%d (%s), upstream %s, control 127.0.0.1:%d, seed %ld", lport,
	    o.cert != NULL ? "TLS-terminating HTTP/1.1" : "TCP passthrough", o.upstream, cport,
	    o.seed);
	event_base_dispatch(fp.base);
	return 0;
}

/*
 * metrics.c: the process-global metrics registry and its HTTP endpoints (libevent evhttp).
 * Families and their samples are kept in arrays sorted by name and by label string, so a
 * lookup is a binary search and /metrics is rendered in order without sorting.
 */
#include <sys/socket.h>

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "cli.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"
#include "xmalloc.h"

struct metrics_sample {
	char *labels; /* "" for none */
	double v;     /* a histogram's sum */
	/* a histogram's observations per bucket (not cumulative), the last one above every
	 * bound (+Inf); NULL for other types */
	unsigned long long *counts;
};

struct metrics_family {
	char *name;
	char *type; /* "counter", "gauge", "histogram"; NULL until declared (untyped) */
	char *help;
	double *bounds; /* a histogram's bucket upper bounds, ascending; fixed when declared */
	size_t nbounds;
	struct metrics_sample *samples; /* sorted by labels */
	size_t n;
};

/*
 * Endpoint limits: the endpoint may be bound on every address (the Deployment does), so a
 * client must not be able to grow the process or hold it busy: small header and body caps,
 * a timeout for a request that never completes, and a bound on open connections (libevent
 * 2.1 has none: we count them, see metrics_bevcb()).
 */
#define METRICS_MAX_HEADERS 8192
#define METRICS_MAX_BODY    1024
#define METRICS_TIMEOUT     10 /* seconds */
#define METRICS_MAX_CONNS   16

static struct {
	struct metrics_family *fams; /* sorted by name */
	size_t n;
	struct evhttp *http;
	struct evhttp *probes; /* --health-probe-bind-address: /healthz and /readyz only */
	int ready;
	struct event *admit;        /* runs metrics_admit_cb() right after an accept */
	struct bufferevent **fresh; /* accepted, not yet admitted or refused */
	size_t nfresh;
	int conns;             /* admitted and still open */
	unsigned long refused; /* over METRICS_MAX_CONNS */
} metrics;

/* binary search: index of key, or where it would go (*found says which) */
static size_t metrics_find(
    const void *base, size_t n, size_t size, size_t off, const char *key, int *found)
{
	size_t lo = 0, hi = n, mid;
	int c;

	*found = 0;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strcmp(*(char *const *)((const char *)base + mid * size + off), key);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int metrics_valid_name(const char *s)
{
	const char *p;

	if (*s == '\0' || (*s >= '0' && *s <= '9'))
		return 0;
	for (p = s; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		        (*p >= '0' && *p <= '9') || *p == '_' || *p == ':'))
			return 0;
	}
	return 1;
}

/* the family called name, created (untyped) if create is set */
static struct metrics_family *metrics_family(const char *name, int create)
{
	struct metrics_family *f;
	size_t i;
	int found;

	i = metrics_find(metrics.fams, metrics.n, sizeof *metrics.fams,
	    offsetof(struct metrics_family, name), name, &found);
	if (found)
		return &metrics.fams[i];
	if (!create)
		return NULL;
	if (!metrics_valid_name(name)) {
		log_warnx(NULL, "metrics: invalid family name \"%s\" ignored", log_escape(name));
		return NULL;
	}
	metrics.fams = xreallocarray(metrics.fams, metrics.n + 1, sizeof *metrics.fams);
	memmove(&metrics.fams[i + 1], &metrics.fams[i], (metrics.n - i) * sizeof *metrics.fams);
	metrics.n++;
	f = &metrics.fams[i];
	memset(f, 0, sizeof *f);
	f->name = xstrdup(name);
	return f;
}

static struct metrics_sample *metrics_sample(struct metrics_family *f, const char *labels)
{
	struct metrics_sample *s;
	size_t i;
	int found;

	i = metrics_find(f->samples, f->n, sizeof *f->samples,
	    offsetof(struct metrics_sample, labels), labels, &found);
	if (found)
		return &f->samples[i];
	f->samples = xreallocarray(f->samples, f->n + 1, sizeof *f->samples);
	memmove(&f->samples[i + 1], &f->samples[i], (f->n - i) * sizeof *f->samples);
	f->n++;
	s = &f->samples[i];
	s->labels = xstrdup(labels);
	s->v = 0;
	s->counts = f->bounds != NULL ? xcalloc(f->nbounds + 1, sizeof *s->counts) : NULL;
	return s;
}

static void metrics_sample_free(struct metrics_sample *s)
{
	free(s->labels);
	free(s->counts);
}

static void metrics_family_clear(struct metrics_family *f)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		metrics_sample_free(&f->samples[i]);
	free(f->samples);
	free(f->bounds);
	f->samples = NULL;
	f->bounds = NULL;
	f->n = f->nbounds = 0;
}

void metrics_declare(const char *family, const char *type, const char *help)
{
	struct metrics_family *f;

	if ((f = metrics_family(family, 1)) == NULL)
		return;
	if (f->bounds != NULL)
		metrics_family_clear(f); /* was a histogram: its samples cannot be kept */
	free(f->type);
	free(f->help);
	f->type = type != NULL ? xstrdup(type) : NULL;
	f->help = help != NULL ? xstrdup(help) : NULL;
}

/* bounds must ascend and be finite (+Inf is implied); 1 if they do */
static int metrics_valid_bounds(const double *bounds, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
			return 0;
	}
	return 1;
}

void metrics_declare_histogram(
    const char *family, const char *help, const double *bounds, size_t nbounds)
{
	struct metrics_family *f;

	if (nbounds == 0 || !metrics_valid_bounds(bounds, nbounds)) {
		log_warnx(NULL, "metrics: histogram \"%s\" needs ascending finite bounds: ignored",
		    log_escape(family));
		return;
	}
	if ((f = metrics_family(family, 1)) == NULL)
		return;
	if (f->bounds == NULL || f->nbounds != nbounds ||
	    memcmp(f->bounds, bounds, nbounds * sizeof *bounds) != 0) {
		/* new, or other buckets: the samples so far cannot be kept */
		metrics_family_clear(f);
		f->bounds = xreallocarray(NULL, nbounds, sizeof *f->bounds);
		memcpy(f->bounds, bounds, nbounds * sizeof *bounds);
		f->nbounds = nbounds;
	}
	free(f->type);
	free(f->help);
	f->type = xstrdup("histogram");
	f->help = help != NULL ? xstrdup(help) : NULL;
}

void metrics_observe(const char *family, const char *labels, double v)
{
	struct metrics_family *f;
	struct metrics_sample *s;
	size_t i;

	if ((f = metrics_family(family, 0)) == NULL || f->bounds == NULL || isnan(v))
		return; /* not a declared histogram */
	s = metrics_sample(f, labels != NULL ? labels : "");
	for (i = 0; i < f->nbounds && v > f->bounds[i]; i++)
		;
	s->counts[i]++;
	s->v += v;
}

/* a plain sample: never one of a histogram's */
static struct metrics_sample *metrics_plain(const char *family, const char *labels)
{
	struct metrics_family *f;

	if ((f = metrics_family(family, 1)) == NULL || f->bounds != NULL)
		return NULL;
	return metrics_sample(f, labels != NULL ? labels : "");
}

void metrics_set(const char *family, const char *labels, double v)
{
	struct metrics_sample *s;

	if ((s = metrics_plain(family, labels)) != NULL)
		s->v = v;
}

void metrics_add(const char *family, const char *labels, double delta)
{
	struct metrics_sample *s;

	if ((s = metrics_plain(family, labels)) != NULL)
		s->v += delta;
}

void metrics_remove(const char *family, const char *labels)
{
	struct metrics_family *f;
	size_t i;
	int found;

	if ((f = metrics_family(family, 0)) == NULL)
		return;
	i = metrics_find(f->samples, f->n, sizeof *f->samples,
	    offsetof(struct metrics_sample, labels), labels != NULL ? labels : "", &found);
	if (!found)
		return;
	metrics_sample_free(&f->samples[i]);
	memmove(&f->samples[i], &f->samples[i + 1], (f->n - i - 1) * sizeof *f->samples);
	f->n--;
}

static void metrics_str(struct buf *out, const char *s)
{
	buf_add(out, s, strlen(s));
}

/* HELP text: backslash and newline escaped, as the text format requires */
static void metrics_help(struct buf *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			metrics_str(out, "\\\\");
		else if (*s == '\n')
			metrics_str(out, "\\n");
		else
			buf_add(out, s, 1);
	}
}

static void metrics_value(struct buf *out, double v)
{
	char tmp[64];
	int prec;

	if (isnan(v))
		snprintf(tmp, sizeof tmp, "NaN");
	else if (isinf(v))
		snprintf(tmp, sizeof tmp, "%s", v > 0 ? "+Inf" : "-Inf");
	else if (fabs(v) < 9007199254740992.0 && v == tu_floor(v))
		snprintf(tmp, sizeof tmp, "%.0f", v);
	else {
		/* the shortest form that reads back to the same double */
		for (prec = 15; prec <= 17; prec++) {
			snprintf(tmp, sizeof tmp, "%.*g", prec, v);
			if (strtod(tmp, NULL) == v)
				break;
		}
	}
	metrics_str(out, tmp);
}

/* one line: NAME[SUFFIX]{LABELS[,le="BOUND"]} VALUE */
static void metrics_line(struct buf *out, const char *name, const char *suffix, const char *labels,
    const char *le, double v)
{
	metrics_str(out, name);
	metrics_str(out, suffix);
	if (*labels != '\0' || le != NULL) {
		metrics_str(out, "{");
		metrics_str(out, labels);
		if (le != NULL) {
			metrics_str(out, *labels != '\0' ? ",le=\"" : "le=\"");
			metrics_str(out, le);
			metrics_str(out, "\"");
		}
		metrics_str(out, "}");
	}
	metrics_str(out, " ");
	metrics_value(out, v);
	metrics_str(out, "\n");
}

/* NAME_bucket (cumulative, le="+Inf" last), NAME_sum and NAME_count of one sample */
static void metrics_render_histogram(
    struct buf *out, const struct metrics_family *f, const struct metrics_sample *s)
{
	struct buf le = {0};
	unsigned long long cum = 0;
	size_t i;

	for (i = 0; i <= f->nbounds; i++) {
		cum += s->counts[i];
		le.len = 0;
		if (i < f->nbounds)
			metrics_value(&le, f->bounds[i]);
		else
			metrics_str(&le, "+Inf");
		buf_add(&le, "", 1);
		metrics_line(out, f->name, "_bucket", s->labels, (char *)le.data, (double)cum);
	}
	metrics_line(out, f->name, "_sum", s->labels, NULL, s->v);
	metrics_line(out, f->name, "_count", s->labels, NULL, (double)cum);
	buf_clear(&le);
}

static void metrics_render_family(struct buf *out, const struct metrics_family *f)
{
	size_t i;

	if (f->help != NULL) {
		metrics_str(out, "# HELP ");
		metrics_str(out, f->name);
		metrics_str(out, " ");
		metrics_help(out, f->help);
		metrics_str(out, "\n");
	}
	metrics_str(out, "# TYPE ");
	metrics_str(out, f->name);
	metrics_str(out, " ");
	metrics_str(out, f->type != NULL ? f->type : "untyped");
	metrics_str(out, "\n");
	for (i = 0; i < f->n; i++) {
		if (f->bounds != NULL)
			metrics_render_histogram(out, f, &f->samples[i]);
		else
			metrics_line(out, f->name, "", f->samples[i].labels, NULL, f->samples[i].v);
	}
}

void metrics_render(struct buf *out)
{
	size_t i;

	for (i = 0; i < metrics.n; i++)
		metrics_render_family(out, &metrics.fams[i]);
}

void metrics_scrape(struct buf *out)
{
	metrics_std_collect();
	metrics_render(out);
}

static void metrics_label_value(struct buf *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			metrics_str(out, "\\\\");
		else if (*s == '"')
			metrics_str(out, "\\\"");
		else if (*s == '\n')
			metrics_str(out, "\\n");
		else
			buf_add(out, s, 1);
	}
}

char *metrics_labels(const char *k1, const char *v1, ...)
{
	struct buf b = {0};
	const char *k = k1, *v = v1;
	va_list ap;

	va_start(ap, v1);
	while (k != NULL) {
		if (b.len > 0)
			metrics_str(&b, ",");
		metrics_str(&b, k);
		metrics_str(&b, "=\"");
		metrics_label_value(&b, v != NULL ? v : "");
		metrics_str(&b, "\"");
		if ((k = va_arg(ap, const char *)) != NULL)
			v = va_arg(ap, const char *);
	}
	va_end(ap);
	buf_add(&b, "", 1);
	return (char *)b.data;
}

static void metrics_reply(struct evhttp_request *req, int code, const char *reason,
    const char *ctype, const void *body, size_t len)
{
	struct evbuffer *evb = evbuffer_new();

	if (evb == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	evbuffer_add(evb, body, len);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
	evhttp_send_reply(req, code, reason, evb);
	evbuffer_free(evb);
}

static void metrics_http_metrics(struct evhttp_request *req, void *arg)
{
	struct buf b = {0};

	metrics_scrape(&b);
	metrics_reply(req, HTTP_OK, "OK", "text/plain; version=0.0.4; charset=utf-8",
	    b.data != NULL ? (void *)b.data : "", b.len);
	buf_clear(&b);
}

static void metrics_http_healthz(struct evhttp_request *req, void *arg)
{
	metrics_reply(req, HTTP_OK, "OK", "text/plain", "ok", 2);
}

static void metrics_http_readyz(struct evhttp_request *req, void *arg)
{
	if (metrics.ready)
		metrics_reply(req, HTTP_OK, "OK", "text/plain", "ok", 2);
	else
		metrics_reply(req, 503, "Service Unavailable", "text/plain", "not ready", 9);
}

static void metrics_http_other(struct evhttp_request *req, void *arg)
{
	metrics_reply(req, HTTP_NOTFOUND, "Not Found", "text/plain", "not found", 9);
}

/* /metrics first: the probe listener serves the rest (metrics_evhttp()) */
static const struct {
	const char *path;
	void (*fn)(struct evhttp_request *, void *);
} metrics_routes[] = {
    {"/metrics", metrics_http_metrics},
    {"/healthz", metrics_http_healthz},
    {"/readyz", metrics_http_readyz},
};

/* "host:port", "[v6]:port" or ":port" (host "": every interface, as Go's net.Listen) */
static int metrics_parse_addr(const char *addr, char *host, size_t hostlen, unsigned short *port)
{
	const char *colon = strrchr(addr, ':');
	size_t hl;
	long p;

	if (colon == NULL || cli_int(colon + 1, 0, 65535, &p) == -1)
		return -1;
	hl = colon - addr;
	if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') {
		addr++;
		hl -= 2;
	}
	if (hl == 0)
		snprintf(host, hostlen, "%s", "");
	else if (hl >= hostlen)
		return -1;
	else
		snprintf(host, hostlen, "%.*s", (int)hl, addr);
	*port = (unsigned short)p;
	return 0;
}

static void metrics_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	metrics.conns--;
}

/*
 * Admission, just after evhttp made the connection and before any of its bytes are read
 * (event_active runs us in the same loop pass as the accept): evhttp hands its connection
 * to the bufferevent callbacks as their argument, which is how we find it. Within the
 * bound it is counted until its close callback; beyond, it is closed at once.
 */
static void metrics_admit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct evhttp_connection *evcon;
	void *cbarg;
	size_t i;

	for (i = 0; i < metrics.nfresh; i++) {
		cbarg = NULL;
		bufferevent_getcb(metrics.fresh[i], NULL, NULL, NULL, &cbarg);
		evcon = cbarg; /* NULL: evhttp already gave the connection up */
		if (evcon != NULL && metrics.conns >= METRICS_MAX_CONNS) {
			if (metrics.refused++ % 100 == 0)
				log_warnx(NULL,
				    "metrics: %d connections open, refusing more (%lu so far)",
				    metrics.conns, metrics.refused);
			evhttp_connection_free(evcon);
		} else if (evcon != NULL) {
			metrics.conns++;
			evhttp_connection_set_closecb(evcon, metrics_conn_closed, NULL);
		}
		bufferevent_decref(metrics.fresh[i]);
	}
	metrics.nfresh = 0;
}

/* evhttp asks for each accepted connection's bufferevent: we keep a reference until the
 * admission runs. No BEV_OPT_CLOSE_ON_FREE: evhttp closes the socket itself then. */
static struct bufferevent *metrics_bevcb(struct event_base *base, void *arg)
{
	struct bufferevent *bev = bufferevent_socket_new(base, -1, 0);

	if (bev == NULL)
		return NULL;
	bufferevent_incref(bev);
	metrics.fresh = xreallocarray(metrics.fresh, metrics.nfresh + 1, sizeof *metrics.fresh);
	metrics.fresh[metrics.nfresh++] = bev;
	event_active(metrics.admit, EV_TIMEOUT, 1);
	return bev;
}

/* an evhttp with the endpoint limits, serving metrics_routes from index first on (0: all;
 * 1: the probes only, for --health-probe-bind-address) */
static struct evhttp *metrics_evhttp(struct event_base *base, size_t first)
{
	struct evhttp *http;
	size_t i;

	if ((http = evhttp_new(base)) == NULL)
		return NULL;
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_max_headers_size(http, METRICS_MAX_HEADERS);
	evhttp_set_max_body_size(http, METRICS_MAX_BODY);
	evhttp_set_timeout(http, METRICS_TIMEOUT);
	evhttp_set_bevcb(http, metrics_bevcb, NULL);
	for (i = first; i < sizeof metrics_routes / sizeof metrics_routes[0]; i++)
		evhttp_set_cb(http, metrics_routes[i].path, metrics_routes[i].fn, NULL);
	evhttp_set_gencb(http, metrics_http_other, NULL);
	return http;
}

static int metrics_http_new(struct event_base *base, char *err, size_t errlen)
{
	if ((metrics.http = metrics_evhttp(base, 0)) == NULL ||
	    (metrics.admit == NULL &&
	        (metrics.admit = event_new(base, -1, 0, metrics_admit_cb, NULL)) == NULL)) {
		snprintf(err, errlen, "evhttp_new failed");
		return -1;
	}
	return 0;
}

static void metrics_http_free(void)
{
	if (metrics.nfresh > 0)
		metrics_admit_cb(-1, 0, NULL); /* drops our references */
	if (metrics.http != NULL)
		evhttp_free(metrics.http);
	if (metrics.probes != NULL)
		evhttp_free(metrics.probes);
	metrics.probes = NULL;
	if (metrics.admit != NULL)
		event_free(metrics.admit);
	free(metrics.fresh);
	metrics.http = NULL;
	metrics.admit = NULL;
	metrics.fresh = NULL;
	metrics.conns = 0;
}

/* host "" is every interface: IPv6 and IPv4 on "::", or IPv4 alone where IPv6 is off */
static int metrics_bind(
    struct evhttp *http, const char *host, unsigned short port, char *err, size_t errlen)
{
	if (*host == '\0' && evhttp_bind_socket_with_handle(http, "::", port) != NULL)
		return 0;
	if (evhttp_bind_socket_with_handle(http, *host != '\0' ? host : "0.0.0.0", port) != NULL)
		return 0;
	snprintf(err, errlen, "cannot listen on %s port %u: %s",
	    *host != '\0' ? host : "every interface", port, strerror(errno));
	return -1;
}

int metrics_start(struct event_base *base, const char *addr, char *err, size_t errlen)
{
	char host[256];
	unsigned short port;

	if (metrics.http != NULL) {
		snprintf(err, errlen, "metrics server already running");
		return -1;
	}
	if (metrics_parse_addr(addr, host, sizeof host, &port) != 0) {
		snprintf(err, errlen, "bad metrics address \"%s\" (want host:port or :port)", addr);
		return -1;
	}
	if (metrics_http_new(base, err, errlen) == -1) {
		metrics_http_free();
		return -1;
	}
	if (metrics_bind(metrics.http, host, port, err, errlen) == -1) {
		metrics_http_free();
		return -1;
	}
	log_info(NULL, "metrics: listening on %s port %u (at most %d connections)",
	    *host != '\0' ? host : "every interface", port, METRICS_MAX_CONNS);
	return 0;
}

/* closes the server and forgets the whole registry (shutdown, tests) */
void metrics_stop(void)
{
	size_t i;

	metrics_http_free();
	for (i = 0; i < metrics.n; i++) {
		metrics_family_clear(&metrics.fams[i]);
		free(metrics.fams[i].name);
		free(metrics.fams[i].type);
		free(metrics.fams[i].help);
	}
	free(metrics.fams);
	memset(&metrics, 0, sizeof metrics);
}

void metrics_set_ready(int ready)
{
	metrics.ready = ready;
}

/*
 * The health probe listener (--health-probe-bind-address, as controller-runtime's): a second
 * evhttp with /healthz and /readyz only and the endpoint limits of the metrics one (the
 * connection bound is shared). The metrics listener keeps answering probes too, so a
 * Deployment probing the metrics port keeps working.
 */
int metrics_start_probes(struct event_base *base, const char *addr, char *err, size_t errlen)
{
	char host[256];
	unsigned short port;

	if (metrics.probes != NULL) {
		snprintf(err, errlen, "health probe server already running");
		return -1;
	}
	if (metrics_parse_addr(addr, host, sizeof host, &port) != 0) {
		snprintf(err, errlen, "bad address \"%s\" (want host:port or :port)", addr);
		return -1;
	}
	if (metrics.admit == NULL &&
	    (metrics.admit = event_new(base, -1, 0, metrics_admit_cb, NULL)) == NULL) {
		snprintf(err, errlen, "event_new failed");
		return -1;
	}
	if ((metrics.probes = metrics_evhttp(base, 1)) == NULL) {
		snprintf(err, errlen, "evhttp_new failed");
		return -1;
	}
	if (metrics_bind(metrics.probes, host, port, err, errlen) == -1) {
		evhttp_free(metrics.probes);
		metrics.probes = NULL;
		return -1;
	}
	log_info(NULL, "health probes: listening on %s port %u",
	    *host != '\0' ? host : "every interface", port);
	return 0;
}

/*
 * kube.c: the Kubernetes HTTP client. libcurl's multi-socket interface driven by the
 * caller's libevent base, as in curl's hiperfifo.c: curl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION) and when to wake it (CURLMOPT_TIMERFUNCTION); libevent calls
 * curl_multi_socket_action() and we collect finished transfers with curl_multi_info_read().
 *
 * A request (struct kreq) moves NEW -> [QUEUED in the writer FIFO] -> RUNNING ->
 * [WAITING for a retry -> RUNNING ...] -> DONE, or CANCELLED (watches only). Nothing here
 * blocks; the only file read is the bearer token file, at most once a second.
 *
 * Re-entrancy: libcurl forbids removing or adding easy handles from inside its callbacks,
 * so while we are inside curl_multi_socket_action (k->in_curl) starts are deferred to a
 * zero timer and cancels to the reaper event. Callbacks may call kube_free(); it is then
 * completed when the outermost event handler returns (k->busy).
 */
#include <sys/queue.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <json-c/json.h>

#include "backoff.h"
#include "kube.h"
#include "log.h"
#include "timeutil.h"
#include "xmalloc.h"

#include "kube_int.h"

static const char *kreq_state_names[] = {
    "new", "queued", "waiting", "parked", "running", "cancelled", "done"};

static void kreq_start(struct kreq *);
static void kube_destroy(struct kube *);

void kreq_set_state(struct kreq *r, enum kreq_state st)
{
	struct kube *k = r->k;

	if (r->state != st)
		log_debug(NULL, "%s %s: %s -> %s", r->method, log_escape(r->path),
		    kreq_state_names[r->state], kreq_state_names[st]);
	if (!r->watch && r->state != st && (st == KR_RUNNING || r->state == KR_RUNNING)) {
		k->nrunning += st == KR_RUNNING ? 1 : -1;
		if (st != KR_RUNNING && !k->dead && !TAILQ_EMPTY(&k->parked))
			kube_gate_kick(k); /* a slot is free: the gate lets the next one go */
	}
	r->state = st;
}

void kube_enter(struct kube *k)
{
	k->busy++;
}

/* leaves an event handler; completes a kube_free() made from a callback */
void kube_leave(struct kube *k)
{
	if (--k->busy == 0 && k->dead)
		kube_destroy(k);
}

/* ---- bearer token ---- */

/* a token file's first line, without trailing blanks */
static char *kube_read_token(const char *path)
{
	char *p = kubeconfig_read_file(path, NULL);
	size_t n;

	if (p == NULL)
		return NULL;
	n = strcspn(p, "\r\n");
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	p[n] = '\0';
	return p;
}

/* The bearer token; a token file is re-read when its mtime or size changes (checked at
 * most once a second). A file that cannot be read keeps the last good token. */
static const char *kube_token(struct kube *k)
{
	const char *file = k->cfg.token_file, *cur = k->token != NULL ? k->token : k->cfg.token;
	double now = now_mono();
	struct stat st;
	char *tok;

	if (file == NULL || (k->token_checked > 0 && now - k->token_checked < 1.0))
		return cur;
	k->token_checked = now;
	if (stat(file, &st) == -1)
		goto bad;
	if (k->token != NULL && st.st_size == k->token_size &&
	    st.st_mtim.tv_sec == k->token_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == k->token_mtime.tv_nsec)
		return k->token;
	if ((tok = kube_read_token(file)) == NULL)
		goto bad;
	if (k->token != NULL)
		log_info(NULL, "token file %s changed, reloaded", file);
	k->token_warned = 0;
	free(k->token);
	k->token = tok;
	k->token_mtime = st.st_mtim;
	k->token_size = st.st_size;
	return k->token;
bad:
	if (!k->token_warned++)
		log_warn(NULL, "token file %s", file);
	return cur;
}

/* ---- curl <-> libevent, as in hiperfifo.c ---- */

static void kube_check_done(struct kube *);

/* runs curl on one socket (or its timeout) and collects what finished */
static void kube_drive(struct kube *k, curl_socket_t fd, int action)
{
	int running;
	CURLMcode mc;

	kube_enter(k);
	k->in_curl++;
	mc = curl_multi_socket_action(k->multi, fd, action, &running);
	k->in_curl--;
	if (mc != CURLM_OK)
		log_warnx(NULL, "curl_multi_socket_action: %s", curl_multi_strerror(mc));
	if (!k->dead)
		kube_check_done(k);
	kube_leave(k);
}

static void kube_sock_event(evutil_socket_t fd, short kind, void *arg)
{
	int action =
	    ((kind & EV_READ) ? CURL_CSELECT_IN : 0) | ((kind & EV_WRITE) ? CURL_CSELECT_OUT : 0);

	kube_drive(arg, fd, action);
}

static void kube_timer_event(evutil_socket_t fd, short kind, void *arg)
{
	kube_drive(arg, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_SOCKETFUNCTION */
static int kube_sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct kube *k = userp;
	struct ksock *ks = socketp;
	short kind;

	if (what == CURL_POLL_REMOVE) {
		if (ks != NULL) {
			event_del(&ks->ev);
			TAILQ_REMOVE(&k->socks, ks, entry);
			free(ks);
		}
		return 0;
	}
	if (ks == NULL) {
		ks = xcalloc(1, sizeof *ks);
		ks->fd = s;
		TAILQ_INSERT_TAIL(&k->socks, ks, entry);
		curl_multi_assign(k->multi, s, ks);
	} else
		event_del(&ks->ev);
	kind = ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0) |
	       EV_PERSIST;
	event_assign(&ks->ev, k->base, s, kind, kube_sock_event, k);
	event_add(&ks->ev, NULL);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION */
static int kube_timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	struct kube *k = userp;
	struct timeval tv;

	if (timeout_ms < 0) {
		evtimer_del(&k->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(&k->timer, &tv);
	return 0;
}

/* ---- request life cycle ---- */

static void kreq_release_easy(struct kreq *r)
{
	if (r->easy != NULL) {
		curl_multi_remove_handle(r->k->multi, r->easy);
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
	}
	curl_slist_free_all(r->hdrs);
	r->hdrs = NULL;
}

/* unlinks r from its client; r itself stays valid */
static void kreq_unlink(struct kreq *r)
{
	struct kube *k = r->k;

	kreq_release_easy(r);
	event_del(&r->timer);
	kube_slot_drop(r);
	if (r->state == KR_QUEUED && r->low) {
		TAILQ_REMOVE(&k->lowq, r, wentry);
		k->nlow--;
	} else if (r->state == KR_QUEUED)
		TAILQ_REMOVE(&k->writeq, r, wentry);
	else if (r->state == KR_PARKED)
		TAILQ_REMOVE(&k->parked, r, wentry);
	if (k->probe == r) {
		struct timeval zero = {0, 0};

		k->probe = NULL; /* another one goes */
		evtimer_add(&k->gate_timer, &zero);
	}
	TAILQ_REMOVE(&k->reqs, r, entry);
}

static void kreq_free(struct kreq *r)
{
	free(r->method);
	free(r->path);
	free(r->ctype);
	free(r->body);
	buf_clear(&r->resp);
	if (r->tok != NULL)
		json_tokener_free(r->tok);
	free(r->why);
	free(r);
}

static struct kreq_why *kreq_why(struct kreq *r)
{
	if (r->why == NULL)
		r->why = xcalloc(1, sizeof *r->why);
	return r->why;
}

char *kreq_fail(struct kreq *r)
{
	return kreq_why(r)->fail;
}

static void kreq_timer_event(evutil_socket_t fd, short kind, void *arg)
{
	struct kreq *r = arg;
	struct kube *k = r->k;

	kube_enter(k);
	if (r->state == KR_CANCELLED)
		;
	else if (r->write && !r->ticket)
		kube_wq_push(r); /* every attempt of a write takes a token */
	else
		kreq_start(r);
	kube_leave(k);
}

/* waits delay seconds (0: the next loop iteration), then starts r */
void kreq_schedule(struct kreq *r, double delay)
{
	struct timeval tv;

	if (delay < 0)
		delay = 0;
	tv = secs_to_tv(delay);
	kreq_set_state(r, KR_WAITING);
	evtimer_add(&r->timer, &tv);
}

/* Starts r now if we are in one of our event handlers, else from the loop: never inside
 * a curl callback, and never so that a callback runs before kube_request() returns. */
void kreq_launch(struct kreq *r)
{
	if (r->k->in_curl || !r->k->busy)
		kreq_schedule(r, 0);
	else
		kreq_start(r);
}

static struct kreq *kreq_new(
    struct kube *k, size_t size, const char *method, const char *path, void *arg)
{
	struct kreq *r = xcalloc(1, size);

	r->k = k;
	r->method = xstrdup(method);
	r->path = xstrdup(path);
	r->arg = arg;
	backoff_init(&r->bo, KUBE_BACKOFF_BASE, KUBE_RETRY_CAP);
	r->t0 = now_mono();
	r->patience = k->patience;
	evtimer_assign(&r->timer, k->base, kreq_timer_event, r);
	TAILQ_INSERT_TAIL(&k->reqs, r, entry);
	k->stats.requests++;
	return r;
}

/* ---- one transfer ---- */

static struct curl_slist *kreq_headers(struct kreq *r)
{
	struct curl_slist *h = NULL;
	const char *tok;
	char *line;

	h = curl_slist_append(h, "Accept: application/json");
	if (r->body != NULL) {
		xasprintf(
		    &line, "Content-Type: %s", r->ctype != NULL ? r->ctype : "application/json");
		h = curl_slist_append(h, line);
		free(line);
	}
	r->cred_gen = r->k->cred_gen;
	if (r->k->cfg.exec != NULL && r->k->cred_valid)
		tok = r->k->cred.token;
	else
		tok = kube_token(r->k);
	if (tok != NULL && *tok != '\0') {
		xasprintf(&line, "Authorization: Bearer %s", tok);
		h = curl_slist_append(h, line);
		explicit_bzero(line, strlen(line));
		free(line);
	}
	return curl_slist_append(h, "Expect:");
}

static void kreq_tls(struct kreq *r, CURL *e)
{
	const struct kube_config *c = &r->k->cfg;
	struct curl_blob b = {.flags = CURL_BLOB_NOCOPY};

	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, c->insecure ? 0L : 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, c->insecure ? 0L : 2L);
	if (c->ca_data != NULL) {
		b.data = c->ca_data;
		b.len = c->ca_len;
		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
	} else if (c->ca_file != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
	if (c->cert_data != NULL) {
		b.data = c->cert_data;
		b.len = c->cert_len;
		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &b);
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
	} else if (c->cert_file != NULL)
		curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert_file);
	if (c->key_data != NULL) {
		b.data = c->key_data;
		b.len = c->key_len;
		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &b);
		curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	} else if (c->key_file != NULL)
		curl_easy_setopt(e, CURLOPT_SSLKEY, c->key_file);
	if (c->exec != NULL && r->k->cred_valid && r->k->cred.cert != NULL) {
		/* copied: a new credential may replace this one during the transfer */
		b.flags = CURL_BLOB_COPY;
		b.data = r->k->cred.cert;
		b.len = r->k->cred.cert_len;
		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &b);
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
		b.data = r->k->cred.key;
		b.len = r->k->cred.key_len;
		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &b);
		curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	}
}

static void kreq_method(struct kreq *r, CURL *e)
{
	const char *body = r->body != NULL ? r->body : "";

	if (strcmp(r->method, "GET") == 0) {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
		return;
	}
	if (strcmp(r->method, "POST") != 0)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
	if (strcmp(r->method, "POST") == 0 || r->body != NULL) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		/* curl's upload buffer is 64 KB by default, held from the transfer's start to its
		 * end; our bodies are a few KB: the smallest curl takes (issue 9) */
		curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, KUBE_UPLOAD_BUFFER);
		/* and its answer is the object or a Status: a receive buffer of 4 KB, not 16 KB
		 * (a longer answer takes more reads); lists and watches keep curl's default */
		curl_easy_setopt(e, CURLOPT_BUFFERSIZE, KUBE_WRITE_RECV_BUFFER);
	}
}

static size_t kreq_write(char *, size_t, size_t, void *);

/* CURLOPT_HEADERFUNCTION: the server answered. A watch may then send nothing for a minute:
 * its headers, not its first event, tell that the server is reachable again */
static size_t kreq_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct kreq *r = userdata;

	if (r->k->down && !r->k->dead)
		kube_set_up(r->k);
	return size * nmemb;
}

static CURL *kreq_easy(struct kreq *r)
{
	struct kube *k = r->k;
	CURL *e;
	char *url;

	if ((e = curl_easy_init()) == NULL)
		return NULL;
	xasprintf(&url, "%s%s", k->url_base, r->path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	free(url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, kreq_why(r)->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, kreq_write);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, kreq_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_USERAGENT, k->user_agent);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	if (strncmp(k->cfg.server, "https:", 6) == 0)
		curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L); /* prefer multiplexing over a new conn */
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, KUBE_CONNECT_TIMEOUT);
	/* a watch has no deadline (timeoutSeconds ends it); keepalive notices a dead peer */
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
	if (!r->watch) {
		curl_easy_setopt(e, CURLOPT_TIMEOUT, k->timeout);
		curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	}
	if (k->connect_to != NULL)
		curl_easy_setopt(e, CURLOPT_CONNECT_TO, k->connect_to);
	if (k->proxy != NULL) {
		curl_easy_setopt(e, CURLOPT_PROXY, k->proxy);
		/* as client-go's proxy-url: every host, whatever NO_PROXY says */
		curl_easy_setopt(e, CURLOPT_NOPROXY, "");
	}
	kreq_tls(r, e);
	kreq_method(r, e);
	return e;
}

static void kreq_conclude(struct kreq *, CURLcode, long, double, int);

static void kreq_start(struct kreq *r)
{
	struct kube *k = r->k;

	if (kube_gate_closed(k, r)) {
		kreq_park(r, 0);
		return;
	}
	r->attempts++;
	k->stats.attempts++;
	kreq_why(r)->errbuf[0] = '\0';
	r->why->fail[0] = '\0';
	r->resp.len = 0;
	if (r->tok != NULL)
		json_tokener_reset(r->tok);
	r->hdrs = kreq_headers(r);
	if ((r->easy = kreq_easy(r)) == NULL ||
	    curl_multi_add_handle(k->multi, r->easy) != CURLM_OK) {
		snprintf(kreq_fail(r), KREQ_FAIL_MAX, "cannot start the transfer");
		kreq_release_easy(r);
		kreq_conclude(r, CURLE_FAILED_INIT, 0, -1, 0);
		return;
	}
	kreq_set_state(r, KR_RUNNING);
}

static const char *kreq_message(struct kreq *r, CURLcode res)
{
	if (r->why != NULL && r->why->fail[0] != '\0')
		return r->why->fail;
	if (r->why != NULL && r->why->errbuf[0] != '\0')
		return r->why->errbuf;
	return curl_easy_strerror(res);
}

void kube_malloc_setup(void)
{
	/* setting it also stops glibc raising it when an mmap'd block is freed: a freed
	 * tokener would otherwise move the next ones onto the heap, where calloc clears (and
	 * so makes resident) all 320 KB */
	mallopt(M_MMAP_THRESHOLD, KUBE_MMAP_THRESHOLD);
}

/* a whole JSON body, or NULL. The client's one tokener: a new one per answer mapped and
 * unmapped its stack (KUBE_JSON_DEPTH entries, 320 KB) each time, two system calls and
 * fresh zero pages for every write's answer (issue 10) */
static json_object *kube_parse(struct kube *k, struct buf *b)
{
	json_object *obj;

	if (b->len == 0)
		return NULL;
	buf_add(b, "", 1); /* NUL-terminate for the tokener and for raw messages */
	b->len--;
	if (k->tok == NULL)
		k->tok = json_tokener_new_ex(KUBE_JSON_DEPTH);
	else
		json_tokener_reset(k->tok);
	obj = json_tokener_parse_ex(k->tok, (const char *)b->data, (int)b->len + 1);
	if (json_tokener_get_error(k->tok) != json_tokener_success) {
		json_object_put(obj);
		obj = NULL;
	}
	return obj;
}

static const char *kube_json_str(json_object *o, const char *key)
{
	json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* reason and message of an error response: a Status body, else the raw text */
static void kube_error_text(
    struct buf *raw, json_object *body, const char **reason, const char **message)
{
	const char *v;

	if ((v = kube_json_str(body, "reason")) != NULL)
		*reason = v;
	if ((v = kube_json_str(body, "message")) != NULL)
		*message = v;
	else if (body == NULL && raw->len > 0) {
		if (raw->len > 512)
			raw->data[512] = '\0';
		*message = (const char *)raw->data;
	}
}

/* the Kubernetes verb and resource ("create virtualmachines.kubevirt.io") of a request */
static void kreq_verb_resource(const struct kreq *r, char *out, size_t outlen)
{
	char path[512], *seg[16], *save = NULL, *p, *q;
	const char *verb = "get", *group = "";
	int n = 0, i, res, named;

	snprintf(path, sizeof path, "%s", r->path);
	if ((q = strchr(path, '?')) != NULL)
		*q = '\0';
	for (p = strtok_r(path, "/", &save); p != NULL && n < 16; p = strtok_r(NULL, "/", &save))
		seg[n++] = p;
	/* /api/v1/... or /apis/<group>/<version>/... */
	res = n > 0 && strcmp(seg[0], "apis") == 0 ? 3 : 2;
	if (res == 3 && n > 1)
		group = seg[1];
	for (i = res; i + 2 < n && strcmp(seg[i], "namespaces") == 0; i += 2)
		res = i + 2;
	named = n > res + 1;
	if (strcmp(r->method, "GET") == 0)
		verb = r->watch ? "watch" : named ? "get" : "list";
	else if (strcmp(r->method, "POST") == 0)
		verb = "create";
	else if (strcmp(r->method, "PUT") == 0)
		verb = "update";
	else if (strcmp(r->method, "PATCH") == 0)
		verb = "patch";
	else if (strcmp(r->method, "DELETE") == 0)
		verb = "delete";
	snprintf(
	    out, outlen, "%s %s%s%s", verb, n > res ? seg[res] : "?", *group ? "." : "", group);
}

/* 401/403: once per verb and resource at warning level (a missing permission is a fact to
 * tell once, not at every retry), then at debug level */
static int kube_forbidden_first(struct kube *k, const char *what)
{
	size_t i;

	for (i = 0; i < k->nforbidden; i++)
		if (strcmp(k->forbidden[i], what) == 0)
			return 0;
	if (k->nforbidden < sizeof k->forbidden / sizeof k->forbidden[0])
		k->forbidden[k->nforbidden++] = xstrdup(what);
	return 1;
}

static void kreq_log_error(struct kreq *r, const struct kube_response *resp)
{
	long s = resp->status;
	char what[256];

	const char *sp = *resp->reason != '\0' ? " " : "";

	if (s == 401 || s == 403) {
		kreq_verb_resource(r, what, sizeof what);
		if (kube_forbidden_first(r->k, what))
			log_warnx(NULL, "not allowed to %s (%s %s: status %ld%s%s): %s", what,
			    r->method, log_escape(r->path), s, sp, resp->reason,
			    log_escape(resp->message));
		else
			log_debug(NULL, "%s %s: status %ld: %s", r->method, log_escape(r->path), s,
			    log_escape(resp->message));
		return;
	}
	/* 404/409/422 are answers the callers expect (level-triggered), not trouble */
	if (s == 0 || s == 429 || s >= 500)
		log_warnx(NULL, "%s %s: status %ld%s%s: %s", r->method, log_escape(r->path), s, sp,
		    resp->reason, log_escape(resp->message));
	else
		log_debug(NULL, "%s %s: status %ld%s%s: %s", r->method, log_escape(r->path), s, sp,
		    resp->reason, log_escape(resp->message));
}

static int kreq_retryable(CURLcode res, long status)
{
	return res != CURLE_OK || status == 429 || (status >= 500 && status != 501);
}

/* the final answer of a request: fill kube_response and call done() */
void kreq_respond(struct kreq *r, CURLcode res, long status)
{
	struct kube_response resp = {.status = status, .reason = "", .message = ""};
	json_object *body = NULL;

	if (res != CURLE_OK) {
		resp.status = 0;
		resp.message = kreq_message(r, res);
	} else {
		resp.body = body = kube_parse(r->k, &r->resp);
		if (status < 200 || status > 299)
			kube_error_text(&r->resp, body, &resp.reason, &resp.message);
	}
	/* a lost answer stays unknown unless a later attempt got a definitive one */
	resp.unknown = r->unknown && (res != CURLE_OK || kreq_retryable(res, status));
	resp.dropped = r->dropped;
	if (r->write && !r->low && --r->k->obj_writes == 0)
		kube_lq_kick(r->k); /* Events may go now */
	if (r->dropped)
		r->k->stats.events_dropped++;
	else if (resp.status < 200 || resp.status > 299) {
		r->k->stats.errors++;
		kreq_log_error(r, &resp);
	}
	kreq_set_state(r, KR_DONE);
	kreq_unlink(r);
	kube_metrics_answered(r);
	r->done(&resp, r->arg);
	json_object_put(body);
	kreq_free(r);
}

/* an attempt that reached the server but may or may not have taken effect: the answer was
 * lost on the way, or the server failed after it may have written (500, 502, 504); 429
 * and 503 are refusals before any work */
static int kreq_maybe_done(CURLcode res, long status)
{
	return res != CURLE_OK || status == 500 || status == 502 || status == 504;
}

/* a request attempt ended: retry it, or answer. unreached: it never left this machine */
static void kreq_finish(
    struct kreq *r, CURLcode res, long status, double retry_after, int unreached)
{
	double delay, now = now_mono();
	char what[CURL_ERROR_SIZE + 32];

	if (unreached) {
		/* not an attempt the server saw: it waits at the gate and keeps its token */
		r->attempts--;
		if (now - r->t0 >= r->patience)
			kreq_respond(r, res, status);
		else
			kreq_park(r, 1);
		return;
	}
	/* the exec credential was refused: once more with a fresh one (a new token too) */
	if (status == 401 && !r->reauth && kube_cred_rejected(r->k, r->cred_gen)) {
		r->ticket = 0;
		r->reauth = 1;
		kreq_schedule(r, 0);
		return;
	}
	r->ticket = 0;
	if (r->low && status == 429) {
		/* an Event is the first thing to give up when the server is overloaded */
		r->dropped = 1;
		kube_hold(r->k, now + (retry_after > 0 ? retry_after : backoff_next(&r->bo)));
		kreq_respond(r, res, status);
		return;
	}
	if (!kreq_retryable(res, status) || res == CURLE_FAILED_INIT) {
		kreq_respond(r, res, status);
		return;
	}
	if (r->write && kreq_maybe_done(res, status))
		r->unknown = 1;
	if (r->attempts >= KUBE_ATTEMPTS || now - r->t0 >= r->patience) {
		kreq_respond(r, res, status);
		return;
	}
	delay = retry_after >= 0 ? retry_after : backoff_next(&r->bo);
	if (status == 429 && delay > 0)
		kube_hold(r->k, now + delay);
	if (res != CURLE_OK)
		snprintf(what, sizeof what, "%s", kreq_message(r, res));
	else
		snprintf(what, sizeof what, "status %ld", status);
	log_warnx(NULL, "%s %s: %s, attempt %d of %d, retrying in %.1fs", r->method,
	    log_escape(r->path), log_escape(what), r->attempts, KUBE_ATTEMPTS, delay);
	r->k->stats.retries++;
	kreq_schedule(r, delay);
}

/* a watch stream ended: end() exactly once, then it is freed */
static void kwatch_finish(struct kreq *r, CURLcode res, long status)
{
	const char *reason = "", *msg = "";
	json_object *body = NULL;

	if (res != CURLE_OK) {
		status = 0;
		msg = kreq_message(r, res);
	} else if (status >= 200 && status <= 299 && r->wpartial) {
		/* cut inside an event (a proxy that ends streams after so many bytes): not a
		 * normal close, whatever the status said */
		status = 0;
		msg = "the stream ended inside an event";
	} else if (status < 200 || status > 299) {
		body = kube_parse(r->k, &r->resp);
		kube_error_text(&r->resp, body, &reason, &msg);
	}
	if (status == 401)
		kube_cred_rejected(r->k, r->cred_gen); /* the next watch runs the plugin first */
	if (status == 401 || status == 403) {
		struct kube_response denied = {.status = status, .reason = reason, .message = msg};

		r->k->stats.errors++;
		kreq_log_error(r, &denied);
	} else if (status < 200 || status > 299) {
		r->k->stats.errors++;
		log_warnx(NULL, "watch %s: status %ld%s%s: %s", log_escape(r->path), status,
		    *reason != '\0' ? " " : "", reason, log_escape(msg));
	} else
		log_debug(NULL, "watch %s: ended", log_escape(r->path));
	kreq_set_state(r, KR_DONE);
	kreq_unlink(r);
	r->end(status, msg, r->arg);
	json_object_put(body);
	kreq_free(r);
}

static void kreq_conclude(
    struct kreq *r, CURLcode res, long status, double retry_after, int unreached)
{
	if (r->watch)
		kwatch_finish(r, res, status);
	else
		kreq_finish(r, res, status, retry_after, unreached);
}

/* Retry-After in seconds (the HTTP-date form is not used by the API server), or -1 */
static double kreq_retry_after(CURL *e)
{
	struct curl_header *h;
	char *end;
	long v;

	if (curl_easy_header(e, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
		return -1;
	v = strtol(h->value, &end, 10);
	if (end == h->value || v < 0)
		return -1;
	return v > KUBE_RETRY_CAP ? KUBE_RETRY_CAP : (double)v;
}

/* 1 if the attempt never reached the server: no connection could be made. Then it cannot
 * have taken effect, and the server counts as down */
static int kreq_unreached(CURL *e, CURLcode res)
{
	curl_off_t connected = 0;

	switch (res) {
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
		return 1;
	case CURLE_OPERATION_TIMEDOUT:
		/* a connect timeout, not one of a transfer under way */
		curl_easy_getinfo(e, CURLINFO_PRETRANSFER_TIME_T, &connected);
		return connected == 0;
	default:
		return 0;
	}
}

/* the bound on connections to the server (kube.h, KUBE_WATCH_STREAMS): enough HTTP/2
 * connections for the running transfers and the watches; none once it answered HTTP/1.1 */
static void kube_conns(struct kube *k)
{
	long n = 0;

	if (!k->h1)
		n = (k->max_running + KUBE_WATCH_STREAMS + KUBE_STREAMS_PER_CONN - 1) /
		    KUBE_STREAMS_PER_CONN;
	curl_multi_setopt(k->multi, CURLMOPT_MAX_HOST_CONNECTIONS, n);
}

static void kreq_complete(struct kreq *r, CURLcode res)
{
	long status = 0, version = 0, conns = 0;
	double retry_after, took = 0;
	int unreached;

	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(r->easy, CURLINFO_HTTP_VERSION, &version);
	curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &conns);
	curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &took);
	log_debug(NULL, "%s %s: %ld in %.3fs, HTTP/%s, %s connection", r->method,
	    log_escape(r->path), status, took, version == CURL_HTTP_VERSION_2_0 ? "2" : "1.1",
	    conns > 0 ? "new" : "reused");
	if (version == CURL_HTTP_VERSION_1_1 && !r->k->h1) {
		log_info(NULL, "the API server answers HTTP/1.1: one transfer a connection");
		r->k->h1 = 1;
		kube_conns(r->k);
	}
	retry_after = kreq_retry_after(r->easy);
	unreached = kreq_unreached(r->easy, res);
	kreq_release_easy(r);
	if (r->state == KR_CANCELLED) {
		kreq_unlink(r);
		kreq_free(r);
		return;
	}
	kube_metrics_attempt(r, status);
	if (unreached)
		kube_set_down(r->k, r, kreq_message(r, res));
	else
		kube_set_up(r->k);
	kreq_conclude(r, res, status, retry_after, unreached);
}

static void kube_check_done(struct kube *k)
{
	struct kreq *r;
	CURLMsg *m;
	CURLcode res;
	CURL *e;
	int left;

	while (!k->dead && (m = curl_multi_info_read(k->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		e = m->easy_handle;
		res = m->data.result;
		r = NULL;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
		if (r != NULL)
			kreq_complete(r, res);
	}
}

/* ---- watch streams ---- */

static void kwatch_dispatch(struct kreq *r, json_object *ev)
{
	const char *type = kube_json_str(ev, "type");
	json_object *obj;

	if (type == NULL || !json_object_object_get_ex(ev, "object", &obj)) {
		log_warnx(
		    NULL, "watch %s: event without type or object, ignored", log_escape(r->path));
		return;
	}
	r->k->stats.watch_events++;
	r->event(type, obj, r->arg);
}

/* Feeds stream bytes to the tokener: objects may be split across chunks, or several may
 * arrive in one. Returns 0, or -1 to abort the stream. */
static int kwatch_feed(struct kreq *r, const char *data, size_t len)
{
	enum json_tokener_error jerr;
	json_object *obj;
	size_t off = 0, n;

	while (off < len) {
		n = len - off > 0x7fffffff ? 0x7fffffff : len - off;
		obj = json_tokener_parse_ex(r->tok, data + off, (int)n);
		if (obj == NULL) {
			if ((jerr = json_tokener_get_error(r->tok)) == json_tokener_continue) {
				/* more than the newline between events: an event has begun */
				for (; n > 0 && !r->wpartial; n--, off++)
					r->wpartial = !isspace((unsigned char)data[off]);
				off += n;
				continue;
			}
			snprintf(kreq_fail(r), KREQ_FAIL_MAX, "bad JSON in watch stream: %s",
			    json_tokener_error_desc(jerr));
			return -1;
		}
		off += json_tokener_get_parse_end(r->tok);
		json_tokener_reset(r->tok);
		r->wpartial = 0;
		kwatch_dispatch(r, obj);
		json_object_put(obj);
		if (r->state == KR_CANCELLED || r->k->dead)
			return -1;
	}
	return 0;
}

/* CURLOPT_WRITEFUNCTION */
static size_t kreq_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct kreq *r = userdata;
	size_t len = size * nmemb;
	long status = 0;

	if (r->state == KR_CANCELLED || r->k->dead)
		return CURL_WRITEFUNC_ERROR;
	if (r->watch) {
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200 && status <= 299)
			return kwatch_feed(r, ptr, len) == 0 ? len : CURL_WRITEFUNC_ERROR;
		if (r->resp.len > KUBE_ERRBODY_MAX)
			return len; /* an error body: keep the beginning only */
	}
	buf_add(&r->resp, ptr, len);
	return len;
}

static void kube_reap_event(evutil_socket_t fd, short kind, void *arg)
{
	struct kube *k = arg;
	struct kreq *r, *next;

	kube_enter(k);
	for (r = TAILQ_FIRST(&k->reqs); r != NULL; r = next) {
		next = TAILQ_NEXT(r, entry);
		if (r->state == KR_CANCELLED) {
			kreq_unlink(r);
			kreq_free(r);
		}
	}
	kube_leave(k);
}

/* ---- transport: tls-server-name, proxy-url, insecure-skip-tls-verify ---- */

/*
 * tls-server-name: libcurl takes the name for SNI and the certificate check from the URL,
 * so the URL carries that name and CURLOPT_CONNECT_TO sends the connection to the server's
 * real host and port. 0, or -1 with a log line for a server URL that cannot be parsed.
 */
static int kube_sni_setup(struct kube *k)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *url = NULL, *line;
	int rv = -1;

	if (u == NULL || curl_url_set(u, CURLUPART_URL, k->cfg.server, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_HOST, k->cfg.tls_server_name, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK) {
		log_warnx(NULL, "server %s with tls-server-name %s: not a URL we can use",
		    log_escape(k->cfg.server), log_escape(k->cfg.tls_server_name));
		goto out;
	}
	/* curl_url_get adds a "/" path; requests append their own */
	k->url_base = xstrndup(url, strlen(url) - (url[strlen(url) - 1] == '/'));
	xasprintf(&line, "%s:%s:%s:%s", k->cfg.tls_server_name, port, host, port);
	k->connect_to = curl_slist_append(NULL, line);
	free(line);
	rv = 0;
out:
	curl_free(host);
	curl_free(port);
	curl_free(url);
	curl_url_cleanup(u);
	return rv;
}

static int kube_transport_setup(struct kube *k)
{
	const char *p = k->cfg.proxy_url;

	if (k->cfg.tls_server_name != NULL) {
		if (kube_sni_setup(k) == -1)
			return -1;
	} else
		k->url_base = xstrdup(k->cfg.server);
	/* client-go's socks5 proxy resolves names at the proxy: curl's socks5h */
	if (p != NULL && strncmp(p, "socks5://", 9) == 0)
		xasprintf(&k->proxy, "socks5h://%s", p + 9);
	else if (p != NULL)
		k->proxy = xstrdup(p);
	if (k->cfg.insecure)
		log_warnx(NULL,
		    "insecure-skip-tls-verify is set for %s (%s): the API server's certificate "
		    "is not checked, anyone in the path can read and change this traffic",
		    k->cfg.server, k->cfg.source != NULL ? k->cfg.source : "kubeconfig");
	return 0;
}

static void kube_transport_clear(struct kube *k)
{
	free(k->url_base);
	free(k->proxy);
	curl_slist_free_all(k->connect_to);
}

/* ---- the API ---- */

/*
 * GnuTLS initialises itself in a constructor when it is loaded (its "implicit init": crypto
 * back-ends, the system priority file, ~640 KB of its pages and 100 KB of heap resident in
 * every HTTP stage), unless the program defines this hook, which libgnutls exports as a
 * weak symbol for the purpose. Our own libcurl (scripts/build-curl.sh) links no GnuTLS;
 * this is for `make CURL=system`, where Debian's libcurl uses OpenSSL and loads GnuTLS only
 * through librtmp, and our transfers are http and https only (CURLOPT_PROTOCOLS_STR). A
 * libcurl built on GnuTLS still works: it calls gnutls_global_init() itself, which this
 * hook does not affect (issue 9).
 */
int _gnutls_global_init_skip(void);
int _gnutls_global_init_skip(void)
{
	return 1;
}

struct kube *kube_new(
    struct event_base *base, const struct kube_config *cfg, const struct kube_opts *opts)
{
	static int curl_ready;
	struct kube *k;

	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			log_warnx(NULL, "curl_global_init failed");
			return NULL;
		}
		curl_ready = 1;
	}
	if (base == NULL || cfg == NULL || cfg->server == NULL) {
		log_warnx(NULL, "kube_new: no event base or no server");
		return NULL;
	}
	k = xcalloc(1, sizeof *k);
	k->base = base;
	kubeconfig_copy(&k->cfg, cfg);
	if (kube_transport_setup(k) == -1) {
		kubeconfig_clear(&k->cfg);
		free(k);
		return NULL;
	}
	/* "vmpoold/0.1.0 (vmpool-actuator)": one product name in audit logs, the stage beside it */
	if (opts != NULL && opts->user_agent != NULL && strchr(opts->user_agent, '/') != NULL)
		k->user_agent = xstrdup(opts->user_agent); /* a complete product/version */
	else if (opts != NULL && opts->user_agent != NULL)
		xasprintf(&k->user_agent, "%s (%s)", KUBE_USER_AGENT, opts->user_agent);
	else
		k->user_agent = xstrdup(KUBE_USER_AGENT);
	k->max_running = KUBE_MAX_RUNNING;
	k->timeout = opts != NULL && opts->timeout > 0 ? opts->timeout : KUBE_DEFAULT_TIMEOUT;
	k->patience = opts != NULL && opts->patience > 0 ? opts->patience : KUBE_PATIENCE;
	k->qps = opts != NULL ? opts->qps : 0;
	tb_init(&k->tb, k->qps, opts != NULL && opts->burst > 1 ? opts->burst : 1, now_mono());
	TAILQ_INIT(&k->writeq);
	TAILQ_INIT(&k->lowq);
	tb_init(&k->ltb, k->qps / KUBE_EVENT_SHARE,
	    opts != NULL && opts->burst >= 2 * KUBE_EVENT_SHARE ? opts->burst / KUBE_EVENT_SHARE
	                                                        : 1,
	    now_mono());
	evtimer_assign(&k->lq_timer, base, kube_lq_event, k);
	TAILQ_INIT(&k->parked);
	backoff_init(&k->down_bo, KUBE_DOWN_BASE, KUBE_DOWN_CAP);
	evtimer_assign(&k->gate_timer, base, kube_gate_event, k);
	TAILQ_INIT(&k->reqs);
	TAILQ_INIT(&k->socks);
	evtimer_assign(&k->timer, base, kube_timer_event, k);
	evtimer_assign(&k->reaper, base, kube_reap_event, k);
	evtimer_assign(&k->wq_timer, base, kube_wq_event, k);
	kube_exec_init(k);
	if ((k->multi = curl_multi_init()) == NULL) {
		log_warnx(NULL, "curl_multi_init failed");
		kube_transport_clear(k);
		kubeconfig_clear(&k->cfg);
		free(k->user_agent);
		free(k);
		return NULL;
	}
	curl_multi_setopt(k->multi, CURLMOPT_SOCKETFUNCTION, kube_sock_cb);
	curl_multi_setopt(k->multi, CURLMOPT_SOCKETDATA, k);
	curl_multi_setopt(k->multi, CURLMOPT_TIMERFUNCTION, kube_timer_cb);
	curl_multi_setopt(k->multi, CURLMOPT_TIMERDATA, k);
	curl_multi_setopt(k->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	/* at most KUBE_STREAMS_PER_CONN streams on one HTTP/2 connection: more transfers open
	 * more connections (issue 10, kube.h) */
	curl_multi_setopt(k->multi, CURLMOPT_MAX_CONCURRENT_STREAMS, (long)KUBE_STREAMS_PER_CONN);
	k->h1 = strncmp(k->cfg.server, "https:", 6) != 0; /* http: is HTTP/1.1 (2TLS) */
	kube_conns(k);
	return k;
}

static void kube_destroy(struct kube *k)
{
	struct kreq *r;
	struct ksock *ks;

	while ((r = TAILQ_FIRST(&k->reqs)) != NULL) {
		kreq_unlink(r);
		kreq_free(r);
	}
	curl_multi_cleanup(k->multi);
	while ((ks = TAILQ_FIRST(&k->socks)) != NULL) {
		event_del(&ks->ev);
		TAILQ_REMOVE(&k->socks, ks, entry);
		free(ks);
	}
	evtimer_del(&k->timer);
	evtimer_del(&k->reaper);
	evtimer_del(&k->wq_timer);
	evtimer_del(&k->lq_timer);
	evtimer_del(&k->gate_timer);
	kube_exec_free(k);
	if (k->tok != NULL)
		json_tokener_free(k->tok);
	if (k->token != NULL)
		explicit_bzero(k->token, strlen(k->token));
	free(k->token);
	free(k->user_agent);
	while (k->nforbidden > 0)
		free(k->forbidden[--k->nforbidden]);
	kube_transport_clear(k);
	kubeconfig_clear(&k->cfg);
	free(k);
}

void kube_free(struct kube *k)
{
	if (k == NULL)
		return;
	if (k->busy) {
		k->dead = 1; /* called from a callback: finish when the handler returns */
		return;
	}
	kube_destroy(k);
}

int kube_request(struct kube *k, const char *method, const char *path, const char *content_type,
    const char *body, kube_done_fn done, void *arg)
{
	return kube_request_patient(k, method, path, content_type, body, 0, done, arg);
}

static int kube_request_prio(struct kube *k, const char *method, const char *path,
    const char *content_type, const char *body, double patience, kube_done_fn done, void *arg,
    int low)
{
	struct kreq *r;

	if (k == NULL || k->dead || method == NULL || path == NULL || path[0] != '/' ||
	    done == NULL) {
		log_warnx(NULL, "kube_request: bad arguments");
		return -1;
	}
	r = kreq_new(k, sizeof *r, method, path, arg);
	r->ctype = content_type != NULL ? xstrdup(content_type) : NULL;
	r->body = body != NULL ? xstrdup(body) : NULL;
	r->done = done;
	if (patience > 0)
		r->patience = patience;
	if (strcmp(method, "GET") == 0) {
		kreq_launch(r);
		return 0;
	}
	k->stats.writes++;
	r->write = 1;
	r->low = low > 0;
	r->first = low < 0;
	if (!r->low)
		k->obj_writes++;
	kube_wq_push(r);
	return 0;
}

int kube_request_patient(struct kube *k, const char *method, const char *path,
    const char *content_type, const char *body, double patience, kube_done_fn done, void *arg)
{
	return kube_request_prio(k, method, path, content_type, body, patience, done, arg, 0);
}

int kube_request_next(struct kube *k, const char *method, const char *path,
    const char *content_type, const char *body, kube_done_fn done, void *arg)
{
	return kube_request_prio(k, method, path, content_type, body, 0, done, arg, -1);
}

int kube_request_event(struct kube *k, const char *method, const char *path,
    const char *content_type, const char *body, double patience, kube_done_fn done, void *arg)
{
	return kube_request_prio(k, method, path, content_type, body, patience, done, arg, 1);
}

struct event_base *kube_base(const struct kube *k)
{
	return k != NULL ? k->base : NULL;
}

double kube_patience(const struct kube *k)
{
	return k->patience;
}

struct kube_watch *kube_watch_start(
    struct kube *k, const char *path, kube_event_fn event, kube_end_fn end, void *arg)
{
	struct kreq *r;

	if (k == NULL || k->dead || path == NULL || path[0] != '/' || event == NULL ||
	    end == NULL) {
		log_warnx(NULL, "kube_watch_start: bad arguments");
		return NULL;
	}
	r = kreq_new(k, sizeof(struct kube_watch), "GET", path, arg);
	r->watch = 1;
	r->event = event;
	r->end = end;
	r->tok = json_tokener_new_ex(KUBE_JSON_DEPTH);
	kreq_launch(r);
	return (struct kube_watch *)r;
}

void kube_watch_cancel(struct kube_watch *w)
{
	struct kreq *r = (struct kreq *)w;
	struct timeval zero = {0, 0};

	if (r == NULL || r->state == KR_DONE || r->state == KR_CANCELLED)
		return;
	if (r->k->in_curl) {
		/* inside a curl callback: the handle cannot be removed now */
		event_del(&r->timer);
		kreq_set_state(r, KR_CANCELLED);
		evtimer_add(&r->k->reaper, &zero);
		return;
	}
	kreq_unlink(r);
	kreq_free(r);
}

void kube_get_stats(const struct kube *k, struct kube_stats *st)
{
	*st = k->stats;
}

char *kube_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = xmalloc(strlen(s) * 3 + 1), *p = out;
	unsigned char c;

	for (; (c = (unsigned char)*s) != '\0'; s++) {
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~')
			*p++ = (char)c;
		else {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		}
	}
	*p = '\0';
	return out;
}

void kube_set_max_running(struct kube *k, int n)
{
	k->max_running = n > 0 ? n : 1;
	kube_conns(k);
}

struct kube *kube_open(
    struct event_base *base, const char *kubeconfig, double qps, int burst, const char *user_agent)
{
	struct kube_config kc;
	struct kube_opts ko;
	struct kube *kube;
	char err[512];

	memset(&kc, 0, sizeof kc);
	if (kubeconfig_load(kubeconfig, &kc, err, sizeof err) == -1)
		fatal_config("kubeconfig: %s", err);
	memset(&ko, 0, sizeof ko);
	ko.qps = qps;
	ko.burst = burst;
	ko.user_agent = user_agent;
	if ((kube = kube_new(base, &kc, &ko)) == NULL)
		fatal_config("cannot set up the API client for %s", kc.server);
	log_info(NULL, "API server %s (from %s)", kc.server, kc.source ? kc.source : "?");
	kubeconfig_clear(&kc);
	return kube;
}

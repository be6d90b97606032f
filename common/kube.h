/*
 * kube.h: the small Kubernetes client. kubeconfig loading (libyaml) with the usual
 * precedence, and HTTP over libcurl's multi-socket interface driven by the caller's libevent
 * base (HTTP/2 where offered, connections reused). Nothing blocks.
 *
 * Requests: 429, 5xx and lost answers are retried after Retry-After (or backoff), up to 10
 * attempts within the request's patience (60 s unless asked otherwise); every attempt of a
 * non-GET request passes the writer's token bucket (qps/burst). A 429's Retry-After holds
 * every request of the client. When the server cannot be reached at all, the client is
 * "down": requests wait (parked, not failed) and one probe at a time tries again after a
 * backoff shared by all (0.5 s doubling to 8 s), so an outage costs a few connection
 * attempts, not one per request. Bearer tokens from a tokenFile are re-read when the file
 * changes.
 * Watches parse the stream incrementally (json-c tokener) as bytes arrive.
 */
#ifndef VMPOOL_KUBE_H
#define VMPOOL_KUBE_H

#include <event2/event.h>
#include <json-c/json.h>
#include <stddef.h>

/* users[].user.exec: a credential plugin run for a token (or client certificate) */
struct kube_exec {
	char *api_version; /* client.authentication.k8s.io/v1 or v1beta1 */
	char *command;     /* a name looked up in PATH, or a path (relative to the kubeconfig) */
	char **args;       /* NULL-terminated, without the command */
	char **env;        /* NULL-terminated "NAME=VALUE", added to our environment */
	char *install_hint;
	int provide_cluster_info; /* KUBERNETES_EXEC_INFO carries spec.cluster */
};

struct kube_config {
	char *source;     /* where it was loaded from, for log lines */
	char *server;     /* https://host:port, no trailing slash */
	char *namespace;  /* context namespace or "default" */
	char *token;      /* bearer token, or NULL */
	char *token_file; /* re-read when it changes, or NULL */
	char *ca_file;
	unsigned char *ca_data;
	size_t ca_len;
	char *cert_file, *key_file;
	unsigned char *cert_data;
	size_t cert_len;
	unsigned char *key_data;
	size_t key_len;
	int insecure;           /* insecure-skip-tls-verify */
	char *tls_server_name;  /* SNI and the name the certificate must carry, or NULL */
	char *proxy_url;        /* http://, https:// or socks5:// proxy, or NULL */
	struct kube_exec *exec; /* credential plugin, or NULL */
};

/*
 * Precedence: explicit path (--kubeconfig), else $KUBECONFIG (a ':' list of files merged as
 * kubectl does), else the in-cluster service account (KUBERNETES_SERVICE_HOST +
 * /var/run/secrets/...), else ~/.kube/config. Honors current-context. Returns 0, or -1 with
 * a clear message in err. A server override (kubeconfig_override_server) replaces the
 * server found; with no configuration found at all it is used alone, without credentials.
 */
int kubeconfig_load(const char *path, struct kube_config *, char *err, size_t errlen);
/* parse one kubeconfig file (used by kubeconfig_load and unit tests) */
int kubeconfig_load_file(const char *path, struct kube_config *, char *err, size_t errlen);
/* a ':' separated list of files, merged: missing files are skipped, the first file to
 * define a cluster, user or context name wins, current-context from the first that sets
 * it. 1 loaded, 0 no file of the list exists, -1 error */
int kubeconfig_load_list(const char *list, struct kube_config *, char *err, size_t errlen);
/* --master: the API server URL to use instead of the kubeconfig's (NULL: none); copied */
void kubeconfig_override_server(const char *server);
void kubeconfig_clear(struct kube_config *);
/* a deep copy of s into d */
void kubeconfig_copy(struct kube_config *d, const struct kube_config *s);
/* reads a small file (kubeconfig, token, namespace): NUL-terminated, caller frees;
 * NULL with errno set on error. lenp may be NULL. */
char *kubeconfig_read_file(const char *path, size_t *lenp);

struct kube;

/* transfers (watches aside) a client runs at once; the others wait parked. A transfer costs
 * about 9 KB in curl from its start to its end, however long it waits for a stream: without
 * a bound a burst of 1,000 tokens plus the Events ran 3,000 at once (issue 9). */
#define KUBE_MAX_RUNNING 100
/* HTTP/2 streams on one connection: KUBE_MAX_RUNNING transfers use up to 7 connections.
 * kube-apiserver answers one connection's streams much slower than the same requests
 * spread over several: on the local control plane (make bench, limits), 500 -> 0 took
 * 2.62-3.07 s over one connection and 1.83-1.84 s with 8 or 16 streams a connection. */
#define KUBE_STREAMS_PER_CONN 16
/* and at most enough connections for the running transfers and this many watches: a burst
 * of transfers started while the first connections were still in their TLS handshake each
 * opened one of their own (22 where 8 would do; each costs about 85 KB of curl, nghttp2 and
 * OpenSSL buffers: issue 9). Lifted when the server answers HTTP/1.1 (one transfer a
 * connection). */
#define KUBE_WATCH_STREAMS 16

struct kube_opts {
	double qps; /* writer token bucket; <= 0 unlimited */
	int burst;
	const char *user_agent; /* "PROGRAM": sent as "vmpoold/VERSION (PROGRAM)"; "x/1" as is */
	long timeout;           /* seconds for non-watch requests, 0 = 60 */
	double patience;        /* seconds a request may wait for an outcome, 0 = 60 */
};
struct kube *kube_new(struct event_base *, const struct kube_config *, const struct kube_opts *);
/* glibc malloc: blocks of 128 KB and more always mmap'd (the threshold fixed, not raised by
 * frees). A JSON tokener's stack (KUBE_JSON_DEPTH entries, 320 KB) is then fresh zero pages
 * of which only the few used become resident; a watch keeps one for its life. Call first in
 * main (issue 9). */
void kube_malloc_setup(void);
/* start-up helper: loads the kubeconfig (precedence as kubeconfig_load) and creates the client;
 * an unusable configuration is logged and exits EXIT_CONFIG */
struct kube *kube_open(
    struct event_base *, const char *kubeconfig, double qps, int burst, const char *user_agent);
void kube_free(struct kube *);
/* transfers (watches aside) the client runs at once, KUBE_MAX_RUNNING (100) by default; the
 * others wait parked. Each costs about 29 KB of curl buffers while it runs: a stage whose
 * writes are few and small may ask for fewer */
void kube_set_max_running(struct kube *, int n);

struct kube_response {
	long status;         /* HTTP status, 0 if the request never got one */
	json_object *body;   /* parsed JSON body or NULL; borrowed during the callback */
	const char *reason;  /* Status.reason for errors ("AlreadyExists", "NotFound", ...) or "" */
	const char *message; /* Status.message, or the transport error text, or "" */
	/* a write whose effect is unknown: an attempt reached the server and its answer was
	 * lost (or it failed with 500/502/504), and no later attempt settled it. Not a failure:
	 * the object may have been written. Never set when no attempt reached the server. */
	int unknown;
	/* an Event write dropped under pressure (kube_request_event): it never reached the
	 * server, or was refused with 429 */
	int dropped;
};
typedef void (*kube_done_fn)(const struct kube_response *, void *arg);

/* path starts with /api or /apis and may carry a query. body may be NULL.
 * content_type NULL means application/json. Returns 0 (queued) or -1. */
int kube_request(struct kube *, const char *method, const char *path, const char *content_type,
    const char *body, kube_done_fn, void *arg);
/* the same, waiting up to patience seconds (0: the default) for an outcome */
int kube_request_patient(struct kube *, const char *method, const char *path,
    const char *content_type, const char *body, double patience, kube_done_fn, void *arg);

/* A write that finishes one made before (the finalizer patch after a DELETE): it goes
 * ahead of the object writes that wait for a token of the bucket, so the work
 * under way completes before new work starts. */
int kube_request_next(struct kube *, const char *method, const char *path, const char *content_type,
    const char *body, kube_done_fn, void *arg);

/* An Event write: lower priority than every other write. It waits while another write of
 * the client is queued or outstanding, goes at its own rate (a tenth of qps and burst) and
 * only with a token of the writer's bucket that is there now (so it never makes an object
 * write wait), and under pressure it is dropped first: every Event waiting is answered
 * `dropped` when a 429 arrives, when it is itself answered 429, or when it has waited
 * KUBE_EVENT_MAX_WAIT while object writes went first. While the server is unreachable it
 * waits like any request, within its patience. */
int kube_request_event(struct kube *, const char *method, const char *path,
    const char *content_type, const char *body, double patience, kube_done_fn, void *arg);
/* fn(arg) once, from the loop, when an Event write could go now: no other write queued or
 * outstanding, no Retry-After hold, the server reachable and the tokens there. How a writer
 * of Events dropped under pressure learns that the pressure ended, instead of trying again
 * on a timer. A later call replaces an earlier one; fn NULL cancels. */
void kube_events_notify(struct kube *, void (*fn)(void *), void *arg);
/* the event base the client runs on (NULL for NULL) */
struct event_base *kube_base(const struct kube *);
/* the seconds a request may wait for an outcome when it asks for no other patience */
double kube_patience(const struct kube *);

/* A watch: path is the full watch URL path + query (watch=1, resourceVersion, ...).
 * event() is called for each event with type "ADDED", "MODIFIED", "DELETED", "BOOKMARK"
 * or "ERROR" (obj is then a Status); end() once when the stream ends for any reason
 * (status = HTTP status or 0, 200 for a normal server close; 0 with a message for a
 * transfer that failed or a stream that ended inside an event). After end() the watch
 * is freed. kube_watch_cancel() stops it without calling end(). */
struct kube_watch;
typedef void (*kube_event_fn)(const char *type, json_object *obj, void *arg);
typedef void (*kube_end_fn)(long status, const char *message, void *arg);
struct kube_watch *kube_watch_start(
    struct kube *, const char *path, kube_event_fn, kube_end_fn, void *arg);
void kube_watch_cancel(struct kube_watch *);

/* counters for metrics */
struct kube_stats {
	unsigned long requests, writes, errors, retries, watch_events;
	unsigned long outages;        /* times the server became unreachable */
	unsigned long attempts;       /* transfers started (each may open a connection) */
	unsigned long events_dropped; /* Event writes dropped under pressure */
};
void kube_get_stats(const struct kube *, struct kube_stats *);

/* exec credential plugins (kubeexec.c): what one run printed */
struct kube_cred {
	char *token;
	unsigned char *cert, *key; /* PEM, from clientCertificateData / clientKeyData */
	size_t cert_len, key_len;
	double expiry; /* wall clock seconds, 0: none */
};
/* an ExecCredential printed by a plugin configured with api_version: 0, or -1 with err */
int kubeexec_parse(const char *api_version, const char *out, size_t len, struct kube_cred *,
    char *err, size_t errlen);
/* KUBERNETES_EXEC_INFO for cfg->exec (spec.cluster with provideClusterInfo); caller frees */
char *kubeexec_info(const struct kube_config *);
void kube_cred_clear(struct kube_cred *);

/* percent-escape for a path or query component; caller frees */
char *kube_escape(const char *);

#endif

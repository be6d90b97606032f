/*
 * kube_int.h: the Kubernetes client's private parts, shared by kube.c (requests, transfers,
 * watch streams, the API) and kubegate.c (when attempts may go). Not for other modules.
 */
#ifndef VMPOOL_KUBE_INT_H
#define VMPOOL_KUBE_INT_H

#include <sys/queue.h>
#include <sys/types.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <json-c/json.h>
#include <time.h>

#include "backoff.h"
#include "xmalloc.h"
#include "kube.h"

#define KUBE_ATTEMPTS     10   /* answered attempts (429, 5xx, lost answers) per request */
#define KUBE_PATIENCE     60.0 /* seconds a request may wait for an outcome, parked or not */
#define KUBE_RETRY_CAP    30.0
#define KUBE_BACKOFF_BASE 0.2
#define KUBE_DOWN_BASE    0.5 /* the shared backoff while the server cannot be reached */
#define KUBE_DOWN_CAP     8.0
#define KUBE_JSON_DEPTH                                                                            \
	10000 /* as deep as the API server's own decoder: one deep item cannot spoil a list */
#define KUBE_CONNECT_TIMEOUT   10L
#define KUBE_DEFAULT_TIMEOUT   60L
#define KUBE_ERRBODY_MAX       (64 * 1024)
#define KUBE_UPLOAD_BUFFER     16384L /* CURLOPT_UPLOAD_BUFFERSIZE of a write: curl's minimum */
#define KUBE_WRITE_RECV_BUFFER 4096L  /* CURLOPT_BUFFERSIZE of a write (curl: 16 KB) */
#define KUBE_MMAP_THRESHOLD    (128 * 1024) /* glibc's default, kept fixed */
#define KUBE_USER_AGENT        "vmpoold/0.1.0"
#define KUBE_EVENT_MAX_WAIT    10.0 /* seconds an Event waits behind object writes, then dropped */
#define KUBE_EVENT_QUEUE_MAX   1000 /* Events waiting; the oldest is dropped beyond */
#define KUBE_EVENT_SHARE       10   /* Events get qps / 10 and burst / 10 (at least 1) */

enum kexec_state { KEXEC_IDLE, KEXEC_RUNNING, KEXEC_REAPING, KEXEC_BACKOFF };

enum kreq_state { KR_NEW, KR_QUEUED, KR_WAITING, KR_PARKED, KR_RUNNING, KR_CANCELLED, KR_DONE };

#define KREQ_FAIL_MAX 160
/* why an attempt failed: made when a request first starts or fails (kreq_why), not before,
 * so that the hundreds of requests waiting parked or queued do not carry 416 bytes each */
struct kreq_why {
	char errbuf[CURL_ERROR_SIZE]; /* curl's (CURLOPT_ERRORBUFFER) */
	char fail[KREQ_FAIL_MAX];     /* our own reason to abort a transfer */
};

struct kube;

struct kreq {
	TAILQ_ENTRY(kreq) entry; /* k->reqs: everything alive */
	TAILQ_ENTRY(kreq)
	wentry; /* k->writeq (k->lowq if low) while QUEUED, k->parked while PARKED */
	struct kube *k;
	enum kreq_state state;
	int watch;
	char *method, *path, *ctype, *body;
	kube_done_fn done;
	kube_event_fn event;
	kube_end_fn end;
	void *arg;
	int attempts;    /* attempts that reached the server */
	int write;       /* not a GET: passes the token bucket before every attempt */
	int ticket;      /* a write holding its token for the next attempt */
	int unknown;     /* an attempt may have taken effect, its answer was lost */
	int low;         /* an Event: the low-priority queue (kube_request_event) */
	int first;       /* ahead of the other object writes (kube_request_next) */
	int slot;        /* let go by the gate into a free transfer slot, not started yet */
	int dropped;     /* answered without reaching the server: pressure */
	double t0;       /* when it was asked for */
	double patience; /* seconds it may take in all */
	struct backoff bo;
	struct event timer; /* retry wait or deferred start */
	CURL *easy;
	struct curl_slist *hdrs;
	struct buf resp;
	struct kreq_why *why; /* NULL until it starts or fails */
	json_tokener *tok;
	int wpartial; /* a watch: bytes of an event not yet complete are in the tokener */

	/* the exec credential (kubeexec.c) */
	unsigned cred_gen; /* the credential its last attempt carried */
	int reauth;        /* went again after a 401 with a fresh credential */
};

struct kube_watch {
	struct kreq r; /* first: a kube_watch is a kreq */
};

/* a socket curl asked us to watch */
struct ksock {
	TAILQ_ENTRY(ksock) entry;
	curl_socket_t fd;
	struct event ev;
};

struct kube {
	struct event_base *base;
	CURLM *multi;
	struct event timer;  /* curl's timeout */
	struct event reaper; /* frees watches cancelled inside curl callbacks */
	struct event wq_timer;
	struct kube_config cfg;
	char *url_base;                /* the server, or its URL with the tls-server-name */
	struct curl_slist *connect_to; /* tls-server-name: where to connect really */
	char *proxy;                   /* CURLOPT_PROXY */
	char *user_agent;
	long timeout;
	double patience;     /* default seconds a request may wait for an outcome */
	char *forbidden[64]; /* verb + resource already reported as not allowed */
	size_t nforbidden;
	double qps;
	struct tokenbucket tb;
	int wq_reserved; /* the FIFO head holds a token and waits for wq_timer */
	TAILQ_HEAD(, kreq) writeq;
	/* Events: their own FIFO and bucket, behind every object write (kubegate.c) */
	TAILQ_HEAD(, kreq) lowq;
	size_t nlow;
	struct tokenbucket ltb;
	struct event lq_timer;
	void (*lq_notify)(void *); /* kube_events_notify() */
	void *lq_notify_arg;
	long obj_writes; /* object writes asked for and not answered yet */
	/* the gate: while the server cannot be reached (down) or asked us to wait (hold_until,
	 * from Retry-After), requests are parked; while down, one probe at a time tries */
	int down;
	struct backoff down_bo;
	double hold_until;
	struct kreq *probe;
	struct event gate_timer;
	TAILQ_HEAD(, kreq) parked;
	int nrunning;    /* transfers RUNNING, watches aside (max_running) */
	int max_running; /* KUBE_MAX_RUNNING unless kube_set_max_running() */
	int h1;          /* the server answered HTTP/1.1: no bound on connections (kube_conns) */
	int nslots;      /* slots given to parked requests that have not started yet */
	TAILQ_HEAD(, kreq) reqs;
	TAILQ_HEAD(, ksock) socks;
	json_tokener *tok; /* parses answers (kube_parse): one stack, not one per answer */
	int in_curl;       /* inside curl_multi_socket_action */
	int busy;          /* inside one of our event handlers */
	int dead;          /* kube_free() was called while busy */
	char *token;       /* from token_file */
	double token_checked;
	struct timespec token_mtime;
	off_t token_size;
	int token_warned;
	struct kube_stats stats;
	/* the exec credential plugin (kubeexec.c) */
	struct kube_cred cred;
	int cred_valid;
	unsigned cred_gen; /* bumped with every new credential */
	enum kexec_state exec_state;
	pid_t exec_pid;
	int exec_fd; /* its stdout, or -1 */
	int exec_timed_out;
	double exec_started;
	struct event exec_ev;
	struct event exec_timer; /* deadline, exit polling, retry */
	struct buf exec_out;
	struct backoff exec_bo;
};

/* kube.c */
void kreq_set_state(struct kreq *, enum kreq_state);
void kube_enter(struct kube *);
void kube_leave(struct kube *);
void kreq_schedule(struct kreq *, double delay);
void kreq_launch(struct kreq *);
void kreq_respond(struct kreq *, CURLcode, long status);
/* where our reason to abort goes (KREQ_FAIL_MAX bytes), made if need be */
char *kreq_fail(struct kreq *);

/* kubeexec.c: the exec credential plugin */
void kube_exec_init(struct kube *);
void kube_exec_free(struct kube *);
void kube_exec_run(struct kube *);
int kube_cred_wait(struct kube *);
int kube_cred_rejected(struct kube *, unsigned gen);

/* kubemetrics.c: client-go's rest_client_* metrics. attempt: a transfer ended with this
 * HTTP status (0: none); answered: the request's final answer is given */
void kube_metrics_attempt(const struct kreq *, long status);
void kube_metrics_answered(const struct kreq *);

/* kubegate.c: when attempts may go. The writer's token bucket (a FIFO, never blocking) and
 * the gate: while the server cannot be reached, one probe at a time after a backoff shared
 * by every request; while a Retry-After holds, nothing */
int kube_gate_closed(struct kube *, struct kreq *);
void kreq_park(struct kreq *, int head);
void kube_set_down(struct kube *, struct kreq *, const char *why);
void kube_set_up(struct kube *);
void kube_hold(struct kube *, double until);
void kube_gate_event(evutil_socket_t, short, void *);
/* parked requests are looked at again from the loop (a credential arrived or failed) */
void kube_gate_kick(struct kube *);
void kube_slot_drop(struct kreq *);
void kube_wq_event(evutil_socket_t, short, void *);
void kube_wq_push(struct kreq *);
void kube_lq_event(evutil_socket_t, short, void *);
void kube_lq_kick(struct kube *);
void kube_lq_drop_all(struct kube *, const char *why);

#endif

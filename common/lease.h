/*
 * lease.h: leader election on a coordination.k8s.io/v1 Lease with client-go's semantics
 * (k8s.io/client-go/tools/leaderelection), the pure part: the flags, the record a Lease
 * holds, and the decisions. No clock is read and no socket touched: callers pass
 * monotonic "now" and the wall time for the Lease's timestamps, so a test drives it with a
 * fake clock. The I/O (GET/POST/PUT of the Lease, timers) is in actuator/elect.c.
 *
 * Expiry is judged by observed time, not by the Lease's timestamps: a candidate notes the
 * monotonic time at which it last saw the record change and takes the Lease only once
 * leaseDurationSeconds have passed since then with no change (clock skew between machines
 * cannot shorten it). Writes are optimistic on the Lease's resourceVersion. A leader counts
 * its lease from the moment it *sent* its last successful renewal and stops leading when
 * renew_deadline has passed since then with no newer success: others cannot take over
 * before lease_duration after they saw that renewal, which came later, and
 * renew_deadline < lease_duration.
 */
#ifndef VMPOOL_LEASE_H
#define VMPOOL_LEASE_H

#include <getopt.h>
#include <json-c/json.h>
#include <stddef.h>

#define LEASE_DEFAULT_NAME     "vmpoold"
#define LEASE_DURATION_DEFAULT 15.0
#define LEASE_RENEW_DEFAULT    10.0
#define LEASE_RETRY_DEFAULT    2.0
#define LEASE_JITTER           1.2 /* client-go's JitterFactor: retries wait retry * [1, 1.2) */

/* exit status of a stage that stopped leading: restart me (never EXIT_CONFIG) */
#define LEASE_EXIT_LOST 3

/* the flags: --leader-elect, --leader-elect-lease-duration, -renew-deadline,
 * -retry-period, -resource-name, -resource-namespace */
struct lease_cfg {
	int enabled;
	double duration;       /* seconds */
	double renew_deadline; /* seconds */
	double retry_period;   /* seconds */
	char *name;            /* NULL: LEASE_DEFAULT_NAME (plus the shard, lease_default_name) */
	char *ns;              /* NULL: the pod's namespace in a cluster, else "default" */
	char *pool_selector;   /* --pool-selector: this instance's shard (a label selector) */
	/* the flags as given, to pass on (the supervisor): NULL when not given */
	char *given[7];
};

/* option values 1100..1106 for cli_parse()'s extras (the six leader election flags and
 * --pool-selector, which also names the shard's Lease); zero-terminated table */
extern const struct option lease_options[];
extern const char lease_usage[];
#define LEASE_OPT_FIRST    1100
#define LEASE_OPT_SELECTOR 1106
#define LEASE_OPT_LAST     1106

/* a program's own options followed by lease_options, zero-terminated; caller frees */
struct option *lease_options_with(const struct option *own);
void lease_cfg_init(struct lease_cfg *);
void lease_cfg_clear(struct lease_cfg *);
/* one of lease_options: 0, or -1 for a bad value */
int lease_cfg_set(struct lease_cfg *, int opt, const char *val);
/* client-go's checks: every duration > 0, renew_deadline < duration and
 * renew_deadline > LEASE_JITTER * retry_period; -1 with err filled */
int lease_cfg_check(const struct lease_cfg *, char *err, size_t errlen);
/* the flags that were given, as "--name value" pairs, for fn(flag, value, arg) */
void lease_cfg_foreach(
    const struct lease_cfg *, void (*fn)(const char *, const char *, void *), void *arg);

/* Go's time.ParseDuration for what a person writes: "15s", "1.5s", "500ms", "1m30s", "0";
 * units h, m, s, ms, us, ns; no sign. -1 on anything else. */
int lease_parse_duration(const char *, double *out);

/* "vmpoold", or "vmpoold-<8 hex digits of FNV-1a of the selector>" for a shard */
void lease_default_name(const char *pool_selector, char *out, size_t outlen);

/* what a Lease's spec says */
struct lease_record {
	char holder[254];
	long duration_s;
	char acquire[40], renew[40]; /* MicroTime strings, "" when absent */
	long transitions;
};

/* the elector's picture */
struct lease_state {
	char identity[254];
	int seen;    /* a GET answered at least once (found or not) */
	int exists;  /* the Lease exists */
	char rv[64]; /* its resourceVersion */
	struct lease_record observed;
	double observed_time; /* monotonic time the record was last seen to change */
	int leading;
	double renewed_at; /* monotonic time the last successful write was sent */
};

void lease_state_init(struct lease_state *, const char *identity);
/* a Lease object (or its spec's fields) into r and its resourceVersion into rv; -1 when it
 * is not a Lease with a spec */
int lease_record_parse(json_object *lease, struct lease_record *r, char *rv, size_t rvlen);
/* a GET answered: lease is the object, or NULL for 404. The observed time moves only when
 * the record changed (client-go compares the whole record). */
void lease_observe(struct lease_state *, json_object *lease, double now);

enum lease_verdict {
	LEASE_HELD,   /* someone else holds an unexpired lease: wait */
	LEASE_CREATE, /* no Lease: POST one naming us */
	LEASE_UPDATE, /* free, expired, or ours: PUT with the observed resourceVersion */
};
enum lease_verdict lease_decide(const struct lease_state *, double now);

/* The Lease to write (new reference): us as holder (release: holder "" and
 * leaseDurationSeconds 1, client-go's ReleaseOnCancel), the observed resourceVersion,
 * acquireTime kept while we hold it, leaseTransitions counted when the holder changes.
 * wallnow: epoch seconds for the MicroTime stamps. */
json_object *lease_body(const struct lease_state *, const struct lease_cfg *, const char *name,
    const char *ns, double wallnow, int release);
/* a write succeeded (answer: the Lease the API returned, sent_at: when it was sent) */
void lease_written(struct lease_state *, json_object *answer, double sent_at, double now);
/* a leader that has not renewed within renew_deadline of its last successful write */
int lease_overdue(const struct lease_state *, const struct lease_cfg *, double now);
/* when a leader must have renewed (monotonic) */
double lease_deadline(const struct lease_state *, const struct lease_cfg *);

/* MicroTime as the API writes it: "2006-01-02T15:04:05.000000Z" */
void lease_microtime(double t, char out[40]);

#endif

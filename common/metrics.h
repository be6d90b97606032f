/*
 * metrics.h: Prometheus text exposition and health endpoints on libevent's evhttp.
 * GET /metrics, /healthz (always 200 while the loop runs), /readyz (200 once the stage set
 * itself ready). A process registers values by family name + label string; the registry is
 * process-global (one event loop per process). metrics_std.c adds the families every
 * Kubernetes controller exposes (process_*, build info, client-go's workqueue_*).
 */
#ifndef VMPOOL_METRICS_H
#define VMPOOL_METRICS_H

#include <event2/event.h>

#include "xmalloc.h"

/* addr is "host:port", "[v6]:port" or ":port" (every interface, IPv6 and IPv4, as in Go).
 * Returns 0 or -1 with err filled. */
int metrics_start(struct event_base *, const char *addr, char *err, size_t errlen);
/* a second listener with /healthz and /readyz only (--health-probe-bind-address); the same
 * address forms. metrics_stop() closes it too. */
int metrics_start_probes(struct event_base *, const char *addr, char *err, size_t errlen);
/* closes the server and forgets every family (shutdown; tests between cases) */
void metrics_stop(void);
void metrics_set_ready(int ready);

/* type is "counter" or "gauge"; help is printed once per family. labels is the inner part
 * of {...} already escaped, e.g. "namespace=\"default\",pool=\"p\"", or NULL/"" for none. */
void metrics_declare(const char *family, const char *type, const char *help);
void metrics_set(const char *family, const char *labels, double v);
void metrics_add(const char *family, const char *labels, double delta);
void metrics_remove(const char *family, const char *labels); /* e.g. pool deleted */

/* A histogram with fixed buckets: bounds ascending and finite (+Inf is implied). Declaring
 * it again with the same bounds keeps its samples. metrics_set/add ignore a histogram and
 * metrics_observe anything else. */
void metrics_declare_histogram(
    const char *family, const char *help, const double *bounds, size_t nbounds);
void metrics_observe(const char *family, const char *labels, double v);

/* Appends the whole registry in the Prometheus text format 0.0.4 to out (what GET /metrics
 * serves): families sorted by name, samples by label string. */
void metrics_render(struct buf *out);
/* what GET /metrics serves: the values read at scrape time (metrics_std_collect()), then
 * metrics_render() */
void metrics_scrape(struct buf *out);
/* Builds a label string from NULL-terminated key, value pairs, e.g.
 * metrics_labels("namespace", ns, "pool", name, NULL) -> namespace="ns",pool="name",
 * with \, " and newline in values escaped. Caller frees. */
char *metrics_labels(const char *k1, const char *v1, ...) __attribute__((sentinel));

/* ---- metrics_std.c: the families dashboards for Kubernetes controllers expect ---- */

/* process_* (from /proc, as Prometheus' Go client reads them) and vmpoold_build_info:
 * set now; metrics_scrape() calls it */
void metrics_std_collect(void);

/* client-go's workqueue_*{name} for one queue: depth, adds_total, retries_total and the
 * queue_duration_seconds / work_duration_seconds histograms. declare sets the queue's
 * series to 0; added: an item became due (a mark of an item already waiting is not an
 * add), depth is the queue's length after it; depth: the length changed otherwise (items
 * taken or forgotten); started: an item was taken after waiting waited seconds; done: its
 * processing took took seconds; retry: an item was put back with its backoff. */
void metrics_wq_declare(const char *name);
void metrics_wq_added(const char *name, size_t depth);
void metrics_wq_depth(const char *name, size_t depth);
void metrics_wq_started(const char *name, double waited);
void metrics_wq_done(const char *name, double took);
void metrics_wq_retry(const char *name);

#endif

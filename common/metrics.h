/*
 * metrics.h: Prometheus text exposition and health endpoints on libevent's evhttp.
 * GET /metrics, /healthz (always 200 while the loop runs), /readyz (200 once the stage set
 * itself ready). A process registers values by family name + label string; the registry is
 * process-global (one event loop per process).
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

/* Appends the whole registry in the Prometheus text format 0.0.4 to out (what GET /metrics
 * serves): families sorted by name, samples by label string. */
void metrics_render(struct buf *out);
/* Builds a label string from NULL-terminated key, value pairs, e.g.
 * metrics_labels("namespace", ns, "pool", name, NULL) -> namespace="ns",pool="name",
 * with \, " and newline in values escaped. Caller frees. */
char *metrics_labels(const char *k1, const char *v1, ...) __attribute__((sentinel));

#endif

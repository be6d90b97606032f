/*
 * kubemetrics.c: client-go's REST client metrics for our Kubernetes client, under its names
 * and buckets: rest_client_requests_total{code,method,host}, one per attempt that ended
 * (code "<error>" when no HTTP status came back, as client-go writes it), and
 * rest_client_request_duration_seconds{verb,host}, one per request from when it was asked
 * for to its answer, retries and waits included (client-go measures its request() the
 * same way). Watches count as attempts (GET), not in the latency histogram.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube.h"
#include "metrics.h"
#include "timeutil.h"
#include "xmalloc.h"
#include "kube_int.h"

#define M_REQUESTS "rest_client_requests_total"
#define M_LATENCY  "rest_client_request_duration_seconds"

static const double kube_metrics_bounds[] = {0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60};

/* "host:port" of the server URL, as client-go's URL.Host */
static void kube_metrics_host(const struct kube *k, char *out, size_t len)
{
	const char *s = k->cfg.server != NULL ? k->cfg.server : "", *p;
	size_t n;

	if ((p = strstr(s, "://")) != NULL)
		s = p + 3;
	n = strcspn(s, "/?#");
	snprintf(out, len, "%.*s", (int)n, s);
}

void kube_metrics_attempt(const struct kreq *r, long status)
{
	char host[256], code[24], *labels;

	metrics_declare(M_REQUESTS, "counter",
	    "Number of HTTP requests, partitioned by status code, method, and host.");
	kube_metrics_host(r->k, host, sizeof host);
	if (status > 0)
		snprintf(code, sizeof code, "%ld", status);
	else
		snprintf(code, sizeof code, "<error>");
	labels = metrics_labels("code", code, "host", host, "method", r->method, NULL);
	metrics_add(M_REQUESTS, labels, 1);
	free(labels);
}

void kube_metrics_answered(const struct kreq *r)
{
	char host[256], *labels;

	if (r->watch)
		return;
	metrics_declare_histogram(M_LATENCY,
	    "Request latency in seconds. Broken down by verb, and host.", kube_metrics_bounds,
	    sizeof kube_metrics_bounds / sizeof kube_metrics_bounds[0]);
	kube_metrics_host(r->k, host, sizeof host);
	labels = metrics_labels("host", host, "verb", r->method, NULL);
	metrics_observe(M_LATENCY, labels, now_mono() - r->t0);
	free(labels);
}

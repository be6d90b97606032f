/*
 * metrics_std.c: the metric families that dashboards for Kubernetes controllers expect,
 * under the names and with the buckets the Go libraries use, so that a dashboard made for
 * kube-controller-manager or a controller-runtime manager works on our stages too:
 * process_* as Prometheus' Go client reads them from /proc (at scrape time), a build-info
 * gauge, and client-go's workqueue_*{name}. (client-go's rest_client_* are in
 * kubemetrics.c, beside the HTTP client.)
 */
#include <sys/resource.h>
#include <sys/types.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "metrics.h"
#include "xmalloc.h"

#define M_CPU      "process_cpu_seconds_total"
#define M_RSS      "process_resident_memory_bytes"
#define M_VSIZE    "process_virtual_memory_bytes"
#define M_OPEN_FDS "process_open_fds"
#define M_MAX_FDS  "process_max_fds"
#define M_START    "process_start_time_seconds"
#define M_BUILD    "vmpoold_build_info"

#define M_WQ_DEPTH   "workqueue_depth"
#define M_WQ_ADDS    "workqueue_adds_total"
#define M_WQ_RETRIES "workqueue_retries_total"
#define M_WQ_QUEUE   "workqueue_queue_duration_seconds"
#define M_WQ_WORK    "workqueue_work_duration_seconds"

#if defined(__clang__)
#define METRICS_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define METRICS_COMPILER "gcc " __VERSION__
#else
#define METRICS_COMPILER "unknown"
#endif
#ifndef VMPOOL_REVISION
#define VMPOOL_REVISION "unknown" /* the Makefile passes `git describe --always --dirty` */
#endif

/* the boot time in seconds since the epoch ("btime" of /proc/stat), or -1 */
static double metrics_std_boot_time(void)
{
	char line[256];
	double t = -1;
	FILE *f = fopen("/proc/stat", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, "btime ", 6) == 0) {
			t = strtod(line + 6, NULL);
			break;
		}
	}
	fclose(f);
	return t;
}

struct metrics_proc {
	double cpu, vsize, rss, start;
};

/* /proc/self/stat: utime, stime, starttime (clock ticks), vsize (bytes), rss (pages) */
static int metrics_std_stat(struct metrics_proc *p)
{
	static double boot = -1;
	unsigned long utime, stime, vsize;
	unsigned long long starttime;
	long rss, hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	char line[1024], *s;
	FILE *f = fopen("/proc/self/stat", "r");

	if (f == NULL)
		return -1;
	s = fgets(line, sizeof line, f);
	fclose(f);
	/* the command name may hold blanks and parentheses: the fields follow the last ')' */
	if (s == NULL || (s = strrchr(line, ')')) == NULL || hz <= 0 || page <= 0)
		return -1;
	if (sscanf(s + 1,
	        " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d %llu "
	        "%lu %ld",
	        &utime, &stime, &starttime, &vsize, &rss) != 5)
		return -1;
	if (boot < 0)
		boot = metrics_std_boot_time();
	p->cpu = (double)(utime + stime) / (double)hz;
	p->vsize = (double)vsize;
	p->rss = (double)rss * (double)page;
	p->start = boot >= 0 ? boot + (double)starttime / (double)hz : -1;
	return 0;
}

/* open file descriptors, not counting the one that reads /proc/self/fd */
static int metrics_std_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
			n++;
	}
	closedir(d);
	return n;
}

static void metrics_std_process(void)
{
	struct metrics_proc p;
	struct rlimit rl;
	int fds;

	metrics_declare(M_CPU, "counter", "Total user and system CPU time spent in seconds.");
	metrics_declare(M_RSS, "gauge", "Resident memory size in bytes.");
	metrics_declare(M_VSIZE, "gauge", "Virtual memory size in bytes.");
	metrics_declare(M_OPEN_FDS, "gauge", "Number of open file descriptors.");
	metrics_declare(M_MAX_FDS, "gauge", "Maximum number of open file descriptors.");
	metrics_declare(M_START, "gauge", "Start time of the process since unix epoch in seconds.");
	if (metrics_std_stat(&p) == 0) {
		metrics_set(M_CPU, NULL, p.cpu);
		metrics_set(M_RSS, NULL, p.rss);
		metrics_set(M_VSIZE, NULL, p.vsize);
		if (p.start >= 0)
			metrics_set(M_START, NULL, p.start);
	}
	if ((fds = metrics_std_open_fds()) >= 0)
		metrics_set(M_OPEN_FDS, NULL, fds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		metrics_set(M_MAX_FDS, NULL,
		    rl.rlim_cur == RLIM_INFINITY ? (double)INT64_MAX : (double)rl.rlim_cur);
}

void metrics_std_collect(void)
{
	char *labels;

	metrics_std_process();
	metrics_declare(M_BUILD, "gauge",
	    "A metric with a constant '1' value labeled by the version, the revision it was "
	    "built from and the compiler.");
	labels = metrics_labels("compiler", METRICS_COMPILER, "revision", VMPOOL_REVISION,
	    "version", VMPOOL_VERSION, NULL);
	metrics_set(M_BUILD, labels, 1);
	free(labels);
}

/* ---- client-go's work queue metrics ---- */

/* client-go's buckets for both durations: 10 ns to 10 s, a factor 10 apart */
static const double metrics_wq_bounds[] = {1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10};

static char *metrics_wq_labels(const char *name)
{
	return metrics_labels("name", name, NULL);
}

void metrics_wq_declare(const char *name)
{
	size_t nb = sizeof metrics_wq_bounds / sizeof metrics_wq_bounds[0];
	char *l = metrics_wq_labels(name);

	metrics_declare(M_WQ_DEPTH, "gauge", "Current depth of workqueue");
	metrics_declare(M_WQ_ADDS, "counter", "Total number of adds handled by workqueue");
	metrics_declare(M_WQ_RETRIES, "counter", "Total number of retries handled by workqueue");
	metrics_declare_histogram(M_WQ_QUEUE,
	    "How long in seconds an item stays in workqueue before being requested.",
	    metrics_wq_bounds, nb);
	metrics_declare_histogram(M_WQ_WORK,
	    "How long in seconds processing an item from workqueue takes.", metrics_wq_bounds, nb);
	metrics_set(M_WQ_DEPTH, l, 0);
	metrics_add(M_WQ_ADDS, l, 0);
	metrics_add(M_WQ_RETRIES, l, 0);
	free(l);
}

void metrics_wq_added(const char *name, size_t depth)
{
	char *l = metrics_wq_labels(name);

	metrics_add(M_WQ_ADDS, l, 1);
	metrics_set(M_WQ_DEPTH, l, (double)depth);
	free(l);
}

void metrics_wq_depth(const char *name, size_t depth)
{
	char *l = metrics_wq_labels(name);

	metrics_set(M_WQ_DEPTH, l, (double)depth);
	free(l);
}

void metrics_wq_started(const char *name, double waited)
{
	char *l = metrics_wq_labels(name);

	metrics_observe(M_WQ_QUEUE, l, waited > 0 ? waited : 0);
	free(l);
}

void metrics_wq_done(const char *name, double took)
{
	char *l = metrics_wq_labels(name);

	metrics_observe(M_WQ_WORK, l, took > 0 ? took : 0);
	free(l);
}

void metrics_wq_retry(const char *name)
{
	char *l = metrics_wq_labels(name);

	metrics_add(M_WQ_RETRIES, l, 1);
	free(l);
}

/*
 * cli.h: the flags every program shares, parsed in one place. A bad flag or value prints
 * the usage and exits EXIT_CONFIG (the supervisor's "do not restart").
 *
 *   --run-dir DIR        socket directory (link_default_run_dir())
 *   --kubeconfig FILE    kubeconfig (precedence in kube.h)
 *   --master URL         API server URL, overriding the kubeconfig's (kube-controller-manager's)
 *   --namespace NS       watch / act in one namespace only (default: all)
 *   --logging-format FMT text (default, klog) or json; --log-format is an alias
 *   --v N, -v            log verbosity (log.h); each -v adds one
 *   --metrics-bind-address ADDR   /metrics (and /healthz, /readyz) (alias --metrics-addr)
 *   --health-probe-bind-address ADDR   /healthz and /readyz only
 *                        ADDR is host:port, [v6]:port, :port (every interface, as in Go)
 *                        or 0 (off, the default)
 *   --max-frame BYTES    frame size cap (default 4 MiB)
 *   --kube-api-qps Q     API write attempts per second (default 50)
 *   --kube-api-burst N   API write burst (default 100)
 *   -h, --help / --version
 */
#ifndef VMPOOL_CLI_H
#define VMPOOL_CLI_H

#include <getopt.h>
#include <stddef.h>

#ifndef VMPOOL_VERSION
#define VMPOOL_VERSION "0.1.0"
#endif

struct cli {
	const char *prog;
	char *run_dir;
	char *kubeconfig;
	char *namespace;
	int log_format;
	int verbose;        /* --v plus one per -v */
	char *metrics_addr; /* NULL: off */
	char *probe_addr;   /* --health-probe-bind-address; NULL: off */
	char *master;       /* --master, without a trailing '/'; NULL: the kubeconfig's */
	size_t max_frame;
	double qps;
	int burst;
};

/*
 * Program-specific options: extra (terminated by a zeroed entry, may be NULL) with
 * option values >= 1000; each is handed to handle(opt, optarg, arg), which returns 0 or
 * -1 for a bad value. usage_extra is printed after the common flags.
 * Returns optind (the first non-option argument). Calls log_init().
 */
int cli_parse(struct cli *, const char *prog, int argc, char **argv, const struct option *extra,
    int (*handle)(int opt, const char *val, void *arg), void *arg, const char *usage_extra);
void cli_free(struct cli *);
/* creates and checks c->run_dir (rundir.h); a bad one is logged and exits EXIT_CONFIG */
void cli_check_run_dir(const struct cli *);
/* helpers for handle(): strict number parsing, -1 on junk or out of range */
int cli_int(const char *, long min, long max, long *out);
int cli_double(const char *, double min, double max, double *out);
/* 0 if s is a bind address: host:port, [v6]:port or :port (port 0..65535) */
int cli_bind_addr(const char *s);

struct event_base;
/* Starts the endpoints c asks for (metrics.h): --metrics-bind-address serves /metrics,
 * /healthz and /readyz; --health-probe-bind-address a second listener with /healthz and
 * /readyz only (the same address as the metrics one: no second listener). A failure is
 * logged and exits EXIT_CONFIG. */
void cli_start_endpoints(struct event_base *, const struct cli *);

#endif

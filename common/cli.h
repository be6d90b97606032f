/*
 * cli.h: the flags every program shares, parsed in one place. A bad flag or value prints
 * the usage and exits EXIT_CONFIG (the supervisor's "do not restart").
 *
 *   --run-dir DIR        socket directory (link_default_run_dir())
 *   --kubeconfig FILE    kubeconfig (precedence in kube.h)
 *   --namespace NS       watch / act in one namespace only (default: all)
 *   --log-format FMT     text (default) or json
 *   -v, --verbose        more logging (repeat for debug)
 *   --metrics-addr ADDR  host:port for /metrics, /healthz, /readyz (default: off)
 *   --max-frame BYTES    frame size cap (default 4 MiB)
 *   --kube-api-qps Q     API writes per second (default 50)
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
	int verbose;
	char *metrics_addr;
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

#endif

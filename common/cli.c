/*
 * cli.c: the flags every program shares, parsed in one place with getopt_long. The common
 * flags are a table (name, setter, help) from which both the getopt options and the usage
 * text are built; program-specific flags are appended and handed to the caller's handler.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "kube.h"
#include "link.h"
#include "log.h"
#include "metrics.h"
#include "proto.h"
#include "rundir.h"
#include "xmalloc.h"

#define CLI_QPS_DEFAULT   50
#define CLI_BURST_DEFAULT 100
#define CLI_FRAME_MIN     4096L
#define CLI_FRAME_MAX     (1L << 30)
#define CLI_V_MAX         10

struct cli_ctx {
	struct cli *c;
	const char *usage_extra;
	int v;      /* --v N */
	int vcount; /* -v flags */
};

struct cli_opt {
	const char *name;
	int has_arg;
	int val;
	int (*set)(struct cli_ctx *, const char *);
	const char *help;
};

static void cli_usage(struct cli_ctx *, FILE *);
static void cli_exit(struct cli_ctx *, int) __attribute__((noreturn));

/* the options being parsed; global so cli_exit() can free them */
static struct option *cli_optv;

static int cli_set_str(char **dst, const char *val)
{
	if (val == NULL || *val == '\0')
		return -1;
	free(*dst);
	*dst = xstrdup(val);
	return 0;
}

static int cli_set_run_dir(struct cli_ctx *x, const char *val)
{
	return cli_set_str(&x->c->run_dir, val);
}

static int cli_set_kubeconfig(struct cli_ctx *x, const char *val)
{
	return cli_set_str(&x->c->kubeconfig, val);
}

static int cli_set_namespace(struct cli_ctx *x, const char *val)
{
	return cli_set_str(&x->c->namespace, val);
}

/* a bind address, or "0" for off (controller-runtime's spelling) */
static int cli_set_addr(char **dst, const char *val)
{
	if (val != NULL && strcmp(val, "0") == 0) {
		free(*dst);
		*dst = NULL;
		return 0;
	}
	if (cli_bind_addr(val) == -1)
		return -1;
	return cli_set_str(dst, val);
}

static int cli_set_metrics_addr(struct cli_ctx *x, const char *val)
{
	return cli_set_addr(&x->c->metrics_addr, val);
}

static int cli_set_probe_addr(struct cli_ctx *x, const char *val)
{
	return cli_set_addr(&x->c->probe_addr, val);
}

/* http(s)://host[:port][/path]; kept without a trailing '/', as kube_config.server */
static int cli_set_master(struct cli_ctx *x, const char *val)
{
	size_t n;

	if (val == NULL || (strncmp(val, "https://", 8) != 0 && strncmp(val, "http://", 7) != 0))
		return -1;
	n = strlen(val);
	while (n > 0 && val[n - 1] == '/')
		n--;
	if (n <= strlen(strncmp(val, "https://", 8) == 0 ? "https://" : "http://") ||
	    strpbrk(val, " \t\r\n") != NULL)
		return -1;
	free(x->c->master);
	x->c->master = xstrndup(val, n);
	return 0;
}

static int cli_set_log_format(struct cli_ctx *x, const char *val)
{
	if (strcmp(val, "text") == 0)
		x->c->log_format = LOG_FMT_TEXT;
	else if (strcmp(val, "json") == 0)
		x->c->log_format = LOG_FMT_JSON;
	else
		return -1;
	return 0;
}

static int cli_set_verbose(struct cli_ctx *x, const char *val)
{
	x->vcount++;
	return 0;
}

static int cli_set_v(struct cli_ctx *x, const char *val)
{
	long v;

	if (cli_int(val, 0, CLI_V_MAX, &v) == -1)
		return -1;
	x->v = (int)v;
	return 0;
}

static int cli_set_max_frame(struct cli_ctx *x, const char *val)
{
	long v;

	if (cli_int(val, CLI_FRAME_MIN, CLI_FRAME_MAX, &v) == -1)
		return -1;
	x->c->max_frame = (size_t)v;
	return 0;
}

/* 0 means unlimited, as for the token bucket */
static int cli_set_qps(struct cli_ctx *x, const char *val)
{
	return cli_double(val, 0, 1e6, &x->c->qps);
}

static int cli_set_burst(struct cli_ctx *x, const char *val)
{
	long v;

	if (cli_int(val, 1, 1000000, &v) == -1)
		return -1;
	x->c->burst = (int)v;
	return 0;
}

static int cli_set_help(struct cli_ctx *x, const char *val)
{
	cli_usage(x, stdout);
	cli_exit(x, 0);
}

static int cli_set_version(struct cli_ctx *x, const char *val)
{
	printf("%s %s\n", x->c->prog, VMPOOL_VERSION);
	cli_exit(x, 0);
}

enum {
	CLI_OPT_RUN_DIR = 256,
	CLI_OPT_KUBECONFIG,
	CLI_OPT_NAMESPACE,
	CLI_OPT_LOG_FORMAT,
	CLI_OPT_LOGGING_FORMAT,
	CLI_OPT_V,
	CLI_OPT_METRICS_ADDR,
	CLI_OPT_METRICS_BIND,
	CLI_OPT_PROBE_BIND,
	CLI_OPT_MASTER,
	CLI_OPT_MAX_FRAME,
	CLI_OPT_QPS,
	CLI_OPT_BURST,
	CLI_OPT_VERSION,
};

static const struct cli_opt cli_opts[] = {
    {"run-dir", required_argument, CLI_OPT_RUN_DIR, cli_set_run_dir,
        "--run-dir DIR        socket directory"},
    {"kubeconfig", required_argument, CLI_OPT_KUBECONFIG, cli_set_kubeconfig,
        "--kubeconfig FILE    kubeconfig file (else $KUBECONFIG, in-cluster, ~/.kube/config)"},
    {"master", required_argument, CLI_OPT_MASTER, cli_set_master,
        "--master URL         API server URL (http[s]://host:port), overrides the kubeconfig's"},
    {"namespace", required_argument, CLI_OPT_NAMESPACE, cli_set_namespace,
        "--namespace NS       one namespace only (default: all)"},
    {"logging-format", required_argument, CLI_OPT_LOGGING_FORMAT, cli_set_log_format,
        "--logging-format FMT text (klog, the default) or json (component-base's)"},
    {"log-format", required_argument, CLI_OPT_LOG_FORMAT, cli_set_log_format,
        "--log-format FMT     the same (the old spelling)"},
    {"v", required_argument, CLI_OPT_V, cli_set_v,
        "--v N                log verbosity 0-10 (default 0: actions, warnings, errors;\n"
        "                       2: also every pool's sync result; 4: debugging)"},
    {"verbose", no_argument, 'v', cli_set_verbose,
        "-v, --verbose        one more verbosity level (repeatable: -vvvv is --v=4)"},
    {"metrics-bind-address", required_argument, CLI_OPT_METRICS_BIND, cli_set_metrics_addr,
        "--metrics-bind-address ADDR\n"
        "                       serve /metrics (and /healthz, /readyz) on ADDR: host:port,\n"
        "                       [v6]:port, :port (every interface), 0 (off, the default)"},
    {"metrics-addr", required_argument, CLI_OPT_METRICS_ADDR, cli_set_metrics_addr,
        "--metrics-addr ADDR  the same (the old spelling)"},
    {"health-probe-bind-address", required_argument, CLI_OPT_PROBE_BIND, cli_set_probe_addr,
        "--health-probe-bind-address ADDR\n"
        "                       serve /healthz and /readyz on ADDR too (default 0: off)"},
    {"max-frame", required_argument, CLI_OPT_MAX_FRAME, cli_set_max_frame,
        "--max-frame BYTES    frame size cap (default 4194304)"},
    {"kube-api-qps", required_argument, CLI_OPT_QPS, cli_set_qps,
        "--kube-api-qps Q     API write attempts per second (default 50, 0: unlimited): every\n"
        "                       attempt, retries included, of a create, update, patch or delete\n"
        "                       (VMs, VMIs, revisions, pool finalizers and status, PVCs, Events);\n"
        "                       lists and watches (GET) are not limited"},
    {"kube-api-burst", required_argument, CLI_OPT_BURST, cli_set_burst,
        "--kube-api-burst N   API write burst: attempts allowed at once (default 100)"},
    {"help", no_argument, 'h', cli_set_help, "-h, --help           this text"},
    {"version", no_argument, CLI_OPT_VERSION, cli_set_version,
        "--version            print the version"},
};
#define CLI_NOPTS (sizeof cli_opts / sizeof cli_opts[0])

static void cli_usage(struct cli_ctx *x, FILE *f)
{
	size_t i;

	fprintf(f, "usage: %s [options]\n", x->c->prog);
	for (i = 0; i < CLI_NOPTS; i++)
		fprintf(f, "  %s\n", cli_opts[i].help);
	if (x->usage_extra != NULL && *x->usage_extra != '\0')
		fprintf(f, "%s%s", x->usage_extra,
		    x->usage_extra[strlen(x->usage_extra) - 1] == '\n' ? "" : "\n");
}

static void cli_bad(struct cli_ctx *x, const char *msg, const char *name, const char *val)
{
	if (msg != NULL)
		fprintf(stderr, "%s: %s --%s: \"%s\"\n", x->c->prog, msg, name,
		    log_escape(val != NULL ? val : ""));
	cli_usage(x, stderr);
	cli_exit(x, EXIT_CONFIG);
}

/* Exits from inside cli_parse with nothing left allocated, so an ASan build's exit status
 * is the one we chose. */
static void cli_exit(struct cli_ctx *x, int code)
{
	free(cli_optv);
	cli_optv = NULL;
	cli_free(x->c);
	fflush(NULL);
	_exit(code); /* as log.c: no leak check of the caller's start-up state */
}

/* the common options followed by the caller's, zero-terminated; caller frees */
static struct option *cli_options(const struct option *extra)
{
	struct option *opts;
	size_t i, n = 0;

	while (extra != NULL && extra[n].name != NULL)
		n++;
	opts = xcalloc(CLI_NOPTS + n + 1, sizeof *opts);
	for (i = 0; i < CLI_NOPTS; i++) {
		opts[i].name = cli_opts[i].name;
		opts[i].has_arg = cli_opts[i].has_arg;
		opts[i].val = cli_opts[i].val;
	}
	for (i = 0; i < n; i++)
		opts[CLI_NOPTS + i] = extra[i];
	return opts;
}

static const struct cli_opt *cli_find(int val)
{
	size_t i;

	for (i = 0; i < CLI_NOPTS; i++) {
		if (cli_opts[i].val == val)
			return &cli_opts[i];
	}
	return NULL;
}

static const char *cli_extra_name(const struct option *extra, int val)
{
	for (; extra != NULL && extra->name != NULL; extra++) {
		if (extra->val == val)
			return extra->name;
	}
	return "?";
}

static void cli_defaults(struct cli *c, const char *prog)
{
	memset(c, 0, sizeof *c);
	c->prog = prog;
	c->log_format = LOG_FMT_TEXT;
	c->max_frame = PROTO_MAX_FRAME_DEFAULT;
	c->qps = CLI_QPS_DEFAULT;
	c->burst = CLI_BURST_DEFAULT;
}

int cli_parse(struct cli *c, const char *prog, int argc, char **argv, const struct option *extra,
    int (*handle)(int opt, const char *val, void *arg), void *arg, const char *usage_extra)
{
	struct cli_ctx x = {c, usage_extra, 0, 0};
	const struct cli_opt *co;
	int ch;

	cli_defaults(c, prog);
	cli_optv = cli_options(extra);
	optind = 0; /* glibc: full re-initialisation, so cli_parse may run more than once */
	while ((ch = getopt_long(argc, argv, "hv", cli_optv, NULL)) != -1) {
		if ((co = cli_find(ch)) != NULL) {
			if (co->set(&x, optarg) == -1)
				cli_bad(&x, "bad value for", co->name, optarg);
		} else if (ch >= 1000 && handle != NULL) {
			if (handle(ch, optarg, arg) == -1)
				cli_bad(&x, "bad value for", cli_extra_name(extra, ch), optarg);
		} else
			cli_bad(&x, NULL, NULL, NULL); /* getopt printed why */
	}
	free(cli_optv);
	cli_optv = NULL;
	c->verbose = x.v + x.vcount;
	if (c->run_dir == NULL)
		c->run_dir = link_default_run_dir();
	log_init(prog, c->verbose, c->log_format);
	kubeconfig_override_server(c->master);
	return optind;
}

void cli_free(struct cli *c)
{
	if (c == NULL)
		return;
	free(c->run_dir);
	free(c->kubeconfig);
	free(c->namespace);
	free(c->metrics_addr);
	free(c->probe_addr);
	free(c->master);
	c->run_dir = c->kubeconfig = c->namespace = c->metrics_addr = NULL;
	c->probe_addr = c->master = NULL;
}

void cli_check_run_dir(const struct cli *c)
{
	char err[512];

	if (rundir_check(c->run_dir, err, sizeof err) == -1)
		fatal_config("%s", err);
}

/*
 * Strict decimal: an optional '-', digits, and (for cli_double) an optional '.' followed by
 * digits. strtol/strtod alone would also take leading blanks and '+', and strtod hex
 * ("0x10"), exponents, "inf" and "nan": a flag value is what a person wrote, so anything
 * but plain decimal is refused rather than guessed at.
 */
static int cli_decimal(const char *s, int fraction)
{
	const char *p = s;
	size_t digits = 0;

	if (p == NULL)
		return 0;
	if (*p == '-')
		p++;
	for (; *p >= '0' && *p <= '9'; p++)
		digits++;
	if (fraction && *p == '.' && digits > 0) {
		for (p++; *p >= '0' && *p <= '9'; p++)
			digits++;
		if (p[-1] == '.')
			return 0;
	}
	return digits > 0 && *p == '\0';
}

int cli_int(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (!cli_decimal(s, 0))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int cli_double(const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	if (!cli_decimal(s, 1))
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !isfinite(v) || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int cli_bind_addr(const char *s)
{
	const char *colon = s != NULL ? strrchr(s, ':') : NULL;
	long port;
	size_t hl;

	if (colon == NULL || cli_int(colon + 1, 0, 65535, &port) == -1)
		return -1;
	hl = (size_t)(colon - s);
	if (hl > 0 && s[0] == '[')
		return hl >= 3 && s[hl - 1] == ']' && memchr(s + 1, ']', hl - 2) == NULL ? 0 : -1;
	return memchr(s, ':', hl) == NULL && strpbrk(s, " \t\r\n/") == NULL ? 0 : -1;
}

void cli_start_endpoints(struct event_base *base, const struct cli *c)
{
	char err[512];

	if (c->metrics_addr != NULL && metrics_start(base, c->metrics_addr, err, sizeof err) == -1)
		fatal_config("--metrics-bind-address %s: %s", log_escape(c->metrics_addr), err);
	if (c->probe_addr != NULL &&
	    (c->metrics_addr == NULL || strcmp(c->probe_addr, c->metrics_addr) != 0) &&
	    metrics_start_probes(base, c->probe_addr, err, sizeof err) == -1)
		fatal_config("--health-probe-bind-address %s: %s", log_escape(c->probe_addr), err);
}

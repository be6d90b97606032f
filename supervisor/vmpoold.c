/*
 * vmpoold.c: the supervisor. Starts the four stages from its own directory, restarts one
 * that dies (policy in child.c: >= 1 s between spawns, doubling to 30 s, reset after 60 s
 * of health), stops everything and exits EXIT_CONFIG when a stage says its configuration
 * is bad, gives up after too many deaths, and forwards SIGTERM for a clean shutdown.
 * No business logic: the stages do the work.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "child.h"
#include "cli.h"
#include "lease.h"
#include "log.h"
#include "multicall.h"
#include "proto.h"
#include "timeutil.h"
#include "xmalloc.h"

#define SV_DEATHS_MAX    10   /* this many deaths ... */
#define SV_DEATHS_WINDOW 60.0 /* ... within this many seconds: give up */
#define SV_STOP_GRACE    10   /* seconds between SIGTERM and SIGKILL */
#define SV_MAX_ARGS      64

/* the stages, in start order; metrics port = --metrics-addr port + offset */
struct sv_stage {
	const char *name;
	const char *binary;
	int metrics_offset;
};
static const struct sv_stage sv_stages[] = {
    {"watcher", "vmpool-watcher", 0},
    {"planner", "vmpool-planner", 1},
    {"actuator", "vmpool-actuator", 2},
    {"status", "vmpool-status", 3},
};
#define SV_NSTAGES (sizeof(sv_stages) / sizeof(sv_stages[0]))

struct sv_opts {
	char *stage_dir;
	long burst_replicas; /* -1: not given */
	int dry_run;
	long ready_fd;          /* -1: none */
	struct lease_cfg lease; /* --leader-elect*, --pool-selector: passed on */
};

struct sv {
	struct event_base *base;
	struct cli cli;
	struct sv_opts opts;
	struct child *children[SV_NSTAGES];
	double deaths[SV_DEATHS_MAX]; /* ring of death times */
	size_t ndeaths;
	int stopping;
	int exit_code;
	int ready_sent;
	struct event *ev_kill;
};

enum { OPT_STAGE_DIR = 1000, OPT_BURST_REPLICAS, OPT_DRY_RUN, OPT_READY_FD };

static const struct option sv_options[] = {
    {"stage-dir", required_argument, NULL, OPT_STAGE_DIR},
    {"burst-replicas", required_argument, NULL, OPT_BURST_REPLICAS},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"ready-fd", required_argument, NULL, OPT_READY_FD},
    {NULL, 0, NULL, 0},
};

static const char sv_usage[] =
    "  --stage-dir DIR      where the stage binaries are (default: vmpoold's directory)\n"
    "  --burst-replicas N   passed to vmpool-planner\n"
    "  --dry-run            passed to vmpool-actuator (answer actions without the API)\n"
    "  --ready-fd N         write \"ready\\n\" to fd N once all four stages run\n"
    "The common flags are passed to every stage. With --metrics-bind-address HOST:PORT the\n"
    "stages listen on HOST:PORT+0 (watcher), PORT+1 (planner), PORT+2 (actuator), PORT+3\n"
    "(status), and likewise with --health-probe-bind-address; vmpoold itself serves none.\n"
    "Exit status: 0 after SIGTERM/SIGINT, 78 when a stage reports bad configuration (exit\n"
    "78), 1 after 10 stage deaths within 60 s.\n"
    "The leader election flags go to the planner, actuator and status, --pool-selector\n"
    "to all four (two vmpoold with --leader-elect against one cluster are two replicas):\n";

static int sv_handle_opt(int opt, const char *val, void *arg)
{
	struct sv_opts *o = arg;

	switch (opt) {
	case OPT_STAGE_DIR:
		free(o->stage_dir);
		o->stage_dir = xstrdup(val);
		return 0;
	case OPT_BURST_REPLICAS:
		return cli_int(val, 1, 1000000, &o->burst_replicas);
	case OPT_DRY_RUN:
		o->dry_run = 1;
		return 0;
	case OPT_READY_FD:
		return cli_int(val, 0, INT_MAX, &o->ready_fd);
	}
	if (opt >= LEASE_OPT_FIRST && opt <= LEASE_OPT_LAST)
		return lease_cfg_set(&o->lease, opt, val);
	return -1;
}

/* the directory of our own executable */
static char *sv_self_dir(void)
{
	char path[PATH_MAX];
	ssize_t n;
	char *slash;

	n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (n <= 0)
		fatal("readlink /proc/self/exe");
	path[n] = '\0';
	slash = strrchr(path, '/');
	if (slash == NULL)
		return xstrdup(".");
	*slash = '\0';
	return xstrdup(path[0] != '\0' ? path : "/");
}

/* a bind address HOST:PORT -> HOST:PORT+offset (HOST may be empty); fatal_config on a bad one */
static char *sv_metrics_addr(const char *addr, int offset)
{
	const char *colon;
	char *host, *out;
	long port;

	colon = strrchr(addr, ':');
	if (colon == NULL || cli_int(colon + 1, 1, 65535 - (long)(SV_NSTAGES - 1), &port) == -1)
		fatal_config("bind address %s: want HOST:PORT with PORT <= %ld", addr,
		    65535 - (long)(SV_NSTAGES - 1));
	host = xstrndup(addr, (size_t)(colon - addr));
	xasprintf(&out, "%s:%ld", host, port + offset);
	free(host);
	return out;
}

struct sv_argv {
	char *v[SV_MAX_ARGS];
	int n;
};

static void sv_arg(struct sv_argv *a, const char *s)
{
	if (a->n >= SV_MAX_ARGS - 1)
		fatalx("too many stage arguments");
	a->v[a->n++] = xstrdup(s);
	a->v[a->n] = NULL;
}

static void sv_argf(struct sv_argv *a, const char *flag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void sv_argf(struct sv_argv *a, const char *flag, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		fatal("vasprintf");
	va_end(ap);
	sv_arg(a, flag);
	sv_arg(a, s);
	free(s);
}

static void sv_lease_arg(const char *flag, const char *val, void *arg)
{
	char *f;

	xasprintf(&f, "--%s", flag);
	sv_arg(arg, f);
	if (val != NULL)
		sv_arg(arg, val);
	free(f);
}

/* the command line of one stage: the common flags we were given, plus its own */
static void sv_stage_argv(const struct sv *sv, const struct sv_stage *st, struct sv_argv *a)
{
	const struct cli *c = &sv->cli;
	char *s;

	xasprintf(&s, "%s/%s", sv->opts.stage_dir, st->binary);
	sv_arg(a, s);
	free(s);
	if (c->run_dir != NULL)
		sv_argf(a, "--run-dir", "%s", c->run_dir);
	if (c->kubeconfig != NULL)
		sv_argf(a, "--kubeconfig", "%s", c->kubeconfig);
	if (c->master != NULL)
		sv_argf(a, "--master", "%s", c->master);
	if (c->namespace != NULL)
		sv_argf(a, "--namespace", "%s", c->namespace);
	sv_argf(a, "--logging-format", "%s", c->log_format == LOG_FMT_JSON ? "json" : "text");
	if (c->verbose != 0)
		sv_argf(a, "--v", "%d", c->verbose);
	if (c->max_frame != 0)
		sv_argf(a, "--max-frame", "%zu", c->max_frame);
	sv_argf(a, "--kube-api-qps", "%g", c->qps);
	if (c->burst != 0)
		sv_argf(a, "--kube-api-burst", "%d", c->burst);
	if (c->metrics_addr != NULL) {
		s = sv_metrics_addr(c->metrics_addr, st->metrics_offset);
		sv_argf(a, "--metrics-bind-address", "%s", s);
		free(s);
	}
	if (c->probe_addr != NULL) {
		s = sv_metrics_addr(c->probe_addr, st->metrics_offset);
		sv_argf(a, "--health-probe-bind-address", "%s", s);
		free(s);
	}
	if (strcmp(st->name, "planner") == 0 && sv->opts.burst_replicas > 0)
		sv_argf(a, "--burst-replicas", "%ld", sv->opts.burst_replicas);
	if (strcmp(st->name, "actuator") == 0 && sv->opts.dry_run)
		sv_arg(a, "--dry-run");
	if (strcmp(st->name, "watcher") != 0)
		lease_cfg_foreach(&sv->opts.lease, sv_lease_arg, a);
	else if (sv->opts.lease.pool_selector != NULL)
		sv_argf(a, "--pool-selector", "%s", sv->opts.lease.pool_selector);
}

static void sv_argv_free(struct sv_argv *a)
{
	int i;

	for (i = 0; i < a->n; i++)
		free(a->v[i]);
	a->n = 0;
}

static int sv_alive(const struct sv *sv)
{
	size_t i;
	int n = 0;

	for (i = 0; i < SV_NSTAGES; i++)
		n += child_alive(sv->children[i]);
	return n;
}

static void sv_kill_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sv *sv = arg;
	size_t i;

	for (i = 0; i < SV_NSTAGES; i++)
		child_kill(sv->children[i]);
}

/* stop every child; the loop ends once all are reaped */
static void sv_shutdown(struct sv *sv, int code, const char *why)
{
	struct timeval tv = {SV_STOP_GRACE, 0};
	size_t i;

	if (sv->stopping)
		return;
	sv->stopping = 1;
	sv->exit_code = code;
	log_info(NULL, "stopping all stages (%s), exit status will be %d", why, code);
	for (i = 0; i < SV_NSTAGES; i++)
		child_stop(sv->children[i]);
	if (sv_alive(sv) == 0) {
		event_base_loopexit(sv->base, NULL);
		return;
	}
	evtimer_add(sv->ev_kill, &tv);
}

static void sv_child_running(struct child *c, void *arg)
{
	struct sv *sv = arg;
	size_t i;

	for (i = 0; i < SV_NSTAGES; i++)
		if (child_state(sv->children[i]) != CHILD_RUNNING)
			return;
	if (sv->ready_sent || sv->opts.ready_fd < 0)
		return;
	sv->ready_sent = 1;
	log_info(NULL, "all stages running");
	if (write((int)sv->opts.ready_fd, "ready\n", 6) != 6)
		log_warn(NULL, "write ready fd %ld", sv->opts.ready_fd);
	close((int)sv->opts.ready_fd);
}

/* records a death; 1 if there were too many recently */
static int sv_death(struct sv *sv)
{
	double now = now_mono(), oldest;

	sv->deaths[sv->ndeaths % SV_DEATHS_MAX] = now;
	sv->ndeaths++;
	if (sv->ndeaths < SV_DEATHS_MAX)
		return 0;
	oldest = sv->deaths[sv->ndeaths % SV_DEATHS_MAX];
	return now - oldest < SV_DEATHS_WINDOW;
}

static void sv_child_exited(struct child *c, int code, int stopping, void *arg)
{
	struct sv *sv = arg;

	if (sv->stopping) {
		if (sv_alive(sv) == 0)
			event_base_loopexit(sv->base, NULL);
		return;
	}
	if (code == EXIT_CONFIG) {
		log_errors("bad configuration", "Stage exited 78: not restarting",
		    LOG_STR("stage", child_name(c)), LOG_INT("status", code));
		child_give_up(c);
		sv_shutdown(sv, EXIT_CONFIG, "a stage reported bad configuration");
		return;
	}
	if (sv_death(sv)) {
		log_warnx(NULL, "%d stage deaths within %.0f s: giving up", SV_DEATHS_MAX,
		    SV_DEATHS_WINDOW);
		child_give_up(c);
		sv_shutdown(sv, 1, "too many deaths");
		return;
	}
	child_schedule_restart(c);
}

static void sv_sigchld(evutil_socket_t sig, short what, void *arg)
{
	struct sv *sv = arg;
	pid_t pid;
	size_t i;
	int st;

	for (;;) {
		pid = waitpid(-1, &st, WNOHANG);
		if (pid == 0 || (pid == -1 && errno == ECHILD))
			return;
		if (pid == -1) {
			if (errno == EINTR)
				continue;
			log_warn(NULL, "waitpid");
			return;
		}
		for (i = 0; i < SV_NSTAGES; i++)
			if (child_reap(sv->children[i], pid, st))
				break;
		if (i == SV_NSTAGES)
			log_debug(NULL, "reaped unknown pid %ld", (long)pid);
	}
}

static void sv_sigterm(evutil_socket_t sig, short what, void *arg)
{
	struct sv *sv = arg;

	log_info(NULL, "got signal %d", (int)sig);
	sv_shutdown(sv, 0, sig == SIGINT ? "SIGINT" : "SIGTERM");
}

/* flags, stage directory, stage binaries, ready fd: any problem exits EXIT_CONFIG */
static void sv_configure(struct sv *sv, int argc, char **argv)
{
	char path[PATH_MAX];
	size_t i;
	int idx;

	struct option *opts = lease_options_with(sv_options);
	char *usage, err[256];

	sv->opts.burst_replicas = -1;
	sv->opts.ready_fd = -1;
	lease_cfg_init(&sv->opts.lease);
	xasprintf(&usage, "%s%s", sv_usage, lease_usage);
	idx = cli_parse(&sv->cli, "vmpoold", argc, argv, opts, sv_handle_opt, &sv->opts, usage);
	free(opts);
	free(usage);
	if (idx < argc)
		fatal_config("unexpected argument: %s (see --help)", log_escape(argv[idx]));
	if (lease_cfg_check(&sv->opts.lease, err, sizeof(err)) == -1)
		fatal_config("%s", err);
	if (sv->opts.stage_dir == NULL)
		sv->opts.stage_dir = sv_self_dir();
	for (i = 0; i < SV_NSTAGES; i++) {
		snprintf(path, sizeof(path), "%s/%s", sv->opts.stage_dir, sv_stages[i].binary);
		if (access(path, X_OK) == -1)
			fatal_config("stage %s: %s: %s", sv_stages[i].name, path, strerror(errno));
	}
	if (sv->cli.metrics_addr != NULL)
		free(sv_metrics_addr(sv->cli.metrics_addr, 0));
	if (sv->cli.probe_addr != NULL)
		free(sv_metrics_addr(sv->cli.probe_addr, 0));
	if (sv->opts.ready_fd >= 0) {
		if (fcntl((int)sv->opts.ready_fd, F_SETFD, FD_CLOEXEC) == -1)
			fatal_config("--ready-fd %ld: %s", sv->opts.ready_fd, strerror(errno));
	}
}

static void sv_start(struct sv *sv)
{
	static const struct child_cb cb = {sv_child_running, sv_child_exited};
	struct sv_argv a = {{NULL}, 0};
	size_t i;

	for (i = 0; i < SV_NSTAGES; i++) {
		sv_stage_argv(sv, &sv_stages[i], &a);
		sv->children[i] = child_new(sv->base, sv_stages[i].name, a.v, &cb, sv);
		sv_argv_free(&a);
	}
	for (i = 0; i < SV_NSTAGES; i++)
		if (child_spawn(sv->children[i]) == -1)
			child_schedule_restart(sv->children[i]);
}

int vmpoold_main(int argc, char **argv)
{
	struct sv sv;
	struct event *ev_chld, *ev_term, *ev_int;
	size_t i;

	memset(&sv, 0, sizeof(sv));
	sv_configure(&sv, argc, argv);
	sv.base = event_base_new();
	if (sv.base == NULL)
		fatalx("event_base_new failed");
	ev_chld = evsignal_new(sv.base, SIGCHLD, sv_sigchld, &sv);
	ev_term = evsignal_new(sv.base, SIGTERM, sv_sigterm, &sv);
	ev_int = evsignal_new(sv.base, SIGINT, sv_sigterm, &sv);
	sv.ev_kill = evtimer_new(sv.base, sv_kill_cb, &sv);
	if (ev_chld == NULL || ev_term == NULL || ev_int == NULL || sv.ev_kill == NULL ||
	    evsignal_add(ev_chld, NULL) == -1 || evsignal_add(ev_term, NULL) == -1 ||
	    evsignal_add(ev_int, NULL) == -1)
		fatalx("cannot set up signal events");
	log_info(NULL, "starting stages from %s (pid %ld)", sv.opts.stage_dir, (long)getpid());
	sv_start(&sv);
	event_base_dispatch(sv.base);
	log_info(NULL, "exiting with status %d", sv.exit_code);
	for (i = 0; i < SV_NSTAGES; i++)
		child_free(sv.children[i]);
	event_free(ev_chld);
	event_free(ev_term);
	event_free(ev_int);
	event_free(sv.ev_kill);
	event_base_free(sv.base);
	free(sv.opts.stage_dir);
	lease_cfg_clear(&sv.opts.lease);
	cli_free(&sv.cli);
	return sv.exit_code;
}

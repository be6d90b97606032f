/*
 * main.c: vmpool-planner. Subscribes to the watcher's picture (or replays a recorded
 * stream), plans each dirty pool, sends actions to the actuator and publishes each pool's
 * sync result on planner.sock. Never talks to the API.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "codec.h"
#include "lease.h"
#include "link.h"
#include "log.h"
#include "metrics.h"
#include "mirror.h"
#include "msg.h"
#include "multicall.h"
#include "obj.h"
#include "planner.h"
#include "proto.h"
#include "store.h"
#include "timeutil.h"
#include "xmalloc.h"
#include "memtrim.h"
#include "stopsig.h"

#define TICK_SECONDS 5

/* the dirty pools (common/queue.h). Batches follow each other at least 0.05 s apart: while
 * a pool scales, the watcher's events come by the hundred a second, and a pass costs what
 * the pool holds; marks made in between coalesce. And one pool's passes take at most 5 % of
 * the time: a pool of 500 VMs whose pass took 5 ms is passed again 95 ms after it at the
 * earliest (on a busy machine, where passes take longer, later still), one of 10 VMs at
 * the pace. The window of pending creates and deletes (plan.c) keeps the API server busy
 * meanwhile, and a create's RESULT that half-drains the slow-start window runs the pass
 * at the next loop turn regardless (queue_mark_soon), so this costs no throughput. A
 * failing pool is planned again after 1 s doubling to 5 min. */
static const struct queue_opts planner_queue = {"planner", 0.05, 1.0, 300.0, NULL, 0.05};

enum { OPT_BURST = 1000, OPT_EVENTS, OPT_ACTIONS, OPT_SEED };

static const struct option planner_opts[] = {
    {"burst-replicas", required_argument, NULL, OPT_BURST},
    {"events", required_argument, NULL, OPT_EVENTS},
    {"actions", required_argument, NULL, OPT_ACTIONS},
    {"seed", required_argument, NULL, OPT_SEED},
    {NULL, 0, NULL, 0},
};

static const char planner_usage[] =
    "  --burst-replicas N   creates + deletes per pool and pass (default 250)\n"
    "  --events FILE|-      replay recorded watcher frames instead of connecting\n"
    "  --actions -          print actions as JSON lines instead of sending them\n"
    "  --seed N             fixed random seed for scale-in choices\n";

struct planner_cfg {
	struct planner *p;
	char *events;
	struct lease_cfg lease; /* only --leader-elect matters here */
};

static const int actuator_accept[] = {MSG_RESULT, MSG_LEADER, 0};
static const int planner_accept[] = {0};

static int planner_flag(int opt, const char *val, void *arg)
{
	struct planner_cfg *cfg = arg;
	long v;

	switch (opt) {
	case OPT_BURST:
		if (cli_int(val, 1, 100000, &v) == -1)
			return -1;
		cfg->p->burst = v;
		return 0;
	case OPT_EVENTS:
		free(cfg->events);
		cfg->events = xstrdup(val);
		return 0;
	case OPT_ACTIONS:
		if (strcmp(val, "-") != 0)
			return -1;
		cfg->p->actions_stdout = 1;
		return 0;
	case OPT_SEED:
		if (cli_int(val, 0, 0xffffffffL, &v) == -1)
			return -1;
		cfg->p->seed = v;
		return 0;
	}
	if (opt >= LEASE_OPT_FIRST && opt <= LEASE_OPT_LAST)
		return lease_cfg_set(&cfg->lease, opt, val);
	return -1;
}

static void planner_synced(void *arg)
{
	struct planner *p = arg;

	log_info(NULL, "watcher snapshot complete: %zu pools, %zu VMs",
	    store_count(mirror_store(p->mirror), KIND_POOL),
	    store_count(mirror_store(p->mirror), KIND_VM));
	planrun_mark_all(p);
	if (p->pub != NULL)
		pub_set_ready(p->pub, 1);
	metrics_set_ready(1);
}

static void planner_lost(void *arg)
{
	log_info(NULL, "watcher link lost; waiting for a new snapshot");
}

static void planner_act_up(struct link *l, void *arg)
{
	struct planner *p = arg;

	log_info(NULL, "actuator link up");
	if (!p->elect) /* else LEADER says when to send */
		planrun_leader(p, 1);
}

static void planner_act_frame(struct link *l, int type, json_object *body, void *arg)
{
	struct planner *p = arg;
	struct msg_result res;
	struct msg_leader ld;
	char err[256];

	if (type == MSG_RESULT) {
		if (msg_result_unpack(body, &res, err, sizeof err) == 0)
			planrun_result(arg, &res);
		else
			log_warnx(
			    NULL, "%s from %s; ignored", err, log_escape(link_peer_program(l)));
	} else if (type == MSG_LEADER) {
		if (msg_leader_unpack(body, &ld, err, sizeof err) == -1) {
			log_warnx(
			    NULL, "%s from %s; ignored", err, log_escape(link_peer_program(l)));
			return;
		}
		claim_leader(p, &ld);
		planrun_leader(p, ld.leading || !p->elect);
	}
}

static void planner_act_down(struct link *l, void *arg)
{
	struct planner *p = arg;
	int was = p->act_leading;

	p->act_leading = 0;
	if (p->elect && was)
		planrun_term_over(p); /* the actuator exits when it stops leading */
	else
		planrun_link_lost(p);
}

/* a recording starts with a HELLO of our protocol version (vmpoolctl record writes it) */
static int planner_replay_hello(const char *path, const struct frame *f)
{
	struct msg_hello h;
	char err[256];

	if (f->type != MSG_HELLO) {
		log_warnx(NULL, "%s: not a watcher recording: it starts with %s, not HELLO",
		    log_escape(path), msg_type_name(f->type));
		return -1;
	}
	if (msg_hello_check(f->body, &h, err, sizeof err) == -1) {
		log_warnx(NULL,
		    "%s: recorded with %s; record it again with this version's vmpoolctl",
		    log_escape(path), err);
		return -1;
	}
	return 0;
}

/* the frames at the front of b go to the mirror and are consumed; -1 (logged) for bytes
 * that are not a frame. *off counts the bytes consumed so far, for the message. */
static int planner_replay_frames(struct planner *p, const char *path, struct buf *b,
    size_t max_frame, size_t *off, size_t *frames)
{
	struct frame f;
	char err[256];
	size_t pos = 0;
	long used;
	int rv = 0;

	while (pos < b->len) {
		memset(&f, 0, sizeof(f));
		used = codec_unpack(b->data + pos, b->len - pos, max_frame, &f, err, sizeof(err));
		if (used == 0)
			break;
		if (used < 0) {
			log_warnx(NULL, "%s: not a watcher recording: %s at byte %zu",
			    log_escape(path), err, *off);
			rv = -1;
			break;
		}
		if (*frames == 0 && planner_replay_hello(path, &f) == -1) {
			frame_clear(&f);
			rv = -1;
			break;
		}
		if (f.type != MSG_HELLO)
			mirror_apply(p->mirror, f.type, f.body);
		frame_clear(&f);
		pos += (size_t)used;
		*off += (size_t)used;
		(*frames)++;
	}
	buf_consume(b, pos);
	return rv;
}

/*
 * Reads the recording a chunk at a time (never the whole file: the replay costs what the
 * planner holds); frames go to the mirror as if the watcher had sent them. Anything that is
 * not a recording (vmpoolctl record), or is cut, is refused with the byte where it goes
 * wrong: a replay that silently planned nothing would look like a verdict.
 */
static int planner_replay(struct planner *p, const char *path, size_t max_frame)
{
	unsigned char chunk[65536];
	int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
	struct buf b = {0};
	size_t off = 0, frames = 0;
	ssize_t n;
	int rv = 0;

	if (fd == -1) {
		log_warn(NULL, "%s", log_escape(path));
		return -1;
	}
	while (rv == 0 && (n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			log_warn(NULL, "read %s", log_escape(path));
			rv = -1;
			break;
		}
		buf_add(&b, chunk, (size_t)n);
		rv = planner_replay_frames(p, path, &b, max_frame, &off, &frames);
	}
	if (fd != 0)
		close(fd);
	if (rv == 0 && b.len > 0) {
		log_warnx(NULL, "%s: not a watcher recording: truncated frame at byte %zu",
		    log_escape(path), off);
		rv = -1;
	}
	if (rv == 0 && frames == 0) {
		log_warnx(NULL, "%s: empty recording", log_escape(path));
		rv = -1;
	}
	buf_clear(&b);
	p->replay_done = 1;
	return rv;
}

static void planner_expired(const char *key, void *arg)
{
	struct planner *p = arg;

	log_warns(
	    "Expectation expired: the watcher never showed the action's effect", LOG_POOL(key));
	queue_mark(p->q, key);
}

static void planner_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct planner *p = arg;

	expect_expire(p->exp, now_mono(), planner_expired, p);
	claim_settle(p);
}

static int planner_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void planner_key(json_object *pool, void *arg)
{
	struct {
		char **v;
		size_t n;
	} *keys = arg;
	char key[512];

	keys->v = xreallocarray(keys->v, keys->n + 1, sizeof(*keys->v));
	keys->v[keys->n++] = xstrdup(obj_key(pool, key, sizeof(key)));
}

/* --events with --actions -: plan every pool once, in key order, and stop */
static void planner_plan_once(struct planner *p)
{
	struct {
		char **v;
		size_t n;
	} keys = {NULL, 0};
	size_t i;

	store_foreach(mirror_store(p->mirror), KIND_POOL, planner_key, &keys);
	if (keys.n > 0)
		qsort(keys.v, keys.n, sizeof(*keys.v), planner_cmp_str);
	for (i = 0; i < keys.n; i++) {
		planrun_run(keys.v[i], p);
		free(keys.v[i]);
	}
	free(keys.v);
}

/* the watcher's objects as the planner keeps them: VMs and revisions are read by their pool
 * (store_owned), no other kind by its controller */
static struct mirror *planner_mirror_new(
    struct planner *p, const char *path, size_t max_frame, const struct mirror_cb *cb)
{
	static const char *const owner_kinds[] = {KIND_VM, KIND_REV, NULL};
	struct mirror *m = mirror_new(p->base, path, max_frame, cb, p);

	store_owner_kinds(mirror_store(m), owner_kinds);
	return m;
}

static void planner_connect(struct planner *p, struct cli *cli)
{
	static const struct mirror_cb mcb = {planrun_changed, planner_synced, planner_lost};
	static const struct link_cb acb = {planner_act_up, planner_act_frame, planner_act_down};
	struct link_spec aspec = {LINK_ACTUATOR, actuator_accept, cli->max_frame};
	struct link_spec pspec = {LINK_PLANNER, planner_accept, cli->max_frame};
	char *path;

	cli_check_run_dir(cli);
	if (p->mirror == NULL) {
		path = link_sock_path(cli->run_dir, LINK_WATCHER);
		p->mirror = planner_mirror_new(p, path, cli->max_frame, &mcb);
		free(path);
	}
	if (!p->actions_stdout) {
		path = link_sock_path(cli->run_dir, LINK_ACTUATOR);
		p->act = link_connect(p->base, path, &aspec, &acb, p);
		free(path);
	}
	path = link_sock_path(cli->run_dir, LINK_PLANNER);
	if ((p->pub = pub_new(p->base, path, &pspec, planrun_snapshot, p)) == NULL)
		fatal_config("cannot listen on %s", path);
	free(path);
	if (p->replay_done)
		pub_set_ready(p->pub, 1);
}

static void planner_loop(struct planner *p)
{
	struct stopsig *stop = stopsig_new(p->base);
	struct memtrim *trim = memtrim_new(p->base);
	struct event *tick;
	struct timeval tv = {TICK_SECONDS, 0};

	memtrim_store(trim, mirror_store(p->mirror));
	tick = event_new(p->base, -1, EV_PERSIST, planner_tick, p);
	event_add(tick, &tv);
	event_base_dispatch(p->base);
	event_free(tick);
	memtrim_free(trim);
	stopsig_free(stop);
}

/* --pool-selector: a shard, whose claims name its Lease (DESIGN.md, shards) */
static void planner_claims(struct planner *p, const struct lease_cfg *lc)
{
	char name[256];

	if (lc->pool_selector == NULL)
		return;
	if (lc->name != NULL)
		snprintf(name, sizeof(name), "%s", lc->name);
	else
		lease_default_name(lc->pool_selector, name, sizeof(name));
	claim_init(p, name);
}

int vmpool_planner_main(int argc, char **argv)
{
	static const struct mirror_cb rcb = {planrun_changed, NULL, NULL};
	struct planner p;
	struct planner_cfg cfg = {&p, NULL, {0}};
	struct cli cli;
	struct option *opts = lease_options_with(planner_opts);
	char err[256], *usage;

	memset(&p, 0, sizeof(p));
	memset(&cli, 0, sizeof(cli));
	p.burst = BURST_DEFAULT;
	p.seed = -1;
	lease_cfg_init(&cfg.lease);
	xasprintf(&usage, "%s%s", planner_usage,
	    "  --leader-elect       send actions only while the actuator leads (the other\n"
	    "                       --leader-elect-* flags and --pool-selector are taken and\n"
	    "                       checked but used by the watcher and actuator)\n");
	if (cli_parse(&cli, "vmpool-planner", argc, argv, opts, planner_flag, &cfg, usage) != argc)
		fatal_config("unexpected argument; see --help");
	free(opts);
	free(usage);
	if (lease_cfg_check(&cfg.lease, err, sizeof(err)) == -1)
		fatal_config("%s", err);
	p.elect = cfg.lease.enabled;
	planner_claims(&p, &cfg.lease);
	lease_cfg_clear(&cfg.lease);
	signal(SIGPIPE, SIG_IGN);
	srandom((unsigned int)(time(NULL) ^ getpid()));
	if ((p.base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	planrun_init(&p);
	p.q = queue_new(p.base, &planner_queue, planrun_run, &p);
	planrun_metrics_declare();
	cli_start_endpoints(p.base, &cli);
	if (cfg.events != NULL) {
		p.mirror = planner_mirror_new(&p, NULL, cli.max_frame, &rcb);
		if (planner_replay(&p, cfg.events, cli.max_frame) == -1)
			fatal_config("--events %s: cannot replay it", log_escape(cfg.events));
	}
	if (cfg.events != NULL && p.actions_stdout)
		planner_plan_once(&p);
	else {
		planner_connect(&p, &cli);
		if (p.replay_done)
			planrun_mark_all(&p);
		log_info(NULL, "started: run dir %s, burst %ld", cli.run_dir, p.burst);
		planner_loop(&p);
	}
	queue_free(p.q);
	pub_free(p.pub);
	link_free(p.act);
	mirror_free(p.mirror);
	planrun_clear(&p);
	claim_clear(&p);
	metrics_stop();
	event_base_free(p.base);
	free(cfg.events);
	cli_free(&cli);
	return 0;
}

/*
 * vmpoolctl.c: the operator's tool for the links between stages.
 *   tap watcher|planner      subscribe and print every frame as one JSON line
 *   record watcher|planner F write the frames (after a HELLO naming the source) to F in
 *                            wire format, for `vmpool-planner --events F`
 *   dump F                   print a recorded file as JSON lines
 * A CLI tool, not a stage: bad usage exits 2.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "cli.h"
#include "codec.h"
#include "link.h"
#include "obj.h"
#include "log.h"
#include "mirror.h"
#include "msg.h"
#include "proto.h"
#include "xmalloc.h"
#include "timeutil.h"

#define CTL_EXIT_USAGE 2

struct ctl {
	struct event_base *base;
	char *run_dir;
	size_t max_frame;
	long count;     /* 0: unlimited */
	double timeout; /* 0: none */
	int verbose;
	const char *source; /* LINK_WATCHER or LINK_PLANNER */
	FILE *out;          /* record: the file; tap: stdout */
	int record;
	int hello_written;
	long seen;
	int status;
};

static void __attribute__((noreturn)) ctl_usage(const char *why)
{
	if (why != NULL)
		fprintf(stderr, "vmpoolctl: %s\n", why);
	fprintf(stderr,
	    "usage: vmpoolctl [options] tap watcher|planner\n"
	    "       vmpoolctl [options] record watcher|planner FILE|-\n"
	    "       vmpoolctl [options] dump FILE|-\n"
	    "options:\n"
	    "  --run-dir DIR     socket directory (default: $XDG_RUNTIME_DIR/vmpoold or\n"
	    "                    /tmp/vmpoold-$UID)\n"
	    "  --count N         stop after N frames (HELLO not counted)\n"
	    "  --timeout SEC     stop after SEC seconds (exit 1 if --count was not reached)\n"
	    "  --max-frame BYTES frame size cap (default 4 MiB)\n"
	    "  -v, --verbose     more logging\n"
	    "  -h, --help\n"
	    "  --version\n"
	    "tap prints {\"type\":NAME,\"seq\":N,\"body\":{...}} per line, seq counting from 1.\n");
	exit(why == NULL ? 0 : CTL_EXIT_USAGE);
}

/* one frame as a JSON line on out */
static void ctl_print(FILE *out, int type, uint64_t seq, json_object *body)
{
	json_object *o;
	const char *name = msg_type_name(type);
	char num[32];

	if (strcmp(name, "UNKNOWN") == 0) {
		snprintf(num, sizeof(num), "%d", type);
		name = num;
	}
	o = json_object_new_object();
	json_object_object_add(o, "type", json_object_new_string(name));
	json_object_object_add(o, "seq", json_object_new_int64((int64_t)seq));
	json_object_object_add(
	    o, "body", body != NULL ? json_object_get(body) : json_object_new_object());
	fprintf(out, "%s\n", obj_json(o));
	fflush(out);
	json_object_put(o);
}

static int ctl_write_frame(struct ctl *c, int type, uint64_t seq, json_object *body)
{
	struct buf b = {NULL, 0, 0};
	int rv = 0;

	codec_pack(&b, type, seq, body);
	if (fwrite(b.data, 1, b.len, c->out) != b.len || fflush(c->out) != 0) {
		log_warn(NULL, "record: write");
		rv = -1;
	}
	buf_clear(&b);
	return rv;
}

static void ctl_up(struct link *l, void *arg)
{
	struct ctl *c = arg;
	struct msg_hello h = {PROTO_VERSION, link_peer_program(l), 0, c->source, "vmpoolctl"};
	json_object *hello;

	log_info(NULL, "subscribed to %s (%s)", c->source, log_escape(link_peer_program(l)));
	if (!c->record || c->hello_written)
		return;
	/* the recorded stream starts like a live one: a HELLO naming the source */
	hello = msg_hello_pack(&h);
	if (ctl_write_frame(c, MSG_HELLO, 0, hello) == -1) {
		c->status = 1;
		event_base_loopexit(c->base, NULL);
	}
	c->hello_written = 1;
	json_object_put(hello);
}

static void ctl_frame(struct link *l, int type, json_object *body, void *arg)
{
	struct ctl *c = arg;

	if (c->count > 0 && c->seen >= c->count)
		return;
	c->seen++;
	if (!c->record)
		ctl_print(c->out, type, (uint64_t)c->seen, body);
	else if (ctl_write_frame(c, type, (uint64_t)c->seen, body) == -1) {
		c->status = 1;
		event_base_loopexit(c->base, NULL);
		return;
	}
	if (c->count > 0 && c->seen >= c->count)
		event_base_loopexit(c->base, NULL);
}

static void ctl_down(struct link *l, void *arg)
{
	struct ctl *c = arg;

	log_info(NULL, "link to %s lost; reconnecting", c->source);
}

static void ctl_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct ctl *c = arg;

	if (c->count > 0 && c->seen < c->count) {
		log_warnx(NULL, "timeout after %ld of %ld frames", c->seen, c->count);
		c->status = 1;
	}
	event_base_loopexit(c->base, NULL);
}

static void ctl_signal(evutil_socket_t sig, short what, void *arg)
{
	struct ctl *c = arg;

	event_base_loopexit(c->base, NULL);
}

/* tap and record: subscribe to a publisher until count, timeout or a signal */
static int ctl_subscribe(struct ctl *c)
{
	static const struct link_cb cb = {ctl_up, ctl_frame, ctl_down};
	struct link_spec spec;
	struct event *ev_to, *ev_int, *ev_term;
	struct link *l;
	char *path;
	struct timeval tv;

	spec.name = c->source;
	/* the streams' frame types as the subscriber (mirror.h) has them; tap and record keep
	 * no picture (they print or write every frame as it comes, markers included), so
	 * they use the link alone, not a mirror */
	spec.accept =
	    strcmp(c->source, LINK_WATCHER) == 0 ? mirror_watcher.accept : mirror_results.accept;
	spec.max_frame = c->max_frame;
	c->base = event_base_new();
	if (c->base == NULL)
		fatalx("event_base_new failed");
	path = link_sock_path(c->run_dir, c->source);
	l = link_connect(c->base, path, &spec, &cb, c);
	if (l == NULL) {
		log_warnx(NULL, "cannot connect to %s", log_escape(path));
		free(path);
		return 1;
	}
	ev_to = evtimer_new(c->base, ctl_timeout, c);
	ev_int = evsignal_new(c->base, SIGINT, ctl_signal, c);
	ev_term = evsignal_new(c->base, SIGTERM, ctl_signal, c);
	if (c->timeout > 0) {
		tv = secs_to_tv(c->timeout);
		evtimer_add(ev_to, &tv);
	}
	evsignal_add(ev_int, NULL);
	evsignal_add(ev_term, NULL);
	event_base_dispatch(c->base);
	link_free(l);
	event_free(ev_to);
	event_free(ev_int);
	event_free(ev_term);
	event_base_free(c->base);
	free(path);
	return c->status;
}

static int ctl_read_all(const char *file, struct buf *b)
{
	unsigned char chunk[65536];
	FILE *f;
	size_t n;
	int rv = 0;

	f = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
	if (f == NULL) {
		log_warn(NULL, "dump: %s", log_escape(file));
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(b, chunk, n);
	if (ferror(f)) {
		log_warn(NULL, "dump: read %s", log_escape(file));
		rv = -1;
	}
	if (f != stdin)
		fclose(f);
	return rv;
}

/* prints every frame of a recorded file; a bad or truncated one says where and fails */
static int ctl_dump(const char *file, size_t max_frame)
{
	struct buf b = {NULL, 0, 0};
	struct frame f;
	char err[256];
	size_t off = 0;
	long r;
	int rv = 0;

	if (ctl_read_all(file, &b) == -1)
		return 1;
	while (off < b.len) {
		memset(&f, 0, sizeof(f));
		err[0] = '\0';
		r = codec_unpack(b.data + off, b.len - off, max_frame, &f, err, sizeof(err));
		if (r == 0) {
			fprintf(stderr,
			    "vmpoolctl: %s: truncated frame at byte offset %zu (%zu bytes left)\n",
			    file, off, b.len - off);
			rv = 1;
			break;
		}
		if (r < 0) {
			fprintf(stderr, "vmpoolctl: %s: bad frame at byte offset %zu: %s\n", file,
			    off, err);
			rv = 1;
			break;
		}
		ctl_print(stdout, f.type, f.seq, f.body);
		frame_clear(&f);
		off += (size_t)r;
	}
	buf_clear(&b);
	return rv;
}

enum { OPT_RUN_DIR = 1000, OPT_COUNT, OPT_TIMEOUT, OPT_MAX_FRAME, OPT_VERSION };

static void ctl_parse(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"run-dir", required_argument, NULL, OPT_RUN_DIR},
	    {"count", required_argument, NULL, OPT_COUNT},
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},
	    {"max-frame", required_argument, NULL, OPT_MAX_FRAME},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, OPT_VERSION},
	    {NULL, 0, NULL, 0},
	};
	long n;
	int ch;

	while ((ch = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (ch) {
		case OPT_RUN_DIR:
			free(c->run_dir);
			c->run_dir = xstrdup(optarg);
			break;
		case OPT_COUNT:
			if (cli_int(optarg, 1, 1L << 40, &c->count) == -1)
				ctl_usage("--count: want a positive number");
			break;
		case OPT_TIMEOUT:
			if (cli_double(optarg, 0.001, 1e9, &c->timeout) == -1)
				ctl_usage("--timeout: want a positive number of seconds");
			break;
		case OPT_MAX_FRAME:
			if (cli_int(optarg, 64, 1L << 31, &n) == -1)
				ctl_usage("--max-frame: want 64 .. 2^31 bytes");
			c->max_frame = (size_t)n;
			break;
		case 'v':
			c->verbose++;
			break;
		case 'h':
			ctl_usage(NULL);
		case OPT_VERSION:
			printf("vmpoolctl %s\n", VMPOOL_VERSION);
			exit(0);
		default:
			ctl_usage("bad option");
		}
	}
}

static const char *ctl_source(const char *s)
{
	if (strcmp(s, "watcher") == 0)
		return LINK_WATCHER;
	if (strcmp(s, "planner") == 0)
		return LINK_PLANNER;
	ctl_usage("the source is watcher or planner");
}

int main(int argc, char **argv)
{
	struct ctl c;
	const char *cmd;
	int nargs, rv;

	memset(&c, 0, sizeof(c));
	c.max_frame = PROTO_MAX_FRAME_DEFAULT;
	ctl_parse(&c, argc, argv);
	log_init("vmpoolctl", c.verbose, LOG_FMT_TEXT);
	nargs = argc - optind;
	if (nargs < 1)
		ctl_usage("missing command");
	cmd = argv[optind];
	if (strcmp(cmd, "dump") == 0) {
		if (nargs != 2)
			ctl_usage("dump takes one FILE (or -)");
		rv = ctl_dump(argv[optind + 1], c.max_frame);
		free(c.run_dir);
		return rv;
	}
	if (strcmp(cmd, "tap") == 0 && nargs == 2) {
		c.out = stdout;
	} else if (strcmp(cmd, "record") == 0 && nargs == 3) {
		c.record = 1;
		c.out = strcmp(argv[optind + 2], "-") == 0 ? stdout : fopen(argv[optind + 2], "wb");
		if (c.out == NULL) {
			fprintf(stderr, "vmpoolctl: %s: %s\n", argv[optind + 2], strerror(errno));
			return 1;
		}
	} else
		ctl_usage("unknown command or wrong number of arguments");
	c.source = ctl_source(argv[optind + 1]);
	if (c.run_dir == NULL)
		c.run_dir = link_default_run_dir();
	rv = ctl_subscribe(&c);
	if (c.out != stdout && fclose(c.out) != 0) {
		log_warn(NULL, "record: close");
		rv = 1;
	}
	free(c.run_dir);
	return rv;
}

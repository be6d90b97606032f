/*
 * bench_offline.c: benchmarks that need no cluster.
 *
 *   bench_offline codec [SECONDS]
 *       packs and unpacks an OBJ_SET frame carrying a realistic VirtualMachine (the one the
 *       planner builds for a pool index, plus the metadata and status the API adds) for
 *       SECONDS each (default 2) and prints frames/s and MB/s.
 *   bench_offline planner PLANNER POOLS VMS NSMODE [RUNS]
 *       writes a recorded watcher stream (HELLO, SYNC_BEGIN, POOLS pools with VMS VMs each,
 *       projected as the watcher publishes them,
 *       one VM missing per pool, SYNC_END), runs `PLANNER --events FILE --actions - --seed 1`
 *       RUNS times (default 3) with stdout on a pipe, and prints the median wall time, the
 *       actions printed, peak RSS (wait4 ru_maxrss) and CPU seconds. NSMODE is "one" (every
 *       pool in one namespace) or "each" (one namespace per pool).
 *
 * Every line of results reads "bench <name>: <figure> <unit>".
 */
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <malloc.h>

#include <json-c/json.h>

#include "codec.h"
#include "msg.h"
#include "log.h"
#include "../../planner/planner.h"
#include "proto.h"
#include "resource.h"
#include "timeutil.h"
#include "xmalloc.h"

#define BENCH_MAX_RUNS 9

static json_object *bench_parse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static json_object *bench_parse(const char *fmt, ...)
{
	char *s;
	va_list ap;
	json_object *o;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		fprintf(stderr, "bench_offline: out of memory\n");
		exit(1);
	}
	if ((o = json_tokener_parse(s)) == NULL) {
		fprintf(stderr, "bench_offline: bad fixture JSON: %s\n", s);
		exit(1);
	}
	free(s);
	return o;
}

/* a pool as the watcher shows it: like examples/vm-pool-cirros.yaml, finalizer present */
static json_object *bench_pool(const char *ns, long p, long replicas)
{
	return bench_parse(
	    "{\"apiVersion\":\"pool.kubevirt.io/v1beta1\",\"kind\":\"VirtualMachinePool\","
	    "\"metadata\":{\"name\":\"pool-%ld\",\"namespace\":\"%s\","
	    "\"uid\":\"00000000-0000-4000-8000-%012ld\",\"resourceVersion\":\"%ld\","
	    "\"generation\":1,\"creationTimestamp\":\"2024-01-01T00:00:00Z\","
	    "\"finalizers\":[\"" POOL_FINALIZER "\"]},"
	    "\"spec\":{\"replicas\":%ld,"
	    "\"selector\":{\"matchLabels\":{\"kubevirt.io/vmpool\":\"pool-%ld\"}},"
	    "\"virtualMachineTemplate\":{\"metadata\":{\"labels\":{\"kubevirt.io/vmpool\":"
	    "\"pool-%ld\"}},\"spec\":{\"runStrategy\":\"Always\",\"template\":{\"metadata\":"
	    "{\"labels\":{\"kubevirt.io/vmpool\":\"pool-%ld\"}},\"spec\":{\"domain\":{\"devices\":"
	    "{\"disks\":[{\"disk\":{\"bus\":\"virtio\"},\"name\":\"containerdisk\"}]},"
	    "\"resources\":{\"requests\":{\"memory\":\"128Mi\"}}},"
	    "\"terminationGracePeriodSeconds\":0,\"volumes\":[{\"containerDisk\":{\"image\":"
	    "\"kubevirt/cirros-container-disk-demo:latest\"},\"name\":\"containerdisk\"}]}}}}},"
	    "\"status\":{\"replicas\":%ld,\"readyReplicas\":%ld,"
	    "\"labelSelector\":\"kubevirt.io/vmpool=pool-%ld\"}}",
	    p, ns, p, 1000 + p, replicas, p, p, p, replicas, replicas, p);
}

/* the VM the planner would create for index i, as the API returns it once it runs */
static json_object *bench_vm(json_object *pool, long p, long i)
{
	json_object *vm = vmbuild_vm(pool, i, NULL), *md, *st;
	char uid[96], rv[32];

	if (vm == NULL) {
		fprintf(stderr, "bench_offline: vmbuild_vm failed\n");
		exit(1);
	}
	json_object_object_get_ex(vm, "metadata", &md);
	snprintf(uid, sizeof(uid), "11111111-0000-4000-8000-%06ld%06ld", p, i);
	snprintf(rv, sizeof(rv), "%ld", 100000 + p * 1000 + i);
	json_object_object_add(md, "uid", json_object_new_string(uid));
	json_object_object_add(md, "resourceVersion", json_object_new_string(rv));
	json_object_object_add(md, "generation", json_object_new_int(1));
	json_object_object_add(
	    md, "creationTimestamp", json_object_new_string("2024-01-01T00:00:00Z"));
	st =
	    bench_parse("{\"created\":true,\"ready\":true,\"printableStatus\":\"Running\","
	                "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\","
	                "\"lastProbeTime\":null,\"lastTransitionTime\":\"2024-01-01T00:00:01Z\"}],"
	                "\"volumeSnapshotStatuses\":[{\"name\":\"containerdisk\",\"enabled\":false,"
	                "\"reason\":\"Snapshot is not supported for this volumeSource type\"}]}");
	json_object_object_add(vm, "status", st);
	return vm;
}

/* an OBJ_SET body taking obj */
static json_object *bench_setbody(const char *kind, json_object *obj)
{
	struct msg_obj_set set = {kind, obj};
	json_object *b = msg_obj_set_pack(&set);

	json_object_put(obj);
	return b;
}

/* an OBJ_SET as the watcher publishes it: the object projected (common/resource.h) */
static json_object *bench_watcher_set(const char *kind, json_object *obj)
{
	json_object *proj;
	char err[256];

	if ((proj = resource_project(resource_get(kind), obj, err, sizeof(err))) == NULL) {
		fprintf(
		    stderr, "bench_offline: the %s does not fit its projection: %s\n", kind, err);
		exit(1);
	}
	json_object_put(obj);
	return bench_setbody(kind, proj);
}

static void bench_record(struct buf *b, int type, json_object *body)
{
	codec_pack(b, type, 0, body);
	json_object_put(body);
}

/* ---- codec ---- */

#define BENCH_HEAP_COPIES 10000

/* heap held by one decoded VM body (json-c tree), from malloc's own accounting; printed as
 * bench <name> */
static void bench_codec_heap(const struct buf *b, const char *name)
{
	struct frame *f = xcalloc(BENCH_HEAP_COPIES, sizeof(*f));
	struct mallinfo2 m0, m1;
	char err[256];
	double per;
	size_t i;

	m0 = mallinfo2();
	for (i = 0; i < BENCH_HEAP_COPIES; i++)
		if (codec_unpack(
		        b->data, b->len, PROTO_MAX_FRAME_DEFAULT, &f[i], err, sizeof(err)) <= 0)
			exit(1);
	m1 = mallinfo2();
	per = ((double)m1.uordblks + m1.hblkhd - m0.uordblks - m0.hblkhd) / BENCH_HEAP_COPIES;
	if (per > 0)
		printf("bench %s: %.0f bytes per decoded VM (json-c tree, %d copies)\n", name, per,
		    BENCH_HEAP_COPIES);
	else /* e.g. under ASan, whose allocator mallinfo2() does not see */
		printf("bench codec_decoded_heap_note: mallinfo2() saw no growth; not measured\n");
	for (i = 0; i < BENCH_HEAP_COPIES; i++)
		frame_clear(&f[i]);
	free(f);
}

static void bench_codec(double seconds)
{
	json_object *pool = bench_pool("bench", 1, 10);
	json_object *body = bench_setbody(KIND_VM, bench_vm(pool, 1, 3));
	struct buf b = {0};
	struct frame f;
	char err[256];
	unsigned long n = 0, k;
	size_t flen, jlen;
	double t0, dt;
	long used;

	codec_pack(&b, MSG_OBJ_SET, 1, body);
	flen = b.len;
	jlen = strlen(json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN));
	printf("bench codec_frame_size: %zu bytes (the same VM as compact JSON: %zu bytes)\n", flen,
	    jlen);
	t0 = now_mono();
	do {
		for (k = 0; k < 1000; k++) {
			b.len = 0;
			codec_pack(&b, MSG_OBJ_SET, n + k, body);
		}
		n += k;
	} while ((dt = now_mono() - t0) < seconds);
	printf("bench codec_pack: %.0f frames/s\n", n / dt);
	printf("bench codec_pack_bytes: %.1f MB/s\n", n * (double)flen / dt / 1e6);
	n = 0;
	t0 = now_mono();
	do {
		for (k = 0; k < 1000; k++) {
			memset(&f, 0, sizeof(f));
			used = codec_unpack(
			    b.data, b.len, PROTO_MAX_FRAME_DEFAULT, &f, err, sizeof(err));
			if (used != (long)b.len || f.type != MSG_OBJ_SET) {
				fprintf(stderr, "bench_offline: unpack failed: %s\n", err);
				exit(1);
			}
			frame_clear(&f);
		}
		n += k;
	} while ((dt = now_mono() - t0) < seconds);
	printf("bench codec_unpack: %.0f frames/s\n", n / dt);
	printf("bench codec_unpack_bytes: %.1f MB/s\n", n * (double)flen / dt / 1e6);
	bench_codec_heap(&b, "codec_decoded_heap");
	/* the same VM as the watcher publishes it and the planner holds it */
	json_object_put(body);
	body = bench_watcher_set(KIND_VM, bench_vm(pool, 1, 3));
	b.len = 0;
	codec_pack(&b, MSG_OBJ_SET, 1, body);
	printf("bench codec_projected_frame_size: %zu bytes (that VM projected, "
	       "common/resource.c)\n",
	    b.len);
	bench_codec_heap(&b, "codec_projected_decoded_heap");
	buf_clear(&b);
	json_object_put(body);
	json_object_put(pool);
}

/* ---- planner replay ---- */

/* writes the recording; returns its size and sets *nvms to the VMs it holds */
static size_t bench_write_events(const char *path, long pools, long vms, int ns_each, long *nvms)
{
	struct buf b = {0};
	json_object *pool;
	char ns[64];
	long p, i;
	size_t len;
	int fd;

	*nvms = 0;
	bench_record(&b, MSG_HELLO,
	    msg_hello_pack(
	        &(struct msg_hello){PROTO_VERSION, "bench_offline", getpid(), LINK_WATCHER, NULL}));
	bench_record(&b, MSG_SYNC_BEGIN, NULL);
	for (p = 0; p < pools; p++) {
		snprintf(ns, sizeof(ns), ns_each ? "bench-%ld" : "bench", p);
		pool = bench_pool(ns, p, vms);
		for (i = 0; i < vms; i++) {
			if (i == p % vms) /* the one missing VM */
				continue;
			bench_record(
			    &b, MSG_OBJ_SET, bench_watcher_set(KIND_VM, bench_vm(pool, p, i)));
			(*nvms)++;
		}
		bench_record(&b, MSG_OBJ_SET, bench_watcher_set(KIND_POOL, pool));
	}
	bench_record(&b, MSG_SYNC_END, NULL);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    write(fd, b.data, b.len) != (ssize_t)b.len || close(fd) == -1) {
		fprintf(stderr, "bench_offline: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	len = b.len;
	buf_clear(&b);
	return len;
}

struct bench_run {
	double wall, cpu;
	long maxrss_kb;
	long lines;
};

/* runs the planner once with stdout on a pipe we count lines from */
static int bench_run_planner(
    const char *planner, const char *events, const char *errlog, struct bench_run *r)
{
	char *argv[] = {
	    (char *)planner, "--events", (char *)events, "--actions", "-", "--seed", "1", NULL};
	char chunk[65536];
	struct rusage ru;
	int pfd[2], st, efd;
	ssize_t n, k;
	pid_t pid;
	double t0;

	if (pipe(pfd) == -1)
		return -1;
	t0 = now_mono();
	if ((pid = fork()) == 0) {
		efd = open(errlog, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(pfd[1], 1);
		if (efd != -1)
			dup2(efd, 2);
		close(pfd[0]);
		close(pfd[1]);
		execv(planner, argv);
		_exit(127);
	}
	close(pfd[1]);
	if (pid == -1) {
		close(pfd[0]);
		return -1;
	}
	r->lines = 0;
	while ((n = read(pfd[0], chunk, sizeof(chunk))) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			break;
		for (k = 0; k < n; k++)
			r->lines += chunk[k] == '\n';
	}
	close(pfd[0]);
	while (wait4(pid, &st, 0, &ru) == -1)
		if (errno != EINTR)
			return -1;
	r->wall = now_mono() - t0;
	r->cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	         ru.ru_stime.tv_usec / 1e6;
	r->maxrss_kb = ru.ru_maxrss;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "bench_offline: %s exited with status %d (stderr in %s)\n", planner,
		    WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), errlog);
		return -1;
	}
	return 0;
}

static int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int bench_planner(const char *planner, long pools, long vms, int ns_each, int runs)
{
	char dir[] = "/tmp/bench_offline.XXXXXX", events[128], errlog[128], name[64];
	struct bench_run r[BENCH_MAX_RUNS];
	double walls[BENCH_MAX_RUNS], cpus[BENCH_MAX_RUNS];
	long nvms, maxrss = 0;
	size_t size;
	int i, rc = 0;

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return -1;
	}
	snprintf(events, sizeof(events), "%s/events.bin", dir);
	snprintf(errlog, sizeof(errlog), "%s/planner.err", dir);
	snprintf(name, sizeof(name), "planner_%ldx%ld_%s", pools, vms, ns_each ? "nsEach" : "ns1");
	size = bench_write_events(events, pools, vms, ns_each, &nvms);
	printf("bench %s_input: %ld pools, %ld VMs (%s), %.1f MB recording\n", name, pools, nvms,
	    ns_each ? "one namespace per pool" : "all in one namespace", size / 1e6);
	for (i = 0; i < runs && rc == 0; i++) {
		rc = bench_run_planner(planner, events, errlog, &r[i]);
		walls[i] = r[i].wall;
		cpus[i] = r[i].cpu;
		if (r[i].maxrss_kb > maxrss)
			maxrss = r[i].maxrss_kb;
		if (i > 0 && r[i].lines != r[0].lines) {
			fprintf(stderr, "bench_offline: runs printed %ld then %ld actions\n",
			    r[0].lines, r[i].lines);
			rc = -1;
		}
	}
	if (rc == 0) {
		qsort(walls, runs, sizeof(double), bench_cmp_double);
		qsort(cpus, runs, sizeof(double), bench_cmp_double);
		printf("bench %s_wall: %.3f s (median of %d runs; min %.3f, max %.3f)\n", name,
		    walls[runs / 2], runs, walls[0], walls[runs - 1]);
		printf("bench %s_cpu: %.3f s (median user+sys)\n", name, cpus[runs / 2]);
		printf("bench %s_actions: %ld actions\n", name, r[0].lines);
		printf("bench %s_maxrss: %.1f MB\n", name, maxrss / 1024.0);
		printf(
		    "bench %s_rate: %.0f objects/s (pools + VMs decoded and planned per wall s)\n",
		    name, (pools + nvms) / walls[runs / 2]);
		if (r[0].lines != pools)
			printf(
			    "bench %s_note: expected %ld create actions (one per pool), got %ld\n",
			    name, pools, r[0].lines);
		unlink(errlog);
	}
	unlink(events);
	if (rc == 0)
		rmdir(dir);
	return rc;
}

static void bench_usage(void)
{
	fprintf(stderr, "usage: bench_offline codec [SECONDS]\n"
	                "       bench_offline planner PLANNER POOLS VMS one|each [RUNS]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	long pools, vms, runs = 3;

	signal(SIGPIPE, SIG_IGN);
	log_init("bench_offline", 0, LOG_FMT_TEXT);
	if (argc >= 2 && strcmp(argv[1], "codec") == 0) {
		bench_codec(argc >= 3 ? atof(argv[2]) : 2.0);
		return 0;
	}
	if (argc < 6 || strcmp(argv[1], "planner") != 0)
		bench_usage();
	pools = atol(argv[3]);
	vms = atol(argv[4]);
	if (argc >= 7)
		runs = atol(argv[6]);
	if (pools < 1 || vms < 1 || runs < 1 || runs > BENCH_MAX_RUNS ||
	    (strcmp(argv[5], "one") != 0 && strcmp(argv[5], "each") != 0))
		bench_usage();
	return bench_planner(argv[2], pools, vms, strcmp(argv[5], "each") == 0, (int)runs) == 0 ? 0
	                                                                                        : 1;
}

#!/usr/bin/env bash
# scripts/hot-order.sh [OUT]: which of vmpoold's functions its five processes run, as a
# symbol ordering file for the linker (default OUT: supervisor/vmpoold.order; DESIGN.md,
# "Hot code first").
#
# The kernel maps a program's pages 64 KB at a time around each one touched (fault-around),
# so a process's resident share of the executable is every 64 KB window it touches at least
# once: most of the file when the code it runs is spread through it. Linking the functions it
# runs next to each other shrinks that. This finds them by running a copy of bin/vmpoold
# (supervisor and four stages, leader election on, metrics served) against the local control
# plane through a pool's life: created, ready, scaled out, a template change rolled out, the
# planner killed and restarted, scaled in, metrics scraped, deleted. Twice:
#   1. under valgrind's callgrind: every function it saw run, grouped by the set of programs
#      that ran it, those the most programs share first;
#   2. natively, as root, with the page cache emptied and read-ahead off for the disk that
#      holds the copy, so that the file's cached pages afterwards are exactly those some
#      process touched: the functions on such pages that the first run did not name (what
#      runs differently outside valgrind: the string functions glibc picks for this CPU)
#      follow. Skipped, with a message, when not root; read-ahead is restored on exit.
# Run it after a change that moves much code and commit the file: a stale file only costs
# memory, never correctness (lld ignores names that are gone, and puts what the file does not
# name after what it does).
#
# HOT_MEASURE=1 makes only the native run, without emptying anything, and prints each
# process's resident pages of the executable at its end (kB, by the mapping's permissions):
# the figure the order is for. HOT_EXE: the executable to run (default bin/vmpoold).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
OUT=${1:-supervisor/vmpoold.order}
MEASURE=${HOT_MEASURE:-0}
EXE=${HOT_EXE:-bin/vmpoold}
die() { echo "hot-order: $*" >&2; exit 1; }
[ -x "$EXE" ] || die "no $EXE: run make"
[ "$MEASURE" = 1 ] || command -v valgrind >/dev/null || die "needs valgrind"

W=$ROOT/build/hot
rm -rf "$W"
mkdir -p "$W/bin" "$W/cg"
cp "$EXE" "$W/bin/vmpoold"
for s in watcher planner actuator status; do ln -s vmpoold "$W/bin/vmpool-$s"; done
nm -S --defined-only "$W/bin/vmpoold" >"$W/nm" 2>/dev/null || true
[ -s "$W/nm" ] || die "$EXE has no symbols"

export VMPOOLD_CLUSTER_DIR=${VMPOOLD_CLUSTER_DIR:-/tmp/vmpoold-hot-$$}
export VMPOOLD_CLUSTER_PORT=${VMPOOLD_CLUSTER_PORT:-6690}
RA='' ra0=''
SIM='' VMPOOLD=''
cleanup() {
	[ -z "$RA" ] || echo "$ra0" >"$RA"
	kill ${SIM:+"$SIM"} ${VMPOOLD:+"$VMPOOLD"} 2>/dev/null
	wait 2>/dev/null
	bash scripts/test-cluster.sh down >/dev/null 2>&1
}
trap cleanup EXIT
bash scripts/test-cluster.sh up >"$W/cluster.log" 2>&1 || die "cluster did not start: $W/cluster.log"
export KUBECONFIG=$VMPOOLD_CLUSTER_DIR/kubeconfig
bash scripts/test-cluster.sh install || exit 1
bin/vmpool-sim --kubeconfig "$KUBECONFIG" >"$W/sim.log" 2>&1 &
SIM=$!

# start [COMMAND...]: vmpoold from the copy, run by COMMAND (none: natively)
start() {
	rm -rf "$W/run"
	mkdir -m 700 "$W/run"
	"$@" "$W/bin/vmpoold" --kubeconfig "$KUBECONFIG" --run-dir "$W/run" --leader-elect \
		--metrics-bind-address 127.0.0.1:9390 >>"$W/vmpoold.log" 2>&1 &
	VMPOOLD=$!
}
# stop: vmpoold and its stages exit (callgrind writes each process's profile then)
stop() { kill -TERM "$VMPOOLD"; wait "$VMPOOLD"; VMPOOLD=''; }
# wait_pool NS READY: until the example pool in NS has READY ready replicas
wait_pool() {
	local line
	for _ in $(seq 1 600); do
		line=$(kubectl -n "$1" get vmpool vm-pool-cirros -o jsonpath='{.status.readyReplicas}/{.status.replicas}' 2>/dev/null)
		[ "$line" = "$2/$2" ] && return 0
		kill -0 "$VMPOOLD" 2>/dev/null || die "vmpoold exited: $W/vmpoold.log"
		sleep 0.5
	done
	die "the pool in $1 never had $2 ready ($line): $W/vmpoold.log"
}
scrape() { local p; for p in 9390 9391 9392 9393; do curl -s "http://127.0.0.1:$p/metrics" >/dev/null; done; }
# workload NS: the pool's life in namespace NS
workload() {
	kubectl create namespace "$1" >/dev/null || exit 1
	kubectl -n "$1" apply -f examples/vm-pool-cirros.yaml >/dev/null || exit 1
	wait_pool "$1" 3
	scrape
	kubectl -n "$1" scale vmpool vm-pool-cirros --replicas 12 >/dev/null
	wait_pool "$1" 12
	kubectl -n "$1" patch vmpool vm-pool-cirros --type merge \
		-p '{"spec":{"virtualMachineTemplate":{"spec":{"template":{"metadata":{"labels":{"hot":"1"}}}}}}}' >/dev/null
	sleep 5
	wait_pool "$1" 12
	pkill -f "^[^ ]*(valgrind.* )?$W/bin/vmpool-planner "
	sleep 3
	kubectl -n "$1" scale vmpool vm-pool-cirros --replicas 2 >/dev/null
	wait_pool "$1" 2
	scrape
	kubectl -n "$1" get events >/dev/null
	kubectl -n "$1" delete vmpool vm-pool-cirros --wait=false >/dev/null
	sleep 3
	scrape
}

if [ "$MEASURE" = 1 ]; then
	start
	workload hot-measure
	for p in $(pgrep -f "^$W/bin/"); do
		awk -v name="$(cat "/proc/$p/comm")" -v exe="$W/bin/vmpoold" '/^[0-9a-f]+-/ { m = ($6 == exe) ? $2 : "" }
			/^Rss:/ && m != "" { r[m] += $2; t += $2 }
			END { printf "hot-order: %-16s %5d kB of the file:", name, t; for (k in r) printf " %s %d", k, r[k]; print "" }' "/proc/$p/smaps"
	done
	exit 0
fi

start valgrind --tool=callgrind --trace-children=yes -q --callgrind-out-file="$W/cg/%p"
workload hot-callgrind
stop

: >"$W/pages"
if [ "$(id -u)" = 0 ]; then
	src=$(df --output=source "$W" | tail -1)
	q=/sys/class/block/$(basename "$src")
	[ -e "$q/queue/read_ahead_kb" ] || q=$(readlink -f "$q/..")
	if [ -w "$q/queue/read_ahead_kb" ]; then
		RA=$q/queue/read_ahead_kb
		ra0=$(cat "$RA")
		echo 0 >"$RA"
		sync
		echo 1 >/proc/sys/vm/drop_caches
		start
		workload hot-native
		stop
		echo "$ra0" >"$RA"
		RA=''
		python3 - "$W/bin/vmpoold" >"$W/pages" <<'PY' || die "mincore failed"
# the file's pages in the page cache, one page number a line (mincore of a new mapping)
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
page = os.sysconf("SC_PAGE_SIZE")
size = os.path.getsize(sys.argv[1])
fd = os.open(sys.argv[1], os.O_RDONLY)
addr = libc.mmap(None, ctypes.c_size_t(size), 1, 2, fd, ctypes.c_long(0))
n = (size + page - 1) // page
vec = (ctypes.c_ubyte * n)()
if libc.mincore(ctypes.c_void_p(addr), ctypes.c_size_t(size), vec) != 0:
    sys.exit(1)
print("\n".join(str(i) for i in range(n) if vec[i] & 1))
PY
	else
		echo "hot-order: cannot set the read-ahead of $src (build/ on tmpfs?): no native run" >&2
	fi
else
	echo "hot-order: not root: no native run (what only runs outside valgrind is not listed)" >&2
fi

python3 - "$OUT" "$W/bin/vmpoold" "$W/nm" "$W/pages" "$W"/cg/* <<'PY'
import os, re, subprocess, sys
out, exe, nmfile, pagefile, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
ran = {}  # function name -> the programs that ran it (callgrind)
for path in files:
    prog, names = None, {}
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("cmd:"):
                prog = os.path.basename(line.split()[1])
            m = re.match(r"c?fn=\((\d+)\)(?: (.+))?$", line.rstrip("\n"))
            if m and m.group(2):
                names[m.group(1)] = re.sub(r"'\d+$", "", m.group(2))
    for name in names.values():
        if not name.startswith("0x"):
            ran.setdefault(name, set()).add(prog)
progs = sorted({p for s in ran.values() for p in s})
if len(progs) < 5:
    sys.exit(f"hot-order: profiles of {progs} only; five programs expected")
# the programs that run least first: what vmpoold runs, then of the rest what the planner
# runs, then the HTTP stages' own, each part by how many programs share a function, so that
# a program's functions lie in few runs of the file
least = sorted(progs, key=lambda p: (sum(1 for s in ran.values() if p in s), p))
order = [n for n, _ in sorted(ran.items(), key=lambda kv: (
    tuple(p not in kv[1] for p in least), -len(kv[1]), kv[0]))]
# the native run: functions on touched pages of the text that callgrind did not name
segs = []
for line in subprocess.run(["readelf", "-lW", exe], capture_output=True, text=True).stdout.splitlines():
    f = line.split()
    if f and f[0] == "LOAD" and "E" in f[6:-1]:
        segs.append((int(f[2], 16), int(f[1], 16), int(f[4], 16)))
page = os.sysconf("SC_PAGE_SIZE")
touched = {int(x) for x in open(pagefile).read().split()}
funcs = []  # (address, name, its text pages)
for line in open(nmfile):
    f = line.split()
    if len(f) != 4 or f[2] not in "tTwW":
        continue
    a, sz = int(f[0], 16), max(int(f[1], 16), 1)
    for v, o, s in segs:
        if v <= a < v + s:
            funcs.append((a, f[3], range((o + a - v) // page, (o + a + sz - 1 - v) // page + 1)))
# a touched page with a function callgrind named is explained by it; on one without, any of
# its functions may be what ran
named = {p for _, n, pages in funcs if n in ran for p in pages}
extra = sorted((a, n) for a, n, pages in funcs
               if n not in ran and any(p in touched and p not in named for p in pages))
seen = set(order)
with open(out, "w") as o:
    o.write("# generated by scripts/hot-order.sh: the functions vmpoold's five programs ran (those\n"
            "# most of them share first), then the others on pages they touched natively (lld\n"
            "# --symbol-ordering-file; DESIGN.md, \"Hot code first\")\n")
    for name in order:
        o.write(name + "\n")
    for _, name in sorted(extra):
        if name not in seen:
            seen.add(name)
            o.write(name + "\n")
print(f"hot-order: {len(order)} functions run by {' '.join(progs)}; {len(seen) - len(order)} more on "
      f"the pages touched natively that hold none of those ({len(touched)} pages of the file touched) -> {out}",
      file=sys.stderr)
PY

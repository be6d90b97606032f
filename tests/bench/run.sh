#!/usr/bin/env bash
# tests/bench/run.sh: the benchmarks `make bench` runs. Every figure is printed as
# "bench <name>: <figure> <unit>" from a measurement taken in this run; a summary follows.
#
#   bash tests/bench/run.sh [offline] [cluster]     default: both
#
# offline  (no cluster; tests/bench/bench_offline.c, built as build/rel/tests/bench/bench_offline)
#          codec throughput on a ~1 KB VirtualMachine frame; vmpool-planner replaying a
#          synthetic watcher recording of BENCH_POOLS pools x BENCH_VMS VMs (default
#          1000 x 10, one VM missing per pool), with one namespace per pool and with every
#          pool in one namespace: wall time, actions printed, peak RSS, CPU.
# cluster  (tests/bench/bench_cluster.sh) vmpoold + vmpool-sim against its own local control
#          plane (scripts/test-cluster.sh on port 6643, /tmp/vmpoold-bench-$UID): the raw
#          create/delete limits of VMs (wrk) and vmpoold's 0 -> 500 -> 0 against them, writes
#          per VM and ratios; then one pool 0 -> 500 -> 0 with the simulator, API writes from
#          the audit log, idle cost, per-stage RSS and CPU.
# Logs and every "bench" line (results.txt) are kept in build/bench/.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
BIN=${BIN:-bin}
POOLS=${BENCH_POOLS:-1000}
VMS=${BENCH_VMS:-10}
RUNS=${BENCH_RUNS:-3}
OUTDIR=$ROOT/build/bench
RESULTS=$OUTDIR/results.txt
export BIN

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(offline cluster)
mkdir -p "$OUTDIR"
: >"$RESULTS"
failed=()

# run NAME CMD...: show the output, keep the "bench" lines
run() {
	local name=$1 rc
	shift
	echo "== $name"
	"$@" 2>&1 | tee "$OUTDIR/$name.log"
	rc=${PIPESTATUS[0]}
	grep '^bench ' "$OUTDIR/$name.log" >>"$RESULTS"
	[ "$rc" -eq 0 ] || { failed+=("$name (exit $rc)"); echo "== $name FAILED (exit $rc)"; }
}

offline() {
	local b=build/rel/tests/bench/bench_offline
	make --no-print-directory "$BIN/vmpool-planner" "$b" >/dev/null || { failed+=("build"); return; }
	run codec "$b" codec 2
	run planner_ns_each "$b" planner "$BIN/vmpool-planner" "$POOLS" "$VMS" each "$RUNS"
	run planner_ns_one "$b" planner "$BIN/vmpool-planner" "$POOLS" "$VMS" one "$RUNS"
}

cluster() {
	run cluster bash tests/bench/bench_cluster.sh
}

rm -f "$OUTDIR"/*.log
start=$SECONDS
for p in "${parts[@]}"; do
	case $p in
	offline) offline ;;
	cluster) cluster ;;
	*) echo "usage: $0 [offline] [cluster]" >&2; exit 2 ;;
	esac
done

# the summary: selected figures, exactly as measured above
pick() { # NAME LABEL
	local line
	line=$(grep -m1 -E "^bench $1: " "$RESULTS") || return 0
	printf '  %-46s %s\n' "$2" "${line#*: }"
}
pname() { echo "planner_${POOLS}x${VMS}_$1"; }
echo
echo "==== benchmark summary ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $(uname -m), $((SECONDS - start)) s) ===="
pick codec_frame_size "codec: OBJ_SET frame of a VM"
pick codec_pack "codec: pack"
pick codec_unpack "codec: unpack"
pick codec_decoded_heap "codec: heap of a decoded VM"
for m in nsEach ns1; do
	n=$(pname "$m")
	pick "${n}_input" "planner replay ($m): input"
	pick "${n}_wall" "planner replay ($m): wall"
	pick "${n}_actions" "planner replay ($m): actions printed"
	pick "${n}_maxrss" "planner replay ($m): peak RSS"
done
pick cluster_config "cluster: setup"
pick raw_create_rate "limits: raw VM creates (wrk)"
pick raw_delete_rate "limits: raw VM deletes (wrk)"
pick limits_up_seconds "limits: vmpoold 0 -> N, status.replicas N"
pick limits_up_writes_per_vm "limits: writes per VM, scale-out"
pick limits_up_ratio "limits: scale-out vs raw creates"
pick limits_down_seconds "limits: vmpoold N -> 0, VMs gone"
pick limits_down_writes_per_vm "limits: writes per VM, scale-in"
pick limits_down_ratio "limits: scale-in vs raw deletes"
pick scale_up_replicas_seconds "cluster: scale 0 -> N, until status.replicas N"
pick scale_up_ready_seconds "cluster: scale 0 -> N, until readyReplicas N"
pick scale_up_api_writes "cluster: API writes by vmpoold, scale-up"
pick scale_up_cpu_total "cluster: CPU, scale-up"
pick "idle_[0-9]+s_api_writes" "cluster: API writes by vmpoold, idle ${BENCH_IDLE:-20} s"
pick "idle_[0-9]+s_cpu_total" "cluster: CPU, idle ${BENCH_IDLE:-20} s"
pick scale_down_seconds "cluster: scale N -> 0"
pick scale_down_api_writes "cluster: API writes by vmpoold, scale-down"
pick scale_down_cpu_total "cluster: CPU, scale-down"
for s in vmpoold watcher planner actuator status; do
	pick "run_maxrss_$s" "cluster: peak RSS $s"
done
for s in vmpoold watcher planner actuator status; do
	pick "run_cpu_$s" "cluster: CPU whole run, $s"
done
echo "  (all lines: $RESULTS)"
if [ ${#failed[@]} -gt 0 ]; then
	echo "FAILED: ${failed[*]}"
	exit 1
fi

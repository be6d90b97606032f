#!/usr/bin/env bash
# shellcheck disable=SC2016 # eval strings expand later
# tests/bench/bench_scale.sh: memory and resync at scale (issue 9). On the local control plane
# (its own port and state directory), N pools of M VMs each are created through the API at once
# (8 concurrent kubectl clients), vmpool-sim creating a VMI for each VM and marking it ready.
# Prints the time until every pool reports readyReplicas M, each process's peak RSS (VmHWM,
# or its highest Rss sampled every second when that is higher) and the total, what the five
# hold together with each shared page counted once (sampled every
# second, as root: tests/bench/memset.py), then kills the planner with SIGKILL and prints the
# time from the new planner's start to its complete snapshot from the watcher ("watcher
# snapshot complete" in its log) and the watcher's peak RSS after sending that snapshot.
#
#   bash tests/bench/bench_scale.sh          (make bench-scale)
# Environment: BENCH_POOLS (default 1000), BENCH_VMS (default 10), BENCH_QPS / BENCH_BURST
# (vmpoold's and the simulator's --kube-api-qps / --kube-api-burst, default 500 / 1000),
# BENCH_TIMEOUT (seconds for the scale-out, default 900), BIN (default bin), BENCH_KEEP=1 keeps
# the cluster and the run directory, BENCH_METRICS=HOST:PORT gives the stages metrics endpoints
# (PORT to PORT+3) and prints the actuator's and vmpool-status's Event counters once every pool
# is ready, BENCH_HOLD=FILE holds the run while FILE exists once every pool is ready and the
# Events are written (to look into the stages with gdb). Prints "bench <name>: <figure> <unit>"
# lines; exits non-zero when a phase times out or a count is wrong.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
SHARED=${SHARED:-$ROOT/../shared}
BIN=${BIN:-bin}
N=${BENCH_POOLS:-1000}
M=${BENCH_VMS:-10}
QPS=${BENCH_QPS:-500}
BURST=${BENCH_BURST:-1000}
TIMEOUT=${BENCH_TIMEOUT:-900}
NS=scale
export VMPOOLD_CLUSTER_DIR=${VMPOOLD_CLUSTER_DIR:-/tmp/vmpoold-bench-scale-$(id -u)}
export VMPOOLD_CLUSTER_PORT=${VMPOOLD_CLUSTER_PORT:-6653}
export KUBECONFIG=$VMPOOLD_CLUSTER_DIR/kubeconfig
API=https://127.0.0.1:$VMPOOLD_CLUSTER_PORT
RUN=$(mktemp -d "${TMPDIR:-/tmp}/vmpoold-bench-scale.XXXXXX")
BTIME=$(awk '/^btime/ { print $2 }' /proc/stat)
STAGES=(vmpool-watcher vmpool-planner vmpool-actuator vmpool-status)
VMPOOLD_PID="" SIM_PID="" MEM_PID=""
METRICS=${BENCH_METRICS:-}
MFLAG=()
[ -z "$METRICS" ] || MFLAG=(--metrics-bind-address "$METRICS")

# shellcheck source=tests/bench/lib.sh
. tests/bench/lib.sh
API_TIMEOUT=30
log() { printf 'bench_scale: %s\n' "$*" >&2; }
out() { printf 'bench %s\n' "$*"; }

for t in jq curl kubectl; do
	command -v "$t" >/dev/null || { log "$t is missing (scripts/install-deps.sh)"; exit 1; }
done
for p in vmpoold vmpool-sim "${STAGES[@]}"; do
	[ -x "$BIN/$p" ] || { log "$BIN/$p is missing: run make"; exit 1; }
done

cleanup() {
	[ -z "$MEM_PID" ] || kill "$MEM_PID" 2>/dev/null
	stop_pid "$VMPOOLD_PID"
	stop_pid "$SIM_PID"
	cluster_cleanup "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# start time of a process in seconds since the epoch (clock-tick resolution)
pid_start() { sed 's/^.*) //' "/proc/$1/stat" | awk -v hz="$HZ" -v bt="$BTIME" '{ printf "%.2f", bt + $20 / hz }'; }

pools_ready() { # how many pools report readyReplicas M
	api "/apis/pool.kubevirt.io/v1beta1/namespaces/$NS/virtualmachinepools" |
		jq --argjson m "$M" '[.items[] | select((.status.readyReplicas // 0) == $m and (.status.replicas // 0) == $m)] | length'
}
all_ready() { local r; r=$(pools_ready); [ "${r:-0}" = "$N" ]; }
vm_count() { # VMs in the namespace (paged, names only)
	kubectl -n "$NS" get vm -o name --chunk-size=2000 2>/dev/null | wc -l
}

pools_yaml() { # FIRST LAST: the pools in that range, the example template, M replicas
	local i
	for ((i = $1; i <= $2; i++)); do
		sed -e "s/vm-pool-cirros/scale-$i/g" -e "s/replicas: 3/replicas: $M/" examples/vm-pool-cirros.yaml
		echo ---
	done
}

# ---- setup ----
log "starting the control plane in $VMPOOLD_CLUSTER_DIR (port $VMPOOLD_CLUSTER_PORT)"
bash scripts/test-cluster.sh down >/dev/null 2>&1
bash scripts/test-cluster.sh up >"$RUN/cluster.log" 2>&1 || { cat "$RUN/cluster.log" >&2; exit 1; }
kubectl create -f "$SHARED/crds/kubevirt-crds.yaml" >/dev/null || exit 1
kubectl wait --for condition=established --timeout=60s crd/virtualmachinepools.pool.kubevirt.io \
	crd/virtualmachines.kubevirt.io >/dev/null || exit 1
kubectl create namespace "$NS" >/dev/null || exit 1
poll_until 30 eval 'kubectl -n "$NS" get vmpool >/dev/null 2>&1' || { log "vmpool resource not served"; exit 1; }

"$BIN/vmpool-sim" --kubeconfig "$KUBECONFIG" --namespace "$NS" --ready-delay 0 \
	--kube-api-qps "$QPS" --kube-api-burst "$BURST" >"$RUN/sim.log" 2>&1 &
SIM_PID=$!
"$BIN/vmpoold" --kubeconfig "$KUBECONFIG" --namespace "$NS" --run-dir "$RUN" \
	--kube-api-qps "$QPS" --kube-api-burst "$BURST" "${MFLAG[@]}" >"$RUN/vmpoold.log" 2>&1 &
VMPOOLD_PID=$!
poll_until 30 eval '[ "$(pgrep -P "$VMPOOLD_PID" | wc -l)" -ge 4 ]' ||
	{ log "vmpoold did not start 4 stages"; tail -20 "$RUN/vmpoold.log" >&2; exit 1; }
declare -A PID
for s in "${STAGES[@]}"; do PID[$s]=$(pid_of "$s"); [ -n "${PID[$s]}" ] || { log "no $s"; exit 1; }; done
PID[vmpoold]=$VMPOOLD_PID
out "scale_config: $N pools x $M VMs (example template) created by 8 concurrent kubectl clients; vmpoold and vmpool-sim with --kube-api-qps $QPS --kube-api-burst $BURST, sim --ready-delay 0; $(nproc) CPUs, load average at start $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- the processes' memory together, sampled every second until the peak lines ----
# VmHWM counts the pages of the programs and shared libraries (libc, libevent; in each HTTP
# stage the static libcurl and OpenSSL, about 3-4 MB) once per process; tests/bench/memset.py
# counts every physical page of the five once (what the memory cgroup of a pod running them
# is charged for them), from /proc/PID/pagemap, which needs root: without it these lines are
# left out
mem_sample() { # "DISTINCT_KB ANON_KB FILE_KB" of vmpoold and the four stages now
	local s pids=()
	for s in vmpoold "${STAGES[@]}"; do pids+=("${PID[$s]}"); done
	python3 tests/bench/memset.py "${pids[@]}"
}
# and each process's Rss from its page tables (smaps_rollup), whose highest sample is
# printed beside VmHWM when it is higher: the kernel's RSS counters, which VmHWM comes from,
# are per-CPU and approximate, and a peak that malloc_trim's madvise gives back between two
# updates of the high-water mark is not in it (issue 9: 0.5 MB more in a 3-second sampler
# than VmHWM for the actuator once)
rss_sample() { # "NAME RSS_KB" of vmpoold and the four stages now
	local s
	for s in vmpoold "${STAGES[@]}"; do
		awk -v s="$s" '/^Rss:/ { print s, $2 }' "/proc/${PID[$s]}/smaps_rollup" 2>/dev/null
	done
}
if command -v python3 >/dev/null && mem_sample >/dev/null; then
	(
		max=0
		declare -A rmax
		while :; do
			read -r d a f < <(mem_sample) || break
			[ "$d" -gt "$max" ] && max=$d && echo "$d $a $f" >"$RUN/memmax.tmp" &&
				mv "$RUN/memmax.tmp" "$RUN/memmax"
			while read -r s k; do
				[ "$k" -gt "${rmax[$s]:-0}" ] && rmax[$s]=$k && echo "$k" >"$RUN/rssmax.$s"
			done < <(rss_sample)
			sleep 1
		done
	) &
	MEM_PID=$!
fi

# ---- scale out: every pool at once ----
per=$(((N + 7) / 8))
t0=$(now)
cpids=()
for ((k = 0; k < 8; k++)); do
	first=$((k * per + 1)) last=$(((k + 1) * per))
	[ "$last" -gt "$N" ] && last=$N
	[ "$first" -le "$last" ] || continue
	pools_yaml "$first" "$last" | kubectl -n "$NS" create -f - >"$RUN/create-$k.log" 2>&1 &
	cpids+=($!)
done
for p in "${cpids[@]}"; do wait "$p" || { log "kubectl create failed: $(tail -3 "$RUN"/create-*.log)"; exit 1; }; done
t1=$(now)
out "scale_pools_created_seconds: $(elapsed "$t0" "$t1") s ($N pools)"
peak_rss() { # the peak RSS of every process (also printed when the scale-out times out)
	local s k total=0
	for s in vmpoold "${STAGES[@]}"; do
		k=$(hwm_kb "${PID[$s]}") r=$(cat "$RUN/rssmax.$s" 2>/dev/null)
		if [ "${r:-0}" -gt "${k:-0}" ]; then
			out "scale_maxrss_${s#vmpool-}: $(mb "$r") MB (the highest Rss sampled every second; VmHWM $(mb "${k:-0}"))"
			k=$r
		else
			out "scale_maxrss_${s#vmpool-}: $(mb "${k:-0}") MB (VmHWM)"
		fi
		total=$((total + ${k:-0}))
	done
	out "scale_maxrss_total: $(mb "$total") MB (vmpoold + 4 stages)"
	local d a f
	[ -s "$RUN/memmax" ] && read -r d a f <"$RUN/memmax" &&
		out "scale_distinct_peak_total: $(mb "$d") MB ($(mb "$a") anonymous, $(mb "$f") file-backed: the 5 processes' resident pages, each counted once, at the largest of the samples taken every second; tests/bench/memset.py)"
}
if ! POLL_INTERVAL=1 poll_until "$TIMEOUT" all_ready; then
	log "only $(pools_ready) of $N pools ready after ${TIMEOUT}s"
	peak_rss
	exit 1
fi
t2=$(now)
out "scale_all_ready_seconds: $(elapsed "$t0" "$t2") s (every pool readyReplicas $M, from the first create)"
vms=$(vm_count)
out "scale_vms: $vms VMs (want $((N * M)))"
[ "$vms" = $((N * M)) ] || { log "wrong VM count"; exit 1; }

# ---- peak RSS after convergence ----
peak_rss
events_line() { # STAGE OFFSET WHEN: its Event counters (vmpool_events_dropped_total by reason)
	local host=${METRICS%:*} port=$((${METRICS##*:} + $2)) m
	m=$(curl -s --max-time 10 "http://$host:$port/metrics" |
		awk -F'[{}" ]+' '/^vmpool_events_dropped_total\{/ { printf "%s %s, ", $3, $4 }')
	out "scale_events_${1}: dropped ${m%, } (vmpool_events_dropped_total by reason, $3)"
}
events_now() { kubectl -n "$NS" get events -o name --chunk-size=2000 2>/dev/null | wc -l; }
if [ -n "$METRICS" ]; then
	events_line actuator 2 "when every pool is ready"
	events_line status 3 "when every pool is ready"
	# the Events still waiting go now: until their number stays the same for 5 s (120 s at most)
	ev_prev=-1 ev_n=$(events_now)
	while [ "$ev_n" != "$ev_prev" ] && [ "$(elapsed "$t2" "$(now)" | cut -d. -f1)" -lt 120 ]; do
		sleep 5
		ev_prev=$ev_n ev_n=$(events_now)
	done
	out "scale_events_written: $ev_n Events in the namespace $(elapsed "$t2" "$(now)") s after every pool was ready (none new in the last 5 s)"
	events_line actuator 2 "then"
fi
kill "$MEM_PID" 2>/dev/null
MEM_PID=""
if [ -n "${BENCH_HOLD:-}" ] && [ -e "$BENCH_HOLD" ]; then
	log "holding while $BENCH_HOLD exists (vmpoold pid $VMPOOLD_PID)"
	while [ -e "$BENCH_HOLD" ]; do sleep 1; done
fi

# ---- a killed planner: restart to complete snapshot ----
off=$(stat -c %s "$RUN/vmpoold.log")
old=${PID[vmpool-planner]}
kill -KILL "$old"
POLL_INTERVAL=0.02 poll_until 30 eval 'p=$(pid_of vmpool-planner) && [ -n "$p" ] && [ "$p" != "$old" ]' ||
	{ log "the planner was not restarted"; exit 1; }
new=$(pid_of vmpool-planner)
started=$(pid_start "$new")
snap_seen() { tail -c +$((off + 1)) "$RUN/vmpoold.log" | grep -q 'watcher snapshot complete'; }
POLL_INTERVAL=0.02 poll_until 60 snap_seen || { log "the new planner never completed its snapshot"; exit 1; }
t3=$(now)
out "scale_planner_resync_seconds: $(elapsed "$started" "$t3") s (new planner start to its complete snapshot, $N pools / $((N * M)) VMs; 10 ms clock-tick resolution)"
# the same from the log's own clock: the supervisor's spawn of the planner to the planner's
# line (both klog times, UTC), for machines where /proc's start times and btime disagree
klog_secs() { awk '{ split($2, t, ":"); printf "%.6f", t[1] * 3600 + t[2] * 60 + t[3] }'; }
since_kill() { tail -c +$((off + 1)) "$RUN/vmpoold.log"; }
s0=$(since_kill | grep '"Stage spawned"' | grep 'stage="planner"' | head -1 | klog_secs)
s1=$(since_kill | grep 'watcher snapshot complete' | head -1 | klog_secs)
out "scale_planner_resync_log_seconds: $(awk -v a="$s0" -v b="$s1" 'BEGIN { d = b - a; if (d < 0) d += 86400; printf "%.3f", d }') s (the supervisor's spawn of the new planner to its complete snapshot, klog times)"
k=$(hwm_kb "$new")
out "scale_maxrss_planner_after_resync: $(mb "${k:-0}") MB (VmHWM of the restarted planner)"
k=$(hwm_kb "${PID[vmpool-watcher]}")
out "scale_maxrss_watcher_after_resync: $(mb "${k:-0}") MB (VmHWM of the watcher, which sent the new planner its snapshot)"
grep -E 'AddressSanitizer|runtime error:' "$RUN"/*.log >&2 && exit 1
exit 0

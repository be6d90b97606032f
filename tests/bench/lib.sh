# shellcheck shell=bash
# tests/bench/lib.sh: what the cluster benchmarks share (sourced by bench_cluster.sh and
# bench_scale.sh): the control plane's API by curl, clocks, polling, the stages' pids and
# their memory and CPU. Needs VMPOOLD_CLUSTER_DIR, API and VMPOOLD_PID set by the caller.

HZ=$(getconf CLK_TCK)

stop_pid() { # PID: SIGTERM, wait up to 15 s, then SIGKILL
	local pid=$1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# cluster_cleanup RUN_DIR: take the control plane down and remove RUN_DIR, or keep both
# with BENCH_KEEP=1
cluster_cleanup() {
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		log "kept: cluster $VMPOOLD_CLUSTER_DIR, run dir $1"
	else
		bash scripts/test-cluster.sh down >/dev/null 2>&1
		rm -rf "$1"
	fi
}

api() { # PATH: GET through curl (cheaper than kubectl for polling); API_TIMEOUT seconds
	curl -s --max-time "${API_TIMEOUT:-5}" --cacert "$VMPOOLD_CLUSTER_DIR/ca.crt" \
		-H "Authorization: Bearer $(cat "$VMPOOLD_CLUSTER_DIR/token")" "$API$1"
}

now() { printf '%s' "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# poll_until SECONDS CMD...: run CMD every POLL_INTERVAL (0.2) s until it succeeds; 1 on timeout
poll_until() {
	local limit=$1 end
	shift
	end=$((SECONDS + limit))
	until "$@"; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep "${POLL_INTERVAL:-0.2}"
	done
}

# the stages vmpoold started: "name pid" lines
stage_pids() {
	local pid comm
	for pid in $(pgrep -P "$VMPOOLD_PID"); do
		comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
		echo "$comm $pid"
	done
}
pid_of() { stage_pids | awk -v n="$1" '$1 == n { print $2; exit }'; }
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
ticks_s() { awk -v t="$1" -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }'; }

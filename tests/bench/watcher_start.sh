#!/usr/bin/env bash
# tests/bench/watcher_start.sh: the peak RSS of a watcher started against objects that exist
# (its first lists), which bench_scale.sh does not see (its watcher starts before the pools).
# Run after `BENCH_KEEP=1 bash tests/bench/bench_scale.sh`, with the same VMPOOLD_CLUSTER_DIR:
#
#   VMPOOLD_CLUSTER_DIR=/tmp/cl-x bash tests/bench/watcher_start.sh [WATCHER...]
#
# WATCHER defaults to bin/vmpool-watcher; several are run in turn. Prints per binary
# "bench watcher_start_maxrss: <MB> MB (VmHWM once every resource is listed; <binary>)";
# exits non-zero when a watcher is not ready within 60 s.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
KC=${VMPOOLD_CLUSTER_DIR:?set VMPOOLD_CLUSTER_DIR to the kept cluster}/kubeconfig
NS=${BENCH_NS:-scale}
[ -r "$KC" ] || { echo "watcher_start: no $KC (BENCH_KEEP=1 bench_scale.sh first)" >&2; exit 1; }
[ $# -gt 0 ] || set -- bin/vmpool-watcher
rc=0
for w in "$@"; do
	d=$(mktemp -d "${TMPDIR:-/tmp}/watcher-start.XXXXXX")
	"$w" --run-dir "$d/run" --kubeconfig "$KC" --namespace "$NS" >"$d/log" 2>&1 &
	pid=$!
	for ((i = 0; i < 600; i++)); do
		grep -qs 'every resource listed' "$d/log" && break
		sleep 0.1
	done
	if grep -q 'every resource listed' "$d/log"; then
		k=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
		awk -v k="$k" -v w="$w" 'BEGIN { printf "bench watcher_start_maxrss: %.1f MB (VmHWM once every resource is listed; %s)\n", k / 1024, w }'
		grep -o '[a-z]*: listed [0-9]* objects' "$d/log" | sed 's/^/  /' >&2
	else
		echo "watcher_start: $w not ready after 60 s" >&2
		tail -5 "$d/log" >&2
		rc=1
	fi
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rm -rf "$d"
done
exit $rc

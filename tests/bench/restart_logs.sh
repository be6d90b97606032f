#!/usr/bin/env bash
# Log lines a planner restart costs at the default verbosity (issue 11 item 2: one line per
# action, not one per pool).
#   bash tests/bench/restart_logs.sh [POOLS] [BINDIR]     defaults: 1000, bin
# Needs a cluster with the pool CRD in $KUBECONFIG (e.g. after
# E2E_KEEP=1 tests/e2e/run.sh doc_example: export KUBECONFIG=$VMPOOLD_CLUSTER_DIR/kubeconfig).
# POOLS pools of 0 replicas in a fresh namespace; BINDIR/vmpoold runs until each has a
# status, then its planner is killed (-9) and restarted by vmpoold; the lines the new
# planner logs before it is idle again (nothing for 3 s) are counted, and those saying
# "sync ok" (either spelling) among them. Prints "bench restart_logs ..." lines.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/e2e/lib.sh"
POOLS=${1:-1000}
BINDIR=$(cd "${2:-$ROOT/bin}" && pwd)
NS=bench-restart-logs-$$
T=$(mktemp -d /tmp/restart_logs.XXXXXX)
VMPOOLD_PID=""
cleanup() {
	[ -n "$VMPOOLD_PID" ] && kill -TERM "$VMPOOLD_PID" 2>/dev/null && wait "$VMPOOLD_PID" 2>/dev/null
	kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT
kubectl create namespace "$NS" >/dev/null || exit 1
for i in $(seq 0 $((POOLS - 1))); do echo ---; make_pool "p$i" 0; done | kc apply -f - >/dev/null || exit 1
mkdir -m 700 "$T/run"
"$BINDIR/vmpoold" --kubeconfig "$KUBECONFIG" --namespace "$NS" --run-dir "$T/run" >"$T/log" 2>&1 &
VMPOOLD_PID=$!
with_status() { kc get vmpool -o json | jq '[.items[] | select(.status.labelSelector != null)] | length'; }
wait_eq 300 "$POOLS" with_status || { echo "pools without a status: $(with_status) of $POOLS" >&2; exit 1; }
old=$(pgrep -f "vmpool-planner .*--run-dir $T/run" | head -1)
[ -n "$old" ] || { echo "no planner" >&2; exit 1; }
start=$(wc -l <"$T/log")
kill -KILL "$old"
new_planner() { p=$(pgrep -f "vmpool-planner .*--run-dir $T/run" | head -1); [ -n "$p" ] && [ "$p" != "$old" ]; }
wait_until 30 new_planner || { echo "planner not restarted" >&2; exit 1; }
# idle: the log has not grown for 3 s
prev=-1
while [ "$(wc -l <"$T/log")" != "$prev" ]; do prev=$(wc -l <"$T/log"); sleep 3; done
# the planner's lines (old format "... vmpool-planner info ...", new logger="vmpool-planner")
tail -n +$((start + 1)) "$T/log" | grep -E 'logger="vmpool-planner"| vmpool-planner (info|warn|debug)[: ]' >"$T/new"
lines=$(wc -l <"$T/new")
sync=$(grep -ciE 'sync ok' "$T/new")
echo "bench restart_logs_${POOLS}_pools: $lines planner log lines after a restart, $sync of them sync ok ($BINDIR)"

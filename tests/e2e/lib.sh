# tests/e2e/lib.sh: helpers for the end-to-end cases. Each case runs in its own namespace
# with its own vmpoold and VM simulator, against the real kube-apiserver.
# shellcheck shell=bash

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
SHARED=${SHARED:-$ROOT/../shared}
BIN=${BIN:-$ROOT/bin}
OUT=${OUT:-$ROOT/tests/e2e/out}
FINALIZER=pool.kubevirt.io/finalizer

kc() { kubectl -n "$NS" "$@"; }

say() { printf '  %s\n' "$*"; }
# fail MESSAGE: report and return 1 (use as `cond || fail "..."`, cases stop on first failure)
fail() { printf '  FAIL: %s\n' "$*"; return 1; }

# wait_until SECONDS CMD...: poll CMD every 0.3 s until it succeeds
wait_until() {
	local limit=$1; shift
	local end=$((SECONDS + limit))
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.3
	done
}

# wait_eq SECONDS WANT CMD...: poll until CMD's output equals WANT (CMD runs on every poll;
# never pass "$(...)" to wait_until, it would be expanded once, at the call)
wait_eq() {
	local limit=$1 want=$2; shift 2
	local end=$((SECONDS + limit))
	until [ "$("$@" 2>/dev/null)" == "$want" ]; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.3
	done
}

# wait_ge SECONDS MIN CMD...: poll until CMD prints a number >= MIN
wait_ge() {
	local limit=$1 min=$2 v; shift 2
	local end=$((SECONDS + limit))
	while :; do
		v=$("$@" 2>/dev/null)
		[[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -ge "$min" ] && return 0
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.3
	done
}

# VMs of $NS that still carry any finalizer
vms_finalized() { kc get vm -o json | jq '[.items[] | select(.metadata.finalizers != null)] | length'; }
# pools and VMs of $NS still there or carrying a finalizer (0: the controller is done with them)
ns_unfinished() {
	echo $(($(kc get vmpool -o name 2>/dev/null | wc -l) + $(vms_finalized 2>/dev/null || echo 1)))
}
# strips every finalizer from what is left of kind KIND in all namespaces (a test cluster's
# CRDs can then be deleted even when a stopped controller left objects behind)
strip_finalizers() { # KIND
	kubectl get "$1" -A -o json 2>/dev/null | jq -r '.items[] | select(.metadata.finalizers != null) |
		"\(.metadata.namespace) \(.metadata.name)"' | while read -r ns name; do
		kubectl -n "$ns" patch "$1" "$name" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
	done
}

expect_eq() { # actual expected what
	[ "$1" == "$2" ] || fail "$3: got '$1', want '$2'"
}

vm_names() { kc get vm -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sort -V | tr '\n' ' ' | sed 's/ $//'; }
vm_count() { kc get vm -o name | wc -l; }
vm_uid() { kc get vm "$1" -o jsonpath='{.metadata.uid}'; }
pool_json() { kc get vmpool "$1" -o json; }
pool_status() { kc get vmpool "$1" -o jsonpath="{.status.$2}"; }

# pool_converged POOL N: N VMs, status replicas = readyReplicas = N
pool_converged() {
	local n=$1 p
	p=$2
	[ "$(vm_count)" -eq "$n" ] || return 1
	[ "$(pool_status "$p" replicas)" == "$( [ "$n" -eq 0 ] && echo "" || echo "$n")" ] || return 1
	[ "$(pool_status "$p" readyReplicas)" == "$( [ "$n" -eq 0 ] && echo "" || echo "$n")" ] || return 1
}
converged() { pool_converged "$2" "$1"; } # converged POOL N

# a pool manifest: make_pool NAME REPLICAS|none [SELECTOR_LABEL_VALUE]
make_pool() {
	local name=$1 replicas=$2 sel=${3:-$1} rep=""
	[ "$replicas" != none ] && rep="  replicas: $replicas"
	cat <<YAML
apiVersion: pool.kubevirt.io/v1alpha1
kind: VirtualMachinePool
metadata:
  name: $name
spec:
$rep
  selector:
    matchLabels:
      kubevirt.io/vmpool: $sel
  virtualMachineTemplate:
    metadata:
      labels:
        kubevirt.io/vmpool: $name
    spec:
      runStrategy: Always
      template:
        metadata:
          labels:
            kubevirt.io/vmpool: $name
        spec:
          domain:
            devices:
              disks:
              - disk:
                  bus: virtio
                name: containerdisk
            resources:
              requests:
                memory: 128Mi
          terminationGracePeriodSeconds: 0
          volumes:
          - containerDisk:
              image: kubevirt/cirros-container-disk-demo:latest
            name: containerdisk
YAML
}

# start the controller and the simulator for $NS; logs in $CASE_OUT. In the in-cluster phase
# (INCLUSTER=1, tests/e2e/incluster.sh) the controller is the Deployment's four containers.
# vmpoold uses $VMPOOLD_KUBECONFIG when set (the fault cases: through vmpool-faultproxy); the
# simulator talks to the API server directly, or through $SIM_KUBECONFIG when set (the case
# fault_sim_informer: through vmpool-faultproxy).
start_controller() {
	RUN_DIR=$CASE_OUT/run
	mkdir -p -m 700 "$RUN_DIR" # the stages refuse a run directory others may use
	"$BIN/vmpool-sim" --kubeconfig "${SIM_KUBECONFIG:-$KUBECONFIG}" --namespace "$NS" --ready-delay 0.3 \
		${SIM_ARGS:-} >"$CASE_OUT/sim.log" 2>&1 &
	SIM_PID=$!
	if [ "${INCLUSTER:-0}" = 1 ]; then
		incluster_start
		return
	fi
	# $VMPOOLD_KUBECONFIG_LIST: vmpoold gets KUBECONFIG=that list and no --kubeconfig
	local kcarg=(--kubeconfig "${VMPOOLD_KUBECONFIG:-$KUBECONFIG}")
	[ -n "${VMPOOLD_KUBECONFIG_LIST:-}" ] && kcarg=()
	KUBECONFIG=${VMPOOLD_KUBECONFIG_LIST:-$KUBECONFIG} "$BIN/vmpoold" "${kcarg[@]}" --namespace "$NS" --run-dir "$RUN_DIR" \
		${VMPOOLD_ARGS:-} >"$CASE_OUT/vmpoold.log" 2>&1 &
	VMPOOLD_PID=$!
}

# the controller runs: its planner stage (or, in-cluster, every container ready)
controller_up() {
	if [ "${INCLUSTER:-0}" = 1 ]; then
		incluster_ready
	else
		pgrep -f "vmpool-planner .*--run-dir $RUN_DIR" >/dev/null
	fi
}

stop_controller() {
	local rc=0
	if [ "${INCLUSTER:-0}" = 1 ]; then
		incluster_stop || rc=1
	elif [ -n "${VMPOOLD_PID:-}" ] && kill -0 "$VMPOOLD_PID" 2>/dev/null; then
		kill -TERM "$VMPOOLD_PID"
		wait "$VMPOOLD_PID" || rc=$?
		[ "$rc" -eq 0 ] || say "vmpoold exited $rc on SIGTERM"
	fi
	[ -n "${SIM_PID:-}" ] && kill -TERM "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null
	# a simulator a case restarted (sim_restart) in its subshell: its pid is in a file
	if [ -f "$CASE_OUT/sim.pid" ]; then
		kill -TERM "$(cat "$CASE_OUT/sim.pid")" 2>/dev/null
		rm -f "$CASE_OUT/sim.pid"
	fi
	VMPOOLD_PID="" SIM_PID=""
	return $rc
}

# pid of a stage started by this case's vmpoold
stage_pid() { pgrep -f "$1 .*--run-dir $RUN_DIR" | head -1; }

# API writes (create/update/patch/delete) the apiserver completed in $NS, from its audit
# log; prints "COUNT" or, with an argument, one "verb resource/subresource name userAgent" line
# per write
api_writes() {
	local audit=$VMPOOLD_CLUSTER_DIR/audit.log
	if [ -n "${1:-}" ]; then
		jq -r --arg ns "$NS" 'select(.stage == "ResponseComplete" and .objectRef.namespace == $ns) |
			"\(.verb) \(.objectRef.resource)/\(.objectRef.subresource // "") \(.objectRef.name // "") \(.userAgent)"' "$audit"
	else
		jq -c --arg ns "$NS" 'select(.stage == "ResponseComplete" and .objectRef.namespace == $ns)' "$audit" | wc -l
	fi
}

event_count() { # REASON [MESSAGE-SUBSTRING]
	kc get events -o json | jq --arg r "$1" --arg m "${2:-}" \
		'[.items[] | select(.reason == $r and (.message | contains($m)))] | length'
}

# --- pool features (issue 3) -----------------------------------------------------------------

REVLABEL=kubevirt.io/vm-pool-revision-name
SIMFAIL=vmpool-sim.kubevirt.io/fail

# mkpool NAME REPLICAS|none [JQ-FILTER]: create the make_pool manifest, edited as JSON by the
# jq filter (e.g. '.spec.paused = true')
mkpool() {
	make_pool "$1" "$2" | yq -c . | jq -c "${3:-.}" | kc create -f - >/dev/null
}

# pool_patch NAME JSON: merge patch of the pool
pool_patch() { kc patch vmpool "$1" --type merge -p "$2" >/dev/null; }

# "name=value" lines of the VMs (or VMIs with KIND=vmi) of pool POOL (by label), value from
# the jq expression EXPR applied to each object: obj_map KIND POOL EXPR
obj_map() {
	kc get "$1" -l "kubevirt.io/vmpool=$2" -o json |
		jq -r "[.items[] | \"\(.metadata.name)=\($3)\"] | sort | join(\" \")"
}
vm_uids() { obj_map vm "$1" '.metadata.uid'; }
vmi_uids() { obj_map vmi "$1" '.metadata.uid'; }
vm_revs() { obj_map vm "$1" '.metadata.labels["'$REVLABEL'"] // ""'; }
vmi_revs() { obj_map vmi "$1" '.metadata.labels["'$REVLABEL'"] // ""'; }
vm_rvs() { obj_map vm "$1" '.metadata.resourceVersion'; }
# names of pool POOL's VMs (by label), sorted, space separated
pool_vm_names() {
	kc get vm -l "kubevirt.io/vmpool=$1" -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' |
		sort -V | tr '\n' ' ' | sed 's/ $//'
}
pool_vm_count() { kc get vm -l "kubevirt.io/vmpool=$1" -o name | wc -l; }

# pconv POOL N: pool POOL has N VMs (by label), status replicas = readyReplicas = N, and
# (when the simulator makes VMIs) N VMIs Running and Ready
pconv() {
	local p=$1 n=$2 want=$2
	[ "$n" -eq 0 ] && want=""
	[ "$(pool_vm_count "$p")" -eq "$n" ] || return 1
	[ "$(pool_status "$p" replicas)" == "$want" ] || return 1
	[ "$(pool_status "$p" readyReplicas)" == "$want" ] || return 1
}

# VMIs of pool POOL that are Running, Ready and not terminating
vmis_ready() {
	kc get vmi -l "kubevirt.io/vmpool=$1" -o json | jq '[.items[] | select(.metadata.deletionTimestamp == null
		and .status.phase == "Running"
		and any(.status.conditions[]?; .type == "Ready" and .status == "True"))] | length'
}

pool_gen() { kc get vmpool "$1" -o jsonpath='{.metadata.generation}'; }
pool_uid() { kc get vmpool "$1" -o jsonpath='{.metadata.uid}'; }
# the value of FIELD (status, reason, message) of the pool's condition TYPE, empty if absent
pool_cond() { kc get vmpool "$1" -o json | jq -r --arg t "$2" --arg f "$3" '[.status.conditions[]? | select(.type == $t) | .[$f]] | first // ""'; }
# ControllerRevision names of the namespace, sorted
rev_names() { kc get controllerrevision -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sort | tr '\n' ' ' | sed 's/ $//'; }
warning_count() { # MESSAGE-SUBSTRING: Warning events whose message contains it
	kc get events -o json | jq --arg m "$1" '[.items[] | select(.type == "Warning" and (.message | contains($m)))] | length'
}
gone() { ! kc get "$@" >/dev/null 2>&1; } # gone KIND NAME

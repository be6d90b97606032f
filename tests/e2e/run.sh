#!/usr/bin/env bash
# End-to-end suite: the whole pipeline (bin/vmpoold and its four stages, bin/vmpool-sim)
# against a real kube-apiserver + kube-controller-manager (scripts/test-cluster.sh).
# Phase 1 uses KubeVirt's real CRD schemas (../shared/crds), phase 2 our own CRD
# (deploy/standalone) with the stand-in VM/VMI CRDs of tests/crds.
#   tests/e2e/run.sh [CASE...]     default: every case
# Environment: E2E_KEEP=1 keeps the cluster running afterwards; with CASEs, PHASE=kubevirt
# (default) runs them with KubeVirt's CRDs, PHASE=own with ours (e.g. name_aliases), PHASE=both
# with both, PHASE=incluster in the in-cluster phase (KubeVirt's CRDs, tests/e2e/incluster.sh).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
. tests/e2e/lib.sh
. tests/e2e/cases.sh
. tests/e2e/cases_pool.sh
. tests/e2e/cases_deploy.sh
. tests/e2e/incluster.sh
. tests/e2e/cases_input.sh
. tests/e2e/cases_fault.sh
. tests/e2e/cases_kubeconfig.sh
. tests/e2e/cases_metrics.sh
. tests/e2e/cases_ops.sh
. tests/e2e/cases_ha.sh

export VMPOOLD_CLUSTER_DIR=${VMPOOLD_CLUSTER_DIR:-/tmp/vmpoold-e2e-$(id -u)}
export VMPOOLD_CLUSTER_PORT=${VMPOOLD_CLUSTER_PORT:-6543}
[ -d "$SHARED/crds" ] || { echo "e2e: $SHARED/crds not found (shared/ must sit beside the repo)" >&2; exit 1; }

PHASE1=(doc_example scale replicas_unset deleted_vm_replaced detach selector_mismatch bad_selector create_fails
	release delete_pool delete_after_selector_change hpa quiet kill_stages bad_kubeconfig api_down manifests
	kubevirt_coexist foreign_controller per_vm_names revisions update_rollout update_label_only update_dvt update_opportunistic update_unmanaged
	scale_in_order scale_in_opportunistic scale_in_unmanaged state_preservation autohealing paused
	finalizer_append delete_foreground delete_orphan delete_background bad_strategies ready_condition
	deep_pool operator_flags conns_bounded
	fault_scale_in fault_outage fault_throttle fault_lost_creates fault_silent_watch
	fault_apiserver_restart fault_crd_404 fault_watch_errors fault_sim_informer events_bounded metrics_scrape
	exec_plugin kubeconfig_list kubeconfig_refused kubeconfig_proxy kubeconfig_client_cert pool_v1alpha1 pool_api_missing
	ha_standby_quiet ha_sigkill ha_sigterm ha_cutoff ha_forbidden ha_shards ha_kill_stages)
PHASE2=(doc_example scale deleted_vm_replaced delete_pool name_aliases per_vm_names update_rollout
	state_preservation autohealing)
# in-cluster (tests/e2e/incluster.sh): the Deployment's containers under deploy/'s RBAC
PHASE3=(doc_example scale delete_pool hpa incluster_forbidden metrics_scrape update_rollout)
if [ $# -gt 0 ]; then
	case ${PHASE:-kubevirt} in
	kubevirt) PHASE1=("$@") PHASE2=() PHASE3=() ;;
	own) PHASE1=() PHASE2=("$@") PHASE3=() ;;
	both) PHASE1=("$@") PHASE2=("$@") PHASE3=() ;;
	incluster) PHASE1=() PHASE2=() PHASE3=("$@") ;;
	*) echo "e2e: PHASE must be kubevirt, own, both or incluster" >&2; exit 2 ;;
	esac
fi

bash scripts/test-cluster.sh down >/dev/null 2>&1
bash scripts/test-cluster.sh up || { echo "e2e: cannot start the test cluster" >&2; exit 1; }
export KUBECONFIG=$VMPOOLD_CLUSTER_DIR/kubeconfig
[ "${E2E_KEEP:-0}" = 1 ] || trap 'bash scripts/test-cluster.sh down >/dev/null 2>&1' EXIT
rm -rf "$OUT"; mkdir -p "$OUT"

pass=0 failed=0 failures=()

discovery_ready() {
	kubectl get --raw /apis/kubevirt.io/v1 | grep -q '"virtualmachines"' &&
		kubectl get --raw /apis/pool.kubevirt.io/v1beta1 | grep -q '"virtualmachinepools"' &&
		kubectl get --raw /apis/cdi.kubevirt.io/v1beta1 | grep -q '"datavolumes"'
}

# KubeVirt's CRDs (or ours) plus the minimal CDI DataVolume CRD, which both phases use
install_crds() { # FILE...
	# a CRD goes only once its objects have: none may wait for a controller that has stopped
	strip_finalizers vmpool
	strip_finalizers vm
	kubectl delete crd virtualmachinepools.pool.kubevirt.io virtualmachines.kubevirt.io \
		virtualmachineinstances.kubevirt.io datavolumes.cdi.kubevirt.io --ignore-not-found --wait=true \
		--timeout=120s >/dev/null 2>&1 || { echo "e2e: the old CRDs did not go" >&2; return 1; }
	local f
	for f in "$@" tests/crds/datavolume-minimal.yaml; do kubectl create -f "$f" >/dev/null || return 1; done
	kubectl wait --for condition=established --timeout=60s crd/virtualmachinepools.pool.kubevirt.io \
		crd/virtualmachines.kubevirt.io crd/virtualmachineinstances.kubevirt.io \
		crd/datavolumes.cdi.kubevirt.io >/dev/null || return 1
	# the garbage collector learns new resources only on its 30 s discovery resync: restart it
	# once discovery serves them
	wait_until 60 discovery_ready || { echo "e2e: CRDs not in discovery" >&2; return 1; }
	bash scripts/test-cluster.sh restart-controller-manager
}

declare -A case_runs=()
run_case() { # PHASE CASE
	local phase=$1 name=$2 n
	NS=e2e-$phase-${name//_/-}
	CASE_OUT=$OUT/$phase-$name
	# a case given more than once (tests/e2e/soak_scale_in.sh) runs in a fresh namespace
	n=$((${case_runs[$phase-$name]:-0} + 1)) case_runs[$phase-$name]=$n
	[ "$n" -gt 1 ] && NS=$NS-$n CASE_OUT=$CASE_OUT-$n
	mkdir -p "$CASE_OUT"
	kubectl create namespace "$NS" >/dev/null
	local args="ARGS_$name"
	VMPOOLD_ARGS=${!args:-}
	local start=$SECONDS rc=0 up=1
	# optional per-case hooks around the controller's life: setup_CASE, teardown_CASE
	if declare -F "setup_$name" >/dev/null; then "setup_$name" >"$CASE_OUT/setup.log" 2>&1 || up=0; fi
	start_controller
	[ "$up" = 1 ] && { wait_until 30 controller_up || up=0; }
	PLANNER0=$(stage_pid vmpool-planner)
	if [ "$up" = 1 ]; then
		( set -u; "case_$name" ) >"$CASE_OUT/case.log" 2>&1 || rc=$?
	else
		{ cat "$CASE_OUT/setup.log" 2>/dev/null; echo "  FAIL: setup or the controller's start failed"; } >"$CASE_OUT/case.log"; rc=1
	fi
	# every fault off (cases_fault.sh), so that the clean-up goes through
	fproxy_reset
	# let the controller clean its pools up before it stops, so the namespace can go
	kubectl -n "$NS" delete vmpool --all --wait=false >/dev/null 2>&1
	# the pools too: the planner removes a pool's own finalizer last
	wait_eq 30 0 ns_unfinished
	stop_controller >>"$CASE_OUT/case.log" 2>&1 || rc=1
	if declare -F "teardown_$name" >/dev/null; then "teardown_$name" >>"$CASE_OUT/case.log" 2>&1 || rc=1; fi
	fproxy_stop
	kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1
	if [ "$rc" -eq 0 ]; then
		pass=$((pass + 1)); printf 'ok   %s/%s (%ds)\n' "$phase" "$name" $((SECONDS - start))
	else
		failed=$((failed + 1)); failures+=("$phase/$name")
		printf 'FAIL %s/%s (%ds)\n' "$phase" "$name" $((SECONDS - start))
		sed 's/^/     /' "$CASE_OUT/case.log" | tail -20
		echo "     --- vmpoold.log (last lines) ---"; tail -15 "$CASE_OUT/vmpoold.log" | sed 's/^/     /'
	fi
	grep -E 'AddressSanitizer|runtime error:' "$CASE_OUT"/*.log >/dev/null 2>&1 &&
		{ echo "     sanitizer report in $CASE_OUT"; }
	return 0
}

if [ ${#PHASE1[@]} -gt 0 ] || [ ${#PHASE3[@]} -gt 0 ]; then
	install_crds "$SHARED/crds/kubevirt-crds.yaml" || { echo "e2e: cannot install KubeVirt CRDs" >&2; exit 1; }
fi
# the C client test of our HTTP layer (common/kube.c) against the real API server
if [ ${#PHASE1[@]} -gt 0 ] && [ -x build/rel/tests/e2e/test_kubeclient ]; then
	if build/rel/tests/e2e/test_kubeclient >"$OUT/kubeclient.log" 2>&1; then
		pass=$((pass + 1)); echo "ok   kubeclient"
	else
		failed=$((failed + 1)); failures+=(kubeclient); echo "FAIL kubeclient"; tail -20 "$OUT/kubeclient.log"
	fi
fi
for c in "${PHASE1[@]}"; do run_case kubevirt "$c"; done
if [ ${#PHASE3[@]} -gt 0 ]; then
	if incluster_setup >"$OUT/incluster-setup.log" 2>&1 && incluster_ports_free >>"$OUT/incluster-setup.log" 2>&1; then
		INCLUSTER=1
		for c in "${PHASE3[@]}"; do run_case incluster "$c"; done
		INCLUSTER=0
		if incluster_audit_check >"$OUT/incluster-audit.log" 2>&1; then
			pass=$((pass + 1)); echo "ok   incluster/audit (every VM created by the ServiceAccount)"
		else
			failed=$((failed + 1)); failures+=(incluster/audit); echo "FAIL incluster/audit"; cat "$OUT/incluster-audit.log"
		fi
		incluster_teardown
	else
		failed=$((failed + 1)); failures+=(incluster-setup); echo "FAIL incluster setup"
		sed 's/^/     /' "$OUT/incluster-setup.log" | tail -20
	fi
fi
if [ ${#PHASE2[@]} -gt 0 ]; then
	install_crds tests/crds/kubevirt-minimal.yaml deploy/standalone/virtualmachinepool.yaml ||
		{ echo "e2e: cannot install our CRDs" >&2; exit 1; }
	for c in "${PHASE2[@]}"; do run_case own "$c"; done
fi

[ "$failed" -gt 0 ] && echo "e2e failures: ${failures[*]}"
echo "e2e: $pass passed, $failed failed"
[ "$failed" -eq 0 ]

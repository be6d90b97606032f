#!/usr/bin/env bash
# make run: a local control plane, our CRDs, the VM simulator, vmpoold, and the example pool
# from the KubeVirt user guide; shows it converge, then runs until Ctrl-C.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export VMPOOLD_CLUSTER_DIR=${VMPOOLD_CLUSTER_DIR:-/tmp/vmpoold-cluster-$(id -u)}
bash scripts/test-cluster.sh up || exit 1
export KUBECONFIG=$VMPOOLD_CLUSTER_DIR/kubeconfig
logs=$VMPOOLD_CLUSTER_DIR/demo
mkdir -p "$logs"

# the stand-in VM, VMI and DataVolume CRDs (tests/crds), then the standalone install (our
# VirtualMachinePool CRD, namespace, ServiceAccount, RBAC) without its Deployment: this demo
# runs vmpoold here, not in a pod (the local control plane has no kubelet)
bash scripts/test-cluster.sh install || exit 1

bin/vmpool-sim --kubeconfig "$KUBECONFIG" >"$logs/sim.log" 2>&1 &
sim=$!
bin/vmpoold --kubeconfig "$KUBECONFIG" --run-dir "$logs/run" --metrics-bind-address 127.0.0.1:9300 \
	>"$logs/vmpoold.log" 2>&1 &
ctl=$!
stop() {
	trap - INT TERM EXIT
	echo; echo "demo: stopping vmpoold, the simulator and the cluster"
	kill -TERM "$ctl" "$sim" 2>/dev/null; wait "$ctl" "$sim" 2>/dev/null
	bash scripts/test-cluster.sh down
	exit 0
}
trap stop INT TERM EXIT

kubectl apply -f examples/vm-pool-cirros.yaml
for _ in $(seq 1 120); do
	line=$(kubectl get vmpool vm-pool-cirros --no-headers 2>/dev/null)
	set -- $line
	[ "${2:-}" = 3 ] && [ "${3:-}" = 3 ] && [ "${4:-}" = 3 ] && break
	kill -0 "$ctl" 2>/dev/null || { echo "demo: vmpoold exited; see $logs/vmpoold.log"; tail -20 "$logs/vmpoold.log"; exit 1; }
	sleep 0.5
done
kubectl get vmpool,vm
cat <<MSG

The pool converged. vmpoold keeps running until you press Ctrl-C. In another terminal:

  export KUBECONFIG=$KUBECONFIG
  kubectl scale vmpool vm-pool-cirros --replicas 5
  kubectl get vmpool,vm
  kubectl describe vmpool vm-pool-cirros

Logs: $logs/vmpoold.log (controller), $logs/sim.log (VM simulator)
Metrics: http://127.0.0.1:9300/metrics (watcher), :9301 (planner), :9302 (actuator), :9303 (status)
MSG
while kill -0 "$ctl" 2>/dev/null; do sleep 1; done
echo "demo: vmpoold exited; see $logs/vmpoold.log"

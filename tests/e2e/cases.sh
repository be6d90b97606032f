# tests/e2e/cases.sh: the end-to-end cases (issue "vmpoold end to end"). Each case_* runs with
# $NS created, the controller and simulator started; it returns non-zero on the first failure.
# shellcheck shell=bash

case_doc_example() {
	kc apply -f "$SHARED/examples/vm-pool-cirros.yaml" >/dev/null || return 1
	wait_until 60 converged vm-pool-cirros 3 || fail "pool did not converge to 3 ready VMs: $(kc get vmpool,vm 2>&1)" || return 1
	expect_eq "$(vm_names)" "vm-pool-cirros-0 vm-pool-cirros-1 vm-pool-cirros-2" "VM names" || return 1
	local uid
	uid=$(kc get vmpool vm-pool-cirros -o jsonpath='{.metadata.uid}')
	local refs
	refs=$(kc get vm -o json | jq -c --arg uid "$uid" '[.items[] | .metadata.ownerReferences == [{
		apiVersion: "pool.kubevirt.io/v1beta1", kind: "VirtualMachinePool", name: "vm-pool-cirros",
		uid: $uid, controller: true, blockOwnerDeletion: true}]] | unique')
	expect_eq "$refs" "[true]" "every VM has exactly the pool as controller owner" || return 1
	expect_eq "$(kc get vm -o json | jq -c '[.items[] | .metadata.finalizers] | unique')" \
		"[[\"$FINALIZER\"]]" "VM finalizers" || return 1
	expect_eq "$(kc get vm -o json | jq -c '[.items[] | .metadata.labels["kubevirt.io/vmpool"]] | unique')" \
		'["vm-pool-cirros"]' "VM labels" || return 1
	expect_eq "$(kc get vm vm-pool-cirros-0 -o jsonpath='{.spec.runStrategy}')" "Always" "VM spec copied" || return 1
	expect_eq "$(pool_status vm-pool-cirros labelSelector)" "kubevirt.io/vmpool=vm-pool-cirros" "status.labelSelector" || return 1
	expect_eq "$(kc get vmpool vm-pool-cirros -o jsonpath='{.metadata.finalizers}')" "[\"$FINALIZER\"]" "pool finalizer" || return 1
	kc get vmpool vm-pool-cirros | awk 'NR==2 {exit !($2==3 && $3==3 && $4==3)}' ||
		fail "kubectl get vmpool columns: $(kc get vmpool vm-pool-cirros)" || return 1
	wait_eq 10 3 event_count SuccessfulCreate "Created VM $NS/vm-pool-cirros-" ||
		fail "3 SuccessfulCreate events, got $(event_count SuccessfulCreate)" || return 1
}

case_scale() {
	make_pool sp 2 | kc apply -f - >/dev/null || return 1
	wait_until 60 converged sp 2 || fail "initial 2: $(kc get vmpool,vm)" || return 1
	kc scale vmpool sp --replicas 5 >/dev/null || fail "kubectl scale up" || return 1
	wait_until 60 converged sp 5 || fail "scale to 5: $(kc get vmpool,vm)" || return 1
	expect_eq "$(vm_names)" "sp-0 sp-1 sp-2 sp-3 sp-4" "names after scale-out" || return 1
	kc scale vmpool sp --replicas 2 >/dev/null || fail "kubectl scale down" || return 1
	wait_until 60 converged sp 2 || fail "scale to 2: $(kc get vmpool,vm)" || return 1
	wait_eq 10 3 event_count SuccessfulDelete "from pool" ||
		fail "3 SuccessfulDelete events, got $(event_count SuccessfulDelete)" || return 1
	expect_eq "$(kc get scale.pool.kubevirt.io 2>/dev/null | wc -l)" "0" "no stray output" >/dev/null
	expect_eq "$(kubectl get --raw "/apis/pool.kubevirt.io/v1beta1/namespaces/$NS/virtualmachinepools/sp/scale" |
		jq -r '.status.selector')" "kubevirt.io/vmpool=sp" "scale subresource selector" || return 1
	kc scale vmpool sp --replicas 0 >/dev/null || return 1
	wait_until 60 converged sp 0 || fail "scale to 0: $(kc get vmpool,vm)" || return 1
}

case_replicas_unset() {
	make_pool one none | kc apply -f - >/dev/null || return 1
	wait_until 60 converged one 1 || fail "unset replicas -> 1: $(kc get vmpool,vm)" || return 1
	expect_eq "$(kc get vmpool one -o jsonpath='{.spec.replicas}')" "" "no default written into spec" || return 1
}

case_deleted_vm_replaced() {
	make_pool dr 3 | kc apply -f - >/dev/null || return 1
	wait_until 60 converged dr 3 || fail "converge: $(kc get vmpool,vm)" || return 1
	local old
	old=$(vm_uid dr-1)
	kc delete vm dr-1 --wait=false >/dev/null || return 1
	wait_until 60 eval '[ -n "$(vm_uid dr-1 2>/dev/null)" ] && [ "$(vm_uid dr-1 2>/dev/null)" != "'"$old"'" ]' ||
		fail "dr-1 not recreated: $(kc get vm -o wide)" || return 1
	wait_until 30 converged dr 3 || fail "not back to 3 ready: $(kc get vmpool,vm)" || return 1
	expect_eq "$(vm_names)" "dr-0 dr-1 dr-2" "names" || return 1
}

case_detach() {
	make_pool dt 3 | kc apply -f - >/dev/null || return 1
	wait_until 60 converged dt 3 || fail "converge: $(kc get vmpool,vm)" || return 1
	local uid0
	uid0=$(vm_uid dt-0)
	kc patch vm dt-0 --type merge --patch '{"metadata":{"ownerReferences":null}}' >/dev/null || return 1
	wait_eq 60 4 vm_count || fail "no replacement: $(kc get vm)" || return 1
	wait_until 30 eval '[ "$(pool_status dt readyReplicas)" = 3 ] && [ "$(pool_status dt replicas)" = 3 ]' ||
		fail "status after detach: $(kc get vmpool dt)" || return 1
	expect_eq "$(vm_names)" "dt-0 dt-1 dt-2 dt-3" "replacement takes the next free index" || return 1
	expect_eq "$(vm_uid dt-0)" "$uid0" "detached VM left alone" || return 1
	wait_eq 20 "" kc get vm dt-0 -o jsonpath='{.metadata.finalizers}' ||
		fail "detached VM keeps the pool finalizer" || return 1
	kc delete vm dt-0 --timeout=30s >/dev/null || fail "detached VM cannot be deleted" || return 1
	sleep 2
	expect_eq "$(vm_count)" "3" "pool does not replace a VM it no longer owns" || return 1
}

case_selector_mismatch() {
	make_pool mm 2 other | kc apply -f - >/dev/null || return 1
	wait_ge 30 1 event_count InvalidSelector ||
		fail "no InvalidSelector Warning event: $(kc get events)" || return 1
	sleep 3
	expect_eq "$(vm_count)" "0" "VMs created for a pool whose selector does not match" || return 1
	grep -q 'mm' "$CASE_OUT/vmpoold.log" || fail "no log line naming the pool" || return 1
	wait_eq 20 InvalidSelector kc get vmpool mm -o jsonpath='{.status.conditions[?(@.type=="ReplicaFailure")].reason}' ||
		fail "no ReplicaFailure condition: $(kc get vmpool mm -o jsonpath='{.status}')" || return 1
}

case_bad_selector() {
	make_pool bs 2 | sed 's/    matchLabels:/    matchExpressions:\n    - {key: kubevirt.io\/vmpool, operator: Like, values: [bs]}\n    matchLabels:/' |
		kc apply -f - >/dev/null || return 1
	wait_ge 30 1 event_count InvalidSelector Like ||
		fail "no InvalidSelector event naming the operator: $(kc get events)" || return 1
	expect_eq "$(vm_count)" "0" "VMs for an unparsable selector" || return 1
	kill -0 "$VMPOOLD_PID" || fail "vmpoold died" || return 1
	[ "$(stage_pid vmpool-planner)" == "$PLANNER0" ] || fail "planner restarted (crashed?)" || return 1
}

case_delete_pool() {
	make_pool gc 3 | kc apply -f - >/dev/null || return 1
	wait_until 60 converged gc 3 || fail "converge: $(kc get vmpool,vm)" || return 1
	kc delete vmpool gc --wait=false >/dev/null || return 1
	wait_until 60 eval '! kc get vmpool gc >/dev/null 2>&1' || fail "pool not deleted: $(kc get vmpool gc -o yaml)" || return 1
	wait_eq 60 0 vm_count || fail "VMs not garbage collected: $(kc get vm)" || return 1
}

case_hpa() {
	make_pool hp 1 | kc apply -f - >/dev/null || return 1
	wait_until 60 converged hp 1 || fail "converge: $(kc get vmpool,vm)" || return 1
	kc apply -f - >/dev/null <<YAML || return 1
apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata:
  name: hp
spec:
  maxReplicas: 10
  minReplicas: 3
  scaleTargetRef:
    apiVersion: pool.kubevirt.io/v1alpha1
    kind: VirtualMachinePool
    name: hp
  targetCPUUtilizationPercentage: 50
YAML
	wait_until 90 converged hp 3 || fail "HPA did not raise the pool to 3: $(kc get vmpool,vm,hpa)" || return 1
}

# kill -9 each stage in turn while a pool scales out to 150; it must end with exactly 150.
# API writes are throttled (25/s) so that the scale-out takes several seconds and every kill
# lands in the middle of it.
ARGS_kill_stages="--kube-api-qps 25 --kube-api-burst 5"
case_kill_stages() {
	make_pool ks 1 | kc apply -f - >/dev/null || return 1
	wait_until 60 converged ks 1 || fail "converge: $(kc get vmpool,vm)" || return 1
	kc scale vmpool ks --replicas 150 >/dev/null || return 1
	local stage pid n
	for stage in vmpool-watcher vmpool-planner vmpool-actuator vmpool-status; do
		sleep 0.7
		pid=$(stage_pid "$stage")
		[ -n "$pid" ] || fail "no $stage running" || return 1
		kill -9 "$pid"
		n=$(vm_count)
		say "killed $stage ($pid) at $n VMs"
		wait_until 20 eval '[ -n "$(stage_pid '"$stage"')" ] && [ "$(stage_pid '"$stage"')" != '"$pid"' ]' ||
			fail "$stage not restarted" || return 1
	done
	[ "$n" -lt 150 ] || fail "scale-out finished before the last kill: the test proves nothing" || return 1
	wait_until 240 converged ks 150 || fail "did not converge to 150: $(kc get vmpool ks) vms=$(vm_count)" || return 1
	local want
	want=$(seq 0 149 | sed 's/^/ks-/' | tr '\n' ' ' | sed 's/ $//')
	expect_eq "$(vm_names)" "$want" "exactly ks-0..ks-149" || return 1
	sleep 3
	expect_eq "$(vm_count)" "150" "still 150 after settling" || return 1
}

# a converged pool left alone causes no API writes at all
case_quiet() {
	make_pool qt 3 | kc apply -f - >/dev/null || return 1
	wait_until 60 converged qt 3 || fail "converge: $(kc get vmpool,vm)" || return 1
	sleep 3
	local before after
	before=$(api_writes)
	sleep 15
	after=$(api_writes)
	say "API writes in the namespace over 15 s while converged: $((after - before))"
	[ "$after" -eq "$before" ] || fail "writes while converged: $(api_writes list | tail -n $((after - before)))" || return 1
}

# --- bad input, outside a namespace's controller --------------------------------------------

case_bad_kubeconfig() {
	stop_controller
	local rc=0
	timeout 20 "$BIN/vmpoold" --kubeconfig /nonexistent/kubeconfig --run-dir "$CASE_OUT/run2" \
		>"$CASE_OUT/bad.log" 2>&1 || rc=$?
	expect_eq "$rc" "78" "exit code for an unreadable kubeconfig" || return 1
	grep -q '/nonexistent/kubeconfig' "$CASE_OUT/bad.log" || fail "log does not name the kubeconfig: $(cat "$CASE_OUT/bad.log")" || return 1
}

case_api_down() {
	stop_controller
	local kcfg=$CASE_OUT/down.kubeconfig
	sed "s#server: .*#server: https://127.0.0.1:1#" "$KUBECONFIG" >"$kcfg"
	"$BIN/vmpoold" --kubeconfig "$kcfg" --run-dir "$CASE_OUT/run3" >"$CASE_OUT/down.log" 2>&1 &
	local pid=$!
	sleep 6
	kill -0 "$pid" || fail "vmpoold exited while the API server is down: $(tail -5 "$CASE_OUT/down.log")" || return 1
	grep -qi 'refused\|connect' "$CASE_OUT/down.log" || fail "no clear log line about the API: $(tail -5 "$CASE_OUT/down.log")" || return 1
	kill -TERM "$pid"
	local rc=0
	wait "$pid" || rc=$?
	expect_eq "$rc" "0" "exit code on SIGTERM" || return 1
}

# a VM the API server rejects (pool name of 252 characters: "<pool>-0" is over the 253 limit):
# FailedCreate events, ReplicaFailure/FailedScaleOut, a Warning Event with the sync error,
# and nothing else breaks
case_create_fails() {
	# a 251-character name: the revision <name>-1 fits the API's 253 characters, but no VM
	# does, as its revision label value (<name>-1) is over 63 (upstream has the same limit)
	local long
	long=$(printf 'f%.0s' $(seq 1 251))
	make_pool cf 3 | sed "s/^  name: cf$/  name: $long/" | kc apply -f - >/dev/null || return 1
	wait_ge 30 1 event_count FailedCreate "Error creating VM: " ||
		fail "no FailedCreate event: $(kc get events)" || return 1
	wait_eq 30 FailedScaleOut kc get vmpool "$long" -o jsonpath='{.status.conditions[?(@.type=="ReplicaFailure")].reason}' ||
		fail "no ReplicaFailure/FailedScaleOut: $(kc get vmpool "$long" -o jsonpath='{.status}')" || return 1
	kc get vmpool "$long" -o jsonpath='{.status.conditions[0].message}' | grep -q '^error during scale out: ' ||
		fail "condition message: $(kc get vmpool "$long" -o jsonpath='{.status.conditions}')" || return 1
	wait_ge 20 1 event_count FailedScaleOut "error during scale out: " ||
		fail "no FailedScaleOut Warning event: $(kc get events)" || return 1
	expect_eq "$(vm_count)" "0" "VMs" || return 1
	kill -0 "$VMPOOLD_PID" || fail "vmpoold died" || return 1
}

# the selector is edited so that it no longer matches the template (nothing stops that without
# KubeVirt's webhook): the pool does nothing but report it, and can still be deleted
case_delete_after_selector_change() {
	make_pool sc 2 | kc apply -f - >/dev/null || return 1
	wait_until 60 converged sc 2 || fail "converge: $(kc get vmpool,vm)" || return 1
	kc patch vmpool sc --type merge -p '{"spec":{"selector":{"matchLabels":{"kubevirt.io/vmpool":"other"}}}}' >/dev/null || return 1
	wait_ge 30 1 event_count InvalidSelector || fail "no InvalidSelector event" || return 1
	expect_eq "$(vm_count)" "2" "VMs untouched while the selector is invalid" || return 1
	kc delete vmpool sc --wait=false >/dev/null || return 1
	wait_until 30 eval '! kc get vmpool sc >/dev/null 2>&1' || fail "pool hangs in deletion: $(kc get vmpool sc -o jsonpath='{.metadata}')" || return 1
	wait_eq 60 0 vm_count || fail "VMs not garbage collected: $(kc get vm)" || return 1
}

# a VM whose labels stop matching the selector is released: it loses this pool's owner
# reference and finalizer, stays, and a replacement takes the next free index
case_release() {
	make_pool rl 2 | kc apply -f - >/dev/null || return 1
	wait_until 60 converged rl 2 || fail "converge: $(kc get vmpool,vm)" || return 1
	local uid0
	uid0=$(vm_uid rl-0)
	kc label vm rl-0 kubevirt.io/vmpool=elsewhere --overwrite >/dev/null || return 1
	wait_eq 30 "" kc get vm rl-0 -o jsonpath='{.metadata.ownerReferences}' ||
		fail "owner reference kept: $(kc get vm rl-0 -o jsonpath='{.metadata}')" || return 1
	wait_eq 30 "" kc get vm rl-0 -o jsonpath='{.metadata.finalizers}' ||
		fail "pool finalizer kept" || return 1
	wait_eq 30 "rl-0 rl-1 rl-2" vm_names || fail "no replacement: $(kc get vm)" || return 1
	wait_until 30 eval '[ "$(pool_status rl replicas)" = 2 ] && [ "$(pool_status rl readyReplicas)" = 2 ]' ||
		fail "status counts the released VM: $(kc get vmpool rl)" || return 1
	expect_eq "$(vm_uid rl-0)" "$uid0" "released VM left in place" || return 1
	kc delete vm rl-0 --timeout=30s >/dev/null || fail "released VM cannot be deleted" || return 1
}

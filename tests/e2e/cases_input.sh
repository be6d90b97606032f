# End-to-end cases for hostile input (issue 12): sourced by run.sh.

# [[[...]]] nested N levels, as JSON. Lists, not maps: kube-apiserver 1.20 takes time
# exponential in the depth of nested maps under preserve-unknown-fields (17 levels: 6 s, 20:
# 15 s, 40: past its 34 s timeout), nested lists it stores at once.
deep_json() { jq -nc --argjson n "$1" 'reduce range(1; $n) as $i ([]; [.])'; }

# one pool nested deeper than the pipeline's limit (KubeVirt's schema keeps unknown fields under
# spec.virtualMachineTemplate.metadata): it gets ReplicaFailure InvalidObject and a Warning
# Event, none of its VMs is touched (not even when its replicas drop while it is deep), and
# the other pools of the namespace are still reconciled; made shallow again, it converges
case_deep_pool() {
	local deep uids
	deep=$(deep_json 100)
	mkpool ok 2 && mkpool was 2 || return 1
	wait_until 60 pconv ok 2 && wait_until 60 pconv was 2 || fail "converge: $(kc get vmpool,vm)" || return 1
	uids=$(obj_map vm was '.metadata.uid')
	mkpool deep 2 ".spec.virtualMachineTemplate.metadata.deep = $deep" ||
		fail "the API server refused a pool nested 100 deep" || return 1
	pool_patch was "{\"spec\":{\"replicas\":1,\"virtualMachineTemplate\":{\"metadata\":{\"deep\":$deep}}}}" || return 1
	wait_until 60 eval '[ "$(pool_cond deep ReplicaFailure reason)" == InvalidObject ]' ||
		fail "no InvalidObject condition on the new deep pool: $(pool_json deep | jq -c .status)" || return 1
	wait_until 60 eval '[ "$(pool_cond was ReplicaFailure reason)" == InvalidObject ]' ||
		fail "no InvalidObject condition on the pool made deep: $(pool_json was | jq -c .status)" || return 1
	pool_cond deep ReplicaFailure message | grep -q 'deeper than 60 levels' ||
		fail "condition message: $(pool_cond deep ReplicaFailure message)" || return 1
	wait_ge 30 2 event_count InvalidObject 'deeper than 60 levels' ||
		fail "no InvalidObject Warning Events: $(kc get events)" || return 1
	# the others are still reconciled meanwhile
	pool_patch ok '{"spec":{"replicas":3}}' || return 1
	wait_until 60 pconv ok 3 || fail "ok did not scale to 3: $(kc get vm)" || return 1
	expect_eq "$(pool_vm_count deep)" 0 "VMs of the deep pool" || return 1
	expect_eq "$(obj_map vm was '.metadata.uid')" "$uids" "VMs of the pool made deep (replicas 2 -> 1 while deep)" || return 1
	grep -q '"Pool nests deeper than the limit: .*pool="[^"]*/deep" maxDepth=60' "$CASE_OUT/vmpoold.log" ||
		fail "no watcher log line naming the deep pool" || return 1
	[ "$(stage_pid vmpool-planner)" == "$PLANNER0" ] || fail "planner restarted" || return 1
	! grep -q 'nesting deeper than' "$CASE_OUT/vmpoold.log" || fail "a frame was refused: $(grep -m3 'nesting deeper' "$CASE_OUT/vmpoold.log")" || return 1
	# shallow again: reconciled to its replicas, the failure cleared
	pool_patch was '{"spec":{"virtualMachineTemplate":{"metadata":{"deep":null}}}}' || return 1
	wait_until 60 pconv was 1 || fail "was did not scale to 1 once shallow: $(kc get vm)" || return 1
	wait_until 30 eval '[ -z "$(pool_cond was ReplicaFailure reason)" ]' ||
		fail "ReplicaFailure stays: $(pool_json was | jq -c .status)" || return 1
}

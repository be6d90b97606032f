# tests/e2e/cases_metrics.sh: what each stage's /metrics serves (issue 11 item 3), scraped
# while the pipeline runs against the real API server, checked with Prometheus' own parser
# (`promtool check metrics`, Debian's prometheus package) and for the families dashboards
# expect, with values that must follow from what the case did. Also in the in-cluster
# phase, on the ports deploy/monitoring's PodMonitor names.
# shellcheck shell=bash

# the stages' metrics ports: PORT+0..3 (watcher, planner, actuator, status), from the
# cluster's port so that helpers running their own clusters do not collide
METRICS_BASE=$((${VMPOOLD_CLUSTER_PORT:-6543} + 20000)) # etcd uses +10000 and +10001
# shellcheck disable=SC2034 # read by run_case
ARGS_metrics_scrape="--metrics-addr 127.0.0.1:$METRICS_BASE"
# shellcheck disable=SC2034 # the autohealing case (cases_pool.sh) reads the planner's counter
ARGS_autohealing="--metrics-addr 127.0.0.1:$METRICS_BASE"
METRICS_STAGES=(watcher planner actuator status)

# the metrics port of STAGE: PORT+0..3 on the host; in the in-cluster phase
# (tests/e2e/incluster.sh) the port of that container the PodMonitor of deploy/monitoring
# scrapes, by its name, so that the monitoring overlay is checked against the Deployment
metrics_port() {
	local i
	if [ "${INCLUSTER:-0}" = 1 ]; then
		[ -n "${METRICS_PM_PORTS:-}" ] || METRICS_PM_PORTS=$(kubectl kustomize "$ROOT/deploy/monitoring" |
			yq -c . | jq -sc '[.[] | select(.kind == "PodMonitor") | .spec.podMetricsEndpoints[].port]')
		jq -r --arg c "$1" --argjson names "$METRICS_PM_PORTS" '.spec.template.spec.containers[] |
			select(.name == $c) | .ports[] | select(.name as $n | $names | index($n)) | .containerPort' \
			"${IC_RUNNING:-$IC_DEPLOY}"
		return
	fi
	for i in "${!METRICS_STAGES[@]}"; do
		[ "${METRICS_STAGES[$i]}" = "$1" ] && echo $((METRICS_BASE + i))
	done
}

# scrape STAGE: its /metrics into $CASE_OUT/metrics-STAGE.txt
scrape() {
	local port
	port=$(metrics_port "$1")
	[ -n "$port" ] || return 1
	curl -sf --max-time 5 "http://127.0.0.1:$port/metrics" >"$CASE_OUT/metrics-$1.txt"
}

# metric STAGE NAME [LABEL=\"VALUE\"...]: scrapes STAGE and prints the sum of the samples
# of NAME that carry every given label pair (in any order; a pair may end early, as a
# prefix of the value: 'host="127.0.0.1:'), or "none"
metric() {
	local stage=$1 name=$2
	shift 2
	scrape "$stage" || { echo "unreachable"; return 1; }
	awk -v name="$name" -v want="$*" '
		/^#/ || NF < 2 { next }
		{
			# label values may hold blanks: the value is the last field (we write no timestamps)
			series = substr($0, 1, length($0) - length($NF) - 1); n = series; labels = ""
			if ((i = index(series, "{")) > 0) { n = substr(series, 1, i - 1); labels = substr(series, i) }
			if (n != name) next
			k = split(want, pairs, " ")
			for (j = 1; j <= k; j++)
				if (index(labels, "{" pairs[j]) == 0 && index(labels, "," pairs[j]) == 0) next
			sum += $NF; found = 1
		}
		END { if (found) printf "%.17g\n", sum; else print "none" }' "$CASE_OUT/metrics-$stage.txt"
}

# metric_gt STAGE MIN NAME [LABELS...]: the metric exists and exceeds MIN
metric_gt() {
	local stage=$1 min=$2 v
	shift 2
	v=$(metric "$stage" "$@")
	awk -v v="$v" -v min="$min" 'BEGIN { exit !(v != "none" && v != "unreachable" && v + 0 > min + 0) }' ||
		fail "$stage: $* is $v, want > $min"
}

case_metrics_scrape() {
	local stage v now uid
	command -v promtool >/dev/null ||
		fail "promtool not found (Debian package prometheus, scripts/install-deps.sh)" || return 1
	make_pool ms 1 | kc apply -f - >/dev/null || return 1
	wait_until 60 converged ms 1 || fail "converge to 1: $(kc get vmpool,vm)" || return 1
	kc scale vmpool ms --replicas 4 >/dev/null || fail "kubectl scale" || return 1
	wait_until 60 converged ms 4 || fail "scale-out to 4: $(kc get vmpool,vm)" || return 1
	uid=$(kc get vmpool ms -o jsonpath='{.metadata.uid}')

	# every stage: Prometheus' parser and linter accept the page; process_* and build info
	now=$(date +%s)
	for stage in "${METRICS_STAGES[@]}"; do
		scrape "$stage" || fail "$stage: no /metrics" || return 1
		promtool check metrics <"$CASE_OUT/metrics-$stage.txt" >"$CASE_OUT/promtool-$stage.txt" 2>&1 ||
			fail "$stage: promtool check metrics: $(cat "$CASE_OUT/promtool-$stage.txt")" || return 1
		expect_eq "$(metric "$stage" vmpoold_build_info 'version="')" 1 "$stage: vmpoold_build_info" || return 1
		# the in-cluster phase runs the containers (as root) in a chroot of the image, without /proc
		# (a pod has it): there the process_* families are declared but have no sample
		if [ "${INCLUSTER:-0}" = 1 ] && [ "$(id -u)" -eq 0 ] && [ ! -e "$IC_ROOTFS/proc/self/stat" ]; then
			expect_eq "$(metric "$stage" process_resident_memory_bytes)" none "$stage: no /proc, no sample" || return 1
			grep -q '^# TYPE process_resident_memory_bytes gauge$' "$CASE_OUT/metrics-$stage.txt" ||
				fail "$stage: process_* not declared" || return 1
			continue
		fi
		metric_gt "$stage" 1000000 process_resident_memory_bytes || return 1
		metric_gt "$stage" "$(metric "$stage" process_resident_memory_bytes)" process_virtual_memory_bytes || return 1
		metric_gt "$stage" 2 process_open_fds || return 1
		metric_gt "$stage" "$(metric "$stage" process_open_fds)" process_max_fds || return 1
		metric_gt "$stage" -1 process_cpu_seconds_total || return 1
		v=$(metric "$stage" process_start_time_seconds)
		awk -v v="$v" -v now="$now" 'BEGIN { exit !(v != "none" && v <= now + 1 && v > now - 600) }' ||
			fail "$stage: process_start_time_seconds $v, now $now" || return 1
	done

	# the API client: the actuator's creates (201 to POST) and their latency, the watcher's
	# lists and watches, the status stage's status patches
	metric_gt actuator 3 rest_client_requests_total 'code="201"' 'method="POST"' 'host="127.0.0.1:' || return 1
	metric_gt actuator 3 rest_client_request_duration_seconds_count 'verb="POST"' || return 1
	v=$(metric actuator rest_client_request_duration_seconds_bucket 'verb="POST"' 'le="+Inf"')
	expect_eq "$v" "$(metric actuator rest_client_request_duration_seconds_count 'verb="POST"')" \
		"actuator: the +Inf bucket counts every POST" || return 1
	metric_gt watcher 0 rest_client_requests_total 'code="200"' 'method="GET"' || return 1
	metric_gt status 0 rest_client_requests_total 'code="200"' 'method="PATCH"' || return 1

	# the work queues
	metric_gt planner 0 workqueue_adds_total 'name="planner"' || return 1
	metric_gt planner 0 workqueue_work_duration_seconds_count 'name="planner"' || return 1
	metric_gt planner 0 workqueue_queue_duration_seconds_count 'name="planner"' || return 1
	metric_gt planner 0 vmpool_planner_pass_seconds_count || return 1
	metric_gt status 0 workqueue_adds_total 'name="status"' || return 1
	metric_gt status 0 workqueue_work_duration_seconds_count 'name="status"' || return 1
	wait_eq 10 0 metric planner workqueue_depth 'name="planner"' || fail "planner queue not drained" || return 1

	# per pool: KubeVirt's proposed series equal the pool's own spec and status
	local sel=("namespace=\"$NS\"" 'name="ms"')
	wait_eq 20 "$(pool_status ms readyReplicas)" metric status kubevirt_vmpool_ready_replicas "${sel[@]}" ||
		fail "kubevirt_vmpool_ready_replicas $(metric status kubevirt_vmpool_ready_replicas "${sel[@]}"), pool $(pool_status ms readyReplicas)" || return 1
	{
		expect_eq "$(metric status kubevirt_vmpool_replicas "${sel[@]}")" "$(pool_status ms replicas)" "kubevirt_vmpool_replicas" &&
			expect_eq "$(metric status kubevirt_vmpool_desired_replicas "${sel[@]}")" 4 "kubevirt_vmpool_desired_replicas" &&
			expect_eq "$(metric status kubevirt_vmpool_paused "${sel[@]}")" 0 "kubevirt_vmpool_paused" &&
			expect_eq "$(metric status kubevirt_vmpool_replica_failure "${sel[@]}")" 0 "kubevirt_vmpool_replica_failure" &&
			expect_eq "$(metric status kubevirt_vmpool_info "${sel[@]}" "uid=\"$uid\"")" 1 "kubevirt_vmpool_info with the uid"
	} || return 1
	expect_eq "$(metric status vmpool_pool_ready_replicas)" none "the old per-pool names are gone" || return 1
	# KubeVirt's proposed counters (#18600), from the planner: 1 + 3 creates, then 2 deletes
	wait_eq 20 4 metric planner kubevirt_vmpool_vms_started_total "${sel[@]}" ||
		fail "kubevirt_vmpool_vms_started_total $(metric planner kubevirt_vmpool_vms_started_total "${sel[@]}"), want 4" || return 1
	kc scale vmpool ms --replicas 2 >/dev/null || fail "kubectl scale" || return 1
	wait_until 60 converged ms 2 || fail "scale-in to 2: $(kc get vmpool,vm)" || return 1
	wait_eq 20 2 metric planner kubevirt_vmpool_vms_stopped_total "${sel[@]}" ||
		fail "kubevirt_vmpool_vms_stopped_total $(metric planner kubevirt_vmpool_vms_stopped_total "${sel[@]}"), want 2" || return 1
	expect_eq "$(metric planner kubevirt_vmpool_auto_healing_operations_total "${sel[@]}")" none \
		"no autohealing counted for a scale-in" || return 1

	# a paused pool shows as paused; a deleted one leaves no series behind
	kc patch vmpool ms --type merge -p '{"spec":{"paused":true}}' >/dev/null || return 1
	wait_eq 20 1 metric status kubevirt_vmpool_paused "${sel[@]}" || fail "kubevirt_vmpool_paused not 1" || return 1
	kc patch vmpool ms --type merge -p '{"spec":{"paused":false}}' >/dev/null || return 1
	kc delete vmpool ms --wait=false >/dev/null || return 1
	wait_eq 60 none metric status kubevirt_vmpool_info "${sel[@]}" || fail "kubevirt_vmpool_info stays after the pool went" || return 1
	expect_eq "$(metric status kubevirt_vmpool_replicas "${sel[@]}")" none "kubevirt_vmpool_replicas gone with the pool" || return 1
	wait_eq 20 none metric planner kubevirt_vmpool_vms_started_total "${sel[@]}" ||
		fail "kubevirt_vmpool_vms_started_total stays after the pool went" || return 1
	promtool check metrics <"$CASE_OUT/metrics-status.txt" >/dev/null 2>&1 || fail "status after the deletion: promtool" || return 1
}

# tests/e2e/cases_ops.sh: operator habits (issue 11 items 1 and 2) end to end: Kubernetes'
# flag names, --master over a kubeconfig whose server is wrong, JSON logs as component-base
# writes them, --v=2, and the metrics and probe listeners with Go's :PORT.
# shellcheck shell=bash

# ports of this cluster's case (10 from 20000 + 10 x the cluster port mod 1000): metrics
# +0..3, probes +5..8, kubectl proxy +4, a lone watcher +9
ops_port() { echo $((20000 + VMPOOLD_CLUSTER_PORT % 1000 * 10 + $1)); }

setup_operator_flags() {
	local server
	server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
	[ -n "$server" ] || { echo "no server in $KUBECONFIG"; return 1; }
	# the kubeconfig's credentials with a server nobody listens on: only --master can help
	sed "s#server: .*#server: https://127.0.0.1:1#" "$KUBECONFIG" >"$CASE_OUT/wrong-server.kubeconfig"
	VMPOOLD_KUBECONFIG=$CASE_OUT/wrong-server.kubeconfig
	VMPOOLD_ARGS="--master $server/ --logging-format=json --v=2 --metrics-bind-address :$(ops_port 0) --health-probe-bind-address 127.0.0.1:$(ops_port 5)"
}
teardown_operator_flags() { unset VMPOOLD_KUBECONFIG; }

# the first address of this machine that is not loopback (IPv4), or nothing
ops_other_ip() { hostname -I 2>/dev/null | tr ' ' '\n' | grep -m1 -E '^[0-9.]+$' | grep -v '^127\.'; }
http_code() { curl -gs -o /dev/null -w '%{http_code}' --max-time 3 "$1"; }

# jq over the JSON log lines (one object each)
jlog() { jq -c "$@" "$CASE_OUT/vmpoold.log" 2>/dev/null; }

case_operator_flags() {
	local log=$CASE_OUT/vmpoold.log mport sport pport ip n bad long
	mport=$(ops_port 0) sport=$(ops_port 3) pport=$(ops_port 5)
	make_pool of 2 | kc apply -f - >/dev/null || return 1
	wait_until 60 converged of 2 || fail "no convergence through --master: $(tail -5 "$log")" || return 1
	! grep -q '127.0.0.1:1\b' "$log" || fail "the kubeconfig's server was used: $(grep -m2 '127.0.0.1:1' "$log")" || return 1

	# --logging-format=json: every line an object with ts (float milliseconds), caller, msg, logger
	n=$(wc -l <"$log")
	bad=$(jq -R 'fromjson? // "BAD" | if . == "BAD" then . else
		(select((.ts | type) != "number" or .ts < 1e12 or (.caller | type) != "string" or
		(.msg | type) != "string" or (.logger | test("^vmpool"))  == false) | "INCOMPLETE") end' "$log" | wc -l)
	expect_eq "$bad" 0 "log lines that are not component-base JSON (of $n)" || return 1
	say "$n JSON log lines, e.g. $(jlog 'select(.msg == "Action sent")' | head -1)"
	# one line per action, with the pool as an object reference
	jlog --arg ns "$NS" 'select(.msg == "Action sent" and .op == "create_vm" and .v == 0 and
		.pool == {"name":"of","namespace":$ns})' | grep -q . || fail "no Action sent line for pool of" || return 1
	jlog --arg ns "$NS" 'select(.msg == "Action done" and .status == 201 and .object.namespace == $ns)' | grep -q . ||
		fail "no Action done line" || return 1
	# --v=2: the pool's sync result, at v 2
	jlog 'select(.msg == "Sync ok" and .v == 2 and .pool.name == "of")' | grep -q . || fail "no Sync ok at v 2" || return 1

	# an error: a VM the API server refuses (see case_create_fails): error lines have err, no v
	long=$(printf 'f%.0s' $(seq 1 251))
	make_pool cf 1 | sed "s/^  name: cf$/  name: $long/" | kc apply -f - >/dev/null || return 1
	wait_until 30 eval "jlog 'select(.msg == \"Action failed\")' | grep -q ." ||
		fail "no Action failed line" || return 1
	jlog 'select(.msg == "Action failed" and (has("v") | not) and (.err | length) > 0 and .op == "create_vm")' |
		grep -q . || fail "Action failed is not at error level: $(jlog 'select(.msg == "Action failed")' | head -2)" || return 1
	say "error: $(jlog 'select(.msg == "Action failed")' | head -1 | cut -c1-300)"

	# :PORT: the metrics listener answers on every interface, IPv6 and IPv4
	expect_eq "$(http_code "http://127.0.0.1:$mport/metrics")" 200 "metrics over 127.0.0.1" || return 1
	if ip -6 addr show lo 2>/dev/null | grep -q '::1/128'; then
		expect_eq "$(http_code "http://[::1]:$mport/metrics")" 200 "metrics over [::1]" || return 1
	fi
	ip=$(ops_other_ip)
	if [ -n "$ip" ]; then
		expect_eq "$(http_code "http://$ip:$mport/metrics")" 200 "metrics over $ip" || return 1
		# the control case: 127.0.0.1:PORT is loopback only
		expect_eq "$(http_code "http://$ip:$pport/healthz")" 000 "the probe listener over $ip" || return 1
	fi
	# the probe listener (watcher at +0, status at +3): /healthz and /readyz, not /metrics
	expect_eq "$(http_code "http://127.0.0.1:$pport/readyz")" 200 "watcher /readyz on the probe port" || return 1
	expect_eq "$(http_code "http://127.0.0.1:$((pport + 3))/healthz")" 200 "status /healthz on the probe port" || return 1
	expect_eq "$(http_code "http://127.0.0.1:$pport/metrics")" 404 "no /metrics on the probe port" || return 1
	expect_eq "$(http_code "http://127.0.0.1:$sport/readyz")" 200 "probes still on the metrics port" || return 1
	ops_master_alone || return 1
}

# --master with no kubeconfig anywhere (no --kubeconfig, KUBECONFIG or ~/.kube/config): the
# URL alone, without credentials, as through kubectl proxy; a watcher's first lists go
# through it (readyz 200)
ops_master_alone() {
	local proxy=$(ops_port 4) wport=$(ops_port 9) ppid wpid rc=0 home=$CASE_OUT/empty-home
	mkdir -p "$home" "$CASE_OUT/run-alone" && chmod 700 "$CASE_OUT/run-alone"
	kubectl proxy --port="$proxy" >"$CASE_OUT/proxy.log" 2>&1 &
	ppid=$!
	wait_until 20 eval "[ \"\$(http_code http://127.0.0.1:$proxy/version)\" = 200 ]" ||
		{ kill "$ppid"; fail "kubectl proxy did not start: $(cat "$CASE_OUT/proxy.log")"; return 1; }
	env -u KUBECONFIG -u KUBERNETES_SERVICE_HOST HOME="$home" "$BIN/vmpool-watcher" \
		--master "http://127.0.0.1:$proxy" --namespace "$NS" --run-dir "$CASE_OUT/run-alone" \
		--metrics-bind-address "127.0.0.1:$wport" >"$CASE_OUT/alone.log" 2>&1 &
	wpid=$!
	wait_until 30 eval "[ \"\$(http_code http://127.0.0.1:$wport/readyz)\" = 200 ]" ||
		{ fail "watcher with --master alone not ready: $(tail -3 "$CASE_OUT/alone.log")"; rc=1; }
	[ $rc = 1 ] || grep -q "http://127.0.0.1:$proxy" "$CASE_OUT/alone.log" ||
		{ fail "the watcher's log does not name the --master URL"; rc=1; }
	kill -TERM "$wpid" "$ppid" 2>/dev/null
	wait "$wpid" "$ppid" 2>/dev/null
	[ $rc = 0 ] && say "a watcher with only --master http://127.0.0.1:$proxy (kubectl proxy) got ready"
	return $rc
}

# conns_bounded: a burst of creates over HTTPS (HTTP/2) opens no more connections than the
# running transfers need (kube.h: KUBE_STREAMS_PER_CONN, KUBE_WATCH_STREAMS): the actuator,
# 100 transfers at once, holds at most 8 connections to the API server while 150 VMs are
# created at once; without the bound a burst started during the first TLS handshakes opened
# one connection per waiting transfer (22 at 300 pools; issue 9)
ARGS_conns_bounded="--kube-api-qps 1000 --kube-api-burst 1000"
# tcp_conns PID: the process's established TCP connections
tcp_conns() {
	local inodes
	inodes=$(find "/proc/$1/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null | tr -dc '0-9\n' | sort -u)
	[ -n "$inodes" ] || { echo 0; return; }
	awk 'NR == FNR { want[$1] = 1; next } FNR > 1 && $4 == "01" && ($10 in want) { n++ } END { print n + 0 }' \
		<(echo "$inodes") /proc/net/tcp /proc/net/tcp6
}
case_conns_bounded() {
	local act most=0 n
	mkpool cb 0 || return 1
	wait_until 30 eval '[ "$(pool_status cb replicas)" == "" ]' || return 1
	act=$(stage_pid vmpool-actuator)
	[ -n "$act" ] || fail "no actuator" || return 1
	pool_patch cb '{"spec":{"replicas":150}}' || return 1
	for _ in $(seq 1 600); do
		n=$(tcp_conns "$act")
		[ "$n" -gt "$most" ] && most=$n
		[ "$(pool_vm_count cb)" -ge 150 ] && break
		sleep 0.05
	done
	wait_until 120 pconv cb 150 || fail "not converged: $(pool_vm_count cb) VMs" || return 1
	echo "the actuator's most connections: $most"
	[ "$most" -ge 1 ] || fail "no connection of the actuator seen" || return 1
	[ "$most" -le 8 ] || fail "the actuator held $most connections to the API server (at most 8)" || return 1
}

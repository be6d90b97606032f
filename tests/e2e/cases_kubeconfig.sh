# tests/e2e/cases_kubeconfig.sh: the kubeconfig as kubectl reads it (issue 11, item 4): an exec
# credential plugin whose token is refused, expires and rotates; a KUBECONFIG list of two files;
# tls-server-name; client certificates as data and as files; what we do not support refused at
# start.
# shellcheck shell=bash

CLUSTER_PORT=${VMPOOLD_CLUSTER_PORT:-6543}

# the API server's audit log: who (user) created a VM of $NS named $1
vm_creator() {
	jq -r --arg ns "$NS" --arg n "$1" 'select(.verb == "create" and .objectRef.resource ==
		"virtualmachines" and .objectRef.namespace == $ns and .objectRef.name == $n and
		.responseStatus.code == 201) | .user.username' "$VMPOOLD_CLUSTER_DIR/audit.log" | head -1
}
vm_creator_known() { [ -n "$(vm_creator "$1")" ]; }
# writes to $NS (any resource) by user $1
writes_by() {
	jq -r --arg ns "$NS" --arg u "$1" 'select(.objectRef.namespace == $ns and .user.username == $u
		and .verb != "get" and .verb != "list" and .verb != "watch") | .verb' \
		"$VMPOOLD_CLUSTER_DIR/audit.log" | wc -l
}

# The plugin, per stage process (its parent): run 1 prints a token the API server does not
# know (one rotated away), run 2 the cluster's token valid for 20 s, later runs the second
# token. Every run is logged; the environment it got is kept.
setup_exec_plugin() {
	local d=$CASE_OUT/exec
	mkdir -p "$d"
	cp "$VMPOOLD_CLUSTER_DIR/token" "$d/token1"
	cp "$VMPOOLD_CLUSTER_DIR/token2" "$d/token2"
	cat >"$d/plugin.sh" <<'SH'
#!/bin/sh
dir=$(cd "$(dirname "$0")" && pwd)
n=$(($(cat "$dir/runs.$PPID" 2>/dev/null || echo 0) + 1))
echo "$n" >"$dir/runs.$PPID"
echo "$PPID $n $*" >>"$dir/runs.log"
printf '%s\n' "$KUBERNETES_EXEC_INFO" >"$dir/info.$PPID"
printf '%s\n' "$PLUGIN_MODE" >"$dir/mode.$PPID"
exp=""
case $n in
1) tok=not-a-token-any-more ;;
2) tok=$(cat "$dir/token1")
   exp=",\"expirationTimestamp\":\"$(date -u -d '+20 seconds' +%Y-%m-%dT%H:%M:%SZ)\"" ;;
*) tok=$(cat "$dir/token2") ;;
esac
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"%s}}\n' "$tok" "$exp"
SH
	chmod +x "$d/plugin.sh"
	cat >"$d/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:$CLUSTER_PORT
    certificate-authority: $VMPOOLD_CLUSTER_DIR/ca.crt
users:
- name: plugin
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ./plugin.sh
      args: [--cluster, test]
      env:
      - name: PLUGIN_MODE
        value: e2e
      provideClusterInfo: true
      interactiveMode: Never
      installHint: "plugin.sh is part of the test"
contexts:
- name: c
  context: {cluster: c, user: plugin}
current-context: c
KC
	VMPOOLD_KUBECONFIG=$d/kubeconfig
	EXEC_T0=$(date +%s)
}
teardown_exec_plugin() { unset VMPOOLD_KUBECONFIG; }

time_past() { [ "$(date +%s)" -ge "$1" ]; }
# the highest run count of any stage's plugin
exec_max_runs() { cat "$CASE_OUT"/exec/runs.[0-9]* 2>/dev/null | sort -n | tail -1; }

case_exec_plugin() {
	local d=$CASE_OUT/exec info
	make_pool ep 2 | kc apply -f - >/dev/null || return 1
	wait_until 90 converged ep 2 || fail "pool did not converge with the plugin's credential: $(kc get vmpool,vm 2>&1)" || return 1
	grep -q 'refused the credential (401), running it again' "$CASE_OUT/vmpoold.log" ||
		fail "no rerun after the 401: $(grep -i 'exec\|401' "$CASE_OUT/vmpoold.log" | tail -5)" || return 1
	[ "$(exec_max_runs)" -ge 2 ] || fail "the plugin ran $(exec_max_runs) times" || return 1
	grep -q ' 1 --cluster test$' "$d/runs.log" || fail "args not passed: $(head -2 "$d/runs.log")" || return 1
	info=$(cat "$d"/info.* | head -1)
	expect_eq "$(jq -r .spec.cluster.server <<<"$info")" "https://127.0.0.1:$CLUSTER_PORT" "KUBERNETES_EXEC_INFO spec.cluster.server" || return 1
	expect_eq "$(jq -r '.apiVersion + " " + (.spec.interactive|tostring) + " " + (.spec.cluster["certificate-authority-data"] | length > 100 | tostring)' <<<"$info")" \
		"client.authentication.k8s.io/v1 false true" "KUBERNETES_EXEC_INFO" || return 1
	expect_eq "$(cat "$d"/mode.* | sort -u)" "e2e" "env from the kubeconfig" || return 1
	# the first real token expires 20 s after it was issued: a scale after that needs the second
	wait_until 60 time_past $((EXEC_T0 + 25)) || return 1
	kc scale vmpool ep --replicas 3 >/dev/null || return 1
	wait_until 60 converged ep 3 || fail "scale to 3 after the token expired: $(kc get vmpool,vm 2>&1)" || return 1
	grep -q 'the credential expired, running it again' "$CASE_OUT/vmpoold.log" ||
		fail "no rerun at expiry: $(grep -i 'exec' "$CASE_OUT/vmpoold.log" | tail -5)" || return 1
	[ "$(exec_max_runs)" -ge 3 ] || fail "the plugin ran $(exec_max_runs) times, want 3 (refused, expired)" || return 1
	wait_until 20 vm_creator_known ep-2 || fail "ep-2's create not in the audit log" || return 1
	expect_eq "$(vm_creator ep-2)" "vmpoold-admin2" "ep-2 created with the rotated token" || return 1
	[ "$(writes_by vmpoold-admin)" -ge 1 ] || fail "no write with the first token" || return 1
	# a plugin that is missing: the stage waits and says why, with the install hint
	sed "s#command: ./plugin.sh#command: ./missing-plugin#" "$d/kubeconfig" >"$d/missing.kubeconfig"
	"$BIN/vmpool-watcher" --kubeconfig "$d/missing.kubeconfig" --namespace "$NS" --run-dir "$CASE_OUT/run-missing" \
		>"$CASE_OUT/missing.log" 2>&1 &
	local pid=$!
	wait_until 30 grep -q 'missing-plugin: cannot run it: No such file or directory: plugin.sh is part of the test' "$CASE_OUT/missing.log"
	local rc=$?
	kill -TERM "$pid"; wait "$pid"
	[ "$rc" -eq 0 ] || fail "no clear line for a missing plugin: $(tail -3 "$CASE_OUT/missing.log")" || return 1
}

# KUBECONFIG=a:b: the context, user and current-context in a, the cluster (with tls-server-name
# for the name in the API server's certificate, the URL naming 127.0.0.1) in b
setup_kubeconfig_list() {
	local d=$CASE_OUT/kc
	mkdir -p "$d"
	cp "$VMPOOLD_CLUSTER_DIR/token" "$d/token"
	cat >"$d/a.yaml" <<KC
apiVersion: v1
kind: Config
users:
- name: u
  user: {tokenFile: token}
contexts:
- name: c
  context: {cluster: c, user: u, namespace: somewhere}
current-context: c
KC
	cat >"$d/b.yaml" <<KC
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:$CLUSTER_PORT
    certificate-authority: $VMPOOLD_CLUSTER_DIR/ca.crt
    tls-server-name: kubernetes.default.svc
- name: c2
  cluster: {server: "https://127.0.0.1:1"}
current-context: c2
KC
	VMPOOLD_KUBECONFIG_LIST=$d/a.yaml:$d/b.yaml
}
teardown_kubeconfig_list() { unset VMPOOLD_KUBECONFIG_LIST; }

case_kubeconfig_list() {
	local d=$CASE_OUT/kc
	grep -q "API server https://127.0.0.1:$CLUSTER_PORT (from KUBECONFIG=" "$CASE_OUT/vmpoold.log" ||
		wait_until 10 grep -q "API server https://127.0.0.1:$CLUSTER_PORT (from KUBECONFIG=" "$CASE_OUT/vmpoold.log" ||
		fail "not the merged configuration: $(grep 'API server' "$CASE_OUT/vmpoold.log" | head -2)" || return 1
	make_pool kl 2 | kc apply -f - >/dev/null || return 1
	wait_until 60 converged kl 2 || fail "pool did not converge: $(kc get vmpool,vm 2>&1)" || return 1
	# kubectl reads the same list the same way
	expect_eq "$(KUBECONFIG=$VMPOOLD_KUBECONFIG_LIST kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')" \
		"https://127.0.0.1:$CLUSTER_PORT" "kubectl's view of the list" || return 1
	# a name the certificate does not carry: refused by the certificate check
	sed "s#tls-server-name: kubernetes.default.svc#tls-server-name: not-the-apiserver.example#" \
		"$d/b.yaml" >"$d/b-wrong.yaml"
	KUBECONFIG=$d/a.yaml:$d/b-wrong.yaml "$BIN/vmpool-watcher" --namespace "$NS" \
		--run-dir "$CASE_OUT/run-wrong" >"$CASE_OUT/wrong-name.log" 2>&1 &
	local pid=$!
	wait_until 30 grep -qi "not-the-apiserver.example\|certificate subject name\|does not match" "$CASE_OUT/wrong-name.log"
	local rc=$?
	kill -TERM "$pid"; wait "$pid"
	[ "$rc" -eq 0 ] || fail "a wrong tls-server-name was not refused: $(tail -3 "$CASE_OUT/wrong-name.log")" || return 1
	grep -qi "SSL\|certificate" "$CASE_OUT/wrong-name.log" ||
		fail "no certificate error: $(tail -3 "$CASE_OUT/wrong-name.log")" || return 1
}

# client certificates (the API server trusts the cluster CA for them): one given as data in
# the kubeconfig (curl's *_BLOB options, an EC key in PKCS#8) and one as files (an RSA key in
# PKCS#1), the CA as data too; the user is the certificate's CN, in group system:masters
client_cert() { # DIR NAME KEYARGS...: DIR/NAME.crt and DIR/NAME.key
	local d=$1 n=$2
	shift 2
	openssl req -new -newkey "$@" -nodes -subj "/O=system:masters/CN=$n" -keyout "$d/$n.key" \
		-out "$d/$n.csr" >/dev/null 2>&1 &&
		openssl x509 -req -in "$d/$n.csr" -CA "$VMPOOLD_CLUSTER_DIR/ca.crt" \
			-CAkey "$VMPOOLD_CLUSTER_DIR/ca.key" -CAcreateserial -CAserial "$d/ca.srl" -days 2 \
			-out "$d/$n.crt" >/dev/null 2>&1
}
# one_kubeconfig CA USER: a kubeconfig of one cluster (the test cluster, CA the YAML line
# for its CA) and one user (USER its YAML lines), the context naming both
one_kubeconfig() {
	printf 'apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n%s\n%s\nusers:\n- name: u\n  user:\n%s\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n' \
		"    server: https://127.0.0.1:$CLUSTER_PORT" "$1" "$2"
}
setup_kubeconfig_client_cert() {
	local d=$CASE_OUT/cert
	mkdir -p "$d"
	client_cert "$d" vmpoold-certdata ec -pkeyopt ec_paramgen_curve:P-256 || return 1
	client_cert "$d" vmpoold-certfile rsa:2048 || return 1
	openssl rsa -in "$d/vmpoold-certfile.key" -traditional -out "$d/vmpoold-certfile.key" 2>/dev/null || return 1
	grep -q 'BEGIN PRIVATE KEY' "$d/vmpoold-certdata.key" && grep -q 'BEGIN RSA PRIVATE KEY' "$d/vmpoold-certfile.key" || return 1
	one_kubeconfig "    certificate-authority-data: $(base64 -w0 "$VMPOOLD_CLUSTER_DIR/ca.crt")" \
		"    client-certificate-data: $(base64 -w0 "$d/vmpoold-certdata.crt")
    client-key-data: $(base64 -w0 "$d/vmpoold-certdata.key")" >"$d/data.kubeconfig"
	one_kubeconfig "    certificate-authority: $VMPOOLD_CLUSTER_DIR/ca.crt" \
		"    {client-certificate: vmpoold-certfile.crt, client-key: vmpoold-certfile.key}" \
		>"$d/files.kubeconfig"
	VMPOOLD_KUBECONFIG=$d/data.kubeconfig
}
teardown_kubeconfig_client_cert() { unset VMPOOLD_KUBECONFIG; }

case_kubeconfig_client_cert() {
	local d=$CASE_OUT/cert pid rc
	make_pool cc 2 | kc apply -f - >/dev/null || return 1
	wait_until 60 converged cc 2 || fail "pool did not converge with the certificate given as data: $(kc get vmpool,vm 2>&1)" || return 1
	wait_until 20 vm_creator_known cc-1 || fail "cc-1's create not in the audit log" || return 1
	expect_eq "$(vm_creator cc-1)" "vmpoold-certdata" "cc-1 created as the certificate's user" || return 1
	# the files: a list answered 200 (anonymous would be 403) over HTTP/2 (ALPN)
	"$BIN/vmpool-watcher" --kubeconfig "$d/files.kubeconfig" --namespace "$NS" --v 4 \
		--run-dir "$CASE_OUT/run-files" >"$CASE_OUT/files.log" 2>&1 &
	pid=$!
	wait_until 30 grep -q 'GET /apis/kubevirt.io/v1/namespaces/[^ ]*/virtualmachines?[^ ]*: 200 in [0-9.]*s, HTTP/2' "$CASE_OUT/files.log"
	rc=$?
	kill -TERM "$pid"; wait "$pid"
	[ "$rc" -eq 0 ] || fail "no list over HTTP/2 with the certificate files: $(grep -i 'virtualmachines\|error\|ssl' "$CASE_OUT/files.log" | tail -3)" || return 1
}

# what we do not do: exit 78 at start, naming it
case_kubeconfig_refused() {
	local f=$CASE_OUT/refused.kubeconfig rc what msg
	for what in "auth-provider: {name: oidc}|auth-provider \"oidc\" is not supported" \
		"exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: x}|exec apiVersion \"client.authentication.k8s.io/v1alpha1\" is not supported" \
		"{username: a, password: b}|username/password (basic authentication) is not supported"; do
		cat >"$f" <<KC
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:$CLUSTER_PORT"}
users:
- name: u
  user:
    ${what%%|*}
contexts:
- name: c
  context: {cluster: c, user: u}
current-context: c
KC
		rc=0
		timeout 20 "$BIN/vmpoold" --kubeconfig "$f" --run-dir "$CASE_OUT/run-refused" >"$CASE_OUT/refused.log" 2>&1 || rc=$?
		expect_eq "$rc" "78" "exit code for ${what%%|*}" || return 1
		# the message is quoted in the log line (klog): its " come out as \"
		msg=${what#*|}
		grep -qF -e "$msg" -e "${msg//\"/\\\"}" "$CASE_OUT/refused.log" ||
			fail "no message naming it: $(tail -3 "$CASE_OUT/refused.log")" || return 1
	done
}

# ---- both pool API versions (issue 11, item 5) ----
POOL_CRD=crd/virtualmachinepools.pool.kubevirt.io

# pool_crd_serve V1ALPHA1 V1BETA1 (true|false each): which versions KubeVirt's installed pool
# CRD serves; storage stays on a served one (v1alpha1 alone: as on KubeVirt up to v1.6)
pool_crd_serve() {
	kubectl get "$POOL_CRD" -o json | jq --argjson a "$1" --argjson b "$2" '.spec.versions |= map(
		if .name == "v1alpha1" then .served = $a | .storage = ($a and ($b | not))
		else .served = $b | .storage = ($b or ($a | not)) end)' | kubectl replace -f - >/dev/null || return 1
	# kubectl's discovery cache for this cluster would still name the old versions
	rm -rf "$HOME/.kube/cache/discovery/127.0.0.1_$CLUSTER_PORT"
}
# the versions discovery lists for the group, e.g. "v1alpha1" or "v1beta1 v1alpha1", or 404
pool_served() {
	local g
	g=$(kubectl get --raw /apis/pool.kubevirt.io 2>/dev/null) || { echo 404; return; }
	jq -r '[.versions[].version] | join(" ")' <<<"$g"
}
owner_api_versions() { kc get vm -o json | jq -c '[.items[].metadata.ownerReferences[0].apiVersion] | unique'; }

# a control plane serving pools at v1alpha1 only: the pool converges, VMs are owned at
# v1alpha1; v1beta1 served later is picked up at the watcher's next relist (a restart here),
# new VMs then name v1beta1 and the v1alpha1-owned ones stay the pool's
setup_pool_v1alpha1() {
	pool_crd_serve true false && wait_eq 30 v1alpha1 pool_served
}
teardown_pool_v1alpha1() { pool_crd_serve true true; wait_eq 30 "v1beta1 v1alpha1" pool_served; }

case_pool_v1alpha1() {
	make_pool pa 2 | kc apply -f - >/dev/null || return 1
	wait_until 60 converged pa 2 || fail "pool did not converge on v1alpha1: $(kc get vmpool,vm 2>&1)" || return 1
	grep -q 'virtualmachinepools: using pool.kubevirt.io/v1alpha1 (served: v1alpha1)' "$CASE_OUT/vmpoold.log" ||
		fail "no line about the version: $(grep -i 'pool.kubevirt.io' "$CASE_OUT/vmpoold.log" | head -3)" || return 1
	expect_eq "$(owner_api_versions)" '["pool.kubevirt.io/v1alpha1"]' "owner references" || return 1
	expect_eq "$(kc get vmpool pa -o jsonpath='{.metadata.finalizers}')" "[\"$FINALIZER\"]" "pool finalizer (patched at v1alpha1)" || return 1
	# v1beta1 appears; the watcher restarts (relists) and switches
	pool_crd_serve true true && wait_eq 30 "v1beta1 v1alpha1" pool_served || fail "v1beta1 not served again" || return 1
	local w; w=$(stage_pid vmpool-watcher)
	kill -9 "$w"
	wait_until 30 grep -q 'virtualmachinepools: using pool.kubevirt.io/v1beta1' "$CASE_OUT/vmpoold.log" ||
		fail "the restarted watcher did not switch to v1beta1" || return 1
	kc scale vmpool pa --replicas 3 >/dev/null || return 1
	wait_until 60 converged pa 3 || fail "scale to 3 after the switch: $(kc get vmpool,vm 2>&1)" || return 1
	expect_eq "$(vm_names)" "pa-0 pa-1 pa-2" "VM names (none replaced)" || return 1
	expect_eq "$(kc get vm pa-2 -o jsonpath='{.metadata.ownerReferences[0].apiVersion}')" "pool.kubevirt.io/v1beta1" "new VM's owner reference" || return 1
	expect_eq "$(kc get vm pa-0 -o jsonpath='{.metadata.ownerReferences[0].apiVersion}')" "pool.kubevirt.io/v1alpha1" "old VM's owner reference kept" || return 1
	# scale-in still finds the v1alpha1-owned VMs its own
	kc scale vmpool pa --replicas 1 >/dev/null || return 1
	wait_until 60 converged pa 1 || fail "scale to 1 with mixed owner references: $(kc get vmpool,vm 2>&1)" || return 1
}

# a control plane serving no pool version: not ready, a clear warning, retried; picked up
# once the CRD serves again
setup_pool_api_missing() { pool_crd_serve false false && wait_eq 30 404 pool_served; }
teardown_pool_api_missing() { pool_crd_serve true true; wait_eq 30 "v1beta1 v1alpha1" pool_served; }

watcher_readyz() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/readyz"; }

case_pool_api_missing() {
	# a watcher of our own, with its metrics port for /readyz
	stop_controller
	local port=$((CLUSTER_PORT + 2000)) pid
	"$BIN/vmpool-watcher" --kubeconfig "$KUBECONFIG" --namespace "$NS" --run-dir "$CASE_OUT/run-w" \
		--metrics-addr "127.0.0.1:$port" >"$CASE_OUT/watcher.log" 2>&1 &
	pid=$!
	wait_until 30 grep -q 'the API server does not serve the group pool.kubevirt.io (404); is the CRD installed?: not ready; retrying with backoff' "$CASE_OUT/watcher.log" ||
		{ kill "$pid"; fail "no warning: $(tail -3 "$CASE_OUT/watcher.log")"; return 1; }
	grep 'does not serve the group' "$CASE_OUT/watcher.log" | grep -q '^W' || { kill "$pid"; fail "not a warning"; return 1; }
	wait_eq 10 503 watcher_readyz "$port" || { kill "$pid"; fail "readyz $(watcher_readyz "$port") while no version is served"; return 1; }
	pool_crd_serve true false
	wait_eq 60 200 watcher_readyz "$port" || { kill "$pid"; fail "not ready once v1alpha1 is served: $(tail -3 "$CASE_OUT/watcher.log")"; return 1; }
	grep -q 'using pool.kubevirt.io/v1alpha1' "$CASE_OUT/watcher.log" || { kill "$pid"; fail "did not pick v1alpha1"; return 1; }
	kill -TERM "$pid"; wait "$pid"
}

# proxy-url: every request of every stage through an HTTP CONNECT proxy (connect_proxy.py)
setup_kubeconfig_proxy() {
	local port=$((CLUSTER_PORT + 3000))
	python3 tests/e2e/connect_proxy.py "$port" "$CASE_OUT/proxy.log" >"$CASE_OUT/proxy.err" 2>&1 &
	PROXY_PID=$!
	sed "s#^\(    server: .*\)#\1\n    proxy-url: http://127.0.0.1:$port#" "$KUBECONFIG" >"$CASE_OUT/proxy.kubeconfig"
	VMPOOLD_KUBECONFIG=$CASE_OUT/proxy.kubeconfig
	grep -q proxy-url "$VMPOOLD_KUBECONFIG"
}
teardown_kubeconfig_proxy() {
	unset VMPOOLD_KUBECONFIG
	[ -n "${PROXY_PID:-}" ] && kill "$PROXY_PID" 2>/dev/null && wait "$PROXY_PID" 2>/dev/null
	PROXY_PID=""
	return 0
}

case_kubeconfig_proxy() {
	make_pool kp 2 | kc apply -f - >/dev/null || return 1
	wait_until 60 converged kp 2 || fail "pool did not converge through the proxy: $(kc get vmpool,vm 2>&1)" || return 1
	grep -q "^CONNECT 127.0.0.1:$CLUSTER_PORT\$" "$CASE_OUT/proxy.log" ||
		fail "no tunnel through the proxy: $(head -3 "$CASE_OUT/proxy.log" 2>&1)" || return 1
	# the watcher, the actuator and vmpool-status each opened one
	[ "$(wc -l <"$CASE_OUT/proxy.log")" -ge 3 ] || fail "only $(wc -l <"$CASE_OUT/proxy.log") tunnels" || return 1
}

#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2317 # eval strings expand later; functions run via trap/eval
# tests/bench/bench_cluster.sh: vmpoold against the real control plane (scripts/test-cluster.sh
# on its own port and state directory, brought up and down here).
# First the limits (issue 10): the API server's raw create and delete rates for VMs, measured
# with wrk (tests/bench/rawvm.lua: 2 threads, 16 HTTP/1.1 connections, in namespace raw)
# before and after vmpoold's runs (the higher rates count: other load on the machine varies):
# creates of the pool's VM body as vmpoold sends it (its owner reference, here to a ConfigMap,
# and the pool finalizer: the create limit the up ratio is measured against), creates and
# deletes of the same body without owner reference and finalizer (the delete limit: one write
# that removes the VM; and the plain create rate, printed for reference), and vmpoold scaling one pool
# 0 -> N -> 0 without the simulator, twice between them (the better of two runs on each side,
# every run printed): the time from the pool's new spec.replicas to status.replicas N (a
# watch of the pool), and to the N-th VM deletion (the audit log), against the
# time the raw rates give for N; the writes per VM from the audit log, and the ratios. Each
# phase also prints its timeline (first and last write of each kind, from the audit log) and
# the CPU it cost vmpoold's processes and the control plane (kube-apiserver, etcd,
# kube-controller-manager; the raw runs print theirs too): on a small machine the API
# server's CPU per VM is what the ratios come down to.
# Then the simulator starts and the pool is scaled 0 -> N -> 0 with vmpool-sim marking VMs
# ready at once; the script measures the time to readyReplicas N and back to 0, the API
# writes vmpoold made (from the apiserver's audit log), the idle cost of a converged pool,
# and each stage's peak RSS (VmHWM) and CPU time.
#
#   bash tests/bench/bench_cluster.sh
# Environment: BENCH_REPLICAS (default 500), BENCH_QPS / BENCH_BURST (vmpoold's and the
# simulator's --kube-api-qps / --kube-api-burst, default 500 / 1000), BENCH_IDLE (seconds,
# default 20), BIN (default bin), BENCH_KEEP=1 keeps the cluster and run dir, BENCH_RAW_SECONDS
# (wrk's create run, default 4; the delete run takes half), BENCH_LIMITS_ONLY=1 stops after the
# limits part (the raw rates and vmpoold's 0 -> N -> 0 against them), for quick iterations;
# BENCH_IDLE_BASE (seconds, default 5): the API server's idle CPU is measured that long before
# vmpoold's scale-out, to give the phases' CPU per VM net of it.
# BENCH_RAW_VARIANTS=1 first measures the API server's CPU per create variant by variant
# (issue 10: watch, owner reference and finalizer, HTTP/1.1 or HTTP/2; see below).
# Prints "bench <name>: <figure> <unit>" lines; exits non-zero when a phase times out.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
SHARED=${SHARED:-$ROOT/../shared}
BIN=${BIN:-bin}
N=${BENCH_REPLICAS:-500}
QPS=${BENCH_QPS:-500}
BURST=${BENCH_BURST:-1000}
IDLE=${BENCH_IDLE:-20}
NS=bench
POOL=bench
export VMPOOLD_CLUSTER_DIR=${VMPOOLD_CLUSTER_DIR:-/tmp/vmpoold-bench-$(id -u)}
export VMPOOLD_CLUSTER_PORT=${VMPOOLD_CLUSTER_PORT:-6643}
export KUBECONFIG=$VMPOOLD_CLUSTER_DIR/kubeconfig
AUDIT=$VMPOOLD_CLUSTER_DIR/audit.log
API=https://127.0.0.1:$VMPOOLD_CLUSTER_PORT
POOL_URL=/apis/pool.kubevirt.io/v1beta1/namespaces/$NS/virtualmachinepools/$POOL
VM_URL="/apis/kubevirt.io/v1/namespaces/$NS/virtualmachines?limit=1"
RUN=$(mktemp -d "${TMPDIR:-/tmp}/vmpoold-bench-run.XXXXXX")
STAGES=(vmpool-watcher vmpool-planner vmpool-actuator vmpool-status)
VMPOOLD_PID="" SIM_PID="" WATCH_PIDS=()

# shellcheck source=tests/bench/lib.sh
. tests/bench/lib.sh
log() { printf 'bench_cluster: %s\n' "$*" >&2; }
out() { printf 'bench %s\n' "$*"; }

for t in jq curl kubectl wrk; do
	command -v "$t" >/dev/null || { log "$t is missing (scripts/install-deps.sh)"; exit 1; }
done
for p in vmpoold vmpool-sim "${STAGES[@]}"; do
	[ -x "$BIN/$p" ] || { log "$BIN/$p is missing: run make"; exit 1; }
done
[ -f "$SHARED/crds/kubevirt-crds.yaml" ] || { log "$SHARED/crds/kubevirt-crds.yaml not found"; exit 1; }

cleanup() {
	[ ${#WATCH_PIDS[@]} -eq 0 ] || stop_streams
	stop_pid "$VMPOOLD_PID"
	stop_pid "$SIM_PID"
	cluster_cleanup "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pool_field() { api "$POOL_URL" | jq -r ".$1 // 0"; }
pool_ready_is() { [ "$(api "$POOL_URL" | jq -r '"\(.status.replicas // 0) \(.status.readyReplicas // 0)"')" = "$1 $1" ]; }
no_vms_left() { [ "$(api "$VM_URL" | jq -r '.items | length')" = 0 ]; }
pool_empty() { pool_ready_is 0 && no_vms_left; }
pool_initialised() {
	api "$POOL_URL" | jq -e '(.metadata.finalizers // [] | index("pool.kubevirt.io/finalizer")) != null
		and (.status.labelSelector // "") != ""' >/dev/null
}


declare -A PID CPU0
snap_pids() { local s; for s in vmpoold "${STAGES[@]}" sim; do PID[$s]=$(pid_of "$s"); done; PID[vmpoold]=$VMPOOLD_PID; PID[sim]=$SIM_PID; }
snap_cpu() { local s; for s in vmpoold "${STAGES[@]}" sim; do CPU0[$s]=$(cpu_ticks "${PID[$s]}"); done; cluster_snap; }
# cpu_since PHASE: per-process CPU seconds since the last snap_cpu
cpu_since() {
	local s now_t total=0 d
	for s in vmpoold "${STAGES[@]}"; do
		now_t=$(cpu_ticks "${PID[$s]}")
		d=$((${now_t:-0} - ${CPU0[$s]:-0}))
		total=$((total + d))
		out "${1}_cpu_${s#vmpool-}: $(ticks_s "$d") s"
	done
	out "${1}_cpu_total: $(ticks_s "$total") s (vmpoold + 4 stages; the simulator not counted)"
	cluster_cpu_since "$1"
	[ -n "$SIM_PID" ] || return 0
	d=$(($(cpu_ticks "$SIM_PID") - ${CPU0[sim]:-0}))
	out "${1}_cpu_sim: $(ticks_s "$d") s (vmpool-sim, for reference)"
}

# the control plane's CPU (kube-apiserver, etcd, kube-controller-manager): what a phase cost
# the server, beside what it cost vmpoold (the raw runs print theirs too)
CLUSTER_PARTS=(apiserver etcd controller-manager)
declare -A CCPU0
apiserver_ticks() { cpu_ticks "$(cat "$VMPOOLD_CLUSTER_DIR/apiserver.pid" 2>/dev/null)"; }
# per_vm_ms TICKS N: milliseconds of CPU per VM
per_vm_ms() { awk -v t="$1" -v hz="$HZ" -v n="$2" 'BEGIN { printf "%.2f", n ? 1000 * t / hz / n : 0 }'; }
cluster_snap() { local c; for c in "${CLUSTER_PARTS[@]}"; do CCPU0[$c]=$(cpu_ticks "$(cat "$VMPOOLD_CLUSTER_DIR/$c.pid" 2>/dev/null)"); done; }
cluster_cpu_since() {
	local c d line=""
	for c in "${CLUSTER_PARTS[@]}"; do
		d=$(($(cpu_ticks "$(cat "$VMPOOLD_CLUSTER_DIR/$c.pid" 2>/dev/null)") - ${CCPU0[$c]:-0}))
		line+="${line:+, }$c $(ticks_s "$d")"
	done
	out "${1}_cpu_cluster: $line s"
}

audit_mark() { stat -c %s "$AUDIT"; }
# writes PHASE OFFSET: vmpoold's completed writes in $NS since OFFSET, with a breakdown. The
# stages send their own program name as User-Agent (vmpool-actuator, vmpool-status), the
# shared default is vmpoold/<version>; vmpool-sim and kubectl are not counted.
writes() {
	local phase=$1 off=$2 lines total failed
	lines=$(tail -c +$((off + 1)) "$AUDIT" | jq -c --arg ns "$NS" '
		select(.stage == "ResponseComplete" and .objectRef.namespace == $ns)
		| select(.userAgent // "" | split(" ")[0] | split("/")[0]
			| IN("vmpoold", "vmpool-watcher", "vmpool-planner", "vmpool-actuator", "vmpool-status"))')
	total=$(printf '%s' "$lines" | grep -c .)
	failed=$(printf '%s' "$lines" | jq -s '[.[] | select(.responseStatus.code >= 400)] | length')
	out "${phase}_api_writes: $total writes ($failed failed)"
	WRITES_TOTAL=$total
	[ "$total" -gt 0 ] || return 0
	printf '%s\n' "$lines" | jq -r '"\(.verb) \(.objectRef.resource)\(if .objectRef.subresource then "/" + .objectRef.subresource else "" end) \(.responseStatus.code)"' |
		sort | uniq -c | sort -rn | while read -r c what; do
		out "${phase}_api_writes_by_kind: $c writes ($what)"
	done
}

scale_to() { kubectl -n "$NS" scale vmpool "$POOL" --replicas "$1" >/dev/null; }

pool_yaml() {
	sed -e "s/vm-pool-cirros/$POOL/g" -e 's/replicas: 3/replicas: 0/' examples/vm-pool-cirros.yaml
}

# ---- setup ----
log "starting the control plane in $VMPOOLD_CLUSTER_DIR (port $VMPOOLD_CLUSTER_PORT)"
bash scripts/test-cluster.sh down >/dev/null 2>&1
bash scripts/test-cluster.sh up >"$RUN/cluster.log" 2>&1 || { cat "$RUN/cluster.log" >&2; exit 1; }
kubectl create -f "$SHARED/crds/kubevirt-crds.yaml" >/dev/null || exit 1
kubectl wait --for condition=established --timeout=60s crd/virtualmachinepools.pool.kubevirt.io \
	crd/virtualmachines.kubevirt.io >/dev/null || exit 1
kubectl create namespace "$NS" >/dev/null || exit 1
poll_until 30 eval 'kubectl -n "$NS" get vmpool >/dev/null 2>&1' || { log "vmpool resource not served"; exit 1; }
pool_yaml | kubectl -n "$NS" apply -f - >/dev/null || exit 1

"$BIN/vmpoold" --kubeconfig "$KUBECONFIG" --namespace "$NS" --run-dir "$RUN" \
	--kube-api-qps "$QPS" --kube-api-burst "$BURST" >"$RUN/vmpoold.log" 2>&1 &
VMPOOLD_PID=$!
out "cluster_config: pool of the example VM template, 0 -> $N -> 0 replicas; vmpoold and vmpool-sim with --kube-api-qps $QPS --kube-api-burst $BURST, sim --ready-delay 0, planner --burst-replicas default; load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
poll_until 30 eval '[ "$(stage_pids | wc -l)" -eq 4 ]' || { log "vmpoold did not start 4 stages"; tail -20 "$RUN/vmpoold.log" >&2; exit 1; }
poll_until 30 pool_initialised || { log "pool never got its finalizer and status"; tail -20 "$RUN/vmpoold.log" >&2; exit 1; }
sleep 2

# ---- limits: raw rates, then vmpoold's 0 -> N -> 0 against them (no simulator) ----
RAW_NS=raw
RAW_S=${BENCH_RAW_SECONDS:-4}
RAW_URL=$API/apis/kubevirt.io/v1/namespaces/$RAW_NS/virtualmachines
# the pool's VM as vmpoold creates it, without the owner reference and finalizer (an owner
# that does not exist would have the garbage collector delete them; a finalizer would keep a
# deleted VM), named @NAME@ for rawvm.lua
raw_body() {
	pool_yaml | kubectl create --dry-run=client -o json -f - | jq -c '{apiVersion: "kubevirt.io/v1",
		kind: "VirtualMachine", metadata: (.spec.virtualMachineTemplate.metadata
		| del(.creationTimestamp) | .name = "@NAME@"), spec: .spec.virtualMachineTemplate.spec}'
}
raw_run() { # MODE SECONDS: "raw MODE ok N other M seconds S"
	RAW_MODE=$1 RAW_TOKEN=$(cat "$VMPOOLD_CLUSTER_DIR/token") RAW_BODY=${RAW_BODY:-$RUN/rawvm.json} \
		wrk -t2 -c16 -d"$2"s --timeout 10s -s tests/bench/rawvm.lua "$RAW_URL" | grep '^raw '
}
raw_field() { awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }' <<<"$1"; }
raw_left() { api "/apis/kubevirt.io/v1/namespaces/$RAW_NS/virtualmachines?limit=1" | jq -r '.items | length'; }
# watch_stream PATH FILE: one "EPOCHREALTIME EVENT-JSON" line per watch event, in the background
watch_stream() {
	(curl -sN --max-time 600 --cacert "$VMPOOLD_CLUSTER_DIR/ca.crt" \
		-H "Authorization: Bearer $(cat "$VMPOOLD_CLUSTER_DIR/token")" "$API$1" |
		while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done >"$2") &
	WATCH_PIDS+=("$!")
}
stop_streams() { local p; for p in "${WATCH_PIDS[@]}"; do pkill -P "$p" 2>/dev/null; kill "$p" 2>/dev/null; done; WATCH_PIDS=(); }
# watch_open FILE: open a watch_stream recording to be read as it grows by watch_replicas
watch_open() {
	[ -n "${SLEEP_FD:-}" ] || exec {SLEEP_FD}<> <(:) # a pipe nobody writes to: read -t sleeps on it
	exec {WATCH_FD}<"$1"
	WATCH_PART=
}
# watch_replicas SECONDS N: wait until the next events of the open recording show the pool's
# status.replicas at N (omitted when 0) and return 0, or 1 after SECONDS. Builtins only: while
# vmpoold's phase runs the bench forks nothing and asks the API server nothing, as nothing runs
# beside wrk in the raw runs. A poll of the pool (curl and jq, every 0.2 s) cost the 2 cores
# about 38 ms of CPU each, the API server's TLS handshake 4 ms of it: five or so polls took
# from the two cores, in a phase of a second, about what 50 creates cost the API server
# (issue 10). The server sorts an object's keys, so status is the last of them and its own
# "replicas" key the only one spelled so (readyReplicas is not).
watch_replicas() {
	local end=$((SECONDS + $1)) line rest
	while [ "$SECONDS" -lt "$end" ]; do
		if IFS= read -r line <&"$WATCH_FD"; then
			line=$WATCH_PART$line WATCH_PART=
			rest=${line#*'"status":{'}
			[ "$rest" != "$line" ] || continue
			if [ "$2" = 0 ]; then
				[[ $rest == *'"replicas":'* ]] || return 0
			fi
			[[ $rest == *'"replicas":'"$2"[,\}]* ]] && return 0
		else
			WATCH_PART+=$line # a line the stream has not finished writing
			read -r -t 0.05 -u "$SLEEP_FD" || :
		fi
	done
	return 1
}
watch_close() { exec {WATCH_FD}<&-; }
# first_time FILE JQ-CONDITION: the time of the first event of FILE whose object matches
first_time() {
	local t json
	while read -r t json; do
		jq -e ".object | $2" <<<"$json" >/dev/null 2>&1 && { echo "$t"; return 0; }
	done <"$1"
	return 1
}
# audit_times OFFSET JQ-CONDITION: stageTimestamps (epoch seconds, microseconds) of the
# completed writes in $NS since OFFSET that match, in the log's order
audit_times() {
	tail -c +$(($1 + 1)) "$AUDIT" | jq -r --arg ns "$NS" '
		def ts: capture("^(?<s>[^.Z]+)(\\.(?<f>[0-9]+))?Z$") as $c |
			(($c.s + "Z") | fromdate) + (("0." + ($c.f // "0")) | tonumber);
		select(.stage == "ResponseComplete" and .objectRef.namespace == $ns and ('"$2"'))
		| .stageTimestamp | ts | tostring'
}
# timeline PHASE OFFSET: when vmpoold's writes since OFFSET went, in seconds after the scale
# (kubectl's patch of the scale subresource), from the audit log: the first and last of each
# kind, so a slow phase shows where its time went
timeline() {
	local off=$2 t0 what verb res first last n ts
	t0=$(audit_times "$off" '.objectRef.subresource == "scale"' | head -1)
	[ -n "$t0" ] || return 0
	for what in "create virtualmachines" "delete virtualmachines" "patch virtualmachines" \
		"patch virtualmachinepools/status" "create events"; do
		verb=${what% *} res=${what#* }
		mapfile -t ts < <(audit_times "$off" '.verb == "'"$verb"'" and (.userAgent | startswith("vmpool"))
			and (.objectRef.resource + (if .objectRef.subresource then "/" + .objectRef.subresource else "" end)) == "'"$res"'"')
		n=${#ts[@]}
		[ "$n" -gt 0 ] || continue
		first=$(elapsed "$t0" "${ts[0]}")
		last=$(elapsed "$t0" "${ts[$((n - 1))]}")
		out "${1}_timeline: $n x $what from +$first s to +$last s after the scale"
	done
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# curl_many URLS CURL-OPTION...: one request per "url" line of the config file URLS, by curl's
# parallel mode with the bearer token; prints "CODE HTTP-VERSION" per request
curl_many() {
	local urls=$1
	shift
	curl -s --no-progress-meter -Z --cacert "$VMPOOLD_CLUSTER_DIR/ca.crt" \
		-H "Authorization: Bearer $(cat "$VMPOOLD_CLUSTER_DIR/token")" "$@" \
		-w '%{http_code} %{http_version}\n' -K "$urls"
}
# raw_urls JQ-CONDITION: a curl config of the VMs of $RAW_NS that match, one url each
raw_urls() {
	API_TIMEOUT=30 api "/apis/kubevirt.io/v1/namespaces/$RAW_NS/virtualmachines" |
		jq -r --arg u "$RAW_URL" '.items[] | select('"$1"') | "url = \"\($u)/\(.metadata.name)\"\noutput = /dev/null"'
}
# raw_clear: remove every VM of $RAW_NS, by name and 16 at a time (a DELETE of the collection
# deletes one by one and can take minutes): the finalizers patched away where there are
# some (the owner variants), then the deletes, until none is left
raw_clear() {
	local end=$((SECONDS + 180))
	until [ "$(raw_left)" = 0 ]; do
		[ "$SECONDS" -lt "$end" ] || { log "raw VMs not gone"; return 1; }
		raw_urls .metadata.finalizers >"$RUN/rawfin"
		[ ! -s "$RUN/rawfin" ] || curl_many "$RUN/rawfin" --parallel-max 16 -X PATCH \
			-H 'Content-Type: application/merge-patch+json' -d '{"metadata":{"finalizers":null}}' >/dev/null
		raw_urls '.metadata.deletionTimestamp == null' >"$RUN/rawdel"
		[ ! -s "$RUN/rawdel" ] || curl_many "$RUN/rawdel" --parallel-max 16 -X DELETE >/dev/null
		sleep 0.5
	done
}
kubectl create namespace "$RAW_NS" >/dev/null || exit 1
raw_body >"$RUN/rawvm.json" || exit 1
# raw_measure N: one create run and one delete run with wrk, then the rest deleted; prints the
# lines and keeps the higher rates in RAW_C / RAW_D (the machine's load varies: the raw
# limits are measured before and after vmpoold's runs, and the better of the two is used)
RAW_C=0 RAW_D=0 RAW_O=0
raw_measure() {
	local c d o rc rd ro t0
	cluster_snap
	t0=$(apiserver_ticks)
	c=$(raw_run create "$RAW_S") || { log "wrk create failed"; return 1; }
	cluster_cpu_since "raw_create_$1"
	out "raw_create_$1_apiserver_per_vm: $(per_vm_ms $(($(apiserver_ticks) - t0)) "$(raw_field "$c" ok)") ms of kube-apiserver CPU per create"
	cluster_snap
	d=$(raw_run delete $((RAW_S > 3 ? RAW_S / 2 : 2))) || { log "wrk delete failed"; return 1; }
	cluster_cpu_since "raw_delete_$1"
	kubectl -n "$RAW_NS" delete vm --all --wait=false >/dev/null 2>&1
	poll_until 120 eval '[ "$(raw_left)" = 0 ]' || { log "raw VMs not gone"; return 1; }
	rc=$(ratio "$(raw_field "$c" ok)" "$(raw_field "$c" seconds)")
	rd=$(ratio "$(raw_field "$d" ok)" "$(raw_field "$d" seconds)")
	out "raw_create_rate_$1: $rc VMs/s (wrk, 2 threads, 16 HTTP/1.1 connections, the pool's VM body without owner reference and finalizer: $(raw_field "$c" ok) created, $(raw_field "$c" other) other answers in $(raw_field "$c" seconds) s)"
	out "raw_delete_rate_$1: $rd VMs/s (wrk, the same connections, deleting those VMs: $(raw_field "$d" ok) deleted, $(raw_field "$d" other) other answers in $(raw_field "$d" seconds) s)"
	[ "$(raw_field "$d" other)" = 0 ] || log "the delete run ran out of VMs or failed some: its rate is a lower bound"
	# the same run with the body exactly as vmpoold sends it: the like-for-like create limit
	cluster_snap
	t0=$(apiserver_ticks)
	o=$(RAW_BODY=$RUN/rawowner.json raw_run create "$RAW_S") || { log "wrk create (owned) failed"; return 1; }
	cluster_cpu_since "raw_create_owned_$1"
	out "raw_create_owned_$1_apiserver_per_vm: $(per_vm_ms $(($(apiserver_ticks) - t0)) "$(raw_field "$o" ok)") ms of kube-apiserver CPU per create"
	raw_clear || return 1
	ro=$(ratio "$(raw_field "$o" ok)" "$(raw_field "$o" seconds)")
	out "raw_create_owned_rate_$1: $ro VMs/s (wrk as above, the pool's VM body as vmpoold sends it: with its owner reference, here to a ConfigMap, and the pool finalizer: $(raw_field "$o" ok) created, $(raw_field "$o" other) other answers in $(raw_field "$o" seconds) s)"
	RAW_C=$(awk -v a="$RAW_C" -v b="$rc" 'BEGIN { print (b > a ? b : a) }')
	RAW_D=$(awk -v a="$RAW_D" -v b="$rd" 'BEGIN { print (b > a ? b : a) }')
	RAW_O=$(awk -v a="$RAW_O" -v b="$ro" 'BEGIN { print (b > a ? b : a) }')
}
# the same VM as vmpoold creates it: its owner reference (to a ConfigMap in raw, which the
# garbage collector leaves alone) and the pool finalizer
owner_uid=$(kubectl -n "$RAW_NS" create configmap raw-owner -o jsonpath='{.metadata.uid}') || exit 1
jq -c --arg uid "$owner_uid" --arg fin "pool.kubevirt.io/finalizer" '.metadata += {finalizers: [$fin],
	ownerReferences: [{apiVersion: "v1", kind: "ConfigMap", name: "raw-owner", uid: $uid,
	controller: true, blockOwnerDeletion: true}]}' "$RUN/rawvm.json" >"$RUN/rawowner.json" || exit 1
raw_measure 1 || exit 1

# ---- issue 10: what one create costs the API server, variant by variant ----
# BENCH_RAW_VARIANTS=1 measures, after the first raw run, the kube-apiserver CPU per create of
# the same VM with one thing changed at a time, and stops: wrk as above; wrk with a watch of
# namespace raw open (the server serializes every event for each watcher); wrk with vmpoold's
# request headers; wrk with the
# owner reference and finalizer vmpoold's VMs carry (owner: a ConfigMap in raw, so the
# garbage collector keeps them); curl's parallel mode over 16 HTTP/1.1 connections and over
# one HTTP/2 connection (64 and 16 streams), with vmpoold's request headers, generateName
# naming. The limits part then prints vmpoold's own figure (limits_up_apiserver_per_vm).
# variant_line NAME TICKS CREATED SECONDS WHAT
variant_line() {
	out "raw_variant_$1: $(per_vm_ms "$2" "$3") ms of kube-apiserver CPU per create ($3 created in $4 s, apiserver $(ticks_s "$2") s; $5)"
}
# variant_wrk NAME BODY WHAT: wrk's create run with BODY, its CPU per create
variant_wrk() {
	local c t0
	cluster_snap
	t0=$(apiserver_ticks)
	c=$(RAW_BODY=$2 raw_run create "$RAW_S") || { log "wrk create failed"; return 1; }
	cluster_cpu_since "raw_variant_$1"
	variant_line "$1" $(($(apiserver_ticks) - t0)) "$(raw_field "$c" ok)" "$(raw_field "$c" seconds)" "$3"
}
# variant_watched NAME BODY WHAT: variant_wrk with a watch of the VMs of $RAW_NS open
variant_watched() {
	local rc
	curl -sN --max-time 600 --cacert "$VMPOOLD_CLUSTER_DIR/ca.crt" -o /dev/null \
		-H "Authorization: Bearer $(cat "$VMPOOLD_CLUSTER_DIR/token")" \
		"$API/apis/kubevirt.io/v1/namespaces/$RAW_NS/virtualmachines?watch=1" &
	WATCH_PIDS+=("$!")
	sleep 0.5
	variant_wrk "$@"
	rc=$?
	stop_streams
	return "$rc"
}
# variant_curl NAME HTTP-OPTION PARALLEL N: N creates by curl's parallel mode, vmpoold's headers
variant_curl() {
	local t0 a b codes i
	for ((i = 0; i < $4; i++)); do printf 'url = "%s"\noutput = /dev/null\n' "$RAW_URL"; done >"$RUN/rawurls"
	cluster_snap
	t0=$(apiserver_ticks)
	a=$(now)
	codes=$(curl_many "$RUN/rawurls" --parallel-max "$3" "$2" -H 'Accept: application/json' \
		-H 'Content-Type: application/json' -H 'Expect:' -A 'vmpoold/bench' --compressed \
		--data-binary @"$RUN/rawgen.json")
	b=$(now)
	cluster_cpu_since "raw_variant_$1"
	variant_line "$1" $(($(apiserver_ticks) - t0)) "$(grep -c '^201 ' <<<"$codes")" "$(elapsed "$a" "$b")" \
		"curl $2, $3 in parallel, HTTP versions answered: $(awk '{ print $2 }' <<<"$codes" | sort | uniq -c | xargs)"
}
if [ "${BENCH_RAW_VARIANTS:-0}" = 1 ]; then
	jq -c '.metadata |= (del(.name) | .generateName = "rawc-")' "$RUN/rawvm.json" >"$RUN/rawgen.json" || exit 1
	variant_wrk wrk "$RUN/rawvm.json" "wrk as raw_create, nobody watching" && raw_clear || exit 1
	RAW_HEADERS=vmpoold variant_wrk headers "$RUN/rawvm.json" "wrk with vmpoold's Accept, Accept-Encoding and User-Agent" &&
		raw_clear || exit 1
	variant_watched watch "$RUN/rawvm.json" "wrk, one watch of namespace $RAW_NS open" && raw_clear || exit 1
	variant_wrk owner "$RUN/rawowner.json" "wrk, vmpoold's owner reference (to a ConfigMap) and finalizer" &&
		raw_clear || exit 1
	variant_watched owner_watch "$RUN/rawowner.json" "wrk, owner reference and finalizer, one watch open" &&
		raw_clear || exit 1
	variant_curl curl_h1 --http1.1 16 2000 && raw_clear || exit 1
	variant_curl curl_h2 --http2 64 2000 && raw_clear || exit 1
	variant_curl curl_h2_16 --http2 16 2000 && raw_clear || exit 1
fi

POOL_WATCH="/apis/pool.kubevirt.io/v1beta1/namespaces/$NS/virtualmachinepools?watch=1&fieldSelector=metadata.name%3D$POOL"
# the API server's CPU with vmpoold converged and idle, per second: the phases' per-VM figures
# below are also given net of it (their windows include the waits)
a=$(now) api0=$(apiserver_ticks)
sleep "${BENCH_IDLE_BASE:-5}"
api_idle=$(awk -v t=$(($(apiserver_ticks) - api0)) -v a="$a" -v b="$(now)" 'BEGIN { print t / (b - a) }')
out "limits_idle_apiserver: $(awk -v r="$api_idle" -v hz="$HZ" 'BEGIN { printf "%.3f", r / hz }') s of kube-apiserver CPU per second (vmpoold converged, before the scale)"
# apiserver_per_vm PHASE TICKS0 T0 N WHAT: the phase's kube-apiserver CPU per VM, and net of idle
apiserver_per_vm() {
	local t w
	t=$(($(apiserver_ticks) - $2))
	w=$(awk -v a="$3" -v b="$(now)" 'BEGIN { print b - a }')
	out "${1}_apiserver_per_vm: $(per_vm_ms "$t" "$4") ms of kube-apiserver CPU per VM ($4 $5, the phase's $(ticks_s "$t") s in $(printf '%.1f' "$w") s; net of the idle rate: $(per_vm_ms "$(awk -v t="$t" -v r="$api_idle" -v w="$w" 'BEGIN { print t - r * w }')" "$4") ms)"
}
# limits_lines PHASE OFFSET API-TICKS0 T0 WHAT: a phase's writes (WRITES_TOTAL), timeline and CPU
limits_lines() {
	writes "$1" "$2"
	timeline "$1" "$2"
	cpu_since "$1"
	apiserver_per_vm "$1" "$3" "$4" "$N" "$5"
}
# limits_round R: vmpoold's 0 -> N -> 0, its lines suffixed _R; the times in UP_S[R] and
# DOWN_S[R], the writes in UP_W[R] and DOWN_W[R]
declare -A UP_S DOWN_S UP_W DOWN_W
limits_round() {
	local r=$1 off api0 a0 t0 t1
	watch_stream "$POOL_WATCH" "$RUN/limits-up-$r.pool"
	sleep 1
	watch_open "$RUN/limits-up-$r.pool"
	snap_pids
	snap_cpu
	api0=$(apiserver_ticks) a0=$(now)
	off=$(audit_mark)
	scale_to "$N" || return 1
	watch_replicas 120 "$N" || { log "limits: status.replicas never reached $N"; return 1; }
	sleep 2
	t0=$(first_time "$RUN/limits-up-$r.pool" ".spec.replicas == $N") &&
		t1=$(first_time "$RUN/limits-up-$r.pool" ".status.replicas == $N") || { log "limits: no watch events"; return 1; }
	limits_lines "limits_up_$r" "$off" "$api0" "$a0" creates
	UP_W[$r]=$WRITES_TOTAL
	UP_S[$r]=$(elapsed "$t0" "$t1")
	out "limits_up_seconds_$r: ${UP_S[$r]} s (spec.replicas $N to status.replicas $N, from a watch of the pool; no simulator)"

	snap_cpu
	api0=$(apiserver_ticks) a0=$(now)
	off=$(audit_mark)
	scale_to 0 || return 1
	# the same recording on: its next events are the scale-in's
	watch_replicas 120 0 && poll_until 120 pool_empty || { log "limits: the pool never got back to 0"; return 1; }
	watch_close
	stop_streams
	sleep 2
	# from the audit log, to the microsecond: the scale (kubectl's patch of the scale
	# subresource) and the last write of vmpoold to a VM (the one that made the last VM go)
	t0=$(audit_times "$off" '.objectRef.subresource == "scale"' | head -1)
	t1=$(audit_times "$off" '.objectRef.resource == "virtualmachines" and (.userAgent | startswith("vmpoold"))' | tail -1)
	[ -n "$t0" ] && [ -n "$t1" ] || { log "limits: no scale or VM writes in the audit log"; return 1; }
	limits_lines "limits_down_$r" "$off" "$api0" "$a0" removals
	DOWN_W[$r]=$WRITES_TOTAL
	DOWN_S[$r]=$(elapsed "$t0" "$t1")
	out "limits_down_seconds_$r: ${DOWN_S[$r]} s (kubectl scale to the last VM gone, from the audit log; no simulator)"
}
# two rounds, as the raw limits are measured twice: the machine's load varies by the second,
# and the better of two runs is taken on both sides
limits_round 1 || exit 1
limits_round 2 || exit 1
raw_measure 2 || exit 1
best() { awk -v a="$1" -v b="$2" 'BEGIN { print (a < b ? a : b) }'; }
most() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b ? a : b) }'; }
up_s=$(best "${UP_S[1]}" "${UP_S[2]}")
down_s=$(best "${DOWN_S[1]}" "${DOWN_S[2]}")
up_w=$(most "${UP_W[1]}" "${UP_W[2]}")
down_w=$(most "${DOWN_W[1]}" "${DOWN_W[2]}")
out "limits_up_seconds: $up_s s (the better of the two rounds: ${UP_S[1]} s, ${UP_S[2]} s)"
out "limits_up_writes_per_vm: $(ratio "$up_w" "$N") writes per VM ($up_w writes for $N VMs, the round with more; target <= 1.05)"
out "limits_down_seconds: $down_s s (the better of the two rounds: ${DOWN_S[1]} s, ${DOWN_S[2]} s)"
out "limits_down_writes_per_vm: $(ratio "$down_w" "$N") writes per VM ($down_w writes for $N VMs, the round with more; target <= 2.05)"
out "raw_create_rate: $RAW_C VMs/s (the higher of the two runs)"
out "raw_delete_rate: $RAW_D VMs/s (the higher of the two runs)"
out "raw_create_owned_rate: $RAW_O VMs/s (the higher of the two runs)"
raw_up=$(ratio "$N" "$RAW_O")
raw_plain=$(ratio "$N" "$RAW_C")
raw_down=$(ratio "$N" "$RAW_D")
out "raw_create_seconds: $raw_up s ($N VMs at the raw create rate of vmpoold's VM body); $raw_plain s (at the rate of the body without owner reference and finalizer)"
out "raw_delete_seconds: $raw_down s ($N VMs at the raw delete rate)"
for r in 1 2; do
	out "limits_ratios_$r: up $(ratio "${UP_S[$r]}" "$raw_up") x, down $(ratio "${DOWN_S[$r]}" "$raw_down") x (round $r)"
done
out "limits_up_ratio: $(ratio "$up_s" "$raw_up") x the raw create limit ($up_s s / $raw_up s, the same VM body; target <= 1.10)"
out "limits_up_ratio_plain: $(ratio "$up_s" "$raw_plain") x the raw create rate of the body without owner reference and finalizer ($up_s s / $raw_plain s)"
out "limits_down_ratio: $(ratio "$down_s" "$raw_down") x the raw delete limit ($down_s s / $raw_down s; target <= 2.2)"
if [ "${BENCH_LIMITS_ONLY:-0}" = 1 ]; then
	grep -E 'AddressSanitizer|runtime error:|fatal' "$RUN"/*.log >&2 && exit 1
	exit 0
fi

"$BIN/vmpool-sim" --kubeconfig "$KUBECONFIG" --namespace "$NS" --ready-delay 0 \
	--kube-api-qps "$QPS" --kube-api-burst "$BURST" >"$RUN/sim.log" 2>&1 &
SIM_PID=$!
sleep 2
snap_pids
for s in "${!PID[@]}"; do [ -n "${PID[$s]}" ] || { log "no pid for $s"; exit 1; }; done

# ---- scale up ----
rc=0
snap_cpu
off=$(audit_mark)
t0=$(now)
scale_to "$N" || exit 1
if poll_until 120 eval '[ "$(pool_field status.replicas)" -ge "$N" ]'; then t1=$(now); else log "status.replicas never reached $N"; rc=1; fi
if poll_until 120 pool_ready_is "$N"; then t2=$(now); else log "readyReplicas never reached $N"; rc=1; fi
if [ "$rc" -eq 0 ]; then
	out "scale_up_replicas_seconds: $(elapsed "$t0" "$t1") s (0 -> status.replicas $N)"
	out "scale_up_ready_seconds: $(elapsed "$t0" "$t2") s (0 -> status.readyReplicas $N)"
	out "scale_up_rate: $(awk -v n="$N" -v a="$t0" -v b="$t2" 'BEGIN { printf "%.0f", n / (b - a) }') VMs/s (created and reported ready)"
fi
sleep 2 # trailing status writes belong to this phase
writes scale_up "$off"
cpu_since scale_up
[ "$rc" -eq 0 ] || exit 1

# ---- idle ----
snap_cpu
off=$(audit_mark)
sleep "$IDLE"
writes "idle_${IDLE}s" "$off"
cpu_since "idle_${IDLE}s"

# ---- scale down ----
snap_cpu
off=$(audit_mark)
t0=$(now)
scale_to 0 || exit 1
if poll_until 120 pool_empty; then t1=$(now); else log "pool never got back to 0"; rc=1; fi
[ "$rc" -eq 0 ] && out "scale_down_seconds: $(elapsed "$t0" "$t1") s ($N -> 0 VMs, status.replicas 0)"
sleep 2
writes scale_down "$off"
cpu_since scale_down

# ---- whole run: peak RSS and CPU of each process, read just before stopping ----
for s in vmpoold "${STAGES[@]}" sim; do
	cur=$s
	[ "$s" = sim ] || [ "$s" = vmpoold ] || cur=$(pid_of "$s")
	[ "$s" = sim ] && cur=$SIM_PID
	[ "$s" = vmpoold ] && cur=$VMPOOLD_PID
	[ "$cur" = "${PID[$s]}" ] || { out "restart_note: $s was restarted during the run (pid ${PID[$s]} -> $cur)"; rc=1; }
	out "run_maxrss_${s#vmpool-}: $(awk -v k="$(hwm_kb "$cur")" 'BEGIN { printf "%.1f", k / 1024 }') MB (VmHWM)"
	out "run_cpu_${s#vmpool-}: $(ticks_s "$(cpu_ticks "$cur")") s (utime + stime, whole run)"
done
grep -E 'AddressSanitizer|runtime error:|fatal' "$RUN"/*.log >&2 && rc=1
exit "$rc"

# tests/e2e/cases_fault.sh: the fault cases of issue 12. vmpoold talks to the API server through
# vmpool-faultproxy (tests/tools/faultproxy.c: its header documents the control interface and
# the log), started by the case's setup_CASE before the controller; the VM simulator and the
# test's kubectl talk to the API server directly. Each case measures and prints its figures
# (say lines in case.log) and fails on the first broken promise.
# shellcheck shell=bash

FPROXY_BIN=${FPROXY_BIN:-$ROOT/build/rel/tests/tools/vmpool-faultproxy}
FPROXY_PID="" FP_CTL="" FP_LOG=""

# --- the proxy -------------------------------------------------------------------------------

# a certificate for 127.0.0.1 signed by the test cluster's CA, so that the kubeconfig's CA
# trusts the TLS-terminating proxy too: fproxy_cert DIR
fproxy_cert() {
	local d=$1 ca=$VMPOOLD_CLUSTER_DIR
	openssl req -newkey rsa:2048 -nodes -subj "/CN=vmpool-faultproxy" -keyout "$d/proxy.key" \
		-out "$d/proxy.csr" >/dev/null 2>&1 || return 1
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$d/proxy.ext"
	openssl x509 -req -in "$d/proxy.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial \
		-CAserial "$d/proxy.srl" -days 2 -extfile "$d/proxy.ext" -out "$d/proxy.crt" >/dev/null 2>&1
}

# fproxy_start passthrough|terminate: start the proxy in front of the API server and point
# $VMPOOLD_KUBECONFIG (used by start_controller) at it
fproxy_start() {
	local tls=() port
	if [ ! -x "$FPROXY_BIN" ]; then
		make -s -C "$ROOT" faultproxy >/dev/null || { echo "cannot build $FPROXY_BIN"; return 1; }
	fi
	FP_LOG=$CASE_OUT/proxy.log
	if [ "$1" = terminate ]; then
		fproxy_cert "$CASE_OUT" || { echo "cannot make the proxy's certificate"; return 1; }
		tls=(--tls-cert "$CASE_OUT/proxy.crt" --tls-key "$CASE_OUT/proxy.key")
	fi
	: >"$FP_LOG"
	"$FPROXY_BIN" --upstream "127.0.0.1:$VMPOOLD_CLUSTER_PORT" --log "$FP_LOG" "${tls[@]}" \
		2>"$CASE_OUT/proxy.stderr" &
	FPROXY_PID=$!
	wait_until 10 grep -q ' ports ' "$FP_LOG" ||
		{ echo "the proxy did not start: $(cat "$CASE_OUT/proxy.stderr")"; return 1; }
	read -r _ _ port FP_CTL < <(grep -m1 ' ports ' "$FP_LOG")
	sed "s#server: https://127.0.0.1:$VMPOOLD_CLUSTER_PORT\$#server: https://127.0.0.1:$port#" \
		"$KUBECONFIG" >"$CASE_OUT/proxy.kubeconfig"
	grep -q ":$port\$" "$CASE_OUT/proxy.kubeconfig" || { echo "no server line in $KUBECONFIG"; return 1; }
	VMPOOLD_KUBECONFIG=$CASE_OUT/proxy.kubeconfig
}

fpctl() { curl -sf --max-time 5 "http://127.0.0.1:$FP_CTL/$1"; }
# fproxy_set 'KEY=VALUE&...': change the faults (fails on a setting the proxy refuses)
fproxy_set() { fpctl "set?$1" >/dev/null || fail "proxy refused set?$1"; }
# every fault off (run_case calls it after every case, before the clean-up)
fproxy_reset() { [ -z "$FPROXY_PID" ] || fpctl reset >/dev/null || true; }
fproxy_stop() {
	[ -n "$FPROXY_PID" ] || return 0
	kill "$FPROXY_PID" 2>/dev/null && wait "$FPROXY_PID" 2>/dev/null
	FPROXY_PID="" FP_CTL=""
	unset VMPOOLD_KUBECONFIG
}

now() { date +%s.%N; }

# connections the controller opened (accepted or refused) between FROM and TO (epoch seconds)
fp_conns() { # FROM TO
	awk -v a="$1" -v b="$2" '$2 == "conn" && ($4 == "accept" || $4 == "refuse") && $1 >= a && $1 <= b {n++}
		END {print n + 0}' "$FP_LOG"
}
# the most connections opened in one second between FROM and TO
fp_conns_peak() { # FROM TO
	awk -v a="$1" -v b="$2" '$2 == "conn" && ($4 == "accept" || $4 == "refuse") && $1 >= a && $1 <= b {
		s = int($1); c[s]++; if (c[s] > m) m = c[s]} END {print m + 0}' "$FP_LOG"
}
# "SECOND COUNT" per second (from the first one) of the requests METHOD whose target matches the
# awk regex RE: fp_req_rate METHOD RE
fp_req_rate() {
	awk -v m="$1" -v re="$2" '$2 == "req" && $4 == m && $5 ~ re {
		s = int($1); if (first == "") first = s; c[s - first]++; if (s - first > last) last = s - first}
		END {for (i = 0; first != "" && i <= last; i++) print i, c[i] + 0}' "$FP_LOG"
}

# --- what the cases look at ------------------------------------------------------------------

# VMs of $NS not being deleted
live_count() {
	kubectl get --raw "/apis/kubevirt.io/v1/namespaces/$NS/virtualmachines" |
		jq '[.items[] | select(.metadata.deletionTimestamp == null)] | length'
}

live_le() { [ "$(live_count)" -le "$1" ]; } # live_le N: at most N live VMs

# live_sampler FILE: appends "TIME LIVE" every 0.5 s until killed
live_sampler() {
	local n s
	while :; do
		sleep 0.5 &
		s=$!
		n=$(live_count 2>/dev/null) && [ -n "$n" ] && echo "$(now) $n" >>"$1"
		wait "$s"
	done
}

# "OBJECTS VMS COUNT" of the Events with REASON: Event objects, distinct VMs named in their
# messages, and the sum of their count fields. The controller correlates Events as client-go
# does: the first 9 VMs get an Event each, every later one is counted on one "(combined from
# similar events)" Event that names the latest VM, so N VMs show as "min(N,10) min(N,10) N"
ev_stats() {
	kc get events -o json | jq -r --arg r "$1" '[.items[] | select(.reason == $r)] |
		"\(length) \([.[].message | capture("(?<vm>[^ ]+/[^ ]+)$").vm] | unique | length) \([.[] | .count // 1] | add // 0)"'
}
# what `kubectl describe` shows for N SuccessfulCreate occurrences: ev_want N
ev_want() { local o=$(($1 < 10 ? $1 : 10)); echo "$o $o $1"; }

# ev_combined_ok POOL [settled]: the combined SuccessfulCreate Event names one of the pool's
# VMs created last (its creationTimestamp within 2 s of the newest) and no single Event counts
# a VM twice. With "settled": one of the pool's VMs, whichever was known created last (a create
# whose every answer was lost is known done only after the fault, so its Event may come last)
ev_combined_ok() {
	local named newest t
	[ "$(kc get events -o json | jq '[.items[] | select(.reason == "SuccessfulCreate" and
		(.message | startswith("(combined") | not) and .count != 1)] | length')" = 0 ] || return 1
	named=$(kc get events -o json | jq -r '[.items[] | select(.reason == "SuccessfulCreate" and
		(.message | startswith("(combined from similar events): ")))][0].message // "" |
		capture("/(?<vm>[^/ ]+)$").vm')
	[ -n "$named" ] || return 1
	if [ "${2:-}" = settled ]; then
		kc get vm -l "kubevirt.io/vmpool=$1" -o name | grep -qx "virtualmachine.kubevirt.io/$named"
		return
	fi
	newest=$(kc get vm -l "kubevirt.io/vmpool=$1" -o json | jq '[.items[].metadata.creationTimestamp | fromdate] | max')
	t=$(kc get vm "$named" -o json | jq '.metadata.creationTimestamp | fromdate') || return 1
	[ $((newest - t)) -le 2 ]
}

# an audit record's requestReceivedTimestamp as epoch seconds, to the microsecond (the
# scale-out's last creates share the second of the scale-in's start)
JQ_RECEIVED='def received: (.requestReceivedTimestamp | capture("^(?<s>[^.Z]+)(\\.(?<f>[0-9]+))?Z$")) as $c |
	(($c.s + "Z") | fromdate) + (("0." + ($c.f // "0")) | tonumber);'

# VMs the controller created in $NS after epoch second FROM, from the API server's audit log
vm_creates_since() {
	jq -c --arg ns "$NS" --argjson t "$1" "$JQ_RECEIVED"'
		select(.stage == "ResponseComplete" and .verb == "create" and
		.objectRef.resource == "virtualmachines" and .objectRef.namespace == $ns and
		.responseStatus.code == 201 and received >= $t)' \
		"$VMPOOLD_CLUSTER_DIR/audit.log" | wc -l
}

# VMs of pool POOL whose Ready condition is True
vm_ready_count() {
	kc get vm -l "kubevirt.io/vmpool=$1" -o json |
		jq '[.items[] | select(any(.status.conditions[]?; .type == "Ready" and .status == "True"))] | length'
}

# pool_truthful POOL N: N VMs, status.replicas N and status.readyReplicas what the VMs say
# (a simulator that lost a VM's update across an API server restart is not vmpoold's fault)
pool_truthful() {
	local ready
	[ "$(pool_vm_count "$1")" -eq "$2" ] && [ "$(pool_status "$1" replicas)" == "$2" ] || return 1
	ready=$(vm_ready_count "$1")
	[ "$(pool_status "$1" readyReplicas)" == "$([ "$ready" -eq 0 ] || echo "$ready")" ]
}

# pool POOL holds exactly the VMs POOL-0 .. POOL-(N-1): pool_names_exact POOL N
pool_names_exact() {
	local want
	want=$(seq 0 $(($2 - 1)) | sed "s/^/$1-/" | tr '\n' ' ' | sed 's/ $//')
	[ "$(pool_vm_names "$1")" == "$want" ]
}

# --- a. scale-in under cut and refused connections (defect 1) --------------------------------

setup_fault_scale_in() { fproxy_start passthrough; }
# deletions at 20 a second, so that the faults fall among them
ARGS_fault_scale_in="--kube-api-qps 20 --kube-api-burst 20"

case_fault_scale_in() {
	local samples=$CASE_OUT/live.txt sampler t0 min last creates
	mkpool si 150 || return 1
	wait_until 240 pconv si 150 || fail "150 VMs: $(kc get vmpool si)" || return 1
	: >"$samples"
	live_sampler "$samples" &
	sampler=$!
	t0=$(date +%s.%N)
	# half the connections cut at 5 to 200 KB (a list of 150 VMs is larger), from the start
	fproxy_set "cut=0.5&cutmin=5000&cutmax=200000" || return 1
	kc scale vmpool si --replicas 20 >/dev/null || return 1
	# once the deletions are under way, three short outages, each resetting every connection
	# (deletions in flight have unknown outcomes) and about as long as the actuator's retries
	# (0.2 + 0.4 + 0.8 + 1.6 s), with cuts between and after them; most lists of the VMs are
	# cut short, so the watcher's picture lags behind
	wait_until 20 live_le 130
	for _ in 1 2 3; do
		fproxy_set "refuse=1" || return 1
		sleep 3 # the outage's length, not a wait for a condition
		fproxy_set "refuse=0&cut=0.8" || return 1
		sleep 2 # cuts only
	done
	wait_until 20 live_le 20
	fproxy_set "cut=0" || return 1
	wait_until 120 pconv si 20
	local conv=$?
	kill "$sampler" 2>/dev/null
	wait "$sampler" 2>/dev/null
	min=$(awk 'NR == 1 || $2 < m {m = $2} END {print m + 0}' "$samples")
	creates=$(vm_creates_since "$t0")
	say "live VMs in $(wc -l <"$samples") samples: min $min; VMs created after the scale-in: $creates;" \
		"connections cut: $(grep -c ' cut$' "$FP_LOG"), refused: $(grep -c ' refuse$' "$FP_LOG")"
	[ "$min" -ge 20 ] || fail "live VMs fell to $min (< 20) during the scale-in" || return 1
	[ "$conv" -eq 0 ] || fail "not back at 20: $(kc get vmpool si) live $(live_count)" || return 1
	expect_eq "$creates" 0 "VMs created after the scale-in started" || return 1
	last=$(live_count)
	expect_eq "$last" 20 "live VMs at the end" || return 1
}

# --- b + e. a 30 s refused outage during a scale-out (defects 2 and 3) -----------------------

setup_fault_outage() { fproxy_start passthrough; }
# a slow scale-out (10 creates a second) so that the outage falls in the middle of it
ARGS_fault_outage="--kube-api-qps 10 --kube-api-burst 10"

case_fault_outage() {
	local t0 t1 conns peak st n0 bad=0
	mkpool ou 10 || return 1
	wait_until 60 pconv ou 10 || fail "10 VMs: $(kc get vmpool ou)" || return 1
	kc scale vmpool ou --replicas 60 >/dev/null || return 1
	wait_ge 30 20 vm_count || fail "the scale-out does not start: $(kc get vmpool ou)" || return 1
	t0=$(now)
	fproxy_set "refuse=1" || return 1
	n0=$(vm_count)
	sleep 30 # the outage's length
	t1=$(now)
	fproxy_set "refuse=0" || return 1
	conns=$(fp_conns "$t0" "$t1")
	peak=$(fp_conns_peak "$t0" "$t1")
	say "30 s outage from $n0 VMs on: $conns connection attempts, at most $peak in one second"
	[ "$conns" -le 60 ] || { fail "$conns connection attempts in a 30 s outage (want <= 60)"; bad=1; }
	wait_until 120 pconv ou 60 || fail "not at 60 after the outage: $(kc get vmpool ou)" || return 1
	expect_eq "$(vm_count)" 60 "VMs" || return 1
	wait_eq 60 "$(ev_want 60)" ev_stats SuccessfulCreate
	st=$(ev_stats SuccessfulCreate)
	say "SuccessfulCreate Events (objects, VMs named, count sum): $st; FailedCreate: $(ev_stats FailedCreate)"
	expect_eq "$st" "$(ev_want 60)" "SuccessfulCreate counts add up to the 60 VMs, every one arrived" || return 1
	ev_combined_ok ou || fail "the combined Event does not name one of the last VMs: $(kc get events)" || return 1
	return $bad
}

# --- c. every VM create answered 429 Retry-After 1 (defect 2) --------------------------------

setup_fault_throttle() { fproxy_start terminate; }
ARGS_fault_throttle="--kube-api-qps 20 --kube-api-burst 20"

case_fault_throttle() {
	local rates max first total secs
	fproxy_set "throttle=1&retry=1&match=POST:/virtualmachines" || return 1
	mkpool th 100 || return 1
	wait_until 30 grep -q ' throttle$' "$FP_LOG" || fail "no create reached the proxy" || return 1
	sleep 20 # the throttling's length
	fproxy_set "throttle=0" || return 1
	rates=$(fp_req_rate POST '/virtualmachines([?]|$)')
	first=$(echo "$rates" | awk 'NR == 1 {print $2}')
	max=$(echo "$rates" | awk 'NR > 1 && $2 > m {m = $2} END {print m + 0}')
	total=$(echo "$rates" | awk '{t += $2} END {print t + 0}')
	secs=$(echo "$rates" | wc -l)
	say "VM creates at the proxy: $total in $secs s; first second $first, then at most $max a second" \
		"(--kube-api-qps 20 --kube-api-burst 20)"
	echo "$rates" >"$CASE_OUT/create-rates.txt"
	[ "$first" -le 40 ] || fail "$first creates in the first second (want <= qps + burst = 40)" || return 1
	[ "$max" -le 25 ] || fail "$max creates in one second (want <= 25 with --kube-api-qps 20)" || return 1
	wait_until 90 pconv th 100 || fail "not at 100 once the 429s stop: $(kc get vmpool th)" || return 1
}

# --- d. creates whose answers are lost after the write (defects 3 and 4) ---------------------

setup_fault_lost_creates() { fproxy_start terminate; }

case_fault_lost_creates() {
	local st lost
	# every VM create and Event create is written, and its answer dropped, for 10 s after the
	# VMs exist: long enough for every retry of a client that does not wait for the watch
	fproxy_set "lose=1&match=POST:/virtualmachines|/events" || return 1
	mkpool lc 30 || return 1
	wait_eq 60 30 vm_count || fail "the lost creates did not happen: $(vm_count) VMs" || return 1
	sleep 10 # the fault's length
	fproxy_set "lose=0" || return 1
	lost=$(grep -c ' lose$' "$FP_LOG")
	wait_until 60 pconv lc 30 || fail "not at 30: $(kc get vmpool lc)" || return 1
	pool_names_exact lc 30 || fail "VMs: $(pool_vm_names lc)" || return 1
	wait_eq 60 "$(ev_want 30)" ev_stats SuccessfulCreate
	st=$(ev_stats SuccessfulCreate)
	say "answers lost: $lost; SuccessfulCreate Events (objects, VMs named, count sum): $st;" \
		"FailedCreate: $(ev_stats FailedCreate); ReplicaFailure seen: $(pool_status lc conditions | grep -c ReplicaFailure)"
	expect_eq "$(ev_stats FailedCreate)" "0 0 0" "FailedCreate Events for VMs that were created" || return 1
	expect_eq "$st" "$(ev_want 30)" "SuccessfulCreate counts add up to the 30 VMs, none twice" || return 1
	ev_combined_ok lc settled || fail "the combined Event does not name one of the last VMs: $(kc get events)" || return 1
	expect_eq "$(vm_count)" 30 "VMs" || return 1
}

# --- f. watches open but silent, as on a draining API server (defect 10) ---------------------

setup_fault_silent_watch() { fproxy_start terminate; }

case_fault_silent_watch() {
	local t0
	mkpool sw 2 || return 1
	wait_until 60 pconv sw 2 || fail "2 VMs: $(kc get vmpool sw)" || return 1
	t0=$SECONDS
	fpctl "freeze?close=60" >/dev/null || fail "freeze" || return 1
	grep -q ' frozen$' "$FP_LOG" || fail "no watch stream to freeze" || return 1
	say "watch streams frozen for 60 s: $(grep -c ' frozen$' "$FP_LOG")"
	kc scale vmpool sw --replicas 4 >/dev/null || return 1
	wait_until 45 pconv sw 4 ||
		fail "vmpoold did not notice a scale to 4 within 45 s of silent watches: $(kc get vmpool sw)" || return 1
	say "noticed the scale-out after $((SECONDS - t0)) s"
}

# --- g. an API server restart during a scale-out ---------------------------------------------

ARGS_fault_apiserver_restart="--kube-api-qps 10 --kube-api-burst 10"

case_fault_apiserver_restart() {
	local st
	mkpool ar 5 || return 1
	wait_until 60 pconv ar 5 || fail "5 VMs: $(kc get vmpool ar)" || return 1
	kc scale vmpool ar --replicas 60 >/dev/null || return 1
	wait_ge 30 15 vm_count || fail "the scale-out does not start" || return 1
	say "restarting the API server at $(vm_count) VMs"
	bash scripts/test-cluster.sh restart-apiserver || fail "restart-apiserver" || return 1
	wait_until 120 pool_truthful ar 60 ||
		fail "not at 60 after the restart: $(kc get vmpool ar), $(vm_ready_count ar) VMs ready" || return 1
	say "VMs ready: $(vm_ready_count ar) (the simulator's doing)"
	pool_names_exact ar 60 || fail "VMs: $(pool_vm_names ar)" || return 1
	wait_eq 60 "$(ev_want 60)" ev_stats SuccessfulCreate
	st=$(ev_stats SuccessfulCreate)
	say "SuccessfulCreate Events (objects, VMs named, count sum): $st; FailedCreate: $(ev_stats FailedCreate)"
	expect_eq "$st" "$(ev_want 60)" "SuccessfulCreate counts add up to the 60 VMs, no duplicate" || return 1
	ev_combined_ok ar || fail "the combined Event does not name one of the last VMs: $(kc get events)" || return 1
}

# --- h. a restarted API server answering 404 for the custom resources ------------------------

# kube-apiserver up to 1.22 answers 404 for custom resources after a restart until it has
# installed their groups (Kubernetes PR 104748): CI met it in fault_apiserver_restart, where the
# watcher took every VM for gone and the planner created five again (AlreadyExists, counted as
# SuccessfulCreate twice). Here the proxy answers every GET of kubevirt.io/v1 (VMs and VMIs) 404
# and resets the open connections, so the watcher's watches and lists meet the 404s; the
# watcher keeps what it listed (WATCHER_ABSENT_KEEP, 60 s) and nothing is written.
setup_fault_crd_404() { fproxy_start terminate; }

# the proxy's 404 answers to GETs of TARGET-RE (an awk regex)
fp_404s() { awk -v re="$1" '$2 == "req" && $4 == "GET" && $5 ~ re && $6 == 404' "$FP_LOG" | wc -l; }

# writes by vmpoold's stages to VMs and pools (status included) in $NS after epoch second FROM,
# from the audit log
ctl_vm_pool_writes_since() {
	jq -c --arg ns "$NS" --argjson t "$1" "$JQ_RECEIVED"'
		select(.stage == "ResponseComplete" and (.verb | test("^(create|update|patch|delete)$")) and
		(.objectRef.resource | test("^virtualmachine(s|pools)$")) and .objectRef.namespace == $ns and
		(.userAgent | test("vmpool-(watcher|planner|actuator|status)")) and received >= $t)' \
		"$VMPOOLD_CLUSTER_DIR/audit.log" | wc -l
}

case_fault_crd_404() {
	local uids t0 w
	mkpool nf 4 || return 1
	wait_until 60 pconv nf 4 || fail "4 VMs: $(kc get vmpool nf)" || return 1
	uids=$(vm_uids nf)
	t0=$(now)
	# VMs and VMIs only: with the pools gone too, the planner would have no pool to act for
	fproxy_set "match=GET:kubevirt.io/v1/&err=1&code=404&refuse=1" || return 1
	fproxy_set "refuse=0" || return 1
	# three lists of each answered 404 (0.5 + 1 + 2 s of backoff)
	wait_until 60 eval '[ "$(fp_404s "/virtualmachines[?]")" -ge 3 ] && [ "$(fp_404s "/virtualmachineinstances[?]")" -ge 3 ]' ||
		fail "the watcher's lists met no 404: $(fp_404s "/virtualmachines[?]") $(fp_404s "/virtualmachineinstances[?]")" || return 1
	say "404s: $(fp_404s "/virtualmachines[?]") lists of the VMs, $(fp_404s "/virtualmachineinstances[?]") of the VMIs"
	fproxy_set "err=0" || return 1
	wait_until 60 grep -q '"virtualmachines: API answers again"' "$CASE_OUT/vmpoold.log" ||
		fail "the VMs were not listed again" || return 1
	wait_until 60 eval '[ "$(grep -c "\"every resource listed: ready" "$CASE_OUT/vmpoold.log")" -ge 2 ]' ||
		fail "the watcher not ready again" || return 1
	wait_until 30 pconv nf 4 || fail "not at 4: $(kc get vmpool nf)" || return 1
	w=$(ctl_vm_pool_writes_since "$t0")
	say "writes to VMs and pools since the 404s began: $w"
	expect_eq "$w" 0 "writes to VMs or pools (VMs taken for gone are created again)" || return 1
	expect_eq "$(vm_uids nf)" "$uids" "the pool's VMs (name=uid)" || return 1
	expect_eq "$(ev_stats SuccessfulCreate)" "$(ev_want 4)" "SuccessfulCreate Events" || return 1
	grep -q '"virtualmachines: the API server answers 404 (not found): keeping the 4 objects listed before' "$CASE_OUT/vmpoold.log" ||
		fail "no warning: $(grep 'answers 404' "$CASE_OUT/vmpoold.log" | tail -3)" || return 1
}

# --- watch cuts, 410 Expired and 503s on every kind of request ------------------------------

setup_fault_watch_errors() { fproxy_start terminate; }

# every one of errs, wcuts and w410s is above 0 at the proxy
fp_all_fired() { fpctl state | awk '/^(errs|wcuts|w410s) / && $2 == 0 {bad = 1} END {exit bad}'; }
# "errs N wcuts N w410s N" at the proxy
fp_fired() { fpctl state | awk '/^(errs|wcuts|w410s) / {printf "%s %s ", $1, $2}'; }

# fp_watch_faults POOL N: every watch stream cut mid-line after 200 B to 5 KB, half the
# watches answered 410, one request in five answered 503; then POOL scaled to N, until every
# fault has fired (or the case proves nothing)
fp_watch_faults() {
	fproxy_set "watchcut=1&watch410=0.5&cutmin=200&cutmax=5000&err=0.2&code=503" || return 1
	kc scale vmpool "$1" --replicas "$2" >/dev/null || return 1
	wait_until 60 fp_all_fired || fail "a fault never fired: $(fpctl state | tr '\n' ' ')"
}

case_fault_watch_errors() {
	mkpool we 3 || return 1
	wait_until 60 pconv we 3 || fail "3 VMs: $(kc get vmpool we)" || return 1
	fp_watch_faults we 12 || return 1
	wait_until 90 pconv we 12 || fail "not at 12: $(kc get vmpool we)" || return 1
	pool_names_exact we 12 || fail "VMs: $(pool_vm_names we)" || return 1
	kc scale vmpool we --replicas 5 >/dev/null || return 1
	wait_until 90 pconv we 5 || fail "not at 5: $(kc get vmpool we)" || return 1
	say "faults: $(fp_fired)"
}

# --- issue 9: the simulator's informer (common/informer.c) under the same faults -------------

# only the simulator talks through the proxy: what is tested is the informer it shares with
# the watcher, not vmpoold (fault_watch_errors puts the watcher there)
setup_fault_sim_informer() {
	fproxy_start terminate || return 1
	SIM_KUBECONFIG=$VMPOOLD_KUBECONFIG
	unset VMPOOLD_KUBECONFIG
}
teardown_fault_sim_informer() { unset SIM_KUBECONFIG; }

# the simulator's relists after a watch's 410 (its informer's log lines)
sim_relists() { grep -c 'relisting (watch' "$CASE_OUT/sim.log"; }

case_fault_sim_informer() {
	mkpool si 2 || return 1
	wait_until 60 pconv si 2 || fail "2 VMs: $(kc get vmpool si)" || return 1
	# the simulator's watches cut and answered 410, its requests 503: VMs become Ready only
	# if it still follows them
	fp_watch_faults si 8 || return 1
	wait_until 90 pconv si 8 || fail "not at 8: $(kc get vmpool si)" || return 1
	wait_until 30 eval '[ "$(vmis_ready si)" -eq 8 ]' || fail "VMIs ready: $(vmis_ready si)" || return 1
	wait_until 30 eval '[ "$(sim_relists)" -gt 0 ]' ||
		fail "the simulator never relisted after a 410: $(tail -5 "$CASE_OUT/sim.log")" || return 1
	# the VMIs of deleted VMs go: the simulator saw the deletions through the faults
	kc scale vmpool si --replicas 3 >/dev/null || return 1
	wait_until 90 pconv si 3 || fail "not at 3: $(kc get vmpool si)" || return 1
	wait_until 60 eval '[ "$(kc get vmi -l kubevirt.io/vmpool=si -o name | wc -l)" -eq 3 ]' ||
		fail "VMIs: $(kc get vmi -l kubevirt.io/vmpool=si -o name | tr '\n' ' ')" || return 1
	kill -0 "$SIM_PID" || fail "the simulator died" || return 1
	say "simulator relists after a 410: $(sim_relists); faults: $(fp_fired)"
}

# --- issue 10: a pool whose every create is refused posts a bounded number of Events ---------

# VM creates in $NS the API server refused (422), from the audit log
failed_creates() {
	jq -c --arg ns "$NS" 'select(.stage == "ResponseComplete" and .verb == "create" and
		.objectRef.resource == "virtualmachines" and .objectRef.namespace == $ns and
		.responseStatus.code == 422)' "$VMPOOLD_CLUSTER_DIR/audit.log" | wc -l
}
# Event writes of the actuator in $NS (creates and patches of events), from the audit log
actuator_event_writes() {
	jq -c --arg ns "$NS" 'select(.stage == "ResponseComplete" and .objectRef.resource == "events"
		and .objectRef.namespace == $ns and (.userAgent | contains("vmpool-actuator")))' \
		"$VMPOOLD_CLUSTER_DIR/audit.log" | wc -l
}
fc_counts() { kc get events -o json | jq '[.items[] | select(.reason == "FailedCreate") | .count // 1] | add // 0'; }

# every VM create refused (the pool's 251-character name makes each VM's revision label too
# long, as in create_fails): the planner retries with its backoff, each attempt fails, and the
# FailedCreate Events are deduped into one Event whose count is the number of failures, with
# no more Event writes than failures (beyond that the spam filter bounds them at 25 per pool:
# stage test test_actuator)
case_events_bounded() {
	local fails writes objs long
	long=$(printf 'b%.0s' $(seq 1 251))
	make_pool eb 20 | sed "s/^  name: eb$/  name: $long/" | kc apply -f - >/dev/null || return 1
	wait_ge 90 4 failed_creates || fail "creates not refused: $(failed_creates) ($(kc get events))" || return 1
	# the count catches up with the failures (Events go behind object writes)
	wait_until 30 eval '[ "$(fc_counts)" -ge "$(failed_creates)" ]' ||
		fail "FailedCreate counts $(fc_counts) < failed creates $(failed_creates)" || return 1
	fails=$(failed_creates)
	writes=$(actuator_event_writes)
	objs=$(event_count FailedCreate)
	say "failed creates: $fails; FailedCreate Event objects: $objs, counts $(fc_counts); Event writes of the actuator: $writes"
	expect_eq "$objs" 1 "FailedCreate Event objects (identical failures deduped)" || return 1
	[ "$writes" -le "$fails" ] && [ "$writes" -le 25 ] ||
		fail "$writes Event writes for $fails failed creates" || return 1
	expect_eq "$(vm_count)" 0 "VMs" || return 1
}

#!/usr/bin/env bash
# Stage test for vmpoold: fake stages (shell scripts named like the real binaries) record
# their argv and pid; we check restart timing, exit 78 handling, give-up, SIGTERM shutdown,
# flag pass-through, the ready fd and bad flags.
set -u
BIN=${VMPOOL_BIN:-bin-asan}
VMPOOLD=$(cd "$(dirname "$BIN/vmpoold")" && pwd)/vmpoold
T=$(mktemp -d /tmp/test_supervisor.XXXXXX)
STAGE=$T/stage
export FAKE_CTL=$T/ctl
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
mkdir -p "$STAGE" "$FAKE_CTL" "$T/run"
pass=0 fail=0
SVPID=

cleanup() {
	[ -n "$SVPID" ] && kill -KILL "$SVPID" 2>/dev/null
	for f in "$FAKE_CTL"/*.pid; do
		[ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); echo "ok: $*"; }
no() { fail=$((fail + 1)); echo "FAIL: $*"; }

# a fake stage: logs "pid time" and argv, then obeys $FAKE_CTL/{exit78,crash}-<name|all>
for name in vmpool-watcher vmpool-planner vmpool-actuator vmpool-status; do
	cat >"$STAGE/$name" <<'EOF'
#!/usr/bin/env bash
n=$(basename "$0")
echo "$$ $(date +%s.%N)" >>"$FAKE_CTL/$n.starts"
echo "$$" >"$FAKE_CTL/$n.pid"
printf '%s\n' "$@" >"$FAKE_CTL/$n.argv"
if [ -e "$FAKE_CTL/exit78-$n" ]; then sleep 0.3; exit 78; fi
[ -e "$FAKE_CTL/deaf-$n" ] && trap '' TERM
if [ -e "$FAKE_CTL/crash-$n" ] || [ -e "$FAKE_CTL/crash-all" ]; then exit 3; fi
exec sleep 1000
EOF
	chmod +x "$STAGE/$name"
done
cp "$VMPOOLD" "$STAGE/vmpoold"

starts() { [ -f "$FAKE_CTL/$1.starts" ] && wc -l <"$FAKE_CTL/$1.starts" || echo 0; }
# wait_for SECONDS COMMAND...: polls until the command succeeds
wait_for() {
	local end=$((SECONDS + $1)); shift
	until "$@"; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.05
	done
}
all_started() {
	for n in vmpool-watcher vmpool-planner vmpool-actuator vmpool-status; do
		[ -s "$FAKE_CTL/$n.pid" ] || return 1
	done
}
dead() { ! kill -0 "$1" 2>/dev/null; }
reset_ctl() { rm -f "$FAKE_CTL"/*; }
# stop_sv: SIGTERM vmpoold, wait, its exit status in $rc
stop_sv() {
	kill -TERM "$SVPID" 2>/dev/null
	wait_for 15 dead "$SVPID"
	wait "$SVPID"
	rc=$?
}
restarted() { [ "$(starts "$1")" -ge 2 ]; }

# --- 1. flags are passed through, ready fd, stages found next to a copy of vmpoold
# (the old spellings --log-format, -v and --metrics-addr go out as the new ones)
reset_ctl
"$STAGE/vmpoold" --run-dir "$T/run" --namespace ns1 --log-format json -v --v=2 \
    --max-frame 65536 --kube-api-qps 7 --kube-api-burst 9 --metrics-addr 127.0.0.1:19100 \
    --health-probe-bind-address :19200 --master https://127.0.0.1:1/ \
    --burst-replicas 5 --dry-run --ready-fd 3 3>"$T/ready" 2>"$T/sv1.log" &
SVPID=$!
if wait_for 10 grep -q ready "$T/ready"; then ok "ready fd written"; else no "ready fd"; fi
# the ready fd says vmpoold started them, not that each has written its argv yet
all_argv() { for n in vmpool-watcher vmpool-planner vmpool-actuator vmpool-status; do [ -s "$FAKE_CTL/$n.argv" ] || return 1; done; }
wait_for 10 all_argv || no "all four stages wrote their argv"
argv_has() { tr '\n' ' ' <"$FAKE_CTL/$1.argv" | grep -q -- "$2"; }
argv_ok=1
for n in vmpool-watcher vmpool-planner vmpool-actuator vmpool-status; do
	for want in "--run-dir $T/run" "--namespace ns1" "--logging-format json" "--v 3" \
	    "--max-frame 65536" "--kube-api-qps 7" "--kube-api-burst 9" \
	    "--master https://127.0.0.1:1 "; do
		argv_has $n "$want" || { argv_ok=0; echo "  $n lacks '$want'"; }
	done
done
argv_has vmpool-watcher "--metrics-bind-address 127.0.0.1:19100" || argv_ok=0
argv_has vmpool-planner "--metrics-bind-address 127.0.0.1:19101" || argv_ok=0
argv_has vmpool-actuator "--metrics-bind-address 127.0.0.1:19102" || argv_ok=0
argv_has vmpool-status "--metrics-bind-address 127.0.0.1:19103" || argv_ok=0
argv_has vmpool-watcher "--health-probe-bind-address :19200" || argv_ok=0
argv_has vmpool-status "--health-probe-bind-address :19203" || argv_ok=0
argv_has vmpool-planner "--burst-replicas 5" || argv_ok=0
argv_has vmpool-actuator "--dry-run" || argv_ok=0
argv_has vmpool-planner "--dry-run" && argv_ok=0
argv_has vmpool-watcher "--burst-replicas" && argv_ok=0
[ $argv_ok = 1 ] && ok "flags passed through" || no "flags passed through"

# --- 2. a child killed with -9 is restarted after >= 1 s
old=$(cat "$FAKE_CTL/vmpool-watcher.pid")
t0=$(date +%s.%N)
kill -KILL "$old"
if wait_for 5 restarted vmpool-watcher; then
	t1=$(tail -n1 "$FAKE_CTL/vmpool-watcher.starts" | cut -d' ' -f2)
	if awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a >= 1.0) }'; then
		ok "killed child restarted after $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"
	else
		no "restart too early ($t0 -> $t1)"
	fi
else
	no "killed child not restarted"
fi
[ "$(starts vmpool-planner)" = 1 ] && ok "siblings untouched" || no "siblings restarted"

# --- 3. SIGTERM stops every child and exits 0
pids=$(cat "$FAKE_CTL"/*.pid)
stop_sv
[ "$rc" = 0 ] && ok "SIGTERM -> exit 0" || no "SIGTERM -> exit $rc"
alive=0
for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
[ $alive = 0 ] && ok "all children stopped" || no "children left running"
grep -q 'spawned' "$T/sv1.log" && grep -q 'pid' "$T/sv1.log" && ok "spawns logged" ||
	no "spawns not logged"

# --- 3b. a child that ignores SIGTERM is killed after the 10 s grace period
reset_ctl
touch "$FAKE_CTL/deaf-vmpool-planner"
"$VMPOOLD" --stage-dir "$STAGE" --run-dir "$T/run" 2>"$T/sv3.log" &
SVPID=$!
wait_for 5 all_started
sleep 0.3
deaf=$(cat "$FAKE_CTL/vmpool-planner.pid")
t0=$SECONDS
stop_sv
dt=$((SECONDS - t0))
[ "$rc" = 0 ] && dead "$deaf" && [ $dt -ge 9 ] && ok "SIGKILL after grace (${dt} s)" ||
	no "deaf child: exit $rc after $dt s"
grep -q SIGKILL "$T/sv3.log" && ok "SIGKILL logged" || no "SIGKILL not logged"
SVPID=

# --- 4. a child exiting 78 stops everything, no restart, vmpoold exits 78 (--stage-dir)
reset_ctl
touch "$FAKE_CTL/exit78-vmpool-status"
"$VMPOOLD" --stage-dir "$STAGE" --run-dir "$T/run" 2>"$T/sv4.log" &
SVPID=$!
wait_for 5 all_started
if wait_for 15 dead "$SVPID"; then
	wait "$SVPID"; rc=$?
	[ "$rc" = 78 ] && ok "child exit 78 -> vmpoold exit 78" || no "exit 78 -> vmpoold exit $rc"
else
	no "vmpoold still running after a child exited 78"; stop_sv
fi
[ "$(starts vmpool-status)" = 1 ] && ok "exit-78 child not restarted" || no "exit-78 child restarted"
dead "$(cat "$FAKE_CTL/vmpool-watcher.pid")" && ok "siblings stopped after 78" ||
	no "siblings still running after 78"
SVPID=

# --- 5. children that keep crashing: restarted with backoff, then vmpoold gives up (exit 1)
reset_ctl
touch "$FAKE_CTL/crash-all"
"$VMPOOLD" --stage-dir "$STAGE" --run-dir "$T/run" 2>"$T/sv5.log" &
SVPID=$!
if wait_for 30 dead "$SVPID"; then
	wait "$SVPID"; rc=$?
	[ "$rc" = 1 ] && ok "gave up after repeated deaths (exit 1)" || no "give-up exit $rc"
	# every respawn gap >= 1 s; the child that got furthest shows them growing
	best=
	for n in vmpool-watcher vmpool-planner vmpool-actuator vmpool-status; do
		g=$(awk '{ if (NR > 1) printf "%.2f ", $2 - prev; prev = $2 }' "$FAKE_CTL/$n.starts")
		[ ${#g} -gt ${#best} ] && best=$g
		awk -v g="$g" 'BEGIN { n = split(g, a, " "); for (i = 1; i <= n; i++) if (a[i] < 0.95) exit 1 }' ||
			no "$n respawned too early: $g"
	done
	if awk -v g="$best" 'BEGIN { n = split(g, a, " "); exit !(n >= 2 && a[n] > a[1] * 1.5) }'; then
		ok "respawn gaps grow: $best"
	else
		no "respawn gaps: $best"
	fi
else
	no "vmpoold did not give up"; stop_sv
fi
SVPID=

# --- 6. bad configuration of vmpoold itself -> 78
"$VMPOOLD" --stage-dir "$STAGE" --no-such-flag >/dev/null 2>&1
rc=$?
[ "$rc" = 78 ] && ok "unknown flag -> 78" || no "unknown flag -> $rc"
"$VMPOOLD" --stage-dir "$T/run" >/dev/null 2>&1
rc=$?
[ "$rc" = 78 ] && ok "missing stage binaries -> 78" || no "missing stage binaries -> $rc"
"$VMPOOLD" --stage-dir "$STAGE" --metrics-addr nonsense >/dev/null 2>&1
rc=$?
[ "$rc" = 78 ] && ok "bad --metrics-addr -> 78" || no "bad --metrics-addr -> $rc"
"$VMPOOLD" --stage-dir "$STAGE" extra-arg >/dev/null 2>&1
rc=$?
[ "$rc" = 78 ] && ok "stray argument -> 78" || no "stray argument -> $rc"

echo "test_supervisor: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

#!/usr/bin/env bash
# Runs every stage test: C programs (fake peers) and shell scripts in tests/stage/.
set -u
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export VMPOOL_BIN=${VMPOOL_BIN:-bin-asan}
pass=0 fail=0
for t in "$@" $(ls tests/stage/test_*.sh 2>/dev/null); do
  case "$t" in *.sh) cmd=(bash "$t") ;; *) cmd=("$t") ;; esac
  if timeout 300 "${cmd[@]}"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $t" >&2; fi
done
echo "stage: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

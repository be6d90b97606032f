#!/usr/bin/env bash
# Runs each libFuzzer target (build/fuzz/fuzz_NAME, from make fuzz-build) for FUZZ_TIME
# seconds (default 5) from its seed corpus in tests/fuzz/corpus/NAME. New inputs go to
# build/fuzz/work/NAME, never into the committed seeds; a crash leaves its input in
# build/fuzz/artifacts/. Prints a total line; a target that finds a crash counts as failed.
set -u
cd "$(dirname "$0")/.."
time=${FUZZ_TIME:-5}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(frame watch selector kubeconfig plan project)
pass=0 fail=0
mkdir -p build/fuzz/artifacts
for t in "${targets[@]}"; do
	bin=build/fuzz/fuzz_$t
	if [ ! -x "$bin" ]; then
		echo "FAILED: fuzz_$t: $bin missing (make fuzz-build)" >&2
		fail=$((fail + 1))
		continue
	fi
	mkdir -p "build/fuzz/work/$t"
	log=build/fuzz/fuzz_$t.log
	if "$bin" -max_total_time="$time" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
		-artifact_prefix="build/fuzz/artifacts/$t-" -print_final_stats=1 \
		"build/fuzz/work/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		echo "ok: fuzz_$t: ${runs:-?} runs in ${time} s, no crash"
		pass=$((pass + 1))
	else
		echo "FAILED: fuzz_$t (log $log):" >&2
		grep -E "ERROR|SUMMARY|Test unit written|abort|==[0-9]+==" "$log" | head -20 >&2
		fail=$((fail + 1))
	fi
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

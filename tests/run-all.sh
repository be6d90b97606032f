#!/usr/bin/env bash
# make test: unit (ASan/UBSan), stage (ASan/UBSan), each fuzz target for FUZZ_TIME seconds
# (default 5), image, deploy manifests, packaging (make install/uninstall, man pages, the
# systemd unit), TLS (what the lean OpenSSL must keep, tests/tls) and end-to-end tests; a
# total line at the end.
set -u
cd "$(dirname "$0")/.."
rc=0
units=$(ls build/asan/tests/unit/test_* 2>/dev/null | grep -v '\.[od]$')
# and those of glibc's allocator, from the release build (the Makefile's UNIT_REL_BINS)
units+=" ${UNIT_REL_BINS:-}"
stages=$(ls build/asan/tests/stage/test_* 2>/dev/null | grep -v '\.[od]$')
out=$(mktemp -d)
bash tests/run-unit.sh $units 2>&1 | tee "$out/unit" || rc=1
bash tests/run-stage.sh $stages 2>&1 | tee "$out/stage" || rc=1
FUZZ_TIME=${FUZZ_TIME:-5} bash tests/run-fuzz.sh 2>&1 | tee "$out/fuzz" || rc=1
bash tests/image/test_image.sh 2>&1 | tee "$out/image" || rc=1
bash tests/deploy/test_deploy.sh 2>&1 | tee "$out/deploy" || rc=1
bash tests/packaging/test_install.sh 2>&1 | tee "$out/packaging" || rc=1
# built by make test; run on its own, this builds it (as the e2e tools below)
make --no-print-directory build/rel/tests/tools/vmpool-tlsclient >/dev/null 2>&1 || true
bash tests/tls/test_tls.sh 2>&1 | tee "$out/tls" || rc=1
make --no-print-directory build/rel/tests/e2e/test_kubeclient >/dev/null 2>&1 || true
make --no-print-directory build/rel/tests/tools/vmpool-faultproxy >/dev/null 2>&1 || true
bash tests/e2e/run.sh 2>&1 | tee "$out/e2e" || rc=1
p=0 f=0
for s in unit stage fuzz image deploy packaging tls e2e; do
	line=$(grep -E '^[a-z0-9]+: [0-9]+ passed, [0-9]+ failed' "$out/$s" | tail -1)
	[ -n "$line" ] || { echo "$s: no summary line" >&2; rc=1; continue; }
	p=$((p + $(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')))
	f=$((f + $(echo "$line" | sed -E 's/.*passed, ([0-9]+) failed.*/\1/')))
done
rm -rf "$out"
echo "all: $p passed, $f failed"
[ "$f" -eq 0 ] && [ "$rc" -eq 0 ]

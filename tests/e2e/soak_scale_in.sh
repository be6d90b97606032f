#!/usr/bin/env bash
# Repeats the e2e case fault_scale_in (scale-in 150 -> 20 while vmpoold's connections are cut
# and refused; issue 12, defect 1) N times on one test cluster; not part of CI.
#   tests/e2e/soak_scale_in.sh [N]       N defaults to 20
# Environment as for tests/e2e/run.sh (VMPOOLD_CLUSTER_PORT, VMPOOLD_CLUSTER_DIR, E2E_KEEP).
# Prints each run's line and, at the end, every run's figures (live minimum, creates after the
# scale-in) from tests/e2e/out/kubevirt-fault_scale_in*/case.log.
set -u
n=${1:-20}
[[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [N]" >&2; exit 2; }
cd "$(dirname "$0")/../.." || exit 1
cases=()
for _ in $(seq 1 "$n"); do cases+=(fault_scale_in); done
bash tests/e2e/run.sh "${cases[@]}"
rc=$?
grep -h 'live VMs in' tests/e2e/out/kubevirt-fault_scale_in*/case.log 2>/dev/null | sed 's/^ */  /'
exit $rc

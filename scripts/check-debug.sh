#!/usr/bin/env bash
# make check-debug: the VM suites of make check on the debug kernel
# (configs/debug.config: KASAN, lockdep, DEBUG_VM, DEBUG_LIST, fault
# injection), under THP=madvise and THP=always. Any splat fails the run.
source "$(dirname "$0")/lib.sh"

"$TOP/scripts/deps.sh"
"$TOP/scripts/tree.sh"
"$TOP/scripts/build-kernel.sh" ours >/dev/null	# the guest programs use its headers
"$TOP/scripts/build-kernel.sh" debug
"$TOP/scripts/build-user.sh"
dirs=()
run_vm_checks debug
step "summarising (full logs under build/results/)"
echo
python3 "$TOP/scripts/reliability.py" "${dirs[@]}" | tee "$BUILD/results/reliability.txt"
echo
set +e
python3 "$TOP/scripts/ktap-summary.py" "${dirs[@]}" | tee "$BUILD/results/check-debug.ktap"
exit "${PIPESTATUS[0]}"

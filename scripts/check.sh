#!/usr/bin/env bash
# make check: build what is needed, run every suite under THP=madvise and
# THP=always on the release kernel and again on the debug kernel
# (configs/debug.config: KASAN, lockdep, DEBUG_VM, fault injection; any
# splat fails), run the series checks (checkpatch, kernel-doc, W=1/sparse,
# git am, bisect builds), fold the results into one KTAP document (also kept
# in build/results/check.ktap) ending in "N passed, N failed, N skipped".
# The driver-compatibility build (scripts/compat.sh) is summarised with them.
source "$(dirname "$0")/lib.sh"

"$TOP/scripts/deps.sh"
"$TOP/scripts/tree.sh"
"$TOP/scripts/build-kernel.sh" ours
"$TOP/scripts/build-kernel.sh" debug
"$TOP/scripts/build-user.sh"
dirs=()
run_vm_checks ours
run_vm_checks debug
"$TOP/scripts/compat.sh"
dirs+=("$BUILD/results/compat")
"$TOP/scripts/series-check.sh"
dirs+=("$BUILD/results/series")
step "summarising (full logs under build/results/)"
echo
python3 "$TOP/scripts/reliability.py" "${dirs[@]}" | tee "$BUILD/results/reliability.txt"
echo
set +e
python3 "$TOP/scripts/ktap-summary.py" "${dirs[@]}" | tee "$BUILD/results/check.ktap"
rc=${PIPESTATUS[0]}
exit "$rc"

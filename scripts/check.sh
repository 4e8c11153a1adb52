#!/usr/bin/env bash
# make check: build what is needed, run every suite under THP=madvise and
# THP=always, fold the results into one KTAP document (also kept in
# build/results/check.ktap) ending in "N passed, N failed, N skipped".
source "$(dirname "$0")/lib.sh"

"$TOP/scripts/deps.sh"
"$TOP/scripts/tree.sh"
"$TOP/scripts/build-kernel.sh" ours
"$TOP/scripts/build-user.sh"
dirs=()
for thp in madvise always; do
	"$TOP/scripts/vm.sh" check "$thp"
	dirs+=("$BUILD/results/check-$thp-ours")
done
step "summarising (full logs under build/results/)"
echo
set +e
python3 "$TOP/scripts/ktap-summary.py" "${dirs[@]}" | tee "$BUILD/results/check.ktap"
rc=${PIPESTATUS[0]}
exit "$rc"

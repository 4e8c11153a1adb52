#!/usr/bin/env bash
# make run: build and boot the patched kernel, run the HMM demonstration and
# print its report. Fails if a check in the demo fails or the kernel splats.
source "$(dirname "$0")/lib.sh"

"$TOP/scripts/deps.sh"
"$TOP/scripts/tree.sh"
"$TOP/scripts/build-kernel.sh" ours
"$TOP/scripts/build-user.sh"
"$TOP/scripts/vm.sh" demo madvise
out=$BUILD/results/demo-madvise-ours
echo
echo "Guest: $(sed -n 's/^@@HMM BOOT //p' "$out/results.txt")"
sed '/^@@HMM/d' "$out/results.txt"
echo
set +e
python3 "$TOP/scripts/ktap-summary.py" "$out" >"$out/summary.ktap"
rc=$?
grep -E '^not ok|^    # ' "$out/summary.ktap" | grep -v '# Subtest' || true
echo "kernel log: $out/console.txt ($(grep -c . "$out/console.txt") lines, $(grep -q '^ok .*kernel-log' "$out/summary.ktap" && echo 'no splats' || echo 'SPLATS FOUND'))"
exit $rc

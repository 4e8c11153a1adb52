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
for thp in madvise always; do
	VM_TIMEOUT=${VM_TIMEOUT:-2700} "$TOP/scripts/vm.sh" check "$thp" "$SRC/obj-debug/arch/x86/boot/bzImage"
	dirs+=("$BUILD/results/check-$thp-debug")
done
step "summarising (full logs under build/results/)"
echo
set +e
python3 "$TOP/scripts/ktap-summary.py" "${dirs[@]}" | tee "$BUILD/results/check-debug.ktap"
exit "${PIPESTATUS[0]}"

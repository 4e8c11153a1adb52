#!/usr/bin/env bash
# vm.sh MODE [THP] [KERNEL]: boot the test VM once.
#   MODE   demo | check | bench | shell (see scripts/guest-init.sh)
#   THP    madvise (default) | always: the boot's transparent_hugepage=
#   KERNEL bzImage to boot (default: build/src/obj-ours)
# The console (ttyS0: kernel log) goes to build/results/<tag>/console.log and
# the result channel (ttyS1) to .../results.log, tag = MODE-THP-<kernel
# variant>. A VM still running after VM_TIMEOUT seconds is killed and the
# run fails, naming the test that was running. VM_CPU picks the guest CPU
# model (default max), VM_MEM its memory, VM_APPEND and VM_QEMU_ARGS add to
# the kernel command line and to QEMU's, VM_TAG replaces the tag.
source "$(dirname "$0")/lib.sh"

mode=${1:?usage: vm.sh demo|check|shell [madvise|always] [bzImage]}
thp=${2:-madvise}
kernel=${3:-$SRC/obj-ours/arch/x86/boot/bzImage}
timeout=${VM_TIMEOUT:-900}
[ -f "$kernel" ] || die "no kernel at $kernel (make kernel)"
[ -f "$BUILD/initramfs.cpio.gz" ] || die "no initramfs (scripts/build-user.sh)"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (make deps)"
variant=$(basename "$(dirname "$(dirname "$(dirname "$(dirname "$kernel")")")")")
variant=${variant#obj-}
out=$BUILD/results/${VM_TAG:-$mode-$thp-$variant}
rm -rf "$out"; mkdir -p "$out"

# Two soft-reserved 256 MiB ranges at 1.5 GiB back the coherent dmirror
# devices; 64 2 MiB hugetlb pages serve the hugetlbfs tests.
append="console=ttyS0 panic=-1 transparent_hugepage=$thp hugepages=64
 memmap=512M%0x60000000-1+0xefffffff test_hmm.spm_addr_dev0=0x60000000
 test_hmm.spm_addr_dev1=0x70000000 hmm.mode=$mode ${VM_APPEND:-}"
append=$(echo $append)
qemu=(qemu-system-x86_64 -machine pc -cpu ${VM_CPU:-max} -smp 2 -m ${VM_MEM:-2G} -no-reboot
      -kernel "$kernel" -initrd "$BUILD/initramfs.cpio.gz" -append "$append"
      -display none -monitor none ${VM_QEMU_ARGS:-})
echo "$append" >"$out/cmdline"

if [ "$mode" = shell ]; then
	exec "${qemu[@]}" -serial mon:stdio -serial null
fi
step "booting $variant kernel in QEMU: $mode, THP=$thp (timeout ${timeout}s)"
set +e
timeout -k 5 "$timeout" "${qemu[@]}" -serial "file:$out/console.log" \
	-serial "file:$out/results.log" >"$out/qemu.log" 2>&1
rc=$?
set -e
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
	echo "VM TIMEOUT after ${timeout}s" >>"$out/results.log"
fi
tr -d '\r' <"$out/results.log" >"$out/results.txt"
tr -d '\r' <"$out/console.log" >"$out/console.txt"
grep -q '^@@HMM DONE' "$out/results.txt" || {
	running=$(grep -E '^#  RUN |^@@HMM BEGIN' "$out/results.txt" | tail -n 1 || true)
	done_step "VM did not finish (qemu exit $rc); last started: ${running:-nothing}"
	exit 0
}
done_step "results in ${out#$TOP/}"

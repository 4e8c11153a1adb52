#!/usr/bin/env bash
# repro.sh THP VARIANT PROG [ARGS...]: boot the test VM once and run one
# program with its arguments (make repro), to replay a failing seed. PROG is
# a suite from /suites (hmm-fuzz, hmm-stress, ...) or a program in /bin.
# VARIANT is ours or debug. The program's output and the kernel log's splats
# are printed; full logs are in build/results/run-THP-VARIANT/.
source "$(dirname "$0")/lib.sh"

thp=${1:?usage: repro.sh madvise|always ours|debug PROG [ARGS...]}
variant=${2:?usage: repro.sh madvise|always ours|debug PROG [ARGS...]}
shift 2
[ $# -gt 0 ] || die "nothing to run: make repro RUN='hmm-fuzz -s 42'"
case "$*" in *,*) die "arguments may not contain commas (they separate words on the kernel command line)" ;; esac
case $variant in ours|debug) ;; *) die "VARIANT must be ours or debug, not $variant" ;; esac

"$TOP/scripts/deps.sh"
"$TOP/scripts/tree.sh"
"$TOP/scripts/build-kernel.sh" ours >/dev/null	# the guest programs use its headers
[ "$variant" = ours ] || "$TOP/scripts/build-kernel.sh" "$variant"
"$TOP/scripts/build-user.sh"
VM_APPEND="hmm.run=$(IFS=,; echo "$*") ${VM_APPEND:-}" \
	"$TOP/scripts/vm.sh" run "$thp" "$SRC/obj-$variant/arch/x86/boot/bzImage"
out=$BUILD/results/run-$thp-$variant
grep -v '^@@HMM' "$out/results.txt" || true
echo
grep -nE 'BUG|WARNING|Oops|INFO: task|lockdep|KASAN|circular|blocked for more' \
	"$out/console.txt" | head -n 20 || true
grep -q '^@@HMM END .* 0$' "$out/results.txt"

#!/usr/bin/env bash
# make bench: the same benchmark program on the pristine base kernel and on
# ours, both built with the same config and booted under QEMU with
# -icount shift=0,align=off,sleep=off, so guest nanoseconds are guest
# instructions and every figure repeats exactly. Prints one table (also in
# build/results/bench.txt): case, size, instructions per page on each kernel,
# and the ratio ours/upstream (lower is better).
# The guest CPU is QEMU's default model (qemu64), the one the issue's
# reference figures were measured on: -cpu max advertises FSRM and ERMS,
# which turn every copy_to_user() and clear_page() into a rep movsb/stosb
# that TCG counts byte by byte, 4096 instructions per page that swamp the
# work being compared. Other boots keep -cpu max (VM_CPU, scripts/vm.sh).
#   BENCH_ARGS  arguments of hmm-bench, commas for spaces (default -r,5,4,64,512)
source "$(dirname "$0")/lib.sh"

args=${BENCH_ARGS:--r,5,4,64,512}
"$TOP/scripts/deps.sh"
"$TOP/scripts/tree.sh" --with-base
"$TOP/scripts/build-kernel.sh" ours >/dev/null
"$TOP/scripts/build-kernel.sh" base >/dev/null
"$TOP/scripts/build-user.sh"
for v in base ours; do
	case $v in base) kernel=$BASE_SRC/obj-base ;; ours) kernel=$SRC/obj-ours ;; esac
	VM_CPU=${VM_CPU:-qemu64} VM_TIMEOUT=${VM_TIMEOUT:-5400} VM_MEM=3G VM_APPEND="hmm.bench=$args" \
	VM_QEMU_ARGS="-icount shift=0,align=off,sleep=off" \
		"$TOP/scripts/vm.sh" bench madvise "$kernel/arch/x86/boot/bzImage"
done
python3 - "$BUILD/results/bench-madvise-base/results.txt" "$BUILD/results/bench-madvise-ours/results.txt" \
	"$(tree_version "$SRC")" <<'PY' | tee "$BUILD/results/bench.txt"
import sys
def load(path):
    out = {}
    for line in open(path, errors='replace'):
        f = line.split()
        if len(f) >= 5 and f[0] == 'BENCH':
            out[(f[1], int(f[2]))] = (int(f[3]), None if f[4] == 'error' else int(f[4]))
    return out
base, ours = load(sys.argv[1]), load(sys.argv[2])
print('Linux %s, guest instructions per page (best of runs), -icount shift=0' % sys.argv[3])
print('%-16s %6s %12s %12s %7s' % ('case', 'MiB', 'upstream', 'ours', 'ratio'))
for key in list(base) + [k for k in ours if k not in base]:
    (pages, b), (_, o) = base.get(key, (1, None)), ours.get(key, (1, None))
    per = lambda v: '%12.0f' % (v / pages) if v is not None else '%12s' % 'error'
    ratio = '%7.2f' % (o / b) if b and o is not None else '%7s' % '-'
    print('%-16s %6d %s %s %s' % (key[0], key[1], per(b), per(o), ratio))
PY

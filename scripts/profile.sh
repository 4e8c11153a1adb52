#!/usr/bin/env bash
# make profile [CASE=migrate-4k] [SIZE=64] [KERNEL=ours|base] [REPS=4]:
# where the guest instructions of one hmm-bench case go. Boots the kernel
# as make bench does (qemu64, -icount) with the tbprof QEMU plugin
# (tools/tbprof), which counts the instructions executed in every
# translation block between hmm-bench's prof_start() and prof_stop()
# markers, i.e. in the measured steps only. Prints the functions that
# executed the most instructions, per page, and keeps the whole list in
# build/results/profile-<kernel>-<case>.txt. The first of the REPS runs
# warms up and is left out.
source "$(dirname "$0")/lib.sh"

case_name=${CASE:-migrate-4k}
size=${SIZE:-64}
which=${KERNEL:-ours}
reps=${REPS:-4}
case $which in
ours) obj=$SRC/obj-ours ;;
base) obj=$BASE_SRC/obj-base ;;
*) die "KERNEL must be ours or base" ;;
esac
"$TOP/scripts/deps.sh"
if [ "$which" = base ]; then
	"$TOP/scripts/tree.sh" --with-base
else
	"$TOP/scripts/tree.sh"
fi
"$TOP/scripts/build-kernel.sh" "$which" >/dev/null
"$TOP/scripts/build-user.sh"

step "building the tbprof QEMU plugin"
plugin=$BUILD/tbprof/libtbprof.so
mkdir -p "$BUILD/tbprof"
run_logged "$LOGS/tbprof.log" gcc -O2 -Wall -shared -fPIC -fvisibility=hidden \
	-o "$plugin" "$TOP/tools/tbprof/tbprof.c"
done_step

bench=$BUILD/rootfs/bin/hmm-bench
addr() { nm "$bench" | awk -v s="$1" '$3 == s { print "0x" $1 }'; }
start=$(addr prof_start) stop=$(addr prof_stop)
[ -n "$start" ] && [ -n "$stop" ] || die "no prof_start/prof_stop in $bench"
raw=$BUILD/tbprof/$which-$case_name.raw
rm -f "$raw"
VM_CPU=qemu64 VM_TIMEOUT=${VM_TIMEOUT:-3600} VM_MEM=3G VM_TAG=profile-$which \
VM_APPEND="nokaslr hmm.bench=-r,$reps,-c,$case_name,$size" \
VM_QEMU_ARGS="-icount shift=0,align=off,sleep=off -plugin $plugin,start=$start,stop=$stop,out=$raw" \
	"$TOP/scripts/vm.sh" bench madvise "$obj/arch/x86/boot/bzImage"
[ -s "$raw" ] || die "the plugin wrote no profile ($raw)"
res=$BUILD/results/profile-$which/results.txt
out=$BUILD/results/profile-$which-$case_name.txt
# hmm-bench leaves the first (warm-up) run of a case out of the profile.
pages=$(( size * 256 * (reps > 1 ? reps - 1 : 1) ))
python3 - "$raw" "$obj/System.map" "$bench" "$pages" "$res" "$obj" <<'PY' | tee "$out"
import bisect, os, subprocess, sys
raw, sysmap, bench, pages, res, obj = sys.argv[1:7]
pages = int(pages)
# Functions of the files the series owns, marked in the list and summed.
owned = set()
for o in ('mm/hmm.o', 'mm/migrate_device.o', 'lib/test_hmm.o'):
    if os.path.exists(os.path.join(obj, o)):
        out = subprocess.run(['nm', os.path.join(obj, o)], capture_output=True, text=True).stdout
        owned |= {f.split()[2] for f in out.splitlines() if len(f.split()) == 3 and f.split()[1] in 'tT'}
syms = []
for line in open(sysmap):
    a, t, n = line.split()[:3]
    if t in 'tTwW':
        syms.append((int(a, 16), n))
for line in subprocess.run(['nm', '-n', bench], capture_output=True, text=True).stdout.splitlines():
    f = line.split()
    if len(f) == 3 and f[1] in 'tTwW':
        syms.append((int(f[0], 16), 'user:' + f[2]))
syms.sort()
addrs = [a for a, _ in syms]
per = {}
total = 0
for line in open(raw):
    a, n = line.split()
    a, n = int(a, 16), int(n)
    i = bisect.bisect_right(addrs, a) - 1
    name = syms[i][1] if i >= 0 else '?'
    if (a >= 1 << 63) == name.startswith('user:'):
        name = 'kernel:other' if a >= 1 << 63 else 'user:other'
    per[name] = per.get(name, 0) + n
    total += n
print('guest instructions per page between the markers: %.0f (%d pages)' % (total / pages, pages))
mine = sum(n for name, n in per.items() if name in owned)
print('in the series\' files (mm/hmm.c, mm/migrate_device.c, lib/test_hmm.c): %.0f, elsewhere: %.0f'
      % (mine / pages, (total - mine) / pages))
for line in open(res, errors='replace'):
    if line.startswith('BENCH'):
        print(line.strip())
for name, n in sorted(per.items(), key=lambda x: -x[1]):
    print('%8.1f  %5.1f%%  %s%s' % (n / pages, 100.0 * n / total, name, ' [series]' if name in owned else ''))
PY

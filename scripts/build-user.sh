#!/usr/bin/env bash
# Build the guest's static programs and pack the initramfs:
#   suites/hmm-tests-upstream  upstream's pristine hmm-tests.c from the base commit
#   suites/<name>              each of our selftests kernel/tools/testing/selftests/mm/hmm*.c
#   bin/hmm-demo               the `make run` demonstration (tools/hmm-demo.c)
#   bin/hmm-bench              the `make bench` program (tools/hmm-bench.c)
source "$(dirname "$0")/lib.sh"

hdr=$SRC/obj-ours/usr/include
[ -d "$hdr/linux" ] || die "kernel headers missing under $hdr: build the kernel first (make kernel)"
bb=$(command -v busybox || true)
[ -n "$bb" ] && file -L "$bb" 2>/dev/null | grep -q static || bb=/bin/busybox
file -L "$bb" | grep -q 'statically linked' || die "no static busybox: install busybox-static (make deps)"

root=$BUILD/rootfs
step "building guest programs (static, against the assembled tree's headers)"
rm -rf "$root"; mkdir -p "$root"/{bin,suites,proc,sys,dev,tmp}
cflags=(-static -O2 -Wall -isystem "$hdr")
libs=(-lrt -lpthread -lm)

# Upstream's suite, compiled unchanged from the pristine base commit.
conf=$BUILD/conformance
rm -rf "$conf"; mkdir -p "$conf"
git -C "$SRC" archive base tools/testing/selftests/kselftest_harness.h \
	tools/testing/selftests/kselftest.h tools/testing/selftests/mm \
	lib/test_hmm_uapi.h mm/gup_test.h | tar -x -C "$conf"
run_logged "$LOGS/user-hmm-tests-upstream.log" gcc "${cflags[@]}" -I "$conf" \
	"$conf/tools/testing/selftests/mm/hmm-tests.c" "${libs[@]}" -o "$root/suites/hmm-tests-upstream"

# Our selftests, from the assembled tree.
n=1
for t in "$TOP"/kernel/tools/testing/selftests/mm/hmm*.c; do
	[ -e "$t" ] || continue
	name=$(basename "$t" .c)
	run_logged "$LOGS/user-$name.log" gcc "${cflags[@]}" -Werror -I "$SRC" \
		"$SRC/tools/testing/selftests/mm/$name.c" "${libs[@]}" -o "$root/suites/$name"
	n=$((n + 1))
done
for prog in hmm-demo hmm-bench; do
	run_logged "$LOGS/user-$prog.log" gcc "${cflags[@]}" -Werror -I "$SRC" \
		"$TOP/tools/$prog.c" -o "$root/bin/$prog"
done
cp "$bb" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
install -m 755 "$TOP/scripts/guest-init.sh" "$root/init"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 >"$BUILD/initramfs.cpio.gz"
done_step "$n suites, $(du -h "$BUILD/initramfs.cpio.gz" | cut -f1) initramfs"

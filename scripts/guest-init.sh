#!/bin/sh
# /init of the test VM (busybox sh). The host picks the job with hmm.mode= on
# the kernel command line: demo, check or shell. Results go to /dev/ttyS1 so
# they never interleave with kernel messages on the console (ttyS0); markers
# starting with "@@HMM" let the host find each suite and notice a hang.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/hugepages && mount -t hugetlbfs hugetlbfs /dev/hugepages

mode=shell
bench_args=
for arg in $(cat /proc/cmdline); do
	case $arg in
	hmm.mode=*) mode=${arg#hmm.mode=} ;;
	hmm.bench=*) bench_args=$(echo "${arg#hmm.bench=}" | tr , ' ') ;;
	esac
done
out=/dev/ttyS1
[ -c $out ] || out=/dev/console

say() { echo "@@HMM $*" >$out; }
say "BOOT $(uname -r) thp=$(sed 's/.*\[\(.*\)\].*/\1/' /sys/kernel/mm/transparent_hugepage/enabled) hugepages=$(cat /proc/sys/vm/nr_hugepages)"
ls /dev/hmm_dmirror* >/dev/null 2>&1 || echo "no /dev/hmm_dmirror* devices: is CONFIG_TEST_HMM=y?" >$out

case $mode in
demo)
	say "BEGIN demo"
	/bin/hmm-demo >$out 2>&1
	say "END demo $?"
	;;
bench)
	say "BEGIN bench"
	/bin/hmm-bench $bench_args >$out 2>&1
	say "END bench $?"
	;;
check)
	for t in /suites/*; do
		name=${t##*/}
		say "BEGIN $name"
		(cd /tmp && "$t") >$out 2>&1
		say "END $name $?"
	done
	;;
shell)
	echo "HMM test VM: tests are in /suites, the demo is /bin/hmm-demo; 'poweroff -f' leaves."
	setsid cttyhack sh
	;;
esac
say DONE
sync
poweroff -f

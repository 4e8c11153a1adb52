#!/bin/sh
# /init of the test VM (busybox sh). The host picks the job with hmm.mode= on
# the kernel command line: demo, check, bench, run or shell. Results go to
# /dev/ttyS1 so they never interleave with kernel messages on the console (ttyS0); markers
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
run_cmd=
suite_args=	# "name=arg,arg ..." from hmm.args.NAME=ARG,ARG
suite_timeout=600
ran=
for arg in $(cat /proc/cmdline); do
	case $arg in
	hmm.mode=*) mode=${arg#hmm.mode=} ;;
	hmm.bench=*) bench_args=$(echo "${arg#hmm.bench=}" | tr , ' ') ;;
	hmm.suite_timeout=*) suite_timeout=${arg#hmm.suite_timeout=} ;;
	hmm.run=*) run_cmd=$(echo "${arg#hmm.run=}" | tr , ' ') ;;
	hmm.args.*=*) suite_args="$suite_args ${arg#hmm.args.}" ;;
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
	# Upstream's conformance suite first: a suite of ours that wedges the
	# kernel must not keep it from running. A suite still running after
	# $suite_timeout seconds is killed and reported with status 124; one
	# stuck in the kernel is left behind and the next suite starts.
	for t in /suites/hmm-tests-upstream /suites/*; do
		name=${t##*/}
		case " $ran " in *" $name "*) continue ;; esac
		ran="$ran $name"
		[ -x "$t" ] || continue
		args=
		for a in $suite_args; do
			[ "${a%%=*}" = "$name" ] && args=$(echo "${a#*=}" | tr , ' ')
		done
		say "BEGIN $name"
		[ -z "$args" ] || echo "# $name $args" >$out
		(cd /tmp && exec "$t" $args) >$out 2>&1 &
		pid=$! waited=0
		while kill -0 $pid 2>/dev/null && [ $waited -lt $suite_timeout ]; do
			sleep 1
			waited=$((waited + 1))
		done
		if kill -0 $pid 2>/dev/null; then
			kill -9 $pid 2>/dev/null
			echo "# suite timeout: still running after ${suite_timeout}s" >$out
			say "END $name 124"
		else
			wait $pid
			say "END $name $?"
		fi
	done
	;;
run)
	# One command, to replay a seed: hmm.run=hmm-fuzz,-s,123 runs
	# /suites/hmm-fuzz -s 123 (or a program in /bin).
	set -- $run_cmd
	prog=$1; shift
	[ -x "/suites/$prog" ] && prog=/suites/$prog
	say "BEGIN $(basename "$prog")"
	(cd /tmp && exec "$prog" "$@") >$out 2>&1
	rc=$?
	# The device counters afterwards: a leak shows in dev_pages_in_use.
	for d in /dev/hmm_dmirror*; do
		[ -c "$d" ] || continue
		mm=$(stat -c '%t %T' "$d") st=/sys/dev/char/$((0x${mm% *})):$((0x${mm#* }))/stats
		[ -d "$st" ] && echo "# ${d#/dev/}: $(cd "$st" && grep -H . * | tr '\n' ' ')" >$out
	done
	say "END $(basename "$prog") $rc"
	;;
shell)
	echo "HMM test VM: tests are in /suites, the demo is /bin/hmm-demo; 'poweroff -f' leaves."
	setsid cttyhack sh
	;;
esac
say DONE
sync
poweroff -f

# Shared settings for the harness scripts; sourced, never run.
# shellcheck shell=bash
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
TARBALL=${TARBALL:-/usr/src/linux-source-6.12.tar.xz}
SRC=$BUILD/src              # git repo: base commit + one commit per patch
BASE_SRC=$BUILD/src-base    # worktree of $SRC at the base commit
LOGS=$BUILD/logs
BASE_VERSION_RE='^6\.12\.[0-9]+$'
JOBS=${JOBS:-$(( $(nproc) + 1 ))}
export CCACHE_BASEDIR=$BUILD
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G}
export CCACHE_SLOPPINESS=time_macros,include_file_mtime,include_file_ctime

mkdir -p "$BUILD" "$LOGS"

# One line per step: "==> what", then "    done (Ns)" or a failure naming the log.
step_start=0
step() { step_start=$SECONDS; printf '==> %s\n' "$*"; }
done_step() { printf '    done (%ds)%s\n' $((SECONDS - step_start)) "${1:+: $1}"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# run_logged LOG CMD...: run CMD with all output in LOG; on failure print the
# tail of the log and the log's path, then fail.
run_logged() {
	local log=$1; shift
	if ! "$@" >"$log" 2>&1; then
		tail -n 25 "$log" >&2
		die "'$*' failed; full log: $log"
	fi
}

# The kernel version the base tarball holds, e.g. 6.12.117.
tree_version() {
	local mk=$1/Makefile
	printf '%s.%s.%s\n' "$(sed -n 's/^VERSION = //p' "$mk")" \
		"$(sed -n 's/^PATCHLEVEL = //p' "$mk")" "$(sed -n 's/^SUBLEVEL = //p' "$mk")"
}

# run_vm_checks VARIANT: boot the VARIANT (ours or debug) kernel once per
# THP mode with every suite; appends the result directories to dirs[].
run_vm_checks() {
	local variant=$1 thp
	for thp in madvise always; do
		if [ "$variant" = debug ]; then
			# KASAN makes the fuzzer five times slower: 20,000 calls per mode.
			VM_TIMEOUT=${VM_TIMEOUT:-2700} \
			VM_APPEND="hmm.args.hmm-fuzz=-n,20000 ${VM_APPEND:-}" \
				"$TOP/scripts/vm.sh" check "$thp" "$SRC/obj-debug/arch/x86/boot/bzImage"
		else
			"$TOP/scripts/vm.sh" check "$thp" "$SRC/obj-$variant/arch/x86/boot/bzImage"
		fi
		dirs+=("$BUILD/results/check-$thp-$variant")
	done
}

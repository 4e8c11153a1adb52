#!/usr/bin/env bash
# build-kernel.sh VARIANT: configure and build one kernel with ccache.
#   ours   the assembled series (build/src), configs/base + hmm fragments
#   base   the pristine base tree (build/src-base), the same config
#   debug  the assembled series with configs/debug.config on top (KASAN, lockdep, ...)
#   bisect a prefix of the series checked out in build/bisect (series-check.sh)
# KCONFIG_LENIENT=1 accepts fragment options the tree does not define (a
# prefix of the series may predate a symbol the series adds).
# Prints the bzImage path on the last line. Incremental: .config is replaced
# only when the merged configuration changes.
source "$(dirname "$0")/lib.sh"

variant=${1:?usage: build-kernel.sh ours|base|debug|bisect}
case $variant in
ours) src=$SRC;      frags=(base hmm) ;;
base) src=$BASE_SRC; frags=(base hmm) ;;
bisect) src=$BUILD/bisect; frags=(base hmm) ;;
debug) src=$SRC;     frags=(base hmm debug) ;;
*) die "unknown kernel variant '$variant' (ours, base, bisect, debug)" ;;
esac
[ -f "$src/Makefile" ] || die "$src is missing: run scripts/tree.sh${variant/ours/}${variant/base/ --with-base} first"
# The object directory sits directly inside the source tree, so kbuild uses
# srctree=".." and every compiler command line is the same whichever tree it
# builds: ccache then shares objects between ours, base and any other tree.
obj=$src/obj-$variant
mkdir -p "$obj"
exec 9>"$obj/.build.lock"
flock 9		# one build of a variant at a time
command -v ccache >/dev/null || die "ccache missing (make deps)"
kmake() { make -C "$src" O="$obj" ARCH=x86_64 CC="ccache gcc" HOSTCC="ccache gcc" "$@"; }

# Configuration: allnoconfig with the fragments forced on top.
frag=$obj/fragment.config
for f in "${frags[@]}"; do cat "$TOP/configs/$f.config"; done >"$frag.new"
KCONFIG_CONFIG=.config.new kmake -s KCONFIG_ALLCONFIG="$frag.new" allnoconfig \
	>"$LOGS/config-$variant.log" 2>&1 || { tail "$LOGS/config-$variant.log"; die "kconfig failed"; }
# Every option a fragment asks for must hold, or the kernel is not what we test.
bad=$(grep -E '^(# )?CONFIG_' "$frag.new" | while read -r line; do
	sym=$(sed -E 's/^# (CONFIG_[A-Za-z0-9_]+) is not set/\1/;s/=.*//' <<<"$line")
	if [ -n "${KCONFIG_LENIENT:-}" ] && ! grep -qE "^$sym=|^# $sym is not set" "$obj/.config.new"; then
		continue
	fi
	case $line in
	"# "*) grep -q "^$sym=" "$obj/.config.new" && echo "$sym (wanted unset)" ;;
	*) grep -qxF "$line" "$obj/.config.new" && continue
	   # The pristine base lacks the symbols the series adds (its KUnit
	   # suites): those are not refusals.
	   if [ "$variant" = base ] && ! grep -rqsx --include='Kconfig*' "config ${sym#CONFIG_}" "$src"; then
		continue
	   fi
	   echo "$line (got: $(grep -E "^$sym=|^# $sym " "$obj/.config.new" || echo unset))" ;;
	esac
done)
[ -z "$bad" ] || die "configs/ fragments ask for options kconfig refused: $(echo "$bad" | paste -sd';')"
if cmp -s "$obj/.config.new" "$obj/.config"; then rm "$obj/.config.new"; else mv "$obj/.config.new" "$obj/.config"; fi
mv "$frag.new" "$frag"

# Build with a progress line every minute; the total is the previous build's.
log=$LOGS/build-$variant.log
step "building the $variant kernel ($(tree_version "$src"), make -j$JOBS, log: ${log#$TOP/})"
total=$(cat "$obj/.objcount" 2>/dev/null || echo 2600)
( while sleep 60 </dev/null >/dev/null 2>&1; do
	n=$(grep -cE '^  (CC|AS|LD|AR)' "$log" 2>/dev/null || true)
	printf '    ... %d%% (%d steps of ~%d, %dm so far)\n' $((n * 100 / (total ? total : 1))) "$n" "$total" $(((SECONDS - step_start) / 60))
  done ) &
mon=$!
trap 'kill $mon 2>/dev/null || true' EXIT
run_logged "$log" kmake -j"$JOBS" bzImage headers_install
kill $mon 2>/dev/null || true
n=$(grep -cE '^  (CC|AS|LD|AR)' "$log" || true)
[ "$n" -gt 500 ] && echo "$n" >"$obj/.objcount"
done_step "$n objects rebuilt"
echo "$obj/arch/x86/boot/bzImage"

#!/usr/bin/env bash
# series-check.sh: the checks a maintainer runs on the series, reported as
# host-side suites in build/results/series/results.txt (read by
# ktap-summary.py):
#   checkpatch   scripts/checkpatch.pl --strict on every patch: 0 errors, 0 warnings
#   kernel-doc   scripts/kernel-doc -none -Wall on every kernel source file we own
#   warnings     W=1 and sparse (C=2) on every object built from our .c files:
#                no warning located in a file of ours
#   git-am       the format-patch files apply with git am on the pristine base
#                and give exactly the tree of the series
#   bisect       every prefix of the series builds (bzImage); a prefix that
#                built once is remembered by its tree hash
# Needs the assembled tree (tree.sh) and the kernel config (build-kernel.sh ours).
source "$(dirname "$0")/lib.sh"

out=$BUILD/results/series
rm -rf "$out"; mkdir -p "$out"
res=$out/results.txt
: >"$res"
# suite NAME: start a suite; case OK|FAIL NAME [DIAG...]; end_suite.
ncase=0; suite_rc=0; cases=()
suite() { echo "@@HMM BEGIN $1" >>"$res"; ncase=0; suite_rc=0; cases=(); }
case_() {
	local verdict=$1 name=$2 d; shift 2
	ncase=$((ncase + 1))
	if [ "$verdict" = OK ]; then
		cases+=("ok $ncase $name")
	else
		for d in "$@"; do cases+=("# $d"); done
		cases+=("not ok $ncase $name")
		suite_rc=1
	fi
}
end_suite() {
	{ echo "1..$ncase"; [ $ncase -eq 0 ] || printf '%s\n' "${cases[@]}"; echo "@@HMM END $1 $suite_rc"; } >>"$res"
}
kmake() { make -C "$1" O="$2" ARCH=x86_64 CC="ccache gcc" HOSTCC="ccache gcc" "${@:3}"; }

"$TOP/scripts/patches.sh" >/dev/null
patches=("$BUILD"/patches/0*.patch)
[ -e "${patches[0]}" ] || { echo "@@HMM DONE" >>"$res"; exit 0; }
patches=($(printf '%s\n' "${patches[@]}" | grep -v 0000-cover-letter))

step "checkpatch --strict on ${#patches[@]} patches"
suite checkpatch
for p in "${patches[@]}"; do
	log=$(cd "$SRC" && perl scripts/checkpatch.pl --strict --no-tree --terse --showfile "$p" 2>&1 || true)
	bad=$(grep -E ': (ERROR|WARNING|CHECK):' <<<"$log" || true)
	if [ -z "$bad" ]; then case_ OK "$(basename "$p")"
	else mapfile -t d < <(head -n 15 <<<"$bad"); case_ FAIL "$(basename "$p")" "${d[@]}"; fi
done
end_suite checkpatch
done_step

step "kernel-doc -Wall on our kernel sources"
suite kernel-doc
while read -r f; do
	log=$(cd "$SRC" && perl scripts/kernel-doc -none -Wall "$f" 2>&1 || true)
	if [ -z "$log" ]; then case_ OK "$f"
	else mapfile -t d < <(head -n 15 <<<"$log"); case_ FAIL "$f" "${d[@]}"; fi
done < <(cd "$TOP/kernel" && find include mm lib -name '*.[ch]' 2>/dev/null | sort)
end_suite kernel-doc
done_step

step "W=1 and sparse on the objects of our .c files"
suite warnings
wobj=obj-warn
mkdir -p "$SRC/$wobj"
if ! cmp -s "$SRC/obj-ours/.config" "$SRC/$wobj/.config"; then
	cp "$SRC/obj-ours/.config" "$SRC/$wobj/.config"
fi
run_logged "$LOGS/warn-prepare.log" kmake "$SRC" "$wobj" -j"$JOBS" olddefconfig prepare
ours_c=$(cd "$TOP/kernel" && find mm lib -name '*.c' 2>/dev/null | sort || true)
for f in $ours_c; do
	o=${f%.c}.o
	log=$LOGS/warn-${o//\//_}.log
	rm -f "$SRC/$wobj/$o"
	if ! kmake "$SRC" "$wobj" W=1 C=2 "$o" >"$log" 2>&1; then
		if grep -q 'No rule to make target' "$log"; then
			continue	# not built in this configuration
		fi
		mapfile -t d < <(grep -E 'error|warning' "$log" | head -n 15); case_ FAIL "$o" "${d[@]}"; continue
	fi
	mine=$(grep -E '(warning|error):' "$log" | grep -E "^(\.\./)?($(echo $ours_c $(cd "$TOP/kernel" && find include -name '*.h' 2>/dev/null || true) | tr ' ' '|')):" || true)
	if [ -z "$mine" ]; then case_ OK "$o"
	else mapfile -t d < <(head -n 15 <<<"$mine"); case_ FAIL "$o" "${d[@]}"; fi
done
end_suite warnings
done_step

step "git am of build/patches on the pristine base"
suite git-am
am=$BUILD/am
rm -rf "$am"; git -C "$SRC" worktree prune
git -C "$SRC" worktree add -q --detach "$am" base
if (cd "$am" && git -c user.name=am -c user.email=am@localhost am -q "${patches[@]}") >"$LOGS/git-am.log" 2>&1; then
	if [ "$(git -C "$am" rev-parse 'HEAD^{tree}')" = "$(git -C "$SRC" rev-parse 'hmm^{tree}')" ]; then
		case_ OK "applies-and-matches"
	else
		case_ FAIL "applies-and-matches" "git am applied, but the tree differs from the series"
	fi
else
	mapfile -t d < <(tail -n 10 "$LOGS/git-am.log"); case_ FAIL "applies-and-matches" "${d[@]}"
fi
git -C "$SRC" worktree remove --force "$am"
end_suite git-am
done_step

step "building every prefix of the series (bisectability)"
suite bisect
bis=$BUILD/bisect
okdir=$BUILD/bisect-ok
mkdir -p "$okdir"
for c in $(git -C "$SRC" rev-list --reverse base..hmm); do
	name=$(git -C "$SRC" log -1 --format='%s' "$c")
	tree=$(git -C "$SRC" rev-parse "$c^{tree}")
	if [ -e "$okdir/$tree" ]; then case_ OK "$name (built before)"; continue; fi
	if [ ! -d "$bis/.git" ] && [ ! -f "$bis/.git" ]; then
		git -C "$SRC" worktree add -q --detach "$bis" "$c"
	else
		git -C "$bis" checkout -q --detach "$c"
	fi
	printf '    ... %s\n' "$name"
	if KCONFIG_LENIENT=1 "$TOP/scripts/build-kernel.sh" bisect >"$LOGS/bisect-$tree.log" 2>&1; then
		touch "$okdir/$tree"; case_ OK "$name"
	else
		mapfile -t d < <(tail -n 8 "$LOGS/bisect-$tree.log"); case_ FAIL "$name" "${d[@]}"
	fi
done
end_suite bisect
done_step
echo "@@HMM DONE" >>"$res"

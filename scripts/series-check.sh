#!/usr/bin/env bash
# series-check.sh: the checks a maintainer runs on the series, reported as
# host-side suites in build/results/series/results.txt (read by
# ktap-summary.py):
#   checkpatch   scripts/checkpatch.pl --strict on every patch: 0 errors, 0 warnings
#   kernel-doc   scripts/kernel-doc -none -Wall on every kernel source file we own
#   warnings     W=1 and sparse (C=2) on every object built from our .c files:
#                no kind of warning in a file of ours that the base version
#                of that file does not have
#   git-am       the format-patch files apply with git am on the pristine base
#                and give exactly the tree of the series
#   bisect       every prefix of the series builds (bzImage); a prefix that
#                built once is remembered by its tree hash (in ~/.cache)
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

step "W=1 and sparse on the objects of our .c files, compared with the base"
# Sparse cannot see the RCU read lock that pte_offset_map() takes inside a
# helper, so every pte_unmap() user in mm/ gets "context imbalance"; what
# counts is a kind of warning the base version of the same file does not
# have. Messages are compared without line numbers and quoted names.
suite warnings
"$TOP/scripts/tree.sh" --with-base >/dev/null
prepare_warn() {	# TREE: an obj-warn with the test kernel's config
	mkdir -p "$1/obj-warn"
	cmp -s "$SRC/obj-ours/.config" "$1/obj-warn/.config.src" ||
		{ cp "$SRC/obj-ours/.config" "$1/obj-warn/.config"; cp "$1/obj-warn/.config" "$1/obj-warn/.config.src"; }
	run_logged "$LOGS/warn-prepare-$(basename "$1").log" kmake "$1" obj-warn -j"$JOBS" olddefconfig prepare
}
warnings_of() {	# LOG: "file: message" per warning, normalised
	grep -E '(warning|error):' "$1" | sed -E "s#^(\.\./)+##; s#:[0-9]+:[0-9]+: #: #; s#'[^']*'#'_'#g" | sort -u || true
}
prepare_warn "$SRC"
prepare_warn "$BASE_SRC"
ours_c=$(cd "$TOP/kernel" && find mm lib -name '*.c' 2>/dev/null | sort || true)
for f in $ours_c; do
	o=${f%.c}.o
	log=$LOGS/warn-${o//\//_}.log blog=$LOGS/warn-base-${o//\//_}.log
	rm -f "$SRC/obj-warn/$o" "$BASE_SRC/obj-warn/$o"
	if ! kmake "$SRC" obj-warn W=1 C=2 "$o" >"$log" 2>&1; then
		grep -q 'No rule to make target' "$log" && continue	# not in this config
		mapfile -t d < <(grep -E 'error|warning' "$log" | head -n 15); case_ FAIL "$o" "${d[@]}"; continue
	fi
	kmake "$BASE_SRC" obj-warn W=1 C=2 "$o" >"$blog" 2>&1 || true
	new=$(comm -23 <(warnings_of "$log" | grep -F "$f:" || true) <(warnings_of "$blog"))
	if [ -z "$new" ]; then case_ OK "$o"
	else mapfile -t d < <(head -n 15 <<<"$new"); case_ FAIL "$o" "${d[@]}"; fi
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
# Kept outside build/ like ccache, so a fresh clone on the same machine does
# not rebuild prefixes already proven to build.
okdir=${XDG_CACHE_HOME:-$HOME/.cache}/hmm-series/bisect-ok
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

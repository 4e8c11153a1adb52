#!/usr/bin/env bash
# compat.sh: do the in-tree users of the HMM API still build, without new
# warnings? Configures build/src/obj-compat (the series) and
# build/src-base/obj-compat (the pristine base) with configs/base + hmm +
# compat, runs "make prepare" in both, compiles each driver object with W=1
# in both trees, and fails an object on a compile error or on any warning the
# base tree does not also produce. Results (one TAP document framed like a
# guest suite) go to build/results/compat/results.txt; logs to build/logs/.
source "$(dirname "$0")/lib.sh"

objs=(
	drivers/gpu/drm/nouveau/nouveau_svm.o
	drivers/gpu/drm/nouveau/nouveau_dmem.o
	drivers/gpu/drm/amd/amdgpu/amdgpu_hmm.o
	drivers/gpu/drm/amd/amdgpu/../amdkfd/kfd_svm.o
	drivers/gpu/drm/amd/amdgpu/../amdkfd/kfd_migrate.o
	drivers/gpu/drm/xe/xe_hmm.o
	drivers/infiniband/core/umem_odp.o
)
frags=(base hmm compat)

"$TOP/scripts/tree.sh" --with-base >/dev/null

# cmake TREE ARGS...: make in TREE's obj-compat (inside the tree, so ccache
# shares objects with the other builds).
cmake_() {
	local src=$1; shift
	make -C "$src" O="$src/obj-compat" ARCH=x86_64 CC="ccache gcc" HOSTCC="ccache gcc" "$@"
}

# configure TREE NAME: allnoconfig with the fragments forced on; every option
# compat.config asks for must hold (base and hmm may name symbols that only
# the series adds). Then make prepare.
configure() {
	local src=$1 name=$2 obj=$1/obj-compat frag bad
	mkdir -p "$obj"
	frag=$obj/fragment.config
	for f in "${frags[@]}"; do cat "$TOP/configs/$f.config"; done >"$frag"
	KCONFIG_CONFIG=.config.new cmake_ "$src" -s KCONFIG_ALLCONFIG="$frag" allnoconfig \
		>"$LOGS/compat-config-$name.log" 2>&1 ||
		{ tail "$LOGS/compat-config-$name.log"; die "kconfig failed for the $name tree"; }
	bad=$(grep -E '^CONFIG_' "$TOP/configs/compat.config" | while read -r line; do
		grep -qxF "$line" "$obj/.config.new" || echo "${line%%=*}"
	done)
	[ -z "$bad" ] || die "configs/compat.config: kconfig refused $(echo $bad)"
	if cmp -s "$obj/.config.new" "$obj/.config"; then rm "$obj/.config.new"; else mv "$obj/.config.new" "$obj/.config"; fi
	run_logged "$LOGS/compat-prepare-$name.log" cmake_ "$src" -j"$JOBS" prepare
}

# Warnings of one compile log, without line and column numbers (the series
# may move lines in headers it owns) and without the object-directory prefix.
warnings() {
	grep -E ': warning: ' "$1" | sed -E 's#^(\.\./)+##; s#:[0-9]+:[0-9]+: warning: #: warning: #' | sort -u || true
}

step "driver compatibility: configuring and preparing both trees (logs: ${LOGS#$TOP/}/compat-*)"
configure "$BASE_SRC" base
configure "$SRC" ours
done_step

out=$BUILD/results/compat
rm -rf "$out"; mkdir -p "$out"
res=$out/results.txt
{
	echo "@@HMM BEGIN driver-compat"
	echo "1..${#objs[@]}"
} >"$res"
rc=0 i=0
for o in "${objs[@]}"; do
	i=$((i + 1))
	name=$(basename "$o")
	step "driver compatibility: $name (W=1, series and base)"
	ours_log=$LOGS/compat-ours-$name.log base_log=$LOGS/compat-base-$name.log
	# Force the object to be rebuilt (ccache makes this cheap) so that its
	# warnings show up in the log every time.
	rm -f "$SRC/obj-compat/$o" "$BASE_SRC/obj-compat/$o"
	cmake_ "$BASE_SRC" W=1 "$o" >"$base_log" 2>&1 || true
	if ! cmake_ "$SRC" W=1 "$o" >"$ours_log" 2>&1; then
		echo "not ok $i $name" >>"$res"
		{ grep -E 'error' "$ours_log" || true; } | head -n 10 | sed 's/^/# /' >>"$res"
		echo "# compile error; log: ${ours_log#$TOP/}" >>"$res"
		rc=1
		done_step "FAILED: compile error (${ours_log#$TOP/})"
		continue
	fi
	new=$(comm -23 <(warnings "$ours_log") <(warnings "$base_log"))
	if [ -n "$new" ]; then
		echo "not ok $i $name" >>"$res"
		head -n 10 <<<"$new" | sed 's/^/# new warning: /' >>"$res"
		rc=1
		done_step "FAILED: $(grep -c . <<<"$new") new warnings (${ours_log#$TOP/})"
	else
		echo "ok $i $name" >>"$res"
		done_step "$(warnings "$ours_log" | grep -c .) warnings, none new"
	fi
done
{
	echo "@@HMM END driver-compat $rc"
	echo "@@HMM DONE"
} >>"$res"
exit 0

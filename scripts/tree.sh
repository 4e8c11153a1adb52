#!/usr/bin/env bash
# Assemble build/src: a git repository whose first commit is the pristine
# linux-source-6.12 tarball (tag "base") and whose branch "hmm" adds one commit
# per patch described in series/. Files change on disk only where the new tip
# differs from what is checked out, so kernel builds stay incremental.
source "$(dirname "$0")/lib.sh"

# One assembly at a time: a second make target waits here instead of
# tripping over the first one's git index.
exec 9>"$BUILD/.tree.lock"
flock 9

[ -r "$TARBALL" ] || die "$TARBALL missing: install linux-source-6.12 (make deps)"
deb=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null || echo unknown)
stamp="$(stat -c '%s %Y' "$TARBALL") $deb"

git_src() { git -C "$SRC" -c user.name='HMM team' -c user.email='hmm-team@localhost' "$@"; }

if [ ! -d "$SRC/.git" ] || [ "$(cat "$SRC/.git/hmm-base-stamp" 2>/dev/null)" != "$stamp" ]; then
	step "unpacking base tree from $TARBALL (linux-source-6.12 $deb)"
	rm -rf "$SRC" "$SRC.tmp" "$BASE_SRC"
	mkdir -p "$SRC.tmp"
	tar -C "$SRC.tmp" --strip-components=1 -xf "$TARBALL"
	ver=$(tree_version "$SRC.tmp")
	[[ $ver =~ $BASE_VERSION_RE ]] || die "base tarball holds Linux $ver, expected 6.12.y"
	done_step "Linux $ver"
	step "recording the base commit (git add of ~90k files)"
	mv "$SRC.tmp" "$SRC"
	git -C "$SRC" init -q -b hmm
	git -C "$SRC" config core.autocrlf false
	git -C "$SRC" config gc.auto 0
	git_src add -A -f .
	GIT_AUTHOR_DATE='2025-01-01T00:00:00Z' GIT_COMMITTER_DATE='2025-01-01T00:00:00Z' \
		git_src commit -q -m "Linux $ver (Debian linux-source-6.12 $deb)"
	git -C "$SRC" tag base
	echo "$stamp" >"$SRC/.git/hmm-base-stamp"
	done_step "$(git -C "$SRC" rev-parse --short base)"
fi

# Build the series on a private index, starting from the base tree.
step "assembling the series from series/ and kernel/"
export GIT_INDEX_FILE=$SRC/.git/index.series
when=$(git -C "$TOP" log -1 --format=%cI 2>/dev/null || echo '2025-01-01T00:00:00Z')
export GIT_AUTHOR_DATE=$when GIT_COMMITTER_DATE=$when
git_src read-tree base
tip=$(git -C "$SRC" rev-parse base)
claimed=$(mktemp); msg=$(mktemp); trap 'rm -f "$claimed" "$msg"' EXIT
n=0
shopt -s nullglob
for desc in "$TOP"/series/[0-9]*.txt; do
	name=$(basename "$desc" .txt)
	subject=$(sed -n 's/^Subject: //p;/^$/q' "$desc")
	files=$(sed -n 's/^Files: //p;/^$/q' "$desc")
	diffs=$(sed -n 's/^Diff: //p;/^$/q' "$desc")
	[ -n "$subject" ] || die "series/$name.txt: no 'Subject:' line in its header"
	[ -n "$files$diffs" ] || die "series/$name.txt: neither 'Files:' nor 'Diff:' in its header"
	for f in $files; do
		[ -f "$TOP/kernel/$f" ] || die "series/$name.txt lists $f, but kernel/$f does not exist"
		grep -qxF "$f" "$claimed" && die "kernel/$f is claimed by two patches (again in series/$name.txt)"
		echo "$f" >>"$claimed"
		mode=100644; [ -x "$TOP/kernel/$f" ] && mode=100755
		blob=$(git -C "$SRC" hash-object -w "$TOP/kernel/$f")
		git -C "$SRC" update-index --add --cacheinfo "$mode,$blob,$f"
	done
	for d in $diffs; do
		[ -f "$TOP/series/$d" ] || die "series/$name.txt names Diff $d, which does not exist"
		git -C "$SRC" apply --cached --whitespace=nowarn "$TOP/series/$d" ||
			die "series/$d does not apply on top of the patches before it"
	done
	{ printf '%s\n\n' "$subject"; sed '1,/^$/d' "$desc"; } >"$msg"
	tree=$(git -C "$SRC" write-tree)
	tip=$(git_src commit-tree "$tree" -p "$tip" -F "$msg")
	n=$((n + 1))
done
( cd "$TOP/kernel" && find . -type f ! -name .keep -printf '%P\n' ) | sort >"$msg"
unclaimed=$(sort "$claimed" | comm -23 "$msg" -)
[ -z "$unclaimed" ] || die "files under kernel/ belong to no patch in series/: $(echo $unclaimed)"
unset GIT_INDEX_FILE

git -C "$SRC" update-ref refs/heads/hmm "$tip"
git -C "$SRC" symbolic-ref HEAD refs/heads/hmm
git -C "$SRC" reset -q --hard hmm
git -C "$SRC" clean -qfdx -e /.git -e '/obj-*' >/dev/null 2>&1 || true
done_step "$n patches on $(tree_version "$SRC"), tip $(git -C "$SRC" rev-parse --short hmm)"

if [ "${1:-}" = --with-base ]; then
	if [ ! -e "$BASE_SRC/Makefile" ]; then
		step "checking out the pristine base tree for side-by-side builds"
		rm -rf "$BASE_SRC"; git -C "$SRC" worktree prune
		git -C "$SRC" worktree add -q --detach "$BASE_SRC" base
		done_step "$BASE_SRC"
	fi
fi

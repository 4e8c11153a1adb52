#!/usr/bin/env bash
# make patches: the series as git format-patch files under build/patches/,
# with a cover letter from series/cover-letter.txt when it exists.
source "$(dirname "$0")/lib.sh"

"$TOP/scripts/tree.sh"
rm -rf "$BUILD/patches"
n=$(git -C "$SRC" rev-list --count base..hmm)
[ "$n" -gt 0 ] || { echo "the series is empty: no patches under series/ yet"; exit 0; }
args=(--base=base -o "$BUILD/patches" --no-signature)
[ -f "$TOP/series/cover-letter.txt" ] && args+=(--cover-letter)
git -C "$SRC" -c user.name="HMM team" -c user.email=hmm-team@localhost \
	format-patch "${args[@]}" base..hmm >/dev/null
if [ -f "$TOP/series/cover-letter.txt" ]; then
	python3 - "$BUILD/patches/0000-cover-letter.patch" "$TOP/series/cover-letter.txt" <<'PY'
import sys
cover, text = sys.argv[1], open(sys.argv[2]).read()
subject, _, body = text.partition('\n\n')
s = open(cover).read()
s = s.replace('*** SUBJECT HERE ***', subject.removeprefix('Subject: ').strip())
s = s.replace('*** BLURB HERE ***', body.strip())
open(cover, 'w').write(s)
PY
fi
ls "$BUILD/patches"

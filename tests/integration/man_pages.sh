#!/usr/bin/env bash
# Install and man pages: `cmake --install BUILD --prefix TMP` puts bin/zbudfs, bin/zbudfsctl
# and the man pages zbudfs(8) and zbudfsctl(8) under TMP; each page renders with
# `MANWIDTH=80 man -l` with exit status 0 and no warning; its synopsis and options are those
# of the installed binary's --help (every `-o` option of `zbudfs --help`, with the start of
# its description; every command of `zbudfsctl --help`); zbudfs(8) shows the version and
# tells how to mount with mount(8), fstab and systemd; `cmake --build BUILD --target
# uninstall` then removes every installed file.
#
# BUILD is the build directory of $ZBUDFS_BIN (build/ by default), built with its man pages
# (scripts/build.sh release). Needs no mount and no /dev/fuse. Exit 77 (skipped) only when
# `man` is missing (apt-get install man-db groff-base). The build directory's own
# install_manifest.txt, if any, is put back at the end.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ZBUDFS_BIN=${ZBUDFS_BIN:-$REPO_ROOT/build/zbudfs}
BUILD=$(cd "$(dirname "$ZBUDFS_BIN")" && pwd)
WORK=
source "$REPO_ROOT/tests/integration/notes_lib.sh"

if ! command -v man >/dev/null; then
  echo "SKIP [$TEST_NAME]: man is missing (apt-get install man-db groff-base)"
  exit 77
fi
[[ -f $BUILD/CMakeCache.txt ]] || fail "$BUILD is not a CMake build directory (ZBUDFS_BIN=$ZBUDFS_BIN)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/zbudfs-$TEST_NAME.XXXXXX")
PREFIX=$WORK/prefix
MANIFEST=$BUILD/install_manifest.txt
# Our install overwrites the build directory's manifest: keep the one of a real install.
[[ -f $MANIFEST ]] && cp -p "$MANIFEST" "$WORK/manifest.saved"

cleanup() {
  local rc=$?
  set +e
  if [[ -f $WORK/manifest.saved ]]; then
    cp -p "$WORK/manifest.saved" "$MANIFEST"
  elif [[ -f $WORK/installed ]]; then
    rm -f "$MANIFEST"
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
: >"$WORK/notes"

check "cmake --install $BUILD --prefix $PREFIX"
touch "$WORK/installed"
cmake --install "$BUILD" --prefix "$PREFIX" >"$WORK/install.log" 2>&1 ||
  { tail -n 20 "$WORK/install.log" >&2; fail "cmake --install failed (built with scripts/build.sh release?)"; }
[[ -s $MANIFEST ]] || fail "no $MANIFEST after the install"
cp "$MANIFEST" "$WORK/manifest"
note "installed: $(tr '\n' ' ' <"$WORK/manifest")"
while read -r f; do
  [[ $f == "$PREFIX"/* ]] || fail "installed outside the prefix: $f"
  [[ -e $f ]] || fail "listed in the manifest but missing: $f"
done <"$WORK/manifest"
for prog in zbudfs zbudfsctl; do
  [[ -x $PREFIX/bin/$prog ]] || fail "no $PREFIX/bin/$prog"
done
page_of() { grep -E "/man8/$1\\.8(\\.gz)?\$" "$WORK/manifest" | head -n 1; }
for prog in zbudfs zbudfsctl; do
  [[ -n $(page_of "$prog") ]] || fail "no man page $prog.8 installed (man8/ of the manifest)"
done

# render PROG: the page as `man -l` shows it at 80 columns, in $WORK/PROG.txt (plain text,
# no overstrike; a word hyphenated at a line end joined again) and, whitespace collapsed to
# single spaces, in $WORK/PROG.flat.
render() {
  local prog=$1 page rc=0
  page=$(page_of "$prog")
  env -u MAN_KEEP_FORMATTING MANWIDTH=80 LC_ALL=C.UTF-8 MANPAGER=cat PAGER=cat \
    man --warnings -l "$page" >"$WORK/$prog.raw" 2>"$WORK/$prog.err" || rc=$?
  ((rc == 0)) || { cat "$WORK/$prog.err" >&2; fail "man -l $page exited with $rc"; }
  [[ -s $WORK/$prog.err ]] && { cat "$WORK/$prog.err" >&2; fail "man -l $page warned"; }
  sed -e 's/.\x08//g' "$WORK/$prog.raw" >"$WORK/$prog.txt"
  local width
  width=$(awk '{ if (length($0) > w) w = length($0) } END { print w + 0 }' "$WORK/$prog.txt")
  note "$prog.8: $(wc -l <"$WORK/$prog.txt") lines, widest $width columns"
  # U+2010 is the hyphen groff adds where it breaks a word; '-' of the text stays ASCII.
  sed -e ':a' -e '/\xe2\x80\x90$/{N;s/\xe2\x80\x90\n *//;ba' -e '}' "$WORK/$prog.txt" |
    tr -s ' \n' '  ' >"$WORK/$prog.flat"
}

# ere TEXT: TEXT as an extended regular expression that matches it literally.
ere() { sed -e 's/[][|.*+?(){}$]/[&]/g' -e 's/\^/\\^/g' <<<"$1"; }

# has PROG TEXT: the rendered page of PROG contains TEXT (whitespace collapsed).
has() { grep -qF -- "$(tr -s ' \n' '  ' <<<"$2" | sed 's/ $//')" "$WORK/$1.flat"; }

for prog in zbudfs zbudfsctl; do
  check "$prog.8 renders with man -l, exit 0 and no warning"
  render "$prog"
  for section in NAME SYNOPSIS DESCRIPTION "SEE ALSO"; do
    grep -q "^$section\$" "$WORK/$prog.txt" || fail "$prog.8 has no $section section"
  done
  # As the page was made: argv[0] is the bare name, which --help's usage lines repeat.
  (exec -a "$prog" "$PREFIX/bin/$prog" --help) >"$WORK/$prog.help" || fail "$prog --help exited non-zero"
  (exec -a "$prog" "$PREFIX/bin/$prog" --version) >"$WORK/$prog.version" ||
    fail "$prog --version exited non-zero"

  check "$prog.8 shows the version of $prog --version"
  version=$(awk 'NR == 1 { print $2 }' "$WORK/$prog.version")
  [[ -n $version ]] || fail "no version in $prog --version"
  tail -n 1 "$WORK/$prog.txt" | grep -qF "zbudfs $version" ||
    fail "the footer of $prog.8 does not name zbudfs $version: $(tail -n 1 "$WORK/$prog.txt")"

  check "$prog.8 has the usage lines of $prog --help"
  # "usage: PROG ARGS" and "       PROG ARGS   (remark)": ARGS, as the synopsis shows them.
  sed -nE -e "s/^usage: +$prog +//p" -e "s/^ +$prog +//p" "$WORK/$prog.help" |
    sed -E 's/ {2,}\(.*\)$//' >"$WORK/$prog.usage"
  [[ -s $WORK/$prog.usage ]] || fail "no usage lines in $prog --help"
  while read -r args; do
    note "usage: $prog $args"
    has "$prog" "$prog $args" || fail "$prog.8 lacks the synopsis '$prog $args'"
  done <"$WORK/$prog.usage"
done

check "every -o option of zbudfs --help is in zbudfs.8, with its description"
n=0
while IFS= read -r line; do
  opt=$(grep -oE -- '-o [a-z_0-9]+(=[A-Z][A-Za-z_|]*)?' <<<"$line" | head -n 1) || continue
  [[ -n $opt ]] || continue
  n=$((n + 1))
  # The tag line of the option's entry: the label alone on its line (or with -d, ...).
  grep -qE -- "^ +(-[a-zA-Z], )?$(ere "$opt")( |\$)" "$WORK/zbudfs.txt" ||
    fail "zbudfs.8 has no entry for '$opt'"
  # The first four words of its description in --help (the text after the label).
  words=$(sed -E "s/^ +.*$(ere "$opt") +//" <<<"$line" | awk '{ print $1, $2, $3, $4 }')
  note "$opt: $words"
  [[ -z $words ]] || has zbudfs "$words" || fail "zbudfs.8 lacks the description of '$opt': '$words'"
done < <(grep -E '^    -' "$WORK/zbudfs.help")
((n >= 10)) || fail "only $n -o options found in zbudfs --help"
note "$n -o options"
for opt in -f -d -s --help --version; do
  grep -qE -- "^ +(-[a-zA-Z], )?$opt( |,|\$)" "$WORK/zbudfs.txt" || fail "zbudfs.8 has no entry for $opt"
done

check "every command of zbudfsctl --help is in zbudfsctl.8"
n=0
while IFS= read -r label; do
  n=$((n + 1))
  note "command: $label"
  sed 's/^ *//' "$WORK/zbudfsctl.txt" | grep -qxF -- "$label" || fail "zbudfsctl.8 has no entry for '$label'"
done < <(grep -E '^    [a-z]' "$WORK/zbudfsctl.help" | sed -E 's/^ +//; s/ {2,}.*//')
((n >= 1)) || fail "no commands found in zbudfsctl --help"

check "zbudfs.8 tells how to mount with mount(8), fstab and systemd"
for text in "mount -t fuse.zbudfs zbudfs" "fstab(5)" " fuse.zbudfs " "x-systemd." "Type=fuse.zbudfs" \
  "mount.fuse3" "zbudfsctl(8)" "FILES"; do
  has zbudfs "$text" || fail "zbudfs.8 lacks '$text'"
done
has zbudfsctl "zbudfs(8)" || fail "zbudfsctl.8 lacks 'zbudfs(8)'"

check "cmake --build $BUILD --target uninstall removes every installed file"
cmake --build "$BUILD" --target uninstall >"$WORK/uninstall.log" 2>&1 ||
  { tail -n 20 "$WORK/uninstall.log" >&2; fail "the uninstall target failed"; }
while read -r f; do
  [[ -e $f || -L $f ]] && fail "still there after uninstall: $f"
done <"$WORK/manifest"
left=$(find "$PREFIX" ! -type d)
[[ -z $left ]] || fail "left under the prefix after uninstall: $left"
exit 0

#!/usr/bin/env bash
# Statistics: zbudfsctl stats (text and --json) and df. A text tree stores at a compression
# ratio orig_data_size/compr_data_size > 2; deleting it brings orig_data_size to 0 and
# mem_used_total back near zero. zbudfsctl's errors and exit statuses.
source "$(dirname "$0")/lib.sh"

mount_zbudfs -o size=1G
check "every contract field is printed, as integers"
fields="orig_data_size compr_data_size mem_used_total mem_limit pool_pages buddied_pages
  same_pages huge_pages overflow_pages overflow_bytes written_back_pages faulted_pages"
out=$("$ZBUDFSCTL_BIN" stats "$MNT")
for f in $fields; do
  grep -Eq "^$f [0-9]+$" <<<"$out" || fail "field $f missing or not an integer in: $out"
done
check "--json is one JSON object with the same integer values"
"$ZBUDFSCTL_BIN" stats "$MNT" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
need = sys.argv[1].split()
assert all(isinstance(d[k], int) for k in need), d
' "$fields" || fail "bad --json output"

check "a text tree stores at ratio > 2"
cp -a /usr/include "$MNT/include"
sync
orig=$(stat_value orig_data_size)
compr=$(stat_value compr_data_size)
used=$(stat_value mem_used_total)
note "orig_data_size=$orig compr_data_size=$compr mem_used_total=$used"
((orig > 0 && compr > 0)) || fail "nothing stored"
((orig > 2 * compr)) || fail "ratio orig/compr = $orig/$compr is not > 2"
((used < orig)) || fail "mem_used_total $used not below orig_data_size $orig"
check "df shows the size option and the data"
df_out=$(df -B1 --output=size,used "$MNT" | tail -1)
read -r df_size df_used <<<"$df_out"
[[ $df_size == $((1 << 30)) ]] || fail "df size $df_size, want $((1 << 30))"
((df_used == orig)) || fail "df used $df_used, want orig_data_size $orig"
check "du shows the compressed footprint"
du_k=$(du -sk "$MNT/include" | cut -f1)
app_k=$(du -sk --apparent-size "$MNT/include" | cut -f1)
((du_k * 2 < app_k)) || fail "du ${du_k}K is not below half the apparent ${app_k}K"

check "deleting the tree frees the memory"
rm -rf "$MNT/include"
orig=$(stat_value orig_data_size)
used=$(stat_value mem_used_total)
note "after rm: orig_data_size=$orig mem_used_total=$used"
[[ $orig == 0 ]] || fail "orig_data_size $orig after rm -rf"
((used <= 65536)) || fail "mem_used_total $used after rm -rf (want near 0)"

check "zbudfsctl errors"
set +e
msg=$("$ZBUDFSCTL_BIN" stats "$WORK" 2>&1); rc=$?
set -e
[[ $rc == 1 && $msg == *"not the root of a zbudfs mount"* ]] || fail "non-mount: rc=$rc msg=$msg"
set +e
msg=$("$ZBUDFSCTL_BIN" stats "$WORK/nonexistent" 2>&1); rc=$?
set -e
[[ $rc == 1 && $msg == *"No such file"* ]] || fail "missing path: rc=$rc msg=$msg"
for args in "" "bogus" "stats" "stats $MNT --bogus" "stats $MNT $MNT"; do
  set +e
  # shellcheck disable=SC2086
  "$ZBUDFSCTL_BIN" $args >/dev/null 2>&1; rc=$?
  set -e
  [[ $rc == 2 ]] || fail "zbudfsctl $args: exit $rc, want 2"
done
"$ZBUDFSCTL_BIN" --help >"$WORK/help" && grep -q "stats MOUNTPOINT" "$WORK/help" ||
  fail "zbudfsctl --help"
"$ZBUDFSCTL_BIN" --version >"$WORK/version" && grep -q "^zbudfsctl " "$WORK/version" ||
  fail "zbudfsctl --version"
unmount_zbudfs

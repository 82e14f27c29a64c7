#!/usr/bin/env bash
# Statistics: zbudfsctl stats (text and --json) and df. A text tree stores at a compression
# ratio orig_data_size/compr_data_size > 2; deleting it brings orig_data_size to 0 and
# mem_used_total back near zero; st_blocks of a file still open is fresh after fsync.
# zbudfsctl's errors and exit statuses.
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

check "zbudfsctl stats -h: the ratio, density, memory of mem_limit and the overflow directory"
mkdir "$MNT/du"
cp -a /usr/include/linux "$MNT/du/"
dd if=/dev/urandom of="$MNT/du/rand" bs=1M count=4 status=none
ln "$MNT/du/rand" "$MNT/du/rand.link"
truncate -s 1G "$MNT/du/sparse"
sync -f "$MNT/du/rand"
"$ZBUDFSCTL_BIN" stats -h "$MNT" >"$WORK/human" || fail "stats -h failed"
for want in "ratio [0-9]" "density [0-9]" "of mem_limit" "in /" "used of 1.0G"; do
  grep -q "$want" "$WORK/human" || fail "stats -h lacks '$want': $(cat "$WORK/human")"
done
"$ZBUDFSCTL_BIN" stats --bytes "$MNT" | grep -q "data stored   [0-9]* in" || fail "stats --bytes"

check "st_blocks of a file still open after fsync: what writeback stored, as tmpfs shows"
python3 - "$MNT/open" <<'PY' || fail "st_blocks of an open file after fsync"
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, os.urandom(1 << 20))  # Incompressible: a raw page each, 2048 blocks of 512.
os.fsync(fd)
blocks = os.stat(sys.argv[1]).st_blocks
os.close(fd)
assert blocks >= 2048, "st_blocks %d after writing 1 MiB and fsync, file open" % blocks
PY
rm -f "$MNT/open"
check "zbudfsctl du: per file and per tree, each inode once, adding up to the store"
read -r _ data compr _ _ _ _ < <("$ZBUDFSCTL_BIN" du --bytes "$MNT" | tail -1)
[[ $data == $(stat_value orig_data_size) ]] || fail "du data $data, orig_data_size $(stat_value orig_data_size)"
[[ $compr == $(stat_value compr_data_size) ]] || fail "du compressed $compr, compr_data_size $(stat_value compr_data_size)"
read -r size data _ < <("$ZBUDFSCTL_BIN" du --bytes "$MNT/du/sparse" | tail -1)
[[ $size == $((1 << 30)) && $data == 0 ]] || fail "sparse file: size $size data $data"
read -r _ _ _ _ _ ratio _ < <("$ZBUDFSCTL_BIN" du "$MNT/du/linux" | tail -1)
awk -v r="$ratio" 'BEGIN { exit !(r > 2) }' || fail "headers stored at ratio $ratio, want > 2"
getfattr --absolute-names -d -m - "$MNT/du/rand" 2>/dev/null | grep -q zbudfs && fail "usage xattr listed"
getfattr --absolute-names -n user.zbudfs.usage "$MNT/du/rand" | grep -q "stored_bytes" || fail "usage xattr unreadable"
setfattr -n user.zbudfs.usage -v x "$MNT/du/rand" 2>/dev/null && fail "usage xattr writable"
rm -rf "$MNT/du"

check "zbudfsctl leftovers: lists and removes overflow directories of dead mounts"
mkdir -p "$WORK/tmp/zbudfs-overflow.dead01" "$WORK/tmp/zbudfs-overflow.live01"
for d in dead01 live01; do
  : >"$WORK/tmp/zbudfs-overflow.$d/zbudfs.lock"
  head -c 8192 /dev/urandom >"$WORK/tmp/zbudfs-overflow.$d/zbudfs-overflow-512"
  touch -d "1 hour ago" "$WORK/tmp/zbudfs-overflow.$d"
done
exec 8<>"$WORK/tmp/zbudfs-overflow.live01/zbudfs.lock"
flock -x 8
"$ZBUDFSCTL_BIN" leftovers "$WORK/tmp" >"$WORK/left" || fail "leftovers failed"
grep -q "zbudfs-overflow.dead01" "$WORK/left" || fail "dead dir not listed: $(cat "$WORK/left")"
grep -q "live01" "$WORK/left" && fail "a held directory was listed"
"$ZBUDFSCTL_BIN" leftovers --remove "$WORK/tmp" >/dev/null || fail "leftovers --remove failed"
[[ -e $WORK/tmp/zbudfs-overflow.dead01 ]] && fail "dead dir not removed"
[[ -e $WORK/tmp/zbudfs-overflow.live01 ]] || fail "a held directory was removed"
exec 8>&-

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

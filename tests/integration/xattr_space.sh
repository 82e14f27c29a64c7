#!/usr/bin/env bash
# Extended attributes take space like file data: they are charged against size= and shown
# by df and in mem_used_total/metadata_bytes, so that a flood of 64 KiB values on a small
# mount ends in ENOSPC (as tmpfs's does when its xattr space is exhausted) with the
# daemon's memory bounded; replacing or removing a value and deleting the files give the
# space back; the root's statistics attribute is not charged. Symlink targets of 128 bytes
# or more take a page each (as on tmpfs) and are bounded the same way.
source "$(dirname "$0")/lib.sh"

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$ZPID/status"; }
df_used() { stat -f -c '%b %f %S' "$MNT" | awk '{ print ($1 - $2) * $3 }'; }
# A sanitizer build's shadow memory grows with every byte touched: bound RSS only in real builds.
sanitized() { ldd "$ZBUDFS_BIN" | grep -Eq 'lib(a|t)san'; }
rss_within() { (($(rss_kib) - rss0 <= $1)); }

# flood KIND DIR MAX BYTES_EACH AT_LEAST: makes up to MAX objects in DIR, stopping at the first
# error: KIND values (64 KiB xattr values, four a file) or symlinks (4000-byte targets). The
# flood must end in ENOSPC before MAX, within size=16M, with at least AT_LEAST made, and the
# daemon's RSS bounded by size= and some slack. Sets stored (how many were made) and rss0
# (VmRSS before).
flood() {
  local kind=$1 dir=$2 max=$3 each=$4 at_least=$5 err
  rss0=$(rss_kib)
  python3 - "$kind" "$dir" "$max" >"$WORK/flood" <<'PY' || fail "flood: $(cat "$WORK/flood")"
import errno, os, sys
kind, d, limit, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), 0
value, target = b"x" * 65536, "t" * 4000
try:
    for i in range(limit):
        if kind == "values":
            p = os.path.join(d, "f%d" % (i // 4))
            if i % 4 == 0:
                open(p, "w").close()
            os.setxattr(p, "user.v%d" % (i % 4), value)
        else:
            os.symlink(target, os.path.join(d, "l%d" % i))
        n += 1
    print("no error after", n)
except OSError as e:
    print(n, errno.errorcode[e.errno])
PY
  read -r stored err <"$WORK/flood"
  note "$stored $kind made, then $err; VmRSS $rss0 -> $(rss_kib) KiB; df used $(df_used)"
  [[ $err == ENOSPC ]] || fail "flood: $(cat "$WORK/flood") (want ENOSPC before $max $kind)"
  ((stored * each <= 16 << 20 && stored >= at_least)) || fail "$stored $kind fit in size=16M"
  sanitized || rss_within $(((16 + 16) * 1024)) ||
    fail "VmRSS grew by $(($(rss_kib) - rss0)) KiB (size 16 MiB + 16 MiB slack)"
}

# remove_all_given_back DIR: rm -rf DIR gives every byte of metadata_bytes and df back (once
# the kernel's FORGET, sent after unlink(2) returns, has reached the daemon).
remove_all_given_back() {
  rm -rf "$1"
  wait_until stat_is metadata_bytes 0 ||
    fail "metadata_bytes $(stat_value metadata_bytes) after rm -rf"
  (($(df_used) == 0)) || fail "df used $(df_used) after rm -rf"
}

mount_zbudfs -o size=16M
check "the statistics attribute costs nothing"
getfattr --absolute-names -n user.zbudfs.stats "$MNT" >/dev/null || fail "cannot read user.zbudfs.stats"
[[ $(stat_value metadata_bytes) == 0 ]] || fail "metadata_bytes $(stat_value metadata_bytes) on a fresh mount"

check "a flood of 64 KiB values on a 16 MiB mount ends in ENOSPC with RSS bounded"
mkdir "$MNT/d"
# Up to 1024 values (64 MiB, four times size=) over 256 files.
flood values "$MNT/d" 1024 65536 200
meta=$(stat_value metadata_bytes)
((meta >= stored * 65536)) || fail "metadata_bytes $meta below the $stored values stored"
(($(stat_value mem_used_total) >= meta)) || fail "mem_used_total does not include metadata_bytes"
(($(df_used) >= meta)) || fail "df used $(df_used) below metadata_bytes $meta"

check "a full mount refuses file data too"
rc=0
dd if=/dev/urandom of="$MNT/data" bs=64k count=16 oflag=direct 2>"$WORK/err" || rc=$?
((rc != 0)) && grep -q "No space left on device" "$WORK/err" || fail "1 MiB of data on a full mount: rc=$rc $(cat "$WORK/err")"
rm -f "$MNT/data"

check "replacing with a smaller value and removing give the space back"
setfattr -n user.v0 -v small "$MNT/d/f0" || fail "replace with a smaller value"
((meta - $(stat_value metadata_bytes) >= 65536 - 5)) || fail "replace did not give back the old value"
meta=$(stat_value metadata_bytes)
setfattr -x user.v1 "$MNT/d/f0" || fail "removexattr"
((meta - $(stat_value metadata_bytes) >= 65536)) || fail "removexattr did not give back its value"
setfattr -n user.again -v "$(head -c 60000 /dev/zero | tr '\0' y)" "$MNT/d/f0" || fail "setxattr after space was freed"

check "deleting the files gives every byte back"
remove_all_given_back "$MNT/d"
# The freed values go back to the system, as freed pages do (the daemon trims its heap once
# deletes stop): wait for that event, not for a time.
sanitized || wait_until rss_within 8192 ||
  fail "VmRSS $(rss_kib) KiB after rm -rf, $rss0 before the flood"

check "long symlink targets take a page each, as on tmpfs; short ones live in the inode"
mkdir "$MNT/s"
ln -s short "$MNT/s/short" || fail "short symlink"
[[ $(stat_value metadata_bytes) == 0 ]] || fail "a short symlink charged $(stat_value metadata_bytes)"
long=$(head -c 4000 /dev/zero | tr '\0' t)
ln -s "$long" "$MNT/s/long" || fail "long symlink"
[[ $(stat_value metadata_bytes) == 4096 ]] || fail "a 4000-byte symlink charged $(stat_value metadata_bytes)"
ln "$MNT/s/long" "$MNT/s/hard" || fail "hard link to a symlink"
[[ $(stat_value metadata_bytes) == 4096 ]] || fail "a hard link charged the target again"
rm "$MNT/s/long"
[[ $(readlink "$MNT/s/hard") == "$long" ]] || fail "the hard link lost its target"
[[ $(stat_value metadata_bytes) == 4096 ]] || fail "unlinking one of two links gave the charge back"

check "a flood of 4000-byte symlinks on a 16 MiB mount ends in ENOSPC with RSS bounded"
# 30000 targets (117 MiB, seven times size=). tmpfs size=16M stops at 4096.
flood symlinks "$MNT/s" 30000 4096 3000
meta=$(stat_value metadata_bytes)
((meta >= stored * 4096)) || fail "metadata_bytes $meta below the $stored symlinks made"
(($(df_used) >= meta)) || fail "df used $(df_used) below metadata_bytes $meta"
[[ $(readlink "$MNT/s/l0") == "$long" ]] || fail "l0 reads back wrong"

check "deleting the symlinks gives every byte back"
remove_all_given_back "$MNT/s"
unmount_zbudfs

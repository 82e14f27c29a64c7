#!/usr/bin/env bash
# Remounting a live mount as tmpfs users do: `zbudfs -o remount,...` and `mount -o
# remount,...` change size (df), mem_limit, overflow_limit, nr_inodes and zstd_level of the
# running daemon with mount-time validation; shrinking below what is stored is refused and
# changes nothing; ro and back to rw; only root or the mount's owner may remount; the data
# survives all of it. Also: the mount source is what /proc/mounts shows.
source "$(dirname "$0")/lib.sh"

opt() { getfattr --absolute-names --only-values -n user.zbudfs.options "$MNT" | awk -v n="$1" '$1 == n { print $2 }'; }
df_size() { df -B1 --output=size "$MNT" | tail -1 | tr -d ' '; }
remount() { "$ZBUDFS_BIN" -o "remount,$1" "$MNT" 2>"$WORK/remount.err"; }

check "the mount source is shown in /proc/mounts (default: zbudfs)"
mount_zbudfs myram -o size=32M,mem_limit=64M
grep -q "^myram $MNT fuse.zbudfs " /proc/mounts || fail "source not shown: $(grep " $MNT " /proc/mounts)"
[[ $(opt source) == myram ]] || fail "options xattr source $(opt source)"
dd if=/dev/urandom of="$WORK/data" bs=1M count=20 status=none
cp "$WORK/data" "$MNT/data"
sync -f "$MNT/data"
want=$(sha256sum <"$WORK/data")

check "growing size: df shows it, more data fits"
remount size=64M || fail "remount size=64M: $(cat "$WORK/remount.err")"
[[ $(df_size) == $((64 << 20)) ]] || fail "df size $(df_size) after remount,size=64M"
[[ $(opt size) == $((64 << 20)) ]] || fail "options xattr size $(opt size)"
[[ $(opt overflow_limit) == $((64 << 20)) ]] || fail "a default overflow_limit follows size"
dd if=/dev/urandom of="$MNT/more" bs=1M count=30 status=none conv=fsync || fail "30M more did not fit"
rm "$MNT/more"

check "shrinking below what is stored is refused, with the reason, and changes nothing"
remount size=8M && fail "remount size=8M accepted with 20M stored"
grep -q "below what is stored" "$WORK/remount.err" || fail "message: $(cat "$WORK/remount.err")"
[[ $(df_size) == $((64 << 20)) ]] || fail "df size changed by a refused remount: $(df_size)"

check "bad values get mount-time messages; options that need a new mount are refused"
remount size=banana && fail "size=banana accepted"
grep -q "invalid size for option size: 'banana'" "$WORK/remount.err" || fail "$(cat "$WORK/remount.err")"
remount zstd_fast=x && fail "zstd_fast=x accepted"
grep -q "or off" "$WORK/remount.err" || fail "zstd_fast message does not mention off: $(cat "$WORK/remount.err")"
remount staging=1M && fail "staging=1M accepted"
grep -q "cannot change on a mounted zbudfs" "$WORK/remount.err" || fail "$(cat "$WORK/remount.err")"
remount cluster=64K && fail "cluster=64K accepted"
grep -q "cannot change on a mounted zbudfs" "$WORK/remount.err" || fail "$(cat "$WORK/remount.err")"
remount nr_inodes=1 && fail "nr_inodes=1 accepted with 2 inodes in use"
grep -q "below the inodes in use" "$WORK/remount.err" || fail "$(cat "$WORK/remount.err")"

check "mem_limit, zstd_level and nr_inodes change; lowering mem_limit pushes pages out"
remount mem_limit=16M,zstd_level=5,nr_inodes=100 || fail "$(cat "$WORK/remount.err")"
[[ $(opt zstd_level) == 5 && $(opt nr_inodes) == 100 ]] || fail "options: $(opt zstd_level) $(opt nr_inodes)"
[[ $(stat_value mem_limit) == $((16 << 20)) ]] || fail "mem_limit stat $(stat_value mem_limit)"
(($(stat_value mem_used_total) <= 16 << 20)) || fail "mem_used_total $(stat_value mem_used_total) above 16M"
(($(stat_value overflow_pages) > 0)) || fail "nothing went to the overflow directory"
[[ $(zb_readback_sha256 "$MNT/data") == "${want%% *}" ]] || fail "data changed by the remounts"
for i in $(seq 1 120); do { : >"$MNT/f$i"; } 2>/dev/null || break; done
((i < 120)) || fail "nr_inodes=100 let 120 files be created"
rm -f "$MNT"/f*

check "ro and back to rw"
remount ro || fail "remount,ro: $(cat "$WORK/remount.err")"
touch "$MNT/x" 2>/dev/null && fail "created a file on a read-only remount"
grep -q " $MNT fuse.zbudfs ro," /proc/mounts || fail "not ro in /proc/mounts"
remount rw || fail "remount,rw: $(cat "$WORK/remount.err")"
touch "$MNT/x" || fail "cannot create a file after remount,rw"

check "only root or the mount's owner may remount"
chmod 1777 "$MNT"
id zbt_rm >/dev/null 2>&1 || useradd -M -N zbt_rm
runuser -u zbt_rm -- "$ZBUDFS_BIN" -o remount,size=128M "$MNT" 2>"$WORK/remount.err" &&
  fail "an unprivileged user remounted"
grep -q "only root or the mount's owner" "$WORK/remount.err" || fail "$(cat "$WORK/remount.err")"
[[ $(df_size) == $((64 << 20)) ]] || fail "df size changed by a refused remount"
userdel zbt_rm 2>/dev/null || true

check "a remount of something that is not zbudfs is refused"
"$ZBUDFS_BIN" -o remount,size=1G "$WORK" 2>"$WORK/remount.err" && fail "remounted a plain directory"
grep -q "not a zbudfs mount" "$WORK/remount.err" || fail "$(cat "$WORK/remount.err")"

check "mount -o remount through mount(8) and mount.fuse3"
# mount.fuse3 runs `zbudfs` from a fixed PATH (/usr/local/bin among others): put ours there
# for the test when nothing is installed.
link=""
if ! command -v mount.fuse3 >/dev/null; then
  note "no mount.fuse3: skipped"
else
  if [[ ! -e /usr/local/bin/zbudfs ]]; then
    ln -s "$ZBUDFS_BIN" /usr/local/bin/zbudfs && link=/usr/local/bin/zbudfs
  fi
  mount -o remount,size=96M "$MNT" || fail "mount -o remount,size=96M"
  [[ $(df_size) == $((96 << 20)) ]] || fail "df size $(df_size) after mount -o remount,size=96M"
  mount -o remount,ro "$MNT" || fail "mount -o remount,ro"
  touch "$MNT/y" 2>/dev/null && fail "created a file after mount -o remount,ro"
  mount -o remount,rw "$MNT" || fail "mount -o remount,rw"
  touch "$MNT/y" || fail "cannot create a file after mount -o remount,rw"
  [[ -n $link ]] && rm -f "$link"
fi
[[ $(zb_readback_sha256 "$MNT/data") == "${want%% *}" ]] || fail "data changed by the remounts"
unmount_zbudfs

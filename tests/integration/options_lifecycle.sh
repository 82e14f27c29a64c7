#!/usr/bin/env bash
# Command line and life cycle: --help/--version; every bad option and size is refused with a
# one-line message naming it and a non-zero exit, and nothing is mounted; the daemonizing,
# mount.fuse3 (SOURCE MOUNTPOINT -o) and `mount -t fuse.zbudfs` forms; -s; ro; SIGTERM
# exits 0 (also with a file held open: the mount detaches, the daemon leaves on close);
# unmount leaves no process behind.
source "$(dirname "$0")/lib.sh"

check "--help and --version"
"$ZBUDFS_BIN" --help >"$WORK/help" || fail "--help exited non-zero"
grep -q "mem_limit=SIZE" "$WORK/help" || fail "--help lacks mem_limit"
grep -q "allow_other" "$WORK/help" || fail "--help lacks the FUSE options"
"$ZBUDFS_BIN" --version >"$WORK/version" || fail "--version exited non-zero"
grep -q "^zbudfs [0-9]" "$WORK/version" || fail "--version"

check "bad options are refused, naming the option"
refuse() {  # refuse WORD-EXPECTED-IN-MESSAGE ARGS...
  local want=$1 rc=0
  shift
  timeout 10 "$ZBUDFS_BIN" -f "$@" 2>"$WORK/err" >/dev/null || rc=$?
  mountpoint -q "$MNT" && { fusermount3 -u "$MNT"; fail "zbudfs $* mounted"; }
  [[ $rc != 0 && $rc != 124 ]] || fail "zbudfs $* exited $rc"
  [[ $(wc -l <"$WORK/err") == 1 ]] || fail "zbudfs $*: message is not one line: $(cat "$WORK/err")"
  grep -q -- "$want" "$WORK/err" || fail "zbudfs $*: message lacks '$want': $(cat "$WORK/err")"
  note "refused: $* -> $(cat "$WORK/err")"
}
refuse size -o size=abc "$MNT"
refuse size -o size=-1 "$MNT"
refuse size -o size=1Q "$MNT"
refuse size -o size=12.5G "$MNT"
refuse size -o size= "$MNT"
refuse size -o size=0 "$MNT"
refuse size -o size=99999999999999999999 "$MNT"
refuse size -o size=17179869184T "$MNT"
refuse size -o size "$MNT"
refuse mem_limit -o mem_limit=0 "$MNT"
refuse mem_limit -o mem_limit=1X "$MNT"
refuse overflow_limit -o overflow_limit=-5 "$MNT"
refuse zstd_level -o zstd_level=abc "$MNT"
refuse zstd_level -o zstd_level=23 "$MNT"
refuse zstd_level -o zstd_level=1.5 "$MNT"
refuse overflow_dir -o overflow_dir=/nonexistent/dir "$MNT"
refuse overflow_dir -o overflow_dir=/etc/passwd "$MNT"
refuse bogus -o bogus=1 "$MNT"
refuse --bogus --bogus "$MNT"
refuse "too many" a b "$MNT"
refuse mountpoint
refuse "$WORK/nonexistent" "$WORK/nonexistent"

check "valid sizes and levels are accepted"
mount_zbudfs -o size=64M,mem_limit=32m,overflow_limit=1G,zstd_level=-5,overflow_dir="$WORK"
[[ $(df -B1 --output=size "$MNT" | tail -1 | tr -d " ") == $((64 << 20)) ]] || fail "size=64M not in df"
unmount_zbudfs
mount_zbudfs -o size=4097,zstd_level=19
[[ $(df -B1 --output=size "$MNT" | tail -1 | tr -d " ") == 8192 ]] || fail "size=4097 not rounded to 8192"
check "writes past size get ENOSPC"
dd if=/dev/urandom of="$MNT/fill" bs=4096 count=3 status=none 2>/dev/null && sync "$MNT/fill" &&
  fail "wrote 12 KiB into an 8 KiB file system"
unmount_zbudfs

# pid_of_mount: the daemon serving $MNT (for the daemonizing forms).
pid_of_mount() { pgrep -f -- "zbudfs.* $MNT( |\$)" | head -1; }
# wait_gone PID: the process exits (a zombie awaiting its reaper counts as gone).
wait_gone() {
  for _ in $(seq 100); do
    [[ -e /proc/$1 ]] || return 0
    [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == Z ]] && return 0
    sleep 0.05
  done
  fail "daemon $1 still running after unmount"
}

check "daemon mode: returns once mounted; unmount ends the daemon"
"$ZBUDFS_BIN" -o size=64M "$MNT" || fail "daemonizing mount failed"
mountpoint -q "$MNT" || fail "not mounted when zbudfs returned"
pid=$(pid_of_mount)
[[ -n $pid ]] || fail "no daemon process found"
echo hello >"$MNT/f"
fusermount3 -u "$MNT"
wait_gone "$pid"

check "mount.fuse3 form: zbudfs SOURCE MOUNTPOINT -o OPTIONS"
"$ZBUDFS_BIN" mysource "$MNT" -o size=32M,allow_other || fail "SOURCE MOUNTPOINT -o form failed"
mountpoint -q "$MNT" || fail "not mounted (SOURCE MOUNTPOINT form)"
pid=$(pid_of_mount)
umount "$MNT"
wait_gone "$pid"

check "mount(8) through mount.fuse3 (-t fuse PROGRAM#SOURCE; mount sanitizes PATH)"
if command -v mount.fuse3 >/dev/null; then
  mount -t fuse "$ZBUDFS_BIN#zbudfs" "$MNT" -o size=32M || fail "mount -t fuse failed"
  mountpoint -q "$MNT" || fail "not mounted (mount -t fuse)"
  grep -q " $MNT fuse.zbudfs " /proc/mounts || fail "type is not fuse.zbudfs in /proc/mounts"
  pid=$(pgrep -f -- "zbudfs zbudfs $MNT" | head -1)
  umount "$MNT"
  [[ -n $pid ]] && wait_gone "$pid"
fi

check "-s (single-threaded) and ro"
mount_zbudfs -s -o ro
touch "$MNT/x" 2>/dev/null && fail "created a file on a ro mount"
unmount_zbudfs

check "SIGTERM: exit status 0 and the mount is gone"
mount_zbudfs
cp /etc/passwd "$MNT/"
kill -TERM "$ZPID"
rc=0
wait "$ZPID" || rc=$?
ZPID=
[[ $rc == 0 ]] || fail "exit status $rc after SIGTERM"
mountpoint -q "$MNT" && fail "still mounted after SIGTERM"

check "SIGTERM with a file open: detached at once, exits 0 after the close"
mount_zbudfs
echo data >"$MNT/held"
exec 7<"$MNT/held"
kill -TERM "$ZPID"
for _ in $(seq 50); do mountpoint -q "$MNT" || break; sleep 0.05; done
mountpoint -q "$MNT" && fail "not detached after SIGTERM"
kill -0 "$ZPID" || fail "daemon left while a file was still open"
[[ $(cat <&7) == data ]] || fail "open file unreadable after detach"
exec 7<&-
rc=0
wait "$ZPID" || rc=$?
ZPID=
[[ $rc == 0 ]] || fail "exit status $rc after SIGTERM with an open file"

check "daemonized without syslog: messages go to a file the mount names"
if [[ -S /dev/log ]]; then
  note "this machine has /dev/log (syslog): the fallback is not exercised"
else
  "$ZBUDFS_BIN" "$MNT" -o size=1M 2>"$WORK/bg.err" || fail "background mount failed: $(cat "$WORK/bg.err")"
  pid=$(pid_of_mount)
  grep -q "messages go to /var/log/zbudfs.log" "$WORK/bg.err" || fail "no notice: $(cat "$WORK/bg.err")"
  dd if=/dev/zero of="$MNT/big" bs=64K count=64 status=none 2>/dev/null && fail "2M fitted in size=1M"
  grep -q "zbudfs\[$pid\]: write of .* refused" /var/log/zbudfs.log || fail "the refused write is not in /var/log/zbudfs.log"
  umount "$MNT"
  wait_gone "$pid"
fi

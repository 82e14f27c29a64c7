#!/usr/bin/env bash
# -o no_writeback: the kernel's writeback cache is off, so each write(2) is a request that
# has reached the store when it returns (before any fsync or close), the daemon keeps mtime,
# a full mount's ENOSPC comes from write(2) (full_mount.sh) and the POSIX transcript matches
# tmpfs's (posix_semantics.sh); st_blksize is 128 KiB (stdio sizes its writes by it). Here: the data is in the store as write(2) returns, small
# writes at scattered offsets and a shared mapping read back exactly after drop_caches, and
# copying and deleting a tree costs the kernel's ctime flushes no SETATTR (counted under -d).
source "$(dirname "$0")/lib.sh"

drop_caches() { echo 3 >/proc/sys/vm/drop_caches; }

cat >"$WORK/writer.py" <<'PY'
import os, subprocess, sys
path, ctl, mnt = sys.argv[1:4]
def stat(name):
    out = subprocess.run([ctl, "stats", mnt], capture_output=True, text=True, check=True).stdout
    return int(next(l.split()[1] for l in out.splitlines() if l.split()[0] == name))
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
# 256 KiB: with the writeback cache on, the kernel would keep it dirty (a larger write may
# pass a new mount's dirty limit and be written back at once).
data = os.urandom(256 << 10)
assert os.write(fd, data) == len(data)
# No fsync, no close: the store must hold the data already.
held = stat("orig_data_size")
print("held after write(2):", held)
assert held >= len(data), "write(2) returned before its data reached the store"
os.close(fd)
PY

check "no_writeback: write(2) has stored its data when it returns"
mount_zbudfs -o size=256M,no_writeback
python3 "$WORK/writer.py" "$MNT/w" "$ZBUDFSCTL_BIN" "$MNT" >"$WORK/writer.out" 2>&1 ||
  fail "no_writeback: $(cat "$WORK/writer.out")"
note "$(cat "$WORK/writer.out")"

# The kernel sends chown(f, -1, -1) as an empty setattr here (no ctime of its own to send).
check "no_writeback: chown(f, -1, -1) clears setuid and setgid, as on tmpfs"
python3 -c 'import os, sys; p = sys.argv[1]; open(p, "w").close(); os.chmod(p, 0o6755)
os.chown(p, -1, -1); print(oct(os.stat(p).st_mode & 0o7777))' "$MNT/suid" >"$WORK/suid.out"
[[ $(cat "$WORK/suid.out") == 0o755 ]] || fail "mode after chown -1 -1: $(cat "$WORK/suid.out")"

# Each write(2) is a round trip: st_blksize asks stdio and the like for 128 KiB writes.
check "no_writeback: st_blksize is 128 KiB"
[[ $(stat -c %o "$MNT/w") == 131072 ]] || fail "st_blksize $(stat -c %o "$MNT/w")"

check "no_writeback: 4 KiB writes at scattered offsets and a shared mapping read back"
python3 - "$MNT/scatter" "$WORK/scatter.expect" <<'PY' || fail "scattered writes"
import mmap, os, random, sys
path, expect = sys.argv[1:3]
rng = random.Random(7)
buf = bytearray(8 << 20)
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
for _ in range(3000):
    off = rng.randrange(0, len(buf) - 4096)
    n = rng.choice((1, 100, 4096))
    b = bytes(rng.randrange(256) for _ in range(8)) * (n // 8 + 1)
    os.pwrite(fd, b[:n], off)
    buf[off:off + n] = b[:n]
os.ftruncate(fd, len(buf))
m = mmap.mmap(fd, len(buf))
for off in range(0, len(buf), 1 << 20):
    m[off:off + 5] = b"mmap!"
    buf[off:off + 5] = b"mmap!"
m.flush()
m.close()
os.close(fd)
open(expect, "wb").write(buf)
PY
drop_caches
cmp "$MNT/scatter" "$WORK/scatter.expect" || fail "no_writeback: scattered writes differ"
require_mounted
unmount_zbudfs

# setattr_per_file OPTIONS: sets per100 to the SETATTR requests per 100 files when a small
# tree is copied in and deleted (counted in the daemon's -d output), on the test's mount
# point (so that the test's cleanup unmounts it if this fails).
setattr_per_file() {
  local log=$WORK/debug.log pid n files
  "$ZBUDFS_BIN" -f -d -o "size=256M${1:+,$1}" "$MNT" >"$log" 2>&1 &
  pid=$!
  for n in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.1; done
  mountpoint -q "$MNT" || fail "debug mount did not come up"
  mkdir "$MNT/t" && cp -a "$REPO_ROOT/fs" "$REPO_ROOT/store" "$MNT/t/" &&
    sync -f "$MNT/t" && rm -rf "$MNT/t" && sync -f "$MNT" || fail "copy into the debug mount"
  sleep 0.5
  files=$(find "$REPO_ROOT/fs" "$REPO_ROOT/store" -type f | wc -l)
  n=$(grep -a -c "opcode: SETATTR" "$log" || true)
  fusermount3 -u "$MNT"
  wait "$pid"
  per100=$((n * 100 / files))
}

check "no_writeback: cp -a and rm -rf cost no ctime-flush SETATTR"
setattr_per_file ""
with=$per100
setattr_per_file no_writeback
without=$per100
note "SETATTR per 100 files: $with with the writeback cache, $without without"
# cp -a sets the times once a file; the writeback cache adds flushes of the ctime after
# each setxattr (cp's mode ACL) and unlink, and of the mtime it kept (about 4 a file).
((without <= 150)) || fail "no_writeback: $without SETATTR per 100 files"

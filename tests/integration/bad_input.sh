#!/usr/bin/env bash
# Bad input (what options_lifecycle.sh, posix_semantics.sh and permissions_xattr.sh do not
# already cover):
#   1. malformed, negative, overflowing and absurd option values -> non-zero exit, a one-line
#      message naming the option, nothing mounted; the boundary values are accepted;
#      overflow_limit=0 is refused or honoured (never "unlimited");
#   2. a mountpoint that is a regular file or already a zbudfs mount -> refused with a message;
#   3. overflow_dir that is a FIFO, a symlink to a directory (also written with a trailing
#      slash, which would resolve it), on a read-only file system, group
#      or other writable (0770, 0777, 1777), owned by another user, on the mount itself (also
#      through ..), or in use by another mount -> refused with a message; a relative
#      overflow_dir works in daemon mode (the daemon chdirs to / when it detaches);
#   4. names: 255 bytes (also multibyte UTF-8) work and 256 get ENAMETOOLONG for create,
#      mkdir, rename, link, symlink; names with newlines, tabs, control bytes and invalid
#      UTF-8 can be created, listed, stat'ed, renamed, linked and unlinked; symlink targets of
#      4095/4096 bytes; xattr names/values at and past their limits, listxattr past 64 KiB.
#      All compared with tmpfs result by result;
#   5. offsets at and past the largest file size: writes at 2^52-1, 2^52, 2^62, 2^63-1,
#      negative; truncate to 2^63-1 and -1; fallocate past the limit. A write either fails
#      (EFBIG) or its data really is stored (it reads back from the daemon after fsync and
#      fadvise(DONTNEED)); never accepted and then lost.
# The daemon must be alive after every step.
# Checks of independent behaviours record a failure and go on (so that one bug does not
# hide the others); the script fails at the end if any did.
source "$(dirname "$0")/lib.sh"

PROBLEMS=()
problem() {
  echo "FAIL [$TEST_NAME]: $*" >&2
  PROBLEMS+=("$*")
}

# zbudfs_mounts_on DIR: how many zbudfs mounts sit on DIR itself (field 5 of mountinfo is
# the mount point; the file system type follows the " - " separator). Mounts elsewhere on
# the machine (other tests running meanwhile) do not count.
zbudfs_mounts_on() {
  local dir
  dir=$(realpath -m -- "$1")
  awk -v d="$dir" '$5 == d { for (i = 6; i < NF; ++i) if ($i == "-") { if ($(i + 1) == "fuse.zbudfs") ++n; break } }
    END { print n + 0 }' /proc/self/mountinfo
}

# refuse WORD ARGS...: zbudfs -f ARGS must exit non-zero within 5 s with a one-line message
# containing WORD, and mount nothing on its mountpoint (the last argument).
refuse() {
  local want=$1 rc=0 target mounts_before msg
  shift
  target=${!#}
  mounts_before=$(zbudfs_mounts_on "$target")
  # In the foreground a daemon that mounted runs until the timeout's SIGTERM (then it
  # detaches its own mount): exit 124.
  timeout -k 2 5 "$ZBUDFS_BIN" -f "$@" 2>"$WORK/err" >/dev/null || rc=$?
  msg=$(cat "$WORK/err")
  if ((rc == 124)) || (($(zbudfs_mounts_on "$target") > mounts_before)); then
    problem "zbudfs $* was not refused: it mounted $target (and ran until killed)"
  elif ((rc == 0)); then
    problem "zbudfs $*: exit 0"
  elif [[ $(wc -l <"$WORK/err") != 1 ]]; then
    problem "zbudfs $*: the message is not one line: $msg"
  elif ! grep -qF -- "$want" "$WORK/err"; then
    problem "zbudfs $*: the message does not name '$want': $msg"
  else
    note "refused: $* -> $msg"
  fi
}

# accept ARGS...: zbudfs -f ARGS $MNT mounts; then it is unmounted again.
accept() {
  mount_zbudfs "$@"
  unmount_zbudfs
  note "accepted: $*"
}

# ---------------------------------------------------------------------------------------------
check "1. malformed, negative, overflowing and absurd option values are refused"
t0=$SECONDS
for v in 99999999999999999999999 18446744073709551615 18446744073709551616 16777216T 5P 1GB \
  +1G " 1G" 0x1000 1e9 -0; do
  refuse size -o "size=$v" "$MNT"
done
for v in -1 4095 99999999999999999999999 "" 1.5G abc 17179869184T; do
  refuse mem_limit -o "mem_limit=$v" "$MNT"
done
for v in "" abc -1 1Q 99999999999999999999999 16777216T; do
  refuse overflow_limit -o "overflow_limit=$v" "$MNT"
done
range=$("$ZBUDFS_BIN" --help | sed -n 's/.*zstd_level=N.*range \(-\?[0-9]*\)\.\.\([0-9]*\)).*/\1 \2/p')
read -r zmin zmax <<<"$range"
[[ -n $zmin && -n $zmax ]] || fail "--help does not give the zstd_level range"
for v in 999 -999999999 $((zmin - 1)) $((zmax + 1)) 99999999999999999999 "" +3 1e3 0x5 " 1" 1.0; do
  refuse zstd_level -o "zstd_level=$v" "$MNT"
done
for v in 999 $((zmin - 1)) $((zmax + 1)) "" Off no 1.5 abc; do
  refuse zstd_fast -o "zstd_fast=$v" "$MNT"
done
for v in 0 -1 abc 100000 ""; do
  refuse max_threads -o "max_threads=$v" "$MNT"
done
for v in "" abc -1 1.5K 99999999999999999999999 16777216T; do
  refuse nr_inodes -o "nr_inodes=$v" "$MNT"
done
refuse overflow_dir -o overflow_dir= "$MNT"
for o in mem_limit zstd_level zstd_fast overflow_limit overflow_dir max_threads nr_inodes; do
  refuse "$o" -o "$o" "$MNT"
done
refuse nosuchopt -o nosuchopt "$MNT"
refuse nosuchopt -o size=64M,nosuchopt=3,mem_limit=16M "$MNT"
refuse -x -x "$MNT"
check "1. boundary values are accepted"
accept -o size=4096,mem_limit=4096
accept -o "zstd_level=$zmin"
accept -o "zstd_level=$zmax,max_threads=1"
accept -o "zstd_fast=off"
accept -o "zstd_fast=$zmin,zstd_level=3"
accept -o size=4096T,mem_limit=1T,overflow_limit=16T
accept -o nr_inodes=0
accept -o nr_inodes=1k
check "1. overflow_limit=0 is refused, or means no overflow (ENOSPC past mem_limit), never unlimited"
mkdir -m 0700 "$WORK/ov0"
rc=0
timeout -k 2 5 "$ZBUDFS_BIN" -f -o overflow_limit=0,mem_limit=4M,overflow_dir="$WORK/ov0" "$MNT" 2>"$WORK/err" &
pid=$!
for _ in $(seq 50); do mountpoint -q "$MNT" && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
if mountpoint -q "$MNT"; then
  ZPID=$pid
  dd if=/dev/urandom of="$MNT/x" bs=1M count=16 conv=fsync status=none 2>"$WORK/dd.err" || rc=$?
  ob=$(stat_value overflow_bytes)
  rm -f "$MNT/x"
  fusermount3 -u "$MNT"
  wait "$pid" || true
  ZPID=
  note "mounted with overflow_limit=0: 16 MiB random write exit $rc, overflow_bytes $ob"
  ((rc != 0 && ob == 0)) ||
    problem "overflow_limit=0 let $ob bytes into the overflow directory (16 MiB write exit $rc): 0 means unlimited"
else
  wait "$pid" || rc=$?
  note "refused: overflow_limit=0 -> exit $rc: $(cat "$WORK/err")"
  ((rc != 0)) && grep -q overflow_limit "$WORK/err" || problem "overflow_limit=0: exit $rc, $(cat "$WORK/err")"
fi
note "$((SECONDS - t0)) s"

# ---------------------------------------------------------------------------------------------
check "2. a mountpoint that is a regular file is refused"
t0=$SECONDS
echo data >"$WORK/afile"
refuse "$WORK/afile" "$WORK/afile"
[[ $(cat "$WORK/afile" 2>&1) == data ]] || problem "the file used as a mountpoint changed or is unreadable"
check "2. a mountpoint that is already a zbudfs mount is refused"
mount_zbudfs -o size=64M
echo first >"$MNT/marker"
refuse "$MNT" -o size=32M "$MNT"
[[ $(cat "$MNT/marker" 2>&1) == first ]] || problem "the first mount is hidden or broken after the second attempt"
require_mounted
unmount_zbudfs
note "$((SECONDS - t0)) s"

# ---------------------------------------------------------------------------------------------
check "3. unusable overflow directories are refused with a message"
t0=$SECONDS
mkfifo "$WORK/fifo"
refuse overflow_dir -o overflow_dir="$WORK/fifo" "$MNT"
mkdir -m 0700 "$WORK/realov"
ln -s "$WORK/realov" "$WORK/ovlink"
refuse overflow_dir -o overflow_dir="$WORK/ovlink" "$MNT"
refuse overflow_dir -o overflow_dir="$WORK/ovlink/" "$MNT"  # The slash must not resolve it.
refuse overflow_dir -o overflow_dir="$WORK/ovlink//." "$MNT"
mkdir "$WORK/rofs"
mount -t tmpfs -o size=1M,mode=0700,ro tmpfs "$WORK/rofs" || fail "cannot mount a read-only tmpfs"
refuse overflow_dir -o overflow_dir="$WORK/rofs" "$MNT"
for mode in 0770 0777 1777 0702; do
  mkdir -m "$mode" "$WORK/ov$mode"
  refuse overflow_dir -o overflow_dir="$WORK/ov$mode" "$MNT"
done
mkdir -m 0700 "$WORK/ovnobody"
chown nobody "$WORK/ovnobody"
refuse overflow_dir -o overflow_dir="$WORK/ovnobody" "$MNT"
mkdir -m 0700 "$MNT/under"  # Below the mountpoint: on the mount once it is mounted.
refuse overflow_dir -o overflow_dir="$MNT" "$MNT"
refuse overflow_dir -o overflow_dir="$MNT/under" "$MNT"
refuse overflow_dir -o overflow_dir="$WORK/realov/../mnt/under" "$MNT"
rmdir "$MNT/under"
check "3. an overflow directory in use by another mount is refused"
mount_zbudfs -o overflow_dir="$WORK/realov"
mkdir "$WORK/mnt2"
refuse "in use" -o overflow_dir="$WORK/realov" "$WORK/mnt2"
unmount_zbudfs
check "3. a relative overflow_dir works in daemon mode (the daemon chdirs to /)"
mkdir -m 0700 "$WORK/relov"
(cd "$WORK" && "$ZBUDFS_BIN" -o mem_limit=4M,overflow_dir=relov "$MNT") || fail "daemon-mode mount with overflow_dir=relov failed"
ZPID=$(pgrep -f -- "zbudfs -o mem_limit=4M,overflow_dir=relov $MNT" | head -1)
rc=0
dd if=/dev/urandom of="$MNT/x" bs=1M count=16 conv=fsync status=none 2>"$WORK/dd.err" || rc=$?
n=$(find "$WORK/relov" -name 'zbudfs-overflow-*' | wc -l)
note "16 MiB write with overflow_dir=relov: exit $rc $(cat "$WORK/dd.err"); $n overflow files in $WORK/relov"
((rc == 0)) || problem "a write that needs the overflow failed with overflow_dir=relov (daemon mode): $(cat "$WORK/dd.err")"
((n > 0)) || problem "no overflow file in $WORK/relov (daemon mode, overflow_dir=relov)"
fusermount3 -u "$MNT"
for _ in $(seq 50); do kill -0 "$ZPID" 2>/dev/null || break; sleep 0.1; done
ZPID=
left=$(ls -A "$WORK/relov")
[[ -z $left ]] || problem "relative overflow_dir not cleaned at unmount: $left"
note "$((SECONDS - t0)) s"

# ---------------------------------------------------------------------------------------------
cat >"$WORK/names.py" <<'PY'
import errno, os, sys
os.chdir(sys.argv[1])
from probe import t
def create(n, data=b"x"):
    fd = os.open(n, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, data)
    os.close(fd)
def content(n):
    with open(n, "rb") as f:
        return f.read()
odd = {
    "newline": b"new\nline", "newlines only": b"\n\n", "tab": b"tab\there", "cr": b"a\rb",
    "control": b"\x01\x02\x7f", "invalid utf8": b"\xff\xfe\xfd", "bad continuation": b"\xc3\x28",
    "overlong": b"\xc0\xaf", "lone surrogate": b"\xed\xa0\x80", "dash": b"-rf", "space": b" ",
    "backslash": b"back\\slash", "star": b"*?[]", "utf8": "ünïcödé-文字".encode(),
}
for label, n in odd.items():
    t(f"create {label}", create, n, n)
    t(f"stat {label}", lambda: os.stat(n).st_size)
    t(f"content {label}", content, n)
    t(f"rename {label}", os.rename, n, n + b".r")
    t(f"link {label}", os.link, n + b".r", n + b"\n2")
    t(f"unlink {label} link", os.unlink, n + b"\n2")
    t(f"mkdir {label}", os.mkdir, n + b".d")
    t(f"symlink {label}", os.symlink, n, n + b".s")
    t(f"readlink {label}", os.readlink, n + b".s")
t("listing", lambda: sorted(os.listdir(b".")))
for label, n in odd.items():
    t(f"unlink {label}", os.unlink, n + b".r")
    t(f"rmdir {label}", os.rmdir, n + b".d")
    t(f"unlink symlink {label}", os.unlink, n + b".s")
t("empty listing", lambda: sorted(os.listdir(b".")))
# 255 / 256 bytes, ASCII and multibyte (é is 2 bytes).
for label, n255, n256 in (("ascii", b"a" * 255, b"a" * 256),
                          ("utf8", "é".encode() * 127 + b"x", "é".encode() * 128)):
    t(f"create 255 {label}", create, n255)
    t(f"create 256 {label}", create, n256)
    t(f"mkdir 255 {label}", os.mkdir, n255[:-1] + b"D")
    t(f"mkdir 256 {label}", os.mkdir, n256[:-1] + b"D")
    t(f"rename to 256 {label}", os.rename, n255, n256)
    t(f"link to 256 {label}", os.link, n255, n256)
    t(f"symlink name 256 {label}", os.symlink, "t", n256)
    t(f"rename to 255 {label}", os.rename, n255, n255[:-1] + b"R")
    t(f"link to 255 {label}", os.link, n255[:-1] + b"R", n255[:-1] + b"L")
    t(f"listed {label}", lambda: sorted(len(x) for x in os.listdir(b".")))
    t(f"stat 256 {label}", os.stat, n256)
    for x in os.listdir(b"."):
        (os.rmdir if os.path.isdir(x) and not os.path.islink(x) else os.unlink)(x)
t("symlink target 4095", os.symlink, "t" * 4095, "s4095")
t("readlink 4095", lambda: len(os.readlink("s4095")))
t("symlink target 4096", os.symlink, "t" * 4096, "s4096")
t("path of 4095 bytes", os.stat, "./" * 2047 + "x")
t("path of 4096 bytes", os.stat, "./" * 2048)
# Extended attributes at and past their limits.
create("x")
t("xattr name 255", os.setxattr, "x", "user." + "n" * 250, b"v")
t("xattr name 255 get", os.getxattr, "x", "user." + "n" * 250)
t("xattr name 256", os.setxattr, "x", "user." + "n" * 251, b"v")
t("xattr trusted name 256", os.setxattr, "x", "trusted." + "n" * 248, b"v")
t("xattr empty suffix", os.setxattr, "x", "user.", b"v")
t("xattr empty name", os.setxattr, "x", "", b"v")
t("xattr value 65536", os.setxattr, "x", "user.big", bytes(range(256)) * 256)
t("xattr value 65536 back", lambda: os.getxattr("x", "user.big") == bytes(range(256)) * 256)
t("xattr value 65537", os.setxattr, "x", "user.big2", b"v" * 65537)
t("xattr replace with 65537", os.setxattr, "x", "user.big", b"v" * 65537, os.XATTR_REPLACE)
t("xattr value kept", lambda: len(os.getxattr("x", "user.big")))
t("xattr newline in name", os.setxattr, "x", "user.a\nb", b"1")
t("xattr binary value", lambda: (os.setxattr("x", "user.bin", b"\0\xff\n\0"), os.getxattr("x", "user.bin"))[1])
y = "y"
create(y)
def many():
    for i in range(400):
        os.setxattr(y, "user." + ("%03d" % i) * 66, b"v")
t("400 xattrs of 203-byte names", many)
t("listxattr past 64 KiB", lambda: len(os.listxattr(y)))
t("getxattr among many", os.getxattr, y, "user." + "399" * 66)
t("remove one of many", os.removexattr, y, "user." + "000" * 66)
PY

check "4. names and xattrs at and past their limits, odd bytes in names (compared with tmpfs)"
t0=$SECONDS
make_tmpfs "$WORK/tmpfs"
python3 "$WORK/names.py" "$WORK/tmpfs" >"$WORK/tmpfs.out" || fail "names.py crashed on tmpfs"
mount_zbudfs -o size=256M
python3 "$WORK/names.py" "$MNT" >"$WORK/zbudfs.out" || fail "names.py crashed on zbudfs"
require_mounted
if diff -u "$WORK/tmpfs.out" "$WORK/zbudfs.out"; then
  note "$(wc -l <"$WORK/zbudfs.out") results identical to tmpfs"
else
  problem "names/xattrs: zbudfs differs from tmpfs (- tmpfs, + zbudfs, above)"
fi
"$ZBUDFSCTL_BIN" stats "$MNT" >/dev/null || fail "the daemon does not answer"
rm -rf "${MNT:?}"/*
note "$((SECONDS - t0)) s"

# ---------------------------------------------------------------------------------------------
check "5. offsets at and past the largest file size"
t0=$SECONDS
cat >"$WORK/offsets.py" <<'PY'
import errno, os, sys
os.chdir(sys.argv[1])
bad = []
def name(e):
    return errno.errorcode.get(e.errno, str(e.errno))
def stored(path, off, data):
    """data at off must come back from the daemon (page cache dropped)."""
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    got = os.pread(fd, len(data), off)
    os.close(fd)
    return got == data
def write_at(label, off, data):
    """A write either fails at once (EFBIG/EINVAL) or is really stored: fsync ok, reads back."""
    path = f"w{len(bad)}_{off}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        n = os.pwrite(fd, data, off)
    except OSError as e:
        os.close(fd)
        print(f"{label}: write {name(e)}")
        return name(e)
    try:
        os.fsync(fd)
        fs = "ok"
    except OSError as e:
        fs = name(e)
    size = os.fstat(fd).st_size
    os.close(fd)
    ok = fs == "ok" and stored(path, off, data[:n])
    print(f"{label}: wrote {n} of {len(data)}, fsync {fs}, size {size}, "
          f"{'reads back' if ok else 'DATA LOST (accepted, then not stored)'}")
    if not ok:
        bad.append(label)
    os.unlink(path)
    return "ok"
M = 1 << 52
write_at("1 byte at 2^52-1", M - 1, b"a")
write_at("2 bytes at 2^52-1", M - 1, b"bc")
write_at("8 KiB at 2^52-4096", M - 4096, os.urandom(8192))
write_at("1 byte at 2^52", M, b"d")
write_at("4 KiB at 2^62", 1 << 62, os.urandom(4096))
r = write_at("1 byte at 2^63-2", (1 << 63) - 2, b"e")
r = write_at("1 byte at 2^63-1", (1 << 63) - 1, b"f")
if r not in ("EFBIG", "EINVAL"):  # The kernel: EINVAL (offset + count overflows).
    bad.append("a write at 2^63-1 must fail with EFBIG or EINVAL")
fd = os.open("t", os.O_RDWR | os.O_CREAT, 0o644)
for off in (-1, -(1 << 62)):
    try:
        os.pwrite(fd, b"x", off)
        bad.append(f"pwrite at {off} succeeded")
    except OSError as e:
        print(f"pwrite at {off}: {name(e)}")
        if e.errno != errno.EINVAL:
            bad.append(f"pwrite at {off}: {name(e)}, want EINVAL")
for size in ((1 << 63) - 1, M + 1, M, -1):
    try:
        os.ftruncate(fd, size)
        r = "ok"
    except OSError as e:
        r = name(e)
    st = os.fstat(fd).st_size
    print(f"ftruncate {size}: {r}, size {st}")
    if size < 0 and r != "EINVAL":
        bad.append(f"ftruncate {size}: {r}")
    elif size >= 0 and r not in ("ok", "EFBIG", "EINVAL"):
        bad.append(f"ftruncate {size}: {r}")
    elif r == "ok" and (st != size or os.pread(fd, 1, size - 1) != b"\0"):
        bad.append(f"ftruncate {size}: size {st}")
os.ftruncate(fd, 0)
for off, ln in ((M - 4096, 4096), (M, 4096), ((1 << 63) - 4096, 8192)):
    try:
        os.posix_fallocate(fd, off, ln)
        r = "ok"
    except OSError as e:
        r = name(e)
    print(f"fallocate {off}+{ln}: {r}")
    if r not in ("ok", "EFBIG", "EINVAL"):
        bad.append(f"fallocate {off}+{ln}: {r}")
os.ftruncate(fd, 0)
print("lseek 2^63-1:", os.lseek(fd, (1 << 63) - 1, os.SEEK_SET), "pread at 2^62:", os.pread(fd, 10, 1 << 62))
os.close(fd)
os.unlink("t")
if bad:
    print("FAILED:", "; ".join(bad))
    sys.exit(1)
PY
rc=0
python3 "$WORK/offsets.py" "$MNT" >"$WORK/offsets.out" 2>&1 || rc=$?
while read -r line; do note "$line"; done <"$WORK/offsets.out"
require_mounted
"$ZBUDFSCTL_BIN" stats "$MNT" >/dev/null || fail "the daemon does not answer after the offset tests"
((rc == 0)) || problem "offsets past the largest file size: writes accepted and then lost, or wrong errors: $(tail -n 1 "$WORK/offsets.out")"
unmount_zbudfs
note "$((SECONDS - t0)) s"
if ((${#PROBLEMS[@]})); then
  fail "${#PROBLEMS[@]} checks failed:$(printf '\n  - %s' "${PROBLEMS[@]}")"
fi

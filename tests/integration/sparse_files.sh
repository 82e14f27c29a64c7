#!/usr/bin/env bash
# Sparse files and holes: truncate, fallocate (plain, KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE,
# unsupported modes) and lseek SEEK_DATA/SEEK_HOLE, compared with tmpfs result by result;
# then st_blocks reflects the compressed footprint (holes and zero pages cost nothing).
source "$(dirname "$0")/lib.sh"

cat >"$WORK/sparse.py" <<'PY'
import ctypes, errno, os, sys

os.chdir(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
KEEP, PUNCH, COLLAPSE, ZERO, INSERT = 1, 2, 8, 16, 32
P = 4096

def fallocate(fd, mode, off, length):
    if libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))

from probe import t

def seeks(fd):
    """Every data/hole boundary, walking the file with SEEK_DATA/SEEK_HOLE."""
    out, off = [], 0
    while True:
        try:
            d = os.lseek(fd, off, os.SEEK_DATA)
        except OSError as e:
            out.append(("data", errno.errorcode[e.errno]))
            break
        h = os.lseek(fd, d, os.SEEK_HOLE)
        out.append((d, h))
        off = h
    return out

def content(fd, off, n):
    return os.pread(fd, n, off)

# Writers are closed before each question: the kernel flushes its cached pages on close.
def W(fn):
    w = os.open("s", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        return fn(w)
    finally:
        os.close(w)

W(lambda w: None)
fd = os.open("s", os.O_RDONLY)
t("empty seek data", os.lseek, fd, 0, os.SEEK_DATA)
t("empty seek hole", os.lseek, fd, 0, os.SEEK_HOLE)
W(lambda w: os.ftruncate(w, 100 * P))
t("all hole: data", os.lseek, fd, 0, os.SEEK_DATA)
t("all hole: hole", os.lseek, fd, 5, os.SEEK_HOLE)
W(lambda w: (os.pwrite(w, b"A" * 3 * P, 10 * P), os.pwrite(w, b"B" * 100, 50 * P + 17)))
t("map after writes", seeks, fd)
t("seek data mid-page", os.lseek, fd, 10 * P + 5, os.SEEK_DATA)
t("seek hole mid-data", os.lseek, fd, 10 * P + 5, os.SEEK_HOLE)
t("seek past eof", os.lseek, fd, 100 * P, os.SEEK_DATA)
t("seek hole past eof", os.lseek, fd, 100 * P + 1, os.SEEK_HOLE)
t("seek negative", os.lseek, fd, -1, os.SEEK_DATA)
t("punch", W, lambda w: fallocate(w, PUNCH | KEEP, 11 * P, P))
t("map after punch", seeks, fd)
t("punched reads zero", lambda: content(fd, 11 * P - 2, 4))
t("punch partial", W, lambda w: fallocate(w, PUNCH | KEEP, 10 * P + 100, 50))
t("partial punch content", lambda: content(fd, 10 * P + 98, 54).count(b"\0"))
t("punch without keep", W, lambda w: fallocate(w, PUNCH, 0, P))
t("punch+zero", W, lambda w: fallocate(w, PUNCH | ZERO | KEEP, 0, P))
t("collapse", W, lambda w: fallocate(w, COLLAPSE, 0, P))
t("insert", W, lambda w: fallocate(w, INSERT, 0, P))
t("allocate", W, lambda w: fallocate(w, 0, 150 * P, 10 * P))
t("size after allocate", lambda: os.fstat(fd).st_size)
t("allocate keep size", W, lambda w: fallocate(w, KEEP, 300 * P, P))
t("size after allocate keep", lambda: os.fstat(fd).st_size)
t("allocated reads zero", lambda: content(fd, 150 * P, 8))
t("allocate bad len", W, lambda w: fallocate(w, 0, 0, 0))
t("allocate negative", W, lambda w: fallocate(w, 0, -1, 10))
t("allocate on read-only fd", fallocate, fd, 0, 0, P)
t("truncate down into data", W, lambda w: os.ftruncate(w, 10 * P + 1000))
t("map after truncate", seeks, fd)
t("tail", lambda: content(fd, 10 * P + 998, 10))
W(lambda w: os.ftruncate(w, 20 * P))
t("regrown tail zero", lambda: content(fd, 10 * P + 998, 10))
t("map after regrow", seeks, fd)
os.close(fd)
dfd = os.open(".", os.O_RDONLY)
t("fallocate dir", fallocate, dfd, 0, 0, P)
os.close(dfd)

# ZERO_RANGE: zbudfs supports it, tmpfs does not; these lines (prefix Z) are checked apart.
fd = os.open("z", os.O_RDWR | os.O_CREAT, 0o644)
os.pwrite(fd, b"A" * 3 * P, 10 * P)
t("Z zero range", fallocate, fd, ZERO, 10 * P + 10, 20)
t("Z zero content", lambda: content(fd, 10 * P + 8, 24))
t("Z size after zero", lambda: os.fstat(fd).st_size)
t("Z zero range extends", fallocate, fd, ZERO, 100 * P, 2 * P + 3)
t("Z size after zero extend", lambda: os.fstat(fd).st_size)
t("Z zero range keep size", fallocate, fd, ZERO | KEEP, 200 * P, P)
t("Z size after zero keep", lambda: os.fstat(fd).st_size)
t("Z zero whole pages read zero", lambda: content(fd, 100 * P, 2 * P + 3).count(b"\0"))
os.close(fd)
PY

cat >"$WORK/zero.expected" <<'EXP'
Z zero range: ok
Z zero content: b'AA\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00AA'
Z size after zero: 53248
Z zero range extends: ok
Z size after zero extend: 417795
Z zero range keep size: ok
Z size after zero keep: 417795
Z zero whole pages read zero: 8195
EXP

check "reference transcript on tmpfs"
make_tmpfs "$WORK/tmpfs"
python3 "$WORK/sparse.py" "$WORK/tmpfs" >"$WORK/tmpfs.out" || fail "sparse.py crashed on tmpfs"
check "same operations on zbudfs"
mount_zbudfs -o size=256M
python3 "$WORK/sparse.py" "$MNT" >"$WORK/zbudfs.out" || fail "sparse.py crashed on zbudfs"
require_mounted
check "transcripts are identical ($(wc -l <"$WORK/tmpfs.out") operations)"
diff -u <(grep -v '^Z ' "$WORK/tmpfs.out") <(grep -v '^Z ' "$WORK/zbudfs.out") ||
  fail "zbudfs differs from tmpfs (- tmpfs, + zbudfs)"
check "FALLOC_FL_ZERO_RANGE (which tmpfs lacks) zeroes, extends, keeps size"
diff -u "$WORK/zero.expected" <(grep '^Z ' "$WORK/zbudfs.out") || fail "ZERO_RANGE results wrong"

check "holes cost no blocks, text costs less than its size"
truncate -s 1G "$MNT/huge"
[[ $(stat -c %b "$MNT/huge") == 0 ]] || fail "a 1 GiB hole has $(stat -c %b "$MNT/huge") blocks"
fallocate -l 64M "$MNT/alloc"
sync "$MNT/alloc"
[[ $(stat -c %s "$MNT/alloc") == 67108864 ]] || fail "fallocate -l 64M gave size $(stat -c %s "$MNT/alloc")"
cat /usr/include/*.h >"$MNT/text"
sync "$MNT/text"
blocks=$(stat -c %b "$MNT/text")
size=$(stat -c %s "$MNT/text")
((blocks * 512 * 2 < size)) || fail "text of $size bytes takes $blocks blocks (not < half)"
check "a write at a huge sparse offset works and reads back"
printf 'end' | dd of="$MNT/far" bs=1 seek=$((1 << 40)) conv=notrunc status=none
[[ $(tail -c 3 "$MNT/far") == end ]] || fail "data at 1 TiB did not read back"
[[ $(stat -c %s "$MNT/far") == $(((1 << 40) + 3)) ]] || fail "size of far file wrong"
unmount_zbudfs

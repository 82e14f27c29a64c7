#!/usr/bin/env bash
# Data integrity: copies /usr/include and /usr/share/doc in and diffs them back, again after
# dropping the kernel's caches (so data comes from the compressed store); large files written
# with dd at odd offsets and sizes (conv=notrunc) must cmp equal to the same writes on a
# local reference file; mmap writes; a 4 KiB-unaligned overwrite across page boundaries.
source "$(dirname "$0")/lib.sh"

mount_zbudfs -o size=2G
check "copy /usr/include and /usr/share/doc in"
cp -a /usr/include "$MNT/include"
cp -a /usr/share/doc "$MNT/doc"
require_mounted
check "diff -r back"
diff -r --no-dereference /usr/include "$MNT/include" >/dev/null || fail "/usr/include differs"
diff -r --no-dereference /usr/share/doc "$MNT/doc" >/dev/null || fail "/usr/share/doc differs"
check "diff -r again after drop_caches"
sync
echo 3 >/proc/sys/vm/drop_caches
diff -r --no-dereference /usr/include "$MNT/include" >/dev/null || fail "/usr/include differs after drop_caches"
diff -r --no-dereference /usr/share/doc "$MNT/doc" >/dev/null || fail "/usr/share/doc differs after drop_caches"
check "tree metadata (modes, sizes, link targets) survives"
meta() { find . \( -type d -printf '%p %m %u %g dir\n' \) -o -printf '%p %m %u %g %s %l %n\n' | sort; }
(cd /usr/include && meta) >"$WORK/meta.ref"
(cd "$MNT/include" && meta) >"$WORK/meta.out"
diff -q "$WORK/meta.ref" "$WORK/meta.out" >/dev/null || fail "metadata of the copied tree differs"

check "dd at odd offsets and sizes, cmp with a reference file"
REF=$WORK/ref.bin
head -c $((48 << 20)) /dev/urandom >"$WORK/random"
cat /usr/include/*.h /usr/include/linux/*.h | head -c $((16 << 20)) >"$WORK/text"
for target in "$REF" "$MNT/big.bin"; do
  dd if="$WORK/random" of="$target" bs=1M count=20 status=none
  dd if="$WORK/text" of="$target" bs=4097 seek=777 count=1000 conv=notrunc status=none
  dd if="$WORK/random" of="$target" bs=1 skip=5 seek=12345 count=70000 conv=notrunc status=none
  dd if="$WORK/text" of="$target" bs=65531 skip=3 seek=400 count=37 conv=notrunc status=none
  dd if="$WORK/random" of="$target" bs=1M skip=30 seek=33 count=9 conv=notrunc status=none
  dd if=/dev/zero of="$target" bs=8191 seek=100 count=300 conv=notrunc status=none
  dd if="$WORK/text" of="$target" bs=511 seek=$(((50 << 20) / 511)) count=333 conv=notrunc status=none
  dd if="$WORK/random" of="$target" bs=3 seek=$(((45 << 20) / 3 + 1)) count=1 conv=notrunc status=none
  truncate -s $(((47 << 20) + 4093)) "$target"
  dd if="$WORK/text" of="$target" bs=1000 seek=$((60 << 10)) count=10 conv=notrunc status=none
done
cmp "$REF" "$MNT/big.bin" || fail "big.bin differs from the reference"
sync
echo 3 >/proc/sys/vm/drop_caches
cmp "$REF" "$MNT/big.bin" || fail "big.bin differs from the reference after drop_caches"
check "O_DIRECT reads see the same bytes"
dd if="$MNT/big.bin" of="$WORK/direct.bin" bs=1M iflag=direct status=none
cmp "$REF" "$WORK/direct.bin" || fail "O_DIRECT read differs"

check "shared mmap writes reach the store"
python3 - "$MNT/mm" <<'PY'
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, 3 * 4096 + 5)
m = mmap.mmap(fd, 3 * 4096 + 5)
m[4090:4110] = b"M" * 20
m[-1:] = b"E"
m.flush()
m.close()
os.close(fd)
PY
sync
echo 3 >/proc/sys/vm/drop_caches
python3 - "$MNT/mm" <<'PY' || fail "mmap data lost"
import sys
d = open(sys.argv[1], "rb").read()
assert len(d) == 3 * 4096 + 5 and d[4090:4110] == b"M" * 20 and d[-1:] == b"E", d[4085:4115]
assert d[:4090] == bytes(4090)
PY
check "rm -rf of the trees"
rm -rf "$MNT/include" "$MNT/doc"
[[ -z $(ls -A "$MNT" | grep -v -e big.bin -e mm) ]] || fail "entries left after rm -rf"
unmount_zbudfs

#!/usr/bin/env bash
# SEEK_DATA/SEEK_HOLE while writers have dirty pages in the kernel: the daemon makes the
# kernel write them back first, and those writes need a free worker. Concurrent lseeks must
# never take every worker (they would wait for each other for ever): with max_threads=2,
# four processes write and seek their own files at once; every lseek must return, and the
# data found must be what each process wrote.
source "$(dirname "$0")/lib.sh"

mount_zbudfs -o max_threads=2
check "4 processes x 3 s of write + SEEK_DATA/SEEK_HOLE with max_threads=2 (60 s limit)"
cat >"$WORK/seek.py" <<'PY'
import os, sys, time
path = sys.argv[1]
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
end = time.monotonic() + 3
n = 0
while time.monotonic() < end:
    off = (n % 64) * 65536
    os.pwrite(fd, b"%08d" % n * 512, off)  # 4 KiB of data at a fresh place: dirty pages.
    d = os.lseek(fd, 0, os.SEEK_DATA)
    h = os.lseek(fd, off, os.SEEK_HOLE)
    assert d == 0 or n < 64, (d, n)
    assert h >= off + 4096, (h, off)
    n += 1
print(n)
PY
pids=()
for i in 1 2 3 4; do
  timeout 60 python3 "$WORK/seek.py" "$MNT/f$i" >"$WORK/out$i" 2>&1 &
  pids+=($!)
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || fail "process $((i + 1)) failed or hung: $(tail -2 "$WORK/out$((i + 1))")"
done
require_mounted
for i in 1 2 3 4; do
  n=$(cat "$WORK/out$i")
  [[ $n =~ ^[0-9]+$ && $n -gt 0 ]] || fail "process $i: $n"
done
check "each file reads back what was written last at each offset"
python3 - "$MNT" <<'PY' || fail "data"
import os, sys
for i in range(1, 5):
    with open(os.path.join(sys.argv[1], f"f{i}"), "rb") as f:
        data = f.read()
    assert len(data) >= 4096, i
    assert data[:8].isdigit(), (i, data[:8])
PY
unmount_zbudfs

#!/usr/bin/env bash
# A full mount never turns acknowledged data into zeros (issue 14). Near full, writable opens
# get direct I/O, so write(2) itself reports ENOSPC; writeback the store refuses anyway makes
# the kernel drop the refused data and size. For a full size= mount and a full memory and
# overflow (mem_limit, overflow_limit, incompressible data): echo through a shell redirect,
# dd, cp of a file larger than the room left and an mmap writer each fail with ENOSPC, and
# after drop_caches every file reads back exactly what was acknowledged. Then a writer that
# opened before the mount was near full writes past full through the writeback cache: what
# it reads back is what it wrote or a size that excludes the rest, never zeros. The size=
# case again with -o no_writeback (no writeback cache at all).
source "$(dirname "$0")/lib.sh"

PY=$REPO_ROOT/tests/integration/full_mount.py
drop_caches() { echo 3 >/proc/sys/vm/drop_caches; }
head -c 1M /dev/urandom >"$WORK/src1m"
head -c 4M /dev/urandom >"$WORK/src4m"

# expect_enospc LABEL FILE: FILE (a command's stderr) says ENOSPC.
expect_enospc() {
  grep -q "No space left on device" "$2" || fail "$1: not ENOSPC: $(head -3 "$2")"
}

# full_case LABEL MOUNT_OPTIONS
full_case() {
  local label=$1
  mount_zbudfs -o "$2"
  check "$label: fill until write(2) itself fails with ENOSPC"
  python3 "$PY" fill "$MNT/fill" "$WORK/fill.expect" >"$WORK/fill.out" ||
    fail "$label: fill: $(cat "$WORK/fill.out")"
  note "$label: fill: $(cat "$WORK/fill.out")"

  check "$label: echo through a shell redirect fails with ENOSPC"
  if (echo important >"$MNT/echo") 2>"$WORK/echo.err"; then
    fail "$label: echo succeeded on a full mount"
  fi
  expect_enospc "$label: echo" "$WORK/echo.err"
  : >"$WORK/echo.expect"

  check "$label: dd fails with ENOSPC"
  if dd if="$WORK/src1m" of="$MNT/dd" bs=64k 2>"$WORK/dd.err"; then
    fail "$label: dd succeeded on a full mount"
  fi
  expect_enospc "$label: dd" "$WORK/dd.err"
  local copied
  copied=$(sed -n 's/^\([0-9]*\) bytes.* copied.*/\1/p' "$WORK/dd.err")
  [[ $copied =~ ^[0-9]+$ ]] || fail "$label: dd said $(cat "$WORK/dd.err")"
  head -c "$copied" "$WORK/src1m" >"$WORK/dd.expect"

  check "$label: cp of 4 MiB into 2 MiB of room fails with ENOSPC"
  truncate -s -2M "$MNT/fill" "$WORK/fill.expect"
  if cp "$WORK/src4m" "$MNT/cp" 2>"$WORK/cp.err"; then fail "$label: cp succeeded"; fi
  expect_enospc "$label: cp" "$WORK/cp.err"

  check "$label: an mmap writer gets ENOSPC at msync (or SIGBUS)"
  local rc=0
  python3 "$PY" mmap "$MNT/mm" "$WORK/mm.data" >"$WORK/mm.out" 2>&1 || rc=$?
  if [[ $rc == 0 ]]; then
    grep -qx "msync ENOSPC" "$WORK/mm.out" || fail "$label: mmap: $(cat "$WORK/mm.out")"
    note "$label: mmap writer: msync failed with ENOSPC"
  elif [[ $rc == 135 ]]; then
    note "$label: mmap writer: SIGBUS"
  else
    fail "$label: mmap writer exited with $rc: $(cat "$WORK/mm.out")"
  fi
  require_mounted

  drop_caches
  check "$label: after drop_caches every file reads back what was acknowledged"
  for f in fill echo dd; do
    cmp "$MNT/$f" "$WORK/$f.expect" || fail "$label: $f differs from what write(2) acknowledged"
  done
  local size
  size=$(stat -c %s "$MNT/cp")
  ((size < 4 << 20)) || fail "$label: cp's copy has $size bytes on a full mount"
  cmp -n "$size" "$MNT/cp" "$WORK/src4m" || fail "$label: cp's copy is not the source's start"
  python3 "$PY" check_mmap "$MNT/mm" "$WORK/mm.data" || fail "$label: mmap file"
  unmount_zbudfs
}

full_case "size=16M" size=16M
full_case "memory+overflow full" size=512M,mem_limit=16M,overflow_limit=16M
full_case "no_writeback, size=16M" size=16M,no_writeback

# Near full, the daemon gives writable opens direct I/O: a page of the file that a shared
# mapping faults back in while a write(2) to it is on its way holds the old bytes, and its
# writeback must not undo that acknowledged write (full_mount.h, direct_write_log.h).
cc -O1 -o "$WORK/mmap_race" "$REPO_ROOT/tests/integration/mmap_race.c" -lpthread ||
  fail "compiling mmap_race.c"
# size=4M: below the 4 MiB the near-full test adds to the kernel's dirty limit, so near
# full on any machine.
mount_zbudfs -o size=4M
check "near full: pwrite(2) and a shared mapping writing one page at once (200 trials)"
lost=$("$WORK/mmap_race" "$MNT/race" 200) || fail "mmap_race: I/O error"
note "acknowledged pwrites lost: $lost of 200"
[[ $lost == 0 ]] || fail "$lost of 200 acknowledged pwrites were undone by a shared mapping"
unmount_zbudfs

# The writer opens while the room is well above what the kernel may hold dirty for a FUSE
# mount (its bdi's max_bytes: 1 % of the global dirty threshold), so it keeps the writeback
# cache, and writes 64 MiB past full, then 4 KiB further on, which the half MiB the 1 MiB
# blocks leave free can take: the refused blocks before it must not read back as zeros.
thresh=$(awk '$1 == "nr_dirty_threshold" { print $2 }' /proc/vmstat)
size_mib=$(((thresh * 4096 / 100 * 4 >> 20) + 64))
capacity=$(((size_mib << 20) + (512 << 10)))
mount_zbudfs -o size=$capacity
check "a writer opened before near full writes $((size_mib + 64)) MiB into ${size_mib}.5 MiB"
python3 "$PY" early "$MNT/early" $(((size_mib + 64) << 20)) $capacity \
  >"$WORK/early.out" 2>&1 || fail "early writer: $(cat "$WORK/early.out")"
while read -r line; do note "early writer: $line"; done <"$WORK/early.out"
require_mounted
drop_caches
size=$(stat -c %s "$MNT/early")
((size <= capacity)) || fail "early writer's file shows $size bytes"
rm -f "$MNT/early"
check "a writer opened before near full that never stops gets ENOSPC from write(2)"
python3 "$PY" endless "$MNT/endless" $capacity >"$WORK/endless.out" 2>&1 ||
  fail "endless writer: $(cat "$WORK/endless.out")"
while read -r line; do note "endless writer: $line"; done <"$WORK/endless.out"
require_mounted
unmount_zbudfs

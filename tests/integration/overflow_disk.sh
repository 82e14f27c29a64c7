#!/usr/bin/env bash
# The overflow directory on disk:
#   1. punching 98 % of a file that went to the overflow gives the disk back at once: the
#      directory's allocated size (du -B1) and overflow_bytes come down close to the data
#      still there, and what is left reads back exactly;
#   2. bytes changed in an overflow file (a raw page's slot) -> EIO for a read of that file,
#      never the changed data, and a line in the daemon's log; a flood of such reads gives
#      a few lines, the next one (after the rate limit's interval) with the count of those
#      left out; truncated overflow files -> EIO and an "overflow I/O error" line;
#   3. a write the store refuses (ENOSPC at writeback, size reached) is logged, too.
source "$(dirname "$0")/lib.sh"

OV=$WORK/overflow
mkdir -m 0700 "$OV"

# random MIB PATH: writes MIB MiB of random (incompressible: raw) pages to PATH, and a copy
# to $WORK/src, with fsync.
random() {
  head -c "$(($1 << 20))" /dev/urandom >"$WORK/src"
  dd if="$WORK/src" of="$2" bs=1M conv=fsync status=none || fail "writing $2 failed"
}

# log_lines PATTERN: lines of the daemon's log that match.
log_lines() { grep -c -- "$1" "$WORK/daemon.log" || true; }

# ---------------------------------------------------------------------------------------------
check "1. punching 98 % of an overflowed file gives its disk space back at once"
mount_zbudfs -o mem_limit=4M,overflow_dir="$OV"
random 48 "$MNT/big"
before=$(stat_value overflow_bytes)
du_before=$(du -s -B1 "$OV" | cut -f1)
note "after writing 48 MiB: overflow_bytes $before, du $du_before"
((before > 32 << 20)) || fail "only $before bytes went to the overflow directory"
run=$((64 << 10)) stride=$((50 * (64 << 10)))
for ((off = 0; off < 48 << 20; off += stride)); do
  fallocate --punch-hole --offset $((off + run)) --length $((stride - run)) "$MNT/big" ||
    fail "punching at $((off + run)) failed"
done
sync -f "$MNT"
after=$(stat_value overflow_bytes)
live=$(($(stat_value overflow_pages) * 4096))
du_after=$(du -s -B1 "$OV" | cut -f1)
note "after punching: overflow_bytes $after, du $du_after, live overflow pages $live bytes"
# Raw pages: one block each; each class file may keep its last, partly used block.
((after <= live + (64 << 12))) || fail "overflow_bytes $after for $live bytes of live pages"
((du_after <= after + (64 << 12))) || fail "du of the overflow directory $du_after, overflow_bytes $after"
for ((off = 0; off < 48 << 20; off += stride)); do
  cmp <(dd if="$MNT/big" bs=64k skip=$((off / run)) count=1 iflag=direct status=none) \
    <(dd if="$WORK/src" bs=64k skip=$((off / run)) count=1 status=none) ||
    fail "the 64 KiB kept at $off reads back wrong"
done
rm -f "$MNT/big"
# The store drops the file when the kernel forgets the inode, which may come a moment later.
wait_until stat_is overflow_bytes 0 || fail "overflow_bytes $(stat_value overflow_bytes) after rm"

# ---------------------------------------------------------------------------------------------
check "2. a byte changed in an overflow file: EIO, never data, and a log line"
random 16 "$MNT/bad"
raw_file=$OV/zbudfs-overflow-4096
[[ -s $raw_file ]] || fail "no raw page went to the overflow directory"
printf '0123456789' | dd of="$raw_file" bs=1 seek=$((3 * 4096 + 100)) conv=notrunc status=none
rc=0
dd if="$MNT/bad" of="$WORK/got" bs=1M iflag=direct status=none 2>"$WORK/err" || rc=$?
note "reading bad: exit $rc: $(cat "$WORK/err")"
((rc != 0)) || fail "a read of a page changed on disk succeeded (sha256 $(sha256sum <"$WORK/got" | cut -c1-16), written $(sha256sum <"$WORK/src" | cut -c1-16))"
grep -q "Input/output error" "$WORK/err" || fail "the read failed without EIO: $(cat "$WORK/err")"
require_mounted
n=$(log_lines "page check failed")
note "log: $(grep -m1 -- "page check failed" "$WORK/daemon.log" || true)"
((n == 1)) || fail "$n log lines about the failed check, want 1"

check "2. a flood of 100 failing reads gives few lines"
t0=$SECONDS
for _ in $(seq 100); do
  dd if="$MNT/bad" of=/dev/null bs=1M iflag=direct status=none 2>/dev/null && fail "a read of bad succeeded"
done
n=$(log_lines "page check failed")
note "100 failing reads in $((SECONDS - t0)) s: $n lines"
# One line per 5 s at most: only a flood slower than 45 s could reach 10.
((n >= 1 && n <= 10)) || fail "$n log lines for 101 failed reads"
sleep $((5 + 1))  # Past the interval: the next error is logged, with the count left out.
dd if="$MNT/bad" of=/dev/null bs=1M iflag=direct status=none 2>/dev/null && fail "a read of bad succeeded"
last=$(grep -- "page check failed" "$WORK/daemon.log" | tail -1)
note "then: $last"
[[ $last =~ and\ ([0-9]+)\ more\ like\ it ]] || fail "the line after the flood does not count the lines left out: $last"

check "2. overflow files truncated: EIO and an overflow I/O error line"
truncate -s 0 "$raw_file"
rc=0
dd if="$MNT/bad" of=/dev/null bs=1M iflag=direct status=none 2>"$WORK/err" || rc=$?
((rc != 0)) || fail "a read of a truncated overflow file succeeded"
n=$(log_lines "overflow I/O error")
note "log: $(grep -m1 -- "overflow I/O error" "$WORK/daemon.log" || true)"
((n == 1)) || fail "$n log lines about the overflow I/O error, want 1"
rm -f "$MNT/bad"
unmount_zbudfs

# ---------------------------------------------------------------------------------------------
check "3. a write refused at writeback (size reached) is logged"
mount_zbudfs -o size=4M
rc=0
head -c $((8 << 20)) /dev/urandom >"$WORK/src"
dd if="$WORK/src" of="$MNT/full" bs=1M conv=fsync status=none 2>"$WORK/err" || rc=$?
note "writing 8 MiB on a 4 MiB mount: exit $rc: $(cat "$WORK/err")"
((rc != 0)) || fail "writing 8 MiB on a 4 MiB mount succeeded"
note "log: $(grep -m1 -- "refused" "$WORK/daemon.log" || true)"
grep -q "refused: No space left on device" "$WORK/daemon.log" || fail "no log line for the refused write"
rm -f "$MNT/full"
unmount_zbudfs

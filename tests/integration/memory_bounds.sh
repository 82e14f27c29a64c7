#!/usr/bin/env bash
# Memory the index and deletes take (issue 14: 4b, 4c, 4e, 5d), from the daemon's VmRSS and
# its statistics: a sparse file's index costs at most ~64 bytes a stored page and counts in
# mem_used_total; a 100 GiB fallocate on a size=4T mount costs a few MB and its rm gives
# them back; a large delete frees memory at once and never shows orig_data_size falling
# ahead of the pool pages it frees. No speed is asserted (the timings are printed), only
# generous bounds that hold on a loaded machine. Inodes: a flood of empty files counts in
# mem_used_total (inode_bytes) and gives its RSS back when deleted; past mem_limit, inodes
# push file pages out (nr_inodes, not mem_limit, bounds their number, as on tmpfs).
source "$(dirname "$0")/lib.sh"

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$ZPID/status"; }

mount_zbudfs -o size=4T
require_mounted

check "sparse index: 100k pages 64 pages apart, each the last of its 64-page chunk"
PAGES=100000
rss0=$(rss_kb)
python3 - "$MNT/sparse" "$PAGES" <<'PY'
import os, sys
path, n = sys.argv[1], int(sys.argv[2])
page = b"\x5a" * 4096  # Same-filled: no pool memory, only the index.
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
for i in range(n):
    os.pwrite(fd, page, (i * 64 + 63) * 4096)
os.fsync(fd)
os.close(fd)
PY
require_mounted
rss1=$(rss_kb)
grown_kb=$((rss1 - rss0))
mem=$(stat_value mem_used_total)
note "sparse: RSS grew by ${grown_kb} KiB for $PAGES pages," \
  "$((grown_kb * 1024 / PAGES)) B/page; mem_used_total $mem"
# 64 bytes a page plus 8 MiB for the daemon's own buffers (it was ~1 KiB a page: 100 MB).
bound_kb=$((PAGES * 64 / 1024 + 8192))
((grown_kb <= bound_kb)) || fail "RSS grew by $grown_kb KiB, bound $bound_kb KiB"
((mem >= PAGES * 16)) || fail "mem_used_total $mem does not count the index ($PAGES entries)"
((mem <= PAGES * 64)) || fail "mem_used_total $mem: more than 64 B a page of index"
rm "$MNT/sparse"
# The pages go when the kernel forgets the inode, a request sent as rm returns.
wait_until stat_is mem_used_total 0 ||
  fail "mem_used_total $(stat_value mem_used_total) 10 s after rm of the sparse file"
rss2=$(rss_kb)
note "RSS after rm: +$((rss2 - rss0)) KiB"
# The index's heap goes back to the system with the file (malloc_trim).
((rss2 - rss0 <= 2048)) || fail "RSS still +$((rss2 - rss0)) KiB after rm of the sparse file"

check "fallocate -l 100G on size=4T: an extent, not an entry a page; rm gives it back"
rss0=$(rss_kb)
start=$(date +%s%N)
fallocate -l 100G "$MNT/big" || fail "fallocate -l 100G failed"
ms=$((($(date +%s%N) - start) / 1000000))
rss1=$(rss_kb)
used_kb=$(df -k --output=used "$MNT" | tail -1)
blocks=$(stat -c %b "$MNT/big")
note "fallocate 100G: ${ms} ms, RSS +$((rss1 - rss0)) KiB, df used ${used_kb} KiB," \
  "st_blocks $blocks, mem_used_total $(stat_value mem_used_total)"
((rss1 - rss0 <= 8192)) || fail "fallocate 100G grew RSS by $((rss1 - rss0)) KiB (bound 8 MiB)"
((used_kb >= 100 * 1024 * 1024)) || fail "df shows $used_kb KiB used after fallocate 100G"
[[ $(stat -c %s "$MNT/big") == $((100 << 30)) ]] || fail "size after fallocate 100G"
# Zero pages cost nothing: st_blocks as for zero pages today.
[[ $blocks == 0 ]] || fail "st_blocks $blocks for an allocated, never written file"
[[ $(python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); print(os.lseek(fd, 5 << 30, os.SEEK_DATA), os.lseek(fd, 0, os.SEEK_HOLE))" "$MNT/big") == "$((5 << 30)) $((100 << 30))" ]] ||
  fail "SEEK_DATA/SEEK_HOLE over the allocated range"
[[ $(dd if="$MNT/big" bs=4096 skip=$((7 << 18)) count=4 status=none | tr -d '\0' | wc -c) == 0 ]] ||
  fail "the allocated range does not read as zeros"
start=$(date +%s%N)
rm "$MNT/big"
ms=$((($(date +%s%N) - start) / 1000000))
rss2=$(rss_kb)
used_kb=$(df -k --output=used "$MNT" | tail -1)
note "rm of it: ${ms} ms, RSS +$((rss2 - rss0)) KiB, df used ${used_kb} KiB"
((rss2 - rss0 <= 8192)) || fail "rm after fallocate 100G: RSS +$((rss2 - rss0)) KiB"
((used_kb < 1024)) || fail "df shows $used_kb KiB used after rm"
fallocate -l 1T "$MNT/huge" || fail "fallocate -l 1T failed"
rss3=$(rss_kb)
((rss3 - rss0 <= 8192)) || fail "fallocate 1T grew RSS by $((rss3 - rss0)) KiB"
rm "$MNT/huge"

check "rm of a 512 MiB file: memory back at once, stats consistent while it goes"
python3 - "$MNT/data" <<'PY'
import os, sys
# Compressible, different on every page: 1 KiB of pseudo-random bytes then text.
import random
rnd = random.Random(5)
words = b"the quick brown fox jumps over the lazy dog and keeps on running " * 64
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
buf = bytearray()
for i in range(512 * 256):
    buf += rnd.randbytes(1024) + words[:3072]
    if len(buf) >= 1 << 20:
        os.write(fd, buf)
        buf = bytearray()
os.write(fd, buf)
os.fsync(fd)
os.close(fd)
PY
require_mounted
rss_full=$(rss_kb)
pool=$(stat_value pool_pages)
((pool > 10000)) || fail "only $pool pool pages for 512 MiB"
# Sample the statistics while rm runs: orig_data_size never falls behind the pool pages it
# frees by more than a drop batch (1024 pages) plus what the other files hold (none).
"$ZBUDFSCTL_BIN" stats "$MNT" --json >/dev/null
start=$(date +%s%N)
rm "$MNT/data" &
RMPID=$!
bad=
samples=0
while kill -0 "$RMPID" 2>/dev/null; do
  read -r orig pool_now < <("$ZBUDFSCTL_BIN" stats "$MNT" |
    awk '$1 == "orig_data_size" { o = $2 } $1 == "pool_pages" { p = $2 } END { print o, p }')
  samples=$((samples + 1))
  if ((pool_now > orig / 4096 + 2048)); then bad="orig_data_size $orig beside $pool_now pool pages"; fi
done
wait "$RMPID" || fail "rm failed"
waited=0
while [[ $(stat_value mem_used_total) != 0 ]]; do
  ((waited < 200)) || fail "mem_used_total $(stat_value mem_used_total) 20 s after rm"
  sleep 0.1
  waited=$((waited + 1))
done
ms=$((($(date +%s%N) - start) / 1000000))
note "rm of 512 MiB ($pool pool pages): mem_used_total 0 after ${ms} ms;" \
  "$samples stats samples during rm"
[[ -z $bad ]] || fail "stats inconsistent during rm: $bad"

check "the heap goes back after the deletes (malloc_trim)"
sleep 1  # The reclaim thread trims once deletes have stopped for 100 ms.
rss_after=$(rss_kb)
note "RSS: $rss_full KiB full, $rss_after KiB after rm"
((rss_after < rss_full - 100 * 1024)) || fail "RSS $rss_after KiB after rm (was $rss_full)"

check "a flood of empty files is memory mem_used_total counts (inode_bytes), and rm gives it back"
FILES=60000
rss0=$(rss_kb)
python3 - "$MNT/flood" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for d in range(6):
    os.makedirs(f"{root}/d{d}")
    for i in range(n // 6):
        os.close(os.open(f"{root}/d{d}/empty_{i:06d}", os.O_WRONLY | os.O_CREAT, 0o644))
PY
require_mounted
rss1=$(rss_kb)
inodes=$(stat_value inode_bytes)
note "$FILES empty files: RSS +$((rss1 - rss0)) KiB, inode_bytes $inodes" \
  "($((inodes / FILES)) B a file), mem_used_total $(stat_value mem_used_total)"
((inodes >= FILES * 300)) || fail "inode_bytes $inodes for $FILES files: not counted"
((rss1 - rss0 <= inodes / 1024 + 8192)) ||
  fail "RSS grew by $((rss1 - rss0)) KiB, more than inode_bytes ($((inodes / 1024)) KiB) + 8 MiB"
rm -rf "$MNT/flood"
wait_until stat_is inode_bytes 0 || fail "inode_bytes $(stat_value inode_bytes) 10 s after rm -rf"
sleep 1  # Trimmed once deletes have stopped for 100 ms.
rss2=$(rss_kb)
note "RSS after rm -rf: +$((rss2 - rss0)) KiB"
((rss2 - rss0 <= 8192)) || fail "RSS still +$((rss2 - rss0)) KiB after rm -rf of the empty files"
unmount_zbudfs

check "inodes count against mem_limit: past it they push file pages out, and are never refused"
mount_zbudfs -o mem_limit=8M
require_mounted
head -c $((6 << 20)) /dev/urandom | base64 >"$MNT/data"  # Compressible: about 6 MB of pool.
sync -f "$MNT/data"
sum=$(sha256sum <"$MNT/data")
inodes0=$(stat_value inode_bytes)  # The data file's.
python3 - "$MNT/many" <<'PY'
import os, sys
os.makedirs(sys.argv[1])
for i in range(12000):  # About 9 MB of inodes: more than all of mem_limit.
    os.close(os.open(f"{sys.argv[1]}/f{i:05d}", os.O_WRONLY | os.O_CREAT, 0o644))
PY
require_mounted
sleep 1  # The background reclaim runs at least every 100 ms.
note "mem_limit=8M, 12000 empty files: inode_bytes $(stat_value inode_bytes)," \
  "pool_pages $(stat_value pool_pages), overflow_pages $(stat_value overflow_pages)"
(($(stat_value inode_bytes) > 8 * 1024 * 1024)) || fail "inode_bytes $(stat_value inode_bytes)"
(($(stat_value pool_pages) <= 8)) || fail "$(stat_value pool_pages) pool pages stayed in memory"
(($(stat_value overflow_pages) > 0)) || fail "no page went to the overflow directory"
echo 3 >/proc/sys/vm/drop_caches
[[ $(sha256sum <"$MNT/data") == "$sum" ]] || fail "the pages pushed out read back wrong"
rm -rf "$MNT/many"
wait_until stat_is inode_bytes "$inodes0" ||
  fail "inode_bytes $(stat_value inode_bytes) after rm -rf, $inodes0 before the files"
unmount_zbudfs

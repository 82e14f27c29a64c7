#!/usr/bin/env bash
# fio reads over a working set 4x mem_limit (most pages in the overflow directory) next to
# the same jobs with everything in memory, in one run (issue 5's figures).
# Usage: scripts/bench-overflow.sh [--quick]     (as root; prints a Markdown table)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

quick=0
[[ ${1:-} == --quick ]] && quick=1
limit_mb=256
((quick)) && limit_mb=32
set_mb=$((4 * limit_mb))
runtime=10
((quick)) && runtime=3

scripts/deps.sh >/dev/null
scripts/build.sh release --target zbudfs zbudfsctl >/dev/null

work=$(mktemp -d /tmp/zbudfs-bench-ov.XXXXXX)
mnt=$work/mnt
ovdir=$work/overflow
mkdir -p "$mnt" "$ovdir"
chmod 700 "$ovdir"
trap zb_bench_cleanup EXIT
mount_z() { zb_bench_mount "$@"; }
umount_z() { zb_bench_umount; }
stat_of() { zb_bench_stat "$1"; }

# One fio job; prints "MiB/s IOPS p99_us".
run_fio() {
  local rw=$1 bs=$2
  fio --name=r --directory="$mnt" --filename=data --rw="$rw" --bs="$bs" --size="${set_mb}M" \
    --direct=1 --ioengine=psync --numjobs=1 --time_based --runtime="$runtime" \
    --output-format=json --output="$work/fio.json" >/dev/null 2>&1
  python3 scripts/benchlib.py columns "$work/fio.json"
}

fill() {
  fio --name=w --directory="$mnt" --filename=data --rw=write --bs=1M --size="${set_mb}M" \
    --buffer_compress_percentage=60 --buffer_compress_chunk=4096 --refill_buffers=1 \
    --end_fsync=1 >/dev/null
}

echo "| setup | job | MiB/s | IOPS | p99 (us) | overflow_pages | faulted_pages |"
echo "|---|---|---|---|---|---|---|"
for setup in memory overflow; do
  if [[ $setup == memory ]]; then
    mount_z -o "mem_limit=$((2 * set_mb))M"
  else
    mount_z -o "mem_limit=${limit_mb}M,overflow_dir=$ovdir"
  fi
  echo "progress: $setup: writing ${set_mb} MiB" >&2
  fill
  echo 3 >/proc/sys/vm/drop_caches
  for job in "read 1M" "randread 4k"; do
    echo "progress: $setup: $job" >&2
    before=$(stat_of faulted_pages)
    read -r mbs iops p99 < <(run_fio $job)
    echo "| $setup (mem_limit $([[ $setup == memory ]] && echo $((2 * set_mb)) || echo $limit_mb) MiB, set $set_mb MiB) | $job | $mbs | $iops | $p99 | $(stat_of overflow_pages) | $(($(stat_of faulted_pages) - before)) |"
  done
  umount_z
done

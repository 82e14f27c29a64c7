#!/usr/bin/env bash
# Clusters (issue 17), in one run: the density of a real tree copied into a mount before and
# after `zbudfsctl pack` (and what packing costs the daemon), the tree read back after the
# page cache is dropped and compared file by file, then realio's random 4 KiB and sequential
# 1 MiB O_DIRECT reads of real pages before and after packing.
# Usage: scripts/bench-clusters.sh [--runs N] [--no-tree] [-o OPTION,...]   (as root)
#   BENCH_TREE (default "/usr/include /usr/lib/x86_64-linux-gnu"); -o options go to zbudfs
#   (e.g. -o cluster=32K,pack_level=3).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

runs=3 tree=1 opts=""
while (($#)); do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --no-tree) tree=0; shift ;;
    -o) opts=",$2"; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--no-tree] [-o OPTIONS]" >&2; exit 2 ;;
  esac
done
scripts/deps.sh >/dev/null
scripts/build.sh release --target zbudfs zbudfsctl realio >/dev/null

work=$(mktemp -d /tmp/zbudfs-bench-clusters.XXXXXX)
mnt=$work/mnt
mkdir -p "$mnt"
trap zb_bench_cleanup EXIT
mount_z() { zb_bench_mount -o "size=8G,pack_after=86400$opts"; }
unmount_z() { zb_bench_umount; }
stat_of() { zb_bench_stat "$1"; }
density() { echo "scale=3; $(stat_of orig_data_size) / $(stat_of mem_used_total)" | bc; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$zpid/stat"; }

echo "machine: $(nproc) CPUs, $(uname -r), zbudfs $(git rev-parse --short HEAD), options size=8G$opts"
if ((tree)); then
  read -r -a dirs <<<"${BENCH_TREE:-/usr/include /usr/lib/x86_64-linux-gnu}"
  mount_z
  cp -a "${dirs[@]}" "$mnt/"
  sync -f "$mnt"
  echo "tree ${dirs[*]}: $(stat_of orig_data_size) bytes, density as written $(density)," \
    "mem_used_total $(stat_of mem_used_total)"
  t0=$(date +%s.%N) c0=$(cpu_ticks)
  build/zbudfsctl pack "$mnt" >/dev/null
  t1=$(date +%s.%N) c1=$(cpu_ticks)
  echo "packed: density $(density), mem_used_total $(stat_of mem_used_total);" \
    "$(stat_of clustered_pages) pages in $(stat_of clusters) clusters of" \
    "$(stat_of cluster_allocations) allocations, cluster_bytes $(stat_of cluster_bytes);" \
    "$(echo "$t1 - $t0" | bc) s wall, daemon CPU $(echo "scale=2; ($c1 - $c0) / 100" | bc) s"
  echo 3 >/proc/sys/vm/drop_caches
  bad=0
  for d in "${dirs[@]}"; do
    (cd "$d" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$work/want"
    (cd "$mnt/$(basename "$d")" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$work/got"
    cmp -s "$work/want" "$work/got" || bad=1
  done
  ((bad)) && { echo "read back after packing: FILES DIFFER" >&2; exit 1; }
  echo "read back after packing (page cache dropped): every file identical"
  unmount_z
fi

mount_z
corpus=$work/corpus.bin
build/tests/realio --dump-corpus "$corpus" >/dev/null
rio() { build/tests/realio --dir "$mnt" --corpus "$corpus" --size 64M "$@"; }
for t in 1 2; do rio --job seqwrite --threads "$t" >/dev/null; done
declare -A res
measure() {  # measure LABEL: runs every read job $runs times, keeps the figures.
  for ((r = 0; r < runs; r++)); do
    for t in 1 2; do
      res[$1,rand,$t]+="$(rio --job randread --threads "$t" --runtime 3 --verify | sed -E 's/.* ([0-9]+) IOPS.*/\1/') "
      res[$1,seq,$t]+="$(rio --job seqread --threads "$t" --verify | sed -E 's/.*: ([0-9.]+) MiB.*/\1/') "
    done
  done
}
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
measure unpacked
build/zbudfsctl pack "$mnt" >/dev/null
echo "realio files packed: density $(density)"
measure packed
echo
echo "| job | threads | unpacked | packed | packed ÷ unpacked |"
echo "|---|---:|---:|---:|---:|"
for job in rand seq; do
  for t in 1 2; do
    u=$(median "${res[unpacked,$job,$t]}") p=$(median "${res[packed,$job,$t]}")
    name=$([[ $job == rand ]] && echo "rand read 4k (IOPS)" || echo "seq read 1M (MiB/s)")
    echo "| $name | $t | $u | $p | $(echo "scale=2; $p / $u" | bc)× |"
  done
done
echo "(medians of $runs runs)"

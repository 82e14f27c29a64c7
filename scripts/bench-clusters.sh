#!/usr/bin/env bash
# Clusters (issue 17), in one run: the density of a real tree copied into a mount before and
# after `zbudfsctl pack` (and what packing costs the daemon), the tree read back after the
# page cache is dropped and compared file by file, then realio's random 4 KiB and sequential
# 1 MiB O_DIRECT reads of real pages before and after packing.
# With --pressure LIMIT instead: the tree copied into a mount with mem_limit=LIMIT and default
# options, $runs times (a fresh mount each), so that reclaim runs during the copy: the copy's
# time and daemon CPU, what went to the overflow directory and what reclaim packed instead,
# the density in memory, then the tree read back (page cache dropped) and compared.
# Usage: scripts/bench-clusters.sh [--runs N] [--no-tree] [--pressure LIMIT] [-o OPTION,...]
#   (as root) BENCH_TREE (default "/usr/include /usr/lib/x86_64-linux-gnu"); -o options go
#   to zbudfs (e.g. -o cluster=32K,pack_level=3); ZBUDFS_BIN: another daemon binary (an
#   older build, for an A/B).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

runs=3 tree=1 opts="" pressure=""
while (($#)); do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --no-tree) tree=0; shift ;;
    --pressure) pressure=$2; shift 2 ;;
    -o) opts=",$2"; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--no-tree] [--pressure LIMIT] [-o OPTIONS]" >&2; exit 2 ;;
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
stat_of() { local v; v=$(zb_bench_stat "$1"); echo "${v:--}"; }  # "-": an older daemon's.
density() { echo "scale=3; $(stat_of orig_data_size) / $(stat_of mem_used_total)" | bc; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$zpid/stat"; }

median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
read -r -a dirs <<<"${BENCH_TREE:-/usr/include /usr/lib/x86_64-linux-gnu}"

# The tree read back through the mount (page cache dropped) and compared with the original;
# exits the script when a file differs.
check_tree() {
  echo 3 >/proc/sys/vm/drop_caches
  local bad=0
  for d in "${dirs[@]}"; do
    (cd "$d" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$work/want"
    (cd "$mnt/$(basename "$d")" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$work/got"
    cmp -s "$work/want" "$work/got" || bad=1
  done
  ((bad)) && { echo "read back: FILES DIFFER" >&2; exit 1; }
  return 0
}

# One run of --pressure: prints "copy_s cpu_s overflow written packed clustered density
# overflow_MB read_s".
pressure_run() {
  zb_bench_mount -o "size=8G,mem_limit=$pressure$opts"
  local t0 c0 t1 c1 t2
  t0=$(date +%s.%N) c0=$(cpu_ticks)
  cp -a "${dirs[@]}" "$mnt/"
  sync -f "$mnt"
  t1=$(date +%s.%N) c1=$(cpu_ticks)
  local row
  row="$(printf %.2f "$(echo "$t1 - $t0" | bc)") $(echo "scale=2; ($c1 - $c0) / 100" | bc)"
  row+=" $(stat_of overflow_pages) $(stat_of written_back_pages) $(stat_of reclaim_packed_pages)"
  row+=" $(stat_of clustered_pages) $(echo "scale=3; ($(stat_of orig_data_size) - $(stat_of overflow_pages) * 4096) / $(stat_of mem_used_total)" | bc)"
  row+=" $(($(stat_of overflow_bytes) / 1000000))"
  check_tree
  t2=$(date +%s.%N)
  echo "$row $(printf %.2f "$(echo "$t2 - $t1" | bc)")"
  unmount_z
}

bin=${ZBUDFS_BIN:-build/zbudfs}
echo "machine: $(nproc) CPUs, $(uname -r), zbudfs $(git rev-parse --short HEAD) ($bin), options size=8G$opts"
if [[ -n $pressure ]]; then
  echo "tree ${dirs[*]} copied at mem_limit=$pressure, $runs runs; per run:"
  echo "copy+sync s, daemon CPU s, overflow_pages, written_back_pages, reclaim_packed_pages," \
    "clustered_pages, density in memory, overflow MB on disk, read back + compare s"
  declare -a cols=()
  for ((r = 0; r < runs; r++)); do
    line=$(pressure_run)
    echo "  $line"
    read -r -a f <<<"$line"
    for i in "${!f[@]}"; do cols[i]+="${f[i]} "; done
  done
  echo -n "medians:"
  for c in "${cols[@]}"; do echo -n " $(median "$c")"; done
  echo
  echo "every run read back every file identical"
  exit 0
fi
if ((tree)); then
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
  check_tree
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

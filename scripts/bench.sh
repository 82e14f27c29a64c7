#!/usr/bin/env bash
# The benchmark users run: real data (tests/bench/realio: pages cut from real files, 1 and 2
# threads), the same fio jobs and metadata work (a real tree copied with cp -a and deleted,
# one copy and 4 at once; fio's filecreate, filestat and filedelete engines; FUSE requests per
# copied file) on zbudfs (default options), tmpfs (the RAM ceiling), libfuse's passthrough_ll
# over a tmpfs (the FUSE ceiling), libfuse's memfs_ll (the in-memory FUSE peer, compiled from
# ../shared/peers/memfs_ll.cc; skipped when that is absent) and, where the kernel has it,
# zram + ext4; zstd's own speed on both data sets. Prints a Markdown report (real data first)
# and the targets zbudfs aims for, each explained in a sentence, with MET/MISSED lines; draws
# a PNG chart. Everything goes to the results directory only (build/bench/DATE-TIME-MODE:
# report.md, targets.txt, bench.png, records.jsonl, the raw fio, realio and metadata output);
# --record also puts the report first in docs/BENCHMARKS.md and copies the chart to
# docs/bench.png (files in git: use it for a run you mean to publish).
# Packages it needs (fio, gnuplot-nox, zstd, kmod, ...) are installed by scripts/deps.sh,
# which it runs first.
#
# Usage (as root): scripts/bench.sh [--quick] [--runs N] [--targets LIST] [--only STEPS]
#                                   [--no-build] [--record] [--out DIR]
#   --quick          small sizes, one run, a subset of fio jobs: about 3 minutes on an idle
#                    2-CPU machine (half of it the metadata steps), 10 or more on a busy one
#                    (load average 15); the first run also installs packages and builds
#                    Release
#   (default)        the full run: 256 MiB per job, 3 runs, every fio job (much longer)
#   --runs N         runs of every realio, fio and metadata job; the report shows medians
#                    (full: 3, quick: 1)
#   --targets LIST   comma-separated subset of zbudfs,zbudfs_nowb,tmpfs,passthrough_ll,memfs_ll,zram
#                    (zbudfs_nowb: zbudfs -o no_writeback)
#   --only STEPS     comma-separated subset of realio,fio,meta: run only those steps (the
#                    report leaves out the others; default: all three)
#   --no-build       do not build: use build/zbudfs, build/zbudfsctl and build/tests/realio
#                    as they are (waits up to 5 minutes for them to appear, for a build
#                    running elsewhere), and build/bench-tools' peers if present
#   --record         also put the report first in docs/BENCHMARKS.md and write docs/bench.png
#                    (--docs is the same; --no-record/--no-docs: do not, the default)
#   --out DIR        results directory (default: build/bench/DATE-TIME-MODE)
# Environment: BENCH_META_TREE="dirs..." (the real tree the metadata steps copy, serially and
#   4 copies at once; default "/usr/include/linux /usr/include/c++ /usr/share/perl/5.*
#   /usr/share/cmake-*", the real directories of those that exist: about 6,000 entries, no
#   symlinks, small enough for passthrough_ll's descriptor limit; those missing are dropped,
#   and with none the repository's sources are copied; BENCH_TREE, its old name, is read
#   when it is unset), BENCH_COUNT_TREE=dir (the small tree copied into a second, debug (-d)
#   mount of each FUSE target to count its requests; default /usr/include/linux, else the
#   first directory of the metadata tree), BENCH_META_FILES (files per fio job for the
#   filecreate/filestat/filedelete engines, default 8000, quick 2000), BENCH_SIZE (per fio job
#   and per realio thread, default 256M, quick 32M), BENCH_RUNTIME (seconds per random job and
#   per filestat job, default 5, quick 1), ZRAM_ALGO (default lz4 if offered).
# Everything it mounts or starts is unmounted and stopped on exit, failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
source scripts/lib.sh

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

quick=0 runs="" docs=0 targets_arg="zbudfs,zbudfs_nowb,tmpfs,passthrough_ll,memfs_ll,zram" out="" only="realio,fio,meta" build=1
while (($#)); do
  case $1 in
    --quick) quick=1 ;;
    --runs) runs=${2:?--runs needs a number}; shift ;;
    --targets) targets_arg=${2:?--targets needs a list}; shift ;;
    --only) only=${2:?--only needs a list of steps}; shift ;;
    --no-build) build=0 ;;
    --record|--docs) docs=1 ;;
    --no-record|--no-docs) docs=0 ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

if ((quick)); then
  size=${BENCH_SIZE:-32M}; runtime=${BENCH_RUNTIME:-1}; runs=${runs:-1}
  # shellcheck disable=SC2054  # data:numjobs[:job,job...], the commas are ours
  groups=(c60:1:seqwrite_dir,seqwrite_buf c60:2); zstd_secs=1; mode="quick"
  meta_files=${BENCH_META_FILES:-2000}
else
  size=${BENCH_SIZE:-256M}; runtime=${BENCH_RUNTIME:-5}; runs=${runs:-3}
  groups=(c60:1 c60:2 rand:2); zstd_secs=2; mode="full"
  meta_files=${BENCH_META_FILES:-8000}
fi
# The metadata tree: a fixed set of real directories a Debian machine with build-essential
# and this project's packages has (kernel and C++ headers, perl's and cmake's modules), about
# 6,000 entries without a symlink (memfs_ll has none), so that passthrough_ll, which keeps a
# descriptor per inode, can hold one copy within its 20000 descriptors.
tree_env=${BENCH_META_TREE:-${BENCH_TREE:-}}
if [[ -n $tree_env ]]; then
  read -r -a tree_src <<<"$tree_env"
else
  # The default directories this host has (real ones: /usr/share/perl/5.36 is a symlink to
  # 5.36.0); on a host with none, the repository's own sources.
  tree_src=()
  for d in /usr/include/linux /usr/include/c++ /usr/share/perl/5.* /usr/share/cmake-*; do
    [[ -d $d && ! -L $d ]] && tree_src+=("$d")
  done
  ((${#tree_src[@]})) || tree_src=("$repo/store" "$repo/fs" "$repo/tests" "$repo/docs")
fi
# The small tree copied into a debug mount of each FUSE target to count its requests.
count_tree=${BENCH_COUNT_TREE:-}
if [[ -z $count_tree ]]; then
  count_tree=/usr/include/linux
  [[ -d $count_tree ]] || count_tree=${tree_src[0]}
fi
ncopies=4                                 # tree copies at once in the parallel step
meta_engines=(filecreate filestat filedelete)
meta_numjobs=(1 2)
declare -A step_on=()
IFS=, read -r -a only_list <<<"$only"
for st in "${only_list[@]}"; do
  case $st in realio|fio|meta) step_on[$st]=1 ;; *) echo "bench: --only: unknown step: $st (realio, fio, meta)" >&2; exit 2 ;; esac
done
jobs=(seqwrite_dir seqwrite_buf seqread_dir randread_dir randwrite_dir)
realio_threads=(1 2)
realio_jobs=(seqwrite seqread randread randwrite)

t0=$SECONDS
log() { printf '[%02d:%02d] %s\n' $(((SECONDS - t0) / 60)) $(((SECONDS - t0) % 60)) "$*"; }
die() { log "bench: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root (it mounts tmpfs, FUSE and zram file systems)"
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs wants a positive number"
[[ $meta_files =~ ^[1-9][0-9]*$ ]] || die "BENCH_META_FILES wants a positive number"
((${#step_on[@]})) || die "--only: no step"

# ---------------------------------------------------------------- packages and build
# deps.sh installs what the benchmark needs too (fio, gnuplot-nox, zstd, kmod, ...).
log "checking packages"
scripts/deps.sh

mkdir -p build
built=(build/zbudfs build/zbudfsctl build/tests/realio)
if ((build)); then
  log "building Release (zbudfs, zbudfsctl, realio)"
  zb_build "build" build/bench-build.log scripts/build.sh release --target zbudfs zbudfsctl realio \
    || die "build failed (log: build/bench-build.log)"
else
  # A build running elsewhere may have removed them for a moment: wait until all are there
  # and none has changed for 3 seconds (not half-linked).
  for ((n = 0; n < 300; n++)); do
    ok=1
    for f in "${built[@]}"; do
      if [[ ! -x $f ]] || (($(date +%s) - $(stat -c %Y "$f") < 3)); then ok=0; break; fi
    done
    ((ok)) && break
    ((n % 30)) || log "--no-build: waiting for ${built[*]} (a build may be running)"
    sleep 1
  done
  ((ok)) || die "--no-build: ${built[*]} not all there after 5 minutes"
  log "--no-build: using ${built[*]} as they are"
fi

examples=/usr/share/doc/libfuse3-dev/examples
tools=$repo/build/bench-tools
ptbin=$tools/passthrough_ll
mkdir -p "$tools"
if [[ ! -x $ptbin ]]; then
  log "compiling libfuse's passthrough_ll example into $tools"
  for f in passthrough_ll.c passthrough_helpers.h; do
    if [[ -f $examples/$f ]]; then cp "$examples/$f" "$tools/"
    elif [[ -f $examples/$f.gz ]]; then gzip -dc "$examples/$f.gz" >"$tools/$f"
    else die "$examples/$f not found (package libfuse3-dev)"; fi
  done
  # shellcheck disable=SC2046
  gcc -O2 -Wall -I"$tools" "$tools/passthrough_ll.c" -o "$ptbin" $(pkg-config --cflags --libs fuse3) \
    || die "could not compile passthrough_ll"
fi

# memfs_ll: libfuse's in-memory example, kept beside the repository (../shared/peers) since
# the Debian package's libfuse predates it. CI and fresh clones may not have it: then the
# target is skipped and the report says why.
mfbin=$tools/memfs_ll
memfs_note=""
mfsrc=""
for f in "$repo/../shared/peers/memfs_ll.cc" /work/shared/peers/memfs_ll.cc; do
  [[ -f $f ]] && { mfsrc=$f; break; }
done
if [[ -z $mfsrc ]]; then
  memfs_note="source not found ($repo/../shared/peers/memfs_ll.cc, /work/shared/peers/memfs_ll.cc)"
elif [[ ! -x $mfbin ]] || { ((build)) && [[ $mfsrc -nt $mfbin ]]; }; then
  log "compiling libfuse's memfs_ll example ($mfsrc) into $tools"
  # It is libfuse's code, warnings and all: no -Werror.
  # shellcheck disable=SC2046
  g++ -std=c++17 -O2 "$mfsrc" -o "$mfbin" $(pkg-config --cflags --libs fuse3) \
    >"$tools/memfs_ll.build.log" 2>&1 || memfs_note="could not compile $mfsrc (see $tools/memfs_ll.build.log)"
fi

# ---------------------------------------------------------------- work area and cleanup
stamp=$(date -u +%Y%m%d-%H%M%S)
res=${out:-$repo/build/bench/$stamp-$mode}
mkdir -p "$res/fio"
res=$(cd "$res" && pwd)
work=$(mktemp -d /tmp/zbudfs-bench.XXXXXX)
# Our own copies of the binaries, so that a build running meanwhile cannot swap them in the
# middle (the debug mount of the request count uses the same zbudfs as the measured one).
mkdir -p "$work/bin"
cp "${built[@]}" "$work/bin/"
zbbin=$work/bin/zbudfs zbctl=$work/bin/zbudfsctl
mounts=()               # everything we mounted, in order
declare -A tdir=()      # target -> directory the jobs use
declare -A tpid=()      # FUSE target -> daemon PID
declare -A dead=()      # targets whose daemon or mount went away
zram_dev="" zram_hot=""
dbg_pids=()             # the debug (-d) mounts' daemons of the request count

mounted() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; }

cleanup() {
  local rc=$? i m pid n
  set +e
  trap - INT TERM
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    m=${mounts[i]}
    mounted "$m" || continue
    fusermount3 -u "$m" 2>/dev/null || umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
  for pid in "${tpid[@]}" "${dbg_pids[@]}"; do
    for ((n = 0; n < 150; n++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill "$pid"; sleep 1; kill -9 "$pid" 2>/dev/null; fi
  done
  if [[ -n $zram_dev ]]; then
    echo 1 >"/sys/block/$zram_dev/reset" 2>/dev/null
    [[ -n $zram_hot ]] && echo "${zram_dev#zram}" >/sys/class/zram-control/hot_remove 2>/dev/null
  fi
  rm -rf "$work"
  ((rc == 0)) || echo "bench: exiting with status $rc; everything was unmounted and stopped" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- targets (scripts/bench_targets.sh)
source scripts/bench_targets.sh

# ---------------------------------------------------------------- measuring helpers
ticks() { # utime+stime of a process (clock ticks, all threads)
  local s
  s=$(<"/proc/$1/stat") || { echo 0; return; }
  s=${s##*) }
  read -r -a f <<<"$s"
  echo $((f[11] + f[12]))
}
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
reset_hwm() { echo 5 >"/proc/$1/clear_refs" 2>/dev/null || true; }
is_zbudfs() { [[ $1 == zbudfs || $1 == zbudfs_nowb ]]; }
zstats() { # [target, default zbudfs]
  local s
  if s=$("$zbctl" stats "${tdir[${1:-zbudfs}]}" --json 2>/dev/null) && [[ $s == "{"* ]]; then
    echo "${s//$'\n'/}"
  else
    echo null
  fi
}
alive() { # target -> 0 if its mount (and daemon) are still there
  local t=$1
  [[ -n ${dead[$t]:-} ]] && return 1
  if [[ -n ${tpid[$t]:-} ]] && ! kill -0 "${tpid[$t]}" 2>/dev/null; then
    dead[$t]="the $t daemon (PID ${tpid[$t]}) died"
  elif ! mountpoint -q "${tdir[$t]}"; then
    dead[$t]="$t is no longer mounted"
  else
    return 0
  fi
  log "ERROR: ${dead[$t]}; skipping it from now on"
  failed=1
  return 1
}

# zbudfs frees a deleted file's pages when the kernel forgets its inode, shortly after rm
# returns (and its pool pages a little after the data counters drop): wait for both (up to
# 30 s) so that the freeing does not land in the next measurement, then one second more:
# the daemon hands freed heap and wholly free mappings back once deletes have stopped for
# 100 ms, and the RSS probes after a delete are meant to see that steady state.
# Sets settle_s to the seconds it took (without that second).
settle() { # target
  local n s used inodes
  settle_s=0
  is_zbudfs "$1" || return 0
  for ((n = 0; n < 300; n++)); do
    s=$(zstats "$1")
    # Memory back to what the inodes still there (the directories) take.
    used=1 inodes=0
    [[ $s =~ \"mem_used_total\":\ *([0-9]+) ]] && used=${BASH_REMATCH[1]}
    [[ $s =~ \"inode_bytes\":\ *([0-9]+) ]] && inodes=${BASH_REMATCH[1]}
    if [[ $s =~ \"orig_data_size\":\ *0[,}] ]] && ((used <= inodes)); then
      settle_s=$(awk -v n="$n" 'BEGIN { printf "%.1f", n / 10 }')
      sleep 1
      return 0
    fi
    sleep 0.1
  done
  settle_s=30
  log "WARNING: zbudfs still holds data 30 s after the files were deleted: $s"
}

# Statistics once the background compressors have emptied the staging tier (staged pages
# are whole 4 KiB pages until then), polled for up to 10 s after a step: the density a
# mount settles at, beside what the step left at its end.
compressed_stats() { # stats json at the end of the step, target -> stats json with staged_pages 0
  local s=$1 n
  for ((n = 0; n < 100; n++)); do
    [[ $s =~ \"staged_pages\":\ *0[,}] || ! $s =~ staged_pages ]] && { echo "$s"; return 0; }
    sleep 0.1
    s=$(zstats "$2")
  done
  echo null
}

# before/after probes around one measured step, written as one JSON line to records.jsonl
probe_before() { # target
  pb_cpu=0 pb_stats=null pb_rss=0
  if [[ -n ${tpid[$1]:-} ]]; then
    pb_cpu=$(ticks "${tpid[$1]}"); pb_rss=$(status_kb "${tpid[$1]}" VmRSS); reset_hwm "${tpid[$1]}"
  fi
  is_zbudfs "$1" && pb_stats=$(zstats "$1")
  return 0
}
probe_after() { # target -> sets pa_json fragment
  local cpu=0 hwm=0 rss=0 st=null
  if [[ -n ${tpid[$1]:-} ]]; then
    cpu=$(ticks "${tpid[$1]}"); hwm=$(status_kb "${tpid[$1]}" VmHWM); rss=$(status_kb "${tpid[$1]}" VmRSS)
  fi
  local packed=null
  if is_zbudfs "$1"; then st=$(zstats "$1") && packed=$(compressed_stats "$st" "$1"); fi
  pa_json="\"rss_before_kb\":${pb_rss:-0},\"cpu_ticks\":$((cpu - pb_cpu)),\"hwm_kb\":${hwm:-0},\"rss_kb\":${rss:-0},\"stats_before\":${pb_stats:-null},\"stats\":${st:-null},\"stats_compressed\":${packed:-null}"
}

clk_tck=$(getconf CLK_TCK)

# ---------------------------------------------------------------- fio jobs
job_args() { # job kind numjobs -> fa (array)
  fa=(--name="$1" --ioengine=psync --numjobs="$3" --group_reporting --size="$size"
      --fallocate=none '--filename_format=f.$jobnum')
  case $1 in
    seqwrite_buf)  fa+=(--rw=write --bs=1M --direct=0 --end_fsync=1) ;;
    seqwrite_dir)  fa+=(--rw=write --bs=1M --direct=1) ;;
    seqread_dir)   fa+=(--rw=read --bs=1M --direct=1) ;;
    randread_dir)  fa+=(--rw=randread --bs=4k --direct=1 --time_based --runtime="${runtime}s") ;;
    randwrite_dir) fa+=(--rw=randwrite --bs=4k --direct=1 --time_based --runtime="${runtime}s") ;;
  esac
  case $2 in
    c60)  fa+=(--buffer_compress_percentage=60 --buffer_compress_chunk=4096 --refill_buffers=1) ;;
    rand) fa+=(--refill_buffers=1) ;;
  esac
}

summary() { zb_fio_summary "$1"; }  # fio json -> "MiB/s IOPS p99us"

records=$res/records.jsonl
: >"$records"
fio_cmds=$res/fio-commands.txt
: >"$fio_cmds"
failed=0

run_job() { # run kind nj job target
  local run=$1 kind=$2 nj=$3 job=$4 t=$5 dir json rc=0
  alive "$t" || return 0
  dir=${tdir[$t]}/fio
  settle_s=0
  case $job in seqwrite_dir|seqwrite_buf) rm -rf "${dir:?}"/*; sync -f "$dir"; settle "$t" ;; esac
  job_args "$job" "$kind" "$nj"
  json=$res/fio/r${run}_${kind}_j${nj}_${job}_${t}.json
  if [[ $run == 1 && $t == "${targets[0]}" ]]; then
    printf '%s\t%s\t%s\tfio --directory=TARGET/fio %s--output-format=json\n' \
      "$kind" "$nj" "$job" "$(printf '%q ' "${fa[@]}")" >>"$fio_cmds"
  fi
  probe_before "$t"
  fio --directory="$dir" "${fa[@]}" --output-format=json --output="$json" >"$json.log" 2>&1 || rc=$?
  probe_after "$t"
  if ((rc)); then
    failed=1; log "ERROR: fio failed on $t ($kind, $nj jobs, $job): $(tail -1 "$json.log")"
  fi
  alive "$t" || failed=1
  printf '{"kind":"step","step":"fio","run":%d,"data":"%s","numjobs":%d,"job":"%s","target":"%s","json":"%s","rc":%d,"settle_s":%s,%s}\n' \
    "$run" "$kind" "$nj" "$job" "$t" "$json" "$rc" "$settle_s" "$pa_json" >>"$records"
  printf '          %-15s %s\n' "$t" "$( ((rc)) && echo FAILED || summary "$json")"
}

# ---------------------------------------------------------------- machine and versions
mem_total_kb=$(awk '/MemTotal/ {print $2}' /proc/meminfo)
mem_avail_kb=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
zlevel=$("$zbbin" --help 2>&1 | sed -n 's/.*zstd_level=N.*default: \(-\{0,1\}[0-9][0-9]*\).*/\1/p' | head -1)
zlevel=${zlevel:-1}

# Tree to copy: its size, and whether it fits in memory next to its page-cache copy.
log "sizing the tree to copy: ${tree_src[*]}"
for d in "${tree_src[@]}"; do [[ -d $d ]] || die "BENCH_META_TREE: $d is not a directory"; done
[[ -d $count_tree ]] || die "BENCH_COUNT_TREE: $count_tree is not a directory"
tree_sizes() { # -> tree_bytes (regular files), tree_files, tree_inodes (every entry), tree_links
  read -r tree_bytes tree_files tree_inodes tree_links < <(find "${tree_src[@]}" -printf '%y %s\n' |
    awk '$1 == "f" {s += $2; n++} $1 == "l" {l++} {all++} END {printf "%.0f %d %d %d\n", s, n, all, l}')
}
tree_sizes
tree_note=""
if ((tree_bytes / 1024 * 2 + 2 * 1024 * 1024 > mem_avail_kb)) && ((${#tree_src[@]} > 1)); then
  tree_note="(${tree_src[*]} is $((tree_bytes >> 20)) MiB, too big for free RAM: copying ${tree_src[0]} only)"
  log "$tree_note"
  tree_src=("${tree_src[0]}")
  tree_sizes
fi
log "tree: ${tree_src[*]}, $((tree_bytes >> 20)) MiB in $tree_files files, $tree_inodes inodes ($tree_links symlinks)"
par_note=""
if ((ncopies * tree_bytes * 2 / 1024 + 2 * 1024 * 1024 > mem_avail_kb)); then
  par_note="$ncopies copies of the tree ($((ncopies * tree_bytes >> 20)) MiB) do not fit in free RAM next to the page cache"
fi
count_entries=$(find "$count_tree" | wc -l)

python3 - "$res/machine.json" <<EOF
import json, platform, subprocess, sys
def sh(c):
    try: return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception: return ''
m = {
  'date': sh('date -u "+%Y-%m-%d %H:%M UTC"'), 'nproc': int(sh('nproc')),
  'cpu': sh("sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1"),
  'mem_total_kb': $mem_total_kb, 'kernel': sh('uname -r'),
  'os': sh(". /etc/os-release && echo \$PRETTY_NAME"),
  'fio': sh('fio --version'), 'zstd': sh('zstd -V').split(',')[0].replace('*** ', ''),
  'libfuse': sh("pkg-config --modversion fuse3"), 'gcc': sh('gcc -dumpfullversion'),
  'zbudfs': sh('git -C "$repo" describe --always --dirty'), 'zstd_level': $zlevel,
  'loadavg_start': sh('cut -d" " -f1-3 /proc/loadavg'), 'mode': '$mode', 'runs': $runs,
  'size': '$size', 'runtime': $runtime, 'groups': '${groups[*]}', 'targets': '${targets[*]}',
  'zram': '''$zram_note''', 'memfs': '''$memfs_note''', 'memfs_src': '$mfsrc',
  'realio_threads': '${realio_threads[*]}', 'realio_jobs': '${realio_jobs[*]}', 'tree': '${tree_src[*]}', 'tree_bytes': $tree_bytes,
  'tree_files': $tree_files, 'tree_inodes': $tree_inodes, 'zstd_secs': $zstd_secs, 'tree_note': '''$tree_note''', 'clk_tck': $clk_tck,
  'tree_links': $tree_links, 'ncopies': $ncopies, 'par_note': '''$par_note''', 'meta_files': $meta_files,
  'meta_engines': '${meta_engines[*]}', 'meta_numjobs': '${meta_numjobs[*]}', 'count_tree': '$count_tree',
  'count_entries': $count_entries, 'steps': '$only',
}
json.dump(m, open(sys.argv[1], 'w'), indent=1)
EOF

# ---------------------------------------------------------------- zstd's own limit
# Measured once per run, between the fio jobs, so that its median sees the same noise.
zdat=$work/zstd-c60.dat
if [[ -n ${step_on[fio]:-} ]]; then
  fio --name=zstdgen --filename="$zdat" --rw=write --bs=1M --size=64M --buffer_compress_percentage=60 \
    --buffer_compress_chunk=4096 --refill_buffers=1 --output=/dev/null >/dev/null 2>&1 || die "fio could not write $zdat"
fi
zstd_limit() { # run file prefix label single(0/1): FILE's zstd speed, alone and on every CPU
  local run=$1 file=$2 pre=$3 i p zpids=()
  log "run $run/$runs  zstd limit: level $zlevel, 4 KiB blocks, $4, $( (($5)) && echo "1 and ")$(nproc) processes"
  (($5)) && { zstd -q -b"$zlevel" -e"$zlevel" -B4096 -i"$zstd_secs" "$file" >"$res/$pre-r$run-1.txt" 2>&1 || true; }
  for ((i = 1; i <= $(nproc); i++)); do
    zstd -q -b"$zlevel" -e"$zlevel" -B4096 -i"$zstd_secs" "$file" >"$res/$pre-r$run-n$i.txt" 2>&1 &
    zpids+=($!)
  done
  for p in "${zpids[@]}"; do wait "$p" || true; done
  printf '          %s\n' "$(cat "$res/$pre-r$run"-*.txt | grep -h 'MB/s' | tr -s ' ' | cut -d' ' -f3-5 | paste -sd '|')"
}
zstd_bench() { zstd_limit "$1" "$zdat" zstd "fio's 60 %-compressible data" $((!quick)); }

# ---------------------------------------------------------------- real data (realio)
# Before the fio matrix: pages cut from real files (realio's corpus, /usr/include and the
# shared libraries), which compress like real files do and unlike fio's buffers. The same
# runs, rotation, settling and daemon probes as the fio matrix. The corpus is dumped once and
# every realio run reads the dump (the same pages) instead of walking the trees again.
realio=$work/bin/realio
corpus=$work/realio-corpus.dat
if [[ -n ${step_on[realio]:-} ]]; then
  "$realio" --dump-corpus "$corpus" || die "realio --dump-corpus failed"
fi
mkdir -p "$res/realio"
realio_cmds=$res/realio-commands.txt
: >"$realio_cmds"

run_realio() { # run threads job target
  local run=$1 nt=$2 job=$3 t=$4 dir out rc=0 line r=null a
  alive "$t" || return 0
  dir=${tdir[$t]}/realio
  settle_s=0
  if [[ $job == seqwrite ]]; then rm -rf "${dir:?}"/*; sync -f "$dir"; settle "$t"; fi
  a=(--job "$job" --threads "$nt" --size "$size" --runtime "$runtime" --json)
  [[ $job == seqread ]] && a+=(--verify)
  if [[ $run == 1 && $t == "${targets[0]}" ]]; then
    printf '%s\t%s\trealio --dir TARGET/realio --corpus CORPUS.dat %s\n' "$nt" "$job" "${a[*]}" >>"$realio_cmds"
  fi
  out=$res/realio/r${run}_t${nt}_${job}_${t}
  probe_before "$t"
  "$realio" --dir "$dir" --corpus "$corpus" "${a[@]}" >"$out.json" 2>"$out.err" || rc=$?
  probe_after "$t"
  if ((rc)); then
    failed=1; log "ERROR: realio failed on $t ($nt threads, $job): $(tail -1 "$out.err")"
  fi
  alive "$t" || failed=1
  ((rc == 0)) && read -r line <"$out.json" && [[ $line == "{"*"}" ]] && r=$line
  printf '{"kind":"step","step":"realio","run":%d,"threads":%d,"job":"%s","target":"%s","verify":%s,"rc":%d,"settle_s":%s,"result":%s,%s}\n' \
    "$run" "$nt" "$job" "$t" "$([[ $job == seqread ]] && echo true || echo false)" "$rc" "$settle_s" "$r" "$pa_json" >>"$records"
  if [[ $r =~ \"mib_s\":([0-9.]+).*\"iops\":([0-9.]+) ]]; then
    printf '          %-15s %.0f MiB/s  %.0f IOPS\n' "$t" "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
  else
    printf '          %-15s FAILED\n' "$t"
  fi
}

if [[ -n ${step_on[realio]:-} ]]; then
  log "real data: ${#realio_threads[@]} thread counts x ${#realio_jobs[@]} jobs x ${#targets[@]} targets x $runs run(s); $size per thread, random jobs ${runtime} s"
  for ((run = 1; run <= runs; run++)); do
    zstd_limit "$run" "$corpus" zstd-real "realio's corpus" 1
    k=$(((run - 1) % ${#targets[@]}))
    order=("${targets[@]:k}" "${targets[@]:0:k}")
    for nt in "${realio_threads[@]}"; do
      for job in "${realio_jobs[@]}"; do
        log "run $run/$runs  real data  threads=$nt  $job"
        for t in "${order[@]}"; do run_realio "$run" "$nt" "$job" "$t"; done
      done
    done
  done
  for t in "${targets[@]}"; do
    alive "$t" || continue
    rm -rf "${tdir[$t]:?}/realio"; sync -f "${tdir[$t]}"; settle "$t"
  done
fi

# ---------------------------------------------------------------- the fio matrix
if [[ -n ${step_on[fio]:-} ]]; then
  log "fio: ${#groups[@]} data/jobs groups x ${#jobs[@]} jobs x ${#targets[@]} targets x $runs run(s); $size per job, random jobs ${runtime} s"
  for ((run = 1; run <= runs; run++)); do
    zstd_bench "$run"
    # Each run starts with the next target, so that no target always runs first after a
    # group change or last before one: on a shared machine, slow spells then fall on all.
    k=$(((run - 1) % ${#targets[@]}))
    order=("${targets[@]:k}" "${targets[@]:0:k}")
    for g in "${groups[@]}"; do
      kind=${g%%:*} rest=${g#*:} nj=${g#*:}; nj=${nj%%:*}
      gjobs=("${jobs[@]}")
      [[ $rest == *:* ]] && IFS=, read -r -a gjobs <<<"${rest#*:}"
      for job in "${gjobs[@]}"; do
        log "run $run/$runs  data=$kind  numjobs=$nj  $job"
        for t in "${order[@]}"; do run_job "$run" "$kind" "$nj" "$job" "$t"; done
      done
    done
  done
  for t in "${targets[@]}"; do alive "$t" && rm -rf "${tdir[$t]:?}/fio"; done
fi

# ---------------------------------------------------------------- metadata (scripts/bench_meta.sh)
source scripts/bench_meta.sh

if [[ -n ${step_on[meta]:-} ]]; then
  log "metadata: tree ${tree_src[*]} ($tree_inodes entries, $((tree_bytes >> 20)) MiB), 1 and $ncopies copies at once; fio ${meta_engines[*]}, ${meta_numjobs[*]} jobs x $meta_files files; x ${#targets[@]} targets x $runs run(s)"
  log "reading the trees once so that the copies come from the page cache"
  tar -C / -cf - "${tree_src[@]#/}" "${count_tree#/}" 2>/dev/null | cat >/dev/null || true
  for ((run = 1; run <= runs; run++)); do
    k=$(((run - 1) % ${#targets[@]}))
    order=("${targets[@]:k}" "${targets[@]:0:k}")
    for mode in serial parallel; do
      log "run $run/$runs  tree copy, $mode ($( [[ $mode == serial ]] && echo "one cp -a" || echo "$ncopies cp -a at once"))"
      for t in "${order[@]}"; do tree_copy "$run" "$mode" "$t"; done
    done
    for nj in "${meta_numjobs[@]}"; do
      log "run $run/$runs  fio ${meta_engines[*]}, numjobs=$nj, $meta_files files per job"
      for t in "${order[@]}"; do meta_fio "$run" "$nj" "$t"; done
    done
  done
  log "FUSE requests: cp -a and rm -rf of $count_tree ($count_entries entries) in a second mount with -d"
  for t in "${targets[@]}"; do
    case $t in zbudfs|zbudfs_nowb|passthrough_ll|memfs_ll) fuse_requests "$t" ;; esac
  done
fi

echo "\"$(cut -d' ' -f1-3 /proc/loadavg)\"" >"$res/loadavg_end.json"

# ---------------------------------------------------------------- report
log "writing the report"
python3 scripts/bench_report.py "$res" >/dev/null || die "report failed"
gnuplot "$res/chart.gp" 2>"$res/gnuplot.err" || log "WARNING: gnuplot failed: $(head -3 "$res/gnuplot.err")"

echo
cat "$res/report.md"
echo
log "results: $res (report.md, bench.png, fio/*.json, records.jsonl)"
if ((docs)); then
  [[ -f docs/BENCHMARKS.md ]] || printf '# zbudfs benchmarks\n' >docs/BENCHMARKS.md
  # Current results first: the report goes before the first section, after the title and
  # the introduction.
  python3 - "$res/report.md" docs/BENCHMARKS.md <<'PY' || die "could not record the report"
import sys
report, doc = open(sys.argv[1]).read().strip("\n"), open(sys.argv[2]).read()
at = doc.find("\n## ")
head, tail = (doc, "") if at < 0 else (doc[: at + 1], doc[at + 1 :])
open(sys.argv[2], "w").write(head.rstrip("\n") + "\n\n" + report + "\n\n" + tail)
PY
  [[ -f $res/bench.png ]] && cp "$res/bench.png" docs/bench.png
  log "recorded: docs/BENCHMARKS.md starts with this report; chart in docs/bench.png"
else
  log "docs/ left as it was (--record puts this report first in docs/BENCHMARKS.md)"
fi
if [[ -s $res/targets.txt ]]; then
  echo
  echo "What zbudfs aims for, and whether this run met it (also in $res/targets.txt):"
  echo
  cat "$res/targets.txt"
fi
((failed == 0)) || die "some jobs failed or a daemon died: see above"

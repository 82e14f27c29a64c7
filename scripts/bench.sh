#!/usr/bin/env bash
# The benchmark users run: the same fio jobs and a tree copy on zbudfs (default options),
# tmpfs (the RAM ceiling), libfuse's passthrough_ll over a tmpfs (the FUSE ceiling) and,
# where the kernel has it, zram + ext4. Prints a Markdown report, the issue-6 targets as
# MET/MISSED lines and draws a PNG chart; the full run appends the report to
# docs/BENCHMARKS.md (section "## fio on the mountpoint") and writes docs/bench.png.
#
# Usage (as root): scripts/bench.sh [--quick] [--runs N] [--targets LIST] [--docs|--no-docs]
#   --quick          small sizes, one run, a subset of jobs (under two minutes); writes only
#                    to the results directory unless --docs is given
#   --runs N         runs of every fio job; the report shows medians (full: 3, quick: 1)
#   --targets LIST   comma-separated subset of zbudfs,tmpfs,passthrough_ll,zram
#   --docs/--no-docs append to docs/BENCHMARKS.md and write docs/bench.png, or not
#                    (default: yes for the full run, no for --quick)
#   --out DIR        results directory (default: build/bench/DATE-TIME)
# Environment: BENCH_TREE="dirs..." (tree to copy; default "/usr/include /usr/lib", quick
#   "/usr/include"), BENCH_SIZE (per fio job, default 256M, quick 64M), BENCH_RUNTIME
#   (seconds per random job, default 5, quick 2), ZRAM_ALGO (default lz4 if offered).
# Everything it mounts or starts is unmounted and stopped on exit, failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

quick=0 runs="" docs="" targets_arg="zbudfs,tmpfs,passthrough_ll,zram" out=""
while (($#)); do
  case $1 in
    --quick) quick=1 ;;
    --runs) runs=${2:?--runs needs a number}; shift ;;
    --targets) targets_arg=${2:?--targets needs a list}; shift ;;
    --docs) docs=1 ;;
    --no-docs) docs=0 ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

if ((quick)); then
  size=${BENCH_SIZE:-64M}; runtime=${BENCH_RUNTIME:-2}; runs=${runs:-1}; docs=${docs:-0}
  # shellcheck disable=SC2054  # data:numjobs[:job,job...], the commas are ours
  groups=(c60:1:seqwrite_dir,seqwrite_buf c60:2); tree_default="/usr/include"; zstd_secs=1; mode="quick"
else
  size=${BENCH_SIZE:-256M}; runtime=${BENCH_RUNTIME:-5}; runs=${runs:-3}; docs=${docs:-1}
  groups=(c60:1 c60:2 rand:2); tree_default="/usr/include /usr/lib"; zstd_secs=2; mode="full"
fi
read -r -a tree_src <<<"${BENCH_TREE:-$tree_default}"
jobs=(seqwrite_dir seqwrite_buf seqread_dir randread_dir randwrite_dir)

t0=$SECONDS
log() { printf '[%02d:%02d] %s\n' $(((SECONDS - t0) / 60)) $(((SECONDS - t0) % 60)) "$*"; }
die() { log "bench: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root (it mounts tmpfs, FUSE and zram file systems)"
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs wants a positive number"

# ---------------------------------------------------------------- packages and build
log "checking packages"
scripts/deps.sh
extra=(fio gnuplot-nox zstd e2fsprogs fuse3 libfuse3-dev pkg-config gcc python3 procps util-linux kmod coreutils)
missing=()
for p in "${extra[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing missing packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

log "building Release (zbudfs, zbudfsctl)"
if ! scripts/build.sh release --target zbudfs zbudfsctl >/tmp/zbudfs-bench-build.$$ 2>&1; then
  tail -30 /tmp/zbudfs-bench-build.$$ >&2; rm -f /tmp/zbudfs-bench-build.$$; die "build failed"
fi
rm -f /tmp/zbudfs-bench-build.$$

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

# ---------------------------------------------------------------- work area and cleanup
stamp=$(date -u +%Y%m%d-%H%M%S)
res=${out:-$repo/build/bench/$stamp-$mode}
mkdir -p "$res/fio"
res=$(cd "$res" && pwd)
work=$(mktemp -d /tmp/zbudfs-bench.XXXXXX)
mounts=()               # everything we mounted, in order
declare -A tdir=()      # target -> directory the jobs use
declare -A tpid=()      # FUSE target -> daemon PID
declare -A dead=()      # targets whose daemon or mount went away
zram_dev="" zram_hot=""
zb_pid="" pt_pid=""

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
  for pid in $zb_pid $pt_pid; do
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

# ---------------------------------------------------------------- targets
wait_mount() { # dir pid name
  local n
  for ((n = 0; n < 100; n++)); do
    mountpoint -q "$1" && return 0
    kill -0 "$2" 2>/dev/null || die "$3 exited before mounting (log: $res/$3.log)"
    sleep 0.1
  done
  die "$3 did not mount within 10 s (log: $res/$3.log)"
}

mount_zbudfs() {
  mkdir -p "$work/zbudfs"; mounts+=("$work/zbudfs")
  build/zbudfs -f "$work/zbudfs" >"$res/zbudfs.log" 2>&1 &
  zb_pid=$!; tpid[zbudfs]=$zb_pid
  wait_mount "$work/zbudfs" "$zb_pid" zbudfs
  tdir[zbudfs]=$work/zbudfs
}

mount_tmpfs() {
  mkdir -p "$work/tmpfs"; mounts+=("$work/tmpfs")
  mount -t tmpfs -o mode=0755 bench-tmpfs "$work/tmpfs"
  tdir[tmpfs]=$work/tmpfs
}

mount_passthrough() {
  mkdir -p "$work/pt-src" "$work/passthrough"
  mounts+=("$work/pt-src"); mount -t tmpfs -o mode=0755 bench-ptsrc "$work/pt-src"
  mounts+=("$work/passthrough")
  # passthrough_ll holds an O_PATH descriptor per inode the kernel knows: a tree copy needs
  # far more than the usual 1024 (or 20000) descriptors.
  (ulimit -Hn 1048576 2>/dev/null || true; ulimit -n "$(ulimit -Hn)" || true
   exec "$ptbin" -f -o "source=$work/pt-src,writeback,cache=always" "$work/passthrough") \
    >"$res/passthrough_ll.log" 2>&1 &
  pt_pid=$!; tpid[passthrough_ll]=$pt_pid
  wait_mount "$work/passthrough" "$pt_pid" passthrough_ll
  tdir[passthrough_ll]=$work/passthrough
}

zram_note=""
mount_zram() {
  local algo algos dev disksize
  if [[ ! -e /sys/block/zram0 ]]; then modprobe zram 2>/dev/null || true; fi
  if [[ ! -e /sys/block/zram0 ]]; then zram_note="no /sys/block/zram0 and modprobe zram did not create it"; return 1; fi
  if [[ $(cat /sys/block/zram0/disksize) == 0 ]] && ! grep -q '^/dev/zram0 ' /proc/swaps /proc/mounts; then
    dev=zram0
  elif [[ -w /sys/class/zram-control/hot_add ]]; then
    dev=zram$(cat /sys/class/zram-control/hot_add) || { zram_note="zram0 busy and hot_add failed"; return 1; }
    zram_hot=1
  else
    zram_note="zram0 is in use and there is no hot_add"; return 1
  fi
  zram_dev=$dev
  [[ -b /dev/$dev ]] || { zram_note="/dev/$dev is not a block device here"; return 1; }
  algos=$(cat "/sys/block/$dev/comp_algorithm")
  algo=${ZRAM_ALGO:-}
  if [[ -z $algo ]]; then
    for a in lz4 zstd; do [[ " ${algos//[\[\]]/} " == *" $a "* ]] && { algo=$a; break; }; done
  fi
  [[ -n $algo ]] && { echo "$algo" >"/sys/block/$dev/comp_algorithm" || { zram_note="cannot set $algo"; return 1; }; }
  algo=$(sed -n 's/.*\[\(.*\)\].*/\1/p' "/sys/block/$dev/comp_algorithm")
  disksize=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) * 1024 / 2))   # like tmpfs: half of RAM
  echo "$disksize" >"/sys/block/$dev/disksize" || { zram_note="cannot set disksize"; return 1; }
  mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "/dev/$dev" >/dev/null 2>&1 \
    || { zram_note="mkfs.ext4 on /dev/$dev failed"; return 1; }
  mkdir -p "$work/zram"; mounts+=("$work/zram")
  mount "/dev/$dev" "$work/zram" || { zram_note="mounting /dev/$dev failed"; return 1; }
  tdir[zram]=$work/zram
  zram_note="/dev/$dev, $algo, ext4 (mkfs.ext4 defaults), disksize $((disksize >> 20)) MiB"
}

IFS=, read -r -a want <<<"$targets_arg"
for t in "${want[@]}"; do
  case $t in zbudfs|tmpfs|passthrough_ll|zram) ;; *) die "unknown target: $t" ;; esac
done
targets=()
order=(zbudfs passthrough_ll tmpfs zram)     # the order jobs run in, per job
for t in "${order[@]}"; do
  [[ ",$targets_arg," == *",$t,"* ]] || continue
  case $t in
    zbudfs) log "mounting zbudfs (default options)"; mount_zbudfs ;;
    tmpfs) log "mounting tmpfs"; mount_tmpfs ;;
    passthrough_ll) log "mounting passthrough_ll -o writeback,cache=always over a tmpfs"; mount_passthrough ;;
    zram)
      log "setting up zram + ext4"
      if ! mount_zram; then log "zram: unavailable ($zram_note) - skipped"; continue; fi
      log "zram: $zram_note" ;;
  esac
  targets+=("$t")
done
((${#targets[@]})) || die "no targets"
for t in "${targets[@]}"; do mkdir -p "${tdir[$t]}/fio"; done

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
zstats() {
  local s
  if s=$(build/zbudfsctl stats "${tdir[zbudfs]}" --json 2>/dev/null) && [[ $s == "{"* ]]; then
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
  local n s
  settle_s=0
  [[ $1 == zbudfs ]] || return 0
  for ((n = 0; n < 300; n++)); do
    s=$(zstats)
    if [[ $s =~ \"orig_data_size\":\ *0[,}] && $s =~ \"mem_used_total\":\ *0[,}] ]]; then
      settle_s=$(awk -v n="$n" 'BEGIN { printf "%.1f", n / 10 }')
      sleep 1
      return 0
    fi
    sleep 0.1
  done
  settle_s=30
  log "WARNING: zbudfs still holds data 30 s after the files were deleted: $s"
}

# before/after probes around one measured step, written as one JSON line to records.jsonl
probe_before() { # target
  pb_cpu=0 pb_stats=null pb_rss=0
  if [[ -n ${tpid[$1]:-} ]]; then
    pb_cpu=$(ticks "${tpid[$1]}"); pb_rss=$(status_kb "${tpid[$1]}" VmRSS); reset_hwm "${tpid[$1]}"
  fi
  [[ $1 == zbudfs ]] && pb_stats=$(zstats)
  return 0
}
probe_after() { # target -> sets pa_json fragment
  local cpu=0 hwm=0 rss=0 st=null
  if [[ -n ${tpid[$1]:-} ]]; then
    cpu=$(ticks "${tpid[$1]}"); hwm=$(status_kb "${tpid[$1]}" VmHWM); rss=$(status_kb "${tpid[$1]}" VmRSS)
  fi
  [[ $1 == zbudfs ]] && st=$(zstats)
  pa_json="\"rss_before_kb\":${pb_rss:-0},\"cpu_ticks\":$((cpu - pb_cpu)),\"hwm_kb\":${hwm:-0},\"rss_kb\":${rss:-0},\"stats_before\":${pb_stats:-null},\"stats\":${st:-null}"
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

summary() { # fio json -> "MiB/s IOPS p99us"
  python3 - "$1" <<'EOF'
import json, sys
try:
    t = open(sys.argv[1]).read(); j = json.loads(t[t.index('{'):])['jobs'][0]
    d = j['write'] if j['write']['io_bytes'] else j['read']
    p = d['clat_ns'].get('percentile', {}).get('99.000000', 0) / 1000
    print('%.0f MiB/s  %.0f IOPS  p99 %.0f us' % (d['bw_bytes'] / 2**20, d['iops'], p))
except Exception as e:
    print('unreadable result (%s)' % e)
EOF
}

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
zlevel=$(build/zbudfs --help 2>&1 | sed -n 's/.*zstd_level=N.*default: \(-\{0,1\}[0-9][0-9]*\).*/\1/p' | head -1)
zlevel=${zlevel:-1}

# Tree to copy: its size, and whether it fits in memory next to its page-cache copy.
log "sizing the tree to copy: ${tree_src[*]}"
for d in "${tree_src[@]}"; do [[ -d $d ]] || die "BENCH_TREE: $d is not a directory"; done
tree_sizes() { # -> tree_bytes (regular files), tree_files, tree_inodes (every entry)
  read -r tree_bytes tree_files tree_inodes < <(find "${tree_src[@]}" -printf '%y %s\n' |
    awk '$1 == "f" {s += $2; n++} {all++} END {printf "%.0f %d %d\n", s, n, all}')
}
tree_sizes
tree_note=""
if ((tree_bytes / 1024 * 2 + 2 * 1024 * 1024 > mem_avail_kb)) && ((${#tree_src[@]} > 1)); then
  tree_note="(${tree_src[*]} is $((tree_bytes >> 20)) MiB, too big for free RAM: copying ${tree_src[0]} only)"
  log "$tree_note"
  tree_src=("${tree_src[0]}")
  tree_sizes
fi
log "tree: ${tree_src[*]}, $((tree_bytes >> 20)) MiB in $tree_files files, $tree_inodes inodes"

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
  'zram': '''$zram_note''', 'tree': '${tree_src[*]}', 'tree_bytes': $tree_bytes,
  'tree_files': $tree_files, 'tree_inodes': $tree_inodes, 'zstd_secs': $zstd_secs, 'tree_note': '''$tree_note''', 'clk_tck': $clk_tck,
}
json.dump(m, open(sys.argv[1], 'w'), indent=1)
EOF

# ---------------------------------------------------------------- zstd's own limit
# Measured once per run, between the fio jobs, so that its median sees the same noise.
zdat=$work/zstd-c60.dat
fio --name=zstdgen --filename="$zdat" --rw=write --bs=1M --size=64M --buffer_compress_percentage=60 \
  --buffer_compress_chunk=4096 --refill_buffers=1 --output=/dev/null >/dev/null 2>&1 || die "fio could not write $zdat"
zstd_bench() { # run
  local i p zpids=()
  log "run $1/$runs  zstd limit: level $zlevel, 4 KiB blocks, fio's 60 %-compressible data, $( ((quick)) || echo "1 and ")$(nproc) processes"
  ((quick)) || zstd -q -b"$zlevel" -e"$zlevel" -B4096 -i"$zstd_secs" "$zdat" >"$res/zstd-r$1-1.txt" 2>&1 || true
  for ((i = 1; i <= $(nproc); i++)); do
    zstd -q -b"$zlevel" -e"$zlevel" -B4096 -i"$zstd_secs" "$zdat" >"$res/zstd-r$1-n$i.txt" 2>&1 &
    zpids+=($!)
  done
  for p in "${zpids[@]}"; do wait "$p" || true; done
  printf '          %s\n' "$(cat "$res"/zstd-r"$1"-*.txt | grep -h 'MB/s' | tr -s ' ' | cut -d' ' -f3-5 | paste -sd '|')"
}

# ---------------------------------------------------------------- the fio matrix
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

# ---------------------------------------------------------------- tree copy
log "reading the tree once so that the copies come from the page cache"
tar -C / -cf - "${tree_src[@]#/}" 2>/dev/null | cat >/dev/null || true
for t in "${targets[@]}"; do
  alive "$t" || continue
  if [[ $t == passthrough_ll ]]; then
    fdmax=$(awk '/^Max open files/ {print $4}' "/proc/$pt_pid/limits")
    if ((tree_inodes + 100 > fdmax)); then
      log "tree copy into passthrough_ll skipped: it keeps a descriptor per inode, the tree has $tree_inodes inodes and its fd limit is $fdmax"
      printf '{"kind":"step","step":"tree","target":"%s","skipped":"passthrough_ll keeps an open descriptor per inode the kernel caches; the tree has %d inodes, its descriptor limit here is %d (and cannot be raised without CAP_SYS_RESOURCE)"}\n' \
        "$t" "$tree_inodes" "$fdmax" >>"$records"
      continue
    fi
  fi
  dst=${tdir[$t]}/tree
  mkdir -p "$dst"; sync -f "$dst" || true
  probe_before "$t"
  s=$(date +%s.%N)
  cprc=0; cp -a "${tree_src[@]}" "$dst/" 2>"$res/cp-$t.err" || cprc=$?
  sync -f "$dst" 2>>"$res/cp-$t.err" || cprc=${cprc/#0/99}
  e=$(date +%s.%N)
  probe_after "$t"
  copy_json=$pa_json
  probe_before "$t"
  rs=$(date +%s.%N); rm -rf "$dst" || true; sync -f "${tdir[$t]}" || true; re=$(date +%s.%N)
  settle "$t"
  probe_after "$t"
  alive "$t" || failed=1
  ((cprc)) && log "WARNING: cp -a into $t returned $cprc ($(wc -l <"$res/cp-$t.err") lines in $res/cp-$t.err)"
  sec=$(awk -v a="$s" -v b="$e" 'BEGIN { printf "%.3f", b - a }')
  rsec=$(awk -v a="$rs" -v b="$re" 'BEGIN { printf "%.3f", b - a }')
  printf '{"kind":"step","step":"tree","target":"%s","seconds":%s,"rm_seconds":%s,"settle_s":%s,"cp_rc":%d,%s,"after_rm":{%s}}\n' \
    "$t" "$sec" "$rsec" "$settle_s" "$cprc" "$copy_json" "$pa_json" >>"$records"
  log "tree copy into $t: $sec s, $(awk -v b="$tree_bytes" -v s="$sec" 'BEGIN { printf "%.0f", b / 1048576 / s }') MiB/s; rm -rf $rsec s"
done

echo "\"$(cut -d' ' -f1-3 /proc/loadavg)\"" >"$res/loadavg_end.json"

# ---------------------------------------------------------------- report
log "writing the report"
cat >"$res/report.py" <<'PYEOF'
import json, os, re, statistics, sys

res = sys.argv[1]
M = json.load(open(os.path.join(res, 'machine.json')))
M['loadavg_end'] = json.load(open(os.path.join(res, 'loadavg_end.json')))
recs = [json.loads(l) for l in open(os.path.join(res, 'records.jsonl')) if l.strip()]
cmds = [l.rstrip('\n').split('\t') for l in open(os.path.join(res, 'fio-commands.txt')) if l.strip()]
TARGETS = [t for t in ['tmpfs', 'zram', 'passthrough_ll', 'zbudfs'] if t in M['targets'].split()]
TNAME = {'tmpfs': 'tmpfs', 'zram': 'zram+ext4', 'passthrough_ll': 'passthrough_ll', 'zbudfs': 'zbudfs'}
JOBS = ['seqwrite_buf', 'seqwrite_dir', 'seqread_dir', 'randread_dir', 'randwrite_dir']
JNAME = {'seqwrite_buf': ('seq write 1M', 'buffered, end_fsync'), 'seqwrite_dir': ('seq write 1M', 'direct'),
         'seqread_dir': ('seq read 1M', 'direct'), 'randread_dir': ('rand read 4k', 'direct'),
         'randwrite_dir': ('rand write 4k', 'direct')}
DNAME = {'c60': '60 % compr.', 'rand': 'incompr.'}
GROUPS = [(g.split(':')[0], int(g.split(':')[1])) for g in M['groups'].split()]
has = lambda d, nj, job: any((d, nj, job, t) in agg for t in TARGETS)
MiB = 2**20
med = lambda xs: statistics.median(xs) if xs else None

def fio_result(path):
    try:
        t = open(path).read(); j = json.loads(t[t.index('{'):])['jobs'][0]
    except Exception:
        return None
    d = j['write'] if j['write']['io_bytes'] else j['read']
    return {'mibs': d['bw_bytes'] / MiB, 'iops': d['iops'], 'bytes': d['io_bytes'],
            'fio_cpus': (j.get('usr_cpu', 0) + j.get('sys_cpu', 0)) / 100,  # Over its runtime.
            'p99': d['clat_ns'].get('percentile', {}).get('99.000000', 0) / 1000}

# aggregate fio steps: (data, nj, job, target) -> medians
agg = {}
for r in recs:
    if r['step'] != 'fio':
        continue
    k = (r['data'], r['numjobs'], r['job'], r['target'])
    f = fio_result(r['json']) if r['rc'] == 0 else None
    a = agg.setdefault(k, {'runs': [], 'fail': 0})
    if f is None:
        a['fail'] += 1
        continue
    s = r.get('stats') or {}
    sb = r.get('stats_before') or {}
    f.update(rss_before=r.get('rss_before_kb', 0) * 1024, mem_before=sb.get('mem_used_total'),
             settle=r.get('settle_s', 0))
    f.update(cpu=r['cpu_ticks'] / M['clk_tck'], hwm=r['hwm_kb'] * 1024, rss=r['rss_kb'] * 1024,
             mem=s.get('mem_used_total'), orig=s.get('orig_data_size'), compr=s.get('compr_data_size'),
             overflow=s.get('overflow_pages'))
    a['runs'].append(f)
def m(k, field):
    a = agg.get(k)
    if not a: return None
    xs = [x[field] for x in a['runs'] if x.get(field) is not None]
    return med(xs)

def fmt_rate(v, job):
    if v is None: return 'n/a'
    return ('%.0f' % v) if job.startswith('seq') else ('%.1fk' % (v / 1000))
def fmt_lat(us):
    if us is None: return 'n/a'
    return '%.0f µs' % us if us < 10000 else '%.1f ms' % (us / 1000)
def key_rate(job): return 'mibs' if job.startswith('seq') else 'iops'

out = []
P = out.append
P('## fio on the mountpoint — %s (%s run)' % (M['date'], M['mode']))
P('')
P('Written by `scripts/bench.sh%s`. Machine: %d CPUs (%s), %.1f GiB RAM, kernel %s, %s; '
  '%s, zstd %s, libfuse %s, gcc %s. zbudfs `%s` with default options (zstd level %d). '
  'Load average at start %s, at end %s: other work shared this machine, so figures are noisy.'
  % (' --quick' if M['mode'] == 'quick' else '', M['nproc'], M['cpu'], M['mem_total_kb'] / 2**20,
     M['kernel'], M['os'], M['fio'], M['zstd'].split()[-1] if M['zstd'] else '?', M['libfuse'],
     M['gcc'], M['zbudfs'], M['zstd_level'], M['loadavg_start'], M['loadavg_end']))
P('')
P('Targets: **zbudfs** (`build/zbudfs -f MNT`, defaults); **tmpfs** (defaults, the RAM ceiling); '
  '**passthrough_ll** (libfuse %s\'s example, compiled from `/usr/share/doc/libfuse3-dev/examples`, '
  '`-o source=TMPFS,writeback,cache=always`, the FUSE ceiling); **zram+ext4** (%s).'
  % (M['libfuse'], M['zram'] if 'zram' in TARGETS else 'skipped: ' + (M['zram'] or 'not requested')))
P('')
P('fio jobs: `ioengine=psync` (iodepth 1), %s per job, `numjobs` 1 or 2 with `group_reporting`; '
  'sequential jobs write into freshly deleted files, reads and random writes use the files the '
  'buffered sequential write left; random jobs are time-based, %d s. Reads are `direct=1` (the store, '
  'not the page cache); writes are buffered (with `end_fsync=1`, so the time includes handing the data '
  'to the store) or `direct=1`, as the table says. Data: fio\'s 60 %%-compressible buffers '
  '(`buffer_compress_percentage=60 buffer_compress_chunk=4096 refill_buffers=1`) or incompressible '
  '(`refill_buffers=1`). Every figure is the **median of %d run%s** (runs interleave the targets job by job, each run starting with the next target).'
  % (M['size'].replace('M', ' MiB'), M['runtime'], M['runs'], '' if M['runs'] == 1 else 's'))
P('')
P('![fio and tree copy: tmpfs, zram+ext4, passthrough_ll, zbudfs](bench.png)')
P('')
P('### Throughput: MiB/s for sequential jobs, IOPS for random ones')
P('')
P('| data | jobs | job | writes | ' + ' | '.join(TNAME[t] for t in TARGETS) +
  (' | zbudfs ÷ passthrough_ll |' if 'zbudfs' in TARGETS and 'passthrough_ll' in TARGETS else ' |'))
P('|---|---|---|---|' + '---:|' * len(TARGETS) +
  ('---:|' if 'zbudfs' in TARGETS and 'passthrough_ll' in TARGETS else ''))
for (d, nj) in GROUPS:
    for job in JOBS:
        if not has(d, nj, job): continue
        cells = [fmt_rate(m((d, nj, job, t), key_rate(job)), job) for t in TARGETS]
        row = '| %s | %d | %s | %s | %s |' % (DNAME[d], nj, JNAME[job][0], JNAME[job][1], ' | '.join(cells))
        if 'zbudfs' in TARGETS and 'passthrough_ll' in TARGETS:
            a, b = m((d, nj, job, 'zbudfs'), key_rate(job)), m((d, nj, job, 'passthrough_ll'), key_rate(job))
            row += ' %s |' % ('%.2f×' % (a / b) if a and b else 'n/a')
        P(row)
P('')
P('### Every figure: MiB/s · IOPS · p99 completion latency (medians)')
P('')
P('| data | jobs | job | writes | ' + ' | '.join(TNAME[t] for t in TARGETS) + ' |')
P('|---|---|---|---|' + '---|' * len(TARGETS))
for (d, nj) in GROUPS:
    for job in JOBS:
        if not has(d, nj, job): continue
        cells = []
        for t in TARGETS:
            k = (d, nj, job, t)
            if m(k, 'mibs') is None:
                cells.append('failed' if agg.get(k, {}).get('fail') else 'n/a')
            else:
                cells.append('%.0f MiB/s · %.0f · p99 %s' % (m(k, 'mibs'), m(k, 'iops'), fmt_lat(m(k, 'p99'))))
        P('| %s | %d | %s | %s | %s |' % (DNAME[d], nj, JNAME[job][0], JNAME[job][1], ' | '.join(cells)))
P('')

fuse = [t for t in ('zbudfs', 'passthrough_ll') if t in TARGETS]
if 'zbudfs' in TARGETS:
    P('### zbudfs: memory and CPU per job (medians)')
    P('')
    st = [x['settle'] for (d, nj, job, t), a in agg.items() if t == 'zbudfs' for x in a['runs'] if x.get('settle')]
    P('zbudfs frees a deleted file\'s pages when the kernel forgets the inode, a little after `rm` returns: '
      'before each sequential write the script deletes the old files and waits until zbudfs reports '
      '`orig_data_size` and `mem_used_total` 0 (that took up to %.1f s, median %.1f s), then 1 s more, '
      'in which the daemon hands the freed heap and wholly free mappings back (it does once deletes '
      'have stopped for 100 ms); the RSS checks after deletes are taken then.' % (max(st) if st else 0, med(st) if st else 0))
    P('')
    P('`orig/compr` = orig_data_size ÷ compr_data_size, `orig/mem` = orig_data_size ÷ mem_used_total, '
      'both after the job; peak RSS = the daemon\'s VmHWM during the job (reset before it); CPU = the '
      'daemon\'s utime+stime during the job' + (', beside passthrough_ll\'s for the same job.' if len(fuse) == 2 else '.'))
    P('')
    P('| data | jobs | job | writes | orig/compr | orig/mem | mem_used | peak RSS | zbudfs CPU | zbudfs CPU s/GiB |'
      + (' passthrough_ll CPU s/GiB |' if len(fuse) == 2 else ''))
    P('|---|---|---|---|---:|---:|---:|---:|---:|---:|' + ('---:|' if len(fuse) == 2 else ''))
    for (d, nj) in GROUPS:
        for job in JOBS:
            k = (d, nj, job, 'zbudfs')
            a = agg.get(k)
            if not a or not a['runs']:
                continue
            def per_gib(t):
                xs = [x['cpu'] / (x['bytes'] / 2**30) for x in agg.get((d, nj, job, t), {'runs': []})['runs'] if x['bytes']]
                return '%.2f' % med(xs) if xs else 'n/a'
            r1 = med([x['orig'] / x['compr'] for x in a['runs'] if x.get('compr')])
            r2 = med([x['orig'] / x['mem'] for x in a['runs'] if x.get('mem')])
            P('| %s | %d | %s | %s | %s | %s | %.0f MiB | %.0f MiB | %.2f s | %s |%s' % (
                DNAME[d], nj, JNAME[job][0], JNAME[job][1], '%.2f' % r1 if r1 else 'n/a', '%.2f' % r2 if r2 else 'n/a',
                m(k, 'mem') / MiB, m(k, 'hwm') / MiB, m(k, 'cpu'), per_gib('zbudfs'),
                (' %s |' % per_gib('passthrough_ll')) if len(fuse) == 2 else ''))
    P('')

trees = {r['target']: r for r in recs if r['step'] == 'tree'}
P('### Copying a real tree: `cp -a %s TARGET/tree/ && sync -f TARGET/tree` (one run)' % M['tree'])
P('')
P('%.0f MiB in %d files (%d inodes)%s, read once beforehand so the source comes from the page cache. MiB/s = file '
  'bytes ÷ (cp + sync) seconds; then `rm -rf` of the copy and `sync -f`.%s'
  % (M['tree_bytes'] / MiB, M['tree_files'], M['tree_inodes'], '', (' ' + M['tree_note']) if M['tree_note'] else ''))
P('')
P('| target | cp + sync | MiB/s | rm -rf | notes |')
P('|---|---:|---:|---:|---|')
for t in TARGETS:
    r = trees.get(t)
    if not r or r.get('skipped'):
        P('| %s | n/a | n/a | n/a | %s |' % (TNAME[t], r['skipped'] if r else 'not run')); continue
    note = []
    if r['cp_rc']: note.append('cp exit status %d' % r['cp_rc'])
    if r.get('cpu_ticks') and t in fuse:
        note.append('daemon CPU %.1f s' % (r['cpu_ticks'] / M['clk_tck']))
    s, sb = r.get('stats'), r.get('stats_before')
    if t == 'zbudfs' and s:
        o = s['orig_data_size'] - (sb or {}).get('orig_data_size', 0)
        c = s['compr_data_size'] - (sb or {}).get('compr_data_size', 0)
        mu = s['mem_used_total'] - (sb or {}).get('mem_used_total', 0)
        note.append('orig/compr %.2f, orig/mem %.2f, mem_used %.0f MiB, huge_pages %d, same_pages %d, overflow_pages %d, peak RSS %.0f MiB'
                    % (o / c if c else 0, o / mu if mu else 0, s['mem_used_total'] / MiB, s['huge_pages'],
                       s['same_pages'], s['overflow_pages'], r['hwm_kb'] / 1024))
        ar = r['after_rm']
        if ar.get('stats'):
            note.append('after rm: mem_used %.0f MiB (reached %.1f s after rm returned), RSS %.0f MiB'
                        % (ar['stats']['mem_used_total'] / MiB, r.get('settle_s', 0), ar['rss_kb'] / 1024))
    P('| %s | %.1f s | %.0f | %.1f s | %s |' % (TNAME[t], r['seconds'], M['tree_bytes'] / MiB / r['seconds'],
                                             r['rm_seconds'], '; '.join(note)))
P('')

# zstd limit
def zparse(p):
    try:
        for line in open(p):
            g = re.search(r'\(\s*([\d.]+)\)\s+([\d.]+) MB/s\s+([\d.]+) MB/s', line)
            if g: return float(g.group(1)), float(g.group(2)) * 1e6 / MiB, float(g.group(3)) * 1e6 / MiB
    except OSError:
        pass
    return None
z1s, zalls, zratio = [], [], None
for run in range(1, M['runs'] + 1):
    z = zparse(os.path.join(res, 'zstd-r%d-1.txt' % run))
    if z: z1s.append(z)
    zn = [zparse(os.path.join(res, 'zstd-r%d-n%d.txt' % (run, i))) for i in range(1, M['nproc'] + 1)]
    if zn and all(zn):
        zalls.append(sum(x[1] for x in zn)); zratio = zn[0][0]
z1 = (None, med([x[1] for x in z1s]), med([x[2] for x in z1s])) if z1s else None
zall = med(zalls)
zsecs = M['zstd_secs']
P('### zstd on this machine')
P('')
if zall:
    P('`zstd -q -b%d -e%d -B4096 -i%d FILE` on 64 MiB of fio\'s 60 %%-compressible data (written by fio with the '
      'buffer options above), at the start of each run, medians%s; %d such processes at once (one per CPU): '
      '%.0f MiB/s compress in all (the sum of their figures; per run: %s; ratio %.2f) — the **zstd limit** for writes.'
      % (M['zstd_level'], M['zstd_level'], zsecs,
         (': one process alone %.0f MiB/s compress, %.0f MiB/s decompress' % (z1[1], z1[2])) if z1 else '',
         M['nproc'], zall, ', '.join('%.0f' % x for x in zalls), zratio))
else:
    P('zstd benchmark output unreadable (see zstd-*.txt in the results directory).')
P('')

# targets
lines = []
def verdict(name, have, need, unit, fmt='%.0f', higher=True):
    if have is None or need is None:
        lines.append('SKIPPED  %s: not measured' % name); return
    ok = have >= need if higher else have <= need
    if higher:
        how = ('%.0f %% to spare' % ((have / need - 1) * 100)) if ok else ('short by %.0f %%' % ((1 - have / need) * 100))
        rel = '≥'
    else:
        how = (('%s %s to spare' % (fmt % (need - have), unit)) if ok else ('over by %s %s' % (fmt % (have - need), unit)))
        rel = '≤'
    u = (' ' + unit) if unit else ''
    lines.append('%s %s: %s%s, need %s %s%s (%s)' % ('MET   ' if ok else 'MISSED', name, fmt % have, u, rel, fmt % need, u, how))
def v(d, nj, job, t, f): return m((d, nj, job, t), f)
if 'zbudfs' in TARGETS:
    hd, hn = ('c60', 2) if ('c60', 2) in GROUPS else GROUPS[-1]
    for job, label in (('seqwrite_buf', 'buffered'), ('seqwrite_dir', 'direct')):
        pt = v(hd, hn, job, 'passthrough_ll', 'mibs')
        need, why = None, ''
        if pt is not None:
            need, why = 0.8 * pt, '0.8× passthrough_ll (%.0f)' % pt
        if zall is not None and (need is None or 0.9 * zall < need):
            need, why = 0.9 * zall, '0.9× zstd limit (%.0f), lower than 0.8× passthrough_ll' % zall
        verdict('seq write 1M %s, %s, %d jobs vs %s' % (label, DNAME[hd], hn, why), v(hd, hn, job, 'zbudfs', 'mibs'), need, 'MiB/s')
    pt = v(hd, hn, 'seqread_dir', 'passthrough_ll', 'mibs')
    verdict('seq read 1M direct, %s, %d jobs vs 0.9× passthrough_ll' % (DNAME[hd], hn),
            v(hd, hn, 'seqread_dir', 'zbudfs', 'mibs'), 0.9 * pt if pt else None, 'MiB/s')
    for job in ('randread_dir', 'randwrite_dir'):
        pt = v(hd, hn, job, 'passthrough_ll', 'iops')
        verdict('%s direct, %s, %d jobs vs 0.9× passthrough_ll' % (JNAME[job][0], DNAME[hd], hn),
                v(hd, hn, job, 'zbudfs', 'iops'), 0.9 * pt if pt else None, 'IOPS')
    if ('c60', 1) in GROUPS and ('c60', 2) in GROUPS:
        for job, label in (('seqwrite_buf', 'buffered'), ('seqwrite_dir', 'direct')):
            a, b = v('c60', 2, job, 'zbudfs', 'mibs'), v('c60', 1, job, 'zbudfs', 'mibs')
            # How much of the machine one job already used while it wrote (fio's own CPU
            # share, and the daemon's CPU seconds over the seconds of I/O): 1.7x needs
            # that much to be left idle.
            fio1, cpu1 = v('c60', 1, job, 'zbudfs', 'fio_cpus'), v('c60', 1, job, 'zbudfs', 'cpu')
            bytes1 = v('c60', 1, job, 'zbudfs', 'bytes')
            secs1 = bytes1 / MiB / b if b and bytes1 else None
            room = (('; with 1 job fio used %.2f of the %d CPUs and the daemon %.2f'
                     % (fio1, M['nproc'], cpu1 / secs1)) if fio1 is not None and cpu1 and secs1 else '')
            verdict('seq write %s, %s: 2 jobs vs 1 job (%s vs %s MiB/s%s)' % (label, DNAME['c60'],
                    '%.0f' % a if a else 'n/a', '%.0f' % b if b else 'n/a', room),
                    a / b if a and b else None, 1.7, '×', '%.2f')
    dens = [x['orig'] / x['mem'] for (d, nj, job, t), a in agg.items() if t == 'zbudfs' and d == 'c60'
            and job == 'seqwrite_buf' for x in a['runs'] if x.get('mem')]
    verdict('density orig_data_size/mem_used_total, %s, after the buffered seq write' % DNAME['c60'],
            med(dens), 1.9, '', '%.2f')
    # RSS: peak during each fresh write and the tree copy vs mem_used at its end; RSS after rm
    checks = []
    for (d, nj, job, t), a in agg.items():
        if t == 'zbudfs' and job in ('seqwrite_buf', 'seqwrite_dir'):
            for x in a['runs']:
                if x.get('mem_before') is not None:
                    checks.append(('RSS before %s, %s, %d job%s (previous files deleted and freed)' % (job, DNAME[d], nj, '' if nj == 1 else 's'),
                                   x['rss_before'], x['mem_before']))
                if x.get('mem') is not None:
                    checks.append(('peak RSS during %s, %s, %d job%s' % (job, DNAME[d], nj, '' if nj == 1 else 's'), x['hwm'], x['mem']))
    r = trees.get('zbudfs')
    if r and r.get('stats'):
        checks.append(('peak RSS during the tree copy', r['hwm_kb'] * 1024, r['stats']['mem_used_total']))
        if r['after_rm'].get('stats'):
            checks.append(('RSS after rm -rf of the tree', r['after_rm']['rss_kb'] * 1024, r['after_rm']['stats']['mem_used_total']))
    if checks:
        allow = lambda c: c[2] * 1.03 + 32 * MiB
        worst = max(checks, key=lambda c: c[1] - allow(c))
        verdict('daemon RSS vs mem_used_total + 3 %% + 32 MiB, worst of %d checks: %s (mem_used %.0f MiB)'
                % (len(checks), worst[0], worst[2] / MiB), worst[1] / MiB, allow(worst) / MiB, 'MiB', '%.0f', higher=False)
        byname = {}
        for c in checks:
            if c[0] not in byname or c[1] - allow(c) > byname[c[0]][1] - allow(byname[c[0]]):
                byname[c[0]] = c
        for c in sorted(byname.values(), key=lambda c: c[0]):
            lines.append('         %s: RSS %.0f MiB, mem_used %.0f MiB, allowed %.0f MiB' % (c[0], c[1] / MiB, c[2] / MiB, allow(c) / MiB))
P('### Issue 6 targets (zbudfs, medians)')
P('')
P('```')
for l in lines: P(l)
P('```')
P('')
P('<details><summary>fio command lines (TARGET = the mount point or the tmpfs/ext4 directory)</summary>')
P('')
P('```')
for c in cmds:
    P('# %s, %s job(s), %s' % (DNAME[c[0]], c[1], c[2]))
    P(c[3])
P('```')
P('</details>')
P('')
open(os.path.join(res, 'report.md'), 'w').write('\n'.join(out))
open(os.path.join(res, 'targets.txt'), 'w').write('\n'.join(lines) + '\n')

# chart data
DSHORT = {'c60': '60% compr.', 'rand': 'incompr.'}
def dat(name, rows):
    with open(os.path.join(res, name), 'w') as f:
        f.write('label ' + ' '.join('"%s"' % TNAME[t] for t in TARGETS) + '\n')
        for lab, vals in rows:
            f.write('"%s" ' % lab + ' '.join(('%.4g' % x) if x else '1e-9' for x in vals) + '\n')
seq_rows, rand_rows = [], []
for (d, nj) in GROUPS:
    for job in JOBS:
        if not has(d, nj, job): continue
        jn = '%d job%s' % (nj, '' if nj == 1 else 's')
        if job.startswith('seq'):
            seq_rows.append(('%s\\n%s\\n%s\\n%s' % (JNAME[job][0].replace(' 1M', ''), JNAME[job][1].split(',')[0], DSHORT[d], jn),
                             [m((d, nj, job, t), 'mibs') for t in TARGETS]))
        else:
            rand_rows.append(('%s\\n%s\\n%s' % (JNAME[job][0].replace(' 4k', ''), DSHORT[d], jn),
                              [(m((d, nj, job, t), 'iops') or 0) / 1000 or None for t in TARGETS]))
dat('chart-seq.dat', seq_rows)
dat('chart-rand.dat', rand_rows)
tree_rows = [('cp -a', [M['tree_bytes'] / MiB / trees[t]['seconds'] if t in trees and 'seconds' in trees[t] else None
                        for t in TARGETS])]
dat('chart-tree.dat', tree_rows)
n = len(TARGETS)
colors = {'tmpfs': '#9e9e9e', 'zram': '#e69f00', 'passthrough_ll': '#56b4e9', 'zbudfs': '#d55e00'}
cols = ' '.join(colors[t] for t in TARGETS)
def yrange(rows):
    xs = [x for _, vals in rows for x in vals if x]
    if not xs: return 'set yrange [1:10]\n'
    import math
    return 'set yrange [%g:%g]\n' % (10 ** math.floor(math.log10(min(xs) / 1.5)), max(xs) * 6)
def panel(datfile, fmt, rows):
    # bars of a clustered histogram (gap 1) sit at x = row + (i - (n-1)/2) / (n+1); a missing
    # value is written as 1e-9, below the (log) y range, so that the clusters keep their order
    bars, labels = [], []
    for i, t in enumerate(TARGETS):
        col = i + 2
        bars.append('"%s/%s" using %d:xtic(1) title columnheader(%d) lc rgb "%s"' % (res, datfile, col, col, colors[t]))
        if any(vals[i] for _, vals in rows):
            labels.append('"%s/%s" using ($0 + (%d - %g) / %d.0):(column(%d) > 1e-6 ? column(%d) * 1.08 : NaN):'
                          '(sprintf("%s", column(%d))) with labels rotate by 90 left font ",8" notitle'
                          % (res, datfile, i, (n - 1) / 2, n + 1, col, col, fmt, col))
    return 'plot ' + ', \\\n     '.join(bars + labels) + '\n'
with open(os.path.join(res, 'chart.gp'), 'w') as f:
    f.write('''set terminal pngcairo size 1600,1100 font "DejaVu Sans,10"
set termoption noenhanced
set output "%s/bench.png"
set datafile missing "-"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set boxwidth 1
set key top left horizontal
set key autotitle columnheader
set grid ytics
set logscale y
set lmargin 10
set bmargin 5
set multiplot title "zbudfs bench: %s run, %s, %d CPUs, kernel %s, median of %d run(s); log scales"
set origin 0,0.5
set size 1,0.47
set ylabel "MiB/s"
set title "Sequential 1M (reads direct; writes buffered with end_fsync, or direct)"
''' % (res, M['mode'], M['date'], M['nproc'], M['kernel'], M['runs']))
    f.write(yrange(seq_rows) + panel('chart-seq.dat', '%.0f', seq_rows))
    f.write('''set origin 0,0
set size 0.72,0.5
set ylabel "kIOPS"
set title "Random 4k, direct, psync"
''')
    f.write(yrange(rand_rows) + panel('chart-rand.dat', '%.0fk', rand_rows))
    f.write('''set origin 0.72,0
set size 0.28,0.5
set ylabel "MiB/s"
set title "cp -a %s + sync"
''' % M['tree'])
    f.write('set key top left vertical\n' + yrange(tree_rows) + panel('chart-tree.dat', '%.0f', tree_rows))
    f.write('unset multiplot\n')
print('\n'.join(lines))
PYEOF
python3 "$res/report.py" "$res" >/dev/null || die "report failed"
gnuplot "$res/chart.gp" 2>"$res/gnuplot.err" || log "WARNING: gnuplot failed: $(head -3 "$res/gnuplot.err")"

echo
cat "$res/report.md"
echo
log "results: $res (report.md, bench.png, fio/*.json, records.jsonl)"
if ((docs)); then
  [[ -f docs/BENCHMARKS.md ]] || printf '# zbudfs benchmarks\n' >docs/BENCHMARKS.md
  { printf '\n'; cat "$res/report.md"; } >>docs/BENCHMARKS.md
  [[ -f $res/bench.png ]] && cp "$res/bench.png" docs/bench.png
  log "appended to docs/BENCHMARKS.md; chart in docs/bench.png"
fi
echo
echo "Issue 6 targets:"
cat "$res/targets.txt"
((failed == 0)) || die "some jobs failed or a daemon died: see above"

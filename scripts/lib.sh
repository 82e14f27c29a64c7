# Shell helpers shared by scripts/*.sh and tests/integration/lib.sh (sourced, not run).
# Functions only, prefixed zb_ (zb__ for internal ones); no global state, nothing runs when
# sourced.
# shellcheck shell=bash

# zb_wait_mount DIR PID [TRIES] [INTERVAL]: waits until DIR is a mountpoint while process PID
# (the daemon that mounts it) is alive, polling TRIES times (default 100) every INTERVAL
# seconds (default 0.05). Returns 0 once mounted, 1 if PID exited first (not reaped: the
# caller waits for its status), 2 on timeout.
zb_wait_mount() {
  local dir=$1 pid=$2 tries=${3:-100} interval=${4:-0.05} n
  for ((n = 0; n < tries; n++)); do
    mountpoint -q "$dir" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep "$interval"
  done
  mountpoint -q "$dir" && return 0
  return 2
}

# zb_readback_sha256 FILE: sha256 of FILE read with O_DIRECT, so from the file system's store
# and not from the page cache. Fails (status of dd) if the read fails.
zb_readback_sha256() {
  local out
  out=$(set -o pipefail; dd if="$1" bs=1M iflag=direct status=none | sha256sum) || return
  echo "${out%% *}"
}

# zb_fio_summary FIO_JSON: "MiB/s IOPS p99us" of the first job (writes if it wrote, else
# reads), through scripts/benchlib.py.
zb_fio_summary() {
  python3 "$(dirname "${BASH_SOURCE[0]}")/benchlib.py" summary "$1"
}

# zb_duration SECONDS: "45s", "3m07s" or "1h02m05s".
zb_duration() {
  local s=$1
  if ((s >= 3600)); then printf '%dh%02dm%02ds' $((s / 3600)) $((s % 3600 / 60)) $((s % 60))
  elif ((s >= 60)); then printf '%dm%02ds' $((s / 60)) $((s % 60))
  else printf '%ds' "$s"; fi
}

# zb_progress LABEL LOG CMD [ARGS...]: runs CMD with its output (stdout and stderr) going to
# LOG only, and prints a line "  LABEL: NN% (elapsed)" each time the progress it reports
# passes another ZB_PROGRESS_STEP percent (default 10): cmake/make "[ 42%]" lines, ninja
# "[12/345]" lines and ctest "12/345 Test #12:" lines count, others are only logged. Then
# "  LABEL: done in T" or "  LABEL: FAILED after T (exit N), log: LOG". Returns CMD's status.
zb_progress() {
  local label=$1 log=$2 start=$SECONDS rc=0
  shift 2
  # The braces make this shell start the process substitution, so that $! is its PID and
  # the wait lets it print its last line before ours.
  { "$@"; } > >(tee "$log" | zb__progress_lines "$label" "$start" "${ZB_PROGRESS_STEP:-10}") 2>&1 || rc=$?
  wait $! 2>/dev/null || true
  if ((rc == 0)); then
    printf '  %s: done in %s\n' "$label" "$(zb_duration $((SECONDS - start)))"
  else
    printf '  %s: FAILED after %s (exit %d), log: %s\n' "$label" "$(zb_duration $((SECONDS - start)))" "$rc" "$log"
  fi
  return "$rc"
}

# zb_build LABEL LOG CMD [ARGS...]: zb_progress for a compile; on failure also prints the last
# 60 lines of LOG (where the compiler's errors are).
zb_build() {
  local rc=0
  zb_progress "$@" || rc=$?
  if ((rc)); then
    printf -- '--- last 60 lines of %s:\n' "$2"
    tail -n 60 "$2"
    printf -- '---\n'
  fi
  return "$rc"
}

# The filter behind zb_progress: reads output lines on stdin, prints progress lines.
zb__progress_lines() {
  local label=$1 start=$2 step=$3 line p last=-1
  ((step > 0)) || step=10
  while IFS= read -r line; do
    if [[ $line =~ ^\[\ *([0-9]+)%\] ]]; then
      p=$((10#${BASH_REMATCH[1]}))
    elif [[ $line =~ ^\[([0-9]+)/([0-9]+)\]\  || $line =~ ^\ *([0-9]+)/([0-9]+)\ +Test\ +# ]]; then
      ((10#${BASH_REMATCH[2]} > 0)) || continue
      p=$((100 * 10#${BASH_REMATCH[1]} / 10#${BASH_REMATCH[2]}))
    else
      continue
    fi
    ((p / step > last)) || continue
    last=$((p / step))
    printf '  %s: %3d%% (%s)\n' "$label" "$p" "$(zb_duration $((SECONDS - start)))"
  done
}

# For benchmark scripts that mount zbudfs themselves: with $work (a private directory) and
# $mnt (a mountpoint in it) set, zb_bench_cleanup (the EXIT trap) unmounts, reaps the daemon
# and removes $work; zb_bench_mount ARGS... mounts build/zbudfs (or $ZBUDFS_BIN) -f ARGS on
# $mnt (its PID in $zpid; the script exits when it does not mount); zb_bench_umount unmounts
# and reaps it; zb_bench_stat NAME is one field of `zbudfsctl stats`.
zb_bench_cleanup() {
  set +e
  if [[ -n ${zpid:-} ]]; then
    mountpoint -q "$mnt" && fusermount3 -u "$mnt"
    wait "$zpid" 2>/dev/null
  fi
  rm -rf "$work"
}
zb_bench_mount() {
  "${ZBUDFS_BIN:-build/zbudfs}" -f "$@" "$mnt" 2>>"$work/daemon.log" &
  zpid=$!
  zb_wait_mount "$mnt" "$zpid" && return 0
  echo "zbudfs did not mount (log: $work/daemon.log)" >&2
  exit 1
}
zb_bench_umount() {
  fusermount3 -u "$mnt"
  wait "$zpid" || true
  zpid=
}
zb_bench_stat() { build/zbudfsctl stats "$mnt" | awk -v n="$1" '$1 == n { print $2 }'; }

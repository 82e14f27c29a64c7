# Shell helpers shared by scripts/*.sh and tests/integration/lib.sh (sourced, not run).
# Functions only, prefixed zb_; no global state, nothing runs when sourced.

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

# Shared helpers for the zbudfs integration tests; sourced by every tests/integration/*.sh.
#
# Binaries: $ZBUDFS_BIN and $ZBUDFSCTL_BIN, by default build/zbudfs and build/zbudfsctl of
# the repository. Exit 77 (skip) only when /dev/fuse is missing. Each test mounts on a fresh
# mktemp -d directory with the daemon in the foreground (-f, in the background of the
# shell), so that its exit status can be checked; the EXIT trap unmounts and reaps it.
# Reporting (fail, note, check): notes_lib.sh.
set -euo pipefail

REPO_ROOT=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel 2>/dev/null ||
  (cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd))
ZBUDFS_BIN=${ZBUDFS_BIN:-$REPO_ROOT/build/zbudfs}
ZBUDFSCTL_BIN=${ZBUDFSCTL_BIN:-$REPO_ROOT/build/zbudfsctl}
# The Python probes import probe.py from here.
export PYTHONPATH=$REPO_ROOT/tests/integration${PYTHONPATH:+:$PYTHONPATH}
# zb_wait_mount, zb_readback_sha256: the helpers the benchmark scripts share.
source "$REPO_ROOT/scripts/lib.sh"
source "$REPO_ROOT/tests/integration/notes_lib.sh"

if [[ ! -e /dev/fuse ]]; then
  echo "SKIP [$TEST_NAME]: /dev/fuse is missing"
  exit 77
fi
[[ -x $ZBUDFS_BIN ]] || fail "no daemon at $ZBUDFS_BIN (build it, or set ZBUDFS_BIN)"
[[ -x $ZBUDFSCTL_BIN ]] || fail "no control tool at $ZBUDFSCTL_BIN (or set ZBUDFSCTL_BIN)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/zbudfs-$TEST_NAME.XXXXXX")
chmod 755 "$WORK"
MNT=$WORK/mnt
mkdir "$MNT"
ZPID=

cleanup() {
  local rc=$?
  set +e
  if [[ -n $ZPID ]]; then
    mountpoint -q "$MNT" && { fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"; }
    for _ in $(seq 50); do kill -0 "$ZPID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$ZPID" 2>/dev/null
    wait "$ZPID" 2>/dev/null
  fi
  for m in "$WORK"/*; do mountpoint -q "$m" 2>/dev/null && umount -l "$m"; done
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

# mount_zbudfs [daemon args...]: mounts on $MNT in the foreground-in-background mode.
mount_zbudfs() {
  mountpoint -q "$MNT" && fail "$MNT is already a mountpoint before mounting"
  "$ZBUDFS_BIN" -f "$@" "$MNT" 2>>"$WORK/daemon.log" &
  ZPID=$!
  local rc=0
  zb_wait_mount "$MNT" "$ZPID" 100 0.05 || rc=$?
  if ((rc == 1)); then
    wait "$ZPID" || true
    ZPID=
    fail "zbudfs $* exited before mounting"
  fi
  ((rc == 0)) || fail "zbudfs $* did not mount within 5 s"
}

# require_mounted: the test must still run on zbudfs, not on the directory underneath.
require_mounted() {
  mountpoint -q "$MNT" || fail "$MNT is no longer mounted (daemon died?)"
  kill -0 "$ZPID" 2>/dev/null || fail "daemon $ZPID is gone"
}

# unmount_zbudfs: unmounts, waits for the daemon and requires exit status 0.
unmount_zbudfs() {
  require_mounted
  fusermount3 -u "$MNT" || fail "fusermount3 -u $MNT failed"
  local rc=0
  wait "$ZPID" || rc=$?
  ZPID=
  [[ $rc == 0 ]] || fail "daemon exited with status $rc after unmount"
  mountpoint -q "$MNT" && fail "$MNT still mounted after unmount"
  return 0
}

# readback_sha256 FILE: sha256 of FILE read with O_DIRECT (from the daemon's store, not the
# page cache); fails the test if the read fails.
readback_sha256() { zb_readback_sha256 "$1" || fail "O_DIRECT read of $1 failed"; }

# stat_value NAME: one field of `zbudfsctl stats`.
stat_value() { "$ZBUDFSCTL_BIN" stats "$MNT" | awk -v n="$1" '$1 == n { print $2 }'; }

# stat_is NAME VALUE: whether that field of `zbudfsctl stats` is VALUE.
stat_is() { [[ $(stat_value "$1") == "$2" ]]; }

# wait_until COMMAND...: runs COMMAND every 0.1 s until it succeeds, 100 times at most, and
# returns its last status. For events the daemon is sure to see (the kernel's FORGET after
# unlink(2) returns, the heap trim once deletes stop): it waits, it does not time anything.
wait_until() {
  local _
  for _ in $(seq 99); do
    "$@" && return 0
    sleep 0.1
  done
  "$@"
}

# make_tmpfs DIR: a tmpfs to compare behaviour with.
make_tmpfs() {
  mkdir -p "$1"
  mount -t tmpfs -o size=256M tmpfs "$1" || fail "cannot mount a reference tmpfs on $1"
}

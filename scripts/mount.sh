#!/usr/bin/env bash
# Mounts a compressed RAM disk with default options, installing and building what is missing.
# Usage: scripts/mount.sh [MOUNTPOINT] [-o OPTIONS]     (default MOUNTPOINT: /mnt/zbudfs)
set -euo pipefail
cd "$(dirname "$0")/.."

mnt=${1:-/mnt/zbudfs}
shift || true

scripts/deps.sh
echo "zbudfs: building (Release, incremental)..."
scripts/build.sh release --target zbudfs zbudfsctl >/dev/null

mkdir -p "$mnt"
if mountpoint -q "$mnt"; then
  echo "zbudfs: $mnt is already a mountpoint; unmount it first: fusermount3 -u $mnt" >&2
  exit 1
fi
build/zbudfs "$mnt" "$@"
echo "zbudfs mounted at $mnt"
echo "  statistics: $(pwd)/build/zbudfsctl stats $mnt"
echo "  unmount:    fusermount3 -u $mnt"

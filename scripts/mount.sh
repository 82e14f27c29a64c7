#!/usr/bin/env bash
# Mounts a compressed RAM disk with default options, installing and building what is missing.
# Usage: scripts/mount.sh [MOUNTPOINT] [-o OPTIONS]     (default MOUNTPOINT: /mnt/zbudfs)
set -euo pipefail
cd "$(dirname "$0")/.."

mnt=${1:-/mnt/zbudfs}
shift || true

source scripts/lib.sh

scripts/deps.sh
echo "zbudfs: building Release (about 2.5 minutes the first time on 2 cores, then only what changed)"
mkdir -p build
if ! zb_build "build" build/mount-build.log scripts/build.sh release --target zbudfs zbudfsctl; then
  echo "zbudfs: the build failed (see above)" >&2
  exit 1
fi

mkdir -p "$mnt"
if mountpoint -q "$mnt"; then
  echo "zbudfs: $mnt is already a mountpoint; unmount it first: fusermount3 -u $mnt" >&2
  exit 1
fi
build/zbudfs "$mnt" "$@"
echo "zbudfs mounted at $mnt"
echo "  statistics: $(pwd)/build/zbudfsctl stats $mnt"
echo "  unmount:    fusermount3 -u $mnt"

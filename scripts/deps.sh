#!/usr/bin/env bash
# Installs the Debian packages zbudfs needs to build, mount and test, if any are missing.
# Usage: scripts/deps.sh            (as root on Debian/Ubuntu)
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libfuse3-dev fuse3 libzstd-dev libxxhash-dev libboost-filesystem-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  fio attr python3 util-linux procps passwd
  clang libclang-rt-14-dev stress-ng e2fsprogs
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "zbudfs: installing missing packages: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "zbudfs: run as root (or install them yourself): apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

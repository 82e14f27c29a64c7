#!/usr/bin/env bash
# Installs the Debian packages zbudfs needs to build, mount, test and benchmark, if any are
# missing. With everything installed it only asks dpkg (well under a second) and prints
# nothing; scripts/mount.sh, scripts/test.sh and scripts/bench.sh all run it first.
# Usage: scripts/deps.sh            (as root on Debian/Ubuntu)
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config git
  libfuse3-dev fuse3 libzstd-dev libxxhash-dev libboost-filesystem-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  # tests
  fio attr python3 util-linux procps passwd coreutils man-db groff-base
  clang libclang-rt-14-dev stress-ng e2fsprogs
  # benchmarks (scripts/bench.sh): the chart, zstd's own speed, zram (modprobe)
  gnuplot-nox zstd kmod gcc
)

# One dpkg-query for all of them; packages dpkg has never heard of are simply not listed.
declare -A installed=()
while read -r name status; do
  if [[ $status == installed ]]; then installed[${name%%:*}]=1; fi
done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" 2>/dev/null || true)

missing=()
for p in "${packages[@]}"; do
  [[ -n ${installed[$p]:-} ]] || missing+=("$p")
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

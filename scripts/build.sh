#!/usr/bin/env bash
# Configures and builds one flavour of zbudfs.
# Usage: scripts/build.sh [release|asan|tsan|fuzz|tsa] [cmake --build args...]
#   release -> build/       (Release, everything)
#   asan    -> build-asan/  (AddressSanitizer + UBSan, unit tests)
#   tsan    -> build-tsan/  (ThreadSanitizer, unit tests)
#   fuzz    -> build-fuzz/  (clang, libFuzzer + ASan + UBSan: tests/fuzz/page_store_fuzz)
#   tsa     -> build-tsa/   (clang, -Wthread-safety: the lock annotations; libraries only)
set -euo pipefail
cd "$(dirname "$0")/.."

flavour=${1:-release}
shift || true
jobs=$(nproc)
case "$flavour" in
  release) dir=build;      args=(-DCMAKE_BUILD_TYPE=Release) ;;
  asan)    dir=build-asan; args=(-DCMAKE_BUILD_TYPE=Debug -DZBUDFS_SANITIZE=address -DZBUDFS_BUILD_BENCH=OFF) ;;
  tsan)    dir=build-tsan; args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DZBUDFS_SANITIZE=thread -DZBUDFS_BUILD_BENCH=OFF) ;;
  fuzz)    dir=build-fuzz; args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DZBUDFS_SANITIZE=address -DZBUDFS_BUILD_FUZZ=ON
                             -DZBUDFS_BUILD_BENCH=OFF -DCMAKE_CXX_COMPILER=clang++) ;;
  tsa)     dir=build-tsa;  args=(-DCMAKE_BUILD_TYPE=Debug -DZBUDFS_THREAD_SAFETY=ON -DZBUDFS_BUILD_TESTS=OFF
                             -DZBUDFS_BUILD_BENCH=OFF -DCMAKE_CXX_COMPILER=clang++) ;;
  *) echo "usage: $0 [release|asan|tsan|fuzz|tsa]" >&2; exit 2 ;;
esac

cmake -S . -B "$dir" "${args[@]}" >/dev/null
cmake --build "$dir" -j "$jobs" "$@"

#!/usr/bin/env bash
# Runs the whole zbudfs test suite, installing and building what is missing:
#   1. the libraries built with clang -Wthread-safety -Werror (the lock annotations);
#   2. the unit tests (Release), through ctest;
#   3. the unit tests under AddressSanitizer + UBSan;
#   4. the concurrency tests (*Concurrent*) under ThreadSanitizer, and a short run of the
#      daemon built with ThreadSanitizer (fio --verify and a namespace stress on a mount);
#   5. the libFuzzer corpus tests/fuzz/corpus through the page store fuzz target;
#   6. the integration scripts tests/integration/*.sh on real mounts (exit 77 = skipped).
# Exit status is non-zero on any failure; the last line is "N passed, N failed".
# Usage: scripts/test.sh [--quick]   (--quick: lock annotations, Release unit tests and
#                                    integration only)
set -uo pipefail
cd "$(dirname "$0")/.."

quick=0
[[ ${1:-} == --quick ]] && quick=1

passed=0
failed=0
skipped=0
failures=()

step() { printf '\n=== %s ===\n' "$*"; }

# Runs ctest in a build dir and adds its counts; a build failure counts as one failure.
run_ctest() {
  local name=$1 dir=$2
  shift 2
  local out
  out=$(mktemp)
  (cd "$dir" && ctest --output-on-failure -j "$(nproc)" --timeout 900 "$@") 2>&1 | tee "$out" | grep -E '(\*\*\*|Failed|tests passed|The following tests)' || true
  local line p f total
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$out" | tail -1)
  if [[ -z $line ]]; then
    echo "$name: ctest ran no test"
    failed=$((failed + 1)); failures+=("$name: no tests ran")
  else
    total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
    f=$(sed -E 's/.*tests passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
    p=$((total - f))
    passed=$((passed + p)); failed=$((failed + f))
    ((f)) && failures+=("$name: $f unit tests failed")
    echo "$name: $p passed, $f failed"
  fi
  rm -f "$out"
}

# Runs one command as one test: exit 0 passes, 77 is skipped, anything else fails.
run_script() {
  local name=$1
  shift
  echo "--- $name"
  local start=$SECONDS rc=0
  timeout --kill-after=10 600 "$@" || rc=$?
  if ((rc == 0)); then
    passed=$((passed + 1)); echo "PASS $name ($((SECONDS - start)) s)"
  elif ((rc == 77)); then
    skipped=$((skipped + 1)); echo "SKIP $name"
  else
    failed=$((failed + 1)); failures+=("$name (exit $rc)"); echo "FAIL $name (exit $rc)"
  fi
}

build_or_fail() {
  local name=$1
  shift
  local log
  log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then
    tail -n 60 "$log"
    rm -f "$log"
    echo "$name: BUILD FAILED"
    failed=$((failed + 1)); failures+=("$name: build failed")
    return 1
  fi
  rm -f "$log"
}

step "dependencies"
scripts/deps.sh || { echo "0 passed, 1 failed"; exit 1; }

step "lock annotations (clang -Wthread-safety)"
# A warning is an error here (-Werror): an access without its lock fails like a build.
build_or_fail "thread safety" scripts/build.sh tsa --target zbudfs_store zbudfs_fs

step "unit tests (Release)"
if build_or_fail release scripts/build.sh release; then
  run_ctest release build
fi

if ((!quick)); then
  step "unit tests (AddressSanitizer + UBSan)"
  if build_or_fail asan scripts/build.sh asan --target store_tests fs_tests exerciser; then
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      run_ctest asan build-asan
  fi

  step "concurrency tests (ThreadSanitizer)"
  if build_or_fail tsan scripts/build.sh tsan --target store_tests zbudfs zbudfsctl; then
    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 run_ctest tsan build-tsan -R Concurrent
    for t in tests/integration/fio_verify.sh tests/integration/namespace_stress.sh; do
      run_script "tsan daemon: $t" env ZBUDFS_BIN="$PWD/build-tsan/zbudfs" \
        ZBUDFSCTL_BIN="$PWD/build-tsan/zbudfsctl" TSAN_OPTIONS=halt_on_error=1:exitcode=66 \
        bash "$t"
    done
  fi

  step "fuzz corpus (libFuzzer, ASan + UBSan)"
  if build_or_fail fuzz scripts/build.sh fuzz --target page_store_fuzz; then
    run_script "fuzz corpus" build-fuzz/tests/page_store_fuzz -runs=0 tests/fuzz/corpus
  fi
fi

step "integration tests"
for t in tests/integration/*.sh; do
  [[ $(basename "$t") == lib.sh ]] && continue
  run_script "$t" env ZBUDFS_BIN="$PWD/build/zbudfs" ZBUDFSCTL_BIN="$PWD/build/zbudfsctl" bash "$t"
done

step "summary"
for f in "${failures[@]}"; do echo "FAILED: $f"; done
((skipped)) && echo "($skipped scripts skipped: no /dev/fuse)"
echo "$passed passed, $failed failed"
((failed == 0))

#!/usr/bin/env bash
# Runs the whole zbudfs test suite, installing and building what is missing. Its steps, in
# order (the names are what --only takes):
#   tsa          the libraries built with clang -Wthread-safety -Werror (the lock annotations);
#   unit         the unit tests (Release), through ctest;
#   asan         the unit tests under AddressSanitizer + UBSan;
#   tsan         the concurrency tests (*Concurrent*) under ThreadSanitizer, and a short run
#                of the daemon built with ThreadSanitizer (fio --verify and a namespace
#                stress on a mount);
#   fuzz         the libFuzzer corpus tests/fuzz/corpus through the page store fuzz target;
#   integration  the integration scripts tests/integration/*.sh on real mounts (exit 77 =
#                skipped); builds Release first when the unit step does not run.
# Installing missing packages (scripts/deps.sh) always comes first.
# Takes about 30 minutes on a busy 2-core machine when it compiles everything (compiling is
# about 24 of them) and about 15 when the build directories are already built.
# Every step prints its start time and how long it took, compiles and ctest print a
# progress line every 10 %, a failure prints the tail of its output, and the run ends with
# a table of every step's time. Full output of every step: build/test-logs/.
# Exit status is non-zero on any failure; the last line is "N passed, N failed".
#
# Usage: scripts/test.sh [--quick | --only STEP[,STEP...]]
#   --quick       only tsa, unit and integration (no sanitizer or fuzz builds)
#   --only STEPS  only these steps (comma-separated or repeated), e.g. --only unit,asan
#   -h, --help    this text
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
source scripts/lib.sh

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

all_steps=(tsa unit asan tsan fuzz integration)
quick=0
only=()
while (($#)); do
  case $1 in
    --quick) quick=1 ;;
    --only|--only=*)
      if [[ $1 == --only=* ]]; then list=${1#--only=}; else list=${2:-}; shift; fi
      [[ -n $list ]] || { echo "test.sh: --only needs step names: ${all_steps[*]}" >&2; exit 2; }
      IFS=, read -r -a names <<<"$list"
      only+=("${names[@]}") ;;
    -h|--help) usage; exit 0 ;;
    *) echo "test.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if ((quick)) && ((${#only[@]})); then
  echo "test.sh: --quick and --only do not go together" >&2; exit 2
fi
((quick)) && only=(tsa unit integration)
declare -A want=()
if ((${#only[@]})); then
  for s in "${only[@]}"; do
    [[ " ${all_steps[*]} " == *" $s "* ]] || { echo "test.sh: unknown step '$s'; steps: ${all_steps[*]}" >&2; exit 2; }
    want[$s]=1
  done
else
  for s in "${all_steps[@]}"; do want[$s]=1; done
fi
wants() { [[ -n ${want[$1]:-} ]]; }

logs=$PWD/build/test-logs
mkdir -p "$logs"
rm -f "$logs"/*.log

passed=0
failed=0
skipped=0
failures=()

# ---------------------------------------------------------------- steps and their times
run_start=$SECONDS
rows=()          # "title<TAB>seconds<TAB>result" of every step, for the summary table
step_title="" step_start=0 step_passed=0 step_failed=0 step_skipped=0

# step_begin TITLE: prints the step's heading with its start time.
step_begin() {
  step_title=$1 step_start=$SECONDS step_passed=$passed step_failed=$failed step_skipped=$skipped
  printf '\n=== %s (started %s) ===\n' "$1" "$(date +%H:%M:%S)"
}

# step_end [RESULT]: prints and records the step's time; RESULT defaults to the counts of
# tests the step passed, failed and skipped.
step_end() {
  local secs=$((SECONDS - step_start)) result=${1:-} p f s
  if [[ -z $result ]]; then
    p=$((passed - step_passed)) f=$((failed - step_failed)) s=$((skipped - step_skipped))
    result="$p passed, $f failed"
    ((s)) && result+=", $s skipped"
  fi
  printf '=== %s: %s, %s\n' "$step_title" "$result" "$(zb_duration "$secs")"
  rows+=("$step_title"$'\t'"$secs"$'\t'"$result")
}

# build_step TITLE LOGNAME FLAVOUR [cmake --build args...]: one compile, as a step of its own.
# A build failure counts as one failure. Returns non-zero if the build failed.
build_step() {
  local title=$1 name=$2
  shift 2
  step_begin "build: $title"
  if zb_build "build $name" "$logs/build-$name.log" scripts/build.sh "$@"; then
    step_end "built"
  else
    failed=$((failed + 1)); failures+=("$name: build failed")
    step_end "BUILD FAILED"
    return 1
  fi
}

# ---------------------------------------------------------------- ctest
# ctest_verdicts LOG: what ctest said about its failures, from its own lists: the output of
# every test in "The following tests FAILED:" (its last 60 lines), then the summary line and
# the lists of failed and not-run tests. Test names are never matched against words like
# "Failed": a passing test named ReadFailedPage is no failure.
ctest_verdicts() {
  awk '
    function flush(  i, from) {
      if (cur == "") return
      from = n > 60 ? n - 59 : 1
      printf "--- output of %s%s:\n", cur, (from > 1 ? sprintf(" (last 60 of %d lines)", n) : "")
      for (i = from; i <= n; i++) print buf[i]
      cur = ""; n = 0
    }
    NR == FNR {
      if ($0 ~ /^The following tests FAILED:/) { inlist = 1; next }
      if (inlist && $0 ~ /^[\t ]+[0-9]+ - /) {
        s = $0; sub(/^[\t ]+[0-9]+ - /, "", s); sub(/ \([^()]*\)$/, "", s); bad[s] = 1; next
      }
      inlist = 0
      next
    }
    /^ *[0-9]+\/[0-9]+ +Test +#[0-9]+: / || /^ *Start +[0-9]+: / || /^[0-9]+% tests passed/ { flush() }
    /^ *[0-9]+\/[0-9]+ +Test +#[0-9]+: / && ($4 in bad) { cur = $4 }
    cur != "" { buf[++n] = $0 }
    /^[0-9]+% tests passed/ { summary = 1 }
    summary && /^[0-9]+% tests passed|^The following tests|^[\t ]+[0-9]+ - / { print }
    END { flush() }
  ' "$1" "$1"
}

# run_ctest NAME DIR [ctest args...]: runs ctest in a build dir and adds its counts; ctest
# running no test counts as one failure.
run_ctest() {
  local name=$1 dir=$2
  shift 2
  local log=$logs/ctest-$name.log line p f total
  zb_progress "ctest $name" "$log" ctest --test-dir "$dir" --output-on-failure -j "$(nproc)" --timeout 900 "$@"
  ctest_verdicts "$log"
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)
  if [[ -z $line ]]; then
    echo "$name: ctest ran no test; last 60 lines of $log:"
    tail -n 60 "$log"
    failed=$((failed + 1)); failures+=("$name: no tests ran")
  else
    total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
    f=$(sed -E 's/.*tests passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
    p=$((total - f))
    passed=$((passed + p)); failed=$((failed + f))
    ((f)) && failures+=("$name: $f unit tests failed")
    echo "$name: $p passed, $f failed"
  fi
}

# run_script NAME CMD...: runs one command as one test: exit 0 passes, 77 is skipped,
# anything else fails. Its output goes to a log (a passing test prints nothing anyway;
# ZBUDFS_TEST_VERBOSE=1 shows it as it comes); a failure prints the log's last 60 lines, a
# skip its last line.
run_script() {
  local name=$1
  shift
  local log start=$SECONDS rc=0
  log=$logs/script-$(tr -c 'A-Za-z0-9_.-' '_' <<<"$name" | sed 's/_*$//').log
  echo "--- $name (started $(date +%H:%M:%S))"
  if [[ ${ZBUDFS_TEST_VERBOSE:-} == 1 ]]; then
    timeout --kill-after=10 600 "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
  else
    timeout --kill-after=10 600 "$@" >"$log" 2>&1 || rc=$?
  fi
  if ((rc == 0)); then
    passed=$((passed + 1)); echo "PASS $name ($((SECONDS - start)) s)"
  elif ((rc == 77)); then
    skipped=$((skipped + 1)); echo "SKIP $name: $(tail -n 1 "$log")"
  else
    failed=$((failed + 1)); failures+=("$name (exit $rc)")
    ((rc == 124 || rc == 137)) && echo "(timed out after 600 s)"
    echo "--- last 60 lines of $log:"
    tail -n 60 "$log"
    echo "FAIL $name (exit $rc, $((SECONDS - start)) s)"
  fi
}

# ---------------------------------------------------------------- the steps
step_begin "dependencies"
if ! scripts/deps.sh; then
  step_end "FAILED"
  echo "0 passed, 1 failed"
  exit 1
fi
step_end "ok"

if wants tsa; then
  # A warning is an error here (-Werror): an access without its lock fails like a build.
  build_step "lock annotations (clang -Wthread-safety)" tsa tsa --target zbudfs_store zbudfs_fs
fi

release_built=""   # "", then 1 (built) or 0 (failed)
if wants unit; then
  release_built=0
  if build_step "Release" release release; then
    release_built=1
    step_begin "unit tests (Release)"
    run_ctest release build
    step_end
  fi
fi

if wants asan; then
  if build_step "AddressSanitizer + UBSan" asan asan --target store_tests fs_tests exerciser; then
    step_begin "unit tests (AddressSanitizer + UBSan)"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      run_ctest asan build-asan
    step_end
  fi
fi

if wants tsan; then
  if build_step "ThreadSanitizer" tsan tsan --target store_tests zbudfs zbudfsctl; then
    step_begin "concurrency tests (ThreadSanitizer)"
    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 run_ctest tsan build-tsan -R Concurrent
    for t in tests/integration/fio_verify.sh tests/integration/namespace_stress.sh; do
      run_script "tsan daemon: $t" env ZBUDFS_BIN="$PWD/build-tsan/zbudfs" \
        ZBUDFSCTL_BIN="$PWD/build-tsan/zbudfsctl" TSAN_OPTIONS=halt_on_error=1:exitcode=66 \
        bash "$t"
    done
    step_end
  fi
fi

if wants fuzz; then
  if build_step "fuzz target (libFuzzer, ASan + UBSan)" fuzz fuzz --target page_store_fuzz; then
    step_begin "fuzz corpus (libFuzzer, ASan + UBSan)"
    run_script "fuzz corpus" build-fuzz/tests/page_store_fuzz -runs=0 tests/fuzz/corpus
    step_end
  fi
fi

if wants integration; then
  if [[ -z $release_built ]]; then
    release_built=0
    build_step "Release" release release && release_built=1
  fi
  if ((release_built)); then
    step_begin "integration tests"
    for t in tests/integration/*.sh; do
      [[ $(basename "$t") == *lib.sh ]] && continue  # Sourced helpers, not tests.
      run_script "$t" env ZBUDFS_BIN="$PWD/build/zbudfs" ZBUDFSCTL_BIN="$PWD/build/zbudfsctl" bash "$t"
    done
    step_end
  else
    echo "integration tests not run: the Release build failed"
  fi
fi

# ---------------------------------------------------------------- summary
printf '\n=== summary (finished %s; full output in %s) ===\n' "$(date +%H:%M:%S)" "${logs#"$PWD"/}"
printf '%-52s %9s  %s\n' "step" "time" "result"
for r in "${rows[@]}"; do
  IFS=$'\t' read -r title secs result <<<"$r"
  printf '%-52s %9s  %s\n' "$title" "$(zb_duration "$secs")" "$result"
done
printf '%-52s %9s\n' "total" "$(zb_duration $((SECONDS - run_start)))"
((${#only[@]})) && echo "(only these steps: ${only[*]})"
for f in "${failures[@]}"; do echo "FAILED: $f"; done
((skipped)) && echo "($skipped scripts skipped: no /dev/fuse)"
echo "$passed passed, $failed failed"
((failed == 0))

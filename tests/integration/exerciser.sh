#!/usr/bin/env bash
# Random-operation exerciser (tests/exerciser/, main.cc): the same seeded random sequence of
# writes (4 KiB-straddling, sparse up to 3 GiB, O_APPEND), reads, O_DIRECT reads, truncates,
# fallocate (punch hole, zero range, allocate), mmap MAP_SHARED reads/writes with msync,
# fsync, fadvise(DONTNEED), renames, links, unlinks of open files (whose handles stay in use),
# mkdir/rmdir and readdir, on zbudfs and on a reference tmpfs side by side; every result, every
# byte read and every st_size is compared, and the trees are compared whole at the end.
# lseek SEEK_DATA/SEEK_HOLE answers are checked for truth (no data skipped, no hole over data,
# ENXIO only past the data/EOF) rather than for equality with tmpfs.
#   run 1: default options, ~16 MiB of data;
#   run 2: -o mem_limit=4M with ~64 MiB of data, so most pages live in the overflow directory
#          (overflow_pages, written_back_pages and faulted_pages must be > 0), with two jobs
#          in parallel (--jobs 2: two processes, two seeds, two subdirectories), so writes,
#          reads and reclaim of different files race in the daemon.
# After each run, deleting everything must bring orig_data_size, overflow_pages and
# overflow_bytes to 0; after unmount the overflow directory must be empty.
#
# Usage: tests/integration/exerciser.sh [--seed N] [--ops N] [--long]
#   The seed defaults to 20261125 (EXERCISER_SEED=N sets it, EXERCISER_SEED=random picks one); run 2
#   uses seed+1 and seed+2. Short mode (the test suite): 20000 ops per job, under a minute.
#   Long mode: --long = --ops 1000000 per job (and 256 MiB of data in run 2); not run by
#   scripts/test.sh. A failure prints the seed, the failing operation and the operations
#   before it, and the exerciser command line that replays it.
#   EXERCISER_BIN=PATH runs that exerciser binary (default: the CMake-built one next to the daemon).
source "$(dirname "$0")/lib.sh"

OPS=20000
TARGET2=64
# A fixed seed by default keeps the test suite reproducible; EXERCISER_SEED=random explores.
SEED=${EXERCISER_SEED:-20261125}
[[ $SEED == random ]] && SEED=$(((RANDOM << 15 | RANDOM) % 1000000000))
while (($#)); do
  case $1 in
    --seed) SEED=$2; shift 2 ;;
    --ops) OPS=$2; shift 2 ;;
    --long) OPS=1000000; TARGET2=256; shift ;;
    *) fail "usage: $0 [--seed N] [--ops N] [--long]" ;;
  esac
done
note "seed $SEED, $OPS ops per job (replay: EXERCISER_SEED=$SEED $0)"

# The exerciser binary: $EXERCISER_BIN if set, else the one CMake built in the daemon's build
# directory ($(dirname $ZBUDFS_BIN)/tests/exerciser, with -Werror like the rest); when that is
# missing or older than one of its sources (a daemon installed elsewhere, a partial build), one
# is compiled here with g++. Its sources: tests/exerciser/*.cc and *.h, and store/page_size.h.
SRC_DIR=$REPO_ROOT/tests/exerciser
if [[ -n ${EXERCISER_BIN:-} ]]; then
  EX=$EXERCISER_BIN
  [[ -x $EX ]] || fail "no exerciser at EXERCISER_BIN=$EX"
else
  EX=$(dirname "$ZBUDFS_BIN")/tests/exerciser
  if [[ ! -x $EX || -n $(find "$SRC_DIR" "$REPO_ROOT/store/page_size.h" -newer "$EX" -print -quit) ]]; then
    note "$EX is missing or older than its sources ($SRC_DIR): compiling the exerciser with g++"
    command -v g++ >/dev/null || fail "g++ is needed to build the exerciser"
    EX=$WORK/exerciser
    g++ -O2 -std=c++20 -I"$REPO_ROOT" -o "$EX" "$SRC_DIR"/*.cc || fail "cannot build the exerciser"
  fi
fi
note "exerciser: $EX"
mkdir "$WORK/ref"
mount -t tmpfs -o size=2G,mode=0755 tmpfs "$WORK/ref" || fail "cannot mount the reference tmpfs"

# run_exerciser SEED TARGET_MB JOBS LABEL: a failed run is recorded and the script goes on
# with the next run (each finds its own bugs); it fails at the end.
FAILED=()
run_exerciser() {
  local t0=$SECONDS rc=0 out=$WORK/exerciser.$1.out
  "$EX" --zbud "$MNT" --ref "$WORK/ref" --seed "$1" --ops $((OPS * $3)) --target-mb "$2" --jobs "$3" \
    >"$out" 2>&1 || rc=$?
  require_mounted
  note "$4: $((SECONDS - t0)) s; $(tail -n 1 "$out")"
  if ((rc != 0)); then
    echo "FAIL [$TEST_NAME]: the exerciser found differences ($4, seed $1); its last 60 lines:" >&2
    tail -n 60 "$out" >&2
    FAILED+=("$4 (seed $1)")
  fi
}

# empty_both: removes everything from both trees; the store must hold nothing afterwards.
empty_both() {
  rm -rf "${MNT:?}"/* "$WORK/ref"/*
  sync
  local orig opages obytes used
  # Releases and forgets reach the daemon asynchronously: give them up to 5 s.
  for _ in $(seq 50); do
    orig=$(stat_value orig_data_size)
    opages=$(stat_value overflow_pages)
    obytes=$(stat_value overflow_bytes)
    used=$(stat_value mem_used_total)
    [[ $orig == 0 && $opages == 0 && $obytes == 0 ]] && ((used <= 65536)) && break
    sleep 0.1
  done
  note "after rm -rf: orig_data_size=$orig overflow_pages=$opages overflow_bytes=$obytes mem_used_total=$used"
  [[ $orig == 0 ]] || fail "orig_data_size $orig after deleting everything"
  [[ $opages == 0 ]] || fail "overflow_pages $opages after deleting everything"
  [[ $obytes == 0 ]] || fail "overflow_bytes $obytes after deleting everything"
  ((used <= 65536)) || fail "mem_used_total $used after deleting everything (want near 0)"
}

check "run 1: default options, $OPS random operations compared with tmpfs"
mount_zbudfs
run_exerciser "$SEED" 16 1 "default options"
empty_both
unmount_zbudfs

check "run 2: -o mem_limit=4M, ~${TARGET2} MiB of data, most of it in the overflow directory, 2 jobs"
OV=$WORK/overflow
mkdir -m 0700 "$OV"
mount_zbudfs -o mem_limit=4M,overflow_dir="$OV"
run_exerciser "$((SEED + 1))" "$TARGET2" 2 "mem_limit=4M, 2 jobs"
note "$("$ZBUDFSCTL_BIN" stats "$MNT")"
for f in overflow_pages written_back_pages faulted_pages; do
  v=$(stat_value $f)
  ((v > 0)) || fail "$f is $v after the mem_limit=4M run: the overflow directory was not used"
done
used=$(stat_value mem_used_total)
((used <= (4 << 20) + (2 << 20))) || fail "mem_used_total $used is above mem_limit (4 MiB) + 2 MiB"
empty_both
unmount_zbudfs
left=$(ls -A "$OV")
[[ -z $left ]] || fail "the overflow directory holds files after unmount: $left"
((${#FAILED[@]} == 0)) ||
  fail "the exerciser found differences in: ${FAILED[*]}; replay with EXERCISER_SEED=$SEED $0 (the exerciser's output is above)"

#!/usr/bin/env bash
# Reclaim under load (issue 5's integration test) and stress-ng.
#   A. -o mem_limit=16M,overflow_dir=DIR (a private 0700 directory): 256 MiB of mixed data
#      (compressible text, incompressible random, zero pages) over 5 files, two writers at a
#      time. mem_used_total, sampled every 0.2 s while writing, stays <= mem_limit + 2 MiB;
#      overflow_pages and written_back_pages > 0; every file reads back (O_DIRECT, so from the
#      store) with the sha256 of what was written, and faulted_pages grows; deleting the files
#      brings overflow_bytes to <= 1 MiB and mem_used_total to near 0; after unmount the
#      overflow directory is empty.
#   B. overflow_dir on an 8 MiB tmpfs, mem_limit=4M: a 64 MiB incompressible write fails with
#      "No space left on device"; every file written before still reads back with its sha256;
#      the daemon keeps serving (and, once the big file is gone, takes new writes again).
#   C. stress-ng file system stressors with --verify on the mount (installed with apt-get if
#      missing), a few seconds each; the mount and the daemon must be alive after each and
#      stress-ng must report no failure.
source "$(dirname "$0")/lib.sh"

# gen.py KIND MIB PATH: writes MIB MiB of KIND data to PATH in 1 MiB writes, prints the sha256.
# Kinds: text, random, zero (zeros with a text page every MiB), mix64k / mix4k (text, random
# and zero chunks of 64 KiB / 4 KiB in turn, chosen at random).
cat >"$WORK/gen.py" <<'PY'
import glob, hashlib, os, random, sys
kind, mib, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rnd = random.Random(hash(path) & 0xffffffff)
corpus = b""
for f in sorted(glob.glob("/usr/include/*.h")):
    corpus += open(f, "rb").read()
    if len(corpus) > 4 << 20:
        break
def text(n):
    o = rnd.randrange(0, len(corpus) - n)
    return corpus[o:o + n]
def chunk(n):
    r = rnd.randrange(3)
    return text(n) if r == 0 else os.urandom(n) if r == 1 else bytes(n)
h = hashlib.sha256()
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
M = 1 << 20
for i in range(mib):
    if kind == "text":
        b = text(M)
    elif kind == "random":
        b = os.urandom(M)
    elif kind == "zero":
        b = text(4096) + bytes(M - 4096)
    else:
        c = 65536 if kind == "mix64k" else 4096
        b = b"".join(chunk(c) for _ in range(M // c))
    os.write(fd, b)
    h.update(b)
os.close(fd)
print(h.hexdigest())
PY

# readback FILE: sha256 of FILE read with O_DIRECT (from the daemon, not the page cache).
readback() { dd if="$1" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1; }

# wait_stat NAME MAX: waits up to 5 s for stat NAME to be <= MAX (forgets arrive late).
wait_stat() {
  local v
  for _ in $(seq 50); do
    v=$(stat_value "$1")
    ((v <= $2)) && return 0
    sleep 0.1
  done
  fail "$1 is $v (want <= $2)"
}

# ---------------------------------------------------------------------------------------------
t0=$SECONDS
check "A: mem_limit=16M, 256 MiB of mixed data in 5 files, mem_used_total sampled every 0.2 s"
OV=$WORK/overflow
mkdir -m 0700 "$OV"
mount_zbudfs -o mem_limit=16M,overflow_dir="$OV"
LIMIT=$((16 << 20))
touch "$WORK/sampling"
(
  while [[ -e $WORK/sampling ]]; do
    "$ZBUDFSCTL_BIN" stats "$MNT" 2>/dev/null | awk '$1 == "mem_used_total" { print $2 }' >>"$WORK/samples" || break
    sleep 0.2
  done
) &
SAMPLER=$!
files=("text:48:t1" "random:48:r1" "zero:32:z1" "mix64k:64:m1" "mix4k:64:m2")
pids=()
for spec in "${files[@]}"; do
  IFS=: read -r kind mib name <<<"$spec"
  python3 "$WORK/gen.py" "$kind" "$mib" "$MNT/$name" >"$WORK/$name.sum" &
  pids+=($!)
  if ((${#pids[@]} == 2)); then
    wait "${pids[0]}" || fail "writing ${pids[0]} failed"
    pids=("${pids[1]}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || fail "a writer failed"; done
sync -f "$MNT"
sleep 0.5
rm -f "$WORK/sampling"
wait "$SAMPLER" || true
require_mounted
n=$(wc -l <"$WORK/samples")
max=$(sort -n "$WORK/samples" | tail -1)
note "$n samples of mem_used_total while writing, max $max (mem_limit $LIMIT); $((SECONDS - t0)) s"
((n >= 3)) || fail "only $n samples of mem_used_total"
((max <= LIMIT + (2 << 20))) || fail "mem_used_total reached $max > mem_limit + 2 MiB ($((LIMIT + (2 << 20))))"
note "$("$ZBUDFSCTL_BIN" stats "$MNT")"
for f in overflow_pages written_back_pages; do
  v=$(stat_value $f)
  ((v > 0)) || fail "$f is $v after writing 256 MiB with mem_limit=16M"
done
orig=$(stat_value orig_data_size)
((orig >= 200 << 20)) || fail "orig_data_size $orig: the data is not all there"

check "A: everything reads back (O_DIRECT) with the checksums of the sources; faulted_pages grows"
faulted0=$(stat_value faulted_pages)
for spec in "${files[@]}"; do
  IFS=: read -r kind mib name <<<"$spec"
  got=$(readback "$MNT/$name")
  want=$(cat "$WORK/$name.sum")
  [[ $got == "$want" ]] || fail "$name ($kind, $mib MiB) reads back with sha256 $got, written $want"
  [[ $(stat -c %s "$MNT/$name") == $((mib << 20)) ]] || fail "$name has the wrong size"
done
faulted1=$(stat_value faulted_pages)
note "faulted_pages $faulted0 -> $faulted1; $((SECONDS - t0)) s"
((faulted1 > faulted0)) || fail "faulted_pages did not grow while reading back ($faulted0 -> $faulted1)"
require_mounted

check "A: deleting the files empties the overflow and the memory"
rm -f "$MNT"/*
wait_stat overflow_bytes $((1 << 20))
wait_stat mem_used_total 65536
wait_stat orig_data_size 0
note "overflow_bytes $(stat_value overflow_bytes), mem_used_total $(stat_value mem_used_total)"
unmount_zbudfs
left=$(ls -A "$OV")
[[ -z $left ]] || fail "the overflow directory holds files after unmount: $left"
note "part A: $((SECONDS - t0)) s"

# ---------------------------------------------------------------------------------------------
t0=$SECONDS
check "B: overflow_dir on an 8 MiB tmpfs, mem_limit=4M: a big incompressible write gets ENOSPC"
TINY=$WORK/tiny
mkdir "$TINY"
mount -t tmpfs -o size=8M,mode=0700 tmpfs "$TINY" || fail "cannot mount the tiny tmpfs"
mount_zbudfs -o mem_limit=4M,overflow_dir="$TINY"
for spec in "text:2:b_text" "mix4k:2:b_mix" "zero:2:b_zero" "random:1:b_rand"; do
  IFS=: read -r kind mib name <<<"$spec"
  python3 "$WORK/gen.py" "$kind" "$mib" "$MNT/$name" >"$WORK/$name.sum" || fail "writing $name"
done
sync -f "$MNT"
rc=0
dd if=/dev/urandom of="$MNT/big" bs=1M count=64 conv=fsync status=none 2>"$WORK/dd.err" || rc=$?
note "dd of 64 MiB of random data: exit $rc: $(cat "$WORK/dd.err")"
((rc != 0)) || fail "64 MiB of incompressible data fitted in mem_limit=4M + an 8 MiB overflow"
grep -q "No space left on device" "$WORK/dd.err" || fail "dd failed without ENOSPC: $(cat "$WORK/dd.err")"
require_mounted
rc=0
python3 - "$MNT/big2" >"$WORK/big2.out" <<'PY' || rc=$?
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
try:
    for _ in range(64):
        os.write(fd, os.urandom(1 << 20))
    os.fsync(fd)
except OSError as e:
    print("python write+fsync:", os.strerror(e.errno))
    sys.exit(0 if e.errno == errno.ENOSPC else 3)
sys.exit(4)
PY
note "$(cat "$WORK/big2.out")"
((rc == 0)) || fail "python's 64 MiB write+fsync: exit $rc (3: an error other than ENOSPC, 4: no error): $(cat "$WORK/big2.out")"
require_mounted
check "B: every file written before reads back correctly; the daemon keeps serving"
for name in b_text b_mix b_zero b_rand; do
  got=$(readback "$MNT/$name")
  [[ $got == "$(cat "$WORK/$name.sum")" ]] || fail "$name reads back wrong after ENOSPC"
done
ls -l "$MNT" >/dev/null || fail "ls after ENOSPC"
rm -f "$MNT/big" "$MNT/big2"
wait_stat orig_data_size $((8 << 20))
python3 "$WORK/gen.py" text 1 "$MNT/after" >"$WORK/after.sum" || fail "a 1 MiB write after freeing space failed"
[[ $(readback "$MNT/after") == "$(cat "$WORK/after.sum")" ]] || fail "the file written after ENOSPC reads back wrong"
for name in b_text b_mix b_zero b_rand; do
  [[ $(readback "$MNT/$name") == "$(cat "$WORK/$name.sum")" ]] || fail "$name reads back wrong at the end"
done
unmount_zbudfs
umount "$TINY"
note "part B: $((SECONDS - t0)) s"

# ---------------------------------------------------------------------------------------------
t0=$SECONDS
check "C: stress-ng file system stressors with --verify"
if ! command -v stress-ng >/dev/null; then
  note "installing stress-ng"
  { apt-get install -y stress-ng || { apt-get update && apt-get install -y stress-ng; }; } >"$WORK/apt.log" 2>&1 ||
    { tail -5 "$WORK/apt.log"; fail "stress-ng is missing and could not be installed"; }
fi
OV=$WORK/overflow
mount_zbudfs -o mem_limit=16M,overflow_dir="$OV",size=1G
SN=$MNT/stress-ng
mkdir "$SN"
# Each: stressor and its options, 2 s, --verify.
stressors=(
  "--hdd 2 --hdd-bytes 32M --hdd-opts wr-rnd,rd-rnd"
  "--hdd 2 --hdd-bytes 16M --hdd-opts wr-seq,rd-seq,fsync"
  "--seek 2 --seek-size 32M --seek-punch"
  "--fallocate 2 --fallocate-bytes 16M"
  "--mmap 2 --mmap-file --mmap-bytes 16M"
  "--iomix 2 --iomix-bytes 16M"
  "--dir 2"
  "--link 2"
  "--symlink 2"
  "--rename 2"
  "--dentry 2"
  "--filename 1"
  "--readahead 1 --readahead-bytes 16M"
  "--copy-file 1 --copy-file-bytes 128M"
)
sn_failures=()
for s in "${stressors[@]}"; do
  rc=0
  t1=$SECONDS
  # shellcheck disable=SC2086
  timeout -k 5 30 stress-ng $s --timeout 2s --verify --temp-path "$SN" --metrics-brief \
    >"$WORK/sn.out" 2>&1 || rc=$?
  require_mounted
  summary=$(grep -E "passed|failed|skipped|successful run|unsuccessful" "$WORK/sn.out" | sed 's/^stress-ng: [a-z]*: *\[[0-9]*\] //' | tr '\n' ' ' || true)
  note "stress-ng $s: exit $rc, $((SECONDS - t1)) s; $summary"
  bad=$(grep -E "^stress-ng: fail:|failed: [1-9]|verif.*(fail|mismatch)|(fail|mismatch).*verif" "$WORK/sn.out" || true)
  if [[ -n $bad ]]; then
    note "$(head -5 <<<"$bad")"
    sn_failures+=("$s: $(echo "$bad" | head -1)")
  elif ((rc == 3 || rc == 4)); then
    note "  (stressor skipped or not implemented here)"
  elif ((rc != 0)); then
    note "$(tail -5 "$WORK/sn.out")"
    sn_failures+=("$s: exit $rc")
  fi
  rm -rf "${SN:?}"/*
done
((${#sn_failures[@]} == 0)) || fail "stress-ng failures (tmpfs passes these): $(printf '\n  %s' "${sn_failures[@]}")"
require_mounted
unmount_zbudfs
note "part C: $((SECONDS - t0)) s"

#!/usr/bin/env bash
# Faults: each gives the caller a clear error (never a crash of the daemon), and every file
# written before still reads back exactly (sha256, read with O_DIRECT so from the store):
#   1. the overflow directory made unwritable (chattr +i) -> writes that need reclaim fail
#      (EIO/ENOSPC at write or fsync); writes work again once it is writable;
#   2. the overflow files truncated under zbudfs -> EIO for the file whose pages were there,
#      other files read correctly, the daemon keeps serving and takes new data;
#   3. `size` reached -> ENOSPC;
#   4. mem_limit and overflow_limit both reached -> ENOSPC;
#   5. a reader and writers (write(2), one huge write, mmap stores) killed with SIGKILL
#      mid-operation -> the daemon is fine, data written before is intact;
#   6. the daemon killed with SIGKILL -> `fusermount3 -u` recovers the mountpoint; the next
#      mount on the same overflow_dir removes the leftovers ("removed N files left by an
#      earlier mount") and the directory then holds only the new mount's files.
source "$(dirname "$0")/lib.sh"

# put KIND MIB PATH: writes MIB MiB (text, random or mixed 4 KiB pages) to PATH with fsync,
# records its sha256 in $WORK/sums. Exit status: 0, or 1 with the error on stderr.
cat >"$WORK/put.py" <<'PY'
import glob, hashlib, os, sys
kind, mib, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
corpus = b"".join(open(f, "rb").read() for f in sorted(glob.glob("/usr/include/*.h"))[:400])
h = hashlib.sha256()
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
try:
    for i in range(mib):
        if kind == "text":
            o = (i * 7919 * 4096) % (len(corpus) - (1 << 20))
            b = corpus[o:o + (1 << 20)]
        elif kind == "random":
            b = os.urandom(1 << 20)
        else:
            b = b"".join(os.urandom(4096) if j % 3 == 0 else bytes(4096) if j % 3 == 1
                         else corpus[j * 4096:(j + 1) * 4096] for j in range(256))
        os.write(fd, b)
        h.update(b)
    os.fsync(fd)
except OSError as e:
    print(f"{path}: {e.strerror}", file=sys.stderr)
    sys.exit(1)
finally:
    os.close(fd)
with open(os.environ["SUMS"], "a") as f:
    f.write(f"{h.hexdigest()}  {path}\n")
PY
export SUMS=$WORK/sums
put() { python3 "$WORK/put.py" "$@"; }

# verify_all: every file recorded in $SUMS reads back (O_DIRECT) with its checksum.
verify_all() {
  local sum path got
  while read -r sum path; do
    [[ -e $path ]] || continue
    got=$(dd if="$path" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1) ||
      fail "$path: read back failed"
    [[ $got == "$sum" ]] || fail "$path reads back wrong (sha256 $got, written $sum) $*"
  done <"$SUMS"
}

# expect_write_error WHAT MIB KIND PATTERN: a write of MIB MiB to $MNT/$WHAT must fail with
# an error matching PATTERN; the daemon must survive.
expect_write_error() {
  local name=$1 mib=$2 kind=$3 pattern=$4 rc=0
  put "$kind" "$mib" "$MNT/$name" 2>"$WORK/err" || rc=$?
  note "writing $mib MiB of $kind to $name: exit $rc: $(cat "$WORK/err")"
  ((rc != 0)) || fail "writing $mib MiB of $kind to $name succeeded (want an error: $pattern)"
  grep -Eq "$pattern" "$WORK/err" || fail "writing $name failed with '$(cat "$WORK/err")', want $pattern"
  require_mounted
  sed -i "\#  $MNT/$name\$#d" "$SUMS"
}

# alive: after a fault, the daemon must still be alive and answer.
alive() {
  require_mounted
  "$ZBUDFSCTL_BIN" stats "$MNT" >/dev/null || fail "zbudfsctl stats failed: the daemon does not answer"
  ls "$MNT" >/dev/null || fail "ls of the mount failed"
}

OV=$WORK/overflow
mkdir -m 0700 "$OV"

# ---------------------------------------------------------------------------------------------
check "1. overflow directory made unwritable (chattr +i) -> writes needing reclaim fail"
t0=$SECONDS
mount_zbudfs -o mem_limit=4M,overflow_dir="$OV"
put text 2 "$MNT/early_text"
put random 1 "$MNT/early_rand"
[[ $(stat_value written_back_pages) == 0 ]] || fail "reclaim started before the directory was made unwritable"
if chattr +i "$OV" 2>"$WORK/err"; then
  expect_write_error blocked 32 random "Input/output error|No space left on device"
  note "written_back_pages $(stat_value written_back_pages)"
  verify_all "(overflow directory immutable)"
  alive
  chattr -i "$OV"
  check "1. once writable again, the same write succeeds"
  rm -f "$MNT/blocked"
  put random 32 "$MNT/unblocked" || fail "writing after chattr -i failed"
  (($(stat_value written_back_pages) > 0)) || fail "nothing was written back after chattr -i"
  verify_all "(after chattr -i)"
else
  note "SKIPPED: chattr +i is not supported here: $(cat "$WORK/err")"
fi
rm -f "$MNT"/*
: >"$SUMS"
unmount_zbudfs
note "$((SECONDS - t0)) s"

# ---------------------------------------------------------------------------------------------
check "2. overflow files truncated under zbudfs -> EIO for pages there; others fine"
t0=$SECONDS
mount_zbudfs -o mem_limit=4M,overflow_dir="$OV"
put mixed 16 "$MNT/cold"
: >"$SUMS"  # cold is expected to become unreadable: not verified.
put text 1 "$MNT/hot"  # Written last: the newest pages, kept in memory.
sync -f "$MNT"
opages=$(stat_value overflow_pages)
note "overflow_pages $opages, files: $(cd "$OV" && ls | tr '\n' ' ')"
((opages > 0)) || fail "nothing went to the overflow directory"
for f in "$OV"/zbudfs-overflow-*; do truncate -s 0 "$f"; done
rc=0
dd if="$MNT/cold" of=/dev/null bs=1M iflag=direct status=none 2>"$WORK/err" || rc=$?
note "reading cold: exit $rc: $(cat "$WORK/err")"
((rc != 0)) || fail "reading a file whose pages were truncated away succeeded"
grep -q "Input/output error" "$WORK/err" || fail "reading cold failed without EIO: $(cat "$WORK/err")"
alive
verify_all "(the file written last, in memory)"
check "2. the daemon keeps serving: new data, deletes"
put mixed 8 "$MNT/after" || fail "writing after the truncation failed"
verify_all "(after the truncation)"
rm -f "$MNT/cold"
verify_all "(after deleting cold)"
rm -f "$MNT"/*
: >"$SUMS"
unmount_zbudfs
note "$((SECONDS - t0)) s"

# ---------------------------------------------------------------------------------------------
check "3. size reached -> ENOSPC; earlier files intact; space comes back after rm"
t0=$SECONDS
mount_zbudfs -o size=8M
put text 3 "$MNT/a"
put random 2 "$MNT/b"
expect_write_error full 4 random "No space left on device"
rc=0
fallocate -l 16M "$MNT/falloc" 2>"$WORK/err" || rc=$?
((rc != 0)) && grep -q "No space left on device" "$WORK/err" || fail "fallocate -l 16M on an 8M mount: rc=$rc $(cat "$WORK/err")"
verify_all "(size reached)"
alive
rm -f "$MNT/full" "$MNT/falloc" "$MNT/b"
# A fallocate that fails part way (with room for some of it) takes back what it stored past
# EOF: nothing could see or free it (statfs's free blocks: st_blocks may be the kernel's
# cached figure).
free0=$(stat -f -c %f "$MNT")
rc=0
fallocate -l 16M "$MNT/falloc" 2>"$WORK/err" || rc=$?
((rc != 0)) || fail "fallocate -l 16M with $free0 blocks free succeeded"
free1=$(stat -f -c %f "$MNT")
fsize=$(stat -c %s "$MNT/falloc")
((fsize == 0 && free1 == free0)) || fail "after the failed fallocate: size $fsize, free blocks $free0 -> $free1"
rm -f "$MNT/falloc"
# The same for a zero-range fallocate (issue 14: it left df full and the file empty).
: >"$MNT/falloc"
rc=0
fallocate -z -o 0 -l 16M "$MNT/falloc" 2>"$WORK/err" || rc=$?
((rc != 0)) && grep -q "No space left on device" "$WORK/err" ||
  fail "fallocate -z -l 16M with $free0 blocks free: rc=$rc $(cat "$WORK/err")"
free1=$(stat -f -c %f "$MNT")
fsize=$(stat -c %s "$MNT/falloc")
((fsize == 0 && free1 == free0)) || fail "after the failed fallocate -z: size $fsize, free blocks $free0 -> $free1"
rm -f "$MNT/falloc"
# Pages fallocated past EOF (KEEP_SIZE) go when the file is truncated to its size, as on
# tmpfs (statfs's free blocks: st_blocks may be the kernel's cached figure).
: >"$MNT/keep"
free0=$(stat -f -c %f "$MNT")
fallocate -n -l 2M "$MNT/keep" || fail "fallocate --keep-size -l 2M failed"
free1=$(stat -f -c %f "$MNT")
((free0 - free1 >= 512)) || fail "fallocate --keep-size -l 2M: free blocks $free0 -> $free1"
truncate -s 0 "$MNT/keep"
free2=$(stat -f -c %f "$MNT")
((free2 == free0)) || fail "truncate -s 0 kept what was fallocated past EOF: free blocks $free0 -> $free1 -> $free2"
rm -f "$MNT/keep"
put random 2 "$MNT/c" || fail "writing 2 MiB after freeing space failed"
verify_all "(after rm)"
rm -f "$MNT"/*
: >"$SUMS"
unmount_zbudfs
note "$((SECONDS - t0)) s"

# ---------------------------------------------------------------------------------------------
check "3b. nr_inodes reached -> ENOSPC for every kind of inode and for hard links (as tmpfs); df -i; freed by rm"
t0=$SECONDS
mount_zbudfs -o nr_inodes=8
read -r itotal ifree < <(stat -f -c '%c %d' "$MNT")
((itotal == 8 && ifree == 7)) || fail "df -i on a fresh nr_inodes=8 mount: $itotal inodes, $ifree free"
mkdir "$MNT/d" && touch "$MNT/d/f1" "$MNT/f2" && ln -s f2 "$MNT/l" && mkfifo "$MNT/p" ||
  fail "creating 5 inodes under nr_inodes=8 failed"
ln "$MNT/f2" "$MNT/f2.link" || fail "a hard link with inodes left failed"
read -r itotal ifree < <(stat -f -c '%c %d' "$MNT")
((ifree == 1)) || fail "df -i after 6 inodes and a hard link: $ifree free, not 1 (tmpfs counts the link)"
touch "$MNT/f3" || fail "creating inode 8 failed"
for make in "touch $MNT/x" "mkdir $MNT/x" "ln -s f2 $MNT/x" "mkfifo $MNT/x" "ln $MNT/f2 $MNT/x"; do
  rc=0
  $make 2>"$WORK/err" || rc=$?
  ((rc != 0)) && grep -q "No space left on device" "$WORK/err" || fail "$make with no inode left: rc=$rc $(cat "$WORK/err")"
done
read -r itotal ifree < <(stat -f -c '%c %d' "$MNT")
((ifree == 0)) || fail "df -i with every inode used: $ifree free"
rm -f "$MNT/f2.link"
read -r itotal ifree < <(stat -f -c '%c %d' "$MNT")
((ifree == 1)) || fail "df -i after removing a hard link: $ifree free, not 1"
ln "$MNT/f3" "$MNT/f3.link" || fail "a hard link after rm freed an inode failed"
mv "$MNT/f2" "$MNT/f3.link" || fail "rename over a hard link failed"
rm -f "$MNT/f3"
touch "$MNT/x" || fail "creating a file after rename and rm freed an inode failed"
rm -rf "$MNT"/*
unmount_zbudfs
check "3c. a flood of hard links stops at nr_inodes, as on tmpfs"
mount_zbudfs -o nr_inodes=100
touch "$MNT/f"
n=0
while ((n < 200)) && ln "$MNT/f" "$MNT/l$n" 2>"$WORK/err"; do n=$((n + 1)); done
((n == 98)) || fail "$n hard links under nr_inodes=100 (root and f leave 98, as tmpfs)"
grep -q "No space left on device" "$WORK/err" || fail "link 99: $(cat "$WORK/err")"
(($(stat -c %h "$MNT/f") == 99)) || fail "nlink $(stat -c %h "$MNT/f") after 98 links"
rm -f "$MNT"/l*
read -r itotal ifree < <(stat -f -c '%c %d' "$MNT")
((ifree == 98)) || fail "df -i after removing the links: $ifree free, not 98"
rm -f "$MNT/f"
unmount_zbudfs
note "$((SECONDS - t0)) s"

# ---------------------------------------------------------------------------------------------
check "4. mem_limit and overflow_limit both reached -> ENOSPC"
t0=$SECONDS
mount_zbudfs -o mem_limit=4M,overflow_limit=4M,overflow_dir="$OV"
put text 2 "$MNT/a"
put random 2 "$MNT/b"
expect_write_error full 16 random "No space left on device"
obytes=$(stat_value overflow_bytes)
note "overflow_bytes $obytes, mem_used_total $(stat_value mem_used_total)"
((obytes <= (4 << 20))) || fail "overflow_bytes $obytes is above overflow_limit (4 MiB)"
verify_all "(both limits reached)"
alive
rm -f "$MNT/full"
put text 1 "$MNT/c" || fail "writing 1 MiB after freeing space failed"
verify_all "(after rm)"
rm -f "$MNT"/*
: >"$SUMS"
unmount_zbudfs
note "$((SECONDS - t0)) s"

# ---------------------------------------------------------------------------------------------
check "5. readers and writers killed with SIGKILL mid-operation"
t0=$SECONDS
mount_zbudfs -o mem_limit=8M,overflow_dir="$OV"
put mixed 16 "$MNT/base1"
put text 4 "$MNT/base2"
cat >"$WORK/writer.py" <<'PY'
import mmap, os, sys
mode, path = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
if mode == "loop":      # many 1 MiB writes, forever
    while True:
        os.pwrite(fd, os.urandom(1 << 20), (os.getpid() % 7) << 20)
        os.write(fd, bytes(4096) + os.urandom(4096) * 15)
elif mode == "huge":    # one 256 MiB write(2)
    buf = os.urandom(1 << 20) * 256
    while True:
        os.pwrite(fd, buf, 0)
else:                   # mmap stores and msync, forever
    os.ftruncate(fd, 32 << 20)
    m = mmap.mmap(fd, 32 << 20)
    i = 0
    while True:
        o = (i * 4096 * 37) % (32 << 20)
        m[o:o + 4096] = os.urandom(4096)
        i += 1
        if i % 64 == 0:
            m.flush()
PY
procs=()
python3 "$WORK/writer.py" loop "$MNT/w_loop" & procs+=($!)
python3 "$WORK/writer.py" huge "$MNT/w_huge" & procs+=($!)
python3 "$WORK/writer.py" mmap "$MNT/w_mmap" & procs+=($!)
touch "$WORK/running"  # The loops end when it goes (also when the test fails meanwhile).
(while [[ -e $WORK/running ]]; do dd if="$MNT/base1" of=/dev/null bs=64k iflag=direct status=none || true; done) & procs+=($!)
(while [[ -e $WORK/running ]]; do cat "$MNT/base2" "$MNT/w_loop" >/dev/null 2>&1 || true; done) & procs+=($!)
sleep 2
ended=()
{
  for p in "${procs[@]}"; do kill -9 "$p" 2>/dev/null || ended+=("$p"); done
  for p in "${procs[@]}"; do wait "$p" 2>/dev/null || true; done
} 2>/dev/null  # Without bash's "Killed" notices: these kills are the test.
((${#ended[@]} == 0)) || fail "processes ${ended[*]} ended before they were killed"
rm -f "$WORK/running"
# The loops' children (dd, cat) end with their parent's pipe closed; give them a moment.
sleep 0.5
alive
check "5. data written before is intact; the killed writers' files are readable and deletable"
verify_all "(after SIGKILL of readers and writers)"
for f in w_loop w_huge w_mmap; do
  [[ -e $MNT/$f ]] || continue
  size=$(stat -c %s "$MNT/$f")
  got=$(dd if="$MNT/$f" bs=1M iflag=direct status=none | wc -c) || fail "reading $f failed"
  [[ $got == "$size" ]] || fail "$f: read $got bytes of $size"
  note "$f: $size bytes, reads back whole"
done
rm -f "$MNT"/w_*
put mixed 4 "$MNT/after" || fail "writing after the kills failed"
verify_all "(new data after the kills)"
rm -f "$MNT"/*
: >"$SUMS"
unmount_zbudfs
note "$((SECONDS - t0)) s"

# ---------------------------------------------------------------------------------------------
check "6. the daemon killed with SIGKILL: fusermount3 -u recovers the mountpoint"
t0=$SECONDS
mount_zbudfs -o mem_limit=4M,overflow_dir="$OV"
put mixed 16 "$MNT/doomed"
sync -f "$MNT"
left=$(find "$OV" -name 'zbudfs-overflow-*' -size +0 | wc -l)
((left > 0)) || fail "no overflow file holds data before the kill"
nfiles=$(find "$OV" -name 'zbudfs-overflow-*' | wc -l)
rc=0
# Without bash's "Killed" notice (stderr): this kill is the test.
{ kill -9 "$ZPID" && wait "$ZPID"; } 2>/dev/null || rc=$?
((rc == 128 + 9)) || fail "the daemon did not die of the SIGKILL (status $rc)"
ZPID=
rc=0
ls "$MNT" >/dev/null 2>"$WORK/err" || rc=$?
note "after SIGKILL: ls exit $rc: $(cat "$WORK/err")"
((rc != 0)) || fail "ls of a mount whose daemon was killed succeeded"
fusermount3 -u "$MNT" || fail "fusermount3 -u of the dead mount failed"
mountpoint -q "$MNT" && fail "still a mountpoint after fusermount3 -u"
ls "$MNT" >/dev/null || fail "the mountpoint directory is not usable after fusermount3 -u"
note "overflow_dir after the kill: $nfiles data files ($left non-empty) + $(find "$OV" -mindepth 1 ! -name 'zbudfs-overflow-*' | wc -l) other"
check "6. the next mount on the same overflow_dir removes the leftovers"
lines=$(wc -l <"$WORK/daemon.log")
mount_zbudfs -o mem_limit=4M,overflow_dir="$OV"
sleep 0.2
msg=$(tail -n +$((lines + 1)) "$WORK/daemon.log" | grep "files left by an earlier mount" || true)
note "daemon: $msg"
[[ $msg =~ removed\ ([0-9]+)\ files\ left\ by\ an\ earlier\ mount ]] ||
  fail "the new mount did not report removing leftovers (log: $(tail -n +$((lines + 1)) "$WORK/daemon.log"))"
((BASH_REMATCH[1] == nfiles)) || fail "removed ${BASH_REMATCH[1]} files, $nfiles were left"
now=$(cd "$OV" && ls -A | tr '\n' ' ')
[[ $now == "zbudfs.lock " || -z $now ]] || fail "overflow_dir holds more than the new mount's files: $now"
put mixed 16 "$MNT/fresh" || fail "writing on the new mount failed"
verify_all "(new mount)"
(($(find "$OV" -name 'zbudfs-overflow-*' -size +0 | wc -l) > 0)) || fail "the new mount wrote nothing to the overflow"
rm -f "$MNT"/*
unmount_zbudfs
now=$(ls -A "$OV")
[[ -z $now ]] || fail "overflow_dir not empty after a clean unmount: $now"
note "$((SECONDS - t0)) s"

#!/usr/bin/env bash
# Concurrency of namespace changes: four processes create, write, link, rename (plain,
# NOREPLACE, EXCHANGE), unlink and rmdir in the same directories while the kernel is made
# to forget inodes (drop_caches) and files are held open across their unlink. Afterwards the
# daemon is alive, the tree is consistent, and removing everything frees all file data
# (orig_data_size 0: no inode leaked).
source "$(dirname "$0")/lib.sh"

cat >"$WORK/stress.py" <<'PY'
import ctypes, os, random, sys, time
root, seed, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
rnd = random.Random(seed)
libc = ctypes.CDLL(None, use_errno=True)
dirs = [os.path.join(root, d) for d in ("a", "b", "c", "a/x", "b/y")]
def name():
    return os.path.join(rnd.choice(dirs), "n%d" % rnd.randrange(40))
held = []
end = time.time() + secs
ops = 0
while time.time() < end:
    ops += 1
    op = rnd.randrange(10)
    try:
        if op == 0:
            with open(name(), "wb") as f:
                f.write(os.urandom(rnd.randrange(1, 20000)) + b"text" * rnd.randrange(2000))
        elif op == 1:
            os.rename(name(), name())
        elif op == 2:
            libc.renameat2(-100, name().encode(), -100, name().encode(), rnd.choice((1, 2)))
        elif op == 3:
            os.unlink(name())
        elif op == 4:
            os.link(name(), name())
        elif op == 5:
            os.mkdir(name())
        elif op == 6:
            os.rmdir(name())
        elif op == 7:
            fd = os.open(name(), os.O_RDWR)
            held.append(fd)
            if len(held) > 8:
                os.close(held.pop(0))
        elif op == 8:
            for d in dirs:
                os.listdir(d)
        else:
            os.stat(name())
    except OSError:
        pass
for fd in held:
    os.close(fd)
print(ops)
PY

mount_zbudfs -o size=512M
mkdir -p "$MNT"/a/x "$MNT"/b/y "$MNT"/c
check "4 processes x 12 s of random namespace operations, with drop_caches"
pids=()
for i in 1 2 3 4; do
  python3 "$WORK/stress.py" "$MNT" "$i" 12 >"$WORK/ops.$i" &
  pids+=($!)
done
for _ in $(seq 12); do echo 2 >/proc/sys/vm/drop_caches; sleep 1; done
for p in "${pids[@]}"; do wait "$p" || fail "stress worker $p failed"; done
note "operations: $(cat "$WORK"/ops.* | paste -sd+ | bc)"
require_mounted
check "tree is consistent: find and stat everything"
find "$MNT" -printf '%y %n %s\n' >/dev/null || fail "find failed"
check "directory link counts are 2 + subdirectories"
while IFS= read -r d; do
  want=$((2 + $(find "$d" -mindepth 1 -maxdepth 1 -type d | wc -l)))
  [[ $(stat -c %h "$d") == "$want" ]] || fail "$d has nlink $(stat -c %h "$d"), want $want"
done < <(find "$MNT" -type d)
check "rm -rf frees all data"
rm -rf "${MNT:?}"/*
sync
echo 3 >/proc/sys/vm/drop_caches
[[ -z $(ls -A "$MNT") ]] || fail "entries left"
orig=$(stat_value orig_data_size)
[[ $orig == 0 ]] || fail "orig_data_size $orig after removing everything (leaked inode data)"
unmount_zbudfs

#!/usr/bin/env bash
# Many writers at a tiny mem_limit (with room in the overflow directory): every write, fsync
# and close succeeds (never EAGAIN, never EIO), and every byte reads back after the kernel's
# page cache is dropped. Issue 14: writers that found memory full of other writers' pages
# not yet stored got EAGAIN; the kernel's writeback then dropped the pages (`dd conv=fsync`
# failed with "Resource temporarily unavailable", and without fsync 2.2 MB of a 64 MiB file
# read back wrong).
#   1. the reported reproducer: dd of 64 MiB of random data at mem_limit=1M with
#      conv=fsync (and 16 MiB without), compared with its source after drop_caches;
#   2. for each (mem_limit, max_threads): buffered writers (fsync), O_DIRECT writers (whole
#      and unaligned pieces), an mmap writer and a rewriter of unaligned spans, all at
#      once; each file's sha256 checked after drop_caches, mem_used_total sampled all along
#      (at most mem_limit plus one page per worker thread).
source "$(dirname "$0")/lib.sh"

# The overflow directory on a tmpfs: drop_caches then leaves it alone, so that reading back
# what was reclaimed is no disk seek per page on a loaded machine (the pressure is the same).
make_tmpfs "$WORK/ovfs"
OV=$WORK/ovfs/overflow
mkdir -m 0700 "$OV"

drop_caches() {
  sync -f "$MNT"
  echo 3 >/proc/sys/vm/drop_caches
}

# ---------------------------------------------------------------------------------------------
check "1. dd of 64 MiB of random data at mem_limit=1M with conv=fsync, 16 MiB without"
t0=$SECONDS
head -c 64M /dev/urandom >"$WORK/src"
mount_zbudfs -o mem_limit=1M,overflow_dir="$OV"
dd if="$WORK/src" of="$MNT/fsynced" bs=1M conv=fsync status=none 2>"$WORK/err" ||
  fail "dd conv=fsync failed: $(cat "$WORK/err")"
dd if="$WORK/src" of="$MNT/plain" bs=1M count=16 status=none 2>"$WORK/err" ||
  fail "dd without fsync failed: $(cat "$WORK/err")"
require_mounted
drop_caches
cmp "$WORK/src" "$MNT/fsynced" >"$WORK/cmp" 2>&1 || fail "fsynced differs from its source: $(head -3 "$WORK/cmp")"
head -c 16M "$WORK/src" | cmp - "$MNT/plain" >"$WORK/cmp" 2>&1 ||
  fail "plain differs from its source: $(head -3 "$WORK/cmp")"
note "written_back_pages $(stat_value written_back_pages)"
rm -f "$MNT"/* "$WORK/src"
unmount_zbudfs
note "$((SECONDS - t0)) s"

# writers.py KIB SEED DIR MODE...: one thread per MODE writes KIB KiB of mixed pages
# (random, text, zeros) to DIR/fN, all at once, and prints "sha256  path" per file. Modes:
# buffered (256 KiB writes, fsync), direct (O_DIRECT, 1 MiB aligned writes), direct-odd
# (O_DIRECT, unaligned pieces of up to 3 pages), mmap (stores into a shared mapping, msync),
# rewrite (buffered, 1 MiB writes, fsync, then unaligned spans of new data, fsync). Exit 1
# with the errors on stderr if any call fails. One process, threads: Python's start-up is
# slow on a loaded machine.
cat >"$WORK/writers.py" <<'PY'
import hashlib, mmap, os, random, sys, threading
kib, seed, where, modes = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]
corpus = open(os.environ["CORPUS"], "rb").read()
size = kib * 1024
def pages(rng, salt):
    out = []
    for j in range(size // 4096):
        k = (j + salt) % 3
        if k == 0:
            out.append(os.urandom(4096))
        elif k == 1:
            o = rng.randrange(len(corpus) - 4096)
            out.append(corpus[o:o + 4096])
        else:
            out.append(bytes(4096))
    return b"".join(out)
def write(mode, path, rng, data):
    if mode == "mmap":
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        os.ftruncate(fd, size)
        m = mmap.mmap(fd, size)
        for off in range(0, size, 1 << 20):
            m[off:off + (1 << 20)] = data[off:off + (1 << 20)]
        m.flush()
        m.close()
    elif mode.startswith("direct"):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o644)
        buf = mmap.mmap(-1, 1 << 20)  # Page-aligned.
        off = 0
        while off < size:
            n = min(size - off, 1 << 20 if mode == "direct" else rng.randrange(1, 12289))
            buf[:n] = data[off:off + n]
            if os.pwrite(fd, memoryview(buf)[:n], off) != n:
                raise OSError(0, f"short write at {off}")
            off += n
    else:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        chunk = 256 << 10 if mode == "buffered" else 1 << 20
        for off in range(0, size, chunk):
            os.pwrite(fd, data[off:off + chunk], off)
        if mode == "rewrite":
            os.fsync(fd)
            data = bytearray(data)
            new = pages(rng, 1)
            off = rng.randrange(4096)
            while off < size:
                n = min(size - off, rng.randrange(1, 3 * 4096))
                os.pwrite(fd, new[off:off + n], off)
                data[off:off + n] = new[off:off + n]
                off += n + rng.randrange(4096)
        os.fsync(fd)
    os.close(fd)
    return data
sums, errors = {}, []
def run(i, mode):
    path = f"{where}/f{i}"
    try:
        rng = random.Random(seed + i)
        sums[path] = hashlib.sha256(write(mode, path, rng, pages(rng, i))).hexdigest()
    except OSError as e:
        errors.append(f"{mode} {path}: {e.strerror or e}")
threads = [threading.Thread(target=run, args=(i, m)) for i, m in enumerate(modes)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for path, h in sorted(sums.items()):
    print(f"{h}  {path}")
if errors:
    sys.exit("\n".join(errors))
PY
cat /usr/include/*.h | head -c 4M >"$WORK/corpus"
export CORPUS=$WORK/corpus

# Samples the memory mem_limit bounds (mem_used_total less the page indexes, which the
# overflow pages need in memory whatever the limit: at most 64 bytes a page, bounded by
# size=) until $WORK/stop exists; prints the largest value seen.
sample_mem() {
  local max=0 v
  while [[ ! -e $WORK/stop ]]; do
    v=$("$ZBUDFSCTL_BIN" stats "$MNT" |
      awk '$1 == "mem_used_total" { m = $2 } $1 == "index_bytes" { i = $2 } END { print m - i }') ||
      break
    ((v > max)) && max=$v
    sleep 0.05
  done
  echo "$max"
}

# pressure LIMIT_BYTES THREADS KIB: the writers of check 2 (KIB KiB each) on a mount with
# those options.
pressure() {
  local limit=$1 threads=$2 kib=$3 max sum path got rc=0
  check "2. mem_limit=$limit max_threads=$threads: 10 writers at once, all succeed, all read back"
  t0=$SECONDS
  rm -f "$WORK/stop"
  mount_zbudfs -o mem_limit="$limit",max_threads="$threads",overflow_dir="$OV"
  sample_mem >"$WORK/max_mem" &
  local sampler=$!
  python3 "$WORK/writers.py" "$kib" "$((limit / 4096 + threads))" "$MNT" buffered buffered \
    buffered direct direct direct-odd direct-odd mmap rewrite rewrite >"$WORK/sums" \
    2>"$WORK/errors" || rc=$?
  touch "$WORK/stop"
  wait "$sampler"
  ((rc == 0)) || fail "writers failed: $(cat "$WORK/errors")"
  require_mounted
  (($(wc -l <"$WORK/sums") == 10)) || fail "only $(wc -l <"$WORK/sums") writers recorded a checksum"
  drop_caches
  while read -r sum path; do
    got=$(sha256sum <"$path" | cut -d' ' -f1) || fail "$path: read back failed"
    [[ $got == "$sum" ]] || fail "$path reads back wrong after drop_caches (mem_limit=$limit)"
  done <"$WORK/sums"
  max=$(cat "$WORK/max_mem")
  note "largest mem_used_total - index_bytes seen $max, written_back_pages $(stat_value written_back_pages)"
  ((max <= limit + threads * 4096)) ||
    fail "mem_used_total - index_bytes reached $max: above mem_limit $limit + $threads pages"
  rm -f "$MNT"/*
  unmount_zbudfs
  note "$((SECONDS - t0)) s"
}

pressure 4096 4 2048
pressure $((1 << 20)) 16 2048
pressure $((4 << 20)) 8 2048
pressure $((16 << 20)) 16 4096

"""Writers and checkers for full_mount.sh (a full mount never turns data into zeros).

  fill PATH EXPECT        writes random 1 MiB, then 4 KiB, blocks until write(2) fails
                          with ENOSPC; saves the bytes write(2) acknowledged to EXPECT
  mmap PATH DATA          ftruncate to 1 MiB, writes random data through a shared mapping,
                          msync: prints "msync ENOSPC" (or dies of SIGBUS); DATA gets the data
  check_mmap PATH DATA    every page of PATH is zeros (what ftruncate acknowledged) or DATA's
  endless PATH LIMIT      writes until write(2) fails, which it must with ENOSPC before 4 x
                          LIMIT, and checks the file reads back a prefix of what was written
  early PATH TOTAL LIMIT  opens, writes TOTAL bytes of a numbered pattern through the cache
                          and 4 KiB 8 MiB past them, fsyncs, and with the file still open drops the caches and checks that
                          a fresh open reads a prefix of the pattern (never zeros); again after
                          close
"""
import errno
import mmap
import os
import sys

MiB = 1 << 20


def drop_caches():
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def fill(path, expect):
    acked = bytearray()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for block in (MiB, 4096):
        while True:
            data = os.urandom(block)
            try:
                n = os.write(fd, data)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                break
            acked += data[:n]
            if len(acked) > 4096 * MiB:
                sys.exit("no ENOSPC from write(2) after 4 GiB")
    os.close(fd)  # Nothing may be left to fail here.
    with open(expect, "wb") as f:
        f.write(acked)
    print(len(acked), "bytes acknowledged")


def mmap_write(path, data_path):
    data = os.urandom(MiB)
    with open(data_path, "wb") as f:
        f.write(data)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    os.ftruncate(fd, MiB)
    m = mmap.mmap(fd, MiB, mmap.MAP_SHARED)
    sys.stdout.flush()
    m[:] = data  # SIGBUS here would end the process: the caller reports it.
    try:
        m.flush()
    except OSError as e:
        print("msync", errno.errorcode.get(e.errno, e.errno))
        return
    print("msync ok")


def check_mmap(path, data_path):
    data = open(data_path, "rb").read()
    got = open(path, "rb").read()
    if len(got) != MiB:
        sys.exit("mmap file has %d bytes, not the %d ftruncate set" % (len(got), MiB))
    for off in range(0, MiB, 4096):
        page = got[off:off + 4096]
        if page != bytes(4096) and page != data[off:off + 4096]:
            sys.exit("mmap file page at %d is neither zeros nor the data written" % off)


def pattern(i):
    return (b"%08d" % i) * (MiB // 8)


def check_prefix(path, limit):
    """The file is a prefix of the pattern, at most limit bytes; returns its size."""
    with open(path, "rb") as f:
        got = f.read()
    if len(got) > limit:
        sys.exit("%s: %d bytes, more than the %d the mount holds" % (path, len(got), limit))
    for i in range(0, len(got), MiB):
        block = got[i:i + MiB]
        if block != pattern(i // MiB)[:len(block)]:
            zeros = block.count(0)
            sys.exit("%s: block at %d is not what was written (%d zero bytes)" % (path, i, zeros))
    return len(got)


def attempt(what, call):
    """Runs call and prints "WHAT ok" or "WHAT ERRNO"."""
    try:
        call()
        print(what, "ok")
    except OSError as e:
        print(what, errno.errorcode.get(e.errno, e.errno))


def endless(path, limit):
    """A writer that never stops (cat /dev/zero > f), opened before near full: write(2)
    itself must fail with ENOSPC before it has written four times what the mount holds, its
    close must succeed, and the file must read back exactly what write(2) acknowledged."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    i = 0
    try:
        while i * MiB < 4 * limit:
            os.write(fd, pattern(i))
            i += 1
        sys.exit("%d MiB written into a mount of %d bytes, and no ENOSPC" % (i, limit))
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
    print("write(2) at %d MiB: ENOSPC" % i)
    try:
        os.close(fd)
    except OSError as e:
        sys.exit("close after ENOSPC from write(2): %s (acknowledged data was refused)" %
                 errno.errorcode.get(e.errno, e.errno))
    drop_caches()
    got = check_prefix(path, limit)
    if got != i * MiB:
        sys.exit("%d bytes read back, %d acknowledged by write(2)" % (got, i * MiB))
    print(got, "bytes read back, all that write(2) acknowledged")


def early(path, total, limit):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    acked = 0
    for i in range(total // MiB):
        try:
            os.write(fd, pattern(i))
            acked += MiB
        except OSError as e:
            print("write(2) at %d: %s" % (i * MiB, errno.errorcode.get(e.errno, e.errno)))
            break
    print(acked, "bytes acknowledged by write(2)")
    # A small write 8 MiB further: the half MiB the blocks left free may take it at
    # writeback, past the refused blocks: it must not make them read back as zeros.
    far = total // MiB + 8
    try:
        os.pwrite(fd, pattern(far)[:4096], far * MiB)
    except OSError as e:
        print("far write(2):", errno.errorcode.get(e.errno, e.errno))
    attempt("fsync", lambda: os.fsync(fd))
    drop_caches()
    print("with the writer open:", check_prefix(path, limit), "bytes read back")
    attempt("close", lambda: os.close(fd))
    drop_caches()
    print("after close:", check_prefix(path, limit), "bytes read back")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "fill":
        fill(sys.argv[2], sys.argv[3])
    elif cmd == "mmap":
        mmap_write(sys.argv[2], sys.argv[3])
    elif cmd == "check_mmap":
        check_mmap(sys.argv[2], sys.argv[3])
    elif cmd == "endless":
        endless(sys.argv[2], int(sys.argv[3]))
    elif cmd == "early":
        early(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit("unknown command " + cmd)

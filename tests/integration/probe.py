"""Helpers shared by the Python probes of the integration scripts (lib.sh puts this
directory on PYTHONPATH): run a call and print its result or its errno name, so that the
same probe's output on tmpfs and on zbudfs can be compared line by line; and test data
that exists on every host (text_corpus, data_block)."""
import errno
import os
import pathlib

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def outcome(fn, *args):
    """'ok', the repr of a non-None result, or the errno name of the OSError raised."""
    try:
        r = fn(*args)
        return "ok" if r is None else repr(r)
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def t(label, fn, *args):
    """Prints 'label: outcome'."""
    print(f"{label}: {outcome(fn, *args)}")


def write(p, data=b"data", flags=os.O_WRONLY | os.O_CREAT, mode=0o644):
    """Writes data to path p with one write(2) on an fd opened with flags and mode."""
    fd = os.open(p, flags, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read(p):
    """The whole contents of path p."""
    with open(p, "rb") as f:
        return f.read()


def text_corpus(size=4 << 20):
    """size bytes of real text that ships with the repository on every host: its C++ sources
    and Markdown docs in path order, repeated to the size (unlike /usr/include, present on
    any distribution and architecture)."""
    parts = []
    for top in ("fs", "store", "tests", "docs"):
        for f in sorted((REPO_ROOT / top).rglob("*")):
            if f.suffix in (".h", ".cc", ".md") and f.is_file() and not f.is_symlink():
                parts.append(f.read_bytes())
    one = b"".join(parts)
    if not one:
        raise RuntimeError(f"no sources under {REPO_ROOT}")
    return (one * (size // len(one) + 1))[:size]


def data_block(kind, n, rnd, corpus):
    """n bytes of kind: "text" (a slice of corpus at a random offset), "random", "zero", or
    "mix4k" / "mix64k" (text, random and zero chunks of 4 KiB / 64 KiB chosen at random).
    rnd is a random.Random, so a seed replays the same data (random bytes aside)."""
    if kind == "text":
        o = rnd.randrange(0, len(corpus) - n + 1)
        return corpus[o:o + n]
    if kind == "random":
        return os.urandom(n)
    if kind == "zero":
        return bytes(n)
    if kind in ("mix4k", "mix64k"):
        c = 4096 if kind == "mix4k" else 65536
        kinds = ("text", "random", "zero")
        return b"".join(data_block(kinds[rnd.randrange(3)], min(c, n - i), rnd, corpus)
                        for i in range(0, n, c))
    raise ValueError(f"unknown data kind {kind!r}")

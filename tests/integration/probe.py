"""Helpers shared by the Python probes of the integration scripts (lib.sh puts this
directory on PYTHONPATH): run a call and print its result or its errno name, so that the
same probe's output on tmpfs and on zbudfs can be compared line by line."""
import errno


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

"""Python helpers shared by the benchmark scripts (scripts/bench.sh, scripts/bench_report.py,
scripts/bench-overflow.sh): reading fio's JSON output and `zstd -b`'s summary.

Run as a script: `benchlib.py summary FIO_JSON` prints "MiB/s IOPS p99us" of the first job,
`benchlib.py columns FIO_JSON` prints "MiB/s IOPS p99us" as bare numbers (for `read -r`)."""
import json
import re
import statistics
import sys

MiB = 2**20


def fio_job(path):
    """The first job of a fio --output-format=json file. fio may print warnings before the
    JSON object, so parsing starts at the first '{'. Raises on unreadable output."""
    t = open(path).read()
    return json.loads(t[t.index('{'):])['jobs'][0]


def fio_result(path):
    """The job's figures (its writes if it wrote, else its reads), or None if unreadable:
    mibs, iops, bytes, fio_cpus (CPUs fio used over its runtime), p99 (microseconds)."""
    try:
        j = fio_job(path)
    except Exception:
        return None
    d = j['write'] if j['write']['io_bytes'] else j['read']
    return {'mibs': d['bw_bytes'] / MiB, 'iops': d['iops'], 'bytes': d['io_bytes'],
            'fio_cpus': (j.get('usr_cpu', 0) + j.get('sys_cpu', 0)) / 100,
            'p99': d['clat_ns'].get('percentile', {}).get('99.000000', 0) / 1000}


def zstd_result(path):
    """(ratio, compress MiB/s, decompress MiB/s) from a `zstd -q -b -e` output file, or None.
    zstd prints MB/s in units of 10^6 bytes."""
    try:
        for line in open(path):
            g = re.search(r'\(\s*([\d.]+)\)\s+([\d.]+) MB/s\s+([\d.]+) MB/s', line)
            if g:
                return float(g.group(1)), float(g.group(2)) * 1e6 / MiB, float(g.group(3)) * 1e6 / MiB
    except OSError:
        pass
    return None


def zstd_limit(res, prefix, runs, nproc):
    """zstd's speed measured by scripts/bench.sh's zstd_limit on every run (files
    RES/PREFIX-rRUN-1.txt for one process alone, -nI.txt for the nproc at once), as medians:
    {'one': (compress, decompress) MiB/s of one process or None, 'all': (compress, decompress)
    summed over all processes or None, 'all_runs': [compress sums], 'ratio': ...}."""
    med = lambda xs: statistics.median(xs) if xs else None
    ones, alls, ratio = [], [], None
    for run in range(1, runs + 1):
        z = zstd_result('%s/%s-r%d-1.txt' % (res, prefix, run))
        if z:
            ones.append(z)
            ratio = z[0]
        zn = [zstd_result('%s/%s-r%d-n%d.txt' % (res, prefix, run, i)) for i in range(1, nproc + 1)]
        if zn and all(zn):
            alls.append((sum(x[1] for x in zn), sum(x[2] for x in zn)))
            ratio = zn[0][0]
    return {'one': (med([x[1] for x in ones]), med([x[2] for x in ones])) if ones else None,
            'all': (med([x[0] for x in alls]), med([x[1] for x in alls])) if alls else None,
            'all_runs': [x[0] for x in alls], 'ratio': ratio}


def main(argv):
    if len(argv) != 3 or argv[1] not in ('summary', 'columns'):
        print('usage: benchlib.py summary|columns FIO_JSON', file=sys.stderr)
        return 2
    f = fio_result(argv[2])
    if argv[1] == 'columns':
        if f is None:
            return 1
        print('%.0f %.0f %.0f' % (f['mibs'], f['iops'], f['p99']))
    elif f is None:
        print('unreadable result')
    else:
        print('%.0f MiB/s  %.0f IOPS  p99 %.0f us' % (f['mibs'], f['iops'], f['p99']))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))

"""Python helpers shared by the benchmark scripts (scripts/bench.sh, scripts/bench_report.py,
scripts/bench-overflow.sh): reading fio's JSON output.

Run as a script: `benchlib.py summary FIO_JSON` prints "MiB/s IOPS p99us" of the first job,
`benchlib.py columns FIO_JSON` prints "MiB/s IOPS p99us" as bare numbers (for `read -r`)."""
import json
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

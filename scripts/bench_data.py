"""What scripts/bench.sh measured, loaded once from the results directory (sys.argv[1]) for
bench_report.py and the modules it is split into: machine facts, the records, fio's
aggregated figures and the report being written (out, P)."""
import json, os, re, statistics, sys, textwrap

sys.dont_write_bytecode = True  # No __pycache__ in the source tree.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import fio_result, zstd_limit  # noqa: E402  (after the path is set)


res = sys.argv[1]
M = json.load(open(os.path.join(res, 'machine.json')))
M['loadavg_end'] = json.load(open(os.path.join(res, 'loadavg_end.json')))
recs = [json.loads(l) for l in open(os.path.join(res, 'records.jsonl')) if l.strip()]
cmds = [l.rstrip('\n').split('\t') for l in open(os.path.join(res, 'fio-commands.txt')) if l.strip()]
rcpath = os.path.join(res, 'realio-commands.txt')
rcmds = [l.rstrip('\n').split('\t') for l in open(rcpath) if l.strip()] if os.path.exists(rcpath) else []
TARGETS = [t for t in ['tmpfs', 'zram', 'passthrough_ll', 'memfs_ll', 'zbudfs', 'zbudfs_nowb']
           if t in M['targets'].split()]
TNAME = {'tmpfs': 'tmpfs', 'zram': 'zram+ext4', 'passthrough_ll': 'passthrough_ll', 'memfs_ll': 'memfs_ll',
         'zbudfs': 'zbudfs', 'zbudfs_nowb': 'zbudfs no_writeback'}
FUSE = [t for t in ('zbudfs', 'zbudfs_nowb', 'passthrough_ll', 'memfs_ll') if t in TARGETS]
ZB = [t for t in ('zbudfs', 'zbudfs_nowb') if t in TARGETS]  # zbudfs, and with -o no_writeback
PEERS = [t for t in ('passthrough_ll', 'memfs_ll') if t in TARGETS]
JOBS = ['seqwrite_buf', 'seqwrite_dir', 'seqread_dir', 'randread_dir', 'randwrite_dir']
JNAME = {'seqwrite_buf': ('seq write 1M', 'buffered, end_fsync'), 'seqwrite_dir': ('seq write 1M', 'direct'),
         'seqread_dir': ('seq read 1M', 'direct'), 'randread_dir': ('rand read 4k', 'direct'),
         'randwrite_dir': ('rand write 4k', 'direct')}
DNAME = {'c60': '60 % compr.', 'rand': 'incompr.'}
GROUPS = [(g.split(':')[0], int(g.split(':')[1])) for g in M['groups'].split()]
has = lambda d, nj, job: any((d, nj, job, t) in agg for t in TARGETS)
MiB = 2**20
med = lambda xs: statistics.median(xs) if xs else None

# aggregate fio steps: (data, nj, job, target) -> medians
agg = {}
for r in recs:
    if r['step'] != 'fio':
        continue
    k = (r['data'], r['numjobs'], r['job'], r['target'])
    f = fio_result(r['json']) if r['rc'] == 0 else None
    a = agg.setdefault(k, {'runs': [], 'fail': 0})
    if f is None:
        a['fail'] += 1
        continue
    s = r.get('stats') or {}
    sb = r.get('stats_before') or {}
    f.update(rss_before=r.get('rss_before_kb', 0) * 1024, mem_before=sb.get('mem_used_total'),
             settle=r.get('settle_s', 0))
    f.update(cpu=r['cpu_ticks'] / M['clk_tck'], hwm=r['hwm_kb'] * 1024, rss=r['rss_kb'] * 1024,
             mem=s.get('mem_used_total'), orig=s.get('orig_data_size'), compr=s.get('compr_data_size'),
             overflow=s.get('overflow_pages'))
    a['runs'].append(f)
def m(k, field):
    a = agg.get(k)
    if not a: return None
    xs = [x[field] for x in a['runs'] if x.get(field) is not None]
    return med(xs)

def fmt_rate(v, job):
    if v is None: return 'n/a'
    return ('%.0f' % v) if job.startswith('seq') else ('%.1fk' % (v / 1000))
def fmt_lat(us):
    if us is None: return 'n/a'
    return '%.0f µs' % us if us < 10000 else '%.1f ms' % (us / 1000)
def key_rate(job): return 'mibs' if job.startswith('seq') else 'iops'

out = []
P = out.append
MEMFS = ('libfuse 3.17\'s in-memory example, from `%s` built against libfuse %s, `memfs_ll -f MNT`: '
         'the in-memory FUSE peer' % (os.path.basename(M.get('memfs_src') or 'memfs_ll.cc'), M['libfuse'])
         if 'memfs_ll' in TARGETS else 'skipped: ' + (M.get('memfs') or 'not requested'))

#!/usr/bin/env python3
"""The report of scripts/bench.sh: reads a results directory (machine.json, loadavg_end.json,
records.jsonl, fio-commands.txt, realio-commands.txt, fio/*.json, zstd-*.txt) and writes report.md, targets.txt, the chart's
data files and chart.gp there; prints targets.txt (the targets zbudfs aims for, each explained
in a sentence, and whether this run MET or MISSED them).

Usage: scripts/bench_report.py RESULTS_DIR"""
import os, sys, textwrap

sys.dont_write_bytecode = True  # No __pycache__ in the source tree.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_data import *  # noqa: E402,F401,F403  (results, fio figures, the report: out, P)
from bench_meta_report import *  # noqa: E402,F401,F403
from bench_chart import write_chart  # noqa: E402

# ---------------------------------------------------------------- real data (realio)
RJOBS = ['seqwrite', 'seqread', 'randread', 'randwrite']
RNAME = {'seqwrite': 'seq write 1M, buffered + fsync', 'seqread': 'seq read 1M, O_DIRECT',
         'randread': 'rand read 4k, O_DIRECT', 'randwrite': 'rand write 4k, O_DIRECT'}
ragg = {}  # (threads, job, target) -> {'runs': [...], 'fail': n}
for r in recs:
    if r['step'] != 'realio':
        continue
    a = ragg.setdefault((r['threads'], r['job'], r['target']), {'runs': [], 'fail': 0, 'verified': 0})
    x = r.get('result')
    if r['rc'] or not x:
        a['fail'] += 1
        continue
    a['verified'] += bool(r.get('verify'))
    s = r.get('stats') or {}
    a['runs'].append({'mibs': x['mib_s'], 'iops': x['iops'], 'bytes': x['bytes'], 'ops': x['ops'],
                      'corpus': x.get('corpus_bytes'), 'cpu': r['cpu_ticks'] / M['clk_tck'],
                      'orig': s.get('orig_data_size'), 'compr': s.get('compr_data_size'),
                      'mem': s.get('mem_used_total'),
                      'mem_packed': (r.get('stats_compressed') or {}).get('mem_used_total'),
                      'compr_packed': (r.get('stats_compressed') or {}).get('compr_data_size')})
RTHREADS = sorted({k[0] for k in ragg})
def rm(k, field):
    xs = [x[field] for x in ragg.get(k, {'runs': []})['runs'] if x.get(field) is not None]
    return med(xs)
def rrate(k):
    """MiB/s of a sequential job, IOPS of a random one (the figure the tables show)."""
    return rm(k, 'mibs' if k[1].startswith('seq') else 'iops')
def rcell(k):
    v = rrate(k)
    if v is None:
        return 'failed' if ragg.get(k, {}).get('fail') else 'n/a'
    return fmt_rate(v, k[1])
ZREAL = zstd_limit(res, 'zstd-real', M['runs'], M['nproc'])
real_targets = []  # MET/MISSED lines of the real-data target (REAL_TARGET)
REAL_TARGET = ('zbudfs should move as many MiB/s as the better of the FUSE peers that keep data '
               'in memory uncompressed (passthrough_ll over a tmpfs, memfs_ll: what FUSE itself allows) '
               'or, where zstd on every core cannot go that fast (compressing for writes, decompressing '
               'for reads), at least 0.9× that all-core zstd limit, the most a compressing file system '
               'can do on this machine.')


def realdata_row(nt, job):
    """The headline table's row, and the real-data target's verdict on it (REAL_TARGET): zbudfs >= 1.0x the better FUSE
    peer or, where zstd on all cores cannot go that fast (compress for writes, decompress for
    reads), >= 0.9x that zstd limit. Compared in MiB/s."""
    cells = [rcell((nt, job, t)) for t in TARGETS]
    zm = rm((nt, job, 'zbudfs'), 'mibs') if 'zbudfs' in TARGETS else None
    peer = max([v for v in (rm((nt, job, t), 'mibs') for t in PEERS) if v is not None], default=None)
    zl = ZREAL['all'][0 if job.endswith('write') else 1] if ZREAL['all'] else None
    rp = zm / peer if zm and peer else None
    rz = zm / zl if zm and zl else None
    if PEERS and 'zbudfs' in TARGETS:
        cells.append('%.2f×' % rp if rp else 'n/a')
    if 'zbudfs' in TARGETS:
        cells.append('%.2f×' % rz if rz else 'n/a')
    if zm is not None and peer is not None:
        if zl is not None and zl < peer:
            need, why = 0.9 * zl, '0.9× the all-core zstd limit (%.0f MiB/s, below the better FUSE peer\'s %.0f)' % (zl, peer)
        else:
            need, why = peer, '1.0× the better FUSE peer (%.0f MiB/s)' % peer
        real_targets.append('%s %s, %d thread%s: %.0f MiB/s, need ≥ %s'
                       % ('MET   ' if zm >= need else 'MISSED', RNAME[job], nt, '' if nt == 1 else 's', zm, why))
    return '| %s | %d | %s |' % (RNAME[job], nt, ' | '.join(cells))


def realdata_cpu_table():
    """Daemon CPU per operation of the FUSE targets: µs per MiB moved (sequential jobs) or per
    request (random jobs); utime+stime of the daemon over the step, so clock-tick grained."""
    if not FUSE:
        return
    P('Daemon CPU per operation (utime + stime of the FUSE daemon during the step, all its threads; '
      'µs per MiB for sequential jobs, µs per 4 KiB request for random ones; medians; ticks are %d ms, '
      'so short steps are coarse):' % (1000 // M['clk_tck']))
    P('')
    P('| job | threads | ' + ' | '.join(TNAME[t] for t in FUSE) + ' |')
    P('|---|---:|' + '---:|' * len(FUSE))
    for job in RJOBS:
        for nt in RTHREADS:
            cells = []
            for t in FUSE:
                runs = ragg.get((nt, job, t), {'runs': []})['runs']
                per = [x['cpu'] * 1e6 / (x['bytes'] / MiB if job.startswith('seq') else x['ops'])
                       for x in runs if x['ops']]
                cells.append('%.0f µs/%s' % (med(per), 'MiB' if job.startswith('seq') else 'req') if per else 'n/a')
            P('| %s | %d | %s |' % (RNAME[job], nt, ' | '.join(cells)))
    P('')


def realdata_section():
    if not ragg:
        return
    P('### Real data: MiB/s for sequential jobs, IOPS for random ones (the headline)')
    P('')
    corpus = med([x['corpus'] for a in ragg.values() for x in a['runs'] if x.get('corpus')])
    ver = sum(a['verified'] for (nt, job, t), a in ragg.items() if job == 'seqread')
    nver = sum(len(a['runs']) + a['fail'] for (nt, job, t), a in ragg.items() if job == 'seqread')
    P('Measured with `build/tests/realio` (tests/bench/realio.cc): each thread writes and reads its own '
      '%s file made of 4 KiB pages cut from real files (its default corpus, `/usr/include` and '
      '`/usr/lib/x86_64-linux-gnu`, %.0f MiB of pages, dumped once with `--dump-corpus` and read back by every run '
      'with `--corpus CORPUS.dat`), so the data compresses as real text and binaries '
      'do, not as fio\'s buffers. Jobs: sequential 1 MiB buffered writes of the whole file then `fsync` '
      '(timed), O_DIRECT 1 MiB sequential reads, O_DIRECT 4 KiB random reads and writes for %d s; 1 and 2 '
      'threads; files deleted (and zbudfs settled) before each write; every figure the **median of %d '
      'run%s**, targets interleaved as for fio, before the fio jobs. Every sequential read checked each page '
      'against what was written (`--verify`): %d of %d passed. Ratios: zbudfs ÷ the better of %s, and zbudfs '
      '(in MiB/s) ÷ the all-core zstd limit on the same corpus (compress for writes, decompress for reads; '
      'below).' % (M['size'].replace('M', ' MiB'), (corpus or 0) / MiB, M['runtime'], M['runs'],
                   '' if M['runs'] == 1 else 's', ver, nver, ' and '.join(PEERS) or 'no FUSE peer'))
    P('')
    head = [TNAME[t] for t in TARGETS]
    if PEERS and 'zbudfs' in TARGETS:
        head.append('zbudfs ÷ best FUSE peer')
    if 'zbudfs' in TARGETS:
        head.append('zbudfs ÷ zstd limit')
    P('| job | threads | ' + ' | '.join(head) + ' |')
    P('|---|---:|' + '---:|' * len(head))
    for job in RJOBS:
        for nt in RTHREADS:
            P(realdata_row(nt, job))
    P('')
    if ZREAL['all']:
        one = ZREAL['one']
        P('zstd on the same corpus (`realio --dump-corpus`, then `zstd -q -b%d -e%d -B4096 -i%d`, medians): '
          '%s%d processes at once %.0f MiB/s compress, %.0f MiB/s decompress in all (the **all-core zstd '
          'limit**); ratio %.2f.' % (M['zstd_level'], M['zstd_level'], M['zstd_secs'],
                                    ('one process %.0f MiB/s compress, %.0f MiB/s decompress per core; '
                                     % one) if one and None not in one else '',
                                    M['nproc'], ZREAL['all'][0], ZREAL['all'][1], ZREAL['ratio'] or 0))
    else:
        P('zstd benchmark on the corpus unreadable (see zstd-real-*.txt in the results directory).')
    P('')
    def ratio(x, field):
        return x['orig'] / x[field] if x.get(field) and x.get('orig') else None
    dens = [tuple(ratio(x, f) for f in ('compr', 'mem', 'compr_packed', 'mem_packed'))
            for (nt, job, t), a in ragg.items() if t == 'zbudfs' and job == 'seqwrite' for x in a['runs']]
    if dens:
        fig = ['%.2f' % med([d[i] for d in dens if d[i]]) if any(d[i] for d in dens) else 'n/a'
               for i in range(4)]
        P('zbudfs after its sequential writes: orig/compr %s, orig/mem %s at the end of the write '
          '(staged pages still whole), orig/compr %s, orig/mem %s once the compressors have emptied '
          'the staging tier (medians; orig_data_size ÷ compr_data_size and ÷ mem_used_total).' % tuple(fig))
        P('')
    realdata_cpu_table()
    if real_targets:
        P('Target on real data (zbudfs, medians): ' + REAL_TARGET)
        P('')
        P('```')
        for l in real_targets: P(l)
        P('```')
        P('')
P('## fio on the mountpoint — %s (%s run)' % (M['date'], M['mode']))
P('')
P('Written by `scripts/bench.sh%s`. Machine: %d CPUs (%s), %.1f GiB RAM, kernel %s, %s; '
  '%s, zstd %s, libfuse %s, gcc %s. zbudfs `%s` with default options (zstd level %d). '
  'Load average at start %s, at end %s: other work shared this machine, so figures are noisy.'
  % (' --quick' if M['mode'] == 'quick' else '', M['nproc'], M['cpu'], M['mem_total_kb'] / 2**20,
     M['kernel'], M['os'], M['fio'], M['zstd'].split()[-1] if M['zstd'] else '?', M['libfuse'],
     M['gcc'], M['zbudfs'], M['zstd_level'], M['loadavg_start'], M['loadavg_end']))
P('')
P('Targets: **zbudfs** (`build/zbudfs -f MNT`, defaults); **tmpfs** (defaults, the RAM ceiling); '
  '**passthrough_ll** (libfuse %s\'s example, compiled from `/usr/share/doc/libfuse3-dev/examples`, '
  '`-o source=TMPFS,writeback,cache=always`, the FUSE ceiling); **memfs_ll** (%s); **zram+ext4** (%s).'
  % (M['libfuse'], MEMFS, M['zram'] if 'zram' in TARGETS else 'skipped: ' + (M['zram'] or 'not requested')))
P('')
realdata_section()
if agg:  # --only without fio: no fio section
    P('### fio\'s synthetic buffers')
    P('')
    P('fio jobs: `ioengine=psync` (iodepth 1), %s per job, `numjobs` 1 or 2 with `group_reporting`; '
      'sequential jobs write into freshly deleted files, reads and random writes use the files the '
      'buffered sequential write left; random jobs are time-based, %d s. Reads are `direct=1` (the store, '
      'not the page cache); writes are buffered (with `end_fsync=1`, so the time includes handing the data '
      'to the store) or `direct=1`, as the table says. Data: fio\'s 60 %%-compressible buffers '
      '(`buffer_compress_percentage=60 buffer_compress_chunk=4096 refill_buffers=1`) or incompressible '
      '(`refill_buffers=1`). Every figure is the **median of %d run%s** (runs interleave the targets job by job, each run starting with the next target).'
      % (M['size'].replace('M', ' MiB'), M['runtime'], M['runs'], '' if M['runs'] == 1 else 's'))
    P('')
    P('![fio and tree copy: %s](bench.png)' % ', '.join(TNAME[t] for t in TARGETS))
    P('')
    P('### Throughput: MiB/s for sequential jobs, IOPS for random ones')
    P('')
    P('| data | jobs | job | writes | ' + ' | '.join(TNAME[t] for t in TARGETS) +
      (' | zbudfs ÷ passthrough_ll |' if 'zbudfs' in TARGETS and 'passthrough_ll' in TARGETS else ' |'))
    P('|---|---|---|---|' + '---:|' * len(TARGETS) +
      ('---:|' if 'zbudfs' in TARGETS and 'passthrough_ll' in TARGETS else ''))
    for (d, nj) in GROUPS:
        for job in JOBS:
            if not has(d, nj, job): continue
            cells = [fmt_rate(m((d, nj, job, t), key_rate(job)), job) for t in TARGETS]
            row = '| %s | %d | %s | %s | %s |' % (DNAME[d], nj, JNAME[job][0], JNAME[job][1], ' | '.join(cells))
            if 'zbudfs' in TARGETS and 'passthrough_ll' in TARGETS:
                a, b = m((d, nj, job, 'zbudfs'), key_rate(job)), m((d, nj, job, 'passthrough_ll'), key_rate(job))
                row += ' %s |' % ('%.2f×' % (a / b) if a and b else 'n/a')
            P(row)
    P('')
    P('### Every figure: MiB/s · IOPS · p99 completion latency (medians)')
    P('')
    P('| data | jobs | job | writes | ' + ' | '.join(TNAME[t] for t in TARGETS) + ' |')
    P('|---|---|---|---|' + '---|' * len(TARGETS))
    for (d, nj) in GROUPS:
        for job in JOBS:
            if not has(d, nj, job): continue
            cells = []
            for t in TARGETS:
                k = (d, nj, job, t)
                if m(k, 'mibs') is None:
                    cells.append('failed' if agg.get(k, {}).get('fail') else 'n/a')
                else:
                    cells.append('%.0f MiB/s · %.0f · p99 %s' % (m(k, 'mibs'), m(k, 'iops'), fmt_lat(m(k, 'p99'))))
            P('| %s | %d | %s | %s | %s |' % (DNAME[d], nj, JNAME[job][0], JNAME[job][1], ' | '.join(cells)))
    P('')

    fuse = [t for t in ('zbudfs', 'passthrough_ll') if t in TARGETS]
    if 'zbudfs' in TARGETS:
        P('### zbudfs: memory and CPU per job (medians)')
        P('')
        st = [x['settle'] for (d, nj, job, t), a in agg.items() if t == 'zbudfs' for x in a['runs'] if x.get('settle')]
        P('zbudfs frees a deleted file\'s pages when the kernel forgets the inode, a little after `rm` returns: '
          'before each sequential write the script deletes the old files and waits until zbudfs reports '
          '`orig_data_size` 0 and `mem_used_total` down to `inode_bytes` (what the directories left take; '
          'that took up to %.1f s, median %.1f s), then 1 s more, '
          'in which the daemon hands the freed heap and wholly free mappings back (it does once deletes '
          'have stopped for 100 ms); the RSS checks after deletes are taken then.' % (max(st) if st else 0, med(st) if st else 0))
        P('')
        P('`orig/compr` = orig_data_size ÷ compr_data_size, `orig/mem` = orig_data_size ÷ mem_used_total, '
          'both after the job; peak RSS = the daemon\'s VmHWM during the job (reset before it); CPU = the '
          'daemon\'s utime+stime during the job' + (', beside passthrough_ll\'s for the same job.' if len(fuse) == 2 else '.'))
        P('')
        P('| data | jobs | job | writes | orig/compr | orig/mem | mem_used | peak RSS | zbudfs CPU | zbudfs CPU s/GiB |'
          + (' passthrough_ll CPU s/GiB |' if len(fuse) == 2 else ''))
        P('|---|---|---|---|---:|---:|---:|---:|---:|---:|' + ('---:|' if len(fuse) == 2 else ''))
        for (d, nj) in GROUPS:
            for job in JOBS:
                k = (d, nj, job, 'zbudfs')
                a = agg.get(k)
                if not a or not a['runs']:
                    continue
                def per_gib(t):
                    xs = [x['cpu'] / (x['bytes'] / 2**30) for x in agg.get((d, nj, job, t), {'runs': []})['runs'] if x['bytes']]
                    return '%.2f' % med(xs) if xs else 'n/a'
                r1 = med([x['orig'] / x['compr'] for x in a['runs'] if x.get('compr')])
                r2 = med([x['orig'] / x['mem'] for x in a['runs'] if x.get('mem')])
                P('| %s | %d | %s | %s | %s | %s | %.0f MiB | %.0f MiB | %.2f s | %s |%s' % (
                    DNAME[d], nj, JNAME[job][0], JNAME[job][1], '%.2f' % r1 if r1 else 'n/a', '%.2f' % r2 if r2 else 'n/a',
                    m(k, 'mem') / MiB, m(k, 'hwm') / MiB, m(k, 'cpu'), per_gib('zbudfs'),
                    (' %s |' % per_gib('passthrough_ll')) if len(fuse) == 2 else ''))
        P('')

meta_section()

# zstd limit
zl = zstd_limit(res, 'zstd', M['runs'], M['nproc'])
z1 = (None,) + zl['one'] if zl['one'] else None
zall = zl['all'][0] if zl['all'] else None
zalls, zratio = zl['all_runs'], zl['ratio']
zsecs = M['zstd_secs']
if agg:  # measured between the fio jobs: not without them (--only)
    P('### zstd on this machine')
    P('')
if not agg:
    pass
elif zall:
    P('`zstd -q -b%d -e%d -B4096 -i%d FILE` on 64 MiB of fio\'s 60 %%-compressible data (written by fio with the '
      'buffer options above), at the start of each run, medians%s; %d such processes at once (one per CPU): '
      '%.0f MiB/s compress in all (the sum of their figures; per run: %s; ratio %.2f) — the **zstd limit** for writes.'
      % (M['zstd_level'], M['zstd_level'], zsecs,
         (': one process alone %.0f MiB/s compress, %.0f MiB/s decompress' % (z1[1], z1[2])) if z1 else '',
         M['nproc'], zall, ', '.join('%.0f' % x for x in zalls), zratio))
else:
    P('zstd benchmark output unreadable (see zstd-*.txt in the results directory).')
if agg:
    P('')

# targets
lines = []
def verdict(name, have, need, unit, fmt='%.0f', higher=True, out=None):
    lines = out if out is not None else globals()['lines']
    if have is None or need is None:
        lines.append('SKIPPED  %s: not measured' % name); return
    ok = have >= need if higher else have <= need
    if higher:
        how = ('%.0f %% to spare' % ((have / need - 1) * 100)) if ok else ('short by %.0f %%' % ((1 - have / need) * 100))
        rel = '≥'
    else:
        how = (('%s %s to spare' % (fmt % (need - have), unit)) if ok else ('over by %s %s' % (fmt % (have - need), unit)))
        rel = '≤'
    u = (' ' + unit) if unit else ''
    lines.append('%s %s: %s%s, need %s %s%s (%s)' % ('MET   ' if ok else 'MISSED', name, fmt % have, u, rel, fmt % need, u, how))
def v(d, nj, job, t, f): return m((d, nj, job, t), f)
if 'zbudfs' in TARGETS and agg:
    hd, hn = ('c60', 2) if ('c60', 2) in GROUPS else GROUPS[-1]
    for job, label in (('seqwrite_buf', 'buffered'), ('seqwrite_dir', 'direct')):
        pt = v(hd, hn, job, 'passthrough_ll', 'mibs')
        need, why = None, ''
        if pt is not None:
            need, why = 0.8 * pt, '0.8× passthrough_ll (%.0f)' % pt
        if zall is not None and (need is None or 0.9 * zall < need):
            need, why = 0.9 * zall, '0.9× zstd limit (%.0f), lower than 0.8× passthrough_ll' % zall
        verdict('seq write 1M %s, %s, %d jobs vs %s' % (label, DNAME[hd], hn, why), v(hd, hn, job, 'zbudfs', 'mibs'), need, 'MiB/s')
    pt = v(hd, hn, 'seqread_dir', 'passthrough_ll', 'mibs')
    verdict('seq read 1M direct, %s, %d jobs vs 0.9× passthrough_ll' % (DNAME[hd], hn),
            v(hd, hn, 'seqread_dir', 'zbudfs', 'mibs'), 0.9 * pt if pt else None, 'MiB/s')
    for job in ('randread_dir', 'randwrite_dir'):
        pt = v(hd, hn, job, 'passthrough_ll', 'iops')
        verdict('%s direct, %s, %d jobs vs 0.9× passthrough_ll' % (JNAME[job][0], DNAME[hd], hn),
                v(hd, hn, job, 'zbudfs', 'iops'), 0.9 * pt if pt else None, 'IOPS')
    if ('c60', 1) in GROUPS and ('c60', 2) in GROUPS:
        for job, label in (('seqwrite_buf', 'buffered'), ('seqwrite_dir', 'direct')):
            a, b = v('c60', 2, job, 'zbudfs', 'mibs'), v('c60', 1, job, 'zbudfs', 'mibs')
            # How much of the machine one job already used while it wrote (fio's own CPU
            # share, and the daemon's CPU seconds over the seconds of I/O): 1.7x needs
            # that much to be left idle.
            fio1, cpu1 = v('c60', 1, job, 'zbudfs', 'fio_cpus'), v('c60', 1, job, 'zbudfs', 'cpu')
            bytes1 = v('c60', 1, job, 'zbudfs', 'bytes')
            secs1 = bytes1 / MiB / b if b and bytes1 else None
            room = (('; with 1 job fio used %.2f of the %d CPUs and the daemon %.2f'
                     % (fio1, M['nproc'], cpu1 / secs1)) if fio1 is not None and cpu1 and secs1 else '')
            verdict('seq write %s, %s: 2 jobs vs 1 job (%s vs %s MiB/s%s)' % (label, DNAME['c60'],
                    '%.0f' % a if a else 'n/a', '%.0f' % b if b else 'n/a', room),
                    a / b if a and b else None, 1.7, '×', '%.2f')
    dens = [x['orig'] / x['mem'] for (d, nj, job, t), a in agg.items() if t == 'zbudfs' and d == 'c60'
            and job == 'seqwrite_buf' for x in a['runs'] if x.get('mem')]
    verdict('density orig_data_size/mem_used_total, %s, after the buffered seq write' % DNAME['c60'],
            med(dens), 1.9, '', '%.2f')
if 'zbudfs' in TARGETS:
    # RSS: peak during each fresh write and the tree copies vs mem_used at their end; RSS after rm
    checks = []
    for (d, nj, job, t), a in agg.items():
        if t == 'zbudfs' and job in ('seqwrite_buf', 'seqwrite_dir'):
            for x in a['runs']:
                if x.get('mem_before') is not None:
                    checks.append(('RSS before %s, %s, %d job%s (previous files deleted and freed)' % (job, DNAME[d], nj, '' if nj == 1 else 's'),
                                   x['rss_before'], x['mem_before']))
                if x.get('mem') is not None:
                    checks.append(('peak RSS during %s, %s, %d job%s' % (job, DNAME[d], nj, '' if nj == 1 else 's'), x['hwm'], x['mem']))
    for mode in ('serial', 'parallel'):
        what = 'the tree copy' if mode == 'serial' else 'the %d tree copies at once' % NCOPIES
        for r in trees.get((mode, 'zbudfs'), {'runs': []})['runs']:
            if r.get('stats'):
                checks.append(('peak RSS during %s' % what, r['hwm_kb'] * 1024, r['stats']['mem_used_total']))
            if r['after_rm'].get('stats'):
                checks.append(('RSS after rm -rf of %s' % what, r['after_rm']['rss_kb'] * 1024,
                               r['after_rm']['stats']['mem_used_total']))
    if checks:
        allow = lambda c: c[2] * 1.03 + 32 * MiB
        worst = max(checks, key=lambda c: c[1] - allow(c))
        verdict('daemon RSS vs mem_used_total + 3 %% + 32 MiB, worst of %d checks: %s (mem_used %.0f MiB)'
                % (len(checks), worst[0], worst[2] / MiB), worst[1] / MiB, allow(worst) / MiB, 'MiB', '%.0f', higher=False)
        byname = {}
        for c in checks:
            if c[0] not in byname or c[1] - allow(c) > byname[c[0]][1] - allow(byname[c[0]]):
                byname[c[0]] = c
        for c in sorted(byname.values(), key=lambda c: c[0]):
            lines.append('         %s: RSS %.0f MiB, mem_used %.0f MiB, allowed %.0f MiB' % (c[0], c[1] / MiB, c[2] / MiB, allow(c) / MiB))
FIO_TARGETS = ('zbudfs should write 1 MiB blocks sequentially at least 0.8× as fast as passthrough_ll '
               '(what FUSE itself allows) or, where that is lower, at 0.9× the zstd limit (the most '
               'this machine can compress); read sequentially and do 4 KiB random reads and writes '
               '(direct I/O) at least 0.9× as fast as passthrough_ll; write at least 1.7× as fast with '
               'two writers as with one (writing uses more than one core); hold at least 1.9 bytes of '
               'data per byte of memory after the buffered write (orig_data_size ÷ mem_used_total); '
               'and keep the daemon\'s RSS within mem_used_total + 3 % + 32 MiB (the memory the '
               'statistics report is the memory it takes).')
if lines:
    P('### Targets on fio\'s buffers (zbudfs, medians)')
    P('')
    P(FIO_TARGETS)
    P('')
    P('```')
    for l in lines: P(l)
    P('```')
    P('')
META_TARGETS = ('zbudfs should copy a real tree (`cp -a` + `sync -f`) and delete it (`rm -rf` + `sync -f`), '
                'one copy and %d at once, at least as fast as the faster of the FUSE peers that keep '
                'everything in memory (passthrough_ll over a tmpfs, memfs_ll: what FUSE itself allows; '
                'speed ratio = the peer\'s seconds ÷ zbudfs\'s), and delete at least 1.5× as fast as memfs_ll; '
                'cost the kernel at most one FUSE request per copied entry more than passthrough_ll (its '
                'requests counted in the debug output of a second mount); and create, stat and delete files '
                '(fio\'s filecreate, filestat, filedelete engines, 1 and 2 jobs) at least as fast as memfs_ll, '
                'in IOPS.' % NCOPIES)
meta_lines = []
for zt in ZB if trees or mfio or reqs else ():
    zn = TNAME[zt]
    for mode, field, label in TREE_ROWS:
        if not any((mode, t) in trees for t in TARGETS):
            continue
        z, bp = tm(mode, zt, field), best_peer(mode, field)
        skipped = [p for p in PEERS if trees.get((mode, p), {}).get('skipped')]
        verdict('%s: %s %s vs the faster FUSE peer%s (%s), speed ratio'
                % (label, zn, '%.2f s' % z if z else 'n/a', ' measured' if skipped else '',
                   '%s %.2f s' % (bp[1], bp[0]) if bp else 'none measured'),
                bp[0] / z if z and bp else None, 1.0, '×', '%.2f', out=meta_lines)
        if field == 'rm_seconds':
            mm = tm(mode, 'memfs_ll', field)
            verdict('%s: %s vs 1.5× memfs_ll (%s), speed ratio' % (label, zn, '%.2f s' % mm if mm else 'n/a'),
                    mm / z if z and mm else None, 1.5, '×', '%.2f', out=meta_lines)
    if reqs or reqfail:
        z, p = per_entry(zt, 'cp'), per_entry('passthrough_ll', 'cp')
        r = reqs.get((zt, 'cp')) or reqs.get(('passthrough_ll', 'cp')) or {}
        verdict('%s: FUSE requests per copied entry (cp -a %s, %s entries) vs passthrough_ll (%s) + 1'
                % (zn, r.get('tree', '?'), r.get('entries', '?'), '%.2f' % p if p is not None else 'n/a'),
                z, p + 1 if p is not None else None, 'requests', '%.2f', higher=False, out=meta_lines)
    for eng in MENGINES if mfio else ():
        for nj in MNJ:
            p = mf(eng, nj, 'memfs_ll')
            verdict('%s: fio %s, %d job%s vs memfs_ll (%s IOPS)'
                    % (zn, eng, nj, '' if nj == 1 else 's', '%.0f' % p if p else 'n/a'),
                    mf(eng, nj, zt), p, 'IOPS', out=meta_lines)
if meta_lines:
    P('### Targets on metadata (%s, medians)' % ' and '.join(TNAME[z] for z in ZB))
    P('')
    P(META_TARGETS)
    P('')
    P('```')
    for l in meta_lines: P(l)
    P('```')
    P('')
mpath = os.path.join(res, 'meta-commands.txt')
mcmds = [l.rstrip('\n').split('\t') for l in open(mpath) if l.strip()] if os.path.exists(mpath) else []
P('<details><summary>fio, realio and metadata command lines (TARGET = the mount point or the tmpfs/ext4 directory)</summary>')
P('')
P('```')
for c in cmds:
    P('# %s, %s job(s), %s' % (DNAME[c[0]], c[1], c[2]))
    P(c[3])
for c in rcmds:
    P('# real data, %s thread(s), %s' % (c[0], c[1]))
    P(c[2])
for c in mcmds:
    P('# metadata, %s job(s), %s%s' % (c[0], c[1], ' (not measured: gives each file its 4 KiB for filestat)' if c[1] == 'fill' else ''))
    P(c[2])
P('```')
P('</details>')
P('')
open(os.path.join(res, 'report.md'), 'w').write('\n'.join(out))
def target_block(title, sentence, verdicts):
    if not verdicts:
        return ''
    return (textwrap.fill('%s: %s' % (title, sentence), 95, break_on_hyphens=False) + '\n'
            + '\n'.join(verdicts) + '\n')
targets_txt = '\n'.join(b for b in (target_block('Target on real data (zbudfs, medians)', REAL_TARGET, real_targets),
                                    target_block('Targets on fio\'s buffers (zbudfs, medians)', FIO_TARGETS, lines),
                                    target_block('Targets on metadata (zbudfs, medians)', META_TARGETS, meta_lines))
                         if b)
open(os.path.join(res, 'targets.txt'), 'w').write(targets_txt)

write_chart()
print(targets_txt, end='')

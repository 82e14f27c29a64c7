"""The metadata part of bench_report.py's report: tree copies and deletes, fio's file
engines and FUSE request counts, aggregated from the records, and its section (meta_section)."""
from bench_data import *  # noqa: F401,F403  (the shared results and the report being written)

# ---------------------------------------------------------------- metadata
NCOPIES = M.get('ncopies', 4)
TREE_ROWS = [('serial', 'seconds', 'cp -a + sync -f, 1 copy'), ('serial', 'rm_seconds', 'rm -rf + sync -f, 1 copy'),
             ('parallel', 'seconds', 'cp -a + sync -f, %d at once' % NCOPIES),
             ('parallel', 'rm_seconds', 'rm -rf + sync -f, %d at once' % NCOPIES)]
trees = {}  # (serial|parallel, target) -> {'runs': [records], 'skipped': reason}
for r in recs:
    if r['step'] != 'tree':
        continue
    a = trees.setdefault((r.get('mode', 'serial'), r['target']), {'runs': [], 'skipped': None})
    if r.get('skipped'):
        a['skipped'] = r['skipped']
    else:
        a['runs'].append(r)
def tm(mode, t, field):
    """Median over the runs of a tree step's figure (seconds, rm_seconds, ...), or None."""
    xs = [x[field] for x in trees.get((mode, t), {'runs': []})['runs'] if x.get(field) is not None]
    return med(xs)
def best_peer(mode, field):
    """(seconds, name) of the faster FUSE peer in a tree step (the lower median), or None."""
    return min([(tm(mode, p, field), p) for p in PEERS if tm(mode, p, field) is not None], default=None)
mfio = {}  # (engine, numjobs, target) -> {'runs': [fio results], 'fail': n, 'skipped': reason}
for r in recs:
    if r['step'] != 'metafio':
        continue
    a = mfio.setdefault((r['engine'], r['numjobs'], r['target']), {'runs': [], 'fail': 0, 'skipped': None})
    if r.get('skipped'):
        a['skipped'] = r['skipped']
        continue
    f = fio_result(r['json']) if r['rc'] == 0 else None
    if f is None:
        a['fail'] += 1
    else:
        f['cpu'] = r.get('cpu_ticks', 0) / M['clk_tck']
        a['runs'].append(f)
MENGINES = M.get('meta_engines', 'filecreate filestat filedelete').split()
MNJ = [int(x) for x in M.get('meta_numjobs', '1 2').split()]
def mf(eng, nj, t, field='iops'):
    return med([x[field] for x in mfio.get((eng, nj, t), {'runs': []})['runs']])
reqs = {(r['target'], r['op']): r for r in recs if r['step'] == 'fuse_requests' and r.get('op')}
reqfail = {r['target']: r for r in recs if r['step'] == 'fuse_requests' and not r.get('op')}
def per_entry(t, op, name='total'):
    r = reqs.get((t, op))
    return r['requests'].get(name, 0) / r['entries'] if r and r['entries'] else None

def cp_note(r):
    """Why cp -a failed, when its errors are all of one kind (memfs_ll has no symlinks)."""
    n, links = r.get('cp_errors', 0), r.get('cp_symlink_errors', 0)
    first = ''
    try:
        first = next(l for l in open(r['cp_err']) if l.strip()).rsplit(': ', 1)[-1].strip()
    except (OSError, KeyError, StopIteration):
        pass
    if n and links == n:
        return '%d symlinks not created%s' % (links, ': ' + first if first else '')
    return '%d error lines%s' % (n, ' (see %s)' % os.path.basename(r['cp_err']) if r.get('cp_err') else '')

def meta_section():
    if not trees and not mfio and not reqs:
        return
    P('### Metadata: copying and deleting a real tree, fio\'s file engines, FUSE requests')
    P('')
    if not agg:
        P('![tree copy: %s](bench.png)' % ', '.join(TNAME[t] for t in TARGETS))
        P('')
    P('The tree: `%s`, %.0f MiB in %d files, %d entries in all%s; read once beforehand so that '
      'the copies come from the page cache. **1 copy**: `cp -a TREE TARGET/tree/1/ && sync -f`; then `rm -rf` '
      'of it and `sync -f`. **%d at once**: %d `cp -a` started together, each into its own directory, timed '
      'until the last ends, then `sync -f`; then %d `rm -rf` at once and `sync -f`. Seconds, the **median of %d '
      'run%s** (targets rotated as for fio); MiB/s = file bytes copied ÷ seconds.%s%s'
      % (M['tree'], M['tree_bytes'] / MiB, M['tree_files'], M['tree_inodes'],
         ', no symlinks (memfs_ll has none)' if not M.get('tree_links') else
         ', %d symlinks (memfs_ll has none: cp reports those it cannot create)' % M['tree_links'],
         NCOPIES, NCOPIES, NCOPIES, M['runs'], '' if M['runs'] == 1 else 's',
         ' The last column%s: the faster FUSE peer\'s seconds ÷ zbudfs\'s (above 1: zbudfs is faster).'
         % ('s' if len(ZB) > 1 else '') if PEERS and ZB else '',
         (' ' + M['tree_note']) if M.get('tree_note') else ''))
    P('')
    head = [TNAME[t] for t in TARGETS] + (['%s ÷ faster FUSE peer' % TNAME[z] for z in ZB] if PEERS else [])
    P('| step | ' + ' | '.join(head) + ' |')
    P('|---|' + '---:|' * len(head))
    for mode, field, label in TREE_ROWS:
        if not any((mode, t) in trees for t in TARGETS):
            continue
        cells = []
        for t in TARGETS:
            v = tm(mode, t, field)
            if v is None:
                cells.append('skipped' if trees.get((mode, t), {}).get('skipped') else 'n/a')
            elif field == 'seconds':
                n = NCOPIES if mode == 'parallel' else 1
                cells.append('%.2f s (%.0f MiB/s)' % (v, n * M['tree_bytes'] / MiB / v) if v else '%.2f s' % v)
            else:
                cells.append('%.2f s' % v)
        for zt in ZB if PEERS else ():
            z, bp = tm(mode, zt, field), best_peer(mode, field)
            cells.append('%.2f× (%s)' % (bp[0] / z, bp[1]) if z and bp else 'n/a')
        P('| %s | %s |' % (label, ' | '.join(cells)))
    P('')
    notes = []
    for t in TARGETS:
        for mode in ('serial', 'parallel'):
            a = trees.get((mode, t))
            if not a:
                continue
            what = '1 copy' if mode == 'serial' else '%d at once' % NCOPIES
            if a['skipped']:
                notes.append('%s, %s: skipped: %s.' % (TNAME[t], what, a['skipped']))
                continue
            bad = [r for r in a['runs'] if r.get('cp_rc')]
            if bad:
                notes.append('%s, %s: cp exit status %d in %d of %d runs (%s).'
                             % (TNAME[t], what, bad[0]['cp_rc'], len(bad), len(a['runs']), cp_note(bad[0])))
            if t in FUSE:
                cpu = med([r['cpu_ticks'] / M['clk_tck'] for r in a['runs'] if 'cpu_ticks' in r])
                rcpu = med([r['after_rm']['cpu_ticks'] / M['clk_tck'] for r in a['runs'] if 'cpu_ticks' in r.get('after_rm', {})])
                if cpu is not None:
                    notes.append('%s, %s: daemon CPU %.1f s for the copy, %.1f s for the rm -rf (medians).'
                                 % (TNAME[t], what, cpu, rcpu or 0))
            if t == 'zbudfs' and mode == 'serial':
                r = a['runs'][0]
                s, sb = r.get('stats'), r.get('stats_before')
                if s:
                    o = s['orig_data_size'] - (sb or {}).get('orig_data_size', 0)
                    c = s['compr_data_size'] - (sb or {}).get('compr_data_size', 0)
                    mu = s['mem_used_total'] - (sb or {}).get('mem_used_total', 0)
                    note = ('zbudfs after 1 copy (run 1): orig/compr %.2f, orig/mem %.2f, mem_used %.0f MiB, huge_pages %d, '
                            'same_pages %d, overflow_pages %d, peak RSS %.0f MiB'
                            % (o / c if c else 0, o / mu if mu else 0, s['mem_used_total'] / MiB, s['huge_pages'],
                               s['same_pages'], s['overflow_pages'], r['hwm_kb'] / 1024))
                    ar = r['after_rm']
                    if ar.get('stats'):
                        note += ('; after rm -rf: mem_used %.0f MiB (reached %.1f s after rm returned), RSS %.0f MiB'
                                 % (ar['stats']['mem_used_total'] / MiB, r.get('settle_s', 0), ar['rss_kb'] / 1024))
                    notes.append(note + '.')
    for n in notes:
        P('- ' + n)
    if notes:
        P('')
    if mfio:
        P('fio\'s file engines (`fio --directory=TARGET/meta`, commands below): `nrfiles=%d filesize=4k` per job, '
          '`numjobs` 1 or 2 with `group_reporting`, a directory per job. **filecreate** creates the files as fio opens '
          'them (`create_on_open=1 openfiles=1`: open(O_CREAT) + close, one at a time); then, not measured, a 4 KiB '
          'write into each (fio\'s own layout would truncate the files, and memfs_ll deadlocks on a truncate); '
          '**filestat** stat(2)s them round after round for %d s; **filedelete** unlinks every one once (none may be '
          'left). IOPS = files created, stat()ed or deleted per second, all jobs together; medians of %d run%s.'
          % (M.get('meta_files', 0), M['runtime'], M['runs'], '' if M['runs'] == 1 else 's'))
        P('')
        head = [TNAME[t] for t in TARGETS] + (['%s ÷ memfs_ll' % TNAME[z] for z in ZB] if 'memfs_ll' in TARGETS else [])
        P('| engine | jobs | ' + ' | '.join(head) + ' |')
        P('|---|---:|' + '---:|' * len(head))
        for eng in MENGINES:
            for nj in MNJ:
                cells = []
                for t in TARGETS:
                    a = mfio.get((eng, nj, t), {})
                    v = mf(eng, nj, t)
                    cells.append('%.1fk' % (v / 1000) if v is not None else
                                 'skipped' if a.get('skipped') else 'failed' if a.get('fail') else 'n/a')
                for zt in ZB if 'memfs_ll' in TARGETS else ():
                    z, p = mf(eng, nj, zt), mf(eng, nj, 'memfs_ll')
                    cells.append('%.2f×' % (z / p) if z and p else 'n/a')
                P('| %s | %d | %s |' % (eng, nj, ' | '.join(cells)))
        P('')
        sk = sorted({'%s: %s' % (TNAME[t], a['skipped']) for (e, nj, t), a in mfio.items() if a['skipped']})
        for n in sk:
            P('- skipped, %s.' % n)
        if sk:
            P('')
    rt = [t for t in FUSE if any((t, op) in reqs for op in ('cp', 'rm')) or t in reqfail]
    if rt:
        any_r = next(iter(reqs.values()), None)
        P('FUSE requests: a second mount of each FUSE target, started with `-d` (same binary and options, '
          'libfuse prints one line with `opcode: NAME` per request it receives), `cp -a %s` (%d entries) into it '
          'and `sync -f`, then `rm -rf` of the copy and `sync -f`; the requests counted in its debug log from '
          'just before each command until 0.5 s after it (the kernel sends RELEASE after close(2) returns, FORGET '
          'after the unlink), divided by the entries (files and directories). One run.'
          % (any_r['tree'] if any_r else M.get('count_tree', '?'), any_r['entries'] if any_r else M.get('count_entries', 0)))
        P('')
        P('| requests per entry (count) | ' + ' | '.join(TNAME[t] for t in rt) + ' |')
        P('|---|' + '---:|' * len(rt))
        def cell(t, op, name='total'):
            r = reqs.get((t, op))
            if not r:
                return 'failed' if t in reqfail else 'n/a'
            n = r['requests'].get(name, 0)
            return '%.2f (%d)' % (per_entry(t, op, name), n) if n else '–'
        for op, label in (('cp', '**cp -a + sync -f, all**'), ('rm', '**rm -rf + sync -f, all**')):
            P('| %s | %s |' % (label, ' | '.join('**%s**' % cell(t, op) if (t, op) in reqs else cell(t, op) for t in rt)))
        for op in ('cp', 'rm'):
            names = {k for t in rt for k in (reqs.get((t, op)) or {}).get('requests', {}) if k != 'total'}
            for name in sorted(names, key=lambda k: (-max((reqs.get((t, op)) or {}).get('requests', {}).get(k, 0) for t in rt), k)):
                P('| %s: %s | %s |' % ('cp -a' if op == 'cp' else 'rm -rf', name, ' | '.join(cell(t, op, name) for t in rt)))
        P('')
        errs = ['%s: cp exit status %d (%s)' % (TNAME[t], r['rc'], cp_note(r)) for (t, op), r in reqs.items() if op == 'cp' and r['rc']]
        for n in errs:
            P('- ' + n + '.')
        if errs:
            P('')

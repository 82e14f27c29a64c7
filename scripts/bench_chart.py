"""The chart of bench_report.py's report: its data files and chart.gp (gnuplot) in the
results directory."""
from bench_data import *  # noqa: F401,F403
from bench_meta_report import NCOPIES, tm, trees


def write_chart():
    DSHORT = {'c60': '60% compr.', 'rand': 'incompr.'}
    def dat(name, rows):
        with open(os.path.join(res, name), 'w') as f:
            f.write('label ' + ' '.join('"%s"' % TNAME[t] for t in TARGETS) + '\n')
            for lab, vals in rows:
                f.write('"%s" ' % lab + ' '.join(('%.4g' % x) if x else '1e-9' for x in vals) + '\n')
    seq_rows, rand_rows = [], []
    for (d, nj) in GROUPS:
        for job in JOBS:
            if not has(d, nj, job): continue
            jn = '%d job%s' % (nj, '' if nj == 1 else 's')
            if job.startswith('seq'):
                seq_rows.append(('%s\\n%s\\n%s\\n%s' % (JNAME[job][0].replace(' 1M', ''), JNAME[job][1].split(',')[0], DSHORT[d], jn),
                                 [m((d, nj, job, t), 'mibs') for t in TARGETS]))
            else:
                rand_rows.append(('%s\\n%s\\n%s' % (JNAME[job][0].replace(' 4k', ''), DSHORT[d], jn),
                                  [(m((d, nj, job, t), 'iops') or 0) / 1000 or None for t in TARGETS]))
    dat('chart-seq.dat', seq_rows)
    dat('chart-rand.dat', rand_rows)
    tree_rows = [(lab, [n * M['tree_bytes'] / MiB / tm(mode, t, 'seconds') if tm(mode, t, 'seconds') else None
                        for t in TARGETS])
                 for mode, n, lab in (('serial', 1, 'cp -a, 1 copy'), ('parallel', NCOPIES, 'cp -a, %d at once' % NCOPIES))
                 if any((mode, t) in trees for t in TARGETS)]
    dat('chart-tree.dat', tree_rows)
    n = len(TARGETS)
    colors = {'tmpfs': '#9e9e9e', 'zram': '#e69f00', 'passthrough_ll': '#56b4e9', 'memfs_ll': '#009e73',
              'zbudfs': '#d55e00', 'zbudfs_nowb': '#cc79a7'}
    cols = ' '.join(colors[t] for t in TARGETS)
    def yrange(rows):
        xs = [x for _, vals in rows for x in vals if x]
        if not xs: return 'set yrange [1:10]\n'
        import math
        return 'set yrange [%g:%g]\n' % (10 ** math.floor(math.log10(min(xs) / 1.5)), max(xs) * 6)
    def panel(datfile, fmt, rows):
        # bars of a clustered histogram (gap 1) sit at x = row + (i - (n-1)/2) / (n+1); a missing
        # value is written as 1e-9, below the (log) y range, so that the clusters keep their order
        bars, labels = [], []
        for i, t in enumerate(TARGETS):
            col = i + 2
            bars.append('"%s/%s" using %d:xtic(1) title columnheader(%d) lc rgb "%s"' % (res, datfile, col, col, colors[t]))
            if any(vals[i] for _, vals in rows):
                labels.append('"%s/%s" using ($0 + (%d - %g) / %d.0):(column(%d) > 1e-6 ? column(%d) * 1.08 : NaN):'
                              '(sprintf("%s", column(%d))) with labels rotate by 90 left font ",8" notitle'
                              % (res, datfile, i, (n - 1) / 2, n + 1, col, col, fmt, col))
        if not rows:  # a step left out (--only): an empty panel, not a plot of nothing (an error)
            return 'set title "not run this time (--only)"\nunset key\nplot [0:1] NaN notitle\nset key\n'
        return 'plot ' + ', \\\n     '.join(bars + labels) + '\n'
    with open(os.path.join(res, 'chart.gp'), 'w') as f:
        f.write('''set terminal pngcairo size 1600,1100 font "DejaVu Sans,10"
set termoption noenhanced
set output "%s/bench.png"
set datafile missing "-"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set boxwidth 1
set key top left horizontal
set key autotitle columnheader
set grid ytics
set logscale y
set lmargin 10
set bmargin 5
set multiplot title "zbudfs bench: %s run, %s, %d CPUs, kernel %s, median of %d run(s); log scales"
set origin 0,0.5
set size 1,0.47
set ylabel "MiB/s"
set title "Sequential 1M (reads direct; writes buffered with end_fsync, or direct)"
''' % (res, M['mode'], M['date'], M['nproc'], M['kernel'], M['runs']))
        f.write(yrange(seq_rows) + panel('chart-seq.dat', '%.0f', seq_rows))
        f.write('''set origin 0,0
set size 0.72,0.5
set ylabel "kIOPS"
set title "Random 4k, direct, psync"
''')
        f.write(yrange(rand_rows) + panel('chart-rand.dat', '%.0fk', rand_rows))
        f.write('''set origin 0.72,0
set size 0.28,0.5
set ylabel "MiB/s"
set title "cp -a of a real tree (%d entries) + sync -f"
''' % M['tree_inodes'])
        f.write('set key top left vertical\n' + yrange(tree_rows) + panel('chart-tree.dat', '%.0f', tree_rows))
        f.write('unset multiplot\n')

// zbudfs random-operation exerciser: runs the same seeded random sequence of file system
// operations on a zbudfs mount and on a reference directory (a tmpfs) side by side, and
// compares every result: return values and errno, every byte read, st_size/st_nlink/st_mode
// after each mutation, directory listings, and at the end the whole trees.
//
// Operations: open/create (O_RDWR, O_RDONLY, O_WRONLY, O_APPEND, O_TRUNC, O_EXCL), close,
// pwrite/write at random offsets and sizes (across 4 KiB boundaries, at EOF, past EOF, at
// huge sparse offsets up to --max-offset), pread/read, O_DIRECT reads (through
// /proc/self/fd), ftruncate/truncate up and down, fallocate PUNCH_HOLE|KEEP_SIZE, plain and
// KEEP_SIZE allocation, ZERO_RANGE (zbudfs only: emulated on the reference by writing zeros
// and extending the size unless KEEP_SIZE), mmap MAP_SHARED reads and writes with msync,
// fsync/fdatasync, posix_fadvise(DONTNEED) (so reads come from the daemon, not the kernel's
// cache), rename/renameat2 (NOREPLACE, EXCHANGE), link, unlink (also of open files, whose
// handles stay open and in use), mkdir, rmdir, stat, fstat, readdir, and lseek
// SEEK_DATA/SEEK_HOLE (checked for truth rather than equality with tmpfs; violations are
// counted and fail the run at its end, so they do not hide other differences).
//
// Every choice depends only on the seed and on the reference's state, so a seed replays the
// same sequence. On a mismatch it prints the seed, the failing operation and the tail of the
// operation log, and exits 1.
//
// The parts, one per file pair: options (command line), jobs (--jobs N processes), runner
// (one job's run: operation choice, progress, the final compare), picker (random choices and
// the data budget), model (the two trees and the open handles), file_ops / size_ops /
// mmap_op / name_ops (the operations), checker (comparisons), seek_checker (SEEK_DATA/
// SEEK_HOLE truth), data_gen (what is written), op_log (the log and the failure report),
// extents, listing, result (errno names, printf into strings), rng (splitmix64).
//
// Build:  scripts/build.sh release --target exerciser   (-> build/tests/exerciser), or
//         g++ -O2 -std=c++20 -I. -o exerciser tests/exerciser/*.cc
// Short:  exerciser --zbud /mnt/z --ref /tmp/ref --seed 1 --ops 20000        (what
//         tests/integration/exerciser.sh runs, twice: default options and mem_limit=4M)
// Long:   exerciser --zbud /mnt/z --ref /tmp/ref --ops 1000000 --target-mb 256
//         (or: tests/integration/exerciser.sh --long; not run by the test suite)
// Parallel: --jobs N runs N such processes at once on subdirectories j0..jN-1 (seeds seed..
// seed+N-1), so the daemon serves several writers, readers and reclaim at the same time.
// The two directories should be empty; the reference should be a tmpfs.
#include <signal.h>
#include <sys/stat.h>

#include <cstdio>
#include <optional>

#include "tests/exerciser/jobs.h"
#include "tests/exerciser/mmap_op.h"
#include "tests/exerciser/options.h"
#include "tests/exerciser/runner.h"

namespace zbudfs::exerciser {
namespace {

int Main(int argc, char** argv) {
  Options opt = ParseOptions(argc, argv);
  if (opt.jobs > 1) {
    if (std::optional<int> status = ForkJobs(&opt)) return *status;
  }
  std::printf("%sexerciser: seed %llu, %llu ops, target %llu MiB, max offset %llu MiB\n",
              opt.job_tag.c_str(), static_cast<unsigned long long>(opt.seed),
              static_cast<unsigned long long>(opt.ops),
              static_cast<unsigned long long>(opt.target_bytes / kMiB),
              static_cast<unsigned long long>(opt.max_offset / kMiB));
  std::fflush(stdout);
  umask(022);
  MmapOp::InstallSigbusHandler();
  signal(SIGPIPE, SIG_IGN);
  Runner runner(opt);
  return runner.Run();
}

}  // namespace
}  // namespace zbudfs::exerciser

int main(int argc, char** argv) { return zbudfs::exerciser::Main(argc, argv); }

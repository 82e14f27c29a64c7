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
// Build:  scripts/build.sh release --target exerciser   (-> build/tests/exerciser), or
//         g++ -O2 -std=c++20 -o exerciser tests/exerciser/exerciser.cc
// Short:  exerciser --zbud /mnt/z --ref /tmp/ref --seed 1 --ops 20000        (what
//         tests/integration/exerciser.sh runs, twice: default options and mem_limit=4M)
// Long:   exerciser --zbud /mnt/z --ref /tmp/ref --ops 1000000 --target-mb 256
//         (or: tests/integration/exerciser.sh --long; not run by the test suite)
// Parallel: --jobs N runs N such processes at once on subdirectories j0..jN-1 (seeds seed..
// seed+N-1), so the daemon serves several writers, readers and reclaim at the same time.
// The two directories should be empty; the reference should be a tmpfs.
#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kMiB = 1 << 20;

// ---- Options ----------------------------------------------------------------------------------

struct Options {
  std::string zroot, rroot;
  uint64_t seed = 0;
  bool seed_given = false;
  uint64_t ops = 20000;
  uint64_t target_bytes = 16 * kMiB;  // Data the reference should hold, roughly.
  uint64_t max_offset = 3ull << 30;   // Largest sparse offset (3 GiB).
  uint64_t check_every = 2000;        // Light tree compare every N ops.
  bool mmap = true;
  bool verbose = false;
  int tail = 40;        // Log lines printed on failure.
  unsigned jobs = 1;    // Parallel jobs, each in its own subdirectory.
  std::string job_tag;  // "job N: " in a job's messages.
} opt;

void Usage() {
  std::fprintf(
      stderr,
      "usage: exerciser --zbud DIR --ref DIR [--seed N] [--ops N] [--target-mb N]\n"
      "                 [--max-offset-mb N] [--check-every N] [--no-mmap] [--verbose]\n"
      "                 [--tail N] [--jobs N]\n"
      "  --zbud DIR        a directory on the zbudfs mount (empty)\n"
      "  --ref DIR         the reference directory, on a tmpfs of its own (empty)\n"
      "  --seed N          random seed (default: from the clock; always printed)\n"
      "  --ops N           operations (default 20000; long mode: --ops 1000000)\n"
      "  --target-mb N     data the files should hold, roughly (default 16)\n"
      "  --max-offset-mb N largest sparse offset (default 3072)\n"
      "  --check-every N   compare the trees' metadata every N ops (default 2000)\n"
      "  --jobs N          N processes in parallel, job i in subdirectory jI of both\n"
      "                    roots with seed+i, --ops and --target-mb each divided by N\n"
      "                    (a job's failure prints the single-job command replaying it)\n");
  std::exit(2);
}

// ---- Random numbers (splitmix64: the same sequence everywhere) ---------------------------------

struct Rng {
  uint64_t s;
  uint64_t Next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : Next() % n; }
  uint64_t Range(uint64_t lo, uint64_t hi) { return lo + Below(hi - lo + 1); }  // Inclusive.
  bool Chance(unsigned percent) { return Below(100) < percent; }
} rng;

// ---- Log and failure --------------------------------------------------------------------------

std::deque<std::string> g_log;
uint64_t g_op = 0;

std::string Fmt(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string Fmt(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  return buf;
}

void Log(const std::string& s) {
  std::string line = Fmt("#%llu ", static_cast<unsigned long long>(g_op)) + s;
  if (opt.verbose) std::fprintf(stderr, "%s\n", line.c_str());
  g_log.push_back(std::move(line));
  if (g_log.size() > 4096) g_log.pop_front();
}

[[noreturn]] void Fail(const std::string& what) {
  std::fflush(stdout);
  std::fprintf(stderr, "\n%sEXERCISER MISMATCH at op #%llu (seed %llu): %s\n", opt.job_tag.c_str(),
               static_cast<unsigned long long>(g_op), static_cast<unsigned long long>(opt.seed),
               what.c_str());
  std::fprintf(stderr, "--- last %d operations (oldest first; zbudfs=%s reference=%s):\n", opt.tail,
               opt.zroot.c_str(), opt.rroot.c_str());
  size_t from = g_log.size() > static_cast<size_t>(opt.tail) ? g_log.size() - opt.tail : 0;
  for (size_t i = from; i < g_log.size(); ++i) std::fprintf(stderr, "  %s\n", g_log[i].c_str());
  std::fprintf(stderr,
               "--- reproduce on fresh empty directories: exerciser --zbud DIR --ref DIR "
               "--seed %llu --ops %llu --target-mb %llu --max-offset-mb %llu%s\n",
               static_cast<unsigned long long>(opt.seed), static_cast<unsigned long long>(g_op + 1),
               static_cast<unsigned long long>(opt.target_bytes / kMiB),
               static_cast<unsigned long long>(opt.max_offset / kMiB),
               opt.mmap ? "" : " --no-mmap");
  std::exit(1);
}

const char* ErrName(int e) {
  switch (e) {
    case 0:
      return "OK";
    case ENOENT:
      return "ENOENT";
    case EEXIST:
      return "EEXIST";
    case ENOTDIR:
      return "ENOTDIR";
    case EISDIR:
      return "EISDIR";
    case EINVAL:
      return "EINVAL";
    case EBADF:
      return "EBADF";
    case ENOTEMPTY:
      return "ENOTEMPTY";
    case EBUSY:
      return "EBUSY";
    case EACCES:
      return "EACCES";
    case EPERM:
      return "EPERM";
    case ENOSPC:
      return "ENOSPC";
    case EIO:
      return "EIO";
    case EFBIG:
      return "EFBIG";
    case EXDEV:
      return "EXDEV";
    case EOPNOTSUPP:
      return "EOPNOTSUPP";
    case ENODEV:
      return "ENODEV";
    case ENOTCONN:
      return "ENOTCONN";
    case EMLINK:
      return "EMLINK";
    case ENXIO:
      return "ENXIO";
    default: {
      static char buf[32];
      std::snprintf(buf, sizeof(buf), "errno%d", e);
      return buf;
    }
  }
}

// One side's result of a call: the value, and errno when it failed.
struct Res {
  long v;
  int err;
};
#define CALL(expr)                      \
  ([&]() -> Res {                       \
    errno = 0;                          \
    long r_ = static_cast<long>(expr);  \
    return Res{r_, r_ < 0 ? errno : 0}; \
  }())

std::string Show(Res r) { return r.v < 0 ? ErrName(r.err) : Fmt("%ld", r.v); }

// Both sides must succeed or fail alike; with same_value, return values must match too.
// Returns true when both succeeded.
bool Same(const std::string& what, Res z, Res r, bool same_value = true) {
  Log(what + " -> zbudfs " + Show(z) + ", ref " + Show(r));
  const bool zf = z.v < 0, rf = r.v < 0;
  if (zf != rf || (zf && z.err != r.err) || (!zf && same_value && z.v != r.v)) {
    Fail(what + ": zbudfs returned " + Show(z) + ", the reference " + Show(r));
  }
  return !zf;
}

// ---- Paths and handles ------------------------------------------------------------------------

const std::vector<std::string> kFiles = {"f0",    "f1",    "f2",      "f3",     "f4",    "f5",
                                         "f6",    "f7",    "d0/f0",   "d0/f1",  "d0/f2", "d1/f0",
                                         "d1/f1", "d1/f2", "d0/s/f0", "d0/s/f1"};
const std::vector<std::string> kDirs = {"d0", "d1", "d0/s", "d2"};

std::string Z(const std::string& p) { return opt.zroot + "/" + p; }
std::string R(const std::string& p) { return opt.rroot + "/" + p; }

struct Handle {
  int z, r;
  int acc;  // O_RDONLY / O_WRONLY / O_RDWR.
  bool append;
  std::string name;  // The path it was opened by (the file may be renamed or unlinked since).
  uint64_t id;
};
std::vector<Handle> handles;
uint64_t next_handle_id = 1;

std::string HName(const Handle& h) {
  return Fmt("h%llu(%s%s%s)", static_cast<unsigned long long>(h.id), h.name.c_str(),
             h.acc == O_RDONLY   ? ",ro"
             : h.acc == O_WRONLY ? ",wo"
                                 : ",rw",
             h.append ? ",app" : "");
}

bool Writable(const Handle& h) { return h.acc != O_RDONLY; }
bool Readable(const Handle& h) { return h.acc != O_WRONLY; }

uint64_t RefSize(const Handle& h) {
  struct stat st;
  if (fstat(h.r, &st) != 0) Fail(Fmt("fstat of the reference fd failed: %s", strerror(errno)));
  return static_cast<uint64_t>(st.st_size);
}

// Bytes the reference files hold (the data budget's measure): st_blocks of every file under
// the reference root and of every open handle's file (unlinked ones too), each inode once.
// (Counted per job, not from statvfs, so that parallel jobs do not steer each other.)
void RefUsedWalk(const std::string& dir, std::set<ino_t>* seen, uint64_t* total) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    const std::string p = dir + "/" + e->d_name;
    struct stat st;
    if (lstat(p.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      RefUsedWalk(p, seen, total);
    } else if (S_ISREG(st.st_mode) && seen->insert(st.st_ino).second) {
      *total += static_cast<uint64_t>(st.st_blocks) * 512;
    }
  }
  closedir(d);
}
uint64_t RefUsed() {
  std::set<ino_t> seen;
  uint64_t total = 0;
  RefUsedWalk(opt.rroot, &seen, &total);
  for (const Handle& h : handles) {
    struct stat st;
    if (fstat(h.r, &st) == 0 && S_ISREG(st.st_mode) && seen.insert(st.st_ino).second) {
      total += static_cast<uint64_t>(st.st_blocks) * 512;
    }
  }
  return total;
}

// ---- Data -------------------------------------------------------------------------------------

std::vector<uint8_t> wbuf, zbuf, rbuf;

const char* const kWords[] = {"alpha ",    "beta ",    "gamma ", "page ",     "zbud ", "store ",
                              "overflow ", "reclaim ", "4096 ",  "compress ", "\n",    "the ",
                              "of ",       "mount ",   "fuse ",  "kernel "};

// Fills n bytes with one of several kinds of data (per 4 KiB chunk for "mixed").
void FillKind(uint8_t* p, size_t n, int kind, Rng& g) {
  switch (kind) {
    case 0: {  // Random (incompressible).
      size_t i = 0;
      for (; i + 8 <= n; i += 8) {
        uint64_t v = g.Next();
        std::memcpy(p + i, &v, 8);
      }
      for (; i < n; ++i) p[i] = static_cast<uint8_t>(g.Next());
      break;
    }
    case 1: {  // Text (compressible).
      size_t i = 0;
      while (i < n) {
        const char* w = kWords[g.Below(16)];
        size_t l = std::min(std::strlen(w), n - i);
        std::memcpy(p + i, w, l);
        i += l;
      }
      break;
    }
    case 2:  // Zeros.
      std::memset(p, 0, n);
      break;
    case 3: {  // One repeated 8-byte word (a same-filled page).
      uint64_t v = g.Next();
      for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(v >> (8 * (i % 8)));
      break;
    }
    default: {  // Half random, half zeros: compresses about 2x.
      for (size_t i = 0; i < n; i += 64) {
        size_t l = std::min<size_t>(64, n - i);
        if (g.Chance(50)) {
          std::memset(p + i, 0, l);
        } else {
          for (size_t j = 0; j < l; ++j) p[i + j] = static_cast<uint8_t>(g.Next());
        }
      }
    }
  }
}

const char* kKindNames[] = {"random", "text", "zeros", "same", "half", "mixed"};

int FillData(size_t n) {
  if (wbuf.size() < n) wbuf.resize(n);
  const int kind = static_cast<int>(rng.Below(6));
  Rng g{rng.Next()};
  if (kind < 5) {
    FillKind(wbuf.data(), n, kind, g);
  } else {
    for (size_t i = 0; i < n; i += kPage) {
      FillKind(wbuf.data() + i, std::min<size_t>(kPage, n - i), static_cast<int>(g.Below(5)), g);
    }
  }
  return kind;
}

// ---- Choosing offsets and sizes ---------------------------------------------------------------

uint64_t used_now = 0;  // RefUsed() at the start of the current op.
bool Over() { return used_now > opt.target_bytes * 5 / 4; }
bool Under() { return used_now < opt.target_bytes; }

uint64_t PickLen() {
  uint64_t r = rng.Below(100);
  if (Under() && rng.Chance(30)) return rng.Range(256 * 1024, 4 * kMiB);
  if (r < 35) return rng.Range(1, 600);
  if (r < 60) return rng.Range(1, 16 * 1024);
  if (r < 80)
    return rng.Range(1, 8) * kPage + (rng.Chance(50) ? 0 : rng.Range(0, 2 * kPage) - kPage / 2);
  if (r < 95) return rng.Range(64 * 1024, kMiB);
  return rng.Range(kMiB, 3 * kMiB);
}

uint64_t PickOffset(uint64_t size, uint64_t len) {
  if (Over()) {  // Stay inside the file.
    if (size <= 1) return 0;
    return rng.Below(size > len ? size - len : 1);
  }
  uint64_t r = rng.Below(100);
  if (r < 30) return rng.Below(size + 1);
  if (r < 45) return size;
  if (r < 65) {  // Straddling a 4 KiB boundary.
    uint64_t b = rng.Below(size / kPage + 4) * kPage;
    uint64_t back = rng.Below(std::min<uint64_t>(len, 64) + 1);
    return b > back ? b - back : b;
  }
  if (r < 80) return size + rng.Below(kMiB);
  if (r < 85) return rng.Below(opt.max_offset);  // Huge sparse offset.
  return rng.Below(size + 64 * 1024);
}

// ---- Content comparison -----------------------------------------------------------------------

// Reads [off, off+n) from both fds (pread, in 1 MiB pieces) and compares.
void CompareRange(const std::string& what, int zfd, int rfd, uint64_t off, uint64_t n) {
  while (n > 0) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, kMiB));
    if (zbuf.size() < chunk) zbuf.resize(chunk);
    if (rbuf.size() < chunk) rbuf.resize(chunk);
    ssize_t zn = pread(zfd, zbuf.data(), chunk, static_cast<off_t>(off));
    int zerr = errno;
    ssize_t rn = pread(rfd, rbuf.data(), chunk, static_cast<off_t>(off));
    int rerr = errno;
    if (zn != rn) {
      Fail(Fmt("%s: pread(%llu, %zu) returned %zd (%s) on zbudfs, %zd (%s) on the reference",
               what.c_str(), static_cast<unsigned long long>(off), chunk, zn,
               zn < 0 ? ErrName(zerr) : "ok", rn, rn < 0 ? ErrName(rerr) : "ok"));
    }
    if (rn <= 0) return;
    if (std::memcmp(zbuf.data(), rbuf.data(), static_cast<size_t>(rn)) != 0) {
      size_t i = 0;
      while (zbuf[i] == rbuf[i]) ++i;
      Fail(
          Fmt("%s: data differs at offset %llu (zbudfs byte 0x%02x, reference 0x%02x; "
              "compared [%llu, +%zd))",
              what.c_str(), static_cast<unsigned long long>(off + i), zbuf[i], rbuf[i],
              static_cast<unsigned long long>(off), rn));
    }
    off += static_cast<uint64_t>(rn);
    n -= static_cast<uint64_t>(rn);
  }
}

// Data extents [start, end) of fd by SEEK_DATA/SEEK_HOLE, up to size.
std::vector<std::pair<uint64_t, uint64_t>> Extents(int fd, uint64_t size) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  const off_t saved = lseek(fd, 0, SEEK_CUR);  // SEEK_DATA/SEEK_HOLE move the position.
  off_t pos = 0;
  while (static_cast<uint64_t>(pos) < size) {
    off_t d = lseek(fd, pos, SEEK_DATA);
    if (d < 0) break;
    off_t h = lseek(fd, d, SEEK_HOLE);
    if (h < 0) h = static_cast<off_t>(size);
    out.emplace_back(d, std::min<uint64_t>(h, size));
    pos = h;
  }
  lseek(fd, saved, SEEK_SET);
  return out;
}

// Compares the whole content of two files of the same size: the data extents of the
// reference (and of zbudfs too when use_zbud_extents, i.e. no writer is open), and samples of
// the rest, which must read as zeros on both.
void CompareWhole(const std::string& what, int zfd, int rfd, uint64_t size, bool use_zbud_extents) {
  auto ext = Extents(rfd, size);
  if (use_zbud_extents) {
    auto zext = Extents(zfd, size);
    ext.insert(ext.end(), zext.begin(), zext.end());
  }
  std::sort(ext.begin(), ext.end());
  std::vector<std::pair<uint64_t, uint64_t>> merged;
  for (auto [s, e] : ext) {
    s = s / kPage * kPage;
    e = std::min(size, (e + kPage - 1) / kPage * kPage);
    if (!merged.empty() && s <= merged.back().second) {
      merged.back().second = std::max(merged.back().second, e);
    } else {
      merged.emplace_back(s, e);
    }
  }
  uint64_t covered = 0;
  for (auto [s, e] : merged) {
    CompareRange(what, zfd, rfd, s, e - s);
    covered += e - s;
  }
  // Holes: a few samples, and the last bytes (EOF).
  Rng g{opt.seed ^ size};
  for (int i = 0; i < 8 && size > 0; ++i) {
    uint64_t off = g.Below(size);
    CompareRange(what + " (hole sample)", zfd, rfd, off, std::min<uint64_t>(kPage, size - off));
  }
  if (size > 0) CompareRange(what + " (tail)", zfd, rfd, size - std::min<uint64_t>(size, 100), 100);
  (void)covered;
}

// ---- SIGBUS around mmap accesses --------------------------------------------------------------

sigjmp_buf g_jmp;
volatile sig_atomic_t g_in_mmap = 0;
void OnSigbus(int sig) {
  if (g_in_mmap) siglongjmp(g_jmp, sig);
  signal(sig, SIG_DFL);
  raise(sig);
}

// ---- Operations -------------------------------------------------------------------------------

Handle* PickHandle(bool want_write = false, bool want_read = false) {
  if (handles.empty()) return nullptr;
  if (want_write || want_read) {
    std::vector<size_t> ok;
    for (size_t i = 0; i < handles.size(); ++i) {
      if ((!want_write || Writable(handles[i])) && (!want_read || Readable(handles[i])))
        ok.push_back(i);
    }
    if (!ok.empty() && rng.Chance(92)) return &handles[ok[rng.Below(ok.size())]];
  }
  return &handles[rng.Below(handles.size())];
}

std::string PickFile() { return kFiles[rng.Below(kFiles.size())]; }
std::string PickAny() {
  if (rng.Chance(85)) return PickFile();
  return kDirs[rng.Below(kDirs.size())];
}

void CompareFstat(const Handle& h, const char* after) {
  struct stat zs, rs;
  Res z = CALL(fstat(h.z, &zs));
  Res r = CALL(fstat(h.r, &rs));
  if ((z.v < 0) != (r.v < 0))
    Fail(Fmt("fstat %s after %s: %s vs %s", HName(h).c_str(), after, Show(z).c_str(),
             Show(r).c_str()));
  if (z.v < 0) return;
  if (zs.st_size != rs.st_size) {
    Fail(Fmt("st_size of %s after %s: zbudfs %lld, reference %lld", HName(h).c_str(), after,
             static_cast<long long>(zs.st_size), static_cast<long long>(rs.st_size)));
  }
  if (zs.st_nlink != rs.st_nlink) {
    Fail(Fmt("st_nlink of %s after %s: zbudfs %llu, reference %llu", HName(h).c_str(), after,
             static_cast<unsigned long long>(zs.st_nlink),
             static_cast<unsigned long long>(rs.st_nlink)));
  }
}

void OpOpen() {
  const std::string p = PickFile();
  int flags;
  uint64_t r = rng.Below(100);
  flags = r < 65 ? O_RDWR : r < 85 ? O_RDONLY : O_WRONLY;
  if (rng.Chance(80)) flags |= O_CREAT;
  if (rng.Chance(15)) flags |= O_APPEND;
  if (rng.Chance(Over() ? 30 : 7)) flags |= O_TRUNC;
  if ((flags & O_CREAT) && rng.Chance(5)) flags |= O_EXCL;
  const std::string what = Fmt("open(%s, %s%s%s%s%s)", p.c_str(),
                               (flags & O_ACCMODE) == O_RDWR     ? "RDWR"
                               : (flags & O_ACCMODE) == O_RDONLY ? "RDONLY"
                                                                 : "WRONLY",
                               flags & O_CREAT ? "|CREAT" : "", flags & O_APPEND ? "|APPEND" : "",
                               flags & O_TRUNC ? "|TRUNC" : "", flags & O_EXCL ? "|EXCL" : "");
  Res z = CALL(open(Z(p).c_str(), flags | O_CLOEXEC, 0644));
  Res rr = CALL(open(R(p).c_str(), flags | O_CLOEXEC, 0644));
  if (!Same(what, z, rr, false)) return;
  Handle h{
      static_cast<int>(z.v), static_cast<int>(rr.v), flags & O_ACCMODE, (flags & O_APPEND) != 0, p,
      next_handle_id++};
  handles.push_back(h);
  Log("  = " + HName(h));
  CompareFstat(h, "open");
}

void CloseHandle(size_t i) {
  Handle h = handles[i];
  handles.erase(handles.begin() + static_cast<long>(i));
  Same("close " + HName(h), CALL(close(h.z)), CALL(close(h.r)));
}

void OpClose() {
  if (handles.empty()) return;
  CloseHandle(rng.Below(handles.size()));
}

void OpWrite() {
  Handle* h = PickHandle(true);
  if (!h) return;
  const uint64_t size = RefSize(*h);
  uint64_t len = PickLen();
  uint64_t off = PickOffset(size, len);
  if (Over() && off + len > size)
    len = size > off ? std::max<uint64_t>(1, size - off) : rng.Range(1, 4096);
  const int kind = FillData(len);
  const bool positional = !h->append && rng.Chance(85);
  if (positional) {
    const std::string what = Fmt("pwrite %s off=%llu len=%llu %s", HName(*h).c_str(),
                                 static_cast<unsigned long long>(off),
                                 static_cast<unsigned long long>(len), kKindNames[kind]);
    Same(what, CALL(pwrite(h->z, wbuf.data(), len, static_cast<off_t>(off))),
         CALL(pwrite(h->r, wbuf.data(), len, static_cast<off_t>(off))));
  } else {
    if (!h->append) {
      Same(Fmt("lseek %s %llu", HName(*h).c_str(), static_cast<unsigned long long>(off)),
           CALL(lseek(h->z, static_cast<off_t>(off), SEEK_SET)),
           CALL(lseek(h->r, static_cast<off_t>(off), SEEK_SET)));
    }
    const std::string what = Fmt("write %s len=%llu %s", HName(*h).c_str(),
                                 static_cast<unsigned long long>(len), kKindNames[kind]);
    Same(what, CALL(write(h->z, wbuf.data(), len)), CALL(write(h->r, wbuf.data(), len)));
    Same("  position", CALL(lseek(h->z, 0, SEEK_CUR)), CALL(lseek(h->r, 0, SEEK_CUR)));
  }
  CompareFstat(*h, "write");
}

void OpRead() {
  Handle* h = PickHandle(false, true);
  if (!h) return;
  const uint64_t size = RefSize(*h);
  uint64_t len = rng.Chance(10) ? rng.Range(kMiB, 2 * kMiB) : PickLen();
  uint64_t off = rng.Chance(10) ? size + rng.Below(10000) : rng.Below(size + 1);
  if (rng.Chance(20)) off = off / kPage * kPage;
  if (zbuf.size() < len) zbuf.resize(len);
  if (rbuf.size() < len) rbuf.resize(len);
  const bool positional = rng.Chance(80);
  std::string what;
  Res z, r;
  if (positional) {
    what = Fmt("pread %s off=%llu len=%llu", HName(*h).c_str(),
               static_cast<unsigned long long>(off), static_cast<unsigned long long>(len));
    z = CALL(pread(h->z, zbuf.data(), len, static_cast<off_t>(off)));
    r = CALL(pread(h->r, rbuf.data(), len, static_cast<off_t>(off)));
  } else {
    Same(Fmt("lseek %s %llu", HName(*h).c_str(), static_cast<unsigned long long>(off)),
         CALL(lseek(h->z, static_cast<off_t>(off), SEEK_SET)),
         CALL(lseek(h->r, static_cast<off_t>(off), SEEK_SET)));
    what = Fmt("read %s len=%llu", HName(*h).c_str(), static_cast<unsigned long long>(len));
    z = CALL(read(h->z, zbuf.data(), len));
    r = CALL(read(h->r, rbuf.data(), len));
  }
  if (!Same(what, z, r)) return;
  if (std::memcmp(zbuf.data(), rbuf.data(), static_cast<size_t>(r.v)) != 0) {
    size_t i = 0;
    while (zbuf[i] == rbuf[i]) ++i;
    Fail(Fmt("%s: data differs at file offset %llu (zbudfs 0x%02x, reference 0x%02x)", what.c_str(),
             static_cast<unsigned long long>(off + i), zbuf[i], rbuf[i]));
  }
}

// Reads through a fresh O_DIRECT descriptor of the same file (via /proc/self/fd), so the
// data comes from the daemon and not from the kernel's page cache.
void OpDirectRead() {
  Handle* h = PickHandle(false, true);
  if (!h || !Readable(*h)) return;
  const uint64_t size = RefSize(*h);
  // (The handle may be a directory's: then both reopens fail alike.)
  Res oz = CALL(open(Fmt("/proc/self/fd/%d", h->z).c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC));
  Res orf = CALL(open(Fmt("/proc/self/fd/%d", h->r).c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC));
  if (orf.v >= 0) close(static_cast<int>(orf.v));
  if (!Same("O_DIRECT reopen " + HName(*h), oz, orf, false)) return;
  const int dz = static_cast<int>(oz.v);
  const uint64_t off = rng.Below(size / kPage + 2) * kPage;
  const uint64_t len = rng.Range(1, 64) * kPage;
  void* zb = nullptr;
  if (posix_memalign(&zb, kPage, len) != 0) std::abort();
  if (rbuf.size() < len) rbuf.resize(len);
  const std::string what =
      Fmt("O_DIRECT pread %s off=%llu len=%llu", HName(*h).c_str(),
          static_cast<unsigned long long>(off), static_cast<unsigned long long>(len));
  Res z = CALL(pread(dz, zb, len, static_cast<off_t>(off)));
  Res r = CALL(pread(h->r, rbuf.data(), len, static_cast<off_t>(off)));
  close(dz);
  if (Same(what, z, r) && std::memcmp(zb, rbuf.data(), static_cast<size_t>(r.v)) != 0) {
    size_t i = 0;
    while (static_cast<uint8_t*>(zb)[i] == rbuf[i]) ++i;
    Fail(Fmt("%s: data differs at file offset %llu", what.c_str(),
             static_cast<unsigned long long>(off + i)));
  }
  free(zb);
}

void OpTruncate() {
  const bool by_path = rng.Chance(30);
  Handle* h = by_path ? nullptr : PickHandle(true);
  std::string p = by_path || !h ? PickFile() : h->name;
  uint64_t size = 0;
  if (h) {
    size = RefSize(*h);
  } else {
    struct stat st;
    if (stat(R(p).c_str(), &st) == 0) size = static_cast<uint64_t>(st.st_size);
  }
  uint64_t r = rng.Below(100), ns;
  if (Over() || r < 40) {
    ns = rng.Below(size + 1);
  } else if (r < 50) {
    ns = 0;
  } else if (r < 70) {
    ns = size + rng.Below(kMiB);
  } else if (r < 90) {
    ns = rng.Below(size / kPage + 3) * kPage + rng.Range(0, 16) - 8;
    if (ns > (1ull << 62)) ns = 0;
  } else {
    ns = rng.Below(opt.max_offset);
  }
  if (h) {
    Same(Fmt("ftruncate %s %llu (was %llu)", HName(*h).c_str(), static_cast<unsigned long long>(ns),
             static_cast<unsigned long long>(size)),
         CALL(ftruncate(h->z, static_cast<off_t>(ns))),
         CALL(ftruncate(h->r, static_cast<off_t>(ns))));
    CompareFstat(*h, "ftruncate");
  } else {
    Same(Fmt("truncate %s %llu (was %llu)", p.c_str(), static_cast<unsigned long long>(ns),
             static_cast<unsigned long long>(size)),
         CALL(truncate(Z(p).c_str(), static_cast<off_t>(ns))),
         CALL(truncate(R(p).c_str(), static_cast<off_t>(ns))));
  }
}

void OpFallocate() {
  Handle* h = PickHandle(true);
  if (!h) return;
  const uint64_t size = RefSize(*h);
  uint64_t off = rng.Chance(50) ? rng.Below(size + 64 * 1024) : rng.Below(size / kPage + 2) * kPage;
  uint64_t len = rng.Chance(50)
                     ? rng.Range(1, 3 * kPage)
                     : rng.Range(1, 1024) * kPage - (rng.Chance(50) ? 0 : rng.Below(kPage));
  if (rng.Chance(5)) len = rng.Range(1, 4 * kMiB);
  const uint64_t r = rng.Below(100);
  if (r < 55) {  // Punch a hole.
    Same(Fmt("fallocate PUNCH|KEEP %s off=%llu len=%llu (size %llu)", HName(*h).c_str(),
             static_cast<unsigned long long>(off), static_cast<unsigned long long>(len),
             static_cast<unsigned long long>(size)),
         CALL(fallocate(h->z, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off),
                        static_cast<off_t>(len))),
         CALL(fallocate(h->r, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off),
                        static_cast<off_t>(len))));
  } else if (r < 85) {  // ZERO_RANGE on zbudfs; the reference gets zeros written instead.
    const bool keep = rng.Chance(50);
    if (!keep && Over()) len = std::min<uint64_t>(len, size > off ? size - off + 1 : 1);
    const std::string what =
        Fmt("fallocate ZERO_RANGE%s %s off=%llu len=%llu (size %llu)", keep ? "|KEEP" : "",
            HName(*h).c_str(), static_cast<unsigned long long>(off),
            static_cast<unsigned long long>(len), static_cast<unsigned long long>(size));
    Res z = CALL(fallocate(h->z, FALLOC_FL_ZERO_RANGE | (keep ? FALLOC_FL_KEEP_SIZE : 0),
                           static_cast<off_t>(off), static_cast<off_t>(len)));
    Res r2{0, 0};
    if (!Writable(*h)) {
      r2 = Res{-1, EBADF};
    } else {
      const uint64_t end = keep ? std::min(off + len, size) : off + len;
      if (end > off) {
        int w = open(Fmt("/proc/self/fd/%d", h->r).c_str(), O_WRONLY | O_CLOEXEC);
        if (w < 0) Fail(Fmt("reopen of the reference fd: %s", strerror(errno)));
        std::vector<uint8_t> zeros(std::min<uint64_t>(end - off, kMiB), 0);
        for (uint64_t pos = off; pos < end;) {
          size_t n = static_cast<size_t>(std::min<uint64_t>(end - pos, zeros.size()));
          if (pwrite(w, zeros.data(), n, static_cast<off_t>(pos)) != static_cast<ssize_t>(n)) {
            Fail(Fmt("zero-range emulation on the reference: %s", strerror(errno)));
          }
          pos += n;
        }
        close(w);
      }
    }
    Same(what, z, r2);
  } else {  // Allocate (plain or KEEP_SIZE).
    const bool keep = rng.Chance(50);
    len = std::min<uint64_t>(len, 2 * kMiB);
    if (Over()) len = std::min<uint64_t>(len, size > off ? size - off + 1 : 1);
    Same(Fmt("fallocate %s %s off=%llu len=%llu (size %llu)", keep ? "KEEP" : "0",
             HName(*h).c_str(), static_cast<unsigned long long>(off),
             static_cast<unsigned long long>(len), static_cast<unsigned long long>(size)),
         CALL(fallocate(h->z, keep ? FALLOC_FL_KEEP_SIZE : 0, static_cast<off_t>(off),
                        static_cast<off_t>(len))),
         CALL(fallocate(h->r, keep ? FALLOC_FL_KEEP_SIZE : 0, static_cast<off_t>(off),
                        static_cast<off_t>(len))));
  }
  CompareFstat(*h, "fallocate");
}

void OpMmap() {
  Handle* h = PickHandle(true, true);
  if (!h) return;
  const uint64_t size = RefSize(*h);
  if (size == 0) return;
  const uint64_t off = rng.Below((size + kPage - 1) / kPage) * kPage;
  const uint64_t len = rng.Range(1, std::min<uint64_t>(size - off, 2 * kMiB));
  const bool rw = Readable(*h) && Writable(*h) && rng.Chance(80);
  const int prot = rw ? PROT_READ | PROT_WRITE : PROT_READ;
  const std::string what =
      Fmt("mmap %s %s off=%llu len=%llu (size %llu)", rw ? "RW" : "R", HName(*h).c_str(),
          static_cast<unsigned long long>(off), static_cast<unsigned long long>(len),
          static_cast<unsigned long long>(size));
  errno = 0;
  void* zm = mmap(nullptr, len, prot, MAP_SHARED, h->z, static_cast<off_t>(off));
  Res z{zm == MAP_FAILED ? -1 : 0, zm == MAP_FAILED ? errno : 0};
  errno = 0;
  void* rm = mmap(nullptr, len, prot, MAP_SHARED, h->r, static_cast<off_t>(off));
  Res r{rm == MAP_FAILED ? -1 : 0, rm == MAP_FAILED ? errno : 0};
  if (!Same(what, z, r)) return;
  auto* zp = static_cast<uint8_t*>(zm);
  auto* rp = static_cast<uint8_t*>(rm);
  int sig = sigsetjmp(g_jmp, 1);
  if (sig != 0) {
    g_in_mmap = 0;
    Fail(what + ": SIGBUS while touching the zbudfs mapping (a page could not be read or written)");
  }
  g_in_mmap = 1;
  if (std::memcmp(zp, rp, len) != 0) {
    size_t i = 0;
    while (zp[i] == rp[i]) ++i;
    g_in_mmap = 0;
    Fail(Fmt("%s: mapped data differs at file offset %llu", what.c_str(),
             static_cast<unsigned long long>(off + i)));
  }
  if (rw) {
    const int writes = static_cast<int>(rng.Range(1, 4));
    for (int k = 0; k < writes; ++k) {
      uint64_t wo = rng.Below(len);
      uint64_t wl = rng.Range(1, std::min<uint64_t>(len - wo, 3 * kPage));
      const int kind = FillData(wl);
      Log(Fmt("  mmap store at file offset %llu len %llu %s",
              static_cast<unsigned long long>(off + wo), static_cast<unsigned long long>(wl),
              kKindNames[kind]));
      std::memcpy(zp + wo, wbuf.data(), wl);
      std::memcpy(rp + wo, wbuf.data(), wl);
    }
    if (rng.Chance(70)) {
      const int flags = rng.Chance(70) ? MS_SYNC : MS_ASYNC;
      Same(flags == MS_SYNC ? "  msync MS_SYNC" : "  msync MS_ASYNC", CALL(msync(zm, len, flags)),
           CALL(msync(rm, len, flags)));
    }
    if (std::memcmp(zp, rp, len) != 0) {
      g_in_mmap = 0;
      Fail(what + ": mapped data differs after stores");
    }
  }
  g_in_mmap = 0;
  munmap(zm, len);
  munmap(rm, len);
  CompareFstat(*h, "mmap");
}

void OpSync() {
  Handle* h = PickHandle();
  if (!h) return;
  const bool data = rng.Chance(50);
  Same(Fmt("%s %s", data ? "fdatasync" : "fsync", HName(*h).c_str()),
       CALL(data ? fdatasync(h->z) : fsync(h->z)), CALL(data ? fdatasync(h->r) : fsync(h->r)));
}

// Writes back and drops the kernel's cached pages of the file, so the next reads and mmap
// faults go to the daemon (and, under mem_limit, to the overflow directory).
void OpDropCache() {
  Handle* h = PickHandle();
  if (!h) return;
  Same(Fmt("fsync+fadvise(DONTNEED) %s", HName(*h).c_str()), CALL(fsync(h->z)), CALL(fsync(h->r)));
  posix_fadvise(h->z, 0, 0, POSIX_FADV_DONTNEED);
}

void OpFstat() {
  Handle* h = PickHandle();
  if (!h) return;
  Log("fstat " + HName(*h));
  CompareFstat(*h, "fstat");
}

void CompareStat(const std::string& p, const char* after) {
  struct stat zs, rs;
  Res z = CALL(lstat(Z(p).c_str(), &zs));
  Res r = CALL(lstat(R(p).c_str(), &rs));
  Same(Fmt("lstat %s (after %s)", p.c_str(), after), z, r);
  if (z.v < 0) return;
  if (zs.st_mode != rs.st_mode || zs.st_nlink != rs.st_nlink || (zs.st_size != rs.st_size)) {
    Fail(
        Fmt("lstat %s after %s: zbudfs mode %o nlink %llu size %lld; reference mode %o nlink %llu "
            "size %lld",
            p.c_str(), after, zs.st_mode, static_cast<unsigned long long>(zs.st_nlink),
            static_cast<long long>(zs.st_size), rs.st_mode,
            static_cast<unsigned long long>(rs.st_nlink), static_cast<long long>(rs.st_size)));
  }
}

void OpStat() { CompareStat(PickAny(), "stat"); }

void OpUnlink() {
  const std::string p = PickAny();
  Same("unlink " + p, CALL(unlink(Z(p).c_str())), CALL(unlink(R(p).c_str())));
}

void OpRename() {
  const std::string a = PickAny(), b = PickAny();
  const uint64_t r = rng.Below(100);
  if (r < 80) {
    Same("rename " + a + " -> " + b, CALL(rename(Z(a).c_str(), Z(b).c_str())),
         CALL(rename(R(a).c_str(), R(b).c_str())));
  } else {
    const unsigned flags = r < 90 ? RENAME_NOREPLACE : RENAME_EXCHANGE;
    Same(std::string(flags == RENAME_NOREPLACE ? "renameat2 NOREPLACE " : "renameat2 EXCHANGE ") +
             a + " <-> " + b,
         CALL(syscall(SYS_renameat2, AT_FDCWD, Z(a).c_str(), AT_FDCWD, Z(b).c_str(), flags)),
         CALL(syscall(SYS_renameat2, AT_FDCWD, R(a).c_str(), AT_FDCWD, R(b).c_str(), flags)));
  }
  CompareStat(b, "rename");
}

void OpLink() {
  const std::string a = PickAny(), b = PickFile();
  if (Same("link " + a + " -> " + b, CALL(link(Z(a).c_str(), Z(b).c_str())),
           CALL(link(R(a).c_str(), R(b).c_str())))) {
    CompareStat(a, "link");
  }
}

void OpMkdir() {
  const std::string d = rng.Chance(80) ? kDirs[rng.Below(kDirs.size())] : PickFile();
  Same("mkdir " + d, CALL(mkdir(Z(d).c_str(), 0755)), CALL(mkdir(R(d).c_str(), 0755)));
}

void OpRmdir() {
  const std::string d = rng.Chance(80) ? kDirs[rng.Below(kDirs.size())] : PickFile();
  Same("rmdir " + d, CALL(rmdir(Z(d).c_str())), CALL(rmdir(R(d).c_str())));
}

// Sorted names of a directory, or the errno.
std::pair<int, std::vector<std::string>> List(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (!d) return {errno, names};
  while (dirent* e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    names.push_back(e->d_name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return {0, names};
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

void OpReaddir() {
  const std::string d = rng.Chance(40) ? std::string() : kDirs[rng.Below(kDirs.size())];
  auto z = List(d.empty() ? opt.zroot : Z(d));
  auto r = List(d.empty() ? opt.rroot : R(d));
  Log("readdir /" + d + " -> [" + Join(r.second) + "] " + ErrName(r.first));
  if (z.first != r.first || z.second != r.second) {
    Fail(Fmt("readdir /%s: zbudfs %s [%s], reference %s [%s]", d.c_str(), ErrName(z.first),
             Join(z.second).c_str(), ErrName(r.first), Join(r.second).c_str()));
  }
}

// True when the reference reads as zeros over [a, b); nullopt when finding out would mean
// reading more than 4 MiB of the reference's data.
std::optional<bool> RefZeros(int rfd, uint64_t a, uint64_t b) {
  if (a >= b) return true;
  uint64_t budget = 4 * kMiB;
  for (auto [s, e] : Extents(rfd, b)) {
    s = std::max(s, a);
    if (s >= e) continue;
    if (e - s > budget) return std::nullopt;
    budget -= e - s;
    std::vector<uint8_t> buf(e - s);
    if (pread(rfd, buf.data(), buf.size(), static_cast<off_t>(s)) !=
        static_cast<ssize_t>(buf.size()))
      return std::nullopt;
    for (uint8_t c : buf) {
      if (c != 0) return false;
    }
  }
  return true;
}

// SEEK_DATA/SEEK_HOLE: zbudfs need not give tmpfs's answers (it may report data where
// tmpfs has a hole, e.g. while a writer is open), but its answers must be true: no data
// skipped by SEEK_DATA, no hole reported over data by SEEK_HOLE, ENXIO only past the data /
// at EOF. A violation is counted (the run goes on; the exit status is 1 at the end).
uint64_t g_seek_violations = 0;
void SeekViolation(const std::string& what) {
  ++g_seek_violations;
  Log("  SEEK VIOLATION: " + what);
  if (g_seek_violations <= 5) {
    std::fprintf(stderr, "%sexerciser: SEEK_DATA/SEEK_HOLE violation at op #%llu (seed %llu): %s\n",
                 opt.job_tag.c_str(), static_cast<unsigned long long>(g_op),
                 static_cast<unsigned long long>(opt.seed), what.c_str());
  }
}

void OpSeek() {
  Handle* h = PickHandle();
  if (!h) return;
  struct stat st;
  if (fstat(h->r, &st) != 0 || !S_ISREG(st.st_mode)) return;
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const uint64_t r = rng.Below(100);
  uint64_t off = r < 60   ? rng.Below(size + 1)
                 : r < 80 ? rng.Below(size / kPage + 1) * kPage
                 : r < 90 ? size + rng.Below(3 * kPage)
                          : 0;
  const bool data = rng.Chance(50);
  const std::string what =
      Fmt("lseek %s %s off=%llu (size %llu)", data ? "SEEK_DATA" : "SEEK_HOLE", HName(*h).c_str(),
          static_cast<unsigned long long>(off), static_cast<unsigned long long>(size));
  Res z = CALL(lseek(h->z, static_cast<off_t>(off), data ? SEEK_DATA : SEEK_HOLE));
  Log(what + " -> zbudfs " + Show(z));
  if (z.v >= 0) lseek(h->r, z.v, SEEK_SET);  // Keep the two file positions equal.
  const uint64_t got = static_cast<uint64_t>(z.v);
  if (data) {
    if (z.v < 0) {
      if (z.err != ENXIO) return SeekViolation(what + ": " + Show(z));
      if (off < size && RefZeros(h->r, off, size) == false) {
        return SeekViolation(what +
                             ": ENXIO, but there is data after the offset (the file holds non-zero "
                             "bytes before EOF)");
      }
    } else if (got < off || got >= size) {
      SeekViolation(what + Fmt(": returned %llu, outside [offset, EOF)",
                               static_cast<unsigned long long>(got)));
    } else if (RefZeros(h->r, off, got) == false) {
      SeekViolation(what + Fmt(": returned %llu, skipping non-zero data",
                               static_cast<unsigned long long>(got)));
    }
  } else {
    if (z.v < 0) {
      if (z.err != ENXIO || off < size) SeekViolation(what + ": " + Show(z) + " before EOF");
    } else if (got < off || got > size) {
      SeekViolation(what + Fmt(": returned %llu, outside [offset, EOF]",
                               static_cast<unsigned long long>(got)));
    } else if (got < size &&
               RefZeros(h->r, got, std::min(size, got / kPage * kPage + kPage)) == false) {
      SeekViolation(what + Fmt(": returned %llu, a hole over non-zero data",
                               static_cast<unsigned long long>(got)));
    }
  }
}

// Compares a whole open file (reference extents; zbudfs's own only when nothing is open
// for writing, since it reports all data while a writer may hold dirty pages).
void OpCompareHandle() {
  Handle* h = PickHandle(false, true);
  if (!h || !Readable(*h)) return;
  const uint64_t size = RefSize(*h);
  Log(Fmt("compare whole %s (size %llu)", HName(*h).c_str(),
          static_cast<unsigned long long>(size)));
  CompareFstat(*h, "compare");
  CompareWhole("compare " + HName(*h), h->z, h->r, size, false);
}

// Walks both trees: same names, types, modes, sizes and link counts; with content, every
// regular file's bytes too.
void CompareTree(const std::string& rel, bool content) {
  auto z = List(rel.empty() ? opt.zroot : Z(rel));
  auto r = List(rel.empty() ? opt.rroot : R(rel));
  if (z.first != r.first || z.second != r.second) {
    Fail(Fmt("tree compare: directory /%s: zbudfs %s [%s], reference %s [%s]", rel.c_str(),
             ErrName(z.first), Join(z.second).c_str(), ErrName(r.first), Join(r.second).c_str()));
  }
  for (const auto& n : r.second) {
    const std::string p = rel.empty() ? n : rel + "/" + n;
    CompareStat(p, "tree walk");
    struct stat st;
    lstat(R(p).c_str(), &st);
    if (S_ISDIR(st.st_mode)) {
      CompareTree(p, content);
    } else if (S_ISREG(st.st_mode) && content) {
      int zf = open(Z(p).c_str(), O_RDONLY | O_CLOEXEC);
      int rf = open(R(p).c_str(), O_RDONLY | O_CLOEXEC);
      if (zf < 0 || rf < 0) Fail("tree compare: cannot open " + p + ": " + strerror(errno));
      CompareWhole("tree compare " + p, zf, rf, static_cast<uint64_t>(st.st_size), handles.empty());
      close(zf);
      close(rf);
    }
  }
}

struct OpDef {
  const char* name;
  void (*fn)();
  unsigned weight;
};

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) Usage();
      return argv[++i];
    };
    if (a == "--zbud")
      opt.zroot = val();
    else if (a == "--ref")
      opt.rroot = val();
    else if (a == "--seed") {
      opt.seed = std::strtoull(val().c_str(), nullptr, 0);
      opt.seed_given = true;
    } else if (a == "--ops")
      opt.ops = std::strtoull(val().c_str(), nullptr, 0);
    else if (a == "--target-mb")
      opt.target_bytes = std::strtoull(val().c_str(), nullptr, 0) * kMiB;
    else if (a == "--max-offset-mb")
      opt.max_offset = std::max<uint64_t>(1, std::strtoull(val().c_str(), nullptr, 0)) * kMiB;
    else if (a == "--check-every")
      opt.check_every = std::strtoull(val().c_str(), nullptr, 0);
    else if (a == "--tail")
      opt.tail = std::atoi(val().c_str());
    else if (a == "--no-mmap")
      opt.mmap = false;
    else if (a == "--jobs")
      opt.jobs = std::max(1, std::atoi(val().c_str()));
    else if (a == "--verbose" || a == "-v")
      opt.verbose = true;
    else
      Usage();
  }
  if (opt.zroot.empty() || opt.rroot.empty()) Usage();
  if (!opt.seed_given) {
    opt.seed = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) ^
               (static_cast<uint64_t>(getpid()) << 32);
    opt.seed %= 1000000000000ull;
  }
  if (opt.jobs > 1) {
    // Each job: its own subdirectory, seed, share of the ops and of the data.
    std::printf("exerciser: %u jobs, seeds %llu..%llu\n", opt.jobs,
                static_cast<unsigned long long>(opt.seed),
                static_cast<unsigned long long>(opt.seed + opt.jobs - 1));
    std::fflush(stdout);
    std::vector<pid_t> pids;
    for (unsigned j = 0; j < opt.jobs; ++j) {
      const std::string sub = Fmt("/j%u", j);
      if ((mkdir((opt.zroot + sub).c_str(), 0755) != 0 && errno != EEXIST) ||
          (mkdir((opt.rroot + sub).c_str(), 0755) != 0 && errno != EEXIST)) {
        std::fprintf(stderr, "exerciser: cannot make the job directories: %s\n", strerror(errno));
        return 2;
      }
      pid_t pid = fork();
      if (pid < 0) return 2;
      if (pid == 0) {
        opt.zroot += sub;
        opt.rroot += sub;
        opt.seed += j;
        opt.ops /= opt.jobs;
        opt.target_bytes /= opt.jobs;
        opt.jobs = 1;
        opt.job_tag = Fmt("job %u: ", j);
        break;
      }
      pids.push_back(pid);
    }
    if (opt.jobs > 1) {
      int failed = 0;
      for (pid_t pid : pids) {
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
      }
      std::printf("exerciser: %s (%d of %u jobs failed)\n", failed ? "FAIL" : "PASS", failed,
                  opt.jobs);
      return failed ? 1 : 0;
    }
  }
  rng.s = opt.seed;
  std::printf("%sexerciser: seed %llu, %llu ops, target %llu MiB, max offset %llu MiB\n",
              opt.job_tag.c_str(), static_cast<unsigned long long>(opt.seed),
              static_cast<unsigned long long>(opt.ops),
              static_cast<unsigned long long>(opt.target_bytes / kMiB),
              static_cast<unsigned long long>(opt.max_offset / kMiB));
  std::fflush(stdout);
  umask(022);
  struct sigaction sa {};
  sa.sa_handler = OnSigbus;
  sigaction(SIGBUS, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  for (const char* d : {"d0", "d1", "d0/s"}) {
    Same(std::string("mkdir ") + d, CALL(mkdir(Z(d).c_str(), 0755)),
         CALL(mkdir(R(d).c_str(), 0755)));
  }

  std::vector<OpDef> ops = {
      {"open", OpOpen, 8},
      {"close", OpClose, 5},
      {"write", OpWrite, 26},
      {"read", OpRead, 15},
      {"direct", OpDirectRead, 2},
      {"truncate", OpTruncate, 5},
      {"fallocate", OpFallocate, 7},
      {"mmap", OpMmap, 4},
      {"sync", OpSync, 2},
      {"dropcache", OpDropCache, 2},
      {"fstat", OpFstat, 2},
      {"stat", OpStat, 2},
      {"unlink", OpUnlink, 3},
      {"rename", OpRename, 3},
      {"link", OpLink, 2},
      {"mkdir", OpMkdir, 1},
      {"rmdir", OpRmdir, 1},
      {"readdir", OpReaddir, 1},
      {"compare", OpCompareHandle, 1},
      {"seek", OpSeek, 2},
  };
  std::map<std::string, uint64_t> counts;
  const auto start = std::chrono::steady_clock::now();
  for (g_op = 0; g_op < opt.ops; ++g_op) {
    used_now = RefUsed();
    std::vector<unsigned> w;
    unsigned total = 0;
    for (const OpDef& d : ops) {
      unsigned x = d.weight;
      const std::string n = d.name;
      if (n == "open") x = handles.size() < 3 ? 30 : handles.size() > 20 ? 1 : x;
      if (n == "close") x = handles.size() > 20 ? 30 : handles.size() < 3 ? 1 : x;
      if (n == "mmap" && !opt.mmap) x = 0;
      if (Over() && (n == "truncate" || n == "unlink" || n == "fallocate")) x *= 3;
      if (n == "compare" && used_now > 4 * opt.target_bytes) x = 0;
      w.push_back(x);
      total += x;
    }
    unsigned pick = static_cast<unsigned>(rng.Below(total));
    size_t k = 0;
    while (pick >= w[k]) pick -= w[k++];
    ops[k].fn();
    ++counts[ops[k].name];
    if (opt.check_every != 0 && (g_op + 1) % opt.check_every == 0) {
      Log("light tree compare");
      CompareTree("", false);
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("%sexerciser: %llu ops, %.1f s, reference holds %.1f MiB, %zu open handles\n",
                  opt.job_tag.c_str(), static_cast<unsigned long long>(g_op + 1), s,
                  RefUsed() / double(kMiB), handles.size());
      std::fflush(stdout);
    }
  }
  // The end: every open handle (some of unlinked files) compared whole and closed, then the
  // trees compared with content.
  Log("final: compare and close every handle");
  while (!handles.empty()) {
    Handle& h = handles.back();
    CompareFstat(h, "final");
    if (Readable(h)) {
      CompareWhole("final " + HName(h), h.z, h.r, RefSize(h), false);
    } else {
      int zf = open(Fmt("/proc/self/fd/%d", h.z).c_str(), O_RDONLY | O_CLOEXEC);
      int rf = open(Fmt("/proc/self/fd/%d", h.r).c_str(), O_RDONLY | O_CLOEXEC);
      if (zf >= 0 && rf >= 0) CompareWhole("final " + HName(h), zf, rf, RefSize(h), false);
      if (zf >= 0) close(zf);
      if (rf >= 0) close(rf);
    }
    CloseHandle(handles.size() - 1);
  }
  Log("final: full tree compare with content");
  CompareTree("", true);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%sexerciser: %s seed %llu: %llu ops in %.1f s; reference holds %.1f MiB;",
              opt.job_tag.c_str(),
              g_seek_violations != 0 ? "finished (data and metadata all equal)" : "PASS",
              static_cast<unsigned long long>(opt.seed), static_cast<unsigned long long>(opt.ops),
              s, RefUsed() / double(kMiB));
  for (const auto& [n, c] : counts)
    std::printf(" %s=%llu", n.c_str(), static_cast<unsigned long long>(c));
  std::printf("\n");
  if (g_seek_violations != 0) {
    std::printf(
        "%sexerciser: FAIL: %llu SEEK_DATA/SEEK_HOLE answers were untrue (seed %llu; first ones "
        "above)\n",
        opt.job_tag.c_str(), static_cast<unsigned long long>(g_seek_violations),
        static_cast<unsigned long long>(opt.seed));
    return 1;
  }
  return 0;
}

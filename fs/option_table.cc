// The table of mount options and what is read from it alone: the defaults of this machine
// and --help (see option_table.h). No locks: built on first use, before the session starts.
#include "fs/option_table.h"

#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "store/cluster.h"
#include "store/page_store.h"

namespace zbudfs {
namespace options_internal {
namespace {

// For --help: 12341872K reads better as 11.8G.
std::string ApproxSize(uint64_t bytes) {
  static const char* kUnits[] = {"", "K", "M", "G", "T", "P"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (u < 5 && v >= 1024) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), v == std::floor(v) ? "%.0f%s" : "%.1f%s", v, kUnits[u]);
  return buf;
}

// The options' limits and texts are known at run time only (zstd's levels, this machine's
// defaults), so the table is built on first use.
std::vector<OptionSpec> GeneralOptions() {
  using M = MountOptions;
  constexpr Section kGeneral = Section::kGeneral;
  return {
      {.spellings = {"-f"},
       .kind = Kind::kFlag,
       .field = &M::foreground,
       .section = kGeneral,
       .label = "-f",
       .help = "stay in the foreground"},
      {.spellings = {"-d", "--debug", "debug"},
       .kind = Kind::kFlag,
       .field = &M::debug,
       .to_libfuse = true,
       .section = kGeneral,
       .label = "-d, -o debug",
       .help = "FUSE debug output (implies -f)"},
      {.spellings = {"-s"},
       .kind = Kind::kFlag,
       .field = &M::single_thread,
       .section = kGeneral,
       .label = "-s",
       .help = "single-threaded"},
      {.spellings = {"-h", "--help"},
       .kind = Kind::kFlag,
       .field = &M::show_help,
       .section = kGeneral,
       .label = "-h, --help",
       .help = "this text"},
      {.spellings = {"-V", "--version"},
       .kind = Kind::kFlag,
       .field = &M::show_version,
       .section = kGeneral,
       .label = "-V, --version",
       .help = "versions"},
      {.spellings = {"allow_other"},
       .kind = Kind::kFlag,
       .field = &M::allow_other,
       .to_libfuse = true},
      {.spellings = {"fsname="}, .kind = Kind::kPassThrough, .to_libfuse = true},
      {.spellings = {"subtype="}, .kind = Kind::kPassThrough, .to_libfuse = true},
      {.spellings = {"default_permissions"}, .kind = Kind::kPassThrough, .to_libfuse = true},
  };
}

std::vector<OptionSpec> SizeOptions() {
  using M = MountOptions;
  constexpr Section kZbudfs = Section::kZbudfs;
  return {
      {.spellings = {"size="},
       .kind = Kind::kSize,
       .field = &M::size,
       .min_bytes = kPageSize,
       .max_bytes = uint64_t{1} << 52,
       .round_up_to_pages = true,
       .section = kZbudfs,
       .remountable = true,
       .label = "-o size=SIZE",
       .help = "logical capacity, what df shows; writes past it get\n"
               "ENOSPC (default: half of RAM, like tmpfs: " +
               ApproxSize(DefaultSize()) + ")"},
      {.spellings = {"mem_limit="},
       .kind = Kind::kSize,
       .field = &M::mem_limit,
       .min_bytes = kPageSize,
       .section = kZbudfs,
       .remountable = true,
       .label = "-o mem_limit=SIZE",
       .help = "memory the compressed store may hold; above it, reclaim\n"
               "moves the coldest pages to the overflow directory\n"
               "(default: a quarter of RAM: " +
               ApproxSize(DefaultMemLimit()) +
               "; data compresses about 2x,\n"
               "so a full default-sized mount fits in it, and the\n"
               "overflow takes the rest: the default never makes the\n"
               "machine swap)"},
      {.spellings = {"overflow_dir="},
       .kind = Kind::kPath,
       .field = &M::overflow_dir,
       .section = kZbudfs,
       .label = "-o overflow_dir=DIR",
       .help = "where reclaimed pages go (must exist and be writable;\n"
               "default: a private directory under $TMPDIR or /var/tmp)"},
      // At least a page: 0 would mean "unlimited" to the overflow store.
      {.spellings = {"overflow_limit="},
       .kind = Kind::kSize,
       .field = &M::overflow_limit,
       .min_bytes = kPageSize,
       .section = kZbudfs,
       .remountable = true,
       .label = "-o overflow_limit=SIZE",
       .help = "most bytes the overflow may hold (default: size)"},
      {.spellings = {"staging="},
       .kind = Kind::kSize,
       .field = &M::staging,
       .round_up_to_pages = true,
       .section = kZbudfs,
       .label = "-o staging=SIZE",
       .help = "whole pages a write keeps as written, counted in\n"
               "mem_limit, for background threads to compress: a\n"
               "write costs a copy, not zstd; 0 = off, every write\n"
               "compresses its own pages (default: mem_limit/8, at\n"
               "most 64M)"},
  };
}

// Clusters: which cold pages are packed, how many at a time (new-mount only).
std::vector<OptionSpec> ClusterOptions() {
  using M = MountOptions;
  constexpr Section kZbudfs = Section::kZbudfs;
  return {
      {.spellings = {"cluster="},
       .kind = Kind::kSize,
       .field = &M::cluster,
       .max_bytes = kPageSize * Cluster::kMaxPages,
       .section = kZbudfs,
       .label = "-o cluster=SIZE",
       .help = "cold pages of a file are packed this many bytes at a\n"
               "time into one zstd frame, past zbud's two pages per\n"
               "pool page (8K, 16K, 32K or 64K; 0 = off; default 16K)"},
      {.spellings = {"pack_after="},
       .kind = Kind::kInteger,
       .field = &M::pack_after,
       .min = 0,
       .max = 86400,
       .section = kZbudfs,
       .label = "-o pack_after=SECONDS",
       .help = "a file not written for this long is packed into\n"
               "clusters (default: 30; zbudfsctl pack packs at once)"},
  };
}

// zstd levels: of clusters, of single pages, and the fast level tried first.
std::vector<OptionSpec> LevelOptions() {
  using M = MountOptions;
  constexpr Section kZbudfs = Section::kZbudfs;
  const long zmin = ZSTD_minCLevel(), zmax = ZSTD_maxCLevel();
  const PageStoreOptions store;
  return {
      {.spellings = {"pack_level="},
       .kind = Kind::kInteger,
       .field = &M::pack_level,
       .min = zmin,
       .max = zmax,
       .section = kZbudfs,
       .label = "-o pack_level=N",
       .help = "zstd level of clusters, packed in the background\n"
               "(default: " +
               std::to_string(store.pack_level) + ")"},
      {.spellings = {"zstd_level="},
       .kind = Kind::kInteger,
       .field = &M::zstd_level,
       .min = zmin,
       .max = zmax,
       .section = kZbudfs,
       .remountable = true,
       .label = "-o zstd_level=N",
       .help = "zstd level, negative allowed (default: " + std::to_string(store.zstd_level) +
               ", range " + std::to_string(zmin) + ".." + std::to_string(zmax) + ")"},
      {.spellings = {"zstd_fast="},
       .kind = Kind::kIntegerOrOff,
       .field = &M::zstd_fast_level,
       .min = zmin,
       .max = zmax,
       .section = kZbudfs,
       .remountable = true,
       .label = "-o zstd_fast=N|off",
       .help = "level tried first: a page that already fits half a zbud\n"
               "page at it keeps that result, others are compressed\n"
               "again at zstd_level (default: " +
               std::to_string(store.zstd_fast_level) +
               "; off or N >= zstd_level:\n"
               "one pass at zstd_level)"},
  };
}

// The daemon: inodes, threads, remount, descriptors.
std::vector<OptionSpec> DaemonOptions() {
  using M = MountOptions;
  constexpr Section kZbudfs = Section::kZbudfs;
  return {
      {.spellings = {"nr_inodes="},
       .kind = Kind::kCount,
       .field = &M::nr_inodes,
       .section = kZbudfs,
       .remountable = true,
       .label = "-o nr_inodes=N",
       .help = "most inodes (files, directories, symlinks; each extra\n"
               "hard link counts as one, as on tmpfs); creating more\n"
               "gets ENOSPC; 0 = unlimited\n"
               "(default: half of RAM's pages, like tmpfs: " +
               std::to_string(DefaultNrInodes()) + ")"},
      {.spellings = {"max_threads="},
       .kind = Kind::kInteger,
       .field = &M::max_threads,
       .min = 1,
       .max = 1024,
       .section = kZbudfs,
       .label = "-o max_threads=N",
       .help = "FUSE worker threads (default: twice the cores, 4..16: " +
               std::to_string(DefaultMaxThreads()) + ")"},
      {.spellings = {"remount"},
       .kind = Kind::kFlag,
       .field = &M::remount,
       .section = kZbudfs,
       .label = "-o remount",
       .help = "change size, mem_limit, overflow_limit, nr_inodes,\n"
               "zstd_level and zstd_fast (and ro/rw) of the zbudfs\n"
               "mounted at MOUNTPOINT, as mount -o remount does (root\n"
               "or the mount's owner); shrinking below what is stored\n"
               "is refused"},
      {.spellings = {"clone_fd"},
       .kind = Kind::kFlag,
       .field = &M::clone_fd,
       .section = kZbudfs,
       .label = "-o clone_fd",
       .help = "one /dev/fuse descriptor per worker thread (libfuse's\n"
               "loop: a getxattr round trip per write(2))"},
      {.spellings = {"no_writeback"},
       .kind = Kind::kFlag,
       .field = &M::no_writeback,
       .section = kZbudfs,
       .label = "-o no_writeback",
       .help = "no kernel writeback cache: each write(2) is a request,\n"
               "ENOSPC comes from write(2) itself, and creating, copying\n"
               "and deleting files costs fewer requests; small writes\n"
               "are slower (README, \"Writeback cache\")"},
  };
}

}  // namespace

// Every option zbudfs knows, in --help's order.
const std::vector<OptionSpec>& Options() {
  static const std::vector<OptionSpec>* const options = [] {
    auto* all = new std::vector<OptionSpec>(GeneralOptions());
    for (auto part : {SizeOptions(), ClusterOptions(), LevelOptions(), DaemonOptions()}) {
      all->insert(all->end(), part.begin(), part.end());
    }
    return all;
  }();
  return *options;
}

// The index in Options() of the option spelled spelling.
size_t IndexOf(std::string_view spelling) {
  const std::vector<OptionSpec>& options = Options();
  for (size_t i = 0; i < options.size(); ++i) {
    for (const char* s : options[i].spellings) {
      if (s == spelling) return i;
    }
  }
  return options.size();
}

std::string HumanSize(uint64_t bytes) {
  static const char* kUnits[] = {"", "K", "M", "G", "T", "P"};
  int u = 0;
  while (u < 5 && bytes >= 1024 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++u;
  }
  return std::to_string(bytes) + kUnits[u];
}

uint64_t DefaultSize() {
  uint64_t half = PhysicalMemory() / 2 / kPageSize * kPageSize;
  return half < kPageSize ? kPageSize : half;
}

// Twice the cores, 4 to 16: on 2 cores, 16 threads cost 25 % of random 4 KiB write IOPS
// in wake-ups (71k vs 90k IOPS, docs/BENCHMARKS.md); 4 leaves room for a request that
// waits on another (lseek's flush of the kernel's dirty pages).
unsigned DefaultMaxThreads() {
  const long cores = sysconf(_SC_NPROCESSORS_ONLN);
  return static_cast<unsigned>(std::clamp<long>(2 * cores, 4, 16));
}

// tmpfs's default: half of RAM's pages, whatever the size.
uint64_t DefaultNrInodes() { return std::max<uint64_t>(PhysicalMemory() / kPageSize / 2, 1024); }

uint64_t DefaultMemLimit() {
  uint64_t quarter = PhysicalMemory() / 4 / kPageSize * kPageSize;
  return quarter < kPageSize ? kPageSize : quarter;
}

// An eighth of mem_limit leaves the pool most of memory; 64 MiB absorbs a burst of writes
// without leaving much for the compressors to catch up on.
uint64_t DefaultStaging(uint64_t mem_limit) {
  return std::min<uint64_t>(uint64_t{64} << 20, mem_limit / 8) / kPageSize * kPageSize;
}

}  // namespace options_internal

namespace {

using options_internal::Options;
using options_internal::OptionSpec;
using options_internal::Section;

// --help's lines for the options of section: the label, then the text from column 27.
std::string HelpOf(Section section) {
  const std::string indent(27, ' ');
  std::string out;
  for (const OptionSpec& spec : Options()) {
    if (spec.section != section) continue;
    std::string line = "    " + spec.label;
    line += std::string(line.size() < indent.size() - 1 ? indent.size() - line.size() : 1, ' ');
    for (char c : spec.help) line += c == '\n' ? "\n" + indent : std::string(1, c);
    out += line + "\n";
  }
  return out;
}

}  // namespace

uint64_t PhysicalMemory() {
  long pages = sysconf(_SC_PHYS_PAGES);
  long page_size = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return uint64_t{1} << 30;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size);
}

std::string HelpText(const char* prog) {
  std::string p = prog;
  return "usage: " + p + " [-f] [-d] [-s] [-o OPTION[,OPTION...]] MOUNTPOINT\n" + "       " + p +
         " SOURCE MOUNTPOINT -o OPTIONS   (the mount.fuse3 form; df shows SOURCE)\n" + "       " +
         p + " -o remount,OPTIONS MOUNTPOINT\n" + "       " + p + " --help | --version\n" +
         "\n"
         "zbudfs: a compressed RAM disk. File data lives as zstd-compressed 4 KiB pages in\n"
         "a zbud pool in this process's memory.\n"
         "\n"
         "general options:\n" +
         HelpOf(Section::kGeneral) +
         "\n"
         "zbudfs options (sizes: bytes or K/M/G/T suffix, powers of 1024):\n" +
         HelpOf(Section::kZbudfs) +
         "\n"
         "zbudfs always mounts with default_permissions: the kernel checks permissions as\n"
         "for tmpfs, which is also what allow_other needs. Statistics: `zbudfsctl stats\n"
         "MOUNTPOINT` or the xattr user.zbudfs.stats of the mount's root directory (read by\n"
         "name; not listed). Daemonized, it logs to syslog, or to /var/log/zbudfs.log\n"
         "(/tmp/zbudfs-UID.log for other users) where there is no /dev/log.\n"
         "\n"
         "standard FUSE options (allow_other, fsname=, ro, ...):\n";
}

}  // namespace zbudfs

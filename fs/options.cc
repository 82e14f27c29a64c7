// Command-line parsing for the daemon. No locks (runs before any thread exists).
#include "fs/options.h"

#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>

#include "store/page_store.h"

namespace zbudfs {
namespace {

enum Key {
  kKeyHelp,
  kKeyVersion,
  kKeyForeground,
  kKeyDebug,
  kKeySingle,
  kKeySize,
  kKeyMemLimit,
  kKeyOverflowDir,
  kKeyOverflowLimit,
  kKeyZstdLevel,
  kKeyZstdFast,
  kKeyMaxThreads,
  kKeyNrInodes,
  kKeyCloneFd,
  kKeyAllowOther,
  kKeyFsname,
  kKeySubtype,
  kKeyDefaultPermissions,
  kKeyNeedsValue,
};

const struct fuse_opt kSpecs[] = {
    FUSE_OPT_KEY("-h", kKeyHelp),
    FUSE_OPT_KEY("--help", kKeyHelp),
    FUSE_OPT_KEY("-V", kKeyVersion),
    FUSE_OPT_KEY("--version", kKeyVersion),
    FUSE_OPT_KEY("-f", kKeyForeground),
    FUSE_OPT_KEY("-d", kKeyDebug),
    FUSE_OPT_KEY("--debug", kKeyDebug),
    FUSE_OPT_KEY("debug", kKeyDebug),
    FUSE_OPT_KEY("-s", kKeySingle),
    FUSE_OPT_KEY("size=", kKeySize),
    FUSE_OPT_KEY("mem_limit=", kKeyMemLimit),
    FUSE_OPT_KEY("overflow_dir=", kKeyOverflowDir),
    FUSE_OPT_KEY("overflow_limit=", kKeyOverflowLimit),
    FUSE_OPT_KEY("zstd_level=", kKeyZstdLevel),
    FUSE_OPT_KEY("zstd_fast=", kKeyZstdFast),
    FUSE_OPT_KEY("max_threads=", kKeyMaxThreads),
    FUSE_OPT_KEY("nr_inodes=", kKeyNrInodes),
    FUSE_OPT_KEY("clone_fd", kKeyCloneFd),
    FUSE_OPT_KEY("allow_other", kKeyAllowOther),
    FUSE_OPT_KEY("fsname=", kKeyFsname),
    FUSE_OPT_KEY("subtype=", kKeySubtype),
    FUSE_OPT_KEY("default_permissions", kKeyDefaultPermissions),
    FUSE_OPT_KEY("size", kKeyNeedsValue),
    FUSE_OPT_KEY("mem_limit", kKeyNeedsValue),
    FUSE_OPT_KEY("overflow_dir", kKeyNeedsValue),
    FUSE_OPT_KEY("overflow_limit", kKeyNeedsValue),
    FUSE_OPT_KEY("zstd_level", kKeyNeedsValue),
    FUSE_OPT_KEY("zstd_fast", kKeyNeedsValue),
    FUSE_OPT_KEY("max_threads", kKeyNeedsValue),
    FUSE_OPT_KEY("nr_inodes", kKeyNeedsValue),
    FUSE_OPT_END,
};

// What the option callback fills while fuse_opt_parse() walks the arguments.
struct ParseState {
  MountOptions* opts;
  std::string* error;
  int positionals = 0;
  bool size_set = false;
  bool mem_limit_set = false;
  bool overflow_limit_set = false;
  bool nr_inodes_set = false;
  bool have_fsname = false;
  bool have_subtype = false;
  bool have_default_permissions = false;
};

// "name=value" -> value.
std::string_view ValueOf(const char* arg) {
  const char* eq = std::strchr(arg, '=');
  return eq == nullptr ? std::string_view() : std::string_view(eq + 1);
}

bool SizeOption(ParseState* st, const char* arg, uint64_t* out) {
  std::string_view value = ValueOf(arg);
  std::optional<uint64_t> v = ParseSize(value);
  std::string_view name(arg, std::strchr(arg, '=') - arg);
  if (!v) {
    *st->error = "invalid size for option " + std::string(name) + ": '" + std::string(value) +
                 "' (expected a byte count with an optional K, M, G or T suffix)";
    return false;
  }
  *out = *v;
  return true;
}

bool IntOption(ParseState* st, const char* arg, long min, long max, long* out) {
  std::string_view value = ValueOf(arg);
  std::string_view name(arg, std::strchr(arg, '=') - arg);
  long v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size() || v < min ||
      v > max) {
    *st->error = "invalid value for option " + std::string(name) + ": '" + std::string(value) +
                 "' (expected an integer from " + std::to_string(min) + " to " +
                 std::to_string(max) + ")";
    return false;
  }
  *out = v;
  return true;
}

// fuse_opt callback: 0 = consumed, 1 = keep for libfuse, -1 = error (message in st->error).
int ProcessArg(void* data, const char* arg, int key, struct fuse_args* /*outargs*/) {
  auto* st = static_cast<ParseState*>(data);
  MountOptions* o = st->opts;
  switch (key) {
    case FUSE_OPT_KEY_NONOPT:
      if (++st->positionals > 2) {
        *st->error = std::string("too many arguments: '") + arg + "' (try --help)";
        return -1;
      }
      o->mountpoint = arg;  // SOURCE MOUNTPOINT: the last one wins, SOURCE is ignored.
      return 0;
    case FUSE_OPT_KEY_OPT:
      if (arg[0] == '-') {
        *st->error = std::string("unknown option '") + arg + "' (try --help)";
        return -1;
      }
      return 1;  // A -o option for libfuse; fuse_session_new() rejects unknown ones.
    case kKeyHelp:
      o->show_help = true;
      return 0;
    case kKeyVersion:
      o->show_version = true;
      return 0;
    case kKeyForeground:
      o->foreground = true;
      return 0;
    case kKeyDebug:
      o->debug = true;
      o->foreground = true;
      return 1;
    case kKeySingle:
      o->single_thread = true;
      return 0;
    case kKeySize: {
      uint64_t v = 0;
      if (!SizeOption(st, arg, &v)) return -1;
      if (v < kPageSize) {
        *st->error = "invalid size for option size: '" + std::string(ValueOf(arg)) +
                     "' (must be at least 4096 bytes)";
        return -1;
      }
      if (v > (uint64_t{1} << 52)) {
        *st->error = "invalid size for option size: '" + std::string(ValueOf(arg)) +
                     "' (must be at most 4P)";
        return -1;
      }
      o->size = (v + kPageSize - 1) / kPageSize * kPageSize;
      st->size_set = true;
      return 0;
    }
    case kKeyMemLimit: {
      uint64_t v = 0;
      if (!SizeOption(st, arg, &v)) return -1;
      if (v < kPageSize) {
        *st->error = "invalid size for option mem_limit: '" + std::string(ValueOf(arg)) +
                     "' (must be at least 4096 bytes)";
        return -1;
      }
      o->mem_limit = v;
      st->mem_limit_set = true;
      return 0;
    }
    case kKeyOverflowLimit: {
      if (!SizeOption(st, arg, &o->overflow_limit)) return -1;
      if (o->overflow_limit < kPageSize) {  // 0 would mean "unlimited" to the overflow store.
        *st->error = "invalid size for option overflow_limit: '" + std::string(ValueOf(arg)) +
                     "' (must be at least 4096 bytes)";
        return -1;
      }
      st->overflow_limit_set = true;
      return 0;
    }
    case kKeyOverflowDir:
      o->overflow_dir = std::string(ValueOf(arg));
      if (o->overflow_dir.empty()) {
        *st->error = "invalid value for option overflow_dir: empty path";
        return -1;
      }
      return 0;
    case kKeyZstdLevel: {
      long v = 0;
      if (!IntOption(st, arg, ZSTD_minCLevel(), ZSTD_maxCLevel(), &v)) return -1;
      o->zstd_level = static_cast<int>(v);
      return 0;
    }
    case kKeyZstdFast: {
      if (std::string_view(ValueOf(arg)) == "off") {
        o->zstd_fast_level.reset();
        return 0;
      }
      long v = 0;
      if (!IntOption(st, arg, ZSTD_minCLevel(), ZSTD_maxCLevel(), &v)) return -1;
      o->zstd_fast_level = static_cast<int>(v);
      return 0;
    }
    case kKeyMaxThreads: {
      long v = 0;
      if (!IntOption(st, arg, 1, 1024, &v)) return -1;
      o->max_threads = static_cast<unsigned>(v);
      return 0;
    }
    case kKeyNrInodes: {
      std::optional<uint64_t> v = ParseSize(ValueOf(arg));
      if (!v) {
        *st->error = "invalid value for option nr_inodes: '" + std::string(ValueOf(arg)) +
                     "' (expected a count with an optional K, M or G suffix; 0 = unlimited)";
        return -1;
      }
      o->nr_inodes = *v;
      st->nr_inodes_set = true;
      return 0;
    }
    case kKeyCloneFd:
      o->clone_fd = true;
      return 0;
    case kKeyAllowOther:
      o->allow_other = true;
      return 1;
    case kKeyFsname:
      st->have_fsname = true;
      return 1;
    case kKeySubtype:
      st->have_subtype = true;
      return 1;
    case kKeyDefaultPermissions:
      st->have_default_permissions = true;
      return 1;
    case kKeyNeedsValue:
      *st->error = std::string("option ") + arg + " needs a value (" + arg + "=...)";
      return -1;
  }
  return 1;
}

std::string HumanSize(uint64_t bytes) {
  static const char* kUnits[] = {"", "K", "M", "G", "T"};
  int u = 0;
  while (u < 4 && bytes >= 1024 && bytes % 1024 == 0) {
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

}  // namespace

std::optional<uint64_t> ParseSize(std::string_view text) {
  if (text.empty()) return std::nullopt;
  unsigned shift = 0;
  switch (text.back()) {
    case 'k':
    case 'K':
      shift = 10;
      break;
    case 'm':
    case 'M':
      shift = 20;
      break;
    case 'g':
    case 'G':
      shift = 30;
      break;
    case 't':
    case 'T':
      shift = 40;
      break;
    default:
      break;
  }
  if (shift != 0) text.remove_suffix(1);
  if (text.empty() || text.front() < '0' || text.front() > '9') return std::nullopt;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  if (shift != 0 && v > (std::numeric_limits<uint64_t>::max() >> shift)) return std::nullopt;
  return v << shift;
}

uint64_t PhysicalMemory() {
  long pages = sysconf(_SC_PHYS_PAGES);
  long page_size = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return uint64_t{1} << 30;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size);
}

bool ParseCommandLine(FuseArgs* args, MountOptions* opts, std::string* error) {
  ParseState st{opts, error};
  opts->zstd_level = PageStoreOptions{}.zstd_level;
  opts->zstd_fast_level = PageStoreOptions{}.zstd_fast_level;
  if (fuse_opt_parse(args->get(), &st, kSpecs, ProcessArg) != 0) {
    if (error->empty()) *error = "invalid command line (try --help)";
    return false;
  }
  if (opts->show_help || opts->show_version) return true;
  if (opts->max_threads == 0) opts->max_threads = DefaultMaxThreads();
  if (!st.size_set) opts->size = DefaultSize();
  if (!st.mem_limit_set) opts->mem_limit = DefaultMemLimit();
  if (!st.overflow_limit_set) opts->overflow_limit = opts->size;
  if (!st.nr_inodes_set) opts->nr_inodes = DefaultNrInodes();

  // Our defaults go first so that the user's own -o fsname=/subtype= win.
  std::string defaults;
  if (!st.have_fsname) defaults += "fsname=zbudfs,";
  if (!st.have_subtype) defaults += "subtype=zbudfs,";
  // The kernel checks permissions exactly as for tmpfs (generic_permission on cached
  // attributes); this is what allow_other needs and what a single-user mount wants too.
  if (!st.have_default_permissions) defaults += "default_permissions,";
  defaults.pop_back();
  if (fuse_opt_insert_arg(args->get(), 1, "-o") != 0 ||
      fuse_opt_insert_arg(args->get(), 2, defaults.c_str()) != 0) {
    *error = "out of memory";
    return false;
  }
  return true;
}

bool ValidateOptions(const MountOptions& opts, std::string* error) {
  if (opts.mountpoint.empty()) {
    *error = "no mountpoint given (try --help)";
    return false;
  }
  // overflow_dir is checked by OverflowStore::Open (store/overflow_store.h), in main.cc.
  return true;
}

std::string HelpText(const char* prog) {
  std::string p = prog;
  std::string zlevel = std::to_string(PageStoreOptions{}.zstd_level);
  return "usage: " + p + " [-f] [-d] [-s] [-o OPTION[,OPTION...]] MOUNTPOINT\n" + "       " + p +
         " SOURCE MOUNTPOINT -o OPTIONS   (mount.fuse3 form; SOURCE ignored)\n" + "       " + p +
         " --help | --version\n" +
         "\n"
         "zbudfs: a compressed RAM disk. File data lives as zstd-compressed 4 KiB pages in\n"
         "a zbud pool in this process's memory.\n"
         "\n"
         "general options:\n"
         "    -f                     stay in the foreground\n"
         "    -d, -o debug           FUSE debug output (implies -f)\n"
         "    -s                     single-threaded\n"
         "    -h, --help             this text\n"
         "    -V, --version          versions\n"
         "\n"
         "zbudfs options (sizes: bytes or K/M/G/T suffix, powers of 1024):\n"
         "    -o size=SIZE           logical capacity, what df shows; writes past it get\n"
         "                           ENOSPC (default: half of RAM, like tmpfs: " +
         HumanSize(DefaultSize()) +
         ")\n"
         "    -o mem_limit=SIZE      memory the compressed store may hold; above it, reclaim\n"
         "                           moves the coldest pages to the overflow directory\n"
         "                           (default: a quarter of RAM: " +
         HumanSize(DefaultMemLimit()) +
         "; data compresses about 2x,\n"
         "                           so a full default-sized mount fits in it, and the\n"
         "                           overflow takes the rest: the default never makes the\n"
         "                           machine swap)\n"
         "    -o overflow_dir=DIR    where reclaimed pages go (must exist and be writable;\n"
         "                           default: a private directory under $TMPDIR or /var/tmp)\n"
         "    -o overflow_limit=SIZE most bytes the overflow may hold (default: size)\n"
         "    -o zstd_level=N        zstd level, negative allowed (default: " +
         zlevel + ", range " + std::to_string(ZSTD_minCLevel()) + ".." +
         std::to_string(ZSTD_maxCLevel()) +
         ")\n"
         "    -o zstd_fast=N|off     level tried first: a page that already fits half a zbud\n"
         "                           page at it keeps that result, others are compressed\n"
         "                           again at zstd_level (default: " +
         std::to_string(PageStoreOptions{}.zstd_fast_level) +
         "; off or N >= zstd_level:\n"
         "                           one pass at zstd_level)\n"
         "    -o nr_inodes=N         most inodes (files, directories, symlinks; each extra\n"
         "                           hard link counts as one, as on tmpfs); creating more\n"
         "                           gets ENOSPC; 0 = unlimited\n"
         "                           (default: half of RAM's pages, like tmpfs: " +
         std::to_string(DefaultNrInodes()) +
         ")\n"
         "    -o max_threads=N       FUSE worker threads (default: twice the cores, 4..16: " +
         std::to_string(DefaultMaxThreads()) +
         ")\n"
         "    -o clone_fd            one /dev/fuse descriptor per worker thread (libfuse's\n"
         "                           loop: a getxattr round trip per write(2))\n"
         "\n"
         "zbudfs always mounts with default_permissions: the kernel checks permissions as\n"
         "for tmpfs, which is also what allow_other needs. Statistics: `zbudfsctl stats\n"
         "MOUNTPOINT` or the xattr user.zbudfs.stats of the mount's root directory.\n"
         "\n"
         "standard FUSE options (allow_other, fsname=, ro, ...):\n";
}

}  // namespace zbudfs

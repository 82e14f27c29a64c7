// Command-line parsing for the daemon. No locks (runs before any thread exists).
#include "fs/options.h"

#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <limits>
#include <type_traits>
#include <variant>
#include <vector>

#include "store/cluster.h"
#include "store/page_store.h"

namespace zbudfs {
namespace {

// How an option's value is read and checked; each kind's checks and messages exist once.
enum class Kind {
  kFlag,          // No value: sets its bool.
  kPassThrough,   // Only noted (for zbudfs's FUSE defaults) and left for libfuse.
  kSize,          // Bytes with a K/M/G/T suffix, at least min_bytes, at most max_bytes.
  kCount,         // A count with a K/M/G suffix; 0 = unlimited.
  kInteger,       // A decimal integer from min to max.
  kIntegerOrOff,  // A kInteger, or "off" for none.
  kPath,          // A non-empty path.
};

// The MountOptions member an option writes; its type must fit the option's kind.
using Field = std::variant<std::monostate, bool MountOptions::*, uint64_t MountOptions::*,
                           int MountOptions::*, unsigned MountOptions::*,
                           std::optional<int> MountOptions::*, std::string MountOptions::*>;

enum class Section { kHidden, kGeneral, kZbudfs };  // Where --help shows the option.

// One option: how it is spelled, what it writes, its limits and its --help text.
struct OptionSpec {
  std::vector<const char*> spellings{};  // fuse_opt templates: "-f", "clone_fd", "size=".
  Kind kind = Kind::kFlag;
  Field field{};
  bool to_libfuse = false;  // Also left in the arguments for fuse_session_new().
  uint64_t min_bytes = 0;   // kSize.
  uint64_t max_bytes = std::numeric_limits<uint64_t>::max();
  bool round_up_to_pages = false;  // kSize.
  long min = 0;                    // kInteger, kIntegerOrOff.
  long max = 0;
  Section section = Section::kHidden;
  bool remountable = false;  // May change on a running mount (ParseRemount).
  std::string label{};       // --help's left column ("-o size=SIZE").
  std::string help{};        // --help's right column; lines separated by '\n'.
};

// fuse_opt keys: an index into Options(), or this plus the index for "name" without a value.
constexpr int kNeedsValueKey = 1 << 16;

std::string HumanSize(uint64_t bytes);
std::string ApproxSize(uint64_t bytes);
uint64_t DefaultSize();
uint64_t DefaultMemLimit();
uint64_t DefaultNrInodes();
unsigned DefaultMaxThreads();

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

std::vector<OptionSpec> TuningOptions() {
  using M = MountOptions;
  constexpr Section kZbudfs = Section::kZbudfs;
  const long zmin = ZSTD_minCLevel(), zmax = ZSTD_maxCLevel();
  const PageStoreOptions store;
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
  };
}

// Every option zbudfs knows, in --help's order.
const std::vector<OptionSpec>& Options() {
  static const std::vector<OptionSpec>* const options = [] {
    auto* all = new std::vector<OptionSpec>(GeneralOptions());
    for (auto part : {SizeOptions(), TuningOptions()}) {
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

// The fuse_opt templates of Options(): each spelling, and each "name=" also as a bare
// "name", which is an error ("needs a value").
const std::vector<fuse_opt>& FuseSpecs() {
  static const std::vector<fuse_opt>* const specs = [] {
    auto* out = new std::vector<fuse_opt>;
    const std::vector<OptionSpec>& options = Options();
    for (size_t i = 0; i < options.size(); ++i) {
      for (const char* s : options[i].spellings) {
        out->push_back(fuse_opt FUSE_OPT_KEY(s, static_cast<int>(i)));
        const size_t len = std::strlen(s);
        if (options[i].kind == Kind::kPassThrough || s[len - 1] != '=') continue;
        static std::deque<std::string> bare_names;  // Outlive the templates pointing in.
        const char* bare = bare_names.emplace_back(s, len - 1).c_str();
        out->push_back(fuse_opt FUSE_OPT_KEY(bare, kNeedsValueKey + static_cast<int>(i)));
      }
    }
    out->push_back(fuse_opt FUSE_OPT_END);
    return out;
  }();
  return *specs;
}

// What the option callback fills while fuse_opt_parse() walks the arguments.
struct ParseState {
  MountOptions* opts;
  std::string* error;
  int positionals = 0;
  std::vector<bool> seen = std::vector<bool>(Options().size());  // By index in Options().
};

bool Seen(const ParseState& st, std::string_view spelling) {
  const size_t i = IndexOf(spelling);
  return i < st.seen.size() && st.seen[i];
}

// "name=value" -> "name".
std::string NameOf(const OptionSpec& spec) {
  std::string name = spec.spellings.front();
  if (name.back() == '=') name.pop_back();
  return name;
}

bool SizeValue(const OptionSpec& spec, std::string_view value, MountOptions* o,
               std::string* error) {
  const std::string head =
      "invalid size for option " + NameOf(spec) + ": '" + std::string(value) + "' ";
  std::optional<uint64_t> v = ParseSize(value);
  if (!v) {
    *error = head + "(expected a byte count with an optional K, M, G or T suffix)";
    return false;
  }
  if (*v < spec.min_bytes) {
    *error = head + "(must be at least " + std::to_string(spec.min_bytes) + " bytes)";
    return false;
  }
  if (*v > spec.max_bytes) {
    *error = head + "(must be at most " + HumanSize(spec.max_bytes) + ")";
    return false;
  }
  if (spec.round_up_to_pages) *v = (*v + kPageSize - 1) / kPageSize * kPageSize;
  o->*std::get<uint64_t MountOptions::*>(spec.field) = *v;
  return true;
}

bool CountValue(const OptionSpec& spec, std::string_view value, MountOptions* o,
                std::string* error) {
  std::optional<uint64_t> v = ParseSize(value);
  if (!v) {
    *error = "invalid value for option " + NameOf(spec) + ": '" + std::string(value) +
             "' (expected a count with an optional K, M or G suffix; 0 = unlimited)";
    return false;
  }
  o->*std::get<uint64_t MountOptions::*>(spec.field) = *v;
  return true;
}

bool IntegerValue(const OptionSpec& spec, std::string_view value, MountOptions* o,
                  std::string* error) {
  if (spec.kind == Kind::kIntegerOrOff && value == "off") {
    (o->*std::get<std::optional<int> MountOptions::*>(spec.field)).reset();
    return true;
  }
  long v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size() || v < spec.min ||
      v > spec.max) {
    *error = "invalid value for option " + NameOf(spec) + ": '" + std::string(value) +
             "' (expected an integer from " + std::to_string(spec.min) + " to " +
             std::to_string(spec.max) + (spec.kind == Kind::kIntegerOrOff ? ", or off)" : ")");
    return false;
  }
  std::visit(
      [&](auto member) {
        using T = decltype(member);
        if constexpr (std::is_same_v<T, int MountOptions::*> ||
                      std::is_same_v<T, std::optional<int> MountOptions::*>) {
          o->*member = static_cast<int>(v);
        } else if constexpr (std::is_same_v<T, unsigned MountOptions::*>) {
          o->*member = static_cast<unsigned>(v);
        }
      },
      spec.field);
  return true;
}

// Checks value against spec and writes it into *o; false with *error set if it does not fit.
bool ApplyOption(const OptionSpec& spec, std::string_view value, MountOptions* o,
                 std::string* error) {
  switch (spec.kind) {
    case Kind::kFlag:
      o->*std::get<bool MountOptions::*>(spec.field) = true;
      return true;
    case Kind::kPassThrough:
      return true;
    case Kind::kSize:
      return SizeValue(spec, value, o, error);
    case Kind::kCount:
      return CountValue(spec, value, o, error);
    case Kind::kInteger:
    case Kind::kIntegerOrOff:
      return IntegerValue(spec, value, o, error);
    case Kind::kPath:
      if (value.empty()) {
        *error = "invalid value for option " + NameOf(spec) + ": empty path";
        return false;
      }
      o->*std::get<std::string MountOptions::*>(spec.field) = std::string(value);
      return true;
  }
  return true;
}

// An argument no template matched: a positional or an option unknown to zbudfs.
int OtherArg(ParseState* st, const char* arg, int key) {
  if (key == FUSE_OPT_KEY_NONOPT) {
    if (++st->positionals > 2) {
      *st->error = std::string("too many arguments: '") + arg + "' (try --help)";
      return -1;
    }
    // SOURCE MOUNTPOINT: the first becomes the source /proc/mounts shows (fsname=).
    if (st->positionals == 2) st->opts->source = st->opts->mountpoint;
    st->opts->mountpoint = arg;
    return 0;
  }
  if (arg[0] == '-') {
    *st->error = std::string("unknown option '") + arg + "' (try --help)";
    return -1;
  }
  st->opts->other_args.emplace_back(arg);  // Read by a remount (ro, rw, nosuid, ...).
  return 1;  // A -o option for libfuse; fuse_session_new() rejects unknown ones.
}

// fuse_opt callback: 0 = consumed, 1 = keep for libfuse, -1 = error (message in st->error).
int ProcessArg(void* data, const char* arg, int key, struct fuse_args* /*outargs*/) {
  auto* st = static_cast<ParseState*>(data);
  if (key == FUSE_OPT_KEY_NONOPT || key == FUSE_OPT_KEY_OPT) return OtherArg(st, arg, key);
  if (key >= kNeedsValueKey) {
    *st->error = std::string("option ") + arg + " needs a value (" + arg + "=...)";
    return -1;
  }
  const OptionSpec& spec = Options()[key];
  const char* eq = std::strchr(arg, '=');
  const std::string_view value = eq == nullptr ? std::string_view() : std::string_view(eq + 1);
  if (!ApplyOption(spec, value, st->opts, st->error)) return -1;
  st->seen[key] = true;
  if (spec.section == Section::kZbudfs && spec.field != Field(&MountOptions::remount)) {
    st->opts->zbudfs_args.emplace_back(arg);
  }
  return spec.to_libfuse ? 1 : 0;
}

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

std::string HumanSize(uint64_t bytes) {
  static const char* kUnits[] = {"", "K", "M", "G", "T", "P"};
  int u = 0;
  while (u < 5 && bytes >= 1024 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++u;
  }
  return std::to_string(bytes) + kUnits[u];
}

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

// A value inside a -o list: libfuse splits at commas and takes a backslash as an escape.
std::string EscapeOption(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == ',' || c == '\\') out += '\\';
    out += c;
  }
  return out;
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
  if (fuse_opt_parse(args->get(), &st, FuseSpecs().data(), ProcessArg) != 0) {
    if (error->empty()) *error = "invalid command line (try --help)";
    return false;
  }
  if (opts->debug) opts->foreground = true;
  if (opts->show_help || opts->show_version) return true;
  if (opts->max_threads == 0) opts->max_threads = DefaultMaxThreads();
  if (!Seen(st, "size=")) opts->size = DefaultSize();
  if (!Seen(st, "mem_limit=")) opts->mem_limit = DefaultMemLimit();
  if (!Seen(st, "overflow_limit=")) opts->overflow_limit = opts->size;
  if (!Seen(st, "staging=")) opts->staging = DefaultStaging(opts->mem_limit);
  if (!Seen(st, "nr_inodes=")) opts->nr_inodes = DefaultNrInodes();

  // Our defaults go first so that the user's own -o fsname=/subtype= win.
  std::string defaults;
  // The source of "SOURCE MOUNTPOINT" (mount -t fuse.zbudfs SOURCE DIR) is what
  // /proc/mounts and df show, as for other file systems; "zbudfs" when none was given.
  if (!Seen(st, "fsname=")) {
    defaults += "fsname=" + EscapeOption(opts->source.empty() ? "zbudfs" : opts->source) + ",";
  }
  if (!Seen(st, "subtype=")) defaults += "subtype=zbudfs,";
  // The kernel checks permissions exactly as for tmpfs (generic_permission on cached
  // attributes); this is what allow_other needs and what a single-user mount wants too.
  if (!Seen(st, "default_permissions")) defaults += "default_permissions,";
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
  // Staged pages cannot be evicted (only compressed): most of memory must stay evictable.
  // (A remount's values are checked against the running mount's, by ParseRemount.)
  if (!opts.remount && opts.staging > opts.mem_limit / 2) {
    *error = "invalid value for option -o staging=SIZE: " + std::to_string(opts.staging) +
             " bytes is more than half of mem_limit (" + std::to_string(opts.mem_limit) + " bytes)";
    return false;
  }
  const uint64_t c = opts.cluster;
  if (c != 0 && (c < 2 * kPageSize || (c & (c - 1)) != 0)) {
    *error = "invalid value for option -o cluster=SIZE: " + std::to_string(c) +
             " bytes (expected 8K, 16K, 32K or 64K, or 0 for off)";
    return false;
  }
  // overflow_dir is checked by OverflowStore::Open (store/overflow_store.h), in main.cc.
  return true;
}

namespace {

// The zbudfs option of item ("size=2G", "clone_fd"), or nullptr for one that is not ours.
const OptionSpec* ZbudfsOption(std::string_view item, std::string_view* value) {
  const size_t eq = item.find('=');
  const std::string spelling(eq == std::string_view::npos ? item : item.substr(0, eq + 1));
  size_t i = IndexOf(spelling);
  if (i == Options().size() && eq == std::string_view::npos) i = IndexOf(spelling + "=");
  if (i == Options().size() || Options()[i].section != Section::kZbudfs) return nullptr;
  *value = eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
  return &Options()[i];
}

// The options a running mount keeps: a new value needs a new mount.
bool Unchanged(const MountOptions& a, const MountOptions& b, std::string* name) {
  if (a.overflow_dir != b.overflow_dir) *name = "overflow_dir";
  if (a.staging != b.staging) *name = "staging";
  if (a.cluster != b.cluster) *name = "cluster";
  if (a.pack_after != b.pack_after) *name = "pack_after";
  if (a.pack_level != b.pack_level) *name = "pack_level";
  if (a.max_threads != b.max_threads) *name = "max_threads";
  if (a.clone_fd != b.clone_fd) *name = "clone_fd";
  return name->empty();
}

}  // namespace

bool ParseRemount(std::string_view list, const MountOptions& current, MountOptions* next,
                  std::string* error) {
  *next = current;
  bool overflow_limit_given = false;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    std::string_view value;
    const OptionSpec* spec = ZbudfsOption(item, &value);
    if (spec == nullptr) continue;  // ro, nosuid, user_id=0, ...: the kernel's.
    if (spec->kind != Kind::kFlag && item.find('=') == std::string_view::npos) {
      *error = "option " + std::string(item) + " needs a value (" + std::string(item) + "=...)";
      return false;
    }
    if (!ApplyOption(*spec, value, next, error)) return false;
    overflow_limit_given |= spec->field == Field(&MountOptions::overflow_limit);
  }
  next->remount = false;
  // An overflow_limit that was size's (its default) follows a new size.
  if (!overflow_limit_given && current.overflow_limit == current.size) {
    next->overflow_limit = next->size;
  }
  if (std::string name; !Unchanged(current, *next, &name)) {
    *error = "option " + name + " cannot change on a mounted zbudfs (unmount and mount again)";
    return false;
  }
  if (next->staging > next->mem_limit / 2) {
    *error = "invalid value for option mem_limit: " + std::to_string(next->mem_limit) +
             " bytes is less than twice staging (" + std::to_string(next->staging) + " bytes)";
    return false;
  }
  return true;
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

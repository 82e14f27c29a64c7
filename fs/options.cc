// Parsing the command line and a remount's option list against the table of
// fs/option_table.h: the fuse_opt templates, each kind's value checks and one-line messages,
// the defaults filled in after the parse, and the checks of ValidateOptions and ParseRemount
// (see options.h). No locks (runs before any thread exists).
#include "fs/options.h"

#include <charconv>
#include <cstring>
#include <deque>
#include <limits>
#include <type_traits>
#include <variant>
#include <vector>

#include "fs/option_table.h"
#include "store/page_store.h"

namespace zbudfs {
namespace {

using options_internal::DefaultMaxThreads;
using options_internal::DefaultMemLimit;
using options_internal::DefaultNrInodes;
using options_internal::DefaultSize;
using options_internal::DefaultStaging;
using options_internal::Field;
using options_internal::HumanSize;
using options_internal::IndexOf;
using options_internal::Kind;
using options_internal::Options;
using options_internal::OptionSpec;
using options_internal::Section;

// fuse_opt keys: an index into Options(), or this plus the index for "name" without a value.
constexpr int kNeedsValueKey = 1 << 16;

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

// The options a running mount keeps (every one the table does not mark remountable): a new
// value needs a new mount.
bool Unchanged(const MountOptions& a, const MountOptions& b, std::string* name) {
  for (const OptionSpec& spec : Options()) {
    if (spec.remountable) continue;
    const bool same = std::visit(
        [&](auto field) {
          if constexpr (std::is_same_v<decltype(field), std::monostate>) {
            return true;
          } else {
            return a.*field == b.*field;
          }
        },
        spec.field);
    if (!same) {
      *name = NameOf(spec);
      return false;
    }
  }
  return true;
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
             " bytes is below " + std::to_string(2 * next->staging) + ", twice staging (" +
             std::to_string(next->staging) +
             " bytes, fixed at mount); the staging area may take at most half of mem_limit";
    return false;
  }
  return true;
}

}  // namespace zbudfs

// zbudfsctl: the control tool.
//   stats MOUNTPOINT [--json | -h | --bytes]: the statistics the daemon publishes as the root's
//     xattr user.zbudfs.stats: "name value" lines (the contract), one JSON object, or a
//     summary people read (-h: human units, --bytes: exact byte counts).
//   du [-h | --bytes] PATH...: what files cost (each regular file's user.zbudfs.usage,
//     summed over a directory tree as du does, each inode once).
//   leftovers [--remove] [DIR]: overflow directories of zbudfs mounts that died.
//   pack MOUNTPOINT: packs every file's cold pages into clusters now (the root's
//     user.zbudfs.pack), then prints the statistics' density lines.
// Single-threaded; no locks.
//
// Exit status: 0 success, 1 runtime failure (not a zbudfs mount, I/O error), 2 usage error.
#include <ftw.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/overflow_store.h"

namespace {

constexpr char kStatsXattr[] = "user.zbudfs.stats";
constexpr char kOptionsXattr[] = "user.zbudfs.options";
constexpr char kUsageXattr[] = "user.zbudfs.usage";
constexpr char kPackXattr[] = "user.zbudfs.pack";

void Usage(FILE* out) {
  std::fputs(
      "usage: zbudfsctl stats MOUNTPOINT [--json | -h | --bytes]\n"
      "       zbudfsctl du [-h | --bytes] PATH...\n"
      "       zbudfsctl leftovers [--remove] [DIR]\n"
      "       zbudfsctl pack MOUNTPOINT\n"
      "       zbudfsctl --help | --version\n"
      "\n"
      "commands:\n"
      "    stats MOUNTPOINT   the store statistics of a zbudfs mount, one \"name value\"\n"
      "                       pair a line; --json prints one JSON object; -h (or\n"
      "                       --human) a summary in human units (compression ratio,\n"
      "                       density, memory of mem_limit, overflow and its directory),\n"
      "                       --bytes the same summary in bytes\n"
      "    du PATH...         what files on a zbudfs mount cost: their size, the data\n"
      "                       stored (holes and zero pages excluded), compressed,\n"
      "                       in memory and in the overflow directory, and the ratio;\n"
      "                       a directory counts every file under it once\n"
      "    leftovers [DIR]    default overflow directories of zbudfs mounts that were\n"
      "                       killed (SIGKILL, OOM) and not mounted again, under DIR\n"
      "                       (default: $TMPDIR or /var/tmp); --remove removes them\n"
      "    pack MOUNTPOINT    pack the cold pages of every file into clusters now\n"
      "                       (the daemon does it by itself for files not written for\n"
      "                       pack_after seconds); root or the mount's owner\n"
      "\n"
      "The statistics are the extended attribute user.zbudfs.stats of the mount's root\n"
      "directory, readable by name (not listed) by any user who can see the mountpoint.\n",
      out);
}

using Fields = std::map<std::string, std::string>;

// An xattr's "name value" lines; false (errno set) if it cannot be read.
bool ReadFields(const std::string& path, const char* name, Fields* out, std::string* text) {
  std::vector<char> buf(64 * 1024);
  const ssize_t n = getxattr(path.c_str(), name, buf.data(), buf.size());
  if (n < 0) return false;
  *text = std::string(buf.data(), static_cast<size_t>(n));
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) {
    const size_t sp = line.find(' ');
    if (sp != std::string::npos) (*out)[line.substr(0, sp)] = line.substr(sp + 1);
  }
  return true;
}

uint64_t Num(const Fields& f, const std::string& name) {
  auto it = f.find(name);
  return it == f.end() ? 0 : std::strtoull(it->second.c_str(), nullptr, 10);
}

// 1.5G, as df -h prints (powers of 1024), or the exact count with --bytes.
std::string Size(uint64_t bytes, bool exact) {
  if (exact) return std::to_string(bytes);
  static const char* kUnits[] = {"", "K", "M", "G", "T", "P"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (u < 5 && v >= 1024) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 || v >= 10 ? "%.0f%s" : "%.1f%s", v, kUnits[u]);
  return buf;
}

std::string Ratio(uint64_t a, uint64_t b) {
  if (b == 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", static_cast<double>(a) / static_cast<double>(b));
  return buf;
}

int NotZbudfs(const std::string& path, int err) {
  if (err == ENODATA || err == ENOTSUP) {
    std::fprintf(stderr, "zbudfsctl: %s is not the root of a zbudfs mount\n", path.c_str());
  } else {
    std::fprintf(stderr, "zbudfsctl: %s: %s\n", path.c_str(), std::strerror(err));
  }
  return 1;
}

int PrintJson(const std::string& text) {
  std::istringstream in(text);
  std::string out = "{";
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const size_t sp = line.find(' ');
    const std::string name = line.substr(0, sp);
    const std::string value = sp == std::string::npos ? "" : line.substr(sp + 1);
    if (name.empty() || value.empty() ||
        value.find_first_not_of("0123456789") != std::string::npos) {
      std::fprintf(stderr, "zbudfsctl: malformed statistics line: '%s'\n", line.c_str());
      return 1;
    }
    out += (out.size() > 1 ? ", \"" : "\"") + name + "\": " + value;
  }
  std::fputs((out + "}\n").c_str(), stdout);
  return 0;
}

// The figures people look for first; options come from user.zbudfs.options (absent from
// daemons older than it: those lines are left out).
int PrintSummary(const std::string& mnt, const Fields& s, bool exact) {
  Fields o;
  std::string text;
  const bool have_options = ReadFields(mnt, kOptionsXattr, &o, &text);
  const uint64_t orig = Num(s, "orig_data_size"), compr = Num(s, "compr_data_size");
  const uint64_t mem = Num(s, "mem_used_total"), limit = Num(s, "mem_limit");
  std::printf("zbudfs at %s%s\n", mnt.c_str(),
              have_options ? (" (source " + o["source"] + ")").c_str() : "");
  std::printf("  data stored   %s in %" PRIu64 " pages (%" PRIu64 " zero or same-filled)\n",
              Size(orig, exact).c_str(), orig / 4096, Num(s, "same_pages"));
  std::printf("  compressed    %s, ratio %s (data / compressed)\n", Size(compr, exact).c_str(),
              Ratio(orig, compr).c_str());
  std::printf("  memory        %s of mem_limit %s (%s %%), density %s (data / memory)\n",
              Size(mem, exact).c_str(), Size(limit, exact).c_str(),
              limit ? std::to_string(mem * 100 / limit).c_str() : "-", Ratio(orig, mem).c_str());
  if (s.count("clustered_pages") != 0) {
    std::printf("  clusters      %" PRIu64 " pages packed in %" PRIu64 " clusters (%" PRIu64
                " zbud allocations); %" PRIu64 " pages ever packed by reclaim; %" PRIu64
                " clusters spilled to the overflow directory\n",
                Num(s, "clustered_pages"), Num(s, "clusters"), Num(s, "cluster_allocations"),
                Num(s, "reclaim_packed_pages"), Num(s, "spilled_clusters"));
  }
  std::printf("  overflow      %s in %" PRIu64 " pages",
              Size(Num(s, "overflow_bytes"), exact).c_str(), Num(s, "overflow_pages"));
  if (have_options) {
    std::printf(" of overflow_limit %s, in %s", Size(Num(o, "overflow_limit"), exact).c_str(),
                o["overflow_dir"].c_str());
  }
  std::printf("\n");
  if (struct statvfs st; statvfs(mnt.c_str(), &st) == 0) {
    const uint64_t total = st.f_blocks * st.f_frsize, avail = st.f_bavail * st.f_frsize;
    std::printf("  size          %s used of %s (df)\n", Size(total - avail, exact).c_str(),
                Size(total, exact).c_str());
  }
  return 0;
}

int Stats(const std::string& mnt, const std::string& format) {
  Fields fields;
  std::string text;
  if (!ReadFields(mnt, kStatsXattr, &fields, &text)) return NotZbudfs(mnt, errno);
  if (format == "--json") return PrintJson(text);
  if (format == "-h" || format == "--human") return PrintSummary(mnt, fields, false);
  if (format == "--bytes") return PrintSummary(mnt, fields, true);
  std::fputs(text.c_str(), stdout);
  return 0;
}

int Pack(const std::string& mnt) {
  if (setxattr(mnt.c_str(), kPackXattr, "", 0, 0) != 0) return NotZbudfs(mnt, errno);
  Fields s;
  std::string text;
  if (!ReadFields(mnt, kStatsXattr, &s, &text)) return NotZbudfs(mnt, errno);
  const uint64_t orig = Num(s, "orig_data_size"), mem = Num(s, "mem_used_total");
  std::printf("%" PRIu64 " pages in %" PRIu64 " clusters (%" PRIu64
              " allocations); density %s (data / memory)\n",
              Num(s, "clustered_pages"), Num(s, "clusters"), Num(s, "cluster_allocations"),
              Ratio(orig, mem).c_str());
  return 0;
}

// ---- du
// ------------------------------------------------------------------------------------------

struct Cost {
  uint64_t size = 0, data = 0, stored = 0, compr = 0, overflow = 0;
  int errors = 0;
};
Cost* g_cost = nullptr;                               // nftw's callback has no user pointer.
std::set<std::pair<dev_t, ino_t>>* g_seen = nullptr;  // Hard links count once.

void AddFile(const char* path, const struct stat& st) {
  if (!g_seen->insert({st.st_dev, st.st_ino}).second) return;
  Fields f;
  std::string text;
  if (!ReadFields(path, kUsageXattr, &f, &text)) {
    std::fprintf(
        stderr, "zbudfsctl: %s: %s\n", path,
        errno == ENODATA || errno == ENOTSUP ? "not on a zbudfs mount" : std::strerror(errno));
    ++g_cost->errors;
    return;
  }
  g_cost->size += Num(f, "size");
  g_cost->data += Num(f, "pages") * 4096;
  g_cost->stored += Num(f, "stored_bytes");
  g_cost->compr += Num(f, "compr_bytes");
  g_cost->overflow += Num(f, "overflow_bytes");
}

int Visit(const char* path, const struct stat* st, int type, struct FTW*) {
  if (type == FTW_F && S_ISREG(st->st_mode)) AddFile(path, *st);
  if (type == FTW_DNR || type == FTW_NS) {
    std::fprintf(stderr, "zbudfsctl: cannot read %s\n", path);
    ++g_cost->errors;
  }
  return 0;
}

int Du(const std::vector<std::string>& paths, bool exact) {
  std::printf("%10s %10s %10s %10s %10s %6s  %s\n", "size", "data", "compressed", "memory",
              "overflow", "ratio", "path");
  int ret = 0;
  for (const std::string& p : paths) {
    Cost cost;
    std::set<std::pair<dev_t, ino_t>> seen;
    g_cost = &cost;
    g_seen = &seen;
    if (nftw(p.c_str(), Visit, 64, FTW_PHYS | FTW_MOUNT) != 0) {
      std::fprintf(stderr, "zbudfsctl: %s: %s\n", p.c_str(), std::strerror(errno));
      ret = 1;
      continue;
    }
    if (cost.errors) ret = 1;
    std::printf("%10s %10s %10s %10s %10s %6s  %s\n", Size(cost.size, exact).c_str(),
                Size(cost.data, exact).c_str(), Size(cost.compr, exact).c_str(),
                Size(cost.stored - cost.overflow, exact).c_str(),
                Size(cost.overflow, exact).c_str(), Ratio(cost.data, cost.stored).c_str(),
                p.c_str());
  }
  return ret;
}

// ---- leftovers -------------------------------------------------------------------------------

int Leftovers(const std::string& base, bool remove) {
  const auto found = zbudfs::OverflowStore::FindLeftovers(base);
  int ret = 0;
  for (const auto& l : found) {
    if (!remove) {
      std::printf("%s\t%s\n", Size(l.bytes, false).c_str(), l.dir.c_str());
    } else if (zbudfs::OverflowStore::RemoveLeftover(l.dir)) {
      std::printf("removed %s (%s)\n", l.dir.c_str(), Size(l.bytes, false).c_str());
    } else {
      std::fprintf(stderr, "zbudfsctl: cannot remove %s (in use, or holds other files)\n",
                   l.dir.c_str());
      ret = 1;
    }
  }
  if (found.empty())
    std::fprintf(stderr, "zbudfsctl: no leftover overflow directories in %s\n", base.c_str());
  return ret;
}

// ---- command line ----------------------------------------------------------------------------

int UsageError(const std::string& what) {
  std::fprintf(stderr, "zbudfsctl: %s (try --help)\n", what.c_str());
  return 2;
}

// Splits args into options (from `allowed`) and positionals; false on an unknown option.
bool Split(const std::vector<std::string_view>& args, const std::set<std::string_view>& allowed,
           std::vector<std::string>* opts, std::vector<std::string>* pos, std::string* bad) {
  for (std::string_view a : args) {
    if (a.size() > 1 && a[0] == '-') {
      if (!allowed.count(a)) {
        *bad = std::string(a);
        return false;
      }
      opts->emplace_back(a);
    } else {
      pos->emplace_back(a);
    }
  }
  return true;
}

int Dispatch(std::string_view cmd, const std::vector<std::string_view>& rest) {
  std::vector<std::string> opts, pos;
  std::string bad;
  if (cmd == "stats") {
    if (!Split(rest, {"--json", "-h", "--human", "--bytes"}, &opts, &pos, &bad)) {
      return UsageError("unknown option '" + bad + "'");
    }
    if (opts.size() > 1) return UsageError("--json, -h and --bytes do not go together");
    if (pos.size() != 1)
      return UsageError(pos.empty() ? "stats needs a MOUNTPOINT" : "too many arguments");
    return Stats(pos[0], opts.empty() ? "" : opts[0]);
  }
  if (cmd == "du") {
    if (!Split(rest, {"-h", "--human", "--bytes"}, &opts, &pos, &bad)) {
      return UsageError("unknown option '" + bad + "'");
    }
    if (pos.empty()) return UsageError("du needs a PATH");
    return Du(pos, !opts.empty() && opts.back() == "--bytes");
  }
  if (cmd == "leftovers") {
    if (!Split(rest, {"--remove"}, &opts, &pos, &bad))
      return UsageError("unknown option '" + bad + "'");
    if (pos.size() > 1) return UsageError("too many arguments");
    return Leftovers(pos.empty() ? zbudfs::OverflowStore::DefaultBase() : pos[0], !opts.empty());
  }
  if (cmd == "pack") {
    if (!Split(rest, {}, &opts, &pos, &bad)) return UsageError("unknown option '" + bad + "'");
    if (pos.size() != 1)
      return UsageError(pos.empty() ? "pack needs a MOUNTPOINT" : "too many arguments");
    return Pack(pos[0]);
  }
  return UsageError("unknown command '" + std::string(cmd) + "'");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty()) {
    Usage(stderr);
    return 2;
  }
  if (args[0] == "--help" || args[0] == "-h") {
    Usage(stdout);
    return 0;
  }
  if (args[0] == "--version" || args[0] == "-V") {
    std::printf("zbudfsctl %s\n", ZBUDFS_VERSION);
    return 0;
  }
  return Dispatch(args[0], {args.begin() + 1, args.end()});
}

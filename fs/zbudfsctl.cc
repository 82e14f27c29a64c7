// zbudfsctl: the control tool. `zbudfsctl stats MOUNTPOINT [--json]` reads the statistics
// the daemon publishes as the xattr user.zbudfs.stats of the mount's root directory and
// prints them as "name value" lines or one JSON object. Single-threaded; no locks.
//
// Exit status: 0 success, 1 runtime failure (not a zbudfs mount, I/O error), 2 usage error.
#include <sys/xattr.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr char kStatsXattr[] = "user.zbudfs.stats";

void Usage(FILE* out) {
  std::fputs(
      "usage: zbudfsctl stats MOUNTPOINT [--json]\n"
      "       zbudfsctl --help | --version\n"
      "\n"
      "commands:\n"
      "    stats MOUNTPOINT   print the store statistics of a zbudfs mount, one\n"
      "                       \"name value\" pair a line; --json prints one JSON object\n"
      "\n"
      "The statistics are the extended attribute user.zbudfs.stats of the mount's root\n"
      "directory, readable by any user who can see the mountpoint.\n",
      out);
}

int Stats(const std::string& mountpoint, bool json) {
  std::vector<char> buf(64 * 1024);
  ssize_t n = getxattr(mountpoint.c_str(), kStatsXattr, buf.data(), buf.size());
  if (n < 0) {
    int err = errno;
    if (err == ENODATA || err == ENOTSUP) {
      std::fprintf(stderr, "zbudfsctl: %s is not the root of a zbudfs mount\n", mountpoint.c_str());
    } else {
      std::fprintf(stderr, "zbudfsctl: %s: %s\n", mountpoint.c_str(), std::strerror(err));
    }
    return 1;
  }
  std::string text(buf.data(), static_cast<size_t>(n));
  if (!json) {
    std::fputs(text.c_str(), stdout);
    return 0;
  }
  std::istringstream in(text);
  std::string line;
  std::string out = "{";
  bool first = true;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    size_t sp = line.find(' ');
    std::string name = line.substr(0, sp);
    std::string value = sp == std::string::npos ? "" : line.substr(sp + 1);
    if (name.empty() || value.empty() ||
        value.find_first_not_of("0123456789") != std::string::npos) {
      std::fprintf(stderr, "zbudfsctl: malformed statistics line: '%s'\n", line.c_str());
      return 1;
    }
    out += first ? "" : ", ";
    out += "\"" + name + "\": " + value;
    first = false;
  }
  out += "}\n";
  std::fputs(out.c_str(), stdout);
  return 0;
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
  if (args[0] != "stats") {
    std::fprintf(stderr, "zbudfsctl: unknown command '%s' (try --help)\n",
                 std::string(args[0]).c_str());
    return 2;
  }
  bool json = false;
  std::string mountpoint;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--json") {
      json = true;
    } else if (!args[i].empty() && args[i][0] == '-') {
      std::fprintf(stderr, "zbudfsctl: unknown option '%s' (try --help)\n",
                   std::string(args[i]).c_str());
      return 2;
    } else if (mountpoint.empty()) {
      mountpoint = args[i];
    } else {
      std::fprintf(stderr, "zbudfsctl: too many arguments (try --help)\n");
      return 2;
    }
  }
  if (mountpoint.empty()) {
    std::fprintf(stderr, "zbudfsctl: stats needs a MOUNTPOINT (try --help)\n");
    return 2;
  }
  return Stats(mountpoint, json);
}

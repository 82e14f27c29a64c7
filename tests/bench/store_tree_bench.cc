// Stores a real tree through PageStore and prints what it costs: density (orig_data_size /
// mem_used_total), compression ratio, raw ("huge") pages, and compression speed per CPU second.
//
//   store_tree_bench [--level=N] [--fast=N|off] [--max-mib=N] DIR...
//
// Every regular file under the DIRs (symlinks skipped, path order) is written in 1 MiB calls,
// as the daemon receives them, until --max-mib of data (default 512). Files are read into
// memory first, so the figure is the store's CPU time alone (thread CPU clock).
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "store/page_store.h"

namespace {

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

bool ParseInt(const char* s, int* out) {
  char* end = nullptr;
  const long v = std::strtol(s, &end, 10);
  if (end == s || *end != '\0') return false;
  *out = static_cast<int>(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  zbudfs::PageStoreOptions o;
  o.background_reclaim = false;
  size_t max_bytes = size_t{512} << 20;
  std::vector<fs::path> roots;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    int v = 0;
    if (a.rfind("--level=", 0) == 0 && ParseInt(argv[i] + 8, &v)) {
      o.zstd_level = v;
    } else if (a == "--fast=off") {
      o.zstd_fast_level = 1000;  // Above every level: one pass.
    } else if (a.rfind("--fast=", 0) == 0 && ParseInt(argv[i] + 7, &v)) {
      o.zstd_fast_level = v;
    } else if (a.rfind("--max-mib=", 0) == 0 && ParseInt(argv[i] + 10, &v) && v > 0) {
      max_bytes = static_cast<size_t>(v) << 20;
    } else if (!a.empty() && a[0] != '-') {
      roots.emplace_back(a);
    } else {
      std::fprintf(stderr, "usage: %s [--level=N] [--fast=N|off] [--max-mib=N] DIR...\n", argv[0]);
      return 2;
    }
  }
  if (roots.empty()) {
    std::fprintf(stderr, "usage: %s [--level=N] [--fast=N|off] [--max-mib=N] DIR...\n", argv[0]);
    return 2;
  }

  std::vector<fs::path> paths;
  for (const fs::path& root : roots) {
    std::error_code ec;
    for (fs::recursive_directory_iterator
             it(root, fs::directory_options::skip_permission_denied, ec),
         end;
         !ec && it != end; it.increment(ec)) {
      std::error_code ec2;
      if (!it->is_symlink(ec2) && it->is_regular_file(ec2)) paths.push_back(it->path());
    }
  }
  std::sort(paths.begin(), paths.end());
  std::vector<std::vector<char>> files;
  size_t total = 0;
  for (const fs::path& p : paths) {
    if (total >= max_bytes) break;
    std::ifstream in(p, std::ios::binary);
    std::vector<char> data((std::istreambuf_iterator<char>(in)), {});
    if (data.size() > max_bytes - total) data.resize(max_bytes - total);
    total += data.size();
    files.push_back(std::move(data));
  }

  zbudfs::PageStore store(o);
  const double t0 = ThreadCpuSeconds();
  for (size_t id = 0; id < files.size(); ++id) {
    const std::vector<char>& d = files[id];
    for (size_t off = 0; off < d.size(); off += size_t{1} << 20) {
      const size_t len = std::min(d.size() - off, size_t{1} << 20);
      zbudfs::Status st = store.Write(id + 1, off, d.data() + off, len);
      if (!st.ok()) {
        std::fprintf(stderr, "write failed: %s\n", st.ToString().c_str());
        return 1;
      }
    }
  }
  const double cpu = ThreadCpuSeconds() - t0;
  const zbudfs::StoreStats s = store.Stats();
  const double orig = static_cast<double>(s.orig_data_size);
  std::printf(
      "level %d fast %s: %zu files, %.0f MiB; orig/mem %.3f orig/compr %.3f huge %llu same %llu; "
      "%.0f MiB/s per CPU second\n",
      o.zstd_level,
      o.zstd_fast_level >= o.zstd_level ? "off" : std::to_string(o.zstd_fast_level).c_str(),
      files.size(), static_cast<double>(total) / 1048576.0,
      orig / static_cast<double>(std::max<uint64_t>(s.mem_used_total, 1)),
      orig / static_cast<double>(std::max<uint64_t>(s.compr_data_size, 1)),
      static_cast<unsigned long long>(s.huge_pages), static_cast<unsigned long long>(s.same_pages),
      static_cast<double>(total) / 1048576.0 / cpu);
  return 0;
}

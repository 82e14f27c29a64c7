// Stores a real tree through PageStore and prints what it costs: density (orig_data_size /
// mem_used_total), compression ratio, raw ("huge") pages, and compression speed per CPU second.
//
//   store_tree_bench [--level=N] [--fast=N|off] [--max-mib=N] [--cluster=BYTES] DIR...
//
// Every regular file under the DIRs (symlinks skipped, path order) is written in 1 MiB calls,
// as the daemon receives them, until --max-mib of data (default 512). Files are read into
// memory first, so the figure is the store's CPU time alone (thread CPU clock). Then every
// file is packed into clusters of --cluster bytes (default 16384, the daemon's; 0: off) as
// the packer does once files have gone cold, and the density is printed again; 4 KiB reads
// of every page in random order (one thread) are timed before and after packing. Last, the
// bound no allocator can beat for such clusters: each file's aligned groups compressed as
// one frame at pack_level with nothing else counted (same-filled pages left out, a frame
// larger than its pages counted as the pages).
#include <time.h>
#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
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

using Clock = std::chrono::steady_clock;

// Reads every stored page once, 4 KiB at a time, in a random order; ns per page.
double RandomReadNs(zbudfs::PageStore& store, const std::vector<std::vector<char>>& files) {
  std::vector<std::pair<uint64_t, uint64_t>> pages;
  for (size_t id = 0; id < files.size(); ++id) {
    for (size_t off = 0; off < files[id].size(); off += 4096) pages.emplace_back(id + 1, off);
  }
  std::shuffle(pages.begin(), pages.end(), std::mt19937_64(42));
  char buf[4096];
  const auto t0 = Clock::now();
  for (const auto& [id, off] : pages) (void)store.Read(id, off, buf, sizeof(buf));
  const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
  return ns / static_cast<double>(std::max<size_t>(pages.size(), 1));
}

bool SameFilled(const char* page) {
  uint64_t first;
  std::memcpy(&first, page, 8);
  for (size_t i = 8; i < 4096; i += 8) {
    uint64_t w;
    std::memcpy(&w, page + i, 8);
    if (w != first) return false;
  }
  return true;
}

// orig_data_size / the bytes of every group of `pages` pages as one zstd frame at `level`.
double FrameBound(const std::vector<std::vector<char>>& files, unsigned pages, int level) {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  std::vector<char> group, out(ZSTD_compressBound(pages * size_t{4096}));
  double orig = 0, stored = 0;
  for (const std::vector<char>& d : files) {
    for (size_t g = 0; g < d.size(); g += pages * size_t{4096}) {
      group.clear();
      for (size_t off = g; off < std::min(d.size(), g + pages * size_t{4096}); off += 4096) {
        char page[4096] = {};
        std::memcpy(page, d.data() + off, std::min<size_t>(4096, d.size() - off));
        orig += 4096;
        if (!SameFilled(page)) group.insert(group.end(), page, page + 4096);
      }
      if (group.empty()) continue;
      const size_t n =
          ZSTD_compressCCtx(cctx, out.data(), out.size(), group.data(), group.size(), level);
      stored += static_cast<double>(ZSTD_isError(n) ? group.size() : std::min(n, group.size()));
    }
  }
  ZSTD_freeCCtx(cctx);
  return orig / std::max(stored, 1.0);
}

void PrintDensity(const char* what, const zbudfs::StoreStats& s) {
  std::printf(
      "%s: orig/mem %.3f orig/compr %.3f (mem_used_total %.1f MiB, pool pages %llu, clustered %llu "
      "in %llu"
      " clusters of %llu allocations)\n",
      what,
      static_cast<double>(s.orig_data_size) /
          static_cast<double>(std::max<uint64_t>(s.mem_used_total, 1)),
      static_cast<double>(s.orig_data_size) /
          static_cast<double>(std::max<uint64_t>(s.compr_data_size, 1)),
      static_cast<double>(s.mem_used_total) / 1048576.0,
      static_cast<unsigned long long>(s.pool_pages),
      static_cast<unsigned long long>(s.clustered_pages),
      static_cast<unsigned long long>(s.clusters),
      static_cast<unsigned long long>(s.cluster_allocations));
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  zbudfs::PageStoreOptions o;
  o.background_reclaim = false;
  o.cluster_pages = 4;
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
    } else if (a.rfind("--cluster=", 0) == 0 && ParseInt(argv[i] + 10, &v) && v >= 0) {
      o.cluster_pages = static_cast<unsigned>(v / 4096);
    } else if (!a.empty() && a[0] != '-') {
      roots.emplace_back(a);
    } else {
      std::fprintf(stderr,
                   "usage: %s [--level=N] [--fast=N|off] [--max-mib=N] [--cluster=BYTES] DIR...\n",
                   argv[0]);
      return 2;
    }
  }
  if (roots.empty()) {
    std::fprintf(stderr,
                 "usage: %s [--level=N] [--fast=N|off] [--max-mib=N] [--cluster=BYTES] DIR...\n",
                 argv[0]);
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
  if (o.cluster_pages < 2) return 0;
  PrintDensity("written", s);
  const double before_ns = RandomReadNs(store, files);
  const double p0 = ThreadCpuSeconds();
  const uint64_t packed = store.PackAll();
  const double pack_cpu = ThreadCpuSeconds() - p0;
  PrintDensity("packed", store.Stats());
  const double after_ns = RandomReadNs(store, files);
  std::printf(
      "packing %llu pages took %.2f CPU s (%.0f MiB/s); random 4 KiB reads %.0f ns a "
      "page before, %.0f after (%.2fx)\n",
      static_cast<unsigned long long>(packed), pack_cpu,
      static_cast<double>(packed) * 4096 / 1048576.0 / std::max(pack_cpu, 1e-9), before_ns,
      after_ns, before_ns / std::max(after_ns, 1e-9));
  std::printf("bound: orig / frames of %u pages at level %d, nothing else counted: %.3f\n",
              o.cluster_pages, o.pack_level, FrameBound(files, o.cluster_pages, o.pack_level));
  return 0;
}

// Store-level thread scaling and lock wait (issue 16): PageStore alone, no FUSE.
//
// For each thread count (1, 2, 4, 8, 16 unless --threads=a,b,...), a fresh store; every thread
// writes its own file of --mib MiB (default 32) in 1 MiB writes, then reads it back in 1 MiB
// reads, then does --rand (default 2048) random 4 KiB operations on it (odd ones rewrite a page
// with its own bytes, even ones read a page); --pools=N zbud pools (default 1). Every read is
// compared with what was written: a mismatch aborts. The data is real: C headers from /usr/include
// and shared objects from /usr/lib/x86_64-linux-gnu when present, else this repository's sources
// and this binary's machine code (tests/corpus.h), in 1 MiB pieces taken alternately; thread t
// starts t MiB in.
//
// Prints two tables: throughput per phase (wall clock) with the process's CPU time over all
// three phases, and the time threads waited for each lock class (PageStore::LockWaits) as a
// percentage of threads x wall time of the three phases. Plain executable: Google Benchmark's
// threads share one timing loop, which does not fit phases that must run one after another.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "store/page_store.h"
#include "tests/corpus.h"

namespace zbudfs {
namespace {

constexpr size_t kMiB = size_t{1} << 20;
using Clock = std::chrono::steady_clock;

// Real data, a whole number of MiB: text and binary 1 MiB pieces, alternately.
std::vector<uint8_t> LoadData() {
  auto is_header = [](const std::filesystem::path& p) { return p.extension() == ".h"; };
  auto is_so = [](const std::filesystem::path& p) {
    return p.filename().string().find(".so") != std::string::npos;
  };
  std::vector<uint8_t> text =
      corpus::LoadFiles("/usr/include", true, is_header, 256 << 10, 16 * kMiB);
  if (text.size() < 4 * kMiB) text = corpus::SourceText(64 << 10, 16 * kMiB);
  std::vector<uint8_t> bin =
      corpus::LoadFiles("/usr/lib/x86_64-linux-gnu", false, is_so, 1 * kMiB, 16 * kMiB);
  if (bin.size() < 4 * kMiB) bin = corpus::MachineCode(16 * kMiB);
  const size_t pieces = std::min(text.size(), bin.size()) / kMiB;
  if (pieces == 0) {
    std::fprintf(stderr, "store_scaling_bench: no data\n");
    std::abort();
  }
  std::vector<uint8_t> out;
  for (size_t i = 0; i < pieces; ++i) {
    out.insert(out.end(), text.begin() + i * kMiB, text.begin() + (i + 1) * kMiB);
    out.insert(out.end(), bin.begin() + i * kMiB, bin.begin() + (i + 1) * kMiB);
  }
  return out;
}

struct Config {
  std::vector<int> threads = {1, 2, 4, 8, 16};
  size_t mib = 32;      // Per thread.
  int rand_ops = 2048;  // Per thread.
  unsigned pools = 1;   // PageStoreOptions::zbud_pools (the daemon uses one per core).
};

// What thread t's file holds at [off, off + len): the data from t MiB in, wrapping around.
const uint8_t* Expected(const std::vector<uint8_t>& data, int t, uint64_t off) {
  return data.data() + (t * kMiB + off) % data.size();  // Pieces never straddle the end.
}

void Check(bool ok, const char* what, int t, uint64_t off) {
  if (ok) return;
  std::fprintf(stderr, "store_scaling_bench: %s failed, thread %d, offset %llu\n", what, t,
               static_cast<unsigned long long>(off));
  std::abort();
}

void WritePhase(PageStore& store, const std::vector<uint8_t>& data, int t, size_t mib) {
  for (uint64_t off = 0; off < mib * kMiB; off += kMiB) {
    Check(store.Write(t + 1, off, Expected(data, t, off), kMiB).ok(), "write", t, off);
  }
}

void ReadPhase(PageStore& store, const std::vector<uint8_t>& data, int t, size_t mib) {
  std::vector<uint8_t> buf(kMiB);
  for (uint64_t off = 0; off < mib * kMiB; off += kMiB) {
    Check(store.Read(t + 1, off, buf.data(), kMiB).ok(), "read", t, off);
    Check(std::memcmp(buf.data(), Expected(data, t, off), kMiB) == 0, "compare", t, off);
  }
}

void RandomPhase(PageStore& store, const std::vector<uint8_t>& data, int t, size_t mib, int ops) {
  std::mt19937_64 rng(t + 1);
  std::uniform_int_distribution<uint64_t> pick(0, mib * kMiB / kPageSize - 1);
  std::vector<uint8_t> buf(kPageSize);
  for (int i = 0; i < ops; ++i) {
    const uint64_t off = pick(rng) * kPageSize;
    const uint8_t* want = Expected(data, t, off);
    if (i % 2 == 1) {
      Check(store.Write(t + 1, off, want, kPageSize).ok(), "rewrite", t, off);
    } else {
      Check(store.Read(t + 1, off, buf.data(), kPageSize).ok(), "4k read", t, off);
      Check(std::memcmp(buf.data(), want, kPageSize) == 0, "4k compare", t, off);
    }
  }
}

double CpuSeconds() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

// Runs phase(t) on n threads at once and returns the wall time in seconds.
template <typename Phase>
double RunPhase(int n, Phase&& phase) {
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) threads.emplace_back([&phase, t] { phase(t); });
  for (std::thread& th : threads) th.join();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Row {
  int threads = 0;
  double write_s = 0, read_s = 0, rand_s = 0, cpu_s = 0;
  std::vector<LockWait> waits;
};

Row RunOne(const Config& c, const std::vector<uint8_t>& data, int n) {
  PageStoreOptions o;
  o.zbud_pools = c.pools;
  PageStore store(o);
  Row r;
  r.threads = n;
  const double cpu0 = CpuSeconds();
  r.write_s = RunPhase(n, [&](int t) { WritePhase(store, data, t, c.mib); });
  r.read_s = RunPhase(n, [&](int t) { ReadPhase(store, data, t, c.mib); });
  r.rand_s = RunPhase(n, [&](int t) { RandomPhase(store, data, t, c.mib, c.rand_ops); });
  r.cpu_s = CpuSeconds() - cpu0;
  r.waits = store.LockWaits();
  return r;
}

void PrintTables(const Config& c, const std::vector<Row>& rows) {
  std::printf("%zu MiB per thread in 1 MiB requests; %d random 4 KiB ops per thread\n\n", c.mib,
              c.rand_ops);
  std::printf("| threads | write MiB/s | read MiB/s | rand 4K kops/s | CPU s |\n");
  std::printf("|--------:|------------:|-----------:|---------------:|------:|\n");
  for (const Row& r : rows) {
    const double mib = static_cast<double>(c.mib) * r.threads;
    std::printf("| %7d | %11.0f | %10.0f | %14.1f | %5.2f |\n", r.threads, mib / r.write_s,
                mib / r.read_s, r.threads * c.rand_ops / r.rand_s / 1000, r.cpu_s);
  }
  std::printf("\nLock wait, %% of threads x wall time (waits in parentheses):\n\n");
  std::printf("| threads |");
  for (const LockWait& w : rows.front().waits) std::printf(" %s |", w.name);
  std::printf("\n|--------:|");
  for (size_t i = 0; i < rows.front().waits.size(); ++i) std::printf("---:|");
  std::printf("\n");
  for (const Row& r : rows) {
    const double budget_ns = r.threads * (r.write_s + r.read_s + r.rand_s) * 1e9;
    std::printf("| %7d |", r.threads);
    for (const LockWait& w : r.waits) {
      std::printf(" %.2f (%llu) |", 100.0 * static_cast<double>(w.wait_ns) / budget_ns,
                  static_cast<unsigned long long>(w.waits));
    }
    std::printf("\n");
  }
}

Config ParseArgs(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--mib=", 0) == 0) {
      c.mib = std::stoul(arg.substr(6));
    } else if (arg.rfind("--pools=", 0) == 0) {
      c.pools = static_cast<unsigned>(std::stoul(arg.substr(8)));
    } else if (arg.rfind("--rand=", 0) == 0) {
      c.rand_ops = std::stoi(arg.substr(7));
    } else if (arg.rfind("--threads=", 0) == 0) {
      c.threads.clear();
      for (size_t pos = 10; pos < arg.size();) {
        size_t end = arg.find(',', pos);
        if (end == std::string::npos) end = arg.size();
        c.threads.push_back(std::stoi(arg.substr(pos, end - pos)));
        pos = end + 1;
      }
    } else {
      std::fprintf(stderr, "usage: %s [--mib=N] [--rand=N] [--pools=N] [--threads=1,2,...]\n",
                   argv[0]);
      std::exit(2);
    }
  }
  if (c.mib == 0 || c.threads.empty()) std::exit(2);
  return c;
}

}  // namespace
}  // namespace zbudfs

int main(int argc, char** argv) {
  using namespace zbudfs;  // NOLINT(build/namespaces): a benchmark's main.
  const Config c = ParseArgs(argc, argv);
  const std::vector<uint8_t> data = LoadData();
  std::vector<Row> rows;
  for (int n : c.threads) rows.push_back(RunOne(c, data, n));
  PrintTables(c, rows);
  return 0;
}

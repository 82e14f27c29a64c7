// Reclaim: PageStore over mem_limit pushes pages to the OverflowStore and faults them back.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/filesystem.hpp>
#include <chrono>
#include <cstring>
#include <iostream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "store/overflow_store.h"
#include "store/page_arena.h"
#include "store/page_store.h"

namespace zbudfs {
namespace {
namespace fs = boost::filesystem;
constexpr size_t kPage = 4096;

class TempDir {
 public:
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "zbudfs-reclaim.XXXXXX").string();
    EXPECT_NE(mkdtemp(templ.data()), nullptr);
    path_ = templ;
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Mixed data: a third random (raw pages), a third compressible, a third zeros.
std::vector<uint8_t> MixedData(size_t bytes, uint64_t seed) {
  std::vector<uint8_t> v(bytes);
  std::mt19937_64 rng(seed);
  for (size_t p = 0; p < bytes / kPage; ++p) {
    uint8_t* page = v.data() + p * kPage;
    switch ((p + seed) % 3) {
      case 0:
        for (size_t i = 0; i < kPage; i += 8) {
          uint64_t w = rng();
          std::memcpy(page + i, &w, 8);
        }
        break;
      case 1:
        for (size_t i = 0; i < kPage; ++i) page[i] = "zbudfs compressed page "[(i + p) % 23];
        page[p % kPage] = static_cast<uint8_t>(rng());
        break;
      default:
        break;  // Zeros.
    }
  }
  return v;
}

struct Fixture {
  explicit Fixture(uint64_t mem_limit, uint64_t overflow_limit = 0, bool background = true,
                   OverflowIo* io = nullptr, PageArena* arena = nullptr,
                   StoreErrorReporter report = {}) {
    auto ov = OverflowStore::Open({dir.path(), overflow_limit, io});
    EXPECT_TRUE(ov.ok()) << ov.status().ToString();
    overflow = std::shared_ptr<OverflowStore>(std::move(ov).value());
    PageStoreOptions o;
    o.mem_limit = mem_limit;
    o.overflow = overflow;
    o.background_reclaim = background;
    o.arena = arena;
    o.report_error = std::move(report);
    store = std::make_unique<PageStore>(o);
  }
  TempDir dir;
  std::shared_ptr<OverflowStore> overflow;
  std::unique_ptr<PageStore> store;
};

// What the store reported through PageStoreOptions::report_error.
struct Reports {
  std::mutex mu;
  std::vector<std::pair<StoreErrorKind, std::string>> seen;
  StoreErrorReporter Reporter() {
    return [this](StoreErrorKind kind, const std::string& message) {
      std::lock_guard<std::mutex> lock(mu);
      seen.emplace_back(kind, message);
    };
  }
  size_t Count(StoreErrorKind kind) {
    std::lock_guard<std::mutex> lock(mu);
    return std::count_if(seen.begin(), seen.end(), [&](const auto& r) { return r.first == kind; });
  }
};

// Metadata cannot go to the overflow directory, so charging it pushes file pages there
// instead: memory stays within mem_limit and the data reads back exactly.
TEST(PageStoreReclaimTest, ChargeMetadataPushesPagesToOverflow) {
  constexpr uint64_t kLimit = 64 * kPage;
  Fixture fx(kLimit, 0, /*background=*/false);
  const auto data = MixedData(64 * kPage, 3);
  ASSERT_TRUE(fx.store->Write(1, 0, data.data(), data.size()).ok());
  const uint64_t used = fx.store->MemUsed();
  ASSERT_GE(used, 8 * kPage);
  ASSERT_EQ(fx.store->Stats().overflow_pages, 0u);
  const uint64_t meta = kLimit - used + 8 * kPage;  // 8 pages more than memory has free.
  ASSERT_TRUE(fx.store->ChargeMetadata(static_cast<int64_t>(meta)).ok());
  EXPECT_LE(fx.store->MemUsed(), kLimit);
  StoreStats s = fx.store->Stats();
  EXPECT_GT(s.overflow_pages, 0u);
  EXPECT_EQ(s.metadata_bytes, meta);
  EXPECT_EQ(fx.store->ChargeMetadata(kLimit).code(), ENOSPC) << "more than mem_limit";
  EXPECT_EQ(fx.store->Stats().metadata_bytes, meta);
  std::vector<uint8_t> got(data.size());
  ASSERT_TRUE(fx.store->Read(1, 0, got.data(), got.size()).ok());
  EXPECT_TRUE(got == data);
  fx.store->Remove(1);
  ASSERT_TRUE(fx.store->ChargeMetadata(-static_cast<int64_t>(meta)).ok());
  EXPECT_EQ(fx.store->Stats().mem_used_total, 0u);
}

TEST(PageStoreReclaimTest, MemoryStaysBoundedAndEverythingReadsBack) {
  constexpr uint64_t kLimit = 1 << 20;
  Fixture fx(kLimit);
  const auto data = MixedData(16 << 20, 1);
  uint64_t max_used = 0;
  for (size_t off = 0; off < data.size(); off += 256 * 1024) {
    ASSERT_TRUE(fx.store->Write(1, off, data.data() + off, 256 * 1024).ok());
    max_used = std::max(max_used, fx.store->MemUsed());
  }
  // One writing thread: at most one page over, plus pages of one reclaim in flight.
  EXPECT_LE(max_used, kLimit + 16 * kPage);
  StoreStats s = fx.store->Stats();
  EXPECT_GT(s.overflow_pages, 0u);
  EXPECT_GT(s.written_back_pages, 0u);
  EXPECT_GT(s.overflow_bytes, 0u);
  EXPECT_EQ(s.orig_data_size, data.size());

  std::vector<uint8_t> got(data.size());
  ASSERT_TRUE(fx.store->Read(1, 0, got.data(), got.size()).ok());
  EXPECT_TRUE(got == data);
  EXPECT_GT(fx.store->Stats().faulted_pages, 0u);

  fx.store->Remove(1);
  s = fx.store->Stats();
  EXPECT_EQ(s.overflow_pages, 0u);
  EXPECT_EQ(s.overflow_bytes, 0u);
  EXPECT_EQ(s.mem_used_total, 0u);
}

// Once deletes stop, the background pass hands the arena's wholly free mappings back (RSS
// and address space), and the store keeps working on fresh ones.
TEST(PageStoreReclaimTest, QuietTimeUnmapsTheArenaMappingsOfRemovedFiles) {
  PageArena arena(/*warm_cache_pages=*/0);  // Every freed page goes cold at once.
  Fixture fx(256 << 20, 0, true, nullptr, &arena);
  std::mt19937_64 rng(77);
  std::vector<uint8_t> random(8 * PageArena::kRegionPages * kPage);  // Raw pages: 8 mappings.
  for (size_t i = 0; i < random.size(); i += 8) {
    const uint64_t w = rng();
    std::memcpy(random.data() + i, &w, 8);
  }
  for (PageStore::FileId id = 1; id <= 8; ++id) {
    const size_t part = random.size() / 8;
    ASSERT_TRUE(fx.store->Write(id, 0, random.data() + (id - 1) * part, part).ok());
  }
  ASSERT_EQ(fx.store->Stats().huge_pages, 8 * PageArena::kRegionPages);
  ASSERT_GE(arena.Regions(), 8u);
  for (PageStore::FileId id = 1; id <= 8; ++id) fx.store->Remove(id);
  EXPECT_EQ(arena.PagesInUse(), 0u);
  // The pass runs every 100 ms; allow it 5 s on a loaded machine.
  for (int i = 0; i < 500 && arena.Regions() != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(arena.Regions(), 0u) << "every page was free and cold";
  const std::vector<uint8_t> again(random.begin(), random.begin() + 64 * kPage);
  ASSERT_TRUE(fx.store->Write(9, 0, again.data(), again.size()).ok());
  std::vector<uint8_t> got(again.size());
  ASSERT_TRUE(fx.store->Read(9, 0, got.data(), got.size()).ok());
  EXPECT_TRUE(got == again);
}

TEST(PageStoreReclaimTest, OverwriteAndTruncateFreeOverflowSpace) {
  Fixture fx(1 << 20, 0, /*background=*/false);
  const auto data = MixedData(4 << 20, 2);
  ASSERT_TRUE(fx.store->Write(1, 0, data.data(), data.size()).ok());
  ASSERT_TRUE(fx.store->ReclaimTo(fx.store->Stats().index_bytes).ok());  // All pages.
  StoreStats s = fx.store->Stats();
  EXPECT_EQ(s.mem_used_total, s.index_bytes);
  ASSERT_GT(s.overflow_pages, 0u);
  // Overwrite everything with zeros: every overflow slot is freed.
  std::vector<uint8_t> zeros(data.size());
  ASSERT_TRUE(fx.store->Write(1, 0, zeros.data(), zeros.size()).ok());
  s = fx.store->Stats();
  EXPECT_EQ(s.overflow_pages, 0u);
  EXPECT_EQ(s.overflow_bytes, 0u);
  ASSERT_TRUE(fx.store->Write(1, 0, data.data(), data.size()).ok());
  ASSERT_TRUE(fx.store->ReclaimTo(fx.store->Stats().index_bytes).ok());  // All pages.
  ASSERT_TRUE(fx.store->Truncate(1, 5000).ok());
  s = fx.store->Stats();
  EXPECT_LE(s.overflow_pages, 2u);
  std::vector<uint8_t> got(8192);
  ASSERT_TRUE(fx.store->Read(1, 0, got.data(), got.size()).ok());
  EXPECT_EQ(0, std::memcmp(got.data(), data.data(), 5000));
  for (size_t i = 5000; i < got.size(); ++i) ASSERT_EQ(got[i], 0) << i;
}

TEST(PageStoreReclaimTest, SecondReadBringsPagesBackBelowTheLowWatermark) {
  Fixture fx(8 << 20, 0, /*background=*/false);
  const auto data = MixedData(1 << 20, 3);
  ASSERT_TRUE(fx.store->Write(1, 0, data.data(), data.size()).ok());
  ASSERT_TRUE(fx.store->ReclaimTo(fx.store->Stats().index_bytes).ok());  // All pages.
  const uint64_t out = fx.store->Stats().overflow_pages;
  ASSERT_GT(out, 0u);
  std::vector<uint8_t> got(data.size());
  ASSERT_TRUE(fx.store->Read(1, 0, got.data(), got.size()).ok());
  EXPECT_EQ(fx.store->Stats().overflow_pages, out);  // First read: stays out.
  ASSERT_TRUE(fx.store->Read(1, 0, got.data(), got.size()).ok());
  EXPECT_TRUE(got == data);
  StoreStats s = fx.store->Stats();
  EXPECT_EQ(s.overflow_pages, 0u);  // Second read: back in memory.
  EXPECT_EQ(s.overflow_bytes, 0u);
  EXPECT_GT(s.mem_used_total, 0u);
  ASSERT_TRUE(fx.store->Read(1, 0, got.data(), got.size()).ok());
  EXPECT_TRUE(got == data);
}

TEST(PageStoreReclaimTest, FullOverflowGivesEnospcAndLosesNothing) {
  Fixture fx(256 << 10, 256 << 10);
  const auto data = MixedData(8 << 20, 4);
  size_t written = 0;
  Status st;
  for (; written < data.size(); written += 64 * 1024) {
    st = fx.store->Write(1, written, data.data() + written, 64 * 1024);
    if (!st.ok()) break;
  }
  ASSERT_EQ(st.code(), ENOSPC) << st.ToString();
  ASSERT_GT(written, 0u);
  std::vector<uint8_t> got(written);
  ASSERT_TRUE(fx.store->Read(1, 0, got.data(), got.size()).ok());
  EXPECT_EQ(0, std::memcmp(got.data(), data.data(), written));
  EXPECT_LE(fx.store->Stats().overflow_bytes, 256u << 10);
  // Zero pages need no memory: they still go in.
  std::vector<uint8_t> zeros(64 * 1024);
  EXPECT_TRUE(fx.store->Write(2, 0, zeros.data(), zeros.size()).ok());
  // Freeing space makes writes work again.
  fx.store->Remove(1);
  EXPECT_TRUE(fx.store->Write(3, 0, data.data(), 64 * 1024).ok());
}

// With memory and the overflow directory both full, shrinking a file must still work: its
// partial page at the cut is in the overflow directory (holding no memory), so its new form
// needs memory that cannot be made. Before whole pages were dropped first and the cut page
// admitted past mem_limit, both failed with ENOSPC: no way out of a full store but rm.
TEST(PageStoreReclaimTest, TruncateAndPunchSucceedWhenMemoryAndOverflowAreFull) {
  std::mt19937_64 rng(17);
  std::vector<uint8_t> data(1 << 20);
  for (size_t i = 0; i < data.size(); i += 8) {
    const uint64_t w = rng();
    std::memcpy(data.data() + i, &w, 8);
  }
  // Fills memory and overflow (256 KiB each) with file 1's random pages, then file 2's
  // until ENOSPC: file 1's first pages, the coldest, are in the overflow directory.
  auto fill = [&](Fixture& fx) {
    ASSERT_TRUE(fx.store->Write(1, 0, data.data(), 256 << 10).ok());
    Status st;
    for (size_t off = 0; off < data.size() && st.ok(); off += 16 << 10) {
      st = fx.store->Write(2, off, data.data() + off, 16 << 10);
    }
    ASSERT_EQ(st.code(), ENOSPC) << st.ToString();
    ASSERT_GT(fx.store->Stats().overflow_pages, 2u);
  };
  {
    Fixture fx(256 << 10, 256 << 10, /*background=*/false);
    ASSERT_NO_FATAL_FAILURE(fill(fx));
    const Status st = fx.store->Truncate(1, 5000);
    ASSERT_TRUE(st.ok()) << "Truncate with memory and overflow full: " << st.ToString();
    std::vector<uint8_t> got(2 * kPage, 0xAA);
    ASSERT_TRUE(fx.store->Read(1, 0, got.data(), got.size()).ok());
    EXPECT_EQ(0, std::memcmp(got.data(), data.data(), 5000));
    EXPECT_TRUE(std::all_of(got.begin() + 5000, got.end(), [](uint8_t b) { return b == 0; }));
    EXPECT_EQ(fx.store->Usage(1).pages, 2u);
  }
  {
    Fixture fx(256 << 10, 256 << 10, /*background=*/false);
    ASSERT_NO_FATAL_FAILURE(fill(fx));
    const Status st = fx.store->PunchHole(1, 100, 3 * kPage);
    ASSERT_TRUE(st.ok()) << "PunchHole with memory and overflow full: " << st.ToString();
    std::vector<uint8_t> want(data.begin(), data.begin() + (256 << 10));
    std::fill(want.begin() + 100, want.begin() + 100 + 3 * kPage, 0);
    std::vector<uint8_t> got(want.size());
    ASSERT_TRUE(fx.store->Read(1, 0, got.data(), got.size()).ok());
    EXPECT_EQ(got, want);
  }
}

class FailingReads : public OverflowIo {
 public:
  std::atomic<bool> fail{false};
  ssize_t Pread(int fd, void* buf, size_t len, off_t off) override {
    if (fail && off == 0) {
      errno = EIO;
      return -1;
    }
    return OverflowIo::Pread(fd, buf, len, off);
  }
};

TEST(PageStoreReclaimTest, OverflowReadErrorIsEioForThatPageOnly) {
  FailingReads io;
  Reports reports;
  Fixture fx(1 << 20, 0, /*background=*/false, &io, nullptr, reports.Reporter());
  const auto data = MixedData(2 << 20, 5);
  ASSERT_TRUE(fx.store->Write(1, 0, data.data(), data.size()).ok());
  ASSERT_TRUE(fx.store->ReclaimTo(fx.store->Stats().index_bytes).ok());  // All pages.
  io.fail = true;  // Slot 0 of every class file now fails to read.
  std::vector<uint8_t> page(kPage);
  size_t bad = 0, good = 0;
  for (size_t p = 0; p < data.size() / kPage; ++p) {
    Status st = fx.store->Read(1, p * kPage, page.data(), kPage);
    if (st.ok()) {
      ASSERT_EQ(0, std::memcmp(page.data(), data.data() + p * kPage, kPage)) << p;
      ++good;
    } else {
      EXPECT_EQ(st.code(), EIO);
      ++bad;
    }
  }
  EXPECT_GT(bad, 0u);
  EXPECT_LE(bad, static_cast<size_t>(OverflowStore::kNumClasses));
  EXPECT_GT(good, bad);
  EXPECT_EQ(reports.Count(StoreErrorKind::kOverflowIo), bad);  // Each one reported.
  EXPECT_EQ(reports.Count(StoreErrorKind::kCheckFailed), 0u);
}

// Every data file of the overflow directory in dir, for tests that change them under us.
std::vector<std::string> OverflowFiles(const std::string& dir) {
  std::vector<std::string> files;
  for (fs::directory_iterator it(dir), end; it != end; ++it) {
    if (it->path().filename().string().rfind("zbudfs-overflow-", 0) == 0) {
      files.push_back(it->path().string());
    }
  }
  return files;
}

// Raw (incompressible) pages written back and then changed on disk: a read of the changed
// page is EIO, never its new bytes, also on the read that would promote it (fault-back)
// and for a partial write that merges with it; other pages read back exactly.
TEST(PageStoreReclaimTest, RawPageChangedOnDiskIsEioNeverData) {
  Reports reports;
  Fixture fx(1 << 20, 0, /*background=*/false, nullptr, nullptr, reports.Reporter());
  std::vector<uint8_t> data(64 * kPage);
  std::mt19937_64 rng(11);
  for (size_t i = 0; i < data.size(); i += 8) {
    const uint64_t w = rng();
    std::memcpy(data.data() + i, &w, 8);
  }
  ASSERT_TRUE(fx.store->Write(1, 0, data.data(), data.size()).ok());
  ASSERT_EQ(fx.store->Stats().huge_pages, 64u);
  ASSERT_TRUE(fx.store->ReclaimTo(fx.store->Stats().index_bytes).ok());
  ASSERT_EQ(fx.store->Stats().overflow_pages, 64u);
  std::vector<uint8_t> got(data.size());
  ASSERT_TRUE(fx.store->Read(1, 0, got.data(), got.size()).ok());  // Each page read once.
  ASSERT_TRUE(got == data);
  const std::vector<std::string> files = OverflowFiles(fx.dir.path());
  ASSERT_EQ(files.size(), 1u);  // The 4096-byte class only.
  int fd = open(files[0].c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, "0123456789", 10, 5 * kPage + 100), 10);  // Slot 5.
  close(fd);
  size_t bad = 0;
  std::vector<uint8_t> page(kPage);
  for (size_t p = 0; p < 64; ++p) {
    Status st = fx.store->Read(1, p * kPage, page.data(), kPage);  // Would promote.
    if (st.ok()) {
      ASSERT_EQ(0, std::memcmp(page.data(), data.data() + p * kPage, kPage)) << p;
    } else {
      EXPECT_EQ(st.code(), EIO) << st.ToString();
      ++bad;
    }
  }
  EXPECT_EQ(bad, 1u);
  EXPECT_EQ(fx.store->Stats().overflow_pages, 1u);  // The others came back; not that one.
  ASSERT_EQ(reports.Count(StoreErrorKind::kCheckFailed), 1u);  // Reported, once per failure.
  EXPECT_NE(reports.seen[0].second.find("check value"), std::string::npos)
      << reports.seen[0].second;
  EXPECT_EQ(reports.Count(StoreErrorKind::kOverflowIo), 0u);
  size_t still_bad = 0;
  for (size_t p = 0; p < 64; ++p) {
    if (!fx.store->Read(1, p * kPage, page.data(), kPage).ok()) ++still_bad;
    if (!fx.store->Write(1, p * kPage + 1, "x", 1).ok()) ++still_bad;  // Merges.
  }
  EXPECT_EQ(still_bad, 2u);
  EXPECT_EQ(reports.Count(StoreErrorKind::kCheckFailed), 3u);
}

// Punching 98 % of a file that went to the overflow directory gives the disk back at once:
// overflow_bytes and the files' st_blocks come down close to the data still live, and
// what is left reads back.
TEST(PageStoreReclaimTest, PunchingAnOverflowedFileGivesItsDiskBack) {
  Fixture fx(1 << 20, 0, /*background=*/false);
  const auto data = MixedData(16 << 20, 9);
  ASSERT_TRUE(fx.store->Write(1, 0, data.data(), data.size()).ok());
  ASSERT_TRUE(fx.store->ReclaimTo(fx.store->Stats().index_bytes).ok());
  const StoreStats full = fx.store->Stats();
  ASSERT_GT(full.overflow_bytes, 4u << 20);
  // Keep one 64 KiB run in every 3.2 MiB: 2 % of the file.
  constexpr uint64_t kRun = 64 << 10, kStride = 50 * kRun;
  for (uint64_t off = 0; off < data.size(); off += kStride) {
    ASSERT_TRUE(fx.store->PunchHole(1, off + kRun, kStride - kRun).ok());
  }
  const StoreStats s = fx.store->Stats();
  const uint64_t live = s.overflow_pages * kPage;
  uint64_t disk = 0;
  for (const std::string& f : OverflowFiles(fx.dir.path())) {
    struct stat sb;
    ASSERT_EQ(stat(f.c_str(), &sb), 0);
    disk += static_cast<uint64_t>(sb.st_blocks) * 512;
  }
  std::cout << "overflow_bytes " << full.overflow_bytes << " -> " << s.overflow_bytes << ", disk "
            << disk << ", live pages " << s.overflow_pages << "\n";
  // Every live page holds at most two blocks; each class file its last one.
  EXPECT_LE(s.overflow_bytes, 2 * live + OverflowStore::kNumClasses * OverflowStore::kBlock);
  EXPECT_LE(disk, s.overflow_bytes + 16 * OverflowStore::kBlock);
  std::vector<uint8_t> got(kRun);
  for (uint64_t off = 0; off < data.size(); off += kStride) {
    ASSERT_TRUE(fx.store->Read(1, off, got.data(), kRun).ok());
    ASSERT_EQ(0, std::memcmp(got.data(), data.data() + off, kRun)) << off;
  }
}

// Writers, truncaters and removers race with reclaim (background and writer-driven);
// each thread owns one file and checks it against its own model at the end.
TEST(PageStoreReclaimTest, ConcurrentWritesTruncatesRemovesDuringReclaim) {
  Fixture fx(128 << 10);
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  std::mutex report_mu;
  std::vector<std::string> reports;
  auto report = [&](int t, int op, const std::string& what) {
    std::lock_guard<std::mutex> lock(report_mu);
    reports.push_back("thread " + std::to_string(t) + " op " + std::to_string(op) + ": " + what);
    ++failures;
  };
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(100 + t);
      const PageStore::FileId id = 10 + t;
      std::vector<uint8_t> model;
      const auto source = MixedData(1 << 20, t);
      for (int op = 0; op < 300; ++op) {
        const int kind = static_cast<int>(rng() % 10);
        if (kind < 6) {
          size_t off = rng() % (512 << 10);
          size_t len = 1 + rng() % (64 << 10);
          size_t src = rng() % (source.size() - len);
          if (Status st = fx.store->Write(id, off, source.data() + src, len); !st.ok()) {
            report(t, op, "write: " + st.ToString());
            return;
          }
          if (model.size() < off + len) model.resize(off + len);
          std::memcpy(model.data() + off, source.data() + src, len);
        } else if (kind < 8) {
          size_t size = rng() % (model.size() + 1);
          if (Status st = fx.store->Truncate(id, size); !st.ok()) {
            report(t, op, "truncate: " + st.ToString());
            return;
          }
          model.resize(size);
        } else if (kind == 8) {
          fx.store->Remove(id);
          model.clear();
        } else if (!model.empty()) {
          size_t off = rng() % model.size();
          size_t len = std::min<size_t>(model.size() - off, 1 + rng() % 20000);
          std::vector<uint8_t> got(len);
          if (Status st = fx.store->Read(id, off, got.data(), len); !st.ok()) {
            report(t, op, "read: " + st.ToString());
            return;
          }
          if (std::memcmp(got.data(), model.data() + off, len) != 0) {
            report(t, op, "read differs from the model at " + std::to_string(off));
            return;
          }
        }
      }
      std::vector<uint8_t> got(model.size());
      if (!fx.store->Read(id, 0, got.data(), got.size()).ok() || got != model) {
        report(t, -1, "final contents differ from the model");
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  for (const std::string& r : reports) ADD_FAILURE() << r;
  {
    const StoreStats s = fx.store->Stats();
    std::cout << "mem_used_total " << s.mem_used_total << " orig " << s.orig_data_size << " huge "
              << s.huge_pages << " written_back " << s.written_back_pages << "\n";
  }
  EXPECT_GT(fx.store->Stats().written_back_pages, 0u);
  for (int t = 0; t < kThreads; ++t) fx.store->Remove(10 + t);
  const StoreStats s = fx.store->Stats();
  EXPECT_EQ(s.orig_data_size, 0u);
  EXPECT_EQ(s.overflow_pages, 0u);
  EXPECT_EQ(s.overflow_bytes, 0u);
  EXPECT_EQ(s.mem_used_total, 0u);
}

// An overflow write that blocks until told to go on, to hold an eviction mid-flight.
// A whole-page writer compresses with no lock of its file and needs write_mu only to publish;
// a partial-page writer of the same file holds write_mu. When memory is all in the first
// one's unpublished pages, the second must wait without write_mu, or neither can move on
// until it gives up with ENOSPC (found in review: 5 ENOSPC in 5 s with a 128 KiB limit).
// Every write must succeed and the last partial writes must read back.
TEST(PageStoreReclaimTest, ConcurrentPartialWriterWaitsForMemoryWithoutTheFileLock) {
  Fixture fx(128 << 10, 0, /*background=*/false);
  std::atomic<bool> stop{false};
  std::atomic<int> whole_errors{0};
  std::thread whole([&] {
    for (uint64_t seed = 1; !stop; ++seed) {
      const std::vector<uint8_t> data = MixedData(64 * kPage, seed);
      if (!fx.store->Write(1, 0, data.data(), data.size()).ok()) ++whole_errors;
    }
  });
  std::mt19937_64 rng(2);
  int partial_errors = 0;
  uint64_t page = 0;
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> written;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < until) {
    std::vector<uint8_t> bytes(200);
    for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
    // The first 64 pages are kept and read back; then 448 pages in turn, so that the
    // index (charged to mem_limit too) stays small beside the limit.
    const uint64_t n = page++;
    const uint64_t off = (n < 64 ? 1000 + n : 1064 + (n - 64) % 448) * kPage + 100;
    Status st = fx.store->Write(1, off, bytes.data(), bytes.size());
    if (!st.ok()) {
      ++partial_errors;
      ADD_FAILURE() << "partial write at " << off << ": " << st.ToString();
    } else if (written.size() < 64) {
      written.emplace_back(off, std::move(bytes));
    }
  }
  stop = true;
  whole.join();
  EXPECT_EQ(partial_errors, 0);
  EXPECT_EQ(whole_errors.load(), 0);
  for (const auto& [off, bytes] : written) {
    std::vector<uint8_t> back(bytes.size());
    ASSERT_TRUE(fx.store->Read(1, off, back.data(), back.size()).ok());
    EXPECT_EQ(back, bytes) << "at " << off;
  }
}

// Many writers at a tiny mem_limit with room in the overflow: memory is often all in other
// writers' unpublished pages, and a writer must then wait for them (they are published and
// reclaimed), never fail. Issue 14: a whole-page writer that waited once came back with
// EAGAIN (a stale status of the wait broke its loop) and the kernel dropped the data.
// Threads write whole-page batches (compressed unlocked), unaligned spans (under write_mu),
// zero, punch and truncate unaligned ranges, and half of them share a file at disjoint
// ranges; every byte must read back, and memory must stay within mem_limit plus one page per
// writing thread.
void RunManyWritersAtMemLimit(uint64_t mem_limit) {
  constexpr int kThreads = 16;
  constexpr uint64_t kBytesPerThread = 512 << 10;
  Fixture fx(mem_limit);
  std::atomic<int> running{kThreads};
  std::atomic<uint64_t> max_used{0};
  std::thread monitor([&] {
    while (running > 0) {
      const uint64_t used = fx.store->MemUsed();
      uint64_t seen = max_used.load();
      while (used > seen && !max_used.compare_exchange_weak(seen, used)) {
      }
      std::this_thread::yield();
    }
  });
  auto file_of = [](int t) -> PageStore::FileId { return t < kThreads / 2 ? 100 + t : 200; };
  auto base_of = [](int t) -> uint64_t { return t < kThreads / 2 ? 0 : t * kBytesPerThread; };
  std::vector<std::vector<uint8_t>> data(kThreads);  // What each thread's range must hold.
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    data[t] = MixedData(kBytesPerThread, 1000 + t);
    threads.emplace_back([&, t] {
      std::vector<uint8_t>& d = data[t];
      const PageStore::FileId file = file_of(t);
      auto check = [&](const Status& st, const std::string& what) {
        if (!st.ok() && errors[t].empty()) errors[t] = what + ": " + st.ToString();
      };
      // Whole-page batches of 1 to 64 pages, then (odd threads) the same range again in
      // unaligned spans, which merge with the pages just written.
      std::mt19937_64 rng(t);
      for (uint64_t off = 0; off < d.size() && errors[t].empty();) {
        const uint64_t len = std::min<uint64_t>(d.size() - off, (1 + rng() % 64) * kPage);
        check(fx.store->Write(file, base_of(t) + off, d.data() + off, len),
              "whole-page write at " + std::to_string(off));
        off += len;
      }
      for (uint64_t off = 0; t % 2 == 1 && off < d.size() && errors[t].empty();) {
        const uint64_t len = std::min<uint64_t>(d.size() - off, 1 + rng() % (3 * kPage));
        check(fx.store->Write(file, base_of(t) + off, d.data() + off, len),
              "partial write at " + std::to_string(off));
        off += len;
      }
      // Unaligned zero-range and punch (their edge pages are rewritten), and a truncate of
      // the files of one thread.
      if (t % 4 == 3) {
        check(fx.store->ZeroRange(file, base_of(t) + 5000, 40000), "zero range");
        std::fill(d.begin() + 5000, d.begin() + 45000, 0);
        check(fx.store->PunchHole(file, base_of(t) + 100001, 30000), "punch");
        std::fill(d.begin() + 100001, d.begin() + 130001, 0);
      }
      if (t < kThreads / 2 && t % 2 == 0) {
        check(fx.store->Truncate(file, d.size() - 5000), "truncate");
        std::fill(d.end() - 5000, d.end(), 0);
      }
      --running;
    });
  }
  for (auto& th : threads) th.join();
  monitor.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(errors[t], "") << "thread " << t;
    std::vector<uint8_t> got(kBytesPerThread);
    ASSERT_TRUE(fx.store->Read(file_of(t), base_of(t), got.data(), got.size()).ok());
    EXPECT_TRUE(got == data[t]) << "thread " << t << "'s data differs";
  }
  EXPECT_LE(max_used.load(), mem_limit + kThreads * kPage);
  EXPECT_GT(fx.store->Stats().written_back_pages, 0u);
}

TEST(PageStoreReclaimTest, ConcurrentWritersAtOnePageMemLimitAllSucceed) {
  RunManyWritersAtMemLimit(kPage);
}

TEST(PageStoreReclaimTest, ConcurrentWritersAt64KiBMemLimitAllSucceed) {
  RunManyWritersAtMemLimit(64 << 10);
}

class BlockingWrites : public OverflowIo {
 public:
  std::atomic<int> calls{0};
  std::atomic<bool> entered{false};
  std::atomic<bool> go{false};
  ssize_t Pwrite(int fd, const void* buf, size_t len, off_t off) override {
    if (calls.fetch_add(1) == 0) {
      entered = true;
      while (!go) std::this_thread::yield();
    }
    return OverflowIo::Pwrite(fd, buf, len, off);
  }
};

// A raw page overwritten twice while its eviction is in pwrite gets its old address back from
// the arena (LIFO); the eviction must not then repoint the page at the stale copy.
TEST(PageStoreReclaimTest, ConcurrentOverwriteDuringRawEvictionKeepsTheLastWrite) {
  BlockingWrites io;
  Fixture fx(0, 0, /*background=*/false, &io);
  std::vector<std::vector<uint8_t>> data;
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    std::vector<uint8_t> page(kPage);
    std::mt19937_64 rng(seed);
    for (size_t i = 0; i < kPage; i += 8) {
      const uint64_t w = rng();
      std::memcpy(&page[i], &w, 8);
    }
    data.push_back(page);
  }
  ASSERT_TRUE(fx.store->Write(7, 0, data[0].data(), kPage).ok());  // Raw, at address X.
  std::thread evictor([&] { fx.store->ReclaimTo(0); });            // Copies data[0], blocks.
  while (!io.entered) std::this_thread::yield();
  EXPECT_TRUE(fx.store->Write(7, 0, data[1].data(), kPage).ok());  // At Y; X freed.
  EXPECT_TRUE(fx.store->Write(7, 0, data[2].data(), kPage).ok());  // At X again.
  io.go = true;
  evictor.join();
  std::vector<uint8_t> got(kPage);
  ASSERT_TRUE(fx.store->Read(7, 0, got.data(), kPage).ok());
  EXPECT_TRUE(got == data[2]) << (got == data[0] ? "the first write came back" : "garbage");
}

}  // namespace
}  // namespace zbudfs

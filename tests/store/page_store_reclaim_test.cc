// Reclaim: PageStore over mem_limit pushes pages to the OverflowStore, keeps memory bounded,
// frees overflow space on overwrite, truncate and punch, and fails a full store with ENOSPC.
// Pages coming back from the overflow directory: page_store_fault_back_test.cc; writers
// racing with reclaim: page_store_reclaim_concurrency_test.cc.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "store/page_store.h"
#include "tests/store/page_store_test_util.h"

namespace zbudfs {
namespace {

using namespace store_test;  // NOLINT(build/namespaces): the shared test helpers.

// Metadata cannot go to the overflow directory, so charging it pushes file pages there
// instead: memory stays within mem_limit and the data reads back exactly.
TEST(PageStoreReclaimTest, ChargeMetadataPushesPagesToOverflow) {
  constexpr uint64_t kLimit = 64 * kPage;
  OverflowFixture fx(kLimit, 0, /*background=*/false);
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
  EXPECT_TRUE(SameBytes(got, data));
  fx.store->Remove(1);
  ASSERT_TRUE(fx.store->ChargeMetadata(-static_cast<int64_t>(meta)).ok());
  EXPECT_EQ(fx.store->Stats().mem_used_total, 0u);
}

TEST(PageStoreReclaimTest, MemoryStaysBoundedAndEverythingReadsBack) {
  constexpr uint64_t kLimit = 1 << 20;
  OverflowFixture fx(kLimit);
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
  EXPECT_TRUE(SameBytes(got, data));
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
  OverflowFixture fx(256 << 20, 0, true, nullptr, &arena);
  std::mt19937_64 rng(77);
  const Bytes random = RandomBytes(8 * PageArena::kRegionPages * kPage, rng);  // 8 mappings.
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
  EXPECT_TRUE(SameBytes(got, again));
}

TEST(PageStoreReclaimTest, OverwriteAndTruncateFreeOverflowSpace) {
  OverflowFixture fx(1 << 20, 0, /*background=*/false);
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
  EXPECT_TRUE(SameBytes(got.data(), data.data(), 5000));
  for (size_t i = 5000; i < got.size(); ++i) ASSERT_EQ(got[i], 0) << i;
}

TEST(PageStoreReclaimTest, FullOverflowGivesEnospcAndLosesNothing) {
  OverflowFixture fx(256 << 10, 256 << 10);
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
  EXPECT_TRUE(SameBytes(got.data(), data.data(), written));
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
  const Bytes data = RandomBytes(1 << 20, rng);
  // Fills memory and overflow (256 KiB each) with file 1's random pages, then file 2's
  // until ENOSPC: file 1's first pages, the coldest, are in the overflow directory.
  auto fill = [&](OverflowFixture& fx) {
    ASSERT_TRUE(fx.store->Write(1, 0, data.data(), 256 << 10).ok());
    Status st;
    for (size_t off = 0; off < data.size() && st.ok(); off += 16 << 10) {
      st = fx.store->Write(2, off, data.data() + off, 16 << 10);
    }
    ASSERT_EQ(st.code(), ENOSPC) << st.ToString();
    ASSERT_GT(fx.store->Stats().overflow_pages, 2u);
  };
  {
    OverflowFixture fx(256 << 10, 256 << 10, /*background=*/false);
    ASSERT_NO_FATAL_FAILURE(fill(fx));
    const Status st = fx.store->Truncate(1, 5000);
    ASSERT_TRUE(st.ok()) << "Truncate with memory and overflow full: " << st.ToString();
    std::vector<uint8_t> got(2 * kPage, 0xAA);
    ASSERT_TRUE(fx.store->Read(1, 0, got.data(), got.size()).ok());
    EXPECT_TRUE(SameBytes(got.data(), data.data(), 5000));
    EXPECT_TRUE(AllZero(got.data() + 5000, got.size() - 5000));
    EXPECT_EQ(fx.store->Usage(1).pages, 2u);
  }
  {
    OverflowFixture fx(256 << 10, 256 << 10, /*background=*/false);
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

// Punching 98 % of a file that went to the overflow directory gives the disk back at once:
// overflow_bytes and the files' st_blocks come down close to the data still live, and
// what is left reads back.
TEST(PageStoreReclaimTest, PunchingAnOverflowedFileGivesItsDiskBack) {
  OverflowFixture fx(1 << 20, 0, /*background=*/false);
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
  RecordProperty("overflow_bytes_before_punch", std::to_string(full.overflow_bytes));
  RecordProperty("overflow_bytes_after_punch", std::to_string(s.overflow_bytes));
  RecordProperty("overflow_disk_bytes", std::to_string(disk));
  // Every live page holds at most two blocks; each class file its last one.
  EXPECT_LE(s.overflow_bytes, 2 * live + OverflowStore::kNumClasses * OverflowStore::kBlock);
  EXPECT_LE(disk, s.overflow_bytes + 16 * OverflowStore::kBlock);
  std::vector<uint8_t> got(kRun);
  for (uint64_t off = 0; off < data.size(); off += kStride) {
    ASSERT_TRUE(fx.store->Read(1, off, got.data(), kRun).ok());
    ASSERT_TRUE(SameBytes(got.data(), data.data() + off, kRun)) << off;
  }
}

}  // namespace
}  // namespace zbudfs

// Fault-back: pages PageStore reclaimed to the OverflowStore come back into memory on their
// second read; a failed or damaged overflow read is EIO for that page only, reported, never
// wrong data.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
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

TEST(PageStoreReclaimTest, SecondReadBringsPagesBackBelowTheLowWatermark) {
  OverflowFixture fx(8 << 20, 0, /*background=*/false);
  const auto data = MixedData(1 << 20, 3);
  ASSERT_TRUE(fx.store->Write(1, 0, data.data(), data.size()).ok());
  ASSERT_TRUE(fx.store->ReclaimTo(fx.store->Stats().index_bytes).ok());  // All pages.
  const uint64_t out = fx.store->Stats().overflow_pages;
  ASSERT_GT(out, 0u);
  std::vector<uint8_t> got(data.size());
  ASSERT_TRUE(fx.store->Read(1, 0, got.data(), got.size()).ok());
  EXPECT_EQ(fx.store->Stats().overflow_pages, out);  // First read: stays out.
  ASSERT_TRUE(fx.store->Read(1, 0, got.data(), got.size()).ok());
  EXPECT_TRUE(SameBytes(got, data));
  StoreStats s = fx.store->Stats();
  EXPECT_EQ(s.overflow_pages, 0u);  // Second read: back in memory.
  EXPECT_EQ(s.overflow_bytes, 0u);
  EXPECT_GT(s.mem_used_total, 0u);
  ASSERT_TRUE(fx.store->Read(1, 0, got.data(), got.size()).ok());
  EXPECT_TRUE(SameBytes(got, data));
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
  OverflowFixture fx(1 << 20, 0, /*background=*/false, &io, nullptr, reports.Reporter());
  const auto data = MixedData(2 << 20, 5);
  ASSERT_TRUE(fx.store->Write(1, 0, data.data(), data.size()).ok());
  ASSERT_TRUE(fx.store->ReclaimTo(fx.store->Stats().index_bytes).ok());  // All pages.
  io.fail = true;  // Slot 0 of every class file now fails to read.
  std::vector<uint8_t> page(kPage);
  size_t bad = 0, good = 0;
  for (size_t p = 0; p < data.size() / kPage; ++p) {
    Status st = fx.store->Read(1, p * kPage, page.data(), kPage);
    if (st.ok()) {
      ASSERT_TRUE(SameBytes(page.data(), data.data() + p * kPage, kPage)) << p;
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

// Raw (incompressible) pages written back and then changed on disk: a read of the changed
// page is EIO, never its new bytes, also on the read that would promote it (fault-back)
// and for a partial write that merges with it; other pages read back exactly.
TEST(PageStoreReclaimTest, RawPageChangedOnDiskIsEioNeverData) {
  Reports reports;
  OverflowFixture fx(1 << 20, 0, /*background=*/false, nullptr, nullptr, reports.Reporter());
  std::mt19937_64 rng(11);
  const Bytes data = RandomBytes(64 * kPage, rng);
  ASSERT_TRUE(fx.store->Write(1, 0, data.data(), data.size()).ok());
  ASSERT_EQ(fx.store->Stats().huge_pages, 64u);
  ASSERT_TRUE(fx.store->ReclaimTo(fx.store->Stats().index_bytes).ok());
  ASSERT_EQ(fx.store->Stats().overflow_pages, 64u);
  std::vector<uint8_t> got(data.size());
  ASSERT_TRUE(fx.store->Read(1, 0, got.data(), got.size()).ok());  // Each page read once.
  ASSERT_TRUE(SameBytes(got, data));
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
      ASSERT_TRUE(SameBytes(page.data(), data.data() + p * kPage, kPage)) << p;
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

// Readers promoting at once: each promotion takes its room under the low watermark before it
// allocates, so no two can both take the last of it. Many rounds of 8 readers racing for the
// last pages below it; memory never ends a round above it.
TEST(PageStoreReclaimTest, ConcurrentPromotionsStayUnderTheLowWatermark) {
  constexpr uint64_t kLimit = 1 << 20;
  constexpr uint64_t kLowWm = kLimit - kLimit / 10;  // Reclaimer's low watermark.
  constexpr int kThreads = 8;
  constexpr size_t kFileBytes = 256 << 10;
  OverflowFixture fx(kLimit, 0, /*background=*/false);
  std::vector<Bytes> data;
  for (int t = 0; t < kThreads; ++t) {
    data.push_back(MixedData(kFileBytes, 100 + t));
    ASSERT_TRUE(fx.store->Write(t + 1, 0, data[t].data(), kFileBytes).ok());
  }
  for (int round = 0; round < 30; ++round) {
    ASSERT_TRUE(fx.store->ReclaimTo(fx.store->Stats().index_bytes).ok());
    const uint64_t out = fx.store->Stats().overflow_pages;
    std::atomic<bool> wrong{false};
    std::vector<std::thread> readers;
    for (int t = 0; t < kThreads; ++t) {
      readers.emplace_back([&, t] {
        Bytes page(kPage);
        for (int pass = 0; pass < 2; ++pass) {  // The second read promotes.
          for (size_t off = 0; off < kFileBytes; off += kPage) {
            if (!fx.store->Read(t + 1, off, page.data(), kPage).ok() ||
                !SameBytes(page.data(), data[t].data() + off, kPage)) {
              wrong = true;
            }
          }
        }
      });
    }
    for (std::thread& r : readers) r.join();
    ASSERT_FALSE(wrong) << "round " << round;
    const StoreStats s = fx.store->Stats();
    ASSERT_LT(s.overflow_pages, out) << "round " << round << ": nothing came back";
    ASSERT_LE(s.mem_used_total, kLowWm) << "round " << round;
  }
}

}  // namespace
}  // namespace zbudfs

// Unit tests of PageStore statistics: what each kind of page (zero, raw, compressed) costs,
// the index charged as memory, and a remove seen by a concurrent reader of the figures.
#include <gtest/gtest.h>

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

// ---- Statistics -------------------------------------------------------------------------------

TEST(PageStoreTest, StatisticsPerPageKind) {
  TestArena arena;
  PageStore store(WithArena(&arena));
  std::mt19937_64 rng(10);

  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, Bytes(kPage, 0)));
  StoreStats s = store.Stats();
  EXPECT_EQ(s.same_pages, 1u);
  EXPECT_EQ(s.orig_data_size, kPage);
  EXPECT_EQ(s.compr_data_size, 0u);
  EXPECT_EQ(s.mem_used_total, s.index_bytes);
  EXPECT_EQ(store.Usage(1).stored_bytes, 0u);

  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, kPage, RandomBytes(kPage, rng)));
  s = store.Stats();
  EXPECT_EQ(s.huge_pages, 1u);
  EXPECT_EQ(s.compr_data_size, kPage);
  EXPECT_EQ(s.mem_used_total, kPage + s.index_bytes);
  EXPECT_EQ(store.Usage(1).stored_bytes, kPage);

  const Bytes text = TextBytes(kPage, 12345);
  Bytes comp(kPage);
  PageCodec::Streak streak;
  const size_t n = PageCodec::CompressFastFirst(text.data(), store.options().zstd_level,
                                                store.options().zstd_fast_level, kPairedPayload,
                                                &streak, comp.data());
  ASSERT_GT(n, 0u);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 2 * kPage, text));
  s = store.Stats();
  EXPECT_EQ(s.compr_data_size, kPage + n);
  EXPECT_EQ(s.pool_pages, 1u);
  EXPECT_EQ(s.buddied_pages, 0u);
  EXPECT_EQ(s.mem_used_total, 2 * kPage + s.index_bytes);
  EXPECT_EQ(s.orig_data_size, 3 * kPage);
  // A zbud page is paid in 64-byte chunks holding the payload (and its owner tag).
  const uint64_t zcost = store.Usage(1).stored_bytes - kPage;
  EXPECT_EQ(zcost % ZbudPool::kChunkSize, 0u);
  EXPECT_GE(zcost, n);
  EXPECT_LT(zcost, n + kOwnerTag + ZbudPool::kChunkSize);

  // Many text pages: zpages get buddied; the ratio shows; the formula holds.
  const uint64_t kText = 400;
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 2, 0, TextBytes(kText * kPage, 0)));
  s = store.Stats();
  EXPECT_GT(s.buddied_pages, 0u);
  EXPECT_EQ(s.orig_data_size, (3 + kText) * kPage);
  EXPECT_LT(s.compr_data_size - kPage, (kText + 1) * kPage / 2) << "text compresses over 2:1";
  EXPECT_LT(s.mem_used_total, s.orig_data_size);
  EXPECT_LE(s.pool_pages, kText + 1);
  ExpectMemFormula(s);
  EXPECT_EQ(arena.PagesInUse(), s.pool_pages + s.huge_pages);
  EXPECT_LE(store.Usage(1).stored_bytes + store.Usage(2).stored_bytes, s.mem_used_total);
}

// The index is memory too (issue 14, 4b): mem_used_total (and what reclaim compares with
// mem_limit) includes it, e.g. for zero pages that hold no other memory.
// Per-file figures (zbudfsctl du) add up to the store's, through overwrites, eviction to
// the overflow directory, truncation and removal.
TEST(PageStoreTest, FileUsageAddsUpToTheStoreFigures) {
  OverflowFixture fx(/*mem_limit=*/48 * kPage, /*overflow_limit=*/0, /*background=*/false);
  PageStore& store = *fx.store;
  std::mt19937_64 rng(11);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, TextBytes(40 * kPage, 3)));
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 2, 0, RandomBytes(40 * kPage, rng)));
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 3, 0, Bytes(8 * kPage, 0)));
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 5 * kPage, RandomBytes(3 * kPage, rng)));
  auto expect_sums = [&](const char* when) {
    uint64_t compr = 0, overflow = 0, pages = 0;
    for (PageStore::FileId id : {1, 2, 3}) {
      const FileUsage u = store.Usage(id);
      EXPECT_LE(u.overflow_bytes, u.stored_bytes) << when << " file " << id;
      compr += u.compr_bytes;
      overflow += u.overflow_bytes;
      pages += u.pages;
    }
    const StoreStats s = store.Stats();
    EXPECT_EQ(compr, s.compr_data_size) << when;
    EXPECT_EQ(pages * kPage, s.orig_data_size) << when;
    return overflow;
  };
  EXPECT_GT(expect_sums("after the writes"), 0u) << "mem_limit pushed pages out";
  EXPECT_EQ(store.Usage(3).compr_bytes, 0u) << "zero pages cost nothing";
  ASSERT_TRUE(store.Truncate(2, 10 * kPage).ok());
  expect_sums("after a truncate");
  store.Remove(1);
  expect_sums("after a remove");
  EXPECT_EQ(store.Usage(1).compr_bytes, 0u);
}

TEST(PageStoreTest, StatsChargeIndexMemory) {
  PageStore store(PageStoreOptions{});
  const Bytes ones(kPage, 1);
  for (uint64_t i = 0; i < 4096; ++i)
    ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, i * 64 * kPage, ones));
  StoreStats s = store.Stats();
  EXPECT_EQ(s.same_pages, 4096u);
  EXPECT_EQ(s.pool_pages, 0u);
  EXPECT_GE(s.index_bytes, 4096u * 16) << "an entry is 16 bytes";
  EXPECT_LE(s.index_bytes, 4096u * 64);
  EXPECT_EQ(s.mem_used_total, s.index_bytes);
  EXPECT_EQ(store.MemUsed(), s.index_bytes);
  store.Remove(1);
  EXPECT_EQ(store.Stats().mem_used_total, 0u);
}

// A delete frees memory before it leaves the statistics (issue 14, 5d): sampled while a
// large file is removed, the pool never holds more pages than orig_data_size still
// counts (it used to drop orig_data_size to 0 first, then free page by page).
TEST(PageStoreTest, ConcurrentRemoveNeverShowsPoolPagesBeyondOrigData) {
  PageStore store(PageStoreOptions{});
  const Bytes text = TextBytes(1 << 20, 7);
  for (uint64_t mib = 0; mib < 96; ++mib) {
    ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, mib << 20, text));
  }
  ASSERT_GT(store.Stats().pool_pages, 5000u);
  std::atomic<bool> done{false};
  std::atomic<uint64_t> samples{0};
  uint64_t worst = 0;
  std::thread sampler([&] {
    while (!done.load()) {
      const StoreStats s = store.Stats();  // orig_data_size is read before pool_pages.
      const uint64_t orig_pages = s.orig_data_size / kPage;
      if (s.pool_pages > orig_pages) worst = std::max(worst, s.pool_pages - orig_pages);
      ++samples;
    }
  });
  // Start the remove only once the sampler runs, or it could sample nothing but the end.
  while (samples.load() == 0) std::this_thread::yield();
  store.Remove(1);
  done = true;
  sampler.join();
  EXPECT_EQ(worst, 0u) << "pool pages beyond what orig_data_size counts";
  EXPECT_EQ(store.Stats().mem_used_total, 0u);
}

}  // namespace
}  // namespace zbudfs

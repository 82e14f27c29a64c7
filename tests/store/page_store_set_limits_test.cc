// PageStore::SetLimits, the store's side of a remount: raising and lowering capacity,
// mem_limit, overflow_limit and the zstd level of a store holding data, the refusals, and
// that nothing changes when one limit of a call is refused.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <random>

#include "store/page_store.h"
#include "tests/store/page_store_test_util.h"

namespace zbudfs {
namespace {

using namespace store_test;  // NOLINT(build/namespaces): the shared test helpers.

TEST(PageStoreSetLimitsTest, CapacityGrowsAndShrinksButNotBelowWhatIsStored) {
  PageStoreOptions o;
  o.capacity_bytes = 16 * kPage;
  PageStore store(o);
  const Bytes data = TextBytes(16 * kPage, 5);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, data));
  const Bytes more = TextBytes(8 * kPage, 99);
  EXPECT_EQ(store.Write(2, 0, more.data(), more.size()).code(), ENOSPC);

  // Below what is stored: refused, and the old capacity still holds.
  Status s = store.SetLimits({.capacity_bytes = 8 * kPage});
  EXPECT_EQ(s.code(), EINVAL) << s.ToString();
  EXPECT_EQ(store.capacity_bytes(), 16 * kPage);
  EXPECT_EQ(store.Write(2, 0, more.data(), more.size()).code(), ENOSPC);

  ASSERT_TRUE(store.SetLimits({.capacity_bytes = 24 * kPage}).ok());
  EXPECT_EQ(store.capacity_bytes(), 24 * kPage);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 2, 0, more));
  EXPECT_EQ(store.Write(3, 0, more.data(), kPage).code(), ENOSPC);

  // Exactly what is stored is allowed; 0 (unlimited) is not a change a limited store takes.
  EXPECT_TRUE(store.SetLimits({.capacity_bytes = 24 * kPage}).ok());
  EXPECT_EQ(store.SetLimits({.capacity_bytes = 0}).code(), EINVAL);
  EXPECT_EQ(ReadBytes(store, 1, 0, data.size()), data);
  EXPECT_EQ(ReadBytes(store, 2, 0, more.size()), more);
}

TEST(PageStoreSetLimitsTest, LowerMemLimitPushesPagesOutAndHolds) {
  OverflowFixture fx(/*mem_limit=*/256 * kPage, /*overflow_limit=*/0, /*background=*/false);
  PageStore& store = *fx.store;
  std::mt19937_64 rng(3);
  const Bytes data = RandomBytes(128 * kPage, rng);  // Raw pages: 512 KiB of memory.
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, data));
  ASSERT_GT(store.Stats().mem_used_total, 64 * kPage);

  ASSERT_TRUE(store.SetLimits({.mem_limit = 64 * kPage}).ok());
  EXPECT_EQ(store.mem_limit(), 64 * kPage);
  StoreStats s = store.Stats();
  EXPECT_EQ(s.mem_limit, 64 * kPage);
  EXPECT_LE(s.mem_used_total, 64 * kPage);
  EXPECT_GT(s.overflow_pages, 0u);
  // New writes stay under it too, and everything reads back.
  const Bytes more = RandomBytes(64 * kPage, rng);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 2, 0, more));
  EXPECT_LE(store.Stats().mem_used_total, 64 * kPage + kPage);
  EXPECT_EQ(ReadBytes(store, 1, 0, data.size()), data);
  EXPECT_EQ(ReadBytes(store, 2, 0, more.size()), more);

  // Raised again: pages written now stay in memory.
  ASSERT_TRUE(store.SetLimits({.mem_limit = 1024 * kPage}).ok());
  const uint64_t before = store.Stats().overflow_pages;
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 3, 0, RandomBytes(64 * kPage, rng)));
  EXPECT_LE(store.Stats().overflow_pages, before);
}

TEST(PageStoreSetLimitsTest, MemLimitBelowUseWithoutOverflowIsRefused) {
  PageStoreOptions o;
  o.mem_limit = 256 * kPage;
  PageStore store(o);
  std::mt19937_64 rng(4);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, RandomBytes(64 * kPage, rng)));
  EXPECT_EQ(store.SetLimits({.mem_limit = 16 * kPage}).code(), EINVAL);
  EXPECT_EQ(store.mem_limit(), 256 * kPage);
  EXPECT_TRUE(store.SetLimits({.mem_limit = 128 * kPage}).ok());
  EXPECT_EQ(store.Stats().mem_limit, 128 * kPage);
}

// Page indexes and metadata never leave memory: a mem_limit below them is refused before
// anything is pushed out (reclaim would move every page and then fail).
TEST(PageStoreSetLimitsTest, MemLimitBelowTheIndexesIsRefusedWithNothingMoved) {
  OverflowFixture fx(/*mem_limit=*/1024 * kPage, /*overflow_limit=*/0, /*background=*/false);
  PageStore& store = *fx.store;
  const Bytes data = TextBytes(64 * kPage, 7);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, data));
  ASSERT_TRUE(store.ChargeMetadata(8 * kPage).ok());
  const StoreStats before = store.Stats();
  const uint64_t fixed = before.index_bytes + before.metadata_bytes;
  ASSERT_GT(fixed, kPage);

  const Status s = store.SetLimits({.mem_limit = fixed - 1});
  EXPECT_EQ(s.code(), EINVAL) << s.ToString();
  EXPECT_EQ(store.mem_limit(), 1024 * kPage);
  const StoreStats after = store.Stats();
  EXPECT_EQ(after.written_back_pages, 0u);
  EXPECT_EQ(after.overflow_pages, 0u);
  EXPECT_EQ(after.mem_used_total, before.mem_used_total);
  // Just above them is a limit reclaim can meet: every page goes out, and reads back.
  ASSERT_TRUE(store.SetLimits({.mem_limit = fixed + kPage}).ok());
  EXPECT_LE(store.Stats().mem_used_total, fixed + kPage);
  EXPECT_EQ(ReadBytes(store, 1, 0, data.size()), data);
}

// A remount passes mem_limit with every other option. Unchanged, it moves nothing, even
// with memory above it because the page indexes alone exceed it (pushing every page out
// would find that and fail the remount of, say, the zstd level).
TEST(PageStoreSetLimitsTest, UnchangedMemLimitMovesNothing) {
  OverflowFixture fx(/*mem_limit=*/16 * kPage, /*overflow_limit=*/0, /*background=*/false);
  PageStore& store = *fx.store;
  const Bytes page = TextBytes(kPage, 9);
  for (uint64_t p = 0; p < 40000; p += 3)
    ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, p * kPage, page));
  StoreStats s = store.Stats();
  ASSERT_GT(s.index_bytes, s.mem_limit);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 2, 0, TextBytes(16 * kPage, 1)));
  const StoreStats before = store.Stats();
  ASSERT_GT(before.pool_pages, 0u);

  const Status st = store.SetLimits({.mem_limit = before.mem_limit, .zstd_level = 3});
  EXPECT_TRUE(st.ok()) << st.ToString();
  const StoreStats after = store.Stats();
  EXPECT_EQ(after.written_back_pages, before.written_back_pages);
  EXPECT_EQ(after.pool_pages, before.pool_pages);
  EXPECT_EQ(store.zstd_level(), 3);
  EXPECT_EQ(ReadBytes(store, 2, 0, 16 * kPage), TextBytes(16 * kPage, 1));
}

TEST(PageStoreSetLimitsTest, MemLimitMustStayTwiceTheStagingBudget) {
  OverflowFixture fx(/*mem_limit=*/1024 * kPage, 0, true, nullptr, nullptr, {},
                     /*staging_pages=*/64, /*compress_threads=*/1);
  EXPECT_EQ(fx.store->SetLimits({.mem_limit = 100 * kPage}).code(), EINVAL);
  EXPECT_TRUE(fx.store->SetLimits({.mem_limit = 128 * kPage}).ok());
}

TEST(PageStoreSetLimitsTest, OverflowLimitNotBelowWhatTheOverflowHolds) {
  OverflowFixture fx(/*mem_limit=*/32 * kPage, /*overflow_limit=*/0, /*background=*/false);
  PageStore& store = *fx.store;
  std::mt19937_64 rng(5);
  const Bytes data = RandomBytes(96 * kPage, rng);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, data));
  const uint64_t held = fx.overflow->BytesUsed();
  ASSERT_GT(held, 0u);

  EXPECT_EQ(store.SetLimits({.overflow_limit = held - kPage}).code(), EINVAL);
  EXPECT_EQ(store.overflow_limit(), 0u);
  ASSERT_TRUE(store.SetLimits({.overflow_limit = held}).ok());
  EXPECT_EQ(store.overflow_limit(), held);
  // Full now: more data has nowhere to go.
  const Bytes more = RandomBytes(64 * kPage, rng);
  EXPECT_EQ(store.Write(2, 0, more.data(), more.size()).code(), ENOSPC);
  EXPECT_EQ(ReadBytes(store, 1, 0, data.size()), data);
}

TEST(PageStoreSetLimitsTest, OneRefusedLimitChangesNothing) {
  PageStoreOptions o;
  o.capacity_bytes = 64 * kPage;
  o.mem_limit = 256 * kPage;
  PageStore store(o);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, TextBytes(32 * kPage, 1)));
  Status s = store.SetLimits({.capacity_bytes = 128 * kPage,
                              .mem_limit = 512 * kPage,
                              .overflow_limit = 4096 * kPage,  // No overflow store: refused.
                              .zstd_level = 9});
  EXPECT_EQ(s.code(), EINVAL);
  EXPECT_EQ(store.capacity_bytes(), 64 * kPage);
  EXPECT_EQ(store.mem_limit(), 256 * kPage);
  EXPECT_EQ(store.zstd_level(), o.zstd_level);
}

TEST(PageStoreSetLimitsTest, ZstdLevelAppliesToNewPages) {
  PageStoreOptions o;
  o.zstd_level = 1;
  o.zstd_fast_level = 1;
  PageStore store(o);
  const Bytes data = TextBytes(64 * kPage, 7);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, data));
  const uint64_t at1 = store.Stats().compr_data_size;
  ASSERT_TRUE(store.SetLimits({.zstd_level = 19, .zstd_fast_level = 19}).ok());
  EXPECT_EQ(store.zstd_level(), 19);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 2, 0, data));
  const uint64_t at19 = store.Stats().compr_data_size - at1;
  EXPECT_LT(at19, at1) << "level 19 packs the same text smaller than level 1";
  EXPECT_EQ(ReadBytes(store, 1, 0, data.size()), data);
  EXPECT_EQ(ReadBytes(store, 2, 0, data.size()), data);
}

}  // namespace
}  // namespace zbudfs

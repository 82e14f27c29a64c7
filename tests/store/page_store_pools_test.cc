// Zbud pools as shards (PageStoreOptions::zbud_pools): threads write into different pools,
// and every page is read, freed and evicted through the pool that holds it.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "store/page_store.h"
#include "tests/same_bytes.h"
#include "tests/store/page_store_test_util.h"

namespace zbudfs {
namespace {

using namespace store_test;  // NOLINT(build/namespaces): the shared test helpers.

constexpr int kThreads = 6;
constexpr size_t kFileBytes = 2 * 1024 * 1024;

// Each pool's pages are its own: they add up to the total, and none is past it (a page freed
// into the wrong pool would make that pool's count wrap below zero).
void ExpectPoolsAddUp(const PageStore& store, uint64_t total) {
  uint64_t sum = 0;
  for (uint64_t n : store.PagesPerPool()) {
    EXPECT_LE(n, total);
    sum += n;
  }
  EXPECT_EQ(sum, total);
}

// Each thread writes its own file (text and mixed pages), rewrites part of it, and reads it
// all back; then every file is removed and the store must hold nothing.
void WriteReadRemoveConcurrently(PageStore& store) {
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&store, t] {
      const Bytes data = t % 2 == 0 ? TextBytes(kFileBytes, static_cast<size_t>(t) * kPage)
                                    : MixedData(kFileBytes, static_cast<uint64_t>(t));
      const auto id = static_cast<PageStore::FileId>(t + 1);
      WriteOk(store, id, 0, data);
      WriteOk(store, id, 5 * kPage, Bytes(data.begin(), data.begin() + 64 * kPage));
      Bytes want = data;
      std::copy(data.begin(), data.begin() + 64 * kPage, want.begin() + 5 * kPage);
      EXPECT_TRUE(test::SameBytes(ReadBytes(store, id, 0, kFileBytes), want)) << "file " << id;
    });
  }
  for (std::thread& th : threads) th.join();
  const StoreStats s = store.Stats();
  EXPECT_GT(s.pool_pages, 0u);
  ExpectMemFormula(s);
  ExpectPoolsAddUp(store, s.pool_pages);
  for (int t = 0; t < kThreads; ++t) store.Remove(static_cast<PageStore::FileId>(t + 1));
  ExpectEmpty(store.Stats());
  ExpectPoolsAddUp(store, 0);
}

TEST(PageStorePoolsTest, ConcurrentWritersInSeveralPoolsReadBackAndFreeAll) {
  PageStoreOptions o;
  o.zbud_pools = 4;
  PageStore store(o);
  WriteReadRemoveConcurrently(store);
}

// Reclaim takes pages from every pool (the fullest first) and the overflow store gets them.
TEST(PageStorePoolsTest, ConcurrentReclaimEvictsFromEveryPool) {
  test::TempDir dir;
  auto ov = OverflowStore::Open({dir.path(), 0, nullptr});
  ASSERT_TRUE(ov.ok()) << ov.status().ToString();
  PageStoreOptions o;
  o.mem_limit = 256 * 1024;
  o.overflow = std::shared_ptr<OverflowStore>(std::move(ov).value());
  o.zbud_pools = 3;
  PageStore store(o);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&store, t] {
      const Bytes data = TextBytes(kFileBytes, static_cast<size_t>(t) * 7 * kPage);
      const auto id = static_cast<PageStore::FileId>(t + 1);
      WriteOk(store, id, 0, data);
      EXPECT_TRUE(test::SameBytes(ReadBytes(store, id, 0, kFileBytes), data)) << "file " << id;
    });
  }
  for (std::thread& th : threads) th.join();
  const StoreStats s = store.Stats();
  EXPECT_GT(s.overflow_pages, 0u);
  EXPECT_LE(s.mem_used_total, o.mem_limit + kThreads * kPage);
  ExpectPoolsAddUp(store, s.pool_pages);
  for (int t = 0; t < kThreads; ++t) store.Remove(static_cast<PageStore::FileId>(t + 1));
  ExpectEmpty(store.Stats());
  ExpectPoolsAddUp(store, 0);
}

}  // namespace
}  // namespace zbudfs

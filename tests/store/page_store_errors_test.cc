// Unit tests of PageStore failures: an arena that runs dry (ENOSPC, data kept), a damaged
// compressed page (EIO, never garbage) and indexes that alone fill mem_limit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "store/page_store.h"
#include "tests/store/page_store_test_util.h"

namespace zbudfs {
namespace {

using namespace store_test;  // NOLINT(build/namespaces): the shared test helpers.

// ---- Failures ---------------------------------------------------------------------------------

TEST(PageStoreTest, ArenaAllocationFailureIsEnospcAndKeepsData) {
  TestArena arena(4);  // Four pages, then nullptr.
  PageStore store(WithArena(&arena));
  std::mt19937_64 rng(12);
  Bytes model;
  for (int i = 0; i < 4; ++i) {
    const Bytes page = RandomBytes(kPage, rng);
    ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, i * kPage, page));
    model.insert(model.end(), page.begin(), page.end());
  }
  // A fifth raw page, a compressible page (needs a zbud page) and a 1 MiB batch all fail.
  const Bytes noise = RandomBytes(kPage, rng);
  EXPECT_EQ(store.Write(1, 4 * kPage, noise.data(), noise.size()).code(), ENOSPC);
  const Bytes text = TextBytes(kPage, 8);
  EXPECT_EQ(store.Write(2, 0, text.data(), text.size()).code(), ENOSPC);
  const Bytes big = TextBytes(256 * kPage, 80);
  EXPECT_EQ(store.Write(3, 0, big.data(), big.size()).code(), ENOSPC);
  // Overwriting a stored page with one that needs new memory fails and keeps the old data.
  EXPECT_EQ(store.Write(1, kPage, text.data(), text.size()).code(), ENOSPC);
  EXPECT_GT(arena.refused(), 0u);

  StoreStats s = store.Stats();
  EXPECT_EQ(store.Usage(1).pages, 4u);
  EXPECT_EQ(store.Usage(2).pages, 0u);
  EXPECT_EQ(store.Usage(3).pages, 0u);
  EXPECT_EQ(s.huge_pages, 4u);
  EXPECT_EQ(s.pool_pages, 0u);
  EXPECT_EQ(s.orig_data_size, 4 * kPage);
  EXPECT_EQ(arena.PagesInUse(), 4u) << "pages of failed calls went back";
  ExpectMemFormula(s);
  EXPECT_EQ(ReadBytes(store, 1, 0, model.size()), model);

  // Zero pages need no memory.
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 2, 0, Bytes(8 * kPage, 0)));

  // With a failure in the middle of a batch: the first pages compress into new zbud pages,
  // then the arena runs dry; nothing of the batch is kept, its zbud pages are given back.
  arena.Allow(3);
  EXPECT_EQ(store.Write(3, 0, big.data(), big.size()).code(), ENOSPC);
  EXPECT_EQ(store.Usage(3).pages, 0u);
  EXPECT_EQ(store.Stats().pool_pages, 0u);
  EXPECT_EQ(arena.PagesInUse(), 4u);

  // Memory again: everything works and the old data is still there.
  arena.Allow(1000);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 3, 0, big));
  EXPECT_EQ(ReadBytes(store, 3, 0, big.size()), big);
  EXPECT_EQ(ReadBytes(store, 1, 0, model.size()), model);
  store.Remove(1);
  store.Remove(2);
  store.Remove(3);
  EXPECT_EQ(arena.PagesInUse(), 0u);
}

// A compressed page damaged in memory reads as EIO (never as garbage); operations that must
// merge with it fail with EIO and change nothing.
TEST(PageStoreTest, CorruptPageReadsAsEio) {
  TestArena arena;
  PageStore store(WithArena(&arena));
  const Bytes text = TextBytes(kPage, 4096 * 7);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, text));
  const Bytes words = WordBytes(kPage, 0x0123456789ABCDEF);  // Same-filled: no memory.
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 2 * kPage, words));
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 2, 0, Bytes(kPage, 0)));
  const std::set<void*> live = arena.live();
  ASSERT_EQ(live.size(), 1u) << "one zbud page holds the text page";
  auto* zpage = static_cast<uint8_t*>(*live.begin());
  // Damage everything after the zbud header chunk (the header holds the pool's list links).
  auto flip = [&] {
    for (size_t i = ZbudPool::kHeaderSize; i < kPage; ++i) zpage[i] ^= 0xFF;
  };
  flip();

  Bytes buf(kPage, 0x11);
  Status st = store.Read(1, 0, buf.data(), buf.size());
  EXPECT_EQ(st.code(), EIO) << st.ToString();
  st = store.Read(1, 100, buf.data(), 10);
  EXPECT_EQ(st.code(), EIO) << "a partial read of the page too";
  EXPECT_TRUE(AllZero(ReadBytes(store, 2, 0, kPage).data(), kPage)) << "other files fine";
  EXPECT_TRUE(AllZero(ReadBytes(store, 1, kPage, kPage).data(), kPage)) << "holes fine";
  const Bytes patch = {1, 2, 3};
  EXPECT_EQ(store.Write(1, 10, patch.data(), patch.size()).code(), EIO);
  // A truncate that fails on its tail page drops nothing past it either.
  EXPECT_EQ(store.Truncate(1, 100).code(), EIO);
  EXPECT_EQ(ReadBytes(store, 1, 2 * kPage, kPage), words);
  EXPECT_EQ(store.PunchHole(1, 100, 10).code(), EIO);
  EXPECT_EQ(store.Usage(1).pages, 2u);

  // Undo the damage: the page was left exactly as it was.
  flip();
  EXPECT_EQ(ReadBytes(store, 1, 0, kPage), text);
  // And a whole-page overwrite of a damaged page needs no merge.
  flip();
  const Bytes other = TextBytes(kPage, 999);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, other));
  EXPECT_EQ(ReadBytes(store, 1, 0, kPage), other);
}

// When the indexes alone fill mem_limit, a write that needs memory fails with ENOSPC at
// once (nothing to reclaim), not after waiting for memory that never comes.
TEST(PageStoreTest, IndexFillingMemLimitIsEnospc) {
  PageStoreOptions o;
  o.mem_limit = 64 << 10;
  PageStore store(o);
  const Bytes ones(kPage, 1);
  uint64_t i = 0;
  for (; store.Stats().index_bytes < o.mem_limit; ++i) {
    ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, i * 64 * kPage, ones));
  }
  const Bytes text = TextBytes(kPage, 9);
  EXPECT_EQ(store.Write(1, (i * 64 + 1) * kPage, text.data(), text.size()).code(), ENOSPC);
  store.Remove(1);
  EXPECT_TRUE(store.Write(1, 0, text.data(), text.size()).ok());
}

}  // namespace
}  // namespace zbudfs

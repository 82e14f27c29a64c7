// Unit tests of ZbudPool (store/zbud_pool.h) against the seed zbud.c: every error code of every
// API, and placement (buddies, unbuddied lists by free chunks, page release). Reclaim is in
// zbud_pool_reclaim_test.cc, the randomized model and the threaded test in zbud_pool_model_test.cc.
#include "store/zbud_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <latch>
#include <list>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "store/page_arena.h"
#include "store/status.h"
#include "tests/store/zbud_pool_test_util.h"

namespace zbudfs {
namespace {

using namespace zbud_test;  // NOLINT(build/namespaces): the shared test helpers.

// ---- Error codes ----------------------------------------------------------------------------

TEST(ZbudPoolTest, AllocOfZeroBytesFailsWithEinval) {
  PageArena arena;
  ZbudPool pool(&arena, nullptr);
  StatusOr<Handle> h = pool.Alloc(0);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), EINVAL);
  EXPECT_EQ(pool.PoolPages(), 0u);
  EXPECT_EQ(arena.PagesInUse(), 0u);
}

TEST(ZbudPoolTest, AllocAboveMaxSizeFailsWithEnospcAndMaxSizeSucceeds) {
  PageArena arena;
  ZbudPool pool(&arena, nullptr);
  for (size_t size : {kMaxSize + 1, kPage - kChunk, kPage, size_t{1} << 20, SIZE_MAX}) {
    StatusOr<Handle> h = pool.Alloc(size);
    ASSERT_FALSE(h.ok()) << size;
    EXPECT_EQ(h.status().code(), ENOSPC) << size;
  }
  EXPECT_EQ(pool.PoolPages(), 0u);
  EXPECT_EQ(arena.PagesInUse(), 0u);

  ASSERT_ALLOC(h, pool, kMaxSize);
  EXPECT_EQ(kMaxSize, 3968u);
  EXPECT_TRUE(IsFirstBuddy(h));
  EXPECT_EQ(pool.PoolPages(), 1u);
  Fill(pool, h, kMaxSize, 7);
  EXPECT_TRUE(HasPattern(pool, h, kMaxSize, 7));
  pool.Free(h);
  EXPECT_EQ(pool.PoolPages(), 0u);
}

TEST(ZbudPoolTest, MaxSizeAllocationLeavesExactlyOneChunkForABuddy) {
  PageArena arena;
  ZbudPool pool(&arena, nullptr);
  Zpage big, small, other;
  ASSERT_TRUE(AllocFilled(pool, kMaxSize, 1, &big));
  // 65 bytes round up to two chunks: they do not fit in the one chunk left.
  ASSERT_TRUE(AllocFilled(pool, kChunk + 1, 2, &other));
  EXPECT_NE(PageOf(other.handle), PageOf(big.handle));
  EXPECT_EQ(pool.PoolPages(), 2u);
  // 64 bytes do, as the last buddy in the big one's page.
  ASSERT_TRUE(AllocFilled(pool, kChunk, 3, &small));
  EXPECT_EQ(PageOf(small.handle), PageOf(big.handle));
  EXPECT_TRUE(IsRightJustified(small.handle, kChunk));
  EXPECT_EQ(big.handle + kMaxSize, small.handle);  // Adjacent, not overlapping.
  EXPECT_EQ(pool.PoolPages(), 2u);
  EXPECT_EQ(pool.BuddiedPages(), 1u);
  for (const Zpage& z : {big, small, other}) EXPECT_TRUE(HasPattern(pool, z.handle, z.size, z.tag));
  for (const Zpage& z : {big, small, other}) pool.Free(z.handle);
  EXPECT_EQ(pool.PoolPages(), 0u);
  EXPECT_EQ(arena.PagesInUse(), 0u);
}

TEST(ZbudPoolTest, AllocFailsWithEnomemOnlyWhenANewPageIsNeededAndArenaHasNone) {
  FailingArena arena;
  ZbudPool pool(&arena, nullptr);
  arena.fail = true;
  StatusOr<Handle> h = pool.Alloc(100);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), ENOMEM);
  EXPECT_EQ(arena.failed_calls.load(), 1);
  EXPECT_EQ(pool.PoolPages(), 0u);

  arena.fail = false;
  ASSERT_ALLOC(a, pool, 100);
  arena.fail = true;
  // A buddy that fits in the existing page needs no arena page.
  ASSERT_ALLOC(b, pool, 100);
  EXPECT_EQ(PageOf(a), PageOf(b));
  EXPECT_EQ(arena.failed_calls.load(), 1);
  // The page is full (two buddies): a third allocation needs a page the arena cannot give.
  StatusOr<Handle> c = pool.Alloc(100);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), ENOMEM);
  EXPECT_EQ(arena.failed_calls.load(), 2);
  EXPECT_EQ(pool.PoolPages(), 1u);
  EXPECT_EQ(pool.BuddiedPages(), 1u);
  // Freeing a buddy makes room again without the arena.
  pool.Free(b);
  ASSERT_ALLOC(d, pool, 100);
  EXPECT_EQ(PageOf(d), PageOf(a));
  pool.Free(a);
  pool.Free(d);
  EXPECT_EQ(pool.PoolPages(), 0u);
  EXPECT_EQ(arena.PagesInUse(), 0u);
}

TEST(ZbudPoolTest, ReclaimPageWithoutEvictCallbackFailsWithEinval) {
  PageArena arena;
  ZbudPool pool(&arena, nullptr);
  Zpage z;
  ASSERT_TRUE(AllocFilled(pool, 500, 1, &z));
  Status st = pool.ReclaimPage(3);
  EXPECT_EQ(st.code(), EINVAL);
  EXPECT_EQ(pool.PoolPages(), 1u);
  EXPECT_TRUE(HasPattern(pool, z.handle, z.size, z.tag));
  pool.Free(z.handle);
}

TEST(ZbudPoolTest, ReclaimPageWithEmptyLruFailsWithEinval) {
  PageArena arena;
  int calls = 0;
  ZbudPool pool(&arena, [&](ZbudPool& p, Handle h) {
    ++calls;
    p.Free(h);
    return Status::OK();
  });
  EXPECT_EQ(pool.ReclaimPage(1).code(), EINVAL);
  // Also once pages came and went.
  ASSERT_ALLOC(a, pool, 100);
  pool.Free(a);
  EXPECT_EQ(pool.ReclaimPage(5).code(), EINVAL);
  EXPECT_EQ(calls, 0);
}

TEST(ZbudPoolTest, ReclaimPageWithZeroRetriesFailsWithEinval) {
  PageArena arena;
  int calls = 0;
  ZbudPool pool(&arena, [&](ZbudPool& p, Handle h) {
    ++calls;
    p.Free(h);
    return Status::OK();
  });
  ASSERT_ALLOC(a, pool, 100);
  EXPECT_EQ(pool.ReclaimPage(0).code(), EINVAL);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(pool.PoolPages(), 1u);
  pool.Free(a);
}

// ---- Placement ------------------------------------------------------------------------------

TEST(ZbudPoolTest, TwoFittingAllocationsShareOnePageAsFirstAndLastBuddy) {
  const std::pair<size_t, size_t> kPairs[] = {
      {1, 1}, {64, 64}, {65, 3904}, {1000, 2000}, {2000, 1968}, {3968, 64}, {64, 3968}, {3000, 900},
  };
  for (const auto& [first_size, last_size] : kPairs) {
    SCOPED_TRACE(::testing::Message() << "sizes " << first_size << ", " << last_size);
    ASSERT_LE(ChunksOf(first_size) + ChunksOf(last_size), kUsableChunks);
    PageArena arena;
    ZbudPool pool(&arena, nullptr);
    Zpage first, last;
    ASSERT_TRUE(AllocFilled(pool, first_size, 1, &first));
    ASSERT_TRUE(AllocFilled(pool, last_size, 2, &last));
    const uintptr_t page = PageOf(first.handle);
    EXPECT_EQ(first.handle, page + ZbudPool::kHeaderSize);
    EXPECT_EQ(PageOf(last.handle), page);
    EXPECT_EQ(last.handle + ZbudPool::AllocatedBytes(last_size), page + kPage);
    EXPECT_LE(first.handle + first_size, last.handle);
    EXPECT_EQ(pool.PoolPages(), 1u);
    EXPECT_EQ(pool.BuddiedPages(), 1u);
    EXPECT_EQ(arena.PagesInUse(), 1u);
    EXPECT_TRUE(HasPattern(pool, first.handle, first.size, first.tag));
    EXPECT_TRUE(HasPattern(pool, last.handle, last.size, last.tag));
    pool.Free(first.handle);
    pool.Free(last.handle);
  }
}

TEST(ZbudPoolTest, TwoAllocationsThatDoNotFitTakeTwoPages) {
  PageArena arena;
  ZbudPool pool(&arena, nullptr);
  // 32 + 32 chunks > 63.
  ASSERT_ALLOC(a, pool, 2000);
  ASSERT_ALLOC(b, pool, 1985);
  EXPECT_NE(PageOf(a), PageOf(b));
  EXPECT_TRUE(IsFirstBuddy(a));
  EXPECT_TRUE(IsFirstBuddy(b));
  EXPECT_EQ(pool.PoolPages(), 2u);
  EXPECT_EQ(pool.BuddiedPages(), 0u);
  EXPECT_EQ(arena.PagesInUse(), 2u);
  pool.Free(a);
  pool.Free(b);
}

TEST(ZbudPoolTest, FreeingOneBuddyLetsAFittingAllocationReuseThePage) {
  PageArena arena;
  ZbudPool pool(&arena, nullptr);
  Zpage a, b, c, d;
  ASSERT_TRUE(AllocFilled(pool, 1000, 1, &a));  // 16 chunks, first.
  ASSERT_TRUE(AllocFilled(pool, 2000, 2, &b));  // 32 chunks, last.
  const uintptr_t page = PageOf(a.handle);
  ASSERT_EQ(PageOf(b.handle), page);
  ASSERT_EQ(pool.BuddiedPages(), 1u);

  // Freeing the last buddy leaves 63 - 16 = 47 free chunks.
  pool.Free(b.handle);
  EXPECT_EQ(pool.PoolPages(), 1u);
  EXPECT_EQ(pool.BuddiedPages(), 0u);
  ASSERT_TRUE(AllocFilled(pool, 47 * kChunk, 3, &c));
  EXPECT_EQ(PageOf(c.handle), page);
  EXPECT_TRUE(IsRightJustified(c.handle, c.size));
  EXPECT_EQ(pool.PoolPages(), 1u);
  EXPECT_EQ(pool.BuddiedPages(), 1u);

  // Freeing the first buddy leaves 16 free chunks; the next fitting zpage becomes first.
  pool.Free(a.handle);
  EXPECT_EQ(pool.BuddiedPages(), 0u);
  ASSERT_TRUE(AllocFilled(pool, 16 * kChunk, 4, &d));
  EXPECT_EQ(d.handle, page + ZbudPool::kHeaderSize);
  EXPECT_EQ(pool.PoolPages(), 1u);
  EXPECT_EQ(pool.BuddiedPages(), 1u);
  EXPECT_EQ(arena.PagesInUse(), 1u);
  EXPECT_TRUE(HasPattern(pool, c.handle, c.size, c.tag));
  EXPECT_TRUE(HasPattern(pool, d.handle, d.size, d.tag));
  pool.Free(c.handle);
  pool.Free(d.handle);
}

TEST(ZbudPoolTest, FreeingOneBuddyDoesNotLetANonFittingAllocationIntoThePage) {
  PageArena arena;
  ZbudPool pool(&arena, nullptr);
  ASSERT_ALLOC(a, pool, 1000);             // 16 chunks.
  ASSERT_ALLOC(b, pool, 2000);             // 32 chunks.
  pool.Free(b);                            // 47 chunks free.
  ASSERT_ALLOC(c, pool, 47 * kChunk + 1);  // 48 chunks.
  EXPECT_NE(PageOf(c), PageOf(a));
  EXPECT_TRUE(IsFirstBuddy(c));
  EXPECT_EQ(pool.PoolPages(), 2u);
  EXPECT_EQ(pool.BuddiedPages(), 0u);
  pool.Free(a);
  pool.Free(c);
}

// The search runs over the unbuddied lists from SizeToChunks(size) upward and takes the head
// of the first non-empty one: the page with the fewest free chunks that suffice, whatever its
// age, LRU position or address, rounded to whole chunks.
TEST(ZbudPoolTest, AllocTakesThePageWithFewestSufficientFreeChunks) {
  PageArena arena;
  ZbudPool pool(&arena, nullptr);
  // Three full pages, in creation (and LRU) order, then each loses its last buddy: free
  // chunks 47, 16 and 23, listed in that order.
  ASSERT_ALLOC(p47, pool, 16 * kChunk);
  ASSERT_ALLOC(p47_last, pool, 47 * kChunk);
  ASSERT_ALLOC(p16, pool, 47 * kChunk);
  ASSERT_ALLOC(p16_last, pool, 16 * kChunk);
  ASSERT_ALLOC(p23, pool, 40 * kChunk);
  ASSERT_ALLOC(p23_last, pool, 23 * kChunk);
  ASSERT_EQ(pool.PoolPages(), 3u);
  ASSERT_EQ(pool.BuddiedPages(), 3u);
  ASSERT_EQ(PageOf(p47_last), PageOf(p47));
  ASSERT_EQ(PageOf(p16_last), PageOf(p16));
  ASSERT_EQ(PageOf(p23_last), PageOf(p23));
  pool.Free(p47_last);
  pool.Free(p16_last);
  pool.Free(p23_last);

  // 16 chunks: the exact fit is taken, not the oldest, newest, roomiest or last listed page.
  ASSERT_ALLOC(x, pool, 15 * kChunk + 1);
  EXPECT_EQ(PageOf(x), PageOf(p16));
  // 17 chunks: 23 free is the fewest that suffice.
  ASSERT_ALLOC(y, pool, 17 * kChunk);
  EXPECT_EQ(PageOf(y), PageOf(p23));
  // 1 chunk: only the 47-chunk page is still unbuddied.
  ASSERT_ALLOC(z, pool, 1);
  EXPECT_EQ(PageOf(z), PageOf(p47));
  EXPECT_EQ(pool.PoolPages(), 3u);
  EXPECT_EQ(pool.BuddiedPages(), 3u);
  for (Handle h : {p47, p16, p23, x, y, z}) pool.Free(h);
  EXPECT_EQ(pool.PoolPages(), 0u);
}

// Where first fit by free chunks differs from a search in page order: a request starts at its
// own chunk count, so a page listed under 1 free chunk is found before a page with 61 free
// chunks that was created and allocated into later.
TEST(ZbudPoolTest, AllocSearchStartsAtSizeInChunks) {
  PageArena arena;
  ZbudPool pool(&arena, nullptr);
  ASSERT_ALLOC(full, pool, kMaxSize);     // 1 free chunk.
  ASSERT_ALLOC(roomy, pool, kChunk + 1);  // 2 chunks: a new page, 61 free chunks, LRU head.
  ASSERT_NE(PageOf(roomy), PageOf(full));
  ASSERT_ALLOC(tiny, pool, kChunk);  // 1 chunk: list 1 first.
  EXPECT_EQ(PageOf(tiny), PageOf(full));
  EXPECT_EQ(pool.PoolPages(), 2u);
  ASSERT_ALLOC(two, pool, 2 * kChunk);  // 2 chunks: lists 2..60 are empty, list 61 is not.
  EXPECT_EQ(PageOf(two), PageOf(roomy));
  EXPECT_EQ(pool.PoolPages(), 2u);
  for (Handle h : {full, roomy, tiny, two}) pool.Free(h);
}

// Within one free-chunk list the most recently listed page comes first (list_add and
// list_first_entry in the spec), not the oldest, the LRU head or the lowest address.
TEST(ZbudPoolTest, AllocWithinAFreeChunkListTakesTheMostRecentlyListedPage) {
  PageArena arena;
  ZbudPool pool(&arena, nullptr);
  Handle first[3], last[3];
  for (int i = 0; i < 3; ++i) {
    ASSERT_ALLOC(a, pool, 32 * kChunk);
    ASSERT_ALLOC(b, pool, 31 * kChunk);
    ASSERT_EQ(PageOf(a), PageOf(b));
    first[i] = a;
    last[i] = b;
  }
  ASSERT_EQ(pool.BuddiedPages(), 3u);
  // Pages 0, 2, 1 go onto the 31-free-chunks list in that order.
  pool.Free(last[0]);
  pool.Free(last[2]);
  pool.Free(last[1]);
  for (int want : {1, 2, 0}) {
    ASSERT_ALLOC(h, pool, 31 * kChunk);
    EXPECT_EQ(PageOf(h), PageOf(first[want]));
    last[want] = h;
  }
  EXPECT_EQ(pool.PoolPages(), 3u);
  for (int i = 0; i < 3; ++i) {
    pool.Free(first[i]);
    pool.Free(last[i]);
  }
}

TEST(ZbudPoolTest, FreeingBothBuddiesReleasesThePage) {
  for (bool first_goes_first : {true, false}) {
    SCOPED_TRACE(first_goes_first ? "first buddy freed first" : "last buddy freed first");
    PageArena arena;
    ZbudPool pool(&arena, nullptr);
    ASSERT_ALLOC(keep, pool, 3000);  // Another page that stays.
    ASSERT_ALLOC(a, pool, 1500);
    ASSERT_ALLOC(b, pool, 1500);
    ASSERT_EQ(PageOf(a), PageOf(b));
    ASSERT_EQ(pool.PoolPages(), 2u);
    ASSERT_EQ(arena.PagesInUse(), 2u);
    pool.Free(first_goes_first ? a : b);
    EXPECT_EQ(pool.PoolPages(), 2u);
    EXPECT_EQ(arena.PagesInUse(), 2u);
    EXPECT_EQ(pool.BuddiedPages(), 0u);
    pool.Free(first_goes_first ? b : a);
    EXPECT_EQ(pool.PoolPages(), 1u);
    EXPECT_EQ(arena.PagesInUse(), 1u);
    pool.Free(keep);
    EXPECT_EQ(pool.PoolPages(), 0u);
    EXPECT_EQ(arena.PagesInUse(), 0u);
  }
}

TEST(ZbudPoolTest, DestructorReturnsPagesStillHeldToTheArena) {
  PageArena arena;
  {
    ZbudPool pool(&arena, nullptr);
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(pool.Alloc(1000 + 200 * i).ok());
    ASSERT_GT(arena.PagesInUse(), 0u);
    ASSERT_EQ(arena.PagesInUse(), pool.PoolPages());
  }
  EXPECT_EQ(arena.PagesInUse(), 0u);
}

TEST(ZbudPoolTest, AllocationsNeverOverlap) {
  PageArena arena;
  ZbudPool pool(&arena, nullptr);
  std::mt19937_64 rng(42);
  std::vector<Zpage> live;
  uint32_t tag = 0;
  for (int op = 0; op < 20000; ++op) {
    if (live.empty() || rng() % 100 < 55) {
      const size_t size = 1 + rng() % (rng() % 4 == 0 ? kMaxSize : 700);
      Zpage z;
      ASSERT_TRUE(AllocFilled(pool, size, ++tag, &z));
      live.push_back(z);
    } else {
      const size_t i = rng() % live.size();
      ASSERT_TRUE(HasPattern(pool, live[i].handle, live[i].size, live[i].tag));
      pool.Free(live[i].handle);
      live[i] = live.back();
      live.pop_back();
    }
  }
  ASSERT_GT(live.size(), 100u);
  for (const Zpage& z : live) EXPECT_TRUE(HasPattern(pool, z.handle, z.size, z.tag));
  // The byte ranges are disjoint, and none overlaps a page's header chunk.
  std::map<Handle, size_t> ranges;
  for (const Zpage& z : live) {
    EXPECT_GE(OffsetOf(z.handle), ZbudPool::kHeaderSize);
    EXPECT_LE(OffsetOf(z.handle) + z.size, kPage);
    ranges[z.handle] = z.size;
  }
  ASSERT_EQ(ranges.size(), live.size()) << "two live allocations share a handle";
  for (auto it = ranges.begin(); std::next(it) != ranges.end(); ++it) {
    EXPECT_LE(it->first + it->second, std::next(it)->first) << "0x" << std::hex << it->first;
  }
  for (const Zpage& z : live) pool.Free(z.handle);
  EXPECT_EQ(pool.PoolPages(), 0u);
  EXPECT_EQ(arena.PagesInUse(), 0u);
}

}  // namespace
}  // namespace zbudfs

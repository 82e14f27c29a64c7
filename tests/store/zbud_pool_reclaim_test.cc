// ZbudPool reclaim: the LRU order, evict callbacks that fail, succeed, allocate or free, and
// the under_reclaim protocol (a page freed during its own eviction).
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
#include "store/zbud_pool.h"
#include "tests/store/zbud_pool_test_util.h"

namespace zbudfs {
namespace {

using namespace zbud_test;  // NOLINT(build/namespaces): the shared test helpers.

// ---- Reclaim --------------------------------------------------------------------------------

// Records every evict call and evicts (copies out and frees) unless told to refuse.
struct EvictRecorder {
  std::vector<Handle> calls;
  std::map<Handle, std::vector<uint8_t>> copies;
  std::map<Handle, size_t> sizes;  // Size of each handle the recorder may evict.
  std::set<Handle> refuse;         // Handles whose eviction fails.
  bool refuse_all = false;

  ZbudPool::EvictFn Fn() {
    return [this](ZbudPool& pool, Handle h) -> Status {
      calls.push_back(h);
      if (refuse_all || refuse.count(h) != 0) return Status::Error(EBUSY, "test: refused");
      auto it = sizes.find(h);
      if (it == sizes.end()) {
        ADD_FAILURE() << "evict called for unknown handle 0x" << std::hex << h;
        return Status::Error(EINVAL, "test: unknown handle");
      }
      copies[h] = CopyOut(pool, h, it->second);
      sizes.erase(it);
      pool.Free(h);
      return Status::OK();
    };
  }
  void Track(const Zpage& z) { sizes[z.handle] = z.size; }
};

TEST(ZbudPoolTest, ReclaimEvictsTheLeastRecentlyAllocatedIntoPageFirst) {
  PageArena arena;
  EvictRecorder rec;
  ZbudPool pool(&arena, rec.Fn());
  // Pages A, B, C, D in allocation order; only B has room for a 16-chunk buddy.
  Zpage a, b, c, d, b2;
  ASSERT_TRUE(AllocFilled(pool, kMaxSize, 1, &a));
  ASSERT_TRUE(AllocFilled(pool, 47 * kChunk, 2, &b));
  ASSERT_TRUE(AllocFilled(pool, kMaxSize, 3, &c));
  ASSERT_TRUE(AllocFilled(pool, kMaxSize, 4, &d));
  for (const Zpage& z : {a, b, c, d}) rec.Track(z);
  ASSERT_EQ(pool.PoolPages(), 4u);

  ASSERT_TRUE(pool.ReclaimPage(1).ok());
  EXPECT_EQ(rec.calls, std::vector<Handle>{a.handle});
  EXPECT_EQ(pool.PoolPages(), 3u);
  EXPECT_EQ(arena.PagesInUse(), 3u);

  // Allocating into B (now the oldest) moves it to the LRU's head: C, D, B is the order.
  ASSERT_TRUE(AllocFilled(pool, 16 * kChunk, 5, &b2));
  ASSERT_EQ(PageOf(b2.handle), PageOf(b.handle));
  rec.Track(b2);
  rec.calls.clear();
  ASSERT_TRUE(pool.ReclaimPage(1).ok());
  ASSERT_TRUE(pool.ReclaimPage(1).ok());
  EXPECT_EQ(rec.calls, (std::vector<Handle>{c.handle, d.handle}));
  EXPECT_EQ(pool.PoolPages(), 1u);
  // The page of two buddies: the first buddy is evicted before the last.
  ASSERT_TRUE(pool.ReclaimPage(1).ok());
  EXPECT_EQ(rec.calls, (std::vector<Handle>{c.handle, d.handle, b.handle, b2.handle}));
  EXPECT_EQ(pool.PoolPages(), 0u);
  EXPECT_EQ(arena.PagesInUse(), 0u);
  EXPECT_EQ(pool.ReclaimPage(1).code(), EINVAL);
  for (const Zpage& z : {a, b, c, d, b2}) {
    ASSERT_EQ(rec.copies.count(z.handle), 1u);
    EXPECT_TRUE(CopyHasPattern(rec.copies[z.handle], z.tag));
  }
}

TEST(ZbudPoolTest, FreeDoesNotMoveAPageInTheLru) {
  PageArena arena;
  EvictRecorder rec;
  ZbudPool pool(&arena, rec.Fn());
  Zpage x1, x2, y;
  ASSERT_TRUE(AllocFilled(pool, 2000, 1, &x1));
  ASSERT_TRUE(AllocFilled(pool, 1000, 2, &x2));
  ASSERT_TRUE(AllocFilled(pool, kMaxSize, 3, &y));
  ASSERT_EQ(PageOf(x1.handle), PageOf(x2.handle));
  rec.Track(x1);
  rec.Track(y);
  pool.Free(x2.handle);  // X keeps its LRU position: still the tail.
  ASSERT_TRUE(pool.ReclaimPage(1).ok());
  EXPECT_EQ(rec.calls, std::vector<Handle>{x1.handle});
  EXPECT_EQ(pool.PoolPages(), 1u);
  EXPECT_TRUE(HasPattern(pool, y.handle, y.size, y.tag));
  pool.Free(y.handle);
}

// Three pages of two buddies each, allocated in order 0, 1, 2.
struct ThreeBuddiedPages {
  Zpage first[3];
  Zpage last[3];
};

::testing::AssertionResult MakeThreeBuddiedPages(ZbudPool& pool, ThreeBuddiedPages* out) {
  uint32_t tag = 100;
  for (int i = 0; i < 3; ++i) {
    if (auto r = AllocFilled(pool, 2000, ++tag, &out->first[i]); !r) return r;  // 32 chunks.
    if (auto r = AllocFilled(pool, 1900, ++tag, &out->last[i]); !r) return r;   // 30 chunks.
    if (PageOf(out->first[i].handle) != PageOf(out->last[i].handle)) {
      return ::testing::AssertionFailure() << "buddies of page " << i << " were not paired";
    }
  }
  return ::testing::AssertionSuccess();
}

TEST(ZbudPoolTest, FailingEvictKeepsPagesAndRetriesWalkDistinctPagesThenEagain) {
  PageArena arena;
  EvictRecorder rec;
  rec.refuse_all = true;
  ZbudPool pool(&arena, rec.Fn());
  ThreeBuddiedPages p;
  ASSERT_TRUE(MakeThreeBuddiedPages(pool, &p));

  // A refused first buddy ends the page's attempt: one call per tried page, oldest first.
  Status st = pool.ReclaimPage(2);
  EXPECT_EQ(st.code(), EAGAIN);
  EXPECT_EQ(rec.calls, (std::vector<Handle>{p.first[0].handle, p.first[1].handle}));
  EXPECT_EQ(pool.PoolPages(), 3u);
  EXPECT_EQ(pool.BuddiedPages(), 3u);
  EXPECT_EQ(arena.PagesInUse(), 3u);

  // Tried pages went back to the LRU's head, so the order is now 2, 0, 1 and repeats.
  rec.calls.clear();
  st = pool.ReclaimPage(5);
  EXPECT_EQ(st.code(), EAGAIN);
  EXPECT_EQ(rec.calls, (std::vector<Handle>{p.first[2].handle, p.first[0].handle, p.first[1].handle,
                                            p.first[2].handle, p.first[0].handle}));
  EXPECT_EQ(pool.PoolPages(), 3u);
  EXPECT_EQ(pool.BuddiedPages(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(HasPattern(pool, p.first[i].handle, p.first[i].size, p.first[i].tag));
    EXPECT_TRUE(HasPattern(pool, p.last[i].handle, p.last[i].size, p.last[i].tag));
  }
  // The pages are still fully usable.
  for (int i = 0; i < 3; ++i) {
    pool.Free(p.first[i].handle);
    pool.Free(p.last[i].handle);
  }
  EXPECT_EQ(pool.PoolPages(), 0u);
  EXPECT_EQ(arena.PagesInUse(), 0u);
}

TEST(ZbudPoolTest, EvictFailingOnLastBuddyCallsBothBuddiesAndKeepsThePage) {
  PageArena arena;
  EvictRecorder rec;
  ZbudPool pool(&arena, rec.Fn());
  ThreeBuddiedPages p;
  ASSERT_TRUE(MakeThreeBuddiedPages(pool, &p));
  for (int i = 0; i < 3; ++i) {
    rec.Track(p.first[i]);
    rec.refuse.insert(p.last[i].handle);
  }

  EXPECT_EQ(pool.ReclaimPage(3).code(), EAGAIN);
  EXPECT_EQ(rec.calls,
            (std::vector<Handle>{p.first[0].handle, p.last[0].handle, p.first[1].handle,
                                 p.last[1].handle, p.first[2].handle, p.last[2].handle}));
  // The first buddies were evicted; each page keeps its last buddy.
  EXPECT_EQ(pool.PoolPages(), 3u);
  EXPECT_EQ(pool.BuddiedPages(), 0u);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(rec.copies.count(p.first[i].handle), 1u);
    EXPECT_TRUE(CopyHasPattern(rec.copies[p.first[i].handle], p.first[i].tag));
    EXPECT_TRUE(HasPattern(pool, p.last[i].handle, p.last[i].size, p.last[i].tag));
  }
  // The pages went back on the unbuddied lists: the freed first slots are reused.
  for (int i = 0; i < 3; ++i) {
    ASSERT_ALLOC(h, pool, 2000);
    EXPECT_TRUE(IsFirstBuddy(h));
    p.first[i].handle = h;
  }
  EXPECT_EQ(pool.PoolPages(), 3u);
  EXPECT_EQ(pool.BuddiedPages(), 3u);
  for (int i = 0; i < 3; ++i) {
    pool.Free(p.first[i].handle);
    pool.Free(p.last[i].handle);
  }
  EXPECT_EQ(arena.PagesInUse(), 0u);
}

TEST(ZbudPoolTest, SuccessfulEvictFreesThePage) {
  PageArena arena;
  EvictRecorder rec;
  ZbudPool pool(&arena, rec.Fn());
  Zpage a, b, c;
  ASSERT_TRUE(AllocFilled(pool, 1000, 1, &a));
  ASSERT_TRUE(AllocFilled(pool, 2000, 2, &b));
  ASSERT_TRUE(AllocFilled(pool, 3000, 3, &c));
  ASSERT_EQ(PageOf(a.handle), PageOf(b.handle));
  for (const Zpage& z : {a, b, c}) rec.Track(z);
  ASSERT_EQ(pool.PoolPages(), 2u);

  EXPECT_TRUE(pool.ReclaimPage(1).ok());
  EXPECT_EQ(rec.calls, (std::vector<Handle>{a.handle, b.handle}));
  EXPECT_EQ(pool.PoolPages(), 1u);
  EXPECT_EQ(pool.BuddiedPages(), 0u);
  EXPECT_EQ(arena.PagesInUse(), 1u);
  EXPECT_TRUE(CopyHasPattern(rec.copies[a.handle], a.tag));
  EXPECT_TRUE(CopyHasPattern(rec.copies[b.handle], b.tag));
  EXPECT_TRUE(HasPattern(pool, c.handle, c.size, c.tag));
  pool.Free(c.handle);
}

TEST(ZbudPoolTest, ReclaimSkipsAPageThatCannotBeEvictedAndFreesTheNext) {
  PageArena arena;
  EvictRecorder rec;
  ZbudPool pool(&arena, rec.Fn());
  Zpage a, b;
  ASSERT_TRUE(AllocFilled(pool, 3000, 1, &a));
  ASSERT_TRUE(AllocFilled(pool, 3000, 2, &b));
  rec.refuse.insert(a.handle);
  rec.Track(b);
  EXPECT_TRUE(pool.ReclaimPage(5).ok());
  EXPECT_EQ(rec.calls, (std::vector<Handle>{a.handle, b.handle}));
  EXPECT_EQ(pool.PoolPages(), 1u);
  EXPECT_TRUE(HasPattern(pool, a.handle, a.size, a.tag));
  // A went back to the LRU and is the only page: it is tried again, and refused again.
  rec.calls.clear();
  EXPECT_EQ(pool.ReclaimPage(2).code(), EAGAIN);
  EXPECT_EQ(rec.calls, (std::vector<Handle>{a.handle, a.handle}));
  pool.Free(a.handle);
}

TEST(ZbudPoolTest, EvictCallbackMayAllocateButNotIntoThePageUnderReclaim) {
  PageArena arena;
  Zpage a;
  Handle moved = 0;
  ZbudPool pool(&arena, [&](ZbudPool& p, Handle h) -> Status {
    EXPECT_EQ(h, a.handle);
    // The only page with room is the one under reclaim; it is off the lists.
    StatusOr<Handle> n = p.Alloc(a.size);
    if (!n.ok()) return n.status();
    EXPECT_NE(PageOf(*n), PageOf(h));
    EXPECT_EQ(p.PoolPages(), 2u);
    std::memcpy(p.Map(*n), p.Map(h), a.size);
    moved = *n;
    p.Free(h);
    return Status::OK();
  });
  ASSERT_TRUE(AllocFilled(pool, 1000, 9, &a));
  EXPECT_TRUE(pool.ReclaimPage(1).ok());
  ASSERT_NE(moved, 0u);
  EXPECT_EQ(pool.PoolPages(), 1u);
  EXPECT_EQ(arena.PagesInUse(), 1u);
  EXPECT_TRUE(HasPattern(pool, moved, a.size, a.tag));
  pool.Free(moved);
}

// An owner in the tests below: the handles it holds, under its own lock.
struct Owner {
  std::mutex mu;
  std::map<Handle, Zpage> owned;
  std::map<Handle, std::vector<uint8_t>> evicted;
};

// Free racing with reclaim, on one thread: from inside the evict callback of the first buddy
// the owner frees the last buddy. The page must stay until ReclaimPage is done, the bytes
// behind both handles stay readable for the callbacks, and the callback for the last buddy
// returns OK because its handle was already freed.
TEST(ZbudPoolTest, FreeOfLastBuddyDuringEvictOfFirstDefersThePageFree) {
  // No warm cache: a page given back to the arena is madvised and reads as zeros.
  PageArena arena(/*warm_cache_pages=*/0);
  Owner owner;
  Zpage first, last;
  std::vector<Handle> calls;
  ZbudPool pool(&arena, [&](ZbudPool& p, Handle h) -> Status {
    calls.push_back(h);
    // The bytes are still there (were the page freed, they would read as zeros).
    if (h == first.handle) {
      EXPECT_TRUE(HasPattern(p, h, first.size, first.tag));
    }
    if (h == last.handle) {
      EXPECT_TRUE(HasPattern(p, h, last.size, last.tag));
    }
    EXPECT_EQ(arena.PagesInUse(), 1u);
    EXPECT_EQ(p.PoolPages(), 1u);
    std::lock_guard<std::mutex> lock(owner.mu);
    auto it = owner.owned.find(h);
    if (it == owner.owned.end()) return Status::OK();  // Freed meanwhile.
    const Zpage z = it->second;
    if (h == first.handle) {
      // The owner frees the last buddy "concurrently".
      owner.owned.erase(last.handle);
      p.Free(last.handle);
      EXPECT_EQ(arena.PagesInUse(), 1u);
      EXPECT_EQ(p.PoolPages(), 1u);
      EXPECT_TRUE(HasPattern(p, last.handle, last.size, last.tag));
    }
    owner.evicted[h] = CopyOut(p, h, z.size);
    owner.owned.erase(h);
    p.Free(h);
    EXPECT_EQ(arena.PagesInUse(), 1u);  // Both buddies gone, page still held.
    EXPECT_TRUE(HasPattern(p, last.handle, last.size, last.tag));
    return Status::OK();
  });
  ASSERT_TRUE(AllocFilled(pool, 1500, 1, &first));
  ASSERT_TRUE(AllocFilled(pool, 2000, 2, &last));
  ASSERT_EQ(PageOf(first.handle), PageOf(last.handle));
  owner.owned[first.handle] = first;
  owner.owned[last.handle] = last;

  EXPECT_TRUE(pool.ReclaimPage(1).ok());
  EXPECT_EQ(calls, (std::vector<Handle>{first.handle, last.handle}));
  EXPECT_EQ(pool.PoolPages(), 0u);
  EXPECT_EQ(pool.BuddiedPages(), 0u);
  EXPECT_EQ(arena.PagesInUse(), 0u);
  EXPECT_TRUE(owner.owned.empty());
  ASSERT_EQ(owner.evicted.size(), 1u);
  EXPECT_TRUE(CopyHasPattern(owner.evicted[first.handle], first.tag));
}

TEST(ZbudPoolTest, EvictOfAHandleFreedMeanwhileReturnsOkAndThePageIsFreed) {
  PageArena arena(/*warm_cache_pages=*/0);
  Owner owner;
  Zpage first, last;
  int calls = 0;
  ZbudPool pool(&arena, [&](ZbudPool& p, Handle h) -> Status {
    ++calls;
    std::lock_guard<std::mutex> lock(owner.mu);
    if (h == first.handle && owner.owned.count(h) != 0) {
      // The owner frees this very handle just before the callback gets its lock.
      owner.owned.erase(h);
      p.Free(h);
    }
    auto it = owner.owned.find(h);
    if (it == owner.owned.end()) return Status::OK();  // Already freed: nothing to do.
    EXPECT_TRUE(HasPattern(p, h, it->second.size, it->second.tag));
    owner.evicted[h] = CopyOut(p, h, it->second.size);
    owner.owned.erase(it);
    p.Free(h);
    return Status::OK();
  });
  ASSERT_TRUE(AllocFilled(pool, 700, 1, &first));
  ASSERT_TRUE(AllocFilled(pool, 700, 2, &last));
  owner.owned[first.handle] = first;
  owner.owned[last.handle] = last;
  EXPECT_TRUE(pool.ReclaimPage(1).ok());
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(pool.PoolPages(), 0u);
  EXPECT_EQ(arena.PagesInUse(), 0u);
  ASSERT_EQ(owner.evicted.count(last.handle), 1u);
  EXPECT_TRUE(CopyHasPattern(owner.evicted[last.handle], last.tag));
}

TEST(ZbudPoolTest, FreeOfLastBuddyDuringAFailedEvictKeepsThePageWithTheFirst) {
  PageArena arena(/*warm_cache_pages=*/0);
  Zpage first, last;
  int calls = 0;
  ZbudPool pool(&arena, [&](ZbudPool& p, Handle h) -> Status {
    ++calls;
    EXPECT_EQ(h, first.handle);
    p.Free(last.handle);  // The owner frees the last buddy; then eviction of the first fails.
    return Status::Error(EIO, "test: write-back failed");
  });
  ASSERT_TRUE(AllocFilled(pool, 1500, 1, &first));
  ASSERT_TRUE(AllocFilled(pool, 2000, 2, &last));
  EXPECT_EQ(pool.ReclaimPage(1).code(), EAGAIN);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(pool.PoolPages(), 1u);
  EXPECT_EQ(pool.BuddiedPages(), 0u);
  EXPECT_EQ(arena.PagesInUse(), 1u);
  EXPECT_TRUE(HasPattern(pool, first.handle, first.size, first.tag));
  // The page is unbuddied again: the freed last slot is reused.
  Zpage again;
  ASSERT_TRUE(AllocFilled(pool, 2000, 3, &again));
  EXPECT_EQ(PageOf(again.handle), PageOf(first.handle));
  EXPECT_TRUE(IsRightJustified(again.handle, again.size));
  EXPECT_EQ(pool.PoolPages(), 1u);
  EXPECT_TRUE(HasPattern(pool, first.handle, first.size, first.tag));
  EXPECT_TRUE(HasPattern(pool, again.handle, again.size, again.tag));
  pool.Free(first.handle);
  pool.Free(again.handle);
  EXPECT_EQ(arena.PagesInUse(), 0u);
}

// The same race with two real threads: the evict callback of the first buddy blocks until
// another thread has freed the last buddy.
TEST(ZbudPoolTest, ConcurrentFreeDuringEvictDefersThePageFree) {
  for (int round = 0; round < 50; ++round) {
    SCOPED_TRACE(::testing::Message() << "round " << round);
    PageArena arena(/*warm_cache_pages=*/0);
    Owner owner;
    Zpage first, last;
    std::latch in_evict(1), owner_freed(1);
    std::atomic<int> calls{0};
    ZbudPool pool(&arena, [&](ZbudPool& p, Handle h) -> Status {
      if (calls.fetch_add(1) == 0) {
        EXPECT_EQ(h, first.handle);
        in_evict.count_down();
        owner_freed.wait();
      }
      // Bytes behind the handle are valid for the whole callback, freed or not.
      if (h == last.handle) {
        EXPECT_TRUE(HasPattern(p, h, last.size, last.tag));
      }
      std::lock_guard<std::mutex> lock(owner.mu);
      auto it = owner.owned.find(h);
      if (it == owner.owned.end()) return Status::OK();
      owner.evicted[h] = CopyOut(p, h, it->second.size);
      owner.owned.erase(it);
      p.Free(h);
      return Status::OK();
    });
    ASSERT_TRUE(AllocFilled(pool, 1000, 1, &first));
    ASSERT_TRUE(AllocFilled(pool, 2500, 2, &last));
    ASSERT_EQ(PageOf(first.handle), PageOf(last.handle));
    owner.owned[first.handle] = first;
    owner.owned[last.handle] = last;

    Status reclaim_status;
    std::thread reclaimer([&] { reclaim_status = pool.ReclaimPage(1); });
    in_evict.wait();
    {
      std::lock_guard<std::mutex> lock(owner.mu);
      owner.owned.erase(last.handle);
      pool.Free(last.handle);
    }
    EXPECT_EQ(arena.PagesInUse(), 1u);
    EXPECT_EQ(pool.PoolPages(), 1u);
    owner_freed.count_down();
    reclaimer.join();

    EXPECT_TRUE(reclaim_status.ok()) << reclaim_status.ToString();
    EXPECT_EQ(calls.load(), 2);
    EXPECT_EQ(pool.PoolPages(), 0u);
    EXPECT_EQ(arena.PagesInUse(), 0u);
    ASSERT_EQ(owner.evicted.size(), 1u);
    EXPECT_TRUE(CopyHasPattern(owner.evicted[first.handle], first.tag));
  }
}

}  // namespace
}  // namespace zbudfs

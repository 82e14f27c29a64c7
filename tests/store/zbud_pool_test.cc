// Tests of ZbudPool against store/zbud_pool.h and its spec, Linux's mm/zbud.c: error codes,
// buddy placement, the unbuddied-list search, page release, the LRU and reclaim (including the
// evict-callback contract and a Free racing with reclaim), a randomized model-based test and a
// multi-threaded test. Tests meant for ThreadSanitizer runs have "Concurrent" in their names.
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

namespace zbudfs {
namespace {

using Handle = ZbudPool::Handle;

constexpr size_t kPage = ZbudPool::kPageSize;
constexpr size_t kChunk = ZbudPool::kChunkSize;
constexpr size_t kMaxSize = ZbudPool::kMaxAllocSize;
constexpr int kUsableChunks = ZbudPool::kNumChunks;

uintptr_t PageOf(Handle h) { return h & ~uintptr_t{kPage - 1}; }
size_t OffsetOf(Handle h) { return h & (kPage - 1); }
int ChunksOf(size_t size) { return static_cast<int>(ZbudPool::AllocatedBytes(size) / kChunk); }

// A first buddy sits right after the one-chunk header.
bool IsFirstBuddy(Handle h) { return OffsetOf(h) == ZbudPool::kHeaderSize; }
// A last buddy is right-justified: it ends, rounded up to chunks, at the page's end.
bool IsRightJustified(Handle h, size_t size) {
  return h + ZbudPool::AllocatedBytes(size) == PageOf(h) + kPage;
}

// ---- Content patterns -----------------------------------------------------------------------
// Allocation `tag` holds `size` bytes of a random table starting at PatternFor(tag). Tags that
// differ modulo 2^16 start at different places, so their bytes differ, also when shifted
// against each other: an overlap between two allocations shows up as a corrupted pattern.

constexpr size_t kPatternWindow = 1 << 16;

const std::vector<uint8_t>& PatternTable() {
  static const std::vector<uint8_t> table = [] {
    std::vector<uint8_t> t(kPatternWindow + kPage);
    std::mt19937 rng(12345);
    for (size_t i = 0; i < kPatternWindow; ++i) t[i] = static_cast<uint8_t>(rng());
    for (size_t i = 0; i < kPage; ++i) t[kPatternWindow + i] = t[i];  // No wrap needed.
    return t;
  }();
  return table;
}

const uint8_t* PatternFor(uint32_t tag) {
  return PatternTable().data() + ((tag * 4099u) & (kPatternWindow - 1));
}

void Fill(ZbudPool& pool, Handle h, size_t size, uint32_t tag) {
  std::memcpy(pool.Map(h), PatternFor(tag), size);
  pool.Unmap(h);
}

::testing::AssertionResult HasPattern(const ZbudPool& pool, Handle h, size_t size, uint32_t tag) {
  const auto* bytes = static_cast<const uint8_t*>(pool.Map(h));
  const uint8_t* want = PatternFor(tag);
  for (size_t i = 0; i < size; ++i) {
    if (bytes[i] != want[i]) {
      pool.Unmap(h);
      return ::testing::AssertionFailure()
             << "handle 0x" << std::hex << h << std::dec << " (size " << size << ", tag " << tag
             << ") byte " << i << " is " << int{bytes[i]} << ", want " << int{want[i]};
    }
  }
  pool.Unmap(h);
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult CopyHasPattern(const std::vector<uint8_t>& copy, uint32_t tag) {
  if (std::memcmp(copy.data(), PatternFor(tag), copy.size()) != 0) {
    return ::testing::AssertionFailure() << "evicted copy of tag " << tag << " is corrupt";
  }
  return ::testing::AssertionSuccess();
}

std::vector<uint8_t> CopyOut(const ZbudPool& pool, Handle h, size_t size) {
  const auto* bytes = static_cast<const uint8_t*>(pool.Map(h));
  std::vector<uint8_t> copy(bytes, bytes + size);
  pool.Unmap(h);
  return copy;
}

// Allocates or fails the current test.
#define ASSERT_ALLOC(var, pool, size)                                                        \
  StatusOr<Handle> var##_or = (pool).Alloc(size);                                            \
  ASSERT_TRUE(var##_or.ok()) << "Alloc(" << (size) << "): " << var##_or.status().ToString(); \
  const Handle var = *var##_or

// An allocation the test owns.
struct Zpage {
  Handle handle;
  size_t size;
  uint32_t tag;
};

// Allocates `size` bytes and fills them with the pattern of `tag`.
::testing::AssertionResult AllocFilled(ZbudPool& pool, size_t size, uint32_t tag, Zpage* out) {
  StatusOr<Handle> h = pool.Alloc(size);
  if (!h.ok()) {
    return ::testing::AssertionFailure() << "Alloc(" << size << "): " << h.status().ToString();
  }
  Fill(pool, *h, size, tag);
  *out = Zpage{*h, size, tag};
  return ::testing::AssertionSuccess();
}

// A PageArena whose AllocPage fails on demand.
class FailingArena : public PageArena {
 public:
  void* AllocPage() override {
    if (fail.load()) {
      failed_calls.fetch_add(1);
      return nullptr;
    }
    return PageArena::AllocPage();
  }

  std::atomic<bool> fail{false};
  std::atomic<int> failed_calls{0};
};

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

// ---- Randomized model-based test ------------------------------------------------------------

// A reference model of the pool built from handles only: which live zpage sits in which zbud
// page, the LRU of pages by last allocation, and how many one-buddy pages have each number of
// free chunks. Checks Alloc's choice of page and slot, Free's release of pages and
// ReclaimPage's order, statuses and page accounting against it.
class ZbudModelTest : public ::testing::TestWithParam<uint64_t> {
 protected:
  struct ModelPage {
    Handle first = 0;  // 0 when free.
    Handle last = 0;
  };
  struct LiveZpage {
    size_t size;
    uint32_t tag;
  };
  struct Evicted {
    std::vector<uint8_t> bytes;
    uint32_t tag;
  };
  // The reclaim attempt on one page as the model predicts it.
  struct Attempt {
    bool open = false;
    uintptr_t page = 0;
    std::vector<Handle> expected;  // Evict calls due, in order.
    size_t next = 0;
  };

  ZbudModelTest() : pool_(&arena_, [this](ZbudPool& p, Handle h) { return Evict(p, h); }) {}

  int Chunks(Handle h) const { return h == 0 ? 0 : ChunksOf(live_.at(h).size); }
  int FreeChunks(const ModelPage& mp) const {
    return kUsableChunks - Chunks(mp.first) - Chunks(mp.last);
  }
  // Removes a page's contribution to the free-chunk histogram and the buddied count.
  void Uncount(uintptr_t page) {
    const ModelPage& mp = pages_.at(page);
    if (mp.first != 0 && mp.last != 0) {
      --buddied_;
    } else {
      --unbuddied_by_free_[FreeChunks(mp)];
    }
  }
  void Count(uintptr_t page) {
    const ModelPage& mp = pages_.at(page);
    if (mp.first != 0 && mp.last != 0) {
      ++buddied_;
    } else {
      ++unbuddied_by_free_[FreeChunks(mp)];
    }
  }
  void LruToFront(uintptr_t page) {
    if (auto it = lru_pos_.find(page); it != lru_pos_.end()) lru_.erase(it->second);
    lru_.push_front(page);
    lru_pos_[page] = lru_.begin();
  }
  void LruRemove(uintptr_t page) {
    auto it = lru_pos_.find(page);
    lru_.erase(it->second);
    lru_pos_.erase(it);
  }
  // Drops handle h from the model (its page must not be under reclaim).
  void ForgetHandle(Handle h, bool under_reclaim) {
    const uintptr_t page = PageOf(h);
    ModelPage& mp = pages_.at(page);
    if (!under_reclaim) Uncount(page);
    (mp.first == h ? mp.first : mp.last) = 0;
    live_.erase(h);
    if (mp.first == 0 && mp.last == 0) {
      if (!under_reclaim) {
        LruRemove(page);
        pages_.erase(page);
      }
    } else if (!under_reclaim) {
      Count(page);
    }
  }

  size_t RandomSize() {
    static constexpr size_t kEdges[] = {1, 63, 64, 65, 1984, 1985, 2048, 3904, 3905, 3967, 3968};
    const unsigned r = rng_() % 100;
    if (r < 50) return 1 + rng_() % 256;
    if (r < 80) return 1 + rng_() % 1024;
    if (r < 97) return 1 + rng_() % kMaxSize;
    return kEdges[rng_() % std::size(kEdges)];
  }

  void DoAlloc() {
    const size_t size = RandomSize();
    const int chunks = ChunksOf(size);
    int fit = -1;  // The free-chunk list the pool must take from, -1 for a new page.
    for (int i = chunks; i < kUsableChunks; ++i) {
      if (unbuddied_by_free_[i] > 0) {
        fit = i;
        break;
      }
    }
    SCOPED_TRACE(::testing::Message() << "Alloc(" << size << "), fitting list " << fit);
    const uint64_t pages_before = pool_.PoolPages();
    StatusOr<Handle> got = pool_.Alloc(size);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    const Handle h = *got;
    const uintptr_t page = PageOf(h);
    ASSERT_EQ(live_.count(h), 0u) << "handle handed out twice";
    if (fit < 0) {
      ASSERT_EQ(pages_.count(page), 0u) << "a full page was reused";
      EXPECT_EQ(pool_.PoolPages(), pages_before + 1);
      ASSERT_TRUE(IsFirstBuddy(h)) << "a new page's zpage is its first buddy";
      pages_[page] = ModelPage{};
    } else {
      ASSERT_EQ(pages_.count(page), 1u)
          << "a new page was taken although list " << fit << " had a page";
      EXPECT_EQ(pool_.PoolPages(), pages_before);
      const ModelPage& mp = pages_[page];
      ASSERT_TRUE(mp.first == 0 || mp.last == 0) << "a buddied page got a third zpage";
      ASSERT_EQ(FreeChunks(mp), fit) << "not the first non-empty list from " << chunks;
      if (mp.first == 0) {
        ASSERT_TRUE(IsFirstBuddy(h)) << "the free first slot must be used";
      } else {
        ASSERT_TRUE(IsRightJustified(h, size)) << "the last buddy must be right-justified";
      }
      Uncount(page);
    }
    const uint32_t tag = ++next_tag_;
    Fill(pool_, h, size, tag);
    live_[h] = LiveZpage{size, tag};
    ModelPage& mp = pages_[page];
    (IsFirstBuddy(h) ? mp.first : mp.last) = h;
    Count(page);
    LruToFront(page);
    live_vec_.push_back(h);
    ASSERT_NO_FATAL_FAILURE(CheckPageContents(page));  // The new zpage and its buddy.
  }

  // Verifies the bytes of the live zpages of one page.
  void CheckPageContents(uintptr_t page) {
    auto it = pages_.find(page);
    if (it == pages_.end()) return;
    for (Handle h : {it->second.first, it->second.last}) {
      if (h == 0) continue;
      const LiveZpage& z = live_.at(h);
      ASSERT_TRUE(HasPattern(pool_, h, z.size, z.tag));
    }
  }

  void DoFree() {
    const size_t i = rng_() % live_vec_.size();
    const Handle h = live_vec_[i];
    live_vec_[i] = live_vec_.back();
    live_vec_.pop_back();
    const LiveZpage z = live_.at(h);
    ASSERT_TRUE(HasPattern(pool_, h, z.size, z.tag));
    pool_.Free(h);
    ForgetHandle(h, /*under_reclaim=*/false);
    ASSERT_NO_FATAL_FAILURE(CheckPageContents(PageOf(h)));  // The buddy left behind.
  }

  // The evict callback: checks the call against the model's prediction, then refuses or
  // moves the zpage into the evicted set and frees it.
  Status Evict(ZbudPool& p, Handle h) {
    ++evict_calls_;
    if (!attempt_.open) {
      if (lru_.empty()) {
        ADD_FAILURE() << "evict called with an empty model LRU";
        model_broken_ = true;
        return Status::Error(EINVAL, "model");
      }
      attempt_ = Attempt{};
      attempt_.open = true;
      attempt_.page = lru_.back();
      const ModelPage& mp = pages_.at(attempt_.page);
      if (mp.first != 0) attempt_.expected.push_back(mp.first);
      if (mp.last != 0) attempt_.expected.push_back(mp.last);
      Uncount(attempt_.page);  // Off every list while under reclaim.
      LruRemove(attempt_.page);
      ++attempts_;
    }
    if (attempt_.next >= attempt_.expected.size() || attempt_.expected[attempt_.next] != h) {
      ADD_FAILURE() << "evict(0x" << std::hex << h << ") but the model expected "
                    << (attempt_.next < attempt_.expected.size() ? attempt_.expected[attempt_.next]
                                                                 : Handle{0})
                    << " from LRU-tail page 0x" << attempt_.page;
      model_broken_ = true;
      return Status::Error(EINVAL, "model");
    }
    ++attempt_.next;
    const LiveZpage z = live_.at(h);
    EXPECT_TRUE(HasPattern(p, h, z.size, z.tag));
    if (rng_() % 100 < 30) {  // Refuse: the page goes back to the lists and the LRU head.
      CloseAttempt();
      return Status::Error(EBUSY, "test: refused");
    }
    evicted_.push_back(Evicted{CopyOut(p, h, z.size), z.tag});
    ForgetHandle(h, /*under_reclaim=*/true);
    live_vec_.erase(std::find(live_vec_.begin(), live_vec_.end(), h));
    p.Free(h);
    if (attempt_.next == attempt_.expected.size()) {
      // Both buddies gone: the pool frees the page and ReclaimPage returns OK.
      attempt_.open = false;
      freed_by_reclaim_ = true;
      pages_.erase(attempt_.page);
    }
    return Status::OK();
  }

  void CloseAttempt() {
    attempt_.open = false;
    returned_pages_.push_back(attempt_.page);
    Count(attempt_.page);
    LruToFront(attempt_.page);
  }

  void DoReclaim() {
    const unsigned retries = rng_() % 4;  // 0 is an error.
    const uint64_t pages_before = pool_.PoolPages();
    const bool was_empty = pages_.empty();
    attempts_ = 0;
    freed_by_reclaim_ = false;
    returned_pages_.clear();
    const uint64_t calls_before = evict_calls_;
    Status st = pool_.ReclaimPage(retries);
    ASSERT_FALSE(model_broken_);
    ASSERT_FALSE(attempt_.open) << "ReclaimPage returned in the middle of a page";
    SCOPED_TRACE(::testing::Message() << "ReclaimPage(" << retries << ") = " << st.ToString());
    if (retries == 0 || was_empty) {
      EXPECT_EQ(st.code(), EINVAL);
      EXPECT_EQ(evict_calls_, calls_before);
      EXPECT_EQ(pool_.PoolPages(), pages_before);
    } else if (freed_by_reclaim_) {
      EXPECT_TRUE(st.ok());
      EXPECT_LE(attempts_, retries);
      EXPECT_EQ(pool_.PoolPages(), pages_before - 1);
    } else {
      EXPECT_EQ(st.code(), EAGAIN);
      EXPECT_EQ(attempts_, retries) << "each retry walks one page";
      EXPECT_EQ(pool_.PoolPages(), pages_before);
    }
    // The zpages left on pages that went back to the lists.
    for (uintptr_t page : returned_pages_) ASSERT_NO_FATAL_FAILURE(CheckPageContents(page));
  }

  // Every step: page counts against the model.
  void CheckCounts() {
    ASSERT_EQ(pool_.PoolPages(), pages_.size());
    ASSERT_EQ(pool_.BuddiedPages(), buddied_);
    ASSERT_EQ(arena_.PagesInUse(), pages_.size());
  }

  // Every 1000 steps: the page model recomputed from the live handles alone, and every byte.
  void FullCheck() {
    std::map<uintptr_t, std::vector<Handle>> by_page;
    for (const auto& [h, z] : live_) by_page[PageOf(h)].push_back(h);
    ASSERT_EQ(pool_.PoolPages(), by_page.size());
    uint64_t buddied = 0;
    for (auto& [page, hs] : by_page) {
      ASSERT_LE(hs.size(), 2u) << "page 0x" << std::hex << page;
      std::sort(hs.begin(), hs.end());
      int chunks = 0;
      for (Handle h : hs) chunks += ChunksOf(live_.at(h).size);
      ASSERT_LE(chunks, kUsableChunks);
      if (hs.size() == 2) {
        ++buddied;
        ASSERT_TRUE(IsFirstBuddy(hs[0]));
        ASSERT_TRUE(IsRightJustified(hs[1], live_.at(hs[1]).size));
      } else {
        ASSERT_TRUE(IsFirstBuddy(hs[0]) || IsRightJustified(hs[0], live_.at(hs[0]).size));
      }
      const ModelPage& mp = pages_.at(page);
      ASSERT_EQ(hs.size(), size_t{mp.first != 0} + size_t{mp.last != 0});
    }
    ASSERT_EQ(pool_.BuddiedPages(), buddied);
    ASSERT_EQ(lru_.size(), pages_.size());
    for (const auto& [h, z] : live_) ASSERT_TRUE(HasPattern(pool_, h, z.size, z.tag));
    for (const Evicted& e : evicted_) ASSERT_TRUE(CopyHasPattern(e.bytes, e.tag));
  }

  PageArena arena_;
  ZbudPool pool_;
  std::mt19937_64 rng_;
  std::unordered_map<Handle, LiveZpage> live_;
  std::vector<Handle> live_vec_;  // The keys of live_, for random picks.
  std::map<uintptr_t, ModelPage> pages_;
  std::list<uintptr_t> lru_;  // Front: most recently allocated into.
  std::unordered_map<uintptr_t, std::list<uintptr_t>::iterator> lru_pos_;
  std::array<int, kUsableChunks + 1> unbuddied_by_free_{};
  uint64_t buddied_ = 0;
  std::vector<Evicted> evicted_;
  uint32_t next_tag_ = 0;
  Attempt attempt_;
  unsigned attempts_ = 0;
  std::vector<uintptr_t> returned_pages_;  // Pages a failed attempt put back, this reclaim.
  bool freed_by_reclaim_ = false;
  bool model_broken_ = false;
  uint64_t evict_calls_ = 0;
};

TEST_P(ZbudModelTest, RandomOperationsMatchTheReferenceModel) {
  const uint64_t seed = GetParam();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  rng_.seed(seed);
  constexpr int kSteps = 100000;
  size_t target = 500;  // Working-set size the alloc/free mix drifts toward.
  uint64_t reclaims = 0;
  for (int step = 0; step < kSteps; ++step) {
    SCOPED_TRACE(::testing::Message() << "step " << step);
    if (step % 10000 == 0) target = std::array<size_t, 4>{20, 300, 1500, 4000}[rng_() % 4];
    const unsigned r = rng_() % 1000;
    if (r < 15) {
      ASSERT_NO_FATAL_FAILURE(DoReclaim());
      ++reclaims;
    } else if (live_vec_.empty() || r < (live_.size() < target ? 650u : 350u)) {
      ASSERT_NO_FATAL_FAILURE(DoAlloc());
    } else {
      ASSERT_NO_FATAL_FAILURE(DoFree());
    }
    ASSERT_NO_FATAL_FAILURE(CheckCounts());
    if (step % 1000 == 999) {
      ASSERT_NO_FATAL_FAILURE(FullCheck());
    }
  }
  EXPECT_GT(reclaims, 0u);
  EXPECT_GT(evicted_.size(), 0u);
  // Drain: everything left is freed and the pool gives every page back.
  for (const auto& [h, z] : live_) pool_.Free(h);
  EXPECT_EQ(pool_.PoolPages(), 0u);
  EXPECT_EQ(pool_.BuddiedPages(), 0u);
  EXPECT_EQ(arena_.PagesInUse(), 0u);
  live_.clear();
}

INSTANTIATE_TEST_SUITE_P(Seeds, ZbudModelTest, ::testing::Values(1, 0x5eed, 20240607));

// ---- Multi-threaded -------------------------------------------------------------------------

// Four threads allocate, fill, verify and free their own zpages while a fifth reclaims. Each
// worker's zpages are guarded by its own lock; the evict callback re-checks ownership under
// that lock, then refuses, moves the zpage to a new allocation in the pool, or copies it out
// and frees it.
TEST(ZbudPoolTest, ConcurrentAllocFreeReclaim) {
  constexpr int kWorkers = 4;
  constexpr int kOpsPerWorker = 50000;
  constexpr uint64_t kMinReclaims = 500;
  constexpr uint64_t kReclaimAbovePages = 100;
  struct Shard {
    std::mutex mu;
    std::unordered_map<Handle, Zpage> owned;
    std::vector<Handle> handles;  // The keys of owned, for random picks.
    void Add(const Zpage& z) {
      owned[z.handle] = z;
      handles.push_back(z.handle);
    }
    void Remove(Handle h) {
      owned.erase(h);
      for (size_t i = 0; i < handles.size(); ++i) {
        if (handles[i] == h) {
          handles[i] = handles.back();
          handles.pop_back();
          return;
        }
      }
    }
  };
  PageArena arena;
  ZbudPool pool(&arena, nullptr);
  std::array<Shard, kWorkers> shards;
  std::atomic<uint32_t> next_tag{0};
  std::atomic<uint64_t> evict_calls{0}, written_back{0}, migrated{0}, refused{0}, stale{0};
  std::atomic<uint64_t> reclaim_ok{0}, reclaim_again{0}, reclaim_einval{0};
  std::atomic<bool> stop{false};
  std::atomic<int> evict_waiting{0};  // Evict callbacks waiting for a shard's lock.

  pool.SetEvict([&](ZbudPool& p, Handle h) -> Status {
    // A pseudo-random roll in 0..63 per call: refuse a quarter, migrate a quarter.
    uint64_t mix = (evict_calls.fetch_add(1) + 1) * 0x9E3779B97F4A7C15ULL;  // splitmix64.
    mix = (mix ^ (mix >> 30)) * 0xBF58476D1CE4E5B9ULL;
    mix = (mix ^ (mix >> 27)) * 0x94D049BB133111EBULL;
    const unsigned roll = static_cast<unsigned>((mix ^ (mix >> 31)) >> 58);
    for (Shard& s : shards) {
      evict_waiting.fetch_add(1);
      std::lock_guard<std::mutex> lock(s.mu);
      evict_waiting.fetch_sub(1);
      auto it = s.owned.find(h);
      if (it == s.owned.end()) continue;
      const Zpage z = it->second;
      EXPECT_TRUE(HasPattern(p, h, z.size, z.tag));
      if (roll < 16) {
        refused.fetch_add(1);
        return Status::Error(EBUSY, "test: refused");
      }
      if (roll < 32) {
        StatusOr<Handle> moved = p.Alloc(z.size);
        if (moved.ok()) {
          EXPECT_NE(PageOf(*moved), PageOf(h)) << "allocated into the page under reclaim";
          std::memcpy(p.Map(*moved), p.Map(h), z.size);
          s.Remove(h);
          s.Add(Zpage{*moved, z.size, z.tag});
          p.Free(h);
          migrated.fetch_add(1);
          return Status::OK();
        }
      }
      const std::vector<uint8_t> copy = CopyOut(p, h, z.size);
      EXPECT_TRUE(CopyHasPattern(copy, z.tag));
      s.Remove(h);
      p.Free(h);
      written_back.fetch_add(1);
      return Status::OK();
    }
    stale.fetch_add(1);
    return Status::OK();  // Freed by its owner meanwhile.
  });

  auto work = [&](int id) {
    Shard& s = shards[id];
    std::mt19937_64 rng(1000 + id);
    for (int op = 0; op < 20 * kOpsPerWorker; ++op) {
      if (op >= kOpsPerWorker && reclaim_ok.load() >= kMinReclaims) break;
      // std::mutex is not fair: let a waiting evict callback have the lock.
      while (evict_waiting.load() != 0) std::this_thread::yield();
      std::lock_guard<std::mutex> lock(s.mu);
      const unsigned r = rng() % 100;
      if (s.handles.empty() || r < (s.handles.size() < 300 ? 60u : 40u)) {
        const size_t size = rng() % 4 == 0 ? 200 + rng() % 1800 : 1 + rng() % kMaxSize;
        const uint32_t tag = next_tag.fetch_add(1);
        Zpage z;
        ASSERT_TRUE(AllocFilled(pool, size, tag, &z));
        s.Add(z);
      } else if (r < 90) {
        const Handle h = s.handles[rng() % s.handles.size()];
        const Zpage z = s.owned.at(h);
        ASSERT_TRUE(HasPattern(pool, h, z.size, z.tag));
        s.Remove(h);
        pool.Free(h);
      } else {
        const Handle h = s.handles[rng() % s.handles.size()];
        const Zpage z = s.owned.at(h);
        ASSERT_TRUE(HasPattern(pool, h, z.size, z.tag));
      }
    }
  };
  // The first worker to finish stops the reclaimer, so zpages are left to check at the end.
  auto worker = [&](int id) {
    work(id);
    stop = true;
  };
  std::thread reclaimer([&] {
    while (!stop.load()) {
      if (pool.PoolPages() < kReclaimAbovePages) {  // Keep a working set to check at the end.
        std::this_thread::yield();
        continue;
      }
      const Status st = pool.ReclaimPage(4);
      if (st.ok()) {
        reclaim_ok.fetch_add(1);
      } else if (st.code() == EAGAIN) {
        reclaim_again.fetch_add(1);
      } else if (st.code() == EINVAL) {
        reclaim_einval.fetch_add(1);  // The pool was empty at that moment.
        std::this_thread::yield();
      } else {
        ADD_FAILURE() << "ReclaimPage: " << st.ToString();
      }
    }
  });
  std::vector<std::thread> workers;
  for (int id = 0; id < kWorkers; ++id) workers.emplace_back(worker, id);
  for (std::thread& t : workers) t.join();
  reclaimer.join();

  RecordProperty("evict_calls", std::to_string(evict_calls.load()));
  EXPECT_GT(reclaim_ok.load(), 0u);
  EXPECT_GT(written_back.load() + migrated.load(), 0u);

  // Quiescent: every owned zpage intact, and the pool's counts match the handles.
  std::map<uintptr_t, int> per_page;
  size_t owned = 0;
  for (Shard& s : shards) {
    for (const auto& [h, z] : s.owned) {
      EXPECT_TRUE(HasPattern(pool, h, z.size, z.tag));
      ++per_page[PageOf(h)];
      ++owned;
    }
  }
  EXPECT_GT(owned, 0u) << "nothing left to check";
  uint64_t buddied = 0;
  for (const auto& [page, n] : per_page) {
    EXPECT_LE(n, 2);
    if (n == 2) ++buddied;
  }
  EXPECT_EQ(pool.PoolPages(), per_page.size());
  EXPECT_EQ(pool.BuddiedPages(), buddied);
  EXPECT_EQ(arena.PagesInUse(), per_page.size());
  for (Shard& s : shards) {
    for (const auto& [h, z] : s.owned) pool.Free(h);
  }
  EXPECT_EQ(pool.PoolPages(), 0u);
  EXPECT_EQ(arena.PagesInUse(), 0u);
  std::printf(
      "[ stats    ] owned at end %zu, reclaims ok/again/einval %llu/%llu/%llu, evictions "
      "written back %llu, migrated %llu, refused %llu, stale %llu\n",
      owned, static_cast<unsigned long long>(reclaim_ok.load()),
      static_cast<unsigned long long>(reclaim_again.load()),
      static_cast<unsigned long long>(reclaim_einval.load()),
      static_cast<unsigned long long>(written_back.load()),
      static_cast<unsigned long long>(migrated.load()),
      static_cast<unsigned long long>(refused.load()),
      static_cast<unsigned long long>(stale.load()));
}

}  // namespace
}  // namespace zbudfs

// Tests of PageArena (store/page_arena.h): page alignment and distinctness, PagesInUse, reuse
// of freed pages, more pages than one region, Trim unmapping wholly free regions only, RSS
// actually falling once the warm cache is exceeded, and two threads allocating and freeing
// at once.
#include "store/page_arena.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <latch>
#include <set>
#include <thread>
#include <vector>

namespace zbudfs {
namespace {

constexpr size_t kPage = kPageSize;

// Writes a recognizable word at both ends of a page.
void Stamp(void* page, uint64_t value) {
  std::memcpy(page, &value, sizeof(value));
  std::memcpy(static_cast<char*>(page) + kPage - sizeof(value), &value, sizeof(value));
}

::testing::AssertionResult HasStamp(const void* page, uint64_t value) {
  uint64_t head, tail;
  std::memcpy(&head, page, sizeof(head));
  std::memcpy(&tail, static_cast<const char*>(page) + kPage - sizeof(tail), sizeof(tail));
  if (head != value || tail != value) {
    return ::testing::AssertionFailure()
           << "page " << page << " holds " << head << "/" << tail << ", want " << value;
  }
  return ::testing::AssertionSuccess();
}

// Allocates n pages or fails the test; checks alignment and that none was handed out twice.
::testing::AssertionResult AllocPages(PageArena& arena, size_t n, std::vector<void*>* pages) {
  std::set<void*> seen(pages->begin(), pages->end());
  for (size_t i = 0; i < n; ++i) {
    void* page = arena.AllocPage();
    if (page == nullptr) return ::testing::AssertionFailure() << "AllocPage failed at " << i;
    if (reinterpret_cast<uintptr_t>(page) % kPage != 0) {
      return ::testing::AssertionFailure() << "page " << page << " is not 4096-aligned";
    }
    if (!seen.insert(page).second) {
      return ::testing::AssertionFailure() << "page " << page << " handed out twice";
    }
    pages->push_back(page);
  }
  return ::testing::AssertionSuccess();
}

TEST(PageArenaTest, PagesAreAlignedDistinctAndWholePagesAreUsable) {
  PageArena arena;
  std::vector<void*> pages;
  ASSERT_TRUE(AllocPages(arena, 300, &pages));
  // Every byte of every page can be written and keeps its value.
  for (size_t i = 0; i < pages.size(); ++i) std::memset(pages[i], static_cast<int>(i), kPage);
  for (size_t i = 0; i < pages.size(); ++i) {
    const auto* bytes = static_cast<const unsigned char*>(pages[i]);
    ASSERT_EQ(std::count(bytes, bytes + kPage, static_cast<unsigned char>(i)),
              static_cast<std::ptrdiff_t>(kPage))
        << "page " << i;
  }
  for (void* page : pages) arena.FreePage(page);
}

TEST(PageArenaTest, PagesInUseCountsAllocationsAndFrees) {
  PageArena arena;
  EXPECT_EQ(arena.PagesInUse(), 0u);
  std::vector<void*> pages;
  ASSERT_TRUE(AllocPages(arena, 10, &pages));
  EXPECT_EQ(arena.PagesInUse(), 10u);
  arena.FreePage(pages[3]);
  arena.FreePage(pages[7]);
  EXPECT_EQ(arena.PagesInUse(), 8u);
  void* again = arena.AllocPage();
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(arena.PagesInUse(), 9u);
  arena.FreePage(again);
  for (size_t i = 0; i < pages.size(); ++i) {
    if (i != 3 && i != 7) arena.FreePage(pages[i]);
  }
  EXPECT_EQ(arena.PagesInUse(), 0u);
}

TEST(PageArenaTest, FreedPagesAreReused) {
  // Within the warm cache and beyond it (the rest went back to the kernel, but stays mapped).
  for (size_t n : {size_t{20}, size_t{200}}) {
    SCOPED_TRACE(::testing::Message() << n << " pages");
    PageArena arena(/*warm_cache_pages=*/64);
    std::vector<void*> pages;
    ASSERT_TRUE(AllocPages(arena, n, &pages));
    for (void* page : pages) arena.FreePage(page);
    ASSERT_EQ(arena.PagesInUse(), 0u);
    std::vector<void*> again;
    ASSERT_TRUE(AllocPages(arena, n, &again));
    EXPECT_EQ(std::set<void*>(again.begin(), again.end()),
              std::set<void*>(pages.begin(), pages.end()));
    // Reused pages are writable again (cold ones were madvised away).
    for (size_t i = 0; i < again.size(); ++i) Stamp(again[i], i + 1);
    for (size_t i = 0; i < again.size(); ++i) EXPECT_TRUE(HasStamp(again[i], i + 1));
    for (void* page : again) arena.FreePage(page);
  }
}

TEST(PageArenaTest, MoreThanOneRegionOfPagesWork) {
  PageArena arena;
  const size_t n = 3 * PageArena::kRegionPages + 7;
  std::vector<void*> pages;
  ASSERT_TRUE(AllocPages(arena, n, &pages));
  EXPECT_EQ(arena.PagesInUse(), n);
  for (size_t i = 0; i < n; ++i) Stamp(pages[i], 0x1000 + i);
  for (size_t i = 0; i < n; ++i) ASSERT_TRUE(HasStamp(pages[i], 0x1000 + i)) << i;
  // Free every other page, reallocate them, then free everything.
  for (size_t i = 0; i < n; i += 2) arena.FreePage(pages[i]);
  EXPECT_EQ(arena.PagesInUse(), n / 2);
  std::vector<void*> refill;
  for (size_t i = 1; i < n; i += 2) refill.push_back(pages[i]);
  ASSERT_TRUE(AllocPages(arena, (n + 1) / 2, &refill));
  EXPECT_EQ(arena.PagesInUse(), n);
  for (size_t i = 1; i < n; i += 2) EXPECT_TRUE(HasStamp(pages[i], 0x1000 + i));
  for (void* page : refill) arena.FreePage(page);
  EXPECT_EQ(arena.PagesInUse(), 0u);
}

// Trim unmaps exactly the regions whose every page is free and cold, keeps the rest usable,
// and is a no-op until a region's worth of pages has gone cold since it last ran.
TEST(PageArenaTest, TrimUnmapsOnlyWhollyColdRegions) {
  PageArena arena(/*warm_cache_pages=*/0);  // Every freed page goes cold at once.
  const size_t n = 4 * PageArena::kRegionPages;
  std::vector<void*> pages;
  ASSERT_TRUE(AllocPages(arena, n, &pages));
  ASSERT_EQ(arena.Regions(), 4u);
  EXPECT_EQ(arena.Trim(), 0u) << "nothing is free";
  // Pages come out of a region in address order: pages[r * kRegionPages ...] is region r.
  // Free regions 0 and 2 wholly, and all of region 3 but one page.
  std::vector<void*> kept;
  std::vector<uint64_t> stamps;
  for (size_t i = 0; i < n; ++i) {
    const size_t region = i / PageArena::kRegionPages;
    const bool last_of_3 = i == n - 1;
    if (region == 0 || region == 2 || (region == 3 && !last_of_3)) {
      arena.FreePage(pages[i]);
    } else {
      Stamp(pages[i], 0x5000 + i);
      kept.push_back(pages[i]);
      stamps.push_back(0x5000 + i);
    }
  }
  EXPECT_EQ(arena.Trim(), 2u);
  EXPECT_EQ(arena.Regions(), 2u);
  EXPECT_EQ(arena.PagesInUse(), kept.size());
  for (size_t i = 0; i < kept.size(); ++i) ASSERT_TRUE(HasStamp(kept[i], stamps[i]));
  EXPECT_EQ(arena.Trim(), 0u) << "nothing went cold since";
  // The cold pages left (region 3's) are still handed out, and they are region 3's.
  std::vector<void*> again;
  ASSERT_TRUE(AllocPages(arena, PageArena::kRegionPages - 1, &again));
  const char* r3 = static_cast<char*>(pages[3 * PageArena::kRegionPages]);
  for (void* p : again) {
    ASSERT_GE(static_cast<char*>(p), r3);
    ASSERT_LT(static_cast<char*>(p), r3 + PageArena::kRegionPages * kPage);
    std::memset(p, 0x5A, kPage);  // Mapped and writable.
  }
  EXPECT_EQ(arena.Regions(), 2u) << "no new mapping was needed";
  for (void* p : again) arena.FreePage(p);
  for (void* p : kept) arena.FreePage(p);
  EXPECT_EQ(arena.Trim(), 2u);
  EXPECT_EQ(arena.Regions(), 0u);
  EXPECT_EQ(arena.PagesInUse(), 0u);
  // And it grows again from nothing.
  std::vector<void*> fresh;
  ASSERT_TRUE(AllocPages(arena, 3, &fresh));
  for (void* p : fresh) arena.FreePage(p);
}

// Resident set size in bytes, from /proc/self/statm.
long ResidentBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  long size = 0, resident = -1;
  if (std::fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
  std::fclose(f);
  return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

TEST(PageArenaTest, RssFallsAfterFreeingPagesBeyondTheWarmCache) {
  // Runs under ASan and TSan too: their shadow memory stays resident, but the 64 MiB the
  // arena gives back still leave (checked stable there).
  constexpr size_t kBytes = size_t{64} << 20;
  constexpr size_t kPages = kBytes / kPage;
  PageArena arena(/*warm_cache_pages=*/64);
  std::vector<void*> pages;
  pages.reserve(kPages);  // Keep the vector's own growth out of the measurement.
  const long before = ResidentBytes();
  ASSERT_GE(before, 0) << "cannot read /proc/self/statm";
  ASSERT_TRUE(AllocPages(arena, kPages, &pages));
  for (void* page : pages) std::memset(page, 0xA5, kPage);
  const long touched = ResidentBytes();
  ASSERT_GE(touched - before, static_cast<long>(kBytes / 2)) << "touching did not fault in";
  for (void* page : pages) arena.FreePage(page);
  const long freed = ResidentBytes();
  EXPECT_EQ(arena.PagesInUse(), 0u);
  EXPECT_GE(touched - freed, static_cast<long>(kBytes / 2))
      << "RSS before " << before << ", touched " << touched << ", after free " << freed;
}

// A delete frees pages under a DeferredFree (one madvise per contiguous stretch): at most
// defer_pages of them stay resident meanwhile, all leave when it ends, and every page is
// handed out again afterwards. Nested ones do nothing; another arena's pages are not held.
TEST(PageArenaTest, DeferredFreeGivesPagesBackInBatches) {
  constexpr size_t kBytes = size_t{64} << 20;
  constexpr size_t kPages = kBytes / kPage;
  PageArena arena(/*warm_cache_pages=*/64, /*defer_pages=*/1024);
  PageArena other(/*warm_cache_pages=*/0);
  std::vector<void*> pages;
  pages.reserve(kPages);
  ASSERT_TRUE(AllocPages(arena, kPages, &pages));
  for (void* page : pages) std::memset(page, 0xA5, kPage);
  void* foreign = other.AllocPage();
  ASSERT_NE(foreign, nullptr);
  const long touched = ResidentBytes();
  ASSERT_GE(touched, 0) << "cannot read /proc/self/statm";
  {
    PageArena::DeferredFree deferred(&arena);
    PageArena::DeferredFree nested(&arena);
    for (void* page : pages) arena.FreePage(page);
    other.FreePage(foreign);  // Not this batch's arena: given back at once.
    const long during = ResidentBytes();
    // A batch is 4 MiB: half the 64 MiB leaves even with sanitizers' shadow (as above).
    EXPECT_GE(touched - during, static_cast<long>(kBytes / 2)) << "at most a batch stays";
  }
  const long freed = ResidentBytes();
  EXPECT_EQ(arena.PagesInUse(), 0u);
  EXPECT_GE(touched - freed, static_cast<long>(kBytes / 2));
  std::vector<void*> again;
  ASSERT_TRUE(AllocPages(arena, kPages, &again));
  std::sort(pages.begin(), pages.end());
  std::sort(again.begin(), again.end());
  EXPECT_EQ(pages, again) << "every freed page is handed out again, none lost in a batch";
  EXPECT_EQ(arena.Regions(), kPages / PageArena::kRegionPages);
  for (void* page : again) arena.FreePage(page);
}

TEST(PageArenaTest, ConcurrentAllocFreeOnTwoThreads) {
  PageArena arena(/*warm_cache_pages=*/16);
  constexpr int kRounds = 40;
  constexpr size_t kBatch = 700;  // More than a region per batch: both threads map regions.
  auto run = [&](uint64_t id) {
    std::vector<void*> held;
    for (int round = 0; round < kRounds; ++round) {
      for (size_t i = 0; i < kBatch; ++i) {
        void* page = arena.AllocPage();
        ASSERT_NE(page, nullptr);
        ASSERT_EQ(reinterpret_cast<uintptr_t>(page) % kPage, 0u);
        Stamp(page, (id << 32) | held.size());
        held.push_back(page);
      }
      // Free a varying share; the other thread's stamps would show if a page were shared.
      const size_t keep = round % 3 == 0 ? 0 : held.size() / 2;
      for (size_t i = 0; i < held.size(); ++i) ASSERT_TRUE(HasStamp(held[i], (id << 32) | i));
      for (size_t i = keep; i < held.size(); ++i) arena.FreePage(held[i]);
      held.resize(keep);
    }
    for (size_t i = 0; i < held.size(); ++i) ASSERT_TRUE(HasStamp(held[i], (id << 32) | i));
    for (void* page : held) arena.FreePage(page);
  };
  std::thread a(run, 1), b(run, 2);
  a.join();
  b.join();
  EXPECT_EQ(arena.PagesInUse(), 0u);
}

// Frees past the warm cache wait in the spare list, resident, up to its bound: the next
// allocations take them back first; passing the bound gives the whole list back, and
// FlushSpare gives back what is left. Frees under a DeferredFree join the list when it ends.
TEST(PageArenaTest, SpareListHoldsFreesUpToItsBoundAndIsReusedFirst) {
  PageArena arena(/*warm_cache_pages=*/4, /*defer_pages=*/1024, /*spare_pages=*/16);
  std::vector<void*> pages;
  ASSERT_TRUE(AllocPages(arena, 40, &pages));
  for (size_t i = 0; i < 4 + 10; ++i) arena.FreePage(pages[i]);
  EXPECT_EQ(arena.SparePages(), 10u) << "4 warm, 10 spare";
  std::vector<void*> again;
  ASSERT_TRUE(AllocPages(arena, 14, &again));
  EXPECT_EQ(arena.SparePages(), 0u);
  std::set<void*> freed(pages.begin(), pages.begin() + 14);
  for (void* page : again) EXPECT_TRUE(freed.count(page)) << "a spare page is reused first";
  for (void* page : again) arena.FreePage(page);              // 4 warm, 10 spare.
  for (size_t i = 14; i < 20; ++i) arena.FreePage(pages[i]);  // 16: the bound, given back.
  EXPECT_EQ(arena.SparePages(), 0u);
  {
    PageArena::DeferredFree deferred(&arena);
    for (size_t i = 20; i < 25; ++i) arena.FreePage(pages[i]);
    EXPECT_EQ(arena.SparePages(), 0u) << "held by the DeferredFree until it ends";
  }
  EXPECT_EQ(arena.SparePages(), 5u);
  arena.FlushSpare();
  EXPECT_EQ(arena.SparePages(), 0u);
  for (size_t i = 25; i < pages.size(); ++i) arena.FreePage(pages[i]);
  EXPECT_EQ(arena.PagesInUse(), 0u);
  std::vector<void*> all;
  ASSERT_TRUE(AllocPages(arena, 40, &all));
  std::sort(pages.begin(), pages.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(pages, all) << "every page comes back, none lost between the lists";
  for (void* page : all) arena.FreePage(page);
}

// Two threads start on an empty arena at once, so both are likely to map a region at the same
// time; the pages left in the region mapped first must still be handed out once only.
TEST(PageArenaTest, ConcurrentFirstAllocationsFromAFreshArenaAreDistinct) {
  constexpr size_t kPerThread = PageArena::kRegionPages + 100;
  for (int round = 0; round < 400; ++round) {
    SCOPED_TRACE(::testing::Message() << "round " << round);
    PageArena arena;
    std::latch start(2);
    std::vector<void*> got[2];
    auto run = [&](int id) {
      start.arrive_and_wait();
      for (size_t i = 0; i < kPerThread; ++i) got[id].push_back(arena.AllocPage());
    };
    std::thread a(run, 0), b(run, 1);
    a.join();
    b.join();
    std::set<void*> all;
    for (const auto& pages : got) {
      for (void* page : pages) {
        ASSERT_NE(page, nullptr);
        EXPECT_TRUE(all.insert(page).second) << "page " << page << " handed out twice";
      }
    }
    EXPECT_EQ(arena.PagesInUse(), 2 * kPerThread);
    for (void* page : all) arena.FreePage(page);
  }
}

}  // namespace
}  // namespace zbudfs

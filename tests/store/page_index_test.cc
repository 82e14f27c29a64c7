// Unit tests of PageIndex: entries, sparse chunks, the NextPresent/NextHole/CountPresent/ForEach/
// EraseRange walks against a brute-force std::set model, and the index's memory per page.
#include "store/page_index.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <iterator>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ZBUDFS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define ZBUDFS_SANITIZED 1
#endif
#endif

namespace zbudfs {
namespace {

constexpr uint64_t kChunk = PageIndex::kChunkPages;
constexpr uint64_t kNone = PageIndex::kNone;

// A present entry whose fields identify the page it was stored for.
PageEntry EntryFor(uint64_t page, uint8_t kind = PageEntry::kZbud) {
  PageEntry e;
  e.kind = kind;
  e.value = page * 2654435761u + 17;
  e.length = static_cast<uint32_t>(page % 3969);
  return e;
}

bool SameEntry(const PageEntry& a, const PageEntry& b) {
  return a.kind == b.kind && a.value == b.value && a.length == b.length && a.flags == b.flags;
}

// Brute-force reference answers over a std::set of present pages.
uint64_t ModelNextPresent(const std::set<uint64_t>& m, uint64_t page) {
  auto it = m.lower_bound(page);
  return it == m.end() ? kNone : *it;
}

uint64_t ModelNextHole(const std::set<uint64_t>& m, uint64_t page) {
  while (m.count(page) != 0) ++page;
  return page;
}

TEST(PageIndexTest, SetFindErase) {
  PageIndex index;
  EXPECT_EQ(index.size(), 0u);
  EXPECT_EQ(index.chunks(), 0u);
  EXPECT_EQ(index.Find(5), nullptr);

  PageEntry old = index.Set(5, EntryFor(5));
  EXPECT_FALSE(old.present());
  ASSERT_NE(index.Find(5), nullptr);
  EXPECT_TRUE(SameEntry(*index.Find(5), EntryFor(5)));
  EXPECT_EQ(index.size(), 1u);
  EXPECT_EQ(index.chunks(), 1u);
  // Neighbours in the same chunk stay holes.
  EXPECT_EQ(index.Find(4), nullptr);
  EXPECT_EQ(index.Find(6), nullptr);

  // Replacing returns the previous entry and keeps the count.
  PageEntry raw = EntryFor(500, PageEntry::kRaw);
  old = index.Set(5, raw);
  EXPECT_TRUE(SameEntry(old, EntryFor(5)));
  EXPECT_TRUE(SameEntry(*index.Find(5), raw));
  EXPECT_EQ(index.size(), 1u);

  // FindMutable edits in place.
  PageEntry* m = index.FindMutable(5);
  ASSERT_NE(m, nullptr);
  m->flags = 3;
  EXPECT_EQ(index.Find(5)->flags, 3);
  EXPECT_EQ(index.FindMutable(6), nullptr);

  // A second chunk.
  index.Set(kChunk, EntryFor(kChunk, PageEntry::kSame));
  EXPECT_EQ(index.size(), 2u);
  EXPECT_EQ(index.chunks(), 2u);

  // Erase returns what was there; erasing a hole returns kHole.
  old = index.Erase(5);
  EXPECT_EQ(old.kind, PageEntry::kRaw);
  EXPECT_EQ(old.flags, 3);
  EXPECT_EQ(index.Find(5), nullptr);
  EXPECT_FALSE(index.Erase(5).present());
  EXPECT_FALSE(index.Erase(7).present());
  EXPECT_FALSE(index.Erase(1u << 30).present());
  EXPECT_EQ(index.size(), 1u);
  EXPECT_EQ(index.chunks(), 1u) << "an emptied chunk is released";

  old = index.Erase(kChunk);
  EXPECT_EQ(old.kind, PageEntry::kSame);
  EXPECT_EQ(index.size(), 0u);
  EXPECT_EQ(index.chunks(), 0u);
  EXPECT_EQ(index.NextPresent(0), kNone);
  EXPECT_EQ(index.NextHole(0), 0u);
}

// Chunk 0 is held inline: a one-page file allocates nothing, and walks, range erases
// and hole searches cross from it to the map's chunks and back as if it were one of them.
TEST(PageIndexTest, InlineFirstChunkBehavesLikeTheOthers) {
  PageIndex index;
  const size_t empty = index.MemoryBytes();
  index.Set(0, EntryFor(0));
  EXPECT_EQ(index.MemoryBytes(), empty) << "no map node for chunk 0, its one entry inline";
  for (uint64_t p : {uint64_t{1}, kChunk - 1, kChunk, kChunk + 1, 3 * kChunk}) {
    index.Set(p, EntryFor(p));
  }
  EXPECT_EQ(index.chunks(), 3u);
  EXPECT_EQ(index.NextPresent(2), kChunk - 1);
  EXPECT_EQ(index.NextHole(kChunk - 1), kChunk + 2);
  EXPECT_EQ(index.CountPresent(1, kChunk + 1), 3u);
  std::vector<uint64_t> seen;
  index.ForEach(1, 4 * kChunk, [&](uint64_t p, const PageEntry&) { seen.push_back(p); });
  EXPECT_EQ(seen, (std::vector<uint64_t>{1, kChunk - 1, kChunk, kChunk + 1, 3 * kChunk}));
  seen.clear();
  index.EraseRange(0, kChunk + 1, [&](uint64_t p, const PageEntry& e) {
    EXPECT_TRUE(SameEntry(e, EntryFor(p)));
    seen.push_back(p);
  });
  EXPECT_EQ(seen, (std::vector<uint64_t>{0, 1, kChunk - 1, kChunk}));
  EXPECT_EQ(index.chunks(), 2u) << "the emptied chunk 0 is released";
  EXPECT_EQ(index.Find(0), nullptr);
  EXPECT_EQ(index.NextHole(0), 0u);
  EXPECT_EQ(index.NextPresent(0), kChunk + 1);
  EXPECT_EQ(index.size(), 2u);
  index.Set(kChunk - 1, EntryFor(kChunk - 1));  // Chunk 0 again, after the others exist.
  EXPECT_EQ(index.NextPresent(0), kChunk - 1);
  EXPECT_EQ(index.chunks(), 3u);
}

TEST(PageIndexTest, SparseOneTebibyteApart) {
  PageIndex index;
  const uint64_t far = uint64_t{1} << 38;  // 1 TiB / 4096 pages.
  index.Set(0, EntryFor(0));
  index.Set(far, EntryFor(far));
  EXPECT_EQ(index.size(), 2u);
  EXPECT_EQ(index.chunks(), 2u);
  EXPECT_LT(index.MemoryBytes(), 4096u) << "holes must cost nothing";

  EXPECT_EQ(index.NextPresent(0), 0u);
  EXPECT_EQ(index.NextPresent(1), far);
  EXPECT_EQ(index.NextPresent(far), far);
  EXPECT_EQ(index.NextPresent(far + 1), kNone);
  EXPECT_EQ(index.NextHole(0), 1u);
  EXPECT_EQ(index.NextHole(1), 1u);
  EXPECT_EQ(index.NextHole(far), far + 1);
  EXPECT_EQ(index.NextHole(far - 1), far - 1);
  EXPECT_EQ(index.CountPresent(0, kNone), 2u);
  EXPECT_EQ(index.CountPresent(1, far), 0u);
  EXPECT_EQ(index.CountPresent(1, far + 1), 1u);
  ASSERT_NE(index.Find(far), nullptr);
  EXPECT_TRUE(SameEntry(*index.Find(far), EntryFor(far)));
  EXPECT_EQ(index.Find(far - 1), nullptr);
  EXPECT_EQ(index.Find(far / 2), nullptr);

  std::vector<uint64_t> seen;
  index.ForEach(0, kNone, [&](uint64_t p, const PageEntry&) { seen.push_back(p); });
  EXPECT_EQ(seen, (std::vector<uint64_t>{0, far}));
}

// The chunk trie grows to its full height for the last page a file can hold, walks and
// erases across every level, and gives all its memory back once empty.
TEST(PageIndexTest, TrieSpansTheWholePageRange) {
  PageIndex index;
  const size_t empty = index.MemoryBytes();
  const uint64_t last = kNone - 1;  // The highest page number.
  const std::vector<uint64_t> pages = {
      0, kChunk, kChunk * kChunk, uint64_t{1} << 40, (uint64_t{1} << 57) + 5, last - kChunk, last};
  for (auto it = pages.rbegin(); it != pages.rend(); ++it) index.Set(*it, EntryFor(*it));
  ASSERT_EQ(index.size(), pages.size());
  EXPECT_EQ(index.chunks(), pages.size());
  for (uint64_t p : pages) {
    ASSERT_NE(index.Find(p), nullptr) << p;
    EXPECT_TRUE(SameEntry(*index.Find(p), EntryFor(p))) << p;
    EXPECT_EQ(index.Find(p + 1), nullptr) << p;
  }
  for (size_t i = 0; i + 1 < pages.size(); ++i) {
    EXPECT_EQ(index.NextPresent(pages[i] + 1), pages[i + 1]);
    EXPECT_EQ(index.NextHole(pages[i]), pages[i] + 1);
    EXPECT_EQ(index.CountPresent(pages[i], pages[i + 1]), 1u);
  }
  EXPECT_EQ(index.NextPresent(last), last);
  EXPECT_EQ(index.NextHole(last), kNone);
  // Seven paths down a ten-level trie, sharing only their top: nodes, not 2^58 slots.
  EXPECT_LT(index.MemoryBytes(), empty + 6 * 1024);
  // Erase from the middle of one level's range to the middle of another's.
  std::vector<uint64_t> erased;
  index.EraseRange(kChunk + 1, (uint64_t{1} << 57) + 6,
                   [&](uint64_t p, const PageEntry&) { erased.push_back(p); });
  EXPECT_EQ(erased,
            (std::vector<uint64_t>{kChunk * kChunk, uint64_t{1} << 40, (uint64_t{1} << 57) + 5}));
  EXPECT_EQ(index.chunks(), 4u);
  EXPECT_EQ(index.NextPresent(kChunk + 1), last - kChunk);
  erased.clear();
  index.EraseRange(0, kNone, [&](uint64_t p, const PageEntry&) { erased.push_back(p); });
  EXPECT_EQ(erased, (std::vector<uint64_t>{0, kChunk, last - kChunk, last}));
  EXPECT_EQ(index.size(), 0u);
  EXPECT_EQ(index.chunks(), 0u);
  EXPECT_EQ(index.MemoryBytes(), empty) << "an emptied trie frees its nodes";
  // And it grows again from nothing.
  index.Set(3 * kChunk, EntryFor(3 * kChunk));
  EXPECT_EQ(index.NextPresent(0), 3 * kChunk);
}

// One page in every 64th chunk: every chunk needs its own bottom node; still at most 64
// bytes a page (was 89).
TEST(PageIndexTest, SparseStridesStayCheap) {
  PageIndex index;
  constexpr uint64_t kStride = kChunk * kChunk;
  constexpr uint64_t kPages = 4096;
  for (uint64_t i = 1; i <= kPages; ++i) index.Set(i * kStride, EntryFor(i * kStride));
  ASSERT_EQ(index.chunks(), kPages);
  const double per_page = static_cast<double>(index.MemoryBytes()) / static_cast<double>(kPages);
  RecordProperty("sparse_bytes_per_page", std::to_string(per_page));
  EXPECT_LE(per_page, 64.0);
  EXPECT_EQ(index.MemoryBytes(), index.RecountBytes());
  uint64_t n = 0;
  for (uint64_t p = index.NextPresent(0); p != kNone; p = index.NextPresent(p + 1)) {
    ASSERT_EQ(p, ++n * kStride);
  }
  EXPECT_EQ(n, kPages);
}

TEST(PageIndexTest, WalksAcrossChunkBoundaries) {
  PageIndex index;
  // Chunks 0 and 1 full, chunk 2 missing, chunk 3 full but page 3*64+10 erased.
  for (uint64_t p = 0; p < 2 * kChunk; ++p) index.Set(p, EntryFor(p));
  for (uint64_t p = 3 * kChunk; p < 4 * kChunk; ++p) index.Set(p, EntryFor(p));
  index.Erase(3 * kChunk + 10);
  EXPECT_EQ(index.chunks(), 3u);
  EXPECT_EQ(index.NextHole(0), 2 * kChunk);
  EXPECT_EQ(index.NextHole(kChunk - 1), 2 * kChunk);
  EXPECT_EQ(index.NextHole(2 * kChunk + 5), 2 * kChunk + 5);
  EXPECT_EQ(index.NextHole(3 * kChunk), 3 * kChunk + 10);
  EXPECT_EQ(index.NextHole(3 * kChunk + 11), 4 * kChunk);
  EXPECT_EQ(index.NextPresent(2 * kChunk), 3 * kChunk);
  EXPECT_EQ(index.NextPresent(3 * kChunk + 10), 3 * kChunk + 11);
  EXPECT_EQ(index.NextPresent(4 * kChunk - 1), 4 * kChunk - 1);
  EXPECT_EQ(index.NextPresent(4 * kChunk), kNone);
  EXPECT_EQ(index.CountPresent(0, kNone), 3 * kChunk - 1);
  EXPECT_EQ(index.CountPresent(kChunk - 1, 3 * kChunk + 11), 1 + kChunk + 10);
  EXPECT_EQ(index.NextPresent(kNone), kNone);
  EXPECT_EQ(index.NextHole(kNone), kNone);
}

TEST(PageIndexTest, EraseRangeOrderAndBounds) {
  PageIndex index;
  std::set<uint64_t> model;
  for (uint64_t p = 0; p < 5 * kChunk; p += 3) {
    index.Set(p, EntryFor(p));
    model.insert(p);
  }
  const uint64_t first = kChunk - 5, last = 3 * kChunk + 7;  // Mid-chunk on both sides.
  std::vector<uint64_t> erased;
  index.EraseRange(first, last, [&](uint64_t p, const PageEntry& e) {
    EXPECT_TRUE(SameEntry(e, EntryFor(p))) << "page " << p;
    erased.push_back(p);
  });
  std::vector<uint64_t> want(model.lower_bound(first), model.lower_bound(last));
  EXPECT_EQ(erased, want) << "in order, exactly [first, last)";
  for (uint64_t p : want) model.erase(p);
  EXPECT_EQ(index.size(), model.size());
  // Chunks 1 and 2 lost all their pages and are released; chunks 0, 3 and 4 remain.
  EXPECT_EQ(index.chunks(), 3u);
  for (uint64_t p = 0; p < 5 * kChunk; ++p) {
    EXPECT_EQ(index.Find(p) != nullptr, model.count(p) == 1) << "page " << p;
  }
  // Empty and inverted ranges do nothing.
  int calls = 0;
  index.EraseRange(10, 10, [&](uint64_t, const PageEntry&) { ++calls; });
  index.EraseRange(20, 10, [&](uint64_t, const PageEntry&) { ++calls; });
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(index.size(), model.size());
  // To the end.
  erased.clear();
  index.EraseRange(4 * kChunk + 1, kNone,
                   [&](uint64_t p, const PageEntry&) { erased.push_back(p); });
  want.assign(model.lower_bound(4 * kChunk + 1), model.end());
  EXPECT_EQ(erased, want);
  for (uint64_t p : want) model.erase(p);
  EXPECT_EQ(index.size(), model.size());
  index.EraseRange(0, kNone, [](uint64_t, const PageEntry&) {});
  EXPECT_EQ(index.size(), 0u);
  EXPECT_EQ(index.chunks(), 0u);
}

TEST(PageIndexTest, ForEachOrderAndBounds) {
  PageIndex index;
  const std::vector<uint64_t> pages = {0, 1, 63, 64, 65, 127, 128, 1000, 4095, 4096, 1u << 20};
  for (uint64_t p : pages) index.Set(p, EntryFor(p));
  auto collect = [&](uint64_t a, uint64_t b) {
    std::vector<uint64_t> out;
    index.ForEach(a, b, [&](uint64_t p, const PageEntry& e) {
      EXPECT_TRUE(SameEntry(e, EntryFor(p)));
      out.push_back(p);
    });
    return out;
  };
  EXPECT_EQ(collect(0, kNone), pages);
  EXPECT_EQ(collect(1, 64), (std::vector<uint64_t>{1, 63}));
  EXPECT_EQ(collect(63, 66), (std::vector<uint64_t>{63, 64, 65}));
  EXPECT_EQ(collect(64, 64), std::vector<uint64_t>{});
  EXPECT_EQ(collect(66, 127), std::vector<uint64_t>{});
  EXPECT_EQ(collect(129, 4097), (std::vector<uint64_t>{1000, 4095, 4096}));
  EXPECT_EQ(collect(5000, 1u << 20), std::vector<uint64_t>{});
  EXPECT_EQ(collect(5000, (1u << 20) + 1), (std::vector<uint64_t>{1u << 20}));
  EXPECT_EQ(index.size(), pages.size()) << "ForEach does not change the index";
}

// Random sets of pages clustered around chunk boundaries and far apart, checked against a
// std::set at many query points.
TEST(PageIndexTest, RandomAgainstSetModel) {
  const uint64_t seed = 20240611;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const uint64_t bases[] = {0, 10 * kChunk, (uint64_t{1} << 38) - 3 * kChunk / 2,
                            (uint64_t{1} << 40) - 4 * kChunk};
  auto random_page = [&] {
    const uint64_t base = bases[rng() % std::size(bases)];
    return base + rng() % (4 * kChunk);
  };
  for (int round = 0; round < 20; ++round) {
    PageIndex index;
    std::set<uint64_t> model;
    std::set<uint64_t> zeros;  // Pages of model that are zero-run pages (FillZeroRuns).
    auto expect_old = [&](uint64_t p, const PageEntry& e) {
      if (zeros.count(p) != 0) {
        EXPECT_EQ(e.kind, PageEntry::kSame) << p;
        EXPECT_EQ(e.value, 0u) << p;
      } else {
        EXPECT_TRUE(SameEntry(e, EntryFor(p))) << p;
      }
    };
    // Densities from sparse to nearly full.
    const int ops = 50 + round * 60;
    const unsigned erase_pct = (round % 4) * 15;
    for (int i = 0; i < ops; ++i) {
      const uint64_t p = random_page();
      if (rng() % 100 < 5) {
        const uint64_t end = p + rng() % 100;
        uint64_t holes = 0;
        for (uint64_t q = p; q < end; ++q) {
          if (model.insert(q).second) {
            zeros.insert(q);
            ++holes;
          }
        }
        EXPECT_EQ(index.FillZeroRuns(p, end), holes);
      } else if (rng() % 100 < erase_pct) {
        const PageEntry old = index.Erase(p);
        EXPECT_EQ(old.present(), model.erase(p) == 1);
        if (old.present()) expect_old(p, old);
        zeros.erase(p);
      } else {
        const PageEntry old = index.Set(p, EntryFor(p));
        EXPECT_EQ(old.present(), !model.insert(p).second);
        if (old.present()) expect_old(p, old);
        zeros.erase(p);
      }
    }
    ASSERT_EQ(index.size(), model.size());
    ASSERT_EQ(index.MemoryBytes(), index.RecountBytes()) << "the kept count is exact";
    // Query at random points, at every model page and its neighbours, and at chunk edges.
    std::vector<uint64_t> queries;
    for (int i = 0; i < 300; ++i) queries.push_back(random_page());
    for (uint64_t p : model) {
      queries.push_back(p);
      queries.push_back(p + 1);
      if (p > 0) queries.push_back(p - 1);
    }
    for (uint64_t b : bases) {
      for (uint64_t k = 0; k <= 4; ++k) queries.push_back(b + k * kChunk);
    }
    for (uint64_t q : queries) {
      ASSERT_EQ(index.NextPresent(q), ModelNextPresent(model, q)) << "q=" << q;
      ASSERT_EQ(index.NextHole(q), ModelNextHole(model, q)) << "q=" << q;
      ASSERT_EQ(index.Find(q) != nullptr, model.count(q) == 1) << "q=" << q;
    }
    for (int i = 0; i < 200; ++i) {
      uint64_t a = random_page(), b = random_page();
      if (a > b) std::swap(a, b);
      const auto lo = model.lower_bound(a), hi = model.lower_bound(b);
      const std::vector<uint64_t> want(lo, hi);
      ASSERT_EQ(index.CountPresent(a, b), want.size()) << "[" << a << "," << b << ")";
      std::vector<uint64_t> got;
      index.ForEach(a, b, [&](uint64_t p, const PageEntry&) { got.push_back(p); });
      ASSERT_EQ(got, want) << "[" << a << "," << b << ")";
    }
    // Erase a random range and compare what remains.
    uint64_t a = random_page(), b = random_page();
    if (a > b) std::swap(a, b);
    std::vector<uint64_t> erased;
    index.EraseRange(a, b, [&](uint64_t p, const PageEntry& e) {
      expect_old(p, e);
      erased.push_back(p);
    });
    std::sort(erased.begin(), erased.end());  // Zero-run pages come after the others.
    ASSERT_EQ(erased, std::vector<uint64_t>(model.lower_bound(a), model.lower_bound(b)));
    model.erase(model.lower_bound(a), model.lower_bound(b));
    zeros.erase(zeros.lower_bound(a), zeros.lower_bound(b));
    ASSERT_EQ(index.size(), model.size());
    ASSERT_EQ(index.MemoryBytes(), index.RecountBytes());
    std::vector<uint64_t> all;
    index.ForEach(0, kNone, [&](uint64_t p, const PageEntry&) { all.push_back(p); });
    ASSERT_EQ(all, std::vector<uint64_t>(model.begin(), model.end()));
    // No chunk is kept without a page.
    std::set<uint64_t> chunk_numbers;
    for (uint64_t p : model) {
      if (zeros.count(p) == 0) chunk_numbers.insert(p / kChunk);
    }
    ASSERT_EQ(index.chunks(), chunk_numbers.size());
  }
}

// The index's cost per page of a dense file: the contract budget is 24 bytes a page.
TEST(PageIndexTest, DenseIndexOverhead) {
  constexpr uint64_t kPages = 1 << 20;  // 4 GiB of file.
#ifndef ZBUDFS_SANITIZED
  const size_t heap_before = mallinfo2().uordblks;
#endif
  auto index = std::make_unique<PageIndex>();
  for (uint64_t p = 0; p < kPages; ++p) index->Set(p, EntryFor(p, PageEntry::kSame));
  ASSERT_EQ(index->size(), kPages);
  ASSERT_EQ(index->chunks(), kPages / kChunk);
  const double per_page = static_cast<double>(index->MemoryBytes()) / static_cast<double>(kPages);
  RecordProperty("index_bytes_per_page", std::to_string(per_page));
  EXPECT_LE(per_page, 24.0);
  EXPECT_GE(per_page, static_cast<double>(sizeof(PageEntry))) << "an entry is 16 bytes";
#ifndef ZBUDFS_SANITIZED
  // What malloc really handed out (chunk headers included), when it can be measured.
  const size_t heap = mallinfo2().uordblks - heap_before;
  const double heap_per_page = static_cast<double>(heap) / static_cast<double>(kPages);
  RecordProperty("index_heap_bytes_per_page", std::to_string(heap_per_page));
  EXPECT_LE(heap_per_page, 24.0);
  // MemoryBytes() is an honest estimate: within 5% of the real heap.
  EXPECT_NEAR(heap_per_page, per_page, per_page * 0.05);
#endif
  // The estimate follows the index back down.
  index->EraseRange(0, kPages / 2, [](uint64_t, const PageEntry&) {});
  EXPECT_EQ(index->chunks(), kPages / 2 / kChunk);
  EXPECT_LE(static_cast<double>(index->MemoryBytes()) / static_cast<double>(index->size()), 24.0);
}

}  // namespace
}  // namespace zbudfs

namespace zbudfs {
namespace {

// A small file must not pay for a whole 64-entry chunk: 100k one-page files would
// otherwise hold 100 MiB of index.
TEST(PageIndexTest, SmallFilesStaySmall) {
  PageIndex one;
  PageEntry e;
  e.kind = PageEntry::kSame;
  one.Set(0, e);
  EXPECT_LT(one.MemoryBytes(), 200u);
  PageIndex three;
  for (uint64_t p = 0; p < 3; ++p) three.Set(p, e);
  EXPECT_LT(three.MemoryBytes(), 250u);
  // Growing the entry array keeps what was there.
  PageIndex grow;
  for (uint64_t p = 0; p < 64; ++p) {
    e.value = p;
    grow.Set(63 - p, e);
  }
  for (uint64_t p = 0; p < 64; ++p) {
    ASSERT_NE(grow.Find(p), nullptr);
    EXPECT_EQ(grow.Find(p)->value, 63 - p);
  }
}

// The reported case (issue 14, 4b): pages some stride apart, each the last page of its
// stride, cost an entry array up to that page in every chunk (1 KiB a page at stride 64).
// Now at most 64 bytes a stored page at every stride up to a chunk, counted and as malloc
// sees it.
TEST(PageIndexTest, SparseStridesCostAtMost64BytesAPage) {
  constexpr uint64_t kPages = 8192;
  for (uint64_t stride : {1, 2, 3, 5, 8, 17, 31, 32, 33, 63, 64}) {
#ifndef ZBUDFS_SANITIZED
    const size_t heap_before = mallinfo2().uordblks;
#endif
    auto index = std::make_unique<PageIndex>();
    for (uint64_t i = 0; i < kPages; ++i) index->Set(i * stride + stride - 1, EntryFor(i));
    ASSERT_EQ(index->size(), kPages);
    const double per_page = static_cast<double>(index->MemoryBytes()) / static_cast<double>(kPages);
    RecordProperty("stride_" + std::to_string(stride) + "_bytes_per_page",
                   std::to_string(per_page));
    EXPECT_LE(per_page, 64.0) << "stride " << stride;
    EXPECT_EQ(index->MemoryBytes(), index->RecountBytes());
#ifndef ZBUDFS_SANITIZED
    const double heap_per_page =
        static_cast<double>(mallinfo2().uordblks - heap_before) / static_cast<double>(kPages);
    EXPECT_LE(heap_per_page, 64.0) << "stride " << stride << " (malloc)";
#endif
  }
}

// Erasing gives memory back: a chunk left with one page of 64 no longer holds 64 entries.
TEST(PageIndexTest, ErasingShrinksChunks) {
  PageIndex index;
  constexpr uint64_t kChunks = 256;
  for (uint64_t p = 0; p < kChunks * kChunk; ++p) index.Set(p, EntryFor(p));
  for (uint64_t c = 0; c < kChunks; ++c) {
    index.EraseRange(c * kChunk, c * kChunk + kChunk - 1, [](uint64_t, const PageEntry&) {});
  }
  ASSERT_EQ(index.size(), kChunks);
  EXPECT_EQ(index.MemoryBytes(), index.RecountBytes());
  EXPECT_LE(static_cast<double>(index.MemoryBytes()) / kChunks, 64.0);
  for (uint64_t c = 0; c < kChunks; ++c) {
    const uint64_t p = c * kChunk + kChunk - 1;
    ASSERT_NE(index.Find(p), nullptr);
    EXPECT_TRUE(SameEntry(*index.Find(p), EntryFor(p)));
  }
}

// Preallocated zeros (fallocate) are extents: a terabyte of them costs one run, reads as
// kSame zero pages, counts as present, and is cut by Set and EraseRange.
TEST(PageIndexTest, ZeroRunsAreExtents) {
  PageIndex index;
  const uint64_t tib = uint64_t{1} << 28;  // Pages in 1 TiB.
  index.Set(5, EntryFor(5));
  EXPECT_EQ(index.FillZeroRuns(0, tib), tib - 1);
  EXPECT_EQ(index.size(), tib);
  EXPECT_EQ(index.zero_runs(), 2u) << "[0,5) and [6,tib)";
  EXPECT_LT(index.MemoryBytes(), 512u);
  EXPECT_EQ(index.MemoryBytes(), index.RecountBytes());
  ASSERT_NE(index.Find(tib / 2), nullptr);
  EXPECT_EQ(index.Find(tib / 2)->kind, PageEntry::kSame);
  EXPECT_EQ(index.Find(tib / 2)->value, 0u);
  EXPECT_EQ(index.FindMutable(tib / 2), nullptr) << "nothing to change in place";
  EXPECT_TRUE(SameEntry(*index.Find(5), EntryFor(5)));
  EXPECT_EQ(index.Find(tib), nullptr);
  EXPECT_EQ(index.NextHole(0), tib);
  EXPECT_EQ(index.NextPresent(tib - 1), tib - 1);
  EXPECT_EQ(index.NextPresent(tib), kNone);
  EXPECT_EQ(index.CountPresent(3, 10), 7u);
  EXPECT_EQ(index.FillZeroRuns(0, tib + 1), 1u) << "only the one new hole";
  EXPECT_EQ(index.zero_runs(), 2u) << "merged with the run before it";
  // Set splits a run; the old entry is a zero page.
  const PageEntry old = index.Set(1000, EntryFor(1000));
  EXPECT_EQ(old.kind, PageEntry::kSame);
  EXPECT_EQ(index.size(), tib + 1);
  EXPECT_EQ(index.zero_runs(), 3u);
  // EraseRange reports trie pages one by one and run pieces as ranges.
  uint64_t pages = 0, run_pages = 0;
  index.EraseRange(
      4, tib / 2, [&](uint64_t, const PageEntry&) { ++pages; },
      [&](uint64_t a, uint64_t b) { run_pages += b - a; });
  EXPECT_EQ(pages, 2u) << "5 and 1000";
  EXPECT_EQ(run_pages, tib / 2 - 4 - 2);
  EXPECT_EQ(index.size(), 4 + (tib + 1 - tib / 2));
  EXPECT_EQ(index.NextHole(0), 4u);
  EXPECT_EQ(index.NextPresent(4), tib / 2);
  index.EraseRange(
      0, kNone, [](uint64_t, const PageEntry&) {}, [](uint64_t, uint64_t) {});
  EXPECT_EQ(index.size(), 0u);
  EXPECT_EQ(index.MemoryBytes(), sizeof(PageIndex));
}

// BatchEnd cuts a range after about n entries, at a chunk's end.
TEST(PageIndexTest, BatchEndCountsTrieEntries) {
  PageIndex index;
  for (uint64_t p = 0; p < 10 * kChunk; p += 2) index.Set(p, EntryFor(p));
  EXPECT_EQ(index.BatchEnd(0, kNone, 64), 2 * kChunk);
  EXPECT_EQ(index.BatchEnd(kChunk, kNone, 1), 2 * kChunk);
  EXPECT_EQ(index.BatchEnd(0, 100, 1000), 100u);
  EXPECT_EQ(index.BatchEnd(0, kNone, 1000), kNone);
  index.FillZeroRuns(20 * kChunk, 1000 * kChunk);
  EXPECT_EQ(index.BatchEnd(10 * kChunk, kNone, 1), kNone) << "runs go whole";
}

}  // namespace
}  // namespace zbudfs

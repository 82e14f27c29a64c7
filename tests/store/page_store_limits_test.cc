// PageStore limits: capacity, mem_limit (new pages, overwrites, batches of buddies, shrinking
// calls that must still succeed) and the largest file size.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "store/page_store.h"
#include "tests/store/page_store_test_util.h"

namespace zbudfs {
namespace {

using namespace store_test;  // NOLINT(build/namespaces): the shared test helpers.

// ---- Limits -------------------------------------------------------------------------------------

TEST(PageStoreTest, CapacityLimitIsEnospcAndKeepsData) {
  PageStoreOptions o;
  o.capacity_bytes = 64 * kPage;
  PageStore store(o);
  std::mt19937_64 rng(7);
  Bytes model = TextBytes(64 * kPage, 31337);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, model));
  ASSERT_EQ(store.Stats().orig_data_size, o.capacity_bytes);

  // New pages of any kind are refused, by every operation that adds pages.
  const Bytes text = TextBytes(kPage, 5);
  EXPECT_EQ(store.Write(1, 64 * kPage, text.data(), text.size()).code(), ENOSPC);
  const Bytes zeros(kPage, 0);
  EXPECT_EQ(store.Write(1, 100 * kPage, zeros.data(), zeros.size()).code(), ENOSPC);
  EXPECT_EQ(store.Write(2, 0, text.data(), 1).code(), ENOSPC);
  EXPECT_EQ(store.Allocate(1, 100 * kPage, 1).code(), ENOSPC);
  EXPECT_EQ(store.ZeroRange(1, 100 * kPage, kPage).code(), ENOSPC);
  const Bytes big = TextBytes(8 * kPage, 77);
  EXPECT_EQ(store.Write(1, 62 * kPage, big.data(), big.size()).code(), ENOSPC)
      << "a write needing 6 new pages";
  EXPECT_EQ(store.Usage(1).pages, 64u);
  EXPECT_EQ(store.Usage(2).pages, 0u);
  EXPECT_EQ(store.SeekData(1, 64 * kPage, true), UINT64_MAX);
  EXPECT_EQ(ReadBytes(store, 1, 0, 70 * kPage), [&] {
    Bytes m = model;
    m.resize(70 * kPage, 0);
    return m;
  }()) << "nothing stored was lost or changed";

  // Rewriting pages that exist needs no capacity.
  const Bytes noise = RandomBytes(3 * kPage, rng);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 10 * kPage, noise));
  std::copy(noise.begin(), noise.end(), model.begin() + 10 * kPage);
  ASSERT_TRUE(store.ZeroRange(1, 20 * kPage, kPage).ok());
  std::fill(model.begin() + 20 * kPage, model.begin() + 21 * kPage, 0);
  EXPECT_EQ(ReadBytes(store, 1, 0, model.size()), model);

  // Freed pages make room again, exactly as many.
  ASSERT_TRUE(store.PunchHole(1, 0, 4 * kPage).ok());
  for (uint64_t p = 200; p < 204; ++p) {
    ASSERT_NO_FATAL_FAILURE(WriteOk(store, 2, p * kPage, text));
  }
  EXPECT_EQ(store.Write(2, 204 * kPage, text.data(), text.size()).code(), ENOSPC);
  EXPECT_EQ(store.Stats().orig_data_size, o.capacity_bytes);
  std::fill(model.begin(), model.begin() + 4 * kPage, 0);
  EXPECT_EQ(ReadBytes(store, 1, 0, model.size()), model);
}

TEST(PageStoreTest, MemLimitIsEnospcButZeroPagesSucceed) {
  PageStoreOptions o;
  o.mem_limit = 16 * kPage + 1024;  // And room for the index of 16 pages.
  PageStore store(o);
  std::mt19937_64 rng(8);
  Bytes model;
  uint64_t written = 0;
  for (;; ++written) {
    ASSERT_LT(written, 100u) << "mem_limit never enforced";
    const Bytes page = RandomBytes(kPage, rng);
    const Status st = store.Write(1, written * kPage, page.data(), page.size());
    if (!st.ok()) {
      EXPECT_EQ(st.code(), ENOSPC) << st.ToString();
      break;
    }
    model.insert(model.end(), page.begin(), page.end());
  }
  EXPECT_EQ(written, 16u) << "16 raw pages fill 16 pages of memory";
  StoreStats s = store.Stats();
  EXPECT_EQ(s.mem_limit, o.mem_limit);
  EXPECT_LE(s.mem_used_total, o.mem_limit);
  ExpectMemFormula(s);

  // New pages that need memory are refused, whole or partial, in any file...
  const Bytes text = TextBytes(kPage, 3);
  EXPECT_EQ(store.Write(1, 100 * kPage, text.data(), text.size()).code(), ENOSPC);
  EXPECT_EQ(store.Write(1, 16 * kPage + 5, text.data(), 10).code(), ENOSPC);
  EXPECT_EQ(store.Write(2, 0, text.data(), 10).code(), ENOSPC);
  EXPECT_EQ(store.Usage(1).pages, 16u);
  EXPECT_EQ(store.Usage(2).pages, 0u);
  // Rewriting a stored raw page (in part, or whole with text) needs no more memory than the
  // page held: it may be allowed (page_store.h lets a page that replaces a stored one pass
  // for the moment of the swap) or refused; either way the data is exact and memory is within
  // the limit when the call returns.
  const Bytes patch = TextBytes(10, 100);
  Status st = store.Write(1, 3 * kPage + 5, patch.data(), patch.size());
  ASSERT_TRUE(st.ok() || st.code() == ENOSPC) << st.ToString();
  if (st.ok()) std::copy(patch.begin(), patch.end(), model.begin() + 3 * kPage + 5);
  st = store.Write(1, 5 * kPage, text.data(), text.size());
  ASSERT_TRUE(st.ok() || st.code() == ENOSPC) << st.ToString();
  if (st.ok()) std::copy(text.begin(), text.end(), model.begin() + 5 * kPage);
  EXPECT_LE(store.Stats().mem_used_total, o.mem_limit);
  EXPECT_EQ(ReadBytes(store, 1, 0, model.size()), model);
  // Same-filled pages need no memory at all.
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 200 * kPage, Bytes(4 * kPage, 0)));
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 2, 0, WordBytes(2 * kPage, 0xDEADBEEFCAFEF00D)));
  ASSERT_TRUE(store.Allocate(3, 0, 10 * kPage).ok());
  s = store.Stats();
  EXPECT_EQ(s.same_pages, 16u);
  EXPECT_LE(s.mem_used_total, o.mem_limit);
  ExpectMemFormula(s);
  EXPECT_EQ(ReadBytes(store, 1, 0, model.size()), model) << "stored pages intact";
  EXPECT_EQ(ReadBytes(store, 2, 0, 2 * kPage), WordBytes(2 * kPage, 0xDEADBEEFCAFEF00D));

  // Freeing memory lets compressible pages in again.
  store.Remove(1);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, text));
  EXPECT_EQ(ReadBytes(store, 1, 0, kPage), text);
}

// Rewrites in place on a full store. zbud frees a page only with both its allocations, so
// rewriting one buddy needs a new allocation while its old page stays. Such rewrites
// allocate in the old page's pool, into the holes earlier rewrites left there: they keep
// working, and memory stays within a page a pool of mem_limit. `writers` threads write
// the pages first (a pool each, dealt in turn), then one more thread rewrites one buddy
// of every zbud page, going round the writers' ranges.
struct RewriteRun {
  uint64_t rewritten = 0, tried = 0, peak = 0, bound = 0;
};
RewriteRun RewriteOnAFullStore(unsigned pools, unsigned writers) {
  PageStoreOptions o;
  o.zbud_pools = pools;
  o.mem_limit = uint64_t{1} << 30;
  PageStore store(o);
  constexpr uint64_t kPerWriter = 128;
  const uint64_t pages = kPerWriter * writers;
  const Bytes model = TextBytes(pages * kPage, 21);  // About 1.4 KiB a page: two a zbud page.
  auto page_bytes = [&](uint64_t p) {
    return Bytes(model.begin() + static_cast<ptrdiff_t>(p * kPage),
                 model.begin() + static_cast<ptrdiff_t>((p + 1) * kPage));
  };
  for (unsigned w = 0; w < writers; ++w) {  // One after another: a new thread, a new pool.
    std::thread([&, w] {
      const Bytes range(model.begin() + static_cast<ptrdiff_t>(w * kPerWriter * kPage),
                        model.begin() + static_cast<ptrdiff_t>((w + 1) * kPerWriter * kPage));
      WriteOk(store, 1, w * kPerWriter * kPage, range);
    }).join();
  }
  EXPECT_TRUE(store.SetLimits({.mem_limit = store.Stats().mem_used_total}).ok());
  RewriteRun run;
  run.bound = store.mem_limit() + pools * kPage;
  std::thread([&] {
    for (uint64_t i = 1; i < kPerWriter; i += 2) {  // Odd pages: one buddy of each page.
      for (unsigned w = 0; w < writers; ++w) {
        const uint64_t p = w * kPerWriter + i;
        const Bytes page = page_bytes(p);
        const Status st = store.Write(1, p * kPage, page.data(), page.size());
        EXPECT_TRUE(st.ok() || st.code() == ENOSPC) << st.ToString();
        ++run.tried;
        run.rewritten += st.ok() ? 1 : 0;
        run.peak = std::max(run.peak, store.Stats().mem_used_total);
      }
    }
  }).join();
  EXPECT_EQ(ReadBytes(store, 1, 0, model.size()), model);
  return run;
}

TEST(PageStoreTest, RewritesOnAFullStoreStayWithinAPageAPoolOfMemLimit) {
  for (const auto& [pools, writers] : {std::pair{1u, 1u}, {4u, 1u}, {4u, 4u}}) {
    SCOPED_TRACE("pools " + std::to_string(pools) + ", writers " + std::to_string(writers));
    const RewriteRun run = RewriteOnAFullStore(pools, writers);
    EXPECT_LE(run.peak, run.bound) << "rewritten " << run.rewritten << " of " << run.tried;
    // A few are larger compressed alone than in their first batch, and refused for that.
    EXPECT_GT(run.rewritten, run.tried * 8 / 10) << "rewrites in place keep working";
  }
}

// Metadata (the daemon's xattrs) and file pages share the capacity: neither passes it, a
// refused charge charges nothing, and a charge given back makes room for pages again.
TEST(PageStoreTest, ChargeMetadataSharesCapacityWithPages) {
  PageStoreOptions o;
  o.capacity_bytes = 16 * kPage;
  PageStore store(o);
  ASSERT_TRUE(store.ChargeMetadata(10 * kPage - 100).ok());
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, TextBytes(6 * kPage)));  // 100 bytes left.
  const Bytes text = TextBytes(kPage, 9);
  EXPECT_EQ(store.Write(1, 6 * kPage, text.data(), text.size()).code(), ENOSPC)
      << "a 17th page's worth: 10 pages less 100 bytes of metadata and 6 pages";
  EXPECT_EQ(store.Allocate(2, 0, kPage).code(), ENOSPC);
  EXPECT_EQ(store.ChargeMetadata(101).code(), ENOSPC);
  EXPECT_TRUE(store.ChargeMetadata(100).ok()) << "exactly the capacity left";
  EXPECT_EQ(store.ChargeMetadata(1).code(), ENOSPC);
  StoreStats s = store.Stats();
  EXPECT_EQ(s.metadata_bytes, 10 * kPage);
  EXPECT_EQ(s.orig_data_size, 6 * kPage) << "metadata is not file data";
  ExpectMemFormula(s);
  // Giving back 2 pages' worth lets 2 pages in, and no third.
  ASSERT_TRUE(store.ChargeMetadata(-2 * static_cast<int64_t>(kPage)).ok());
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 6 * kPage, TextBytes(2 * kPage, 9)));
  EXPECT_EQ(store.Write(1, 8 * kPage, text.data(), text.size()).code(), ENOSPC);
  // Pages freed make room for metadata, and everything given back leaves nothing counted.
  store.Remove(1);
  EXPECT_TRUE(store.ChargeMetadata(8 * kPage).ok());
  EXPECT_EQ(store.ChargeMetadata(1).code(), ENOSPC);
  ASSERT_TRUE(store.ChargeMetadata(-16 * static_cast<int64_t>(kPage)).ok());
  s = store.Stats();
  EXPECT_EQ(s.metadata_bytes, 0u);
  EXPECT_EQ(s.mem_used_total, 0u);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 2, 0, TextBytes(16 * kPage)));
}

// Inodes are memory, not capacity (tmpfs counts them with nr_inodes): they count in
// inode_bytes and mem_used_total, never in what size= allows, and are never refused; past
// mem_limit they push file pages out to the overflow store to make room.
TEST(PageStoreTest, ChargeInodesIsMemoryNotCapacity) {
  test::TempDir dir;
  auto ov = OverflowStore::Open({dir.path(), 0, nullptr});
  ASSERT_TRUE(ov.ok()) << ov.status().ToString();
  PageStoreOptions o;
  o.capacity_bytes = 64 * kPage;
  o.mem_limit = 32 * kPage;
  o.overflow = std::shared_ptr<OverflowStore>(std::move(ov).value());
  o.background_reclaim = false;
  PageStore store(o);
  store.ChargeInodes(100 * kPage);  // Beyond the capacity and mem_limit: counted, not refused.
  const Bytes data = TextBytes(64 * kPage, 5);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, data));  // All of size=: inodes take none.
  StoreStats s = store.Stats();
  EXPECT_EQ(s.inode_bytes, 100 * kPage);
  EXPECT_EQ(s.metadata_bytes, 0u);
  EXPECT_EQ(s.orig_data_size, 64 * kPage);
  // Every page pushed out for the inodes, but the one a writer passes through memory.
  EXPECT_LE(s.pool_pages, 1u);
  ExpectMemFormula(s);
  // Given back: the pages may come back in, and new inodes push them out again.
  store.ChargeInodes(-100 * static_cast<int64_t>(kPage));
  EXPECT_EQ(ReadBytes(store, 1, 0, data.size()), data);
  EXPECT_EQ(ReadBytes(store, 1, 0, data.size()), data);  // The second read promotes.
  ASSERT_GT(store.Stats().pool_pages, 0u);
  store.ChargeInodes(static_cast<int64_t>(o.mem_limit));
  s = store.Stats();
  EXPECT_EQ(s.pool_pages, 0u) << "with no writer, none stays";
  EXPECT_EQ(ReadBytes(store, 1, 0, data.size()), data);
  store.ChargeInodes(-static_cast<int64_t>(s.inode_bytes));
  store.Remove(1);
  ExpectEmpty(store.Stats());
}

// Writers of pages and chargers of metadata racing for the last of the capacity: together
// they fill it and never pass it (one counter holds both).
TEST(PageStoreTest, ChargeMetadataConcurrentWithWritesStaysWithinCapacity) {
  PageStoreOptions o;
  o.capacity_bytes = 512 * kPage;
  PageStore store(o);
  constexpr uint64_t kChunk = 3000;  // Metadata charged at a time.
  std::vector<std::thread> threads;
  for (PageStore::FileId file = 1; file <= 2; ++file) {
    threads.emplace_back([&store, file] {
      const Bytes text = TextBytes(kPage, file);
      for (uint64_t page = 0;; ++page) {
        if (!store.Write(file, page * kPage, text.data(), text.size()).ok()) return;
      }
    });
    threads.emplace_back([&store] {
      while (store.ChargeMetadata(kChunk).ok()) {
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const StoreStats s = store.Stats();
  EXPECT_LE(s.orig_data_size + s.metadata_bytes, o.capacity_bytes);
  EXPECT_GT(s.orig_data_size + s.metadata_bytes + kPage, o.capacity_bytes) << "not full";
  EXPECT_EQ(s.metadata_bytes % kChunk, 0u);
}

// Without an overflow store, metadata counts in the memory compared with mem_limit: it is
// refused when memory is full, and while it is held, pages that need memory are refused.
TEST(PageStoreTest, ChargeMetadataCountsAgainstMemLimit) {
  PageStoreOptions o;
  o.mem_limit = 16 * kPage;
  PageStore store(o);
  std::mt19937_64 rng(11);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, RandomBytes(10 * kPage, rng)));  // 10 raw pages.
  // The file's page index counts in memory too: fill exactly what is left.
  const uint64_t meta = 6 * kPage - store.Stats().index_bytes;
  ASSERT_TRUE(store.ChargeMetadata(static_cast<int64_t>(meta)).ok());
  EXPECT_EQ(store.MemUsed(), o.mem_limit);
  EXPECT_EQ(store.ChargeMetadata(1).code(), ENOSPC);
  EXPECT_EQ(store.Stats().metadata_bytes, meta) << "a refused charge charges nothing";
  const Bytes page = RandomBytes(kPage, rng);
  EXPECT_EQ(store.Write(1, 10 * kPage, page.data(), page.size()).code(), ENOSPC);
  ExpectMemFormula(store.Stats());
  // Two pages back: one for the page, and room for the index entry it adds.
  ASSERT_TRUE(store.ChargeMetadata(-2 * static_cast<int64_t>(kPage)).ok());
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 10 * kPage, page));
  EXPECT_LE(store.MemUsed(), o.mem_limit);
}

// Overwriting stored pages must not carry memory past mem_limit when the old pages held less
// than the new ones: zero pages (fallocate, or files written with zeros) hold no memory, and a
// compressed page shares its zbud page with a buddy. Single-threaded, so after every call
// memory must be within the limit (page_store.h allows passing it only "for the moment of the
// swap").
TEST(PageStoreTest, MemLimitHoldsForOverwrites) {
  PageStoreOptions o;
  o.mem_limit = 16 * kPage;
  std::mt19937_64 rng(14);
  // Overwrites pages [0, pages) one call each; stops at the first call that leaves memory over.
  auto overwrite_with_random = [&](PageStore& store, uint64_t pages) {
    uint64_t refused = 0;
    for (uint64_t p = 0; p < pages; ++p) {
      const Bytes noise = RandomBytes(kPage, rng);
      const Bytes before = ReadBytes(store, 1, p * kPage, kPage);
      const Status st = store.Write(1, p * kPage, noise.data(), noise.size());
      if (st.ok()) {
        EXPECT_EQ(ReadBytes(store, 1, p * kPage, kPage), noise);
      } else {
        EXPECT_EQ(st.code(), ENOSPC) << st.ToString();
        EXPECT_EQ(ReadBytes(store, 1, p * kPage, kPage), before)
            << "a refused write changes nothing";
        ++refused;
      }
      const StoreStats s = store.Stats();
      if (s.mem_used_total > o.mem_limit) {
        ADD_FAILURE() << "mem_limit passed after overwriting page " << p << ": "
                      << s.mem_used_total / kPage << " pages held (" << s.huge_pages << " raw, "
                      << s.pool_pages << " zbud) for a limit of " << o.mem_limit / kPage;
        return;
      }
    }
    EXPECT_GT(refused, 0u) << "the new data cannot fit in the limit";
  };
  {
    SCOPED_TRACE("zero pages overwritten with random data");
    PageStore store(o);
    ASSERT_TRUE(store.Allocate(1, 0, 64 * kPage).ok());
    ASSERT_EQ(store.Stats().mem_used_total, store.Stats().index_bytes) << "no page memory";
    overwrite_with_random(store, 64);
  }
  {
    SCOPED_TRACE("buddied text pages overwritten with random data");
    PageStore store(o);
    uint64_t stored = 0;
    for (; stored < 64; ++stored) {
      const Bytes text = TextBytes(kPage, stored * 3000);
      if (!store.Write(1, stored * kPage, text.data(), text.size()).ok()) break;
    }
    ASSERT_GT(store.Stats().buddied_pages, 0u);
    overwrite_with_random(store, stored);
  }
}

// At mem_limit, a multi-page overwrite whose pages each shrink (so each may pass the limit
// for the moment of the swap) must not leave memory over the limit once it returns. Files 1
// and 2 are written page by page in turn, so each zbud page holds one page of each; then file
// 1 is rewritten in one call: freeing its buddies releases no zbud page while file 2's live.
TEST(PageStoreTest, MemLimitHoldsAfterBatchOverwriteOfBuddies) {
  PageStoreOptions o;
  o.mem_limit = 16 * kPage;
  PageStore store(o);
  uint64_t pairs = 0;
  for (; pairs < 64; ++pairs) {
    const Bytes a = TextBytes(kPage, pairs * kPage), b = TextBytes(kPage, pairs * kPage + 2000);
    if (!store.Write(1, pairs * kPage, a.data(), a.size()).ok()) break;
    if (!store.Write(2, pairs * kPage, b.data(), b.size()).ok()) break;
  }
  ASSERT_GT(pairs, 4u);
  const StoreStats before = store.Stats();
  ASSERT_GE(before.buddied_pages, pairs - 1) << "the two files share zbud pages";
  Bytes data = ReadBytes(store, 1, 0, pairs * kPage);
  for (uint64_t p = 0; p < pairs; ++p) {
    std::fill(data.begin() + static_cast<ptrdiff_t>(p * kPage + kPage - 300),
              data.begin() + static_cast<ptrdiff_t>((p + 1) * kPage), 0);
  }
  const Status st = store.Write(1, 0, data.data(), data.size());
  ASSERT_TRUE(st.ok() || st.code() == ENOSPC) << st.ToString();
  if (st.ok()) {
    EXPECT_EQ(ReadBytes(store, 1, 0, data.size()), data);
  }
  const StoreStats s = store.Stats();
  // page_store.h: past the swap, memory exceeds mem_limit by at most one page per thread.
  EXPECT_LE(s.mem_used_total, o.mem_limit + kPage)
      << s.mem_used_total / kPage << " pages held (" << s.pool_pages << " zbud, " << s.buddied_pages
      << " buddied) for a limit of " << o.mem_limit / kPage << " after "
      << (st.ok() ? "an accepted" : "a refused") << " overwrite of " << pairs << " pages";
}

// Shrinking a file must work when the store is at mem_limit: Truncate's documented errors are
// EIO only, and it (like PunchHole) frees memory. Both re-encode the partial page at the cut.
TEST(PageStoreTest, TruncateAndPunchHoleSucceedAtMemLimit) {
  PageStoreOptions o;
  o.mem_limit = 16 * kPage;
  std::mt19937_64 rng(9);
  const Bytes data = RandomBytes(16 * kPage, rng);
  const Bytes more = RandomBytes(kPage, rng);
  {
    PageStore store(o);
    ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, data));
    ASSERT_EQ(store.Write(1, 16 * kPage, more.data(), more.size()).code(), ENOSPC);
    const Status st = store.Truncate(1, 8 * kPage + 100);
    EXPECT_TRUE(st.ok()) << "Truncate at mem_limit: " << st.ToString();
    EXPECT_EQ(store.Usage(1).pages, 9u);
    const Bytes got = ReadBytes(store, 1, 0, 9 * kPage);
    EXPECT_TRUE(SameBytes(got.data(), data.data(), 8 * kPage + 100));
    EXPECT_TRUE(AllZero(got.data() + 8 * kPage + 100, kPage - 100));
  }
  {
    PageStore store(o);
    ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, data));
    const Status st = store.PunchHole(1, 2 * kPage + 50, 4 * kPage);
    EXPECT_TRUE(st.ok()) << "PunchHole at mem_limit: " << st.ToString();
    EXPECT_EQ(store.Usage(1).pages, 13u);
    Bytes want = data;
    std::fill(want.begin() + 2 * kPage + 50, want.begin() + 6 * kPage + 50, 0);
    EXPECT_EQ(ReadBytes(store, 1, 0, want.size()), want);
  }
}

TEST(PageStoreTest, EfbigPastMaxFileSize) {
  PageStore store(PageStoreOptions{});
  const uint64_t max = PageStore::kMaxFileSize;
  const uint64_t top = (max / kPage - 1) * kPage;  // The last whole page below max.
  const Bytes page = TextBytes(kPage);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, top, page));
  EXPECT_EQ(ReadBytes(store, 1, top, kPage), page);
  EXPECT_EQ(store.Write(1, max, page.data(), 1).code(), EFBIG);
  EXPECT_EQ(store.Write(1, max - 1, page.data(), 2).code(), EFBIG);
  EXPECT_EQ(store.Write(1, max - kPage, page.data(), kPage + 1).code(), EFBIG);
  EXPECT_EQ(store.Write(1, UINT64_MAX - 10, page.data(), 100).code(), EFBIG);
  EXPECT_EQ(store.Write(1, 0, page.data(), SIZE_MAX).code(), EFBIG);
  EXPECT_EQ(store.Allocate(1, max, 1).code(), EFBIG);
  EXPECT_EQ(store.Allocate(1, max - 1, kPage).code(), EFBIG);
  EXPECT_EQ(store.Truncate(1, max + 1).code(), EFBIG);
  EXPECT_EQ(store.Usage(1).pages, 1u) << "failed calls stored nothing";
  EXPECT_EQ(store.SeekData(1, 0, true), top);
  EXPECT_EQ(ReadBytes(store, 1, top, kPage), page);
  ASSERT_TRUE(store.Truncate(1, max).ok());
  EXPECT_EQ(store.Usage(1).pages, 1u);
}

}  // namespace
}  // namespace zbudfs

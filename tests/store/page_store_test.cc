// Unit tests of PageStore: byte-level reads and writes over 4 KiB pages, holes, truncate, punch,
// zero range, allocate, remove, statistics, allocation failure and corruption. Limits, the
// randomized model and the concurrent tests are in page_store_{limits,model,concurrency}_test.cc.
#include "store/page_store.h"

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

#include "tests/store/page_store_test_util.h"

namespace zbudfs {
namespace {

using namespace store_test;  // NOLINT(build/namespaces): the shared test helpers.

// ---- Basic reads and writes ---------------------------------------------------------------------

TEST(PageStoreTest, WriteReadRoundTripAcrossPageBoundaries) {
  PageStore store(PageStoreOptions{});
  std::mt19937_64 rng(1);
  struct Case {
    uint64_t off;
    size_t len;
  };
  // Offsets and lengths around page boundaries; each case its own file.
  const Case cases[] = {{0, 1},
                        {0, 4096},
                        {0, 4097},
                        {1, 4095},
                        {1, 4096},
                        {4095, 2},
                        {4095, 8194},
                        {12345, 70000},
                        {3 * kPage, 3 * kPage},
                        {7, (1 << 20) + 3},
                        {kPage * 1000 - 1, 1}};
  PageStore::FileId id = 1;
  for (const Case& c : cases) {
    SCOPED_TRACE("off " + std::to_string(c.off) + " len " + std::to_string(c.len));
    // Mixed contents: text, then random, then zeros.
    Bytes data = TextBytes(c.len, c.off);
    const Bytes noise = RandomBytes(c.len / 3, rng);
    std::copy(noise.begin(), noise.end(), data.begin() + static_cast<ptrdiff_t>(c.len / 3));
    std::fill(data.end() - static_cast<ptrdiff_t>(c.len / 6), data.end(), 0);
    ASSERT_NO_FATAL_FAILURE(WriteOk(store, id, c.off, data));
    EXPECT_EQ(ReadBytes(store, id, c.off, c.len), data);
    // A read spanning more than was written shows zeros around it.
    const uint64_t before = std::min<uint64_t>(c.off, 5000);
    const Bytes wide = ReadBytes(store, id, c.off - before, before + c.len + 5000);
    EXPECT_TRUE(AllZero(wide.data(), before));
    EXPECT_TRUE(
        std::equal(data.begin(), data.end(), wide.begin() + static_cast<ptrdiff_t>(before)));
    EXPECT_TRUE(AllZero(wide.data() + before + c.len, 5000));
    // Reads at random offsets and lengths inside the data.
    for (int i = 0; i < 20; ++i) {
      const uint64_t o = rng() % c.len;
      const size_t n = 1 + rng() % (c.len - o);
      ASSERT_EQ(ReadBytes(store, id, c.off + o, n),
                Bytes(data.begin() + static_cast<ptrdiff_t>(o),
                      data.begin() + static_cast<ptrdiff_t>(o + n)));
    }
    const uint64_t pages = (c.off + c.len - 1) / kPage - c.off / kPage + 1;
    EXPECT_EQ(store.Usage(id).pages, pages);
    ++id;
  }
  // Nothing written with a zero length.
  EXPECT_TRUE(store.Write(id, 5, nullptr, 0).ok());
  EXPECT_EQ(store.Usage(id).pages, 0u);
}

TEST(PageStoreTest, PartialPageReadModifyWrite) {
  PageStore store(PageStoreOptions{});
  std::mt19937_64 rng(2);
  // Page 0 text, page 1 random (raw), page 2 same-filled, page 3 zeros.
  Bytes model = TextBytes(kPage);
  Bytes r = RandomBytes(kPage, rng);
  model.insert(model.end(), r.begin(), r.end());
  Bytes w = WordBytes(kPage, 0x1122334455667788);
  model.insert(model.end(), w.begin(), w.end());
  model.resize(4 * kPage, 0);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, model));

  // Small patches inside each page, at its edges, and across each boundary.
  const std::pair<uint64_t, size_t> patches[] = {
      {100, 100},         {kPage - 1, 1},         {kPage - 10, 20},
      {kPage + 1, 3},     {2 * kPage - 1, 2},     {2 * kPage + 5, 7},
      {3 * kPage - 3, 6}, {3 * kPage + 4000, 96}, {0, 1}};
  for (const auto& [off, len] : patches) {
    const Bytes patch = RandomBytes(len, rng);
    ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, off, patch));
    std::copy(patch.begin(), patch.end(), model.begin() + static_cast<ptrdiff_t>(off));
    ASSERT_EQ(ReadBytes(store, 1, 0, model.size()), model) << "after patching " << off;
  }
  EXPECT_EQ(store.Usage(1).pages, 4u);
  EXPECT_EQ(store.Stats().same_pages, 0u) << "every page now has random bytes";
}

TEST(PageStoreTest, HolesReadAsZeros) {
  PageStore store(PageStoreOptions{});
  const Bytes a = TextBytes(kPage, 0), b = TextBytes(100, 9000);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, a));
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 10 * kPage + 50, b));
  EXPECT_EQ(store.Usage(1).pages, 2u);
  const Bytes all = ReadBytes(store, 1, 0, 11 * kPage);
  EXPECT_TRUE(std::equal(a.begin(), a.end(), all.begin()));
  EXPECT_TRUE(AllZero(all.data() + kPage, 9 * kPage + 50));
  EXPECT_TRUE(std::equal(b.begin(), b.end(), all.begin() + 10 * kPage + 50));
  EXPECT_TRUE(AllZero(all.data() + 10 * kPage + 150, kPage - 150));
  // A read inside a hole, unaligned; and far beyond anything written.
  EXPECT_TRUE(AllZero(ReadBytes(store, 1, 3 * kPage + 17, 5000).data(), 5000));
  EXPECT_TRUE(AllZero(ReadBytes(store, 1, uint64_t{1} << 40, 9000).data(), 9000));
  EXPECT_EQ(store.Stats().orig_data_size, 2 * kPage) << "holes hold nothing";
}

TEST(PageStoreTest, UnknownFileReadsZerosAndHasNoUsage) {
  PageStore store(PageStoreOptions{});
  EXPECT_TRUE(AllZero(ReadBytes(store, 77, 0, 10000).data(), 10000));
  EXPECT_TRUE(AllZero(ReadBytes(store, 77, 123456789, 3).data(), 3));
  EXPECT_EQ(store.Usage(77).pages, 0u);
  EXPECT_EQ(store.Usage(77).stored_bytes, 0u);
  EXPECT_EQ(store.SeekData(77, 0, true), UINT64_MAX);
  EXPECT_EQ(store.SeekData(77, 5000, false), 5000u);
  // Operations that do not create data leave unknown files alone.
  EXPECT_TRUE(store.Truncate(77, 100).ok());
  EXPECT_TRUE(store.PunchHole(77, 0, 100000).ok());
  store.Remove(77);
  EXPECT_EQ(store.Usage(77).pages, 0u);
  EXPECT_EQ(store.Stats().orig_data_size, 0u);
}

// ---- Truncate, punch, zero range, allocate, remove ----------------------------------------------

TEST(PageStoreTest, TruncateFreesPagesAndZeroesTheTail) {
  PageStore store(PageStoreOptions{});
  const Bytes data = TextBytes(10 * kPage, 777);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, data));
  ASSERT_EQ(store.Usage(1).pages, 10u);

  const uint64_t size = 5 * kPage + 100;
  ASSERT_TRUE(store.Truncate(1, size).ok());
  EXPECT_EQ(store.Usage(1).pages, 6u);
  EXPECT_EQ(store.Stats().orig_data_size, 6 * kPage);
  Bytes got = ReadBytes(store, 1, 0, 10 * kPage);
  EXPECT_TRUE(std::equal(data.begin(), data.begin() + size, got.begin()));
  EXPECT_TRUE(AllZero(got.data() + size, 10 * kPage - size)) << "tail of the last page zeroed";
  EXPECT_EQ(store.SeekData(1, 6 * kPage, true), UINT64_MAX);

  // Extending by a write further on: everything between reads as zeros.
  const uint64_t far = 20 * kPage + 7;
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, far, Bytes{0x42}));
  got = ReadBytes(store, 1, 0, far + 1);
  EXPECT_TRUE(std::equal(data.begin(), data.begin() + size, got.begin()));
  EXPECT_TRUE(AllZero(got.data() + size, far - size));
  EXPECT_EQ(got[far], 0x42);
  EXPECT_EQ(store.Usage(1).pages, 7u);

  // Growing is a no-op for the store; page-aligned shrinking keeps whole pages.
  ASSERT_TRUE(store.Truncate(1, 1 << 30).ok());
  EXPECT_EQ(store.Usage(1).pages, 7u);
  ASSERT_TRUE(store.Truncate(1, 3 * kPage).ok());
  EXPECT_EQ(store.Usage(1).pages, 3u);
  got = ReadBytes(store, 1, 0, 4 * kPage);
  EXPECT_TRUE(std::equal(data.begin(), data.begin() + 3 * kPage, got.begin()));
  EXPECT_TRUE(AllZero(got.data() + 3 * kPage, kPage));

  ASSERT_TRUE(store.Truncate(1, 0).ok());
  EXPECT_EQ(store.Usage(1).pages, 0u);
  const StoreStats s = store.Stats();
  EXPECT_EQ(s.orig_data_size, 0u);
  EXPECT_EQ(s.pool_pages, 0u);
  EXPECT_EQ(s.mem_used_total, 0u);
}

TEST(PageStoreTest, TruncatedRawTailPageIsRecompressed) {
  PageStore store(PageStoreOptions{});
  std::mt19937_64 rng(5);
  const Bytes data = RandomBytes(3 * kPage, rng);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, data));
  ASSERT_EQ(store.Stats().huge_pages, 3u);
  ASSERT_TRUE(store.Truncate(1, 2 * kPage + 100).ok());
  const StoreStats s = store.Stats();
  EXPECT_EQ(s.huge_pages, 2u) << "100 random bytes and zeros compress";
  EXPECT_EQ(s.pool_pages, 1u);
  ExpectMemFormula(s);
  const Bytes got = ReadBytes(store, 1, 0, 3 * kPage);
  EXPECT_TRUE(std::equal(data.begin(), data.begin() + 2 * kPage + 100, got.begin()));
  EXPECT_TRUE(AllZero(got.data() + 2 * kPage + 100, kPage - 100));
}

TEST(PageStoreTest, PunchHoleMakesWholePagesHoles) {
  PageStore store(PageStoreOptions{});
  Bytes model = TextBytes(8 * kPage, 4242);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, model));
  const uint64_t mem_before = store.Usage(1).stored_bytes;

  // [kPage + 10, 4 * kPage + 10): page 1 from byte 10 on, pages 2 and 3, page 4 up to byte 10.
  ASSERT_TRUE(store.PunchHole(1, kPage + 10, 3 * kPage).ok());
  std::fill(model.begin() + kPage + 10, model.begin() + 4 * kPage + 10, 0);
  EXPECT_EQ(store.Usage(1).pages, 6u) << "pages 2 and 3 become holes; edges stay";
  EXPECT_LT(store.Usage(1).stored_bytes, mem_before);
  EXPECT_EQ(store.Stats().orig_data_size, 6 * kPage);
  EXPECT_EQ(ReadBytes(store, 1, 0, model.size()), model);
  EXPECT_EQ(store.SeekData(1, kPage, false), 2 * kPage);
  EXPECT_EQ(store.SeekData(1, 2 * kPage, true), 4 * kPage);

  // Inside one page: the page stays, the bytes read as zeros.
  ASSERT_TRUE(store.PunchHole(1, 6 * kPage + 100, 100).ok());
  std::fill(model.begin() + 6 * kPage + 100, model.begin() + 6 * kPage + 200, 0);
  EXPECT_EQ(store.Usage(1).pages, 6u);
  EXPECT_EQ(ReadBytes(store, 1, 0, model.size()), model);

  // Over holes and beyond the data: no page is created.
  ASSERT_TRUE(store.PunchHole(1, 2 * kPage + 1, kPage).ok());
  ASSERT_TRUE(store.PunchHole(1, 100 * kPage + 1, 10 * kPage).ok());
  EXPECT_EQ(store.Usage(1).pages, 6u);
  EXPECT_EQ(ReadBytes(store, 1, 0, model.size()), model);

  // Zero length does nothing; the whole file leaves nothing behind.
  ASSERT_TRUE(store.PunchHole(1, 0, 0).ok());
  EXPECT_EQ(store.Usage(1).pages, 6u);
  ASSERT_TRUE(store.PunchHole(1, 0, 8 * kPage).ok());
  EXPECT_EQ(store.Usage(1).pages, 0u);
  const StoreStats s = store.Stats();
  EXPECT_EQ(s.orig_data_size, 0u);
  EXPECT_EQ(s.pool_pages, 0u);
  EXPECT_EQ(s.compr_data_size, 0u);
}

TEST(PageStoreTest, ZeroRangeKeepsPagesAsZeroPages) {
  PageStore store(PageStoreOptions{});
  Bytes model = TextBytes(8 * kPage, 99);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, model));
  const uint64_t compr_before = store.Stats().compr_data_size;

  ASSERT_TRUE(store.ZeroRange(1, kPage, 3 * kPage).ok());
  std::fill(model.begin() + kPage, model.begin() + 4 * kPage, 0);
  EXPECT_EQ(ReadBytes(store, 1, 0, model.size()), model);
  EXPECT_EQ(store.Usage(1).pages, 8u) << "zeroed pages stay allocated";
  StoreStats s = store.Stats();
  EXPECT_EQ(s.same_pages, 3u);
  EXPECT_EQ(s.orig_data_size, 8 * kPage);
  EXPECT_LT(s.compr_data_size, compr_before);
  EXPECT_EQ(store.SeekData(1, kPage, false), 8 * kPage) << "zero pages are data, not holes";

  // A partial range inside a page.
  ASSERT_TRUE(store.ZeroRange(1, 5 * kPage + 100, 200).ok());
  std::fill(model.begin() + 5 * kPage + 100, model.begin() + 5 * kPage + 300, 0);
  EXPECT_EQ(ReadBytes(store, 1, 0, model.size()), model);
  EXPECT_EQ(store.Usage(1).pages, 8u);

  // Over holes, unaligned: every page the range touches becomes a zero page.
  ASSERT_TRUE(store.ZeroRange(1, 20 * kPage + 5, kPage).ok());
  EXPECT_EQ(store.Usage(1).pages, 10u);
  s = store.Stats();
  EXPECT_EQ(s.same_pages, 5u);
  EXPECT_EQ(s.orig_data_size, 10 * kPage);
  EXPECT_TRUE(AllZero(ReadBytes(store, 1, 20 * kPage, 2 * kPage).data(), 2 * kPage));
  ExpectMemFormula(s);
}

TEST(PageStoreTest, AllocateTurnsHolesIntoZeroPages) {
  PageStore store(PageStoreOptions{});
  const Bytes a = TextBytes(kPage, 1), b = TextBytes(kPage, 50000);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, a));
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 3 * kPage, b));
  const StoreStats before = store.Stats();

  ASSERT_TRUE(store.Allocate(1, 0, 6 * kPage).ok());
  EXPECT_EQ(store.Usage(1).pages, 6u);
  StoreStats s = store.Stats();
  EXPECT_EQ(s.same_pages, 4u);
  EXPECT_EQ(s.orig_data_size, 6 * kPage);
  EXPECT_EQ(s.compr_data_size, before.compr_data_size) << "existing pages untouched";
  EXPECT_EQ(s.pool_pages, before.pool_pages);
  const Bytes got = ReadBytes(store, 1, 0, 6 * kPage);
  EXPECT_TRUE(std::equal(a.begin(), a.end(), got.begin()));
  EXPECT_TRUE(AllZero(got.data() + kPage, 2 * kPage));
  EXPECT_TRUE(std::equal(b.begin(), b.end(), got.begin() + 3 * kPage));
  EXPECT_TRUE(AllZero(got.data() + 4 * kPage, 2 * kPage));
  EXPECT_EQ(store.SeekData(1, 0, false), 6 * kPage);

  // One byte allocates its page; zero length allocates nothing.
  ASSERT_TRUE(store.Allocate(1, 10 * kPage + 4095, 1).ok());
  EXPECT_EQ(store.Usage(1).pages, 7u);
  ASSERT_TRUE(store.Allocate(1, 20 * kPage, 0).ok());
  EXPECT_EQ(store.Usage(1).pages, 7u);
  // Allocate creates a file that did not exist.
  ASSERT_TRUE(store.Allocate(2, kPage - 1, 2).ok());
  EXPECT_EQ(store.Usage(2).pages, 2u);
  EXPECT_EQ(store.Usage(2).stored_bytes, 0u) << "zero pages cost no memory";
}

TEST(PageStoreTest, RemoveFreesEverything) {
  TestArena arena;
  PageStore store(WithArena(&arena));
  std::mt19937_64 rng(6);
  for (PageStore::FileId id = 1; id <= 3; ++id) {
    ASSERT_NO_FATAL_FAILURE(WriteOk(store, id, 0, TextBytes(40 * kPage, id * 1000)));
    ASSERT_NO_FATAL_FAILURE(WriteOk(store, id, 50 * kPage, RandomBytes(5 * kPage, rng)));
    ASSERT_NO_FATAL_FAILURE(WriteOk(store, id, 60 * kPage, Bytes(3 * kPage, 0)));
  }
  StoreStats s = store.Stats();
  ASSERT_GT(s.pool_pages, 0u);
  ASSERT_EQ(s.huge_pages, 15u);
  ASSERT_EQ(s.same_pages, 9u);
  ASSERT_EQ(s.orig_data_size, 3 * 48 * kPage);
  EXPECT_EQ(arena.PagesInUse(), s.pool_pages + s.huge_pages);

  store.Remove(2);
  EXPECT_EQ(store.Usage(2).pages, 0u);
  EXPECT_TRUE(AllZero(ReadBytes(store, 2, 0, 64 * kPage).data(), 64 * kPage));
  EXPECT_EQ(store.Stats().orig_data_size, 2 * 48 * kPage);
  store.Remove(1);
  store.Remove(3);
  store.Remove(3);  // Twice, and unknown files, are fine.
  store.Remove(12345);
  ExpectEmpty(store.Stats());
  EXPECT_EQ(arena.PagesInUse(), 0u) << "every page went back to the arena";

  // A removed id can be used again from scratch.
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 2, kPage, TextBytes(10)));
  EXPECT_EQ(store.Usage(2).pages, 1u);
  EXPECT_TRUE(AllZero(ReadBytes(store, 2, 0, kPage).data(), kPage));
}

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
  EXPECT_EQ(store.Usage(1).stored_bytes + store.Usage(2).stored_bytes <= s.mem_used_total, true);
  std::cout << "text: orig " << s.orig_data_size << " compr " << s.compr_data_size << " mem "
            << s.mem_used_total << " pool_pages " << s.pool_pages << " buddied " << s.buddied_pages
            << "\n";
}

TEST(PageStoreTest, OverwriteFreesMemory) {
  TestArena arena;
  PageStore store(WithArena(&arena));
  std::mt19937_64 rng(11);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, TextBytes(200 * kPage, 3)));
  ASSERT_GT(store.Stats().pool_pages, 50u);

  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, Bytes(200 * kPage, 0)));
  StoreStats s = store.Stats();
  EXPECT_EQ(s.pool_pages, 0u);
  EXPECT_EQ(s.buddied_pages, 0u);
  EXPECT_EQ(s.mem_used_total, s.index_bytes);
  EXPECT_EQ(s.compr_data_size, 0u);
  EXPECT_EQ(s.same_pages, 200u);
  EXPECT_EQ(s.orig_data_size, 200 * kPage);
  EXPECT_EQ(store.Usage(1).stored_bytes, 0u);
  EXPECT_EQ(arena.PagesInUse(), 0u);

  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, RandomBytes(50 * kPage, rng)));
  EXPECT_EQ(store.Stats().huge_pages, 50u);
  EXPECT_EQ(store.Stats().same_pages, 150u);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, TextBytes(50 * kPage, 9)));
  s = store.Stats();
  EXPECT_EQ(s.huge_pages, 0u);
  EXPECT_GT(s.pool_pages, 0u);
  EXPECT_EQ(arena.PagesInUse(), s.pool_pages);
  ExpectMemFormula(s);
}

TEST(PageStoreTest, SeekDataFindsDataAndHoles) {
  PageStore store(PageStoreOptions{});
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 2 * kPage, TextBytes(2 * kPage)));
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 70 * kPage + 5, Bytes{1}));  // Chunk 1.
  EXPECT_EQ(store.SeekData(1, 0, true), 2 * kPage);
  EXPECT_EQ(store.SeekData(1, 2 * kPage + 5, true), 2 * kPage + 5);
  EXPECT_EQ(store.SeekData(1, 4 * kPage, true), 70 * kPage);
  EXPECT_EQ(store.SeekData(1, 70 * kPage + 100, true), 70 * kPage + 100);
  EXPECT_EQ(store.SeekData(1, 71 * kPage, true), UINT64_MAX);
  EXPECT_EQ(store.SeekData(1, 0, false), 0u);
  EXPECT_EQ(store.SeekData(1, 2 * kPage, false), 4 * kPage);
  EXPECT_EQ(store.SeekData(1, 3 * kPage + 7, false), 4 * kPage);
  EXPECT_EQ(store.SeekData(1, 5 * kPage + 7, false), 5 * kPage + 7);
  EXPECT_EQ(store.SeekData(1, 70 * kPage + 1, false), 71 * kPage);
  EXPECT_EQ(store.SeekData(1, uint64_t{1} << 45, false), uint64_t{1} << 45);
  // A full chunk (pages 64..127 with 70 already there) pushes the next hole past it.
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 64 * kPage, TextBytes(64 * kPage, 1)));
  EXPECT_EQ(store.SeekData(1, 64 * kPage, false), 128 * kPage);
  EXPECT_EQ(store.SeekData(1, 4 * kPage, true), 64 * kPage);
}

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
  EXPECT_EQ(store.Truncate(1, 100).code(), EIO);
  EXPECT_EQ(store.PunchHole(1, 100, 10).code(), EIO);
  EXPECT_EQ(store.Usage(1).pages, 1u);

  // Undo the damage: the page was left exactly as it was.
  flip();
  EXPECT_EQ(ReadBytes(store, 1, 0, kPage), text);
  // And a whole-page overwrite of a damaged page needs no merge.
  flip();
  const Bytes other = TextBytes(kPage, 999);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, other));
  EXPECT_EQ(ReadBytes(store, 1, 0, kPage), other);
}

TEST(PageStoreTest, LevelsRoundTrip) {
  std::mt19937_64 rng(13);
  Bytes data = TextBytes(64 * kPage, 2222);
  const Bytes noise = RandomBytes(8 * kPage, rng);
  data.insert(data.end(), noise.begin(), noise.end());
  data.resize(data.size() + 8 * kPage, 0);
  uint64_t compr_fast = 0, compr_slow = 0;
  for (int level : {-5, -1, 1, 3}) {
    SCOPED_TRACE(level);
    PageStoreOptions o;
    o.zstd_level = level;
    PageStore store(o);
    ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 3, data));
    EXPECT_EQ(ReadBytes(store, 1, 3, data.size()), data);
    const StoreStats s = store.Stats();
    EXPECT_EQ(s.huge_pages, 8u);
    if (level == -5) compr_fast = s.compr_data_size;
    if (level == 3) compr_slow = s.compr_data_size;
  }
  EXPECT_GT(compr_fast, compr_slow);
}

// fallocate of 100 GiB on a 4 TiB store (issue 14, 4c): the range is an extent, not an
// entry a page (it took 430 MB), yet it is used capacity, data to SEEK_DATA, zeros to read,
// written without a second reservation, and given back by punch, truncate and remove.
TEST(PageStoreTest, AllocateOfAHugeRangeIsOneExtent) {
  PageStoreOptions o;
  o.capacity_bytes = uint64_t{4} << 40;
  PageStore store(o);
  const uint64_t len = uint64_t{100} << 30, pages = len / kPage;
  ASSERT_TRUE(store.Allocate(1, 0, len).ok());
  StoreStats s = store.Stats();
  EXPECT_EQ(s.orig_data_size, len);
  EXPECT_EQ(s.same_pages, pages);
  EXPECT_LT(s.index_bytes, 4096u) << "one extent, not 26 million entries";
  EXPECT_EQ(s.mem_used_total, s.index_bytes);
  EXPECT_EQ(store.Usage(1).pages, pages);
  EXPECT_EQ(store.SeekData(1, 12345, /*want_data=*/true), 12345u);
  EXPECT_EQ(store.SeekData(1, 0, /*want_data=*/false), len);
  EXPECT_EQ(ReadBytes(store, 1, len / 2, 3 * kPage), Bytes(3 * kPage, 0));
  // Writing into it uses no more capacity; the rest stays allocated.
  const Bytes text = TextBytes(4 * kPage, 5);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, len / 2, text));
  EXPECT_EQ(store.Stats().orig_data_size, len);
  EXPECT_EQ(ReadBytes(store, 1, len / 2, text.size()), text);
  // Past capacity: nothing of it is allocated.
  EXPECT_EQ(store.Allocate(2, 0, o.capacity_bytes).code(), ENOSPC);
  EXPECT_EQ(store.Usage(2).pages, 0u);
  EXPECT_EQ(store.Stats().orig_data_size, len);
  // Punch and truncate give it back.
  ASSERT_TRUE(store.PunchHole(1, 0, len / 4).ok());
  EXPECT_EQ(store.Stats().orig_data_size, len - len / 4);
  EXPECT_EQ(store.SeekData(1, 0, /*want_data=*/true), len / 4);
  ASSERT_TRUE(store.Truncate(1, len / 2 + kPage).ok());
  EXPECT_EQ(store.Stats().orig_data_size, len / 4 + kPage);
  EXPECT_EQ(ReadBytes(store, 1, len / 2, kPage), Bytes(text.begin(), text.begin() + kPage));
  store.Remove(1);
  ExpectEmpty(store.Stats());
}

// A zero range is preallocation too: its whole pages become one zero run (a zeroed 100 GiB
// costs a few bytes of index), stored pages inside it are freed and read as zeros, its
// capacity is taken all or nothing, and the partial pages at its edges keep their other bytes.
TEST(PageStoreTest, ZeroRangeOfAHugeRangeIsOneExtent) {
  PageStoreOptions o;
  o.capacity_bytes = uint64_t{4} << 40;
  PageStore store(o);
  const uint64_t len = uint64_t{100} << 30, pages = len / kPage;
  const Bytes text = TextBytes(8 * kPage, 9);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, len / 2, text));
  ASSERT_GT(store.Stats().pool_pages, 0u);
  ASSERT_TRUE(store.ZeroRange(1, 100, len).ok());  // Pages 0 and 100 GiB / 4 KiB are partial.
  StoreStats s = store.Stats();
  EXPECT_EQ(s.orig_data_size, (pages + 1) * kPage);
  EXPECT_EQ(s.pool_pages, 0u) << "the text pages inside the range are freed";
  EXPECT_LT(s.index_bytes, 4096u) << "one extent, not 26 million entries";
  EXPECT_EQ(s.mem_used_total, s.index_bytes);
  EXPECT_EQ(ReadBytes(store, 1, len / 2, text.size()), Bytes(text.size(), 0));
  EXPECT_EQ(store.SeekData(1, 0, /*want_data=*/false), len + kPage);
  // Past capacity: nothing more is taken, and what was there stays.
  EXPECT_EQ(store.ZeroRange(2, 0, o.capacity_bytes).code(), ENOSPC);
  EXPECT_EQ(store.Usage(2).pages, 0u);
  EXPECT_EQ(store.Stats().orig_data_size, (pages + 1) * kPage);
  // Over stored pages only, the capacity they held is kept: a full store can still zero them.
  PageStoreOptions small;
  small.capacity_bytes = 16 * kPage;
  PageStore full(small);
  ASSERT_NO_FATAL_FAILURE(WriteOk(full, 1, 0, TextBytes(16 * kPage, 3)));
  ASSERT_TRUE(full.ZeroRange(1, 0, 16 * kPage).ok());
  EXPECT_EQ(full.Stats().orig_data_size, 16 * kPage);
  EXPECT_EQ(ReadBytes(full, 1, 0, 16 * kPage), Bytes(16 * kPage, 0));
  store.Remove(1);
  ExpectEmpty(store.Stats());
}

// The index is memory too (issue 14, 4b): mem_used_total (and what reclaim compares with
// mem_limit) includes it, e.g. for zero pages that hold no other memory.
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
  uint64_t samples = 0, worst = 0;
  std::thread sampler([&] {
    while (!done.load()) {
      const StoreStats s = store.Stats();  // orig_data_size is read before pool_pages.
      const uint64_t orig_pages = s.orig_data_size / kPage;
      if (s.pool_pages > orig_pages) worst = std::max(worst, s.pool_pages - orig_pages);
      ++samples;
    }
  });
  store.Remove(1);
  done = true;
  sampler.join();
  std::cout << samples << " samples during the remove\n";
  EXPECT_EQ(worst, 0u) << "pool pages beyond what orig_data_size counts";
  EXPECT_EQ(store.Stats().mem_used_total, 0u);
}

}  // namespace
}  // namespace zbudfs

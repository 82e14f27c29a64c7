// Unit tests of PageStore reads and writes: byte ranges across 4 KiB pages, partial-page
// read-modify-write, holes, unknown files, overwrites, SEEK_DATA/SEEK_HOLE and zstd levels.
// Truncate, punch, zero range, allocate and remove: page_store_truncate_punch_test.cc;
// statistics: page_store_stats_test.cc; failures: page_store_errors_test.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "store/page_store.h"
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
    EXPECT_TRUE(SameBytes(wide.data() + before, data.data(), data.size()));
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
  EXPECT_TRUE(SameBytes(all.data(), a.data(), a.size()));
  EXPECT_TRUE(AllZero(all.data() + kPage, 9 * kPage + 50));
  EXPECT_TRUE(SameBytes(all.data() + 10 * kPage + 50, b.data(), b.size()));
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

}  // namespace
}  // namespace zbudfs

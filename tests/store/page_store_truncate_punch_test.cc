// Unit tests of the PageStore calls that shrink, clear or preallocate a file: truncate,
// punch hole, zero range, allocate (also of ranges kept as one extent) and remove.
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
  EXPECT_TRUE(SameBytes(got.data(), data.data(), size));
  EXPECT_TRUE(AllZero(got.data() + size, 10 * kPage - size)) << "tail of the last page zeroed";
  EXPECT_EQ(store.SeekData(1, 6 * kPage, true), UINT64_MAX);

  // Extending by a write further on: everything between reads as zeros.
  const uint64_t far = 20 * kPage + 7;
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, far, Bytes{0x42}));
  got = ReadBytes(store, 1, 0, far + 1);
  EXPECT_TRUE(SameBytes(got.data(), data.data(), size));
  EXPECT_TRUE(AllZero(got.data() + size, far - size));
  EXPECT_EQ(got[far], 0x42);
  EXPECT_EQ(store.Usage(1).pages, 7u);

  // Growing is a no-op for the store; page-aligned shrinking keeps whole pages.
  ASSERT_TRUE(store.Truncate(1, 1 << 30).ok());
  EXPECT_EQ(store.Usage(1).pages, 7u);
  ASSERT_TRUE(store.Truncate(1, 3 * kPage).ok());
  EXPECT_EQ(store.Usage(1).pages, 3u);
  got = ReadBytes(store, 1, 0, 4 * kPage);
  EXPECT_TRUE(SameBytes(got.data(), data.data(), 3 * kPage));
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
  EXPECT_TRUE(SameBytes(got.data(), data.data(), 2 * kPage + 100));
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
  EXPECT_TRUE(SameBytes(got.data(), a.data(), a.size()));
  EXPECT_TRUE(AllZero(got.data() + kPage, 2 * kPage));
  EXPECT_TRUE(SameBytes(got.data() + 3 * kPage, b.data(), b.size()));
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

}  // namespace
}  // namespace zbudfs

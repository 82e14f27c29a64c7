// Large reads decoded in parts by DecodePool helpers return what a plain read returns: every
// kind of page (zbud, raw, same-filled, zeros, holes, overflow), at any offset and length.
#include <gtest/gtest.h>

#include <random>
#include <thread>
#include <vector>

#include "store/page_store.h"
#include "tests/same_bytes.h"
#include "tests/store/page_store_test_util.h"

namespace zbudfs {
namespace {

using namespace store_test;  // NOLINT(build/namespaces): the shared test helpers.

constexpr uint64_t kFileBytes = 3 * 1024 * 1024 + 3 * 4096;

// A file of mixed pages with holes: MixedData written in runs with gaps left unwritten.
Bytes WriteMixedWithHoles(PageStore& store, PageStore::FileId id) {
  Bytes want(kFileBytes, 0);
  const Bytes data = MixedData(kFileBytes, 7);
  const Bytes text = TextBytes(kFileBytes);
  for (uint64_t off = 0; off < kFileBytes; off += 40 * kPage) {
    const uint64_t n = std::min<uint64_t>(29 * kPage + 123, kFileBytes - off);
    const Bytes& from = (off / kPage) % 3 == 0 ? text : data;
    Bytes chunk(from.begin() + static_cast<std::ptrdiff_t>(off),
                from.begin() + static_cast<std::ptrdiff_t>(off + n));
    WriteOk(store, id, off, chunk);
    std::copy(chunk.begin(), chunk.end(), want.begin() + static_cast<std::ptrdiff_t>(off));
  }
  return want;
}

// Reads of every size class at random offsets, each checked against want.
void ExpectReadsMatch(PageStore& store, PageStore::FileId id, const Bytes& want) {
  std::mt19937_64 rng(11);
  for (int i = 0; i < 60; ++i) {
    const uint64_t len = i % 3 == 0 ? 1024 * 1024 : 256 * 1024 + rng() % (700 * 1024);
    const uint64_t off = rng() % (kFileBytes - len);
    const Bytes got = ReadBytes(store, id, off, len);
    ASSERT_TRUE(SameBytes(got, Bytes(want.begin() + static_cast<std::ptrdiff_t>(off),
                                     want.begin() + static_cast<std::ptrdiff_t>(off + len))))
        << "read of " << len << " bytes at " << off;
  }
  // Past the end of what was written: zeros.
  ASSERT_TRUE(AllZero(ReadBytes(store, id, kFileBytes, 512 * 1024).data(), 512 * 1024));
}

TEST(PageStoreParallelReadTest, LargeReadsMatchWhatWasWritten) {
  PageStoreOptions o;
  o.decode_threads = 3;
  PageStore store(o);
  const Bytes want = WriteMixedWithHoles(store, 1);
  ExpectReadsMatch(store, 1, want);
}

// With most pages in the overflow store, parts read and decode overflow pages in parallel,
// and promote them back as a plain read would.
TEST(PageStoreParallelReadTest, LargeReadsOfOverflowPagesMatch) {
  test::TempDir dir;
  auto ov = OverflowStore::Open({dir.path(), 0, nullptr});
  ASSERT_TRUE(ov.ok()) << ov.status().ToString();
  PageStoreOptions o;
  o.mem_limit = 512 * 1024;
  o.overflow = std::shared_ptr<OverflowStore>(std::move(ov).value());
  o.background_reclaim = false;
  o.decode_threads = 2;
  PageStore store(o);
  const Bytes want = WriteMixedWithHoles(store, 3);
  ASSERT_GT(store.Stats().overflow_pages, 0u);
  ExpectReadsMatch(store, 3, want);
  ExpectReadsMatch(store, 3, want);  // Again, after promotions.
}

// Readers of one file in parallel with a writer of another: each read is whole.
TEST(PageStoreParallelReadTest, ConcurrentLargeReadsWhileAnotherFileIsWritten) {
  PageStoreOptions o;
  o.decode_threads = 2;
  PageStore store(o);
  const Bytes want = WriteMixedWithHoles(store, 5);
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] { ExpectReadsMatch(store, 5, want); });
  }
  threads.emplace_back([&] {
    const Bytes other = TextBytes(2 * 1024 * 1024);
    for (int i = 0; i < 4; ++i) WriteOk(store, 6, 0, other);
  });
  for (std::thread& t : threads) t.join();
}

}  // namespace
}  // namespace zbudfs

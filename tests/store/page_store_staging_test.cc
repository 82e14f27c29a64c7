// The staging tier (store/stager.h): whole pages kept as written, read back as written,
// compressed by background threads into the same forms a writer would give them, within
// the budget and mem_limit, and safe against overwrites, truncates and removes racing the
// compressors.
#include <atomic>
#include <thread>

#include "tests/store/page_store_test_util.h"

namespace zbudfs {
namespace {

using namespace store_test;  // NOLINT(build/namespaces): the shared test helpers.

PageStoreOptions Staging(PageArena* arena, uint64_t pages, unsigned threads) {
  PageStoreOptions o = WithArena(arena);
  o.staging_bytes = pages * kPage;
  o.compress_threads = threads;
  return o;
}

// Text written in whole pages reads back at once and, once the compressors are done, is in
// zbud exactly as without staging: same pool pages, same compressed bytes.
TEST(PageStoreStagingTest, StagedPagesReadBackAndEndCompressedAsInline) {
  const Bytes data = TextBytes(256 * kPage, 12345);
  TestArena inline_arena, staged_arena;
  PageStoreOptions plain = WithArena(&inline_arena);
  plain.zstd_fast_level = plain.zstd_level;  // One zstd pass: the same bytes either way.
  PageStoreOptions staged = Staging(&staged_arena, 1024, 2);
  staged.zstd_fast_level = staged.zstd_level;
  PageStore a(plain), b(staged);
  WriteOk(a, 1, 0, data);
  WriteOk(b, 1, 0, data);
  EXPECT_TRUE(SameBytes(ReadBytes(b, 1, 0, data.size()), data));
  b.WaitForStaging();
  const StoreStats sa = a.Stats(), sb = b.Stats();
  EXPECT_EQ(sb.staged_pages, 0u);
  EXPECT_EQ(sb.huge_pages, sa.huge_pages);
  EXPECT_EQ(sb.compr_data_size, sa.compr_data_size);
  EXPECT_EQ(sb.orig_data_size, sa.orig_data_size);
  EXPECT_GT(sb.pool_pages, 0u);
  EXPECT_LT(sb.pool_pages, 256u);
  EXPECT_EQ(b.Usage(1).stored_bytes, a.Usage(1).stored_bytes);
  ExpectMemFormula(sb);
  EXPECT_EQ(staged_arena.PagesInUse(), sb.pool_pages + sb.huge_pages);
  EXPECT_TRUE(SameBytes(ReadBytes(b, 1, 0, data.size()), data));
}

// With the compressors not yet done, staged pages are counted as such and as memory.
TEST(PageStoreStagingTest, StagedPagesAreCountedUntilCompressed) {
  TestArena arena;
  PageStore store(Staging(&arena, 64, 1));
  std::mt19937_64 rng(7);
  const Bytes random = RandomBytes(16 * kPage, rng);  // Stays raw once looked at.
  WriteOk(store, 1, 0, random);
  StoreStats s = store.Stats();
  EXPECT_EQ(s.staged_pages + s.huge_pages, 16u);
  EXPECT_EQ(s.mem_used_total,
            (s.pool_pages + s.huge_pages + s.staged_pages) * kPage + s.index_bytes);
  store.WaitForStaging();
  s = store.Stats();
  EXPECT_EQ(s.staged_pages, 0u);
  EXPECT_EQ(s.huge_pages, 16u);  // Incompressible: raw for good.
  ExpectMemFormula(s);
  EXPECT_TRUE(SameBytes(ReadBytes(store, 1, 0, random.size()), random));
}

// Many writes of more pages than the budget holds: the staged count never passes it (the rest
// are compressed by their writers), and every byte reads back.
TEST(PageStoreStagingTest, ConcurrentStagedCountNeverPassesTheBudget) {
  TestArena arena;
  constexpr uint64_t kBudget = 8;
  PageStore store(Staging(&arena, kBudget, 1));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> worst{0};
  std::thread watcher([&] {
    while (!stop.load()) {
      const uint64_t staged = store.Stats().staged_pages;
      uint64_t w = worst.load();
      while (staged > w && !worst.compare_exchange_weak(w, staged)) {
      }
    }
  });
  Bytes model;
  for (int i = 0; i < 64; ++i) {
    const Bytes data = TextBytes(32 * kPage, static_cast<size_t>(i) * 7919);
    WriteOk(store, 1, static_cast<uint64_t>(i % 8) * 16 * kPage, data);
    const size_t off = static_cast<size_t>(i % 8) * 16 * kPage;
    if (model.size() < off + data.size()) model.resize(off + data.size());
    std::copy(data.begin(), data.end(), model.begin() + static_cast<ptrdiff_t>(off));
  }
  stop = true;
  watcher.join();
  EXPECT_LE(worst.load(), kBudget);
  EXPECT_TRUE(SameBytes(ReadBytes(store, 1, 0, model.size()), model));
  store.WaitForStaging();
  EXPECT_EQ(store.Stats().staged_pages, 0u);
}

// Writers overwrite, truncate and remove their files while two compressors work on the pages
// they staged: every read matches the writer's model, and at the end nothing is left staged
// and the statistics add up.
TEST(PageStoreStagingTest, ConcurrentOverwritesTruncatesRemovesWhileCompressing) {
  TestArena arena;
  PageStore store(Staging(&arena, 256, 2));
  constexpr int kThreads = 3;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(500 + t);
      const PageStore::FileId id = 20 + t;
      const Bytes source = MixedData(1 << 20, 40 + t);
      Bytes model;
      for (int op = 0; op < 400 && failures == 0; ++op) {
        const int kind = static_cast<int>(rng() % 10);
        if (kind < 6) {
          const bool aligned = rng() % 2 == 0;
          const size_t off = aligned ? (rng() % 64) * kPage : rng() % (256 << 10);
          const size_t len = aligned ? (1 + rng() % 16) * kPage : 1 + rng() % (32 << 10);
          const size_t src = rng() % (source.size() - len);
          if (!store.Write(id, off, source.data() + src, len).ok()) ++failures;
          if (model.size() < off + len) model.resize(off + len);
          std::memcpy(model.data() + off, source.data() + src, len);
        } else if (kind < 8) {
          const size_t size = rng() % (model.size() + 1);
          if (!store.Truncate(id, size).ok()) ++failures;
          model.resize(size);
        } else if (kind == 8) {
          store.Remove(id);
          model.clear();
        } else if (!SameBytes(ReadBytes(store, id, 0, model.size()), model)) {
          ++failures;
        }
      }
      if (!SameBytes(ReadBytes(store, id, 0, model.size()), model)) ++failures;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  store.WaitForStaging();
  const StoreStats s = store.Stats();
  EXPECT_EQ(s.staged_pages, 0u);
  ExpectMemFormula(s);
  EXPECT_EQ(arena.PagesInUse(), s.pool_pages + s.huge_pages);
  for (int t = 0; t < kThreads; ++t) store.Remove(20 + t);
  ExpectEmpty(store.Stats());
  EXPECT_EQ(arena.PagesInUse(), 0u);
}

// Under a small mem_limit with an overflow directory, staged pages count in memory: writers
// from several threads all succeed, memory stays within the limit (plus a page per writer and
// per compressor), and everything reads back after reclaim.
TEST(PageStoreStagingTest, ConcurrentWritersAtASmallMemLimitAllSucceedAndReadBack) {
  constexpr uint64_t kLimit = 256 << 10;
  TestArena arena;  // Its count of pages in use is one atomic: a consistent figure.
  OverflowFixture fx(kLimit, 0, /*background=*/true, nullptr, &arena, {}, /*staging_pages=*/8,
                     /*compress_threads=*/2);
  constexpr int kThreads = 4;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> worst{0};
  std::thread watcher([&] {
    while (!stop.load()) {
      // MemUsed() adds counters read one after another, which can catch an eviction's
      // free and the next allocation both in the pool's and the raw pages' figures.
      const uint64_t used = arena.PagesInUse() * kPage + fx.store->Stats().index_bytes;
      uint64_t w = worst.load();
      while (used > w && !worst.compare_exchange_weak(w, used)) {
      }
    }
  });
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const Bytes data = MixedData(1 << 20, 70 + t);
      for (size_t off = 0; off < data.size(); off += 64 * kPage) {
        if (!fx.store->Write(t, off, data.data() + off, 64 * kPage).ok()) ++failures;
      }
      if (!SameBytes(ReadBytes(*fx.store, t, 0, data.size()), data)) ++failures;
    });
  }
  for (auto& th : threads) th.join();
  stop = true;
  watcher.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_LE(worst.load(), kLimit + (kThreads + 2) * kPage);
  EXPECT_GT(fx.store->Stats().written_back_pages, 0u);
}

// A store destroyed with pages still queued for the compressors frees them all (ASan).
TEST(PageStoreStagingTest, DestroyedWithPagesQueued) {
  TestArena arena;
  {
    PageStore store(Staging(&arena, 4096, 1));
    for (PageStore::FileId f = 0; f < 8; ++f) WriteOk(store, f, 0, TextBytes(256 * kPage, f));
  }
  EXPECT_EQ(arena.PagesInUse(), 0u);
}

}  // namespace
}  // namespace zbudfs

namespace zbudfs {
namespace {

using namespace store_test;  // NOLINT(build/namespaces): the shared test helpers.

// With no overflow store, memory full of staged pages is not "no room": once compressed they
// take half as much or less. Writes of text that fits mem_limit compressed must all succeed
// (they failed with ENOSPC whenever the writer ran ahead of the compressor).
TEST(PageStoreStagingTest, FullOfStagedPagesWaitsForTheCompressorNotENOSPC) {
  TestArena arena;
  PageStoreOptions o = Staging(&arena, 32, 1);
  o.mem_limit = 72 * kPage;
  PageStore store(o);
  Bytes model;
  for (uint64_t i = 0; i < 8; ++i) {  // 128 pages of text: about 64 zbud pages.
    const Bytes data = TextBytes(16 * kPage, i * 16 * kPage);
    const Status st = store.Write(1, i * 16 * kPage, data.data(), data.size());
    ASSERT_TRUE(st.ok()) << "write " << i << ": " << st.ToString();
    model.insert(model.end(), data.begin(), data.end());
  }
  EXPECT_TRUE(SameBytes(ReadBytes(store, 1, 0, model.size()), model));
  store.WaitForStaging();
  EXPECT_LE(store.MemUsed(), o.mem_limit);
}

// Metadata (xattrs, symlink targets) charged while memory is full of staged pages waits for
// the compressor too: once compressed, the pages leave room for it (it failed with ENOSPC).
TEST(PageStoreStagingTest, MetadataChargedWhileFullOfStagedPagesWaitsNotENOSPC) {
  TestArena arena;
  PageStoreOptions o = Staging(&arena, 256, 1);
  o.mem_limit = 400 * kPage;
  PageStore store(o);
  const Bytes data = TextBytes(256 * kPage, 99);  // About 128 zbud pages once compressed.
  WriteOk(store, 1, 0, data);
  const Status st = store.ChargeMetadata(260 * kPage);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_LE(store.MemUsed(), o.mem_limit);
  EXPECT_EQ(store.Stats().metadata_bytes, 260 * kPage);
  EXPECT_TRUE(SameBytes(ReadBytes(store, 1, 0, data.size()), data));
  // More than compression can ever free is still refused, and nothing stays charged.
  EXPECT_EQ(store.ChargeMetadata(300 * kPage).code(), ENOSPC);
  EXPECT_EQ(store.Stats().metadata_bytes, 260 * kPage);
  EXPECT_TRUE(store.ChargeMetadata(-260 * static_cast<int64_t>(kPage)).ok());
}

}  // namespace
}  // namespace zbudfs

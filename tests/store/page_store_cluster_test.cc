// Clusters (store/cluster.h): cold pages packed several to a zstd frame read back exactly,
// hold more pages per pool page than single pages can, and stay exact through overwrites,
// truncates, punches, removal, reclaim (unpacked into overflow pages, or packing the pages
// it takes before it writes them out) and concurrent packing, all with memory accounted as
// the formula says.
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "tests/store/page_store_test_util.h"

namespace zbudfs {
namespace {

using namespace store_test;  // NOLINT(build/namespaces): the shared test helpers.

PageStoreOptions Clustered(PageArena* arena, unsigned pages = 4) {
  PageStoreOptions o = WithArena(arena);
  o.cluster_pages = pages;
  return o;
}

// Clusters of 4 pages over an overflow store in dir, with mem_limit and no reclaim thread.
PageStoreOptions ClusteredOverflow(const test::TempDir& dir, uint64_t mem_limit) {
  auto ov = OverflowStore::Open({dir.path(), 0, nullptr});
  EXPECT_TRUE(ov.ok()) << ov.status().ToString();
  PageStoreOptions o;
  o.overflow = std::shared_ptr<OverflowStore>(std::move(ov).value());
  o.mem_limit = mem_limit;
  o.background_reclaim = false;
  o.cluster_pages = 4;
  return o;
}

// A page of 200 bytes of text and zeros: it compresses to about 100 bytes.
Bytes SmallPage() {
  Bytes page(kPage, 0);
  const Bytes text = TextBytes(200, 11);
  std::copy(text.begin(), text.end(), page.begin());
  return page;
}

// Pages of real text packed four at a time: every byte reads back, every page counts as
// clustered, and memory falls below what zbud's two-per-page rule allows.
TEST(PageStoreClusterTest, PackedPagesReadBackInLessMemory) {
  const Bytes data = TextBytes(256 * kPage, 777);
  TestArena arena;
  PageStore store(Clustered(&arena));
  WriteOk(store, 1, 0, data);
  const StoreStats before = store.Stats();
  EXPECT_EQ(store.Pack(1), 256u);
  const StoreStats after = store.Stats();
  EXPECT_EQ(after.clustered_pages, 256u);
  EXPECT_EQ(after.clusters, 64u);
  EXPECT_GE(after.cluster_allocations, after.clusters);
  EXPECT_EQ(after.orig_data_size, before.orig_data_size);
  ExpectMemFormula(after);
  // Text compresses 3-4x: single pages hit zbud's cap of 2, clusters pass it.
  EXPECT_GT(static_cast<double>(before.pool_pages), 256 / 2.05);
  EXPECT_LT(after.mem_used_total * 5, before.mem_used_total * 4)
      << "before " << before.mem_used_total << " after " << after.mem_used_total;
  EXPECT_TRUE(SameBytes(ReadBytes(store, 1, 0, data.size()), data));
  EXPECT_EQ(store.Usage(1).pages, 256u);
  EXPECT_LT(store.Usage(1).stored_bytes, before.pool_pages * kPage);
  EXPECT_EQ(arena.PagesInUse(), after.pool_pages);
  EXPECT_EQ(store.Pack(1), 0u);  // Nothing left to pack.
}

// Incompressible, same-filled and zero pages are never clustered; off means off.
TEST(PageStoreClusterTest, OnlySingleCompressedPagesArePacked) {
  TestArena arena;
  std::mt19937_64 rng(3);
  PageStore store(Clustered(&arena));
  WriteOk(store, 1, 0, RandomBytes(8 * kPage, rng));
  WriteOk(store, 2, 0, WordBytes(8 * kPage, 0x4242424242424242));
  ASSERT_TRUE(store.Allocate(3, 0, uint64_t{1} << 40).ok());  // 2^28 zero pages: skipped whole.
  EXPECT_EQ(store.PackAll(), 0u);
  EXPECT_EQ(store.Stats().clustered_pages, 0u);
  TestArena arena2;
  PageStore off(WithArena(&arena2));
  WriteOk(off, 1, 0, TextBytes(16 * kPage));
  EXPECT_EQ(off.Pack(1), 0u);
}

// Overwriting a clustered page stores it alone; its neighbours still read from the cluster,
// and the cluster goes when its last page does.
TEST(PageStoreClusterTest, OverwriteInsideAClusterKeepsItsNeighbours) {
  Bytes model = TextBytes(16 * kPage, 99);
  TestArena arena;
  PageStore store(Clustered(&arena));
  WriteOk(store, 1, 0, model);
  ASSERT_EQ(store.Pack(1), 16u);
  const Bytes fresh = TextBytes(kPage, 5000);
  WriteOk(store, 1, 1 * kPage, fresh);
  std::copy(fresh.begin(), fresh.end(), model.begin() + kPage);
  const Bytes part = TextBytes(100, 9000);  // A partial page: read, merged, rewritten.
  WriteOk(store, 1, 6 * kPage + 10, part);
  std::copy(part.begin(), part.end(), model.begin() + 6 * kPage + 10);
  EXPECT_TRUE(SameBytes(ReadBytes(store, 1, 0, model.size()), model));
  StoreStats s = store.Stats();
  EXPECT_EQ(s.clustered_pages, 14u);
  EXPECT_EQ(s.clusters, 4u);
  for (uint64_t p : {0, 2, 3}) WriteOk(store, 1, p * kPage, fresh);
  for (uint64_t p : {0, 2, 3}) std::copy(fresh.begin(), fresh.end(), model.begin() + p * kPage);
  s = store.Stats();
  EXPECT_EQ(s.clusters, 3u);  // The first group's cluster had no page left.
  EXPECT_EQ(s.clustered_pages, 11u);
  ExpectMemFormula(s);
  EXPECT_TRUE(SameBytes(ReadBytes(store, 1, 0, model.size()), model));
}

// A cluster with half its pages overwritten is packed again with its group's new pages.
TEST(PageStoreClusterTest, HalfDeadClusterIsRepacked) {
  Bytes model = TextBytes(4 * kPage, 1234);
  TestArena arena;
  PageStore store(Clustered(&arena));
  WriteOk(store, 1, 0, model);
  ASSERT_EQ(store.Pack(1), 4u);
  const Bytes fresh = TextBytes(2 * kPage, 4321);
  WriteOk(store, 1, kPage, fresh);
  std::copy(fresh.begin(), fresh.end(), model.begin() + kPage);
  EXPECT_EQ(store.Stats().clustered_pages, 2u);
  EXPECT_EQ(store.Pack(1), 4u);  // Two live pages of the old cluster and two new ones.
  const StoreStats s = store.Stats();
  EXPECT_EQ(s.clusters, 1u);
  EXPECT_EQ(s.clustered_pages, 4u);
  ExpectMemFormula(s);
  EXPECT_TRUE(SameBytes(ReadBytes(store, 1, 0, model.size()), model));
}

// Truncates and punches through clusters: the bytes are the model's, and removing the file
// gives every page back.
TEST(PageStoreClusterTest, TruncatePunchAndRemoveThroughClusters) {
  Bytes model = TextBytes(64 * kPage, 4242);
  TestArena arena;
  PageStore store(Clustered(&arena, 8));
  WriteOk(store, 1, 0, model);
  ASSERT_EQ(store.Pack(1), 64u);
  ASSERT_TRUE(store.PunchHole(1, 3 * kPage + 100, 10 * kPage).ok());
  std::fill(model.begin() + 3 * kPage + 100, model.begin() + 13 * kPage + 100, 0);
  ASSERT_TRUE(store.Truncate(1, 40 * kPage + 7).ok());
  model.resize(40 * kPage + 7);
  ASSERT_TRUE(store.ZeroRange(1, 20 * kPage, 3 * kPage + 5).ok());
  std::fill(model.begin() + 20 * kPage, model.begin() + 23 * kPage + 5, 0);
  Bytes got = ReadBytes(store, 1, 0, 41 * kPage);
  model.resize(41 * kPage);  // Past the truncation: zeros.
  EXPECT_TRUE(SameBytes(got, model));
  ExpectMemFormula(store.Stats());
  store.Remove(1);
  ExpectEmpty(store.Stats());
  EXPECT_EQ(store.Stats().clusters, 0u);
  EXPECT_EQ(store.Stats().cluster_bytes, 0u);
  EXPECT_TRUE(arena.live().empty());
}

// Reclaim that picks a cluster's allocation spills the whole cluster to the overflow
// directory, its frame as it is: memory meets the target, the pages count as overflow pages,
// and everything reads back; the second read of a spilled page brings its cluster back.
TEST(PageStoreClusterTest, ReclaimSpillsClustersWholeAndASecondReadBringsThemBack) {
  test::TempDir dir;
  PageStore store(ClusteredOverflow(dir, 64 << 20));
  Bytes model = TextBytes(512 * kPage, 31);
  WriteOk(store, 1, 0, model);
  ASSERT_EQ(store.Pack(1), 512u);
  const Bytes fresh = TextBytes(kPage, 777);
  WriteOk(store, 1, 5 * kPage, fresh);  // A dead slot in one cluster.
  std::copy(fresh.begin(), fresh.end(), model.begin() + 5 * kPage);
  const uint64_t compr = store.Stats().compr_data_size;
  const uint64_t target = store.Stats().mem_used_total / 3;
  ASSERT_TRUE(store.ReclaimTo(target).ok());
  StoreStats s = store.Stats();
  EXPECT_GT(s.overflow_pages, 100u);
  EXPECT_LT(s.clustered_pages, 511u);
  EXPECT_EQ(s.orig_data_size, 512 * kPage);
  EXPECT_LE(s.mem_used_total, target);
  ExpectMemFormula(s);

  (void)store.ReclaimTo(0);  // ENOSPC in the end: the index and the clusters' objects stay.
  s = store.Stats();
  EXPECT_EQ(s.clustered_pages, 0u);
  EXPECT_EQ(s.cluster_allocations, 0u);
  EXPECT_EQ(s.clusters, 0u);
  EXPECT_EQ(s.spilled_clusters, 128u);  // All of them, the one with a dead slot too.
  EXPECT_EQ(s.overflow_pages, 512u);
  EXPECT_EQ(s.pool_pages, 0u);
  EXPECT_EQ(s.compr_data_size, compr);  // Nothing compressed again: the frames as they were.
  ExpectMemFormula(s);
  const uint64_t faulted = s.faulted_pages;
  EXPECT_TRUE(SameBytes(ReadBytes(store, 1, 0, model.size()), model));  // First read.
  s = store.Stats();
  EXPECT_GT(s.faulted_pages, faulted);
  EXPECT_EQ(s.overflow_pages, 512u);  // A one-off read leaves them where they are.

  EXPECT_TRUE(SameBytes(ReadBytes(store, 1, 0, model.size()), model));  // Second read.
  s = store.Stats();
  EXPECT_EQ(s.clustered_pages, 511u);  // Back in memory, and the single page 5 too.
  EXPECT_EQ(s.overflow_pages, 0u);
  EXPECT_EQ(s.clusters, 128u);
  EXPECT_EQ(s.spilled_clusters, 0u);
  ExpectMemFormula(s);
  EXPECT_TRUE(SameBytes(ReadBytes(store, 1, 0, model.size()), model));
  store.Remove(1);
  ExpectEmpty(store.Stats());
}

// A large read decodes in parts on helper threads, each queueing promotions against the
// memory of the read's start; as they are stored, each is checked again, so one read never
// brings memory to mem_limit.
TEST(PageStoreClusterTest, ParallelReadPromotesOnlyWhatFitsUnderTheLimit) {
  test::TempDir dir;
  PageStoreOptions o = ClusteredOverflow(dir, 1 << 20);
  o.decode_threads = 2;
  PageStore store(o);
  const Bytes data = TextBytes(8 << 20, 3);
  for (uint64_t off = 0; off < data.size(); off += 256 << 10) {
    ASSERT_TRUE(store.Write(1, off, data.data() + off, 256 << 10).ok());
    (void)store.Pack(1);
  }
  (void)store.ReclaimTo(0);
  ASSERT_GT(store.Stats().spilled_clusters, 256u);
  for (int pass = 0; pass < 2; ++pass) {  // The second read is the one that promotes.
    EXPECT_TRUE(SameBytes(ReadBytes(store, 1, 0, data.size()), data)) << "pass " << pass;
  }
  const StoreStats s = store.Stats();
  EXPECT_GT(s.clusters, 0u);  // Some came back.
  EXPECT_LE(s.mem_used_total, s.mem_limit);
}

// Spilled clusters die with their pages: truncating, punching and removing give the
// overflow directory's space back.
TEST(PageStoreClusterTest, SpilledClustersFreeTheirOverflowSlots) {
  test::TempDir dir;
  PageStore store(ClusteredOverflow(dir, 64 << 20));
  Bytes model = TextBytes(256 * kPage, 5);
  WriteOk(store, 1, 0, model);
  ASSERT_EQ(store.Pack(1), 256u);
  (void)store.ReclaimTo(0);
  ASSERT_EQ(store.Stats().overflow_pages, 256u);
  ASSERT_TRUE(store.PunchHole(1, 6 * kPage, 8 * kPage).ok());  // Through two clusters.
  std::fill(model.begin() + 6 * kPage, model.begin() + 14 * kPage, 0);
  ASSERT_TRUE(store.Truncate(1, 200 * kPage + 100).ok());
  model.resize(200 * kPage + 100);
  StoreStats s = store.Stats();
  // Pages 0-199 less the 8 punched; page 200, cut short, is written again (in memory).
  EXPECT_EQ(s.overflow_pages, 200u - 8u);
  EXPECT_EQ(s.spilled_clusters,
            50u - 1u);  // Groups 0-49 left; the punch emptied group 2 (pages 8-11).
  ExpectMemFormula(s);
  EXPECT_TRUE(SameBytes(ReadBytes(store, 1, 0, model.size()), model));
  store.Remove(1);
  s = store.Stats();
  ExpectEmpty(s);
  EXPECT_EQ(s.overflow_bytes, 0u);
}

// A spilled cluster with half its slots dead holds their disk until its last page goes:
// the packer brings its live pages back and packs them with the group's newer ones, which
// gives the slots back.
TEST(PageStoreClusterTest, PackerCompactsSpilledClustersHalfDead) {
  test::TempDir dir;
  PageStore store(ClusteredOverflow(dir, 64 << 20));
  Bytes model = TextBytes(64 * kPage, 11);
  WriteOk(store, 1, 0, model);
  ASSERT_EQ(store.Pack(1), 64u);
  (void)store.ReclaimTo(0);
  ASSERT_EQ(store.Stats().spilled_clusters, 16u);
  for (uint64_t g = 0; g < 16; ++g) {  // Three of every four pages written again.
    const Bytes fresh = TextBytes(3 * kPage, 5000 + g * 3 * kPage);
    WriteOk(store, 1, (4 * g + 1) * kPage, fresh);
    std::copy(fresh.begin(), fresh.end(), model.begin() + (4 * g + 1) * kPage);
  }
  StoreStats s = store.Stats();
  EXPECT_EQ(s.spilled_clusters, 16u);
  EXPECT_EQ(s.overflow_pages, 16u);
  EXPECT_GT(s.overflow_bytes, 0u);
  EXPECT_EQ(store.Pack(1), 64u);
  s = store.Stats();
  EXPECT_EQ(s.spilled_clusters, 0u);
  EXPECT_EQ(s.overflow_pages, 0u);
  EXPECT_EQ(s.overflow_bytes, 0u);
  EXPECT_EQ(s.clustered_pages, 64u);
  ExpectMemFormula(s);
  EXPECT_TRUE(SameBytes(ReadBytes(store, 1, 0, model.size()), model));
}

// Bringing a spilled cluster's live pages back adds memory: with none to spare the packer
// leaves it on disk rather than push other pages out for it, and compacts it once there is.
TEST(PageStoreClusterTest, CompactionOfSpilledClustersWaitsForRoom) {
  test::TempDir dir;
  PageStore store(ClusteredOverflow(dir, 64 << 20));
  const Bytes model = TextBytes(64 * kPage, 11);
  WriteOk(store, 1, 0, model);
  ASSERT_EQ(store.Pack(1), 64u);
  (void)store.ReclaimTo(0);
  ASSERT_EQ(store.Stats().spilled_clusters, 16u);
  for (uint64_t g = 0; g < 16; ++g) {  // Half of every cluster punched away.
    ASSERT_TRUE(store.PunchHole(1, 4 * g * kPage, 2 * kPage).ok());
  }
  const Bytes other = TextBytes(32 * kPage, 77);  // Hot single pages, in memory.
  WriteOk(store, 2, 0, other);
  ASSERT_TRUE(store.SetLimits({.mem_limit = store.Stats().mem_used_total + kPage / 2}).ok());
  const StoreStats before = store.Stats();

  EXPECT_EQ(store.Pack(1), 0u);
  StoreStats s = store.Stats();
  EXPECT_EQ(s.written_back_pages, before.written_back_pages);
  EXPECT_EQ(s.spilled_clusters, 16u);
  EXPECT_LE(s.mem_used_total, s.mem_limit);

  ASSERT_TRUE(store.SetLimits({.mem_limit = uint64_t{64} << 20}).ok());
  EXPECT_EQ(store.Pack(1), 32u);
  s = store.Stats();
  EXPECT_EQ(s.spilled_clusters, 0u);
  EXPECT_EQ(s.overflow_bytes, 0u);
  Bytes expect = model;
  for (uint64_t g = 0; g < 16; ++g) {
    std::fill_n(expect.begin() + static_cast<ptrdiff_t>(4 * g * kPage), 2 * kPage, 0);
  }
  EXPECT_TRUE(SameBytes(ReadBytes(store, 1, 0, expect.size()), expect));
  EXPECT_TRUE(SameBytes(ReadBytes(store, 2, 0, other.size()), other));
}

// Cluster descriptors never leave memory either: a remount's mem_limit below them (with the
// indexes) is refused before anything is pushed out.
TEST(PageStoreClusterTest, MemLimitBelowTheClusterDescriptorsIsRefusedWithNothingMoved) {
  test::TempDir dir;
  PageStore store(ClusteredOverflow(dir, 64 << 20));
  WriteOk(store, 1, 0, TextBytes(256 * kPage, 3));
  ASSERT_EQ(store.Pack(1), 256u);
  const StoreStats before = store.Stats();
  ASSERT_GT(before.cluster_bytes, 0u);
  const uint64_t limit = before.index_bytes + before.metadata_bytes + before.cluster_bytes / 2;
  EXPECT_EQ(store.SetLimits({.mem_limit = limit}).code(), EINVAL);
  EXPECT_EQ(store.mem_limit(), uint64_t{64} << 20);
  EXPECT_EQ(store.Stats().written_back_pages, 0u);
  EXPECT_EQ(store.Stats().mem_used_total, before.mem_used_total);
  // An unchanged limit passes (a remount of other options), whatever memory holds.
  EXPECT_TRUE(store.SetLimits({.mem_limit = uint64_t{64} << 20}).ok());
}

// A cluster's last live page is stored alone: the cluster no longer pins its memory.
TEST(PageStoreClusterTest, LastLivePageOfAClusterIsStoredAlone) {
  Bytes model = TextBytes(4 * kPage, 2468);
  TestArena arena;
  PageStore store(Clustered(&arena));
  WriteOk(store, 1, 0, model);
  ASSERT_EQ(store.Pack(1), 4u);
  ASSERT_TRUE(store.PunchHole(1, kPage, 3 * kPage).ok());
  std::fill(model.begin() + kPage, model.end(), 0);
  EXPECT_EQ(store.Stats().clusters, 1u);
  EXPECT_EQ(store.Pack(1), 1u);
  const StoreStats s = store.Stats();
  EXPECT_EQ(s.clusters, 0u);
  EXPECT_EQ(s.clustered_pages, 0u);
  EXPECT_EQ(s.pool_pages, 1u);
  ExpectMemFormula(s);
  EXPECT_TRUE(SameBytes(ReadBytes(store, 1, 0, model.size()), model));
}

// Overwriting clustered pages frees nothing until a cluster's last page goes: such writes
// are not admitted past mem_limit as overwrites of single pages are.
TEST(PageStoreClusterTest, OverwritesOfClusteredPagesStayWithinMemLimit) {
  TestArena arena;
  PageStoreOptions o = Clustered(&arena);
  o.background_reclaim = false;
  o.mem_limit = 64 << 20;  // No overflow store: past it, writes get ENOSPC.
  PageStore store(o);
  WriteOk(store, 1, 0, TextBytes(1024 * kPage, 3));
  ASSERT_EQ(store.Pack(1), 1024u);
  StoreLimits limits;
  limits.mem_limit = store.Stats().mem_used_total + 1;
  ASSERT_TRUE(store.SetLimits(limits).ok());
  const Bytes small = SmallPage();
  int refused = 0;
  for (uint64_t g = 0; g < 256; ++g) {
    Status st = store.Write(1, g * 4 * kPage, small.data(), kPage);
    if (!st.ok()) {
      EXPECT_EQ(st.code(), ENOSPC);
      ++refused;
    }
  }
  const StoreStats s = store.Stats();
  EXPECT_GT(refused, 0);
  EXPECT_LE(s.mem_used_total, s.mem_limit + kPage) << "refused " << refused;
}

// Packing that must reclaim first, with the overflow store full so that unpacking another
// cluster of the same file fails midway: no group ends up holding another's data.
TEST(PageStoreClusterTest, PackingThatReclaimsKeepsEveryGroupsData) {
  test::TempDir dir;
  PageStore store(ClusteredOverflow(dir, 64 << 20));
  const Bytes small = SmallPage();
  WriteOk(store, 2, 0, small);
  ASSERT_TRUE(store.ReclaimTo(store.Stats().mem_used_total - 1).ok());
  ASSERT_EQ(store.Stats().overflow_pages, 1u);
  // Group A: four pages of 3000 random bytes each, packed (its pages would not fit the
  // overflow's room); group B: four small pages, left single.
  std::mt19937_64 rng(1);
  Bytes page(kPage, 0);
  const Bytes random = RandomBytes(3000, rng);
  std::copy(random.begin(), random.end(), page.begin());
  Bytes a, b;
  for (int i = 0; i < 4; ++i) a.insert(a.end(), page.begin(), page.end());
  for (int i = 0; i < 4; ++i) b.insert(b.end(), small.begin(), small.end());
  WriteOk(store, 1, 0, a);
  ASSERT_EQ(store.Pack(1), 4u);
  WriteOk(store, 1, 4 * kPage, b);
  StoreLimits full;
  full.overflow_limit = store.Stats().overflow_bytes;
  ASSERT_TRUE(store.SetLimits(full).ok());
  StoreLimits tight;
  tight.mem_limit = store.Stats().mem_used_total + 2048;
  ASSERT_TRUE(store.SetLimits(tight).ok());
  (void)store.Pack(1);
  EXPECT_TRUE(SameBytes(ReadBytes(store, 1, 0, a.size()), a)) << "group A";
  EXPECT_TRUE(SameBytes(ReadBytes(store, 1, 4 * kPage, b.size()), b)) << "group B";
  ExpectMemFormula(store.Stats());
}

// The background packer packs a file once it has not been written for pack_after_ms.
TEST(PageStoreClusterTest, BackgroundPackerPacksColdFiles) {
  TestArena arena;
  PageStoreOptions o = Clustered(&arena);
  o.pack_after_ms = 50;
  o.pack_interval_ms = 10;
  PageStore store(o);
  const Bytes data = TextBytes(64 * kPage, 5);
  WriteOk(store, 1, 0, data);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (store.Stats().clustered_pages < 64 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(store.Stats().clustered_pages, 64u);
  EXPECT_TRUE(SameBytes(ReadBytes(store, 1, 0, data.size()), data));
  // Later changes are packed too: three pages of the first group punched (its last page is
  // then stored alone) and eight pages appended (two new clusters).
  Bytes model = data;
  ASSERT_TRUE(store.PunchHole(1, kPage, 3 * kPage).ok());
  std::fill(model.begin() + kPage, model.begin() + 4 * kPage, 0);
  const Bytes more = TextBytes(8 * kPage, 77);
  WriteOk(store, 1, 64 * kPage, more);
  model.insert(model.end(), more.begin(), more.end());
  auto settled = [&] {
    const StoreStats s = store.Stats();
    return s.clustered_pages == 68 && s.clusters == 17;
  };
  const auto again = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!settled() && std::chrono::steady_clock::now() < again) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(settled()) << store.Stats().clustered_pages << " pages in " << store.Stats().clusters;
  EXPECT_TRUE(SameBytes(ReadBytes(store, 1, 0, model.size()), model));
}

// Writes file 1 page by page with text until memory reaches `bytes`; returns the pages.
uint64_t FillWithTextTo(PageStore& store, uint64_t bytes) {
  uint64_t pages = 0;
  for (; store.Stats().mem_used_total < bytes; ++pages) {
    WriteOk(store, 1, pages * kPage, TextBytes(kPage, pages * kPage));
  }
  return pages;
}

// Waits (at most 10 s) for the background reclaim to bring memory down to `bytes`.
void WaitForMemAtMost(PageStore& store, uint64_t bytes) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (store.Stats().mem_used_total > bytes && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// Reclaim's background thread packs the cold groups it takes before it would write them
// out: memory falls to the low watermark (90 % of mem_limit) with nothing written to the
// overflow directory, and every page reads back. Writers that find no room still write
// pages out themselves (not exercised here: memory never reaches mem_limit).
TEST(PageStoreClusterTest, BackgroundReclaimPacksBeforeWritingOut) {
  test::TempDir dir;
  const uint64_t limit = 2 << 20;
  PageStoreOptions o = ClusteredOverflow(dir, limit);
  o.background_reclaim = true;  // Its thread starts above 95 % of mem_limit.
  PageStore store(o);
  const uint64_t pages = FillWithTextTo(store, limit * 97 / 100);
  ASSERT_GT(pages * kPage, 3 * limit / 2);  // Single pages of text: about two a pool page.
  WaitForMemAtMost(store, limit * 90 / 100);
  const StoreStats s = store.Stats();
  EXPECT_LE(s.mem_used_total, limit * 90 / 100);
  EXPECT_GT(s.reclaim_packed_pages, 0u);
  EXPECT_EQ(s.clustered_pages, s.reclaim_packed_pages);
  EXPECT_EQ(s.written_back_pages, 0u);
  EXPECT_EQ(s.overflow_pages, 0u);
  ExpectMemFormula(s);
  EXPECT_TRUE(SameBytes(ReadBytes(store, 1, 0, pages * kPage), TextBytes(pages * kPage)));
}

// Without clusters the same reclaim writes pages out, as it always did.
TEST(PageStoreClusterTest, BackgroundReclaimWithoutClustersWritesOut) {
  test::TempDir dir;
  const uint64_t limit = 2 << 20;
  PageStoreOptions o = ClusteredOverflow(dir, limit);
  o.background_reclaim = true;
  o.cluster_pages = 0;
  PageStore store(o);
  const uint64_t pages = FillWithTextTo(store, limit * 97 / 100);
  WaitForMemAtMost(store, limit * 90 / 100);
  const StoreStats s = store.Stats();
  EXPECT_LE(s.mem_used_total, limit * 90 / 100);
  EXPECT_EQ(s.reclaim_packed_pages, 0u);
  EXPECT_GT(s.written_back_pages, 0u);
  EXPECT_TRUE(SameBytes(ReadBytes(store, 1, 0, pages * kPage), TextBytes(pages * kPage)));
}

// Writers, readers, truncates, removes, packing and reclaim all at once (run under TSan by
// the test command): every file ends as its model says, and memory is accounted exactly.
TEST(PageStoreClusterTest, ConcurrentPackingWritesReadsAndReclaim) {
  test::TempDir dir;
  PageStoreOptions o = ClusteredOverflow(dir, 1 << 20);  // 256 pages: reclaim all the time.
  o.background_reclaim = true;
  o.zbud_pools = 2;
  PageStore store(o);
  constexpr int kFiles = 4;
  constexpr uint64_t kPages = 64;
  std::vector<Bytes> model(kFiles, Bytes(kPages * kPage, 0));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> bad_reads{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kFiles; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937_64 rng(100 + w);
      for (int i = 0; i < 600; ++i) {
        const uint64_t page = rng() % kPages;
        const uint64_t n = 1 + rng() % 8;
        const uint64_t end = std::min(kPages, page + n);
        const Bytes data = TextBytes((end - page) * kPage, rng() % 100000);
        if (!store.Write(w, page * kPage, data.data(), data.size()).ok()) continue;
        std::copy(data.begin(), data.end(), model[w].begin() + page * kPage);
        if (i % 97 == 0) {
          ASSERT_TRUE(store.PunchHole(w, page * kPage, kPage).ok());
          std::fill_n(model[w].begin() + page * kPage, kPage, 0);
        }
      }
    });
  }
  threads.emplace_back([&] {
    while (!stop.load()) (void)store.PackAll();
  });
  const Bytes data99 = TextBytes(32 * kPage, 7);
  threads.emplace_back([&] {
    Bytes buf(kPages * kPage);
    const Bytes zeros(kPage, 0);
    while (!stop.load()) {
      for (int f = 0; f < kFiles; ++f) {
        if (!store.Read(f, 0, buf.data(), buf.size()).ok()) bad_reads.fetch_add(1);
      }
      // File 99's pages are each its data or, written or removed meanwhile, zeros; read
      // twice, so that spilled clusters of it come back while it is packed and removed.
      for (int twice = 0; twice < 2; ++twice) {
        if (!store.Read(99, 0, buf.data(), 32 * kPage).ok()) bad_reads.fetch_add(1);
        for (uint64_t p = 0; p < 32; ++p) {
          const uint8_t* got = buf.data() + p * kPage;
          if (std::memcmp(got, data99.data() + p * kPage, kPage) != 0 &&
              std::memcmp(got, zeros.data(), kPage) != 0) {
            bad_reads.fetch_add(1);
          }
        }
      }
    }
  });
  threads.emplace_back([&] {  // A file created, packed and removed over and over.
    const Bytes& data = data99;
    while (!stop.load()) {
      (void)store.Write(99, 0, data.data(), data.size());
      (void)store.Pack(99);
      store.Remove(99);
    }
  });
  for (int w = 0; w < kFiles; ++w) threads[w].join();
  stop.store(true);
  for (size_t i = kFiles; i < threads.size(); ++i) threads[i].join();
  EXPECT_EQ(bad_reads.load(), 0u);
  (void)store.PackAll();
  for (int f = 0; f < kFiles; ++f) {
    EXPECT_TRUE(SameBytes(ReadBytes(store, f, 0, kPages * kPage), model[f])) << "file " << f;
  }
  ExpectMemFormula(store.Stats());
  for (int f = 0; f < kFiles; ++f) store.Remove(f);
  store.Remove(99);
  ExpectEmpty(store.Stats());
  EXPECT_EQ(store.Stats().clusters, 0u);
}

}  // namespace
}  // namespace zbudfs

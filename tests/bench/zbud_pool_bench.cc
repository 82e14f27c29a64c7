// Micro benchmarks of ZbudPool: Alloc+Free pairs per second (items_per_second counts pairs),
// on one thread and on two threads sharing one pool.
//
//   BM_AllocFreePair/<size>          Alloc(size) then Free, with one long-lived zpage per
//                                    thread keeping an unbuddied page in the pool: the pair
//                                    reuses that page (the warm-pool fast path).
//   BM_AllocFreePairEmptyPool/<size> The same on an otherwise empty pool: every Alloc takes a
//                                    page from the PageArena and every Free gives it back.
//   BM_RealisticMix/<n>              Each thread keeps n live zpages of sizes uniform in
//                                    200..2000 bytes (so pages really are buddied); each
//                                    iteration frees a random one and allocates a new one of
//                                    a random size in its place, and writes its first 8 bytes.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "store/page_arena.h"
#include "store/status.h"
#include "store/zbud_pool.h"

namespace zbudfs {
namespace {

using Handle = ZbudPool::Handle;

// One pool shared by every thread of every benchmark. Never destroyed: with several threads,
// some may still be freeing after thread 0 leaves its loop.
ZbudPool& SharedPool() {
  static PageArena* arena = new PageArena();
  static ZbudPool* pool = new ZbudPool(arena, nullptr);
  return *pool;
}

// xorshift64*: cheap enough not to dominate a ~100 ns iteration.
struct Rng {
  uint64_t s;
  uint64_t Next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1DULL;
  }
  // Uniform in [0, n) without a division.
  uint64_t Below(uint64_t n) { return static_cast<uint64_t>((Next() >> 32) * n >> 32); }
};

void BM_AllocFreePair(benchmark::State& state) {
  ZbudPool& pool = SharedPool();
  const size_t size = static_cast<size_t>(state.range(0));
  // 1000 bytes leave 47 free chunks: the measured Alloc finds this page's list.
  StatusOr<Handle> anchor = pool.Alloc(1000);
  for (auto _ : state) {
    StatusOr<Handle> h = pool.Alloc(size);
    if (!h.ok()) {
      state.SkipWithError(h.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(*h);
    pool.Free(*h);
  }
  if (anchor.ok()) pool.Free(*anchor);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AllocFreePair)->Arg(256)->Arg(2000)->Threads(1)->Threads(2)->UseRealTime();

void BM_AllocFreePairEmptyPool(benchmark::State& state) {
  ZbudPool& pool = SharedPool();
  const size_t size = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    StatusOr<Handle> h = pool.Alloc(size);
    if (!h.ok()) {
      state.SkipWithError(h.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(*h);
    pool.Free(*h);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AllocFreePairEmptyPool)->Arg(256)->Threads(1)->Threads(2)->UseRealTime();

void BM_RealisticMix(benchmark::State& state) {
  ZbudPool& pool = SharedPool();
  const size_t n = static_cast<size_t>(state.range(0));
  constexpr size_t kMinSize = 200, kMaxSize = 2000;
  Rng rng{0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(state.thread_index() + 1)};
  std::vector<Handle> live(n);
  std::vector<uint32_t> sizes(n);
  bool ok = true;
  for (size_t i = 0; i < n && ok; ++i) {
    sizes[i] = static_cast<uint32_t>(kMinSize + rng.Below(kMaxSize - kMinSize + 1));
    StatusOr<Handle> h = pool.Alloc(sizes[i]);
    ok = h.ok();
    live[i] = ok ? *h : 0;
  }
  const uint64_t pages_before_loop = pool.PoolPages();
  for (auto _ : state) {
    if (!ok) {
      state.SkipWithError("filling the working set failed");
      break;
    }
    const uint64_t r = rng.Next();
    const size_t i = static_cast<size_t>(((r >> 32) * n) >> 32);
    pool.Free(live[i]);
    const size_t size = kMinSize + static_cast<size_t>(((r & 0xFFFFFFFFu) * 1801) >> 32);
    StatusOr<Handle> h = pool.Alloc(size);
    if (!h.ok()) {
      state.SkipWithError(h.status().ToString().c_str());
      live[i] = 0;
      break;
    }
    live[i] = *h;
    sizes[i] = static_cast<uint32_t>(size);
    std::memcpy(pool.Map(*h), &r, sizeof(r));
    pool.Unmap(*h);
  }
  if (state.threads() == 1) {
    // Quiescent: the pool holds exactly this working set.
    uint64_t live_bytes = 0;
    for (uint32_t s : sizes) live_bytes += s;
    const double pages = static_cast<double>(pool.PoolPages());
    state.counters["pool_pages"] = pages;
    state.counters["buddied_pct"] = 100.0 * static_cast<double>(pool.BuddiedPages()) / pages;
    state.counters["zpages_per_page"] = static_cast<double>(n) / pages;
    state.counters["density_pct"] =
        100.0 * static_cast<double>(live_bytes) / (pages * static_cast<double>(kPageSize));
    state.counters["pages_growth"] = pages - static_cast<double>(pages_before_loop);
  }
  for (Handle h : live) {
    if (h != 0) pool.Free(h);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RealisticMix)->Arg(1 << 10)->Arg(1 << 16)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
}  // namespace zbudfs

BENCHMARK_MAIN();

// Helpers shared by the ZbudPool unit tests (zbud_pool_test.cc, zbud_pool_reclaim_test.cc,
// zbud_pool_model_test.cc): handle geometry, per-allocation content patterns, and an arena
// that can refuse pages.
#ifndef ZBUDFS_TESTS_STORE_ZBUD_POOL_TEST_UTIL_H_
#define ZBUDFS_TESTS_STORE_ZBUD_POOL_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <latch>
#include <list>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "store/page_arena.h"
#include "store/status.h"
#include "store/zbud_pool.h"
#include "tests/same_bytes.h"

namespace zbudfs::zbud_test {

using Handle = ZbudPool::Handle;

inline constexpr size_t kPage = kPageSize;
inline constexpr size_t kChunk = ZbudPool::kChunkSize;
inline constexpr size_t kMaxSize = ZbudPool::kMaxAllocSize;
inline constexpr int kUsableChunks = ZbudPool::kNumChunks;

inline uintptr_t PageOf(Handle h) { return h & ~uintptr_t{kPage - 1}; }
inline size_t OffsetOf(Handle h) { return h & (kPage - 1); }
inline int ChunksOf(size_t size) {
  return static_cast<int>(ZbudPool::AllocatedBytes(size) / kChunk);
}

// A first buddy sits right after the one-chunk header.
inline bool IsFirstBuddy(Handle h) { return OffsetOf(h) == ZbudPool::kHeaderSize; }
// A last buddy is right-justified: it ends, rounded up to chunks, at the page's end.
inline bool IsRightJustified(Handle h, size_t size) {
  return h + ZbudPool::AllocatedBytes(size) == PageOf(h) + kPage;
}

// ---- Content patterns -----------------------------------------------------------------------
// Allocation `tag` holds `size` bytes of a random table starting at PatternFor(tag). Tags that
// differ modulo 2^16 start at different places, so their bytes differ, also when shifted
// against each other: an overlap between two allocations shows up as a corrupted pattern.

inline constexpr size_t kPatternWindow = 1 << 16;

inline const std::vector<uint8_t>& PatternTable() {
  static const std::vector<uint8_t> table = [] {
    std::vector<uint8_t> t(kPatternWindow + kPage);
    std::mt19937 rng(12345);
    for (size_t i = 0; i < kPatternWindow; ++i) t[i] = static_cast<uint8_t>(rng());
    for (size_t i = 0; i < kPage; ++i) t[kPatternWindow + i] = t[i];  // No wrap needed.
    return t;
  }();
  return table;
}

inline const uint8_t* PatternFor(uint32_t tag) {
  return PatternTable().data() + ((tag * 4099u) & (kPatternWindow - 1));
}

inline void Fill(ZbudPool& pool, Handle h, size_t size, uint32_t tag) {
  std::memcpy(pool.Map(h), PatternFor(tag), size);
  pool.Unmap(h);
}

inline ::testing::AssertionResult HasPattern(const ZbudPool& pool, Handle h, size_t size,
                                             uint32_t tag) {
  const auto* bytes = static_cast<const uint8_t*>(pool.Map(h));
  const uint8_t* want = PatternFor(tag);
  for (size_t i = 0; i < size; ++i) {
    if (bytes[i] != want[i]) {
      pool.Unmap(h);
      return ::testing::AssertionFailure()
             << "handle 0x" << std::hex << h << std::dec << " (size " << size << ", tag " << tag
             << ") byte " << i << " is " << int{bytes[i]} << ", want " << int{want[i]};
    }
  }
  pool.Unmap(h);
  return ::testing::AssertionSuccess();
}

inline ::testing::AssertionResult CopyHasPattern(const std::vector<uint8_t>& copy, uint32_t tag) {
  if (auto same = test::SameBytes(copy.data(), PatternFor(tag), copy.size()); !same) {
    return ::testing::AssertionFailure() << "evicted copy of tag " << tag << ": " << same.message();
  }
  return ::testing::AssertionSuccess();
}

inline std::vector<uint8_t> CopyOut(const ZbudPool& pool, Handle h, size_t size) {
  const auto* bytes = static_cast<const uint8_t*>(pool.Map(h));
  std::vector<uint8_t> copy(bytes, bytes + size);
  pool.Unmap(h);
  return copy;
}

// Allocates or fails the current test.
#define ASSERT_ALLOC(var, pool, size)                                                        \
  StatusOr<Handle> var##_or = (pool).Alloc(size);                                            \
  ASSERT_TRUE(var##_or.ok()) << "Alloc(" << (size) << "): " << var##_or.status().ToString(); \
  const Handle var = *var##_or

// An allocation the test owns.
struct Zpage {
  Handle handle;
  size_t size;
  uint32_t tag;
};

// Allocates `size` bytes and fills them with the pattern of `tag`.
inline ::testing::AssertionResult AllocFilled(ZbudPool& pool, size_t size, uint32_t tag,
                                              Zpage* out) {
  StatusOr<Handle> h = pool.Alloc(size);
  if (!h.ok()) {
    return ::testing::AssertionFailure() << "Alloc(" << size << "): " << h.status().ToString();
  }
  Fill(pool, *h, size, tag);
  *out = Zpage{*h, size, tag};
  return ::testing::AssertionSuccess();
}

// A PageArena whose AllocPage fails on demand.
class FailingArena : public PageArena {
 public:
  void* AllocPage() override {
    if (fail.load()) {
      failed_calls.fetch_add(1);
      return nullptr;
    }
    return PageArena::AllocPage();
  }

  std::atomic<bool> fail{false};
  std::atomic<int> failed_calls{0};
};

}  // namespace zbudfs::zbud_test

#endif  // ZBUDFS_TESTS_STORE_ZBUD_POOL_TEST_UTIL_H_

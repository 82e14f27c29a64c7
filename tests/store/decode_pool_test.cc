#include "store/decode_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace zbudfs {
namespace {

// Runs Run(n) and checks that every part ran exactly once before it returned.
void ExpectEachPartOnce(DecodePool& pool, size_t n) {
  std::vector<std::atomic<int>> calls(n);
  pool.Run(n, [&](size_t i) { calls[i].fetch_add(1, std::memory_order_relaxed); });
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(calls[i].load(), 1) << "part " << i << " of " << n;
}

TEST(DecodePoolTest, WithoutThreadsEveryPartRunsOnTheCaller) {
  DecodePool pool(0);
  const std::thread::id me = std::this_thread::get_id();
  std::vector<std::thread::id> ran(5);
  pool.Run(5, [&](size_t i) { ran[i] = std::this_thread::get_id(); });
  for (const std::thread::id& id : ran) EXPECT_EQ(id, me);
  pool.Run(0, [](size_t) { FAIL() << "no part to run"; });
}

TEST(DecodePoolTest, EveryPartRunsExactlyOnce) {
  DecodePool pool(3);
  for (size_t n : {1, 2, 3, 7, 64, 1000}) ExpectEachPartOnce(pool, n);
}

// Helpers that are idle take parts: over repeated runs of slow parts, some part runs on a
// thread other than the caller's.
TEST(DecodePoolTest, IdleHelpersTakeParts) {
  DecodePool pool(2);
  const std::thread::id me = std::this_thread::get_id();
  std::atomic<int> elsewhere{0};
  for (int run = 0; run < 200 && elsewhere == 0; ++run) {
    pool.Run(8, [&](size_t) {
      if (std::this_thread::get_id() != me) elsewhere.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    });
  }
  EXPECT_GT(elsewhere.load(), 0);
}

// Many callers at once, as FUSE workers would: no part lost or run twice, no use of a
// finished run's state (ThreadSanitizer and AddressSanitizer runs check the latter).
TEST(DecodePoolTest, ConcurrentCallersEachGetEveryPartOnce) {
  DecodePool pool(3);
  std::vector<std::thread> callers;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      for (int run = 0; run < 300; ++run) {
        const size_t n = 1 + static_cast<size_t>((run * 7 + t) % 40);
        std::vector<std::atomic<int>> calls(n);
        pool.Run(n, [&](size_t i) { calls[i].fetch_add(1, std::memory_order_relaxed); });
        for (size_t i = 0; i < n; ++i) {
          if (calls[i].load() != 1) failures.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& c : callers) c.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace zbudfs

// LockProfile (store/lock_profile.h): a wait is counted when, and only when, a profiled lock
// was taken by another thread; PageStore::LockWaits names every lock class of the store.
// Suite names contain "Concurrent" so that the TSan build (ctest -R Concurrent) runs them.
#include "store/lock_profile.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/mutex.h"
#include "store/page_store.h"
#include "tests/same_bytes.h"

namespace zbudfs {
namespace {

// Holds mu (through lock/unlock) while a second thread locks it, until the profile has seen
// that thread wait. The waiter announces itself just before Lock(); if it is scheduled so late
// that the holder has already let go, it finds the lock free and the round is tried again.
template <typename M, typename LockFn, typename UnlockFn>
LockWait Contend(M* mu, const LockProfile& profile, LockFn lock, UnlockFn unlock) {
  for (int round = 0; round < 100 && profile.Snapshot().waits == 0; ++round) {
    mu->Lock();
    std::atomic<bool> about_to_lock{false};
    std::thread waiter([&] {
      about_to_lock.store(true);
      lock();
      unlock();
    });
    while (!about_to_lock.load()) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    mu->Unlock();
    waiter.join();
  }
  return profile.Snapshot();
}

TEST(LockProfileConcurrentTest, ContendedMutexRecordsWaits) {
  LockProfile profile("test mutex");
  Mutex mu(&profile);
  const LockWait w = Contend(
      &mu, profile, [&]() NO_THREAD_SAFETY_ANALYSIS { mu.Lock(); },
      [&]() NO_THREAD_SAFETY_ANALYSIS { mu.Unlock(); });
  EXPECT_STREQ(w.name, "test mutex");
  EXPECT_GE(w.waits, 1u);
  EXPECT_GT(w.wait_ns, 0u);
}

TEST(LockProfileConcurrentTest, ContendedAdaptiveMutexRecordsWaits) {
  LockProfile profile("test adaptive");
  AdaptiveMutex mu(&profile);
  const LockWait w = Contend(
      &mu, profile, [&]() NO_THREAD_SAFETY_ANALYSIS { mu.Lock(); },
      [&]() NO_THREAD_SAFETY_ANALYSIS { mu.Unlock(); });
  EXPECT_GE(w.waits, 1u);
  EXPECT_GT(w.wait_ns, 0u);
}

TEST(LockProfileConcurrentTest, ReaderWaitingForWriterRecordsWaits) {
  LockProfile profile("test shared");
  SharedMutex mu;
  mu.SetProfile(&profile);
  const LockWait w = Contend(
      &mu, profile, [&]() NO_THREAD_SAFETY_ANALYSIS { mu.LockShared(); },
      [&]() NO_THREAD_SAFETY_ANALYSIS { mu.UnlockShared(); });
  EXPECT_GE(w.waits, 1u);
  EXPECT_GT(w.wait_ns, 0u);
}

TEST(LockProfileConcurrentTest, UncontendedLocksRecordNothing) {
  LockProfile profile("quiet");
  Mutex mu(&profile);
  SharedMutex shared(&profile);
  AdaptiveMutex adaptive(&profile);
  for (int i = 0; i < 1000; ++i) {
    MutexLock a(&mu);
    ReaderLock b(&shared);
    AdaptiveLock c(&adaptive);
  }
  for (int i = 0; i < 1000; ++i) WriterLock d(&shared);
  // Another thread, one after the other: still never a wait; nor for a reader while another
  // reader holds the lock.
  ReaderLock held(&shared);
  std::thread([&] {
    for (int i = 0; i < 1000; ++i) MutexLock a(&mu);
    for (int i = 0; i < 1000; ++i) ReaderLock b(&shared);
  }).join();
  const LockWait w = profile.Snapshot();
  EXPECT_EQ(w.waits, 0u);
  EXPECT_EQ(w.wait_ns, 0u);
}

TEST(LockProfileConcurrentTest, PageStoreNamesEveryLockClass) {
  PageStoreOptions options;
  options.background_reclaim = false;
  PageStore store(options);
  std::vector<uint8_t> data(1 << 20);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7 / 4096);
  ASSERT_TRUE(store.Write(1, 0, data.data(), data.size()).ok());
  std::vector<uint8_t> back(data.size());
  ASSERT_TRUE(store.Read(1, 0, back.data(), back.size()).ok());
  ASSERT_TRUE(test::SameBytes(back, data));

  std::set<std::string> names;
  for (const LockWait& w : store.LockWaits()) {
    names.insert(w.name);
    EXPECT_EQ(w.waits, 0u) << w.name << ": one thread never waits";
  }
  for (const char* name : {"file shards", "write stripes", "file index", "zbud pool", "page arena",
                           "raw fifo", "reclaim thread", "reclaim room", "decode pool"}) {
    EXPECT_EQ(names.count(name), 1u) << name;
  }
}

}  // namespace
}  // namespace zbudfs

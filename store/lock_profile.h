// LockProfile: how long threads waited for the locks of one class (all the write stripes,
// all the files' index locks, the zbud pool's lock, ...), to find the lock that stops the
// store from scaling (issue 16).
//
// Owns: two counters, bumped by Mutex, SharedMutex and AdaptiveMutex (store/mutex.h) that
// have the profile attached, only when a lock was not free at once: their uncontended path
// is a try-lock with no clock read. A wait is the time from the failed try-lock to the
// acquisition (spinning included), so it is what contention cost the waiter; a CondVar's
// reacquisition after a wakeup is not counted. The owner of a profile keeps it alive as long
// as the mutexes it is attached to (declare it before them).
//
// Locking: none; the counters are relaxed atomics, read with no ordering against each other.
#ifndef ZBUDFS_STORE_LOCK_PROFILE_H_
#define ZBUDFS_STORE_LOCK_PROFILE_H_

#include <atomic>
#include <chrono>
#include <cstdint>

namespace zbudfs {

// A snapshot of one profile's totals.
struct LockWait {
  const char* name = "";  // The lock class, e.g. "zbud pool".
  uint64_t waits = 0;     // Acquisitions that found the lock taken.
  uint64_t wait_ns = 0;   // Time those waited in total.
};

class LockProfile {
 public:
  using Clock = std::chrono::steady_clock;

  explicit LockProfile(const char* name) : name_(name) {}
  LockProfile(const LockProfile&) = delete;
  LockProfile& operator=(const LockProfile&) = delete;

  // Counts one wait that began at start and ended now (the lock is held).
  void AddWait(Clock::time_point start) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start);
    waits_.fetch_add(1, std::memory_order_relaxed);
    wait_ns_.fetch_add(static_cast<uint64_t>(ns.count()), std::memory_order_relaxed);
  }

  LockWait Snapshot() const;

 private:
  const char* const name_;
  std::atomic<uint64_t> waits_{0};
  std::atomic<uint64_t> wait_ns_{0};
};

// Locks mu (a std::mutex, std::shared_mutex or AdaptiveMutex's pthread mutex, through
// try_lock and lock) and charges the wait, if any, to profile; with no profile just locks.
template <typename TryLock, typename Lock>
inline void ProfiledLock(LockProfile* profile, TryLock&& try_lock, Lock&& lock) {
  if (profile == nullptr) {
    lock();
    return;
  }
  if (try_lock()) return;
  const LockProfile::Clock::time_point start = LockProfile::Clock::now();
  lock();
  profile->AddWait(start);
}

}  // namespace zbudfs

#endif  // ZBUDFS_STORE_LOCK_PROFILE_H_

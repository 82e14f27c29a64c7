// Lockable types the compiler can check (store/thread_annotations.h), and their scoped guards.
//
// Mutex and SharedMutex wrap the standard ones; AdaptiveMutex (store/adaptive_mutex.h) is the
// spinning pthread mutex of the zbud pool. Code locks them only through the guards below, never
// through std::lock_guard or std::unique_lock, which the analysis does not understand:
//   MutexLock / AdaptiveLock  exclusive; Unlock() and Lock() drop and retake the lock early.
//   WriterLock / ReaderLock   exclusive / shared hold of a SharedMutex; relockable likewise.
//   CondVar                   waits on a Mutex the caller holds. A predicate lambda would be
//                             analysed without the caller's locks, so callers loop themselves:
//                             while (!ready_) cv_.Wait(&mu_);
// Each lockable type may carry a LockProfile (store/lock_profile.h), given to the constructor
// or to SetProfile() before the mutex is first used, which counts the time spent waiting for
// it; without one (the default) Lock() is the plain lock.
#ifndef ZBUDFS_STORE_MUTEX_H_
#define ZBUDFS_STORE_MUTEX_H_

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>

#include "store/adaptive_mutex.h"
#include "store/lock_profile.h"
#include "store/thread_annotations.h"

namespace zbudfs {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  explicit Mutex(LockProfile* profile) : profile_(profile) {}
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  // Before first use only: the field is read unsynchronised by Lock().
  void SetProfile(LockProfile* profile) { profile_ = profile; }

  void Lock() ACQUIRE() {
    ProfiledLock(
        profile_, [this] { return mu_.try_lock(); }, [this] { mu_.lock(); });
  }
  void Unlock() RELEASE() { mu_.unlock(); }
  bool TryLock() TRY_ACQUIRE(true) { return mu_.try_lock(); }
  // Tells the analysis the caller holds this mutex where it cannot see it (no runtime check).
  void AssertHeld() ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  std::mutex mu_;
  LockProfile* profile_ = nullptr;
};

class CAPABILITY("shared_mutex") SharedMutex {
 public:
  SharedMutex() = default;
  explicit SharedMutex(LockProfile* profile) : profile_(profile) {}
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  // Before first use only, as Mutex::SetProfile. Shared and exclusive waits count alike.
  void SetProfile(LockProfile* profile) { profile_ = profile; }

  void Lock() ACQUIRE() {
    ProfiledLock(
        profile_, [this] { return mu_.try_lock(); }, [this] { mu_.lock(); });
  }
  void Unlock() RELEASE() { mu_.unlock(); }
  void LockShared() ACQUIRE_SHARED() {
    ProfiledLock(
        profile_, [this] { return mu_.try_lock_shared(); }, [this] { mu_.lock_shared(); });
  }
  void UnlockShared() RELEASE_SHARED() { mu_.unlock_shared(); }
  void AssertHeld() ASSERT_CAPABILITY(this) {}
  void AssertReaderHeld() ASSERT_SHARED_CAPABILITY(this) {}

 private:
  std::shared_mutex mu_;
  LockProfile* profile_ = nullptr;
};

// An exclusive scoped hold of M (Mutex or AdaptiveMutex), released at scope end unless
// Unlock() released it first.
template <typename M>
class SCOPED_CAPABILITY ScopedLock {
 public:
  explicit ScopedLock(M* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~ScopedLock() RELEASE() {
    if (held_) mu_->Unlock();
  }
  ScopedLock(const ScopedLock&) = delete;
  ScopedLock& operator=(const ScopedLock&) = delete;

  void Unlock() RELEASE() {
    held_ = false;
    mu_->Unlock();
  }
  void Lock() ACQUIRE() {
    mu_->Lock();
    held_ = true;
  }

 private:
  M* const mu_;
  bool held_ = true;
};

using MutexLock = ScopedLock<Mutex>;
using AdaptiveLock = ScopedLock<AdaptiveMutex>;

// An exclusive scoped hold of a SharedMutex.
using WriterLock = ScopedLock<SharedMutex>;

// A shared scoped hold of a SharedMutex.
class SCOPED_CAPABILITY ReaderLock {
 public:
  explicit ReaderLock(SharedMutex* mu) ACQUIRE_SHARED(mu) : mu_(mu) { mu_->LockShared(); }
  ~ReaderLock() RELEASE() {
    if (held_) mu_->UnlockShared();
  }
  ReaderLock(const ReaderLock&) = delete;
  ReaderLock& operator=(const ReaderLock&) = delete;

  void Unlock() RELEASE() {
    held_ = false;
    mu_->UnlockShared();
  }
  void Lock() ACQUIRE_SHARED() {
    mu_->LockShared();
    held_ = true;
  }

 private:
  SharedMutex* const mu_;
  bool held_ = true;
};

// A condition variable for Mutex. Wakeups may be spurious: callers re-check in a loop.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  void Wait(Mutex* mu) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();  // Still held: the caller's guard owns it.
  }
  // False when `timeout` passed without a notification (or spuriously early: re-check).
  bool WaitFor(Mutex* mu, std::chrono::nanoseconds timeout) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool notified = cv_.wait_for(lock, timeout) == std::cv_status::no_timeout;
    lock.release();
    return notified;
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace zbudfs

#endif  // ZBUDFS_STORE_MUTEX_H_

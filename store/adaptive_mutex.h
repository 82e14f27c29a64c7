// AdaptiveMutex: a mutex that spins briefly before it sleeps (glibc's
// PTHREAD_MUTEX_ADAPTIVE_NP). For short critical sections that many threads enter often, such
// as the zbud pool's lists (the seed guards them with a spinlock): a waiter that would have
// slept in the kernel, and cost its holder a futex wake on unlock, usually gets the lock
// within the spin instead. Lock it through AdaptiveLock (store/mutex.h), which the compiler's
// thread-safety analysis understands.
#ifndef ZBUDFS_STORE_ADAPTIVE_MUTEX_H_
#define ZBUDFS_STORE_ADAPTIVE_MUTEX_H_

#include <pthread.h>

#include "store/lock_profile.h"
#include "store/thread_annotations.h"

namespace zbudfs {

class CAPABILITY("mutex") AdaptiveMutex {
 public:
  AdaptiveMutex() {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&mu_, &attr);
    pthread_mutexattr_destroy(&attr);
  }
  explicit AdaptiveMutex(LockProfile* profile) : AdaptiveMutex() { profile_ = profile; }
  ~AdaptiveMutex() { pthread_mutex_destroy(&mu_); }
  AdaptiveMutex(const AdaptiveMutex&) = delete;
  AdaptiveMutex& operator=(const AdaptiveMutex&) = delete;

  // Before first use only, as Mutex::SetProfile (store/mutex.h). A wait includes the spin.
  void SetProfile(LockProfile* profile) { profile_ = profile; }

  void Lock() ACQUIRE() {  // Spins, then sleeps.
    ProfiledLock(
        profile_, [this] { return pthread_mutex_trylock(&mu_) == 0; },
        [this] { pthread_mutex_lock(&mu_); });
  }
  bool TryLock() TRY_ACQUIRE(true) { return pthread_mutex_trylock(&mu_) == 0; }  // Never waits.
  void Unlock() RELEASE() { pthread_mutex_unlock(&mu_); }  // Wakes a sleeper, if any.
  void AssertHeld() ASSERT_CAPABILITY(this) {}

 private:
  pthread_mutex_t mu_;
  LockProfile* profile_ = nullptr;
};

}  // namespace zbudfs

#endif  // ZBUDFS_STORE_ADAPTIVE_MUTEX_H_

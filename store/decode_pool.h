// DecodePool: idle threads that take parts of one large read, so that a single reader is not
// limited to the one core its FUSE worker runs on (a 1 MiB read is 256 page decodes).
//
// Run(n, fn) calls fn(0) .. fn(n-1), each exactly once, and returns when all have returned.
// The caller works through the parts itself and wakes only helpers that are idle at that
// moment; helpers that wake late find nothing left and go back to sleep. So a read never waits
// for a busy pool: with every core busy serving other requests, Run is the plain loop it
// replaces, and a pool of 0 threads is exactly that loop.
//
// Owns: its threads and the queue of runs that still have unclaimed parts. Locking: mu_ guards
// the queue, the idle count and each Job's attached-helper count; it is a leaf (nothing is
// taken under it, fn never runs under it). A Job lives on its caller's stack: the caller
// takes it out of the queue once every part is claimed and then waits until no helper is
// attached, so no helper touches it after Run returns. What fn reads is the caller's to
// keep valid and locked (PageStore holds the file's index_mu, shared, around Run).
#ifndef ZBUDFS_STORE_DECODE_POOL_H_
#define ZBUDFS_STORE_DECODE_POOL_H_

#include <atomic>
#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "store/lock_profile.h"
#include "store/mutex.h"
#include "store/thread_annotations.h"

namespace zbudfs {

class DecodePool {
 public:
  explicit DecodePool(unsigned threads);  // 0: no threads, Run does everything inline.
  ~DecodePool();                          // Joins the threads; no Run may be in progress.
  DecodePool(const DecodePool&) = delete;
  DecodePool& operator=(const DecodePool&) = delete;

  // Calls fn(i) for every i in [0, n) on this thread and idle helpers; returns when all are
  // done. fn must not throw.
  void Run(size_t n, const std::function<void(size_t)>& fn) EXCLUDES(mu_);

  unsigned threads() const { return static_cast<unsigned>(threads_.size()); }
  // Appends the time waited for mu_ (store/lock_profile.h). Lock-free.
  void AddLockWaits(std::vector<LockWait>* out) const { out->push_back(profile_.Snapshot()); }

 private:
  struct Job {
    const std::function<void(size_t)>* fn;
    size_t n;
    std::atomic<size_t> next{0};  // The next unclaimed part.
    int attached = 0;             // Helpers working on it (guarded by mu_).
  };

  static void Work(Job* job);            // Claims and runs parts until none is left.
  void Unqueue(Job* job) REQUIRES(mu_);  // Takes job out of the queue if it is there.
  void HelperLoop() EXCLUDES(mu_);

  LockProfile profile_{"decode pool"};  // Waits for mu_.
  Mutex mu_{&profile_};
  CondVar work_cv_;                         // Wakes helpers: a job was queued, or stop_.
  CondVar done_cv_;                         // Wakes a caller: a helper detached from its job.
  std::deque<Job*> queue_ GUARDED_BY(mu_);  // Jobs with parts maybe unclaimed.
  unsigned idle_ GUARDED_BY(mu_) = 0;       // Helpers asleep on work_cv_.
  bool stop_ GUARDED_BY(mu_) = false;       // Set by the destructor.
  std::vector<std::thread> threads_;
};

}  // namespace zbudfs

#endif  // ZBUDFS_STORE_DECODE_POOL_H_

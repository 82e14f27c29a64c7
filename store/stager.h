// Stager: the staging tier's budget and the background compressors that empty it.
//
// A write takes a copy, not zstd: a whole page that is not same-filled may be stored as it
// is (a staged page: a raw page with PageEntry::kFlagStaged) while the staging budget has
// room, and is acknowledged from there. Background compressors then compress each staged
// page and pack it into zbud as a write would have (same codec, same pools, same index);
// an incompressible one simply stays raw. When the budget is spent, writers compress their
// own pages as before: they help instead of waiting, and a full stager is today's path.
//
// Owns: the budget (pages staged and not yet handled, at most max_pages), the queue of staged
// pages in the order they were published, and the compressor threads. It knows nothing of
// files: each record goes to Host::CompressStaged, which finds the page under its file's
// locks and swaps it only if it is still the staged page the record names. Every record is
// handed to the host exactly once (in batches; or to DropStaged, for records still queued at Stop),
// and its budget comes back after that.
//
// Locking: mu_ guards the queue, the count of records being handled and the stop flag; it is
// a leaf (nothing is taken under it; the host is called with it released).
#ifndef ZBUDFS_STORE_STAGER_H_
#define ZBUDFS_STORE_STAGER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <thread>
#include <vector>

#include "store/lock_profile.h"
#include "store/mutex.h"
#include "store/thread_annotations.h"

namespace zbudfs {

class Stager {
 public:
  struct Record {
    uint64_t file;
    uint64_t page;
    uint64_t addr;  // The staged page's memory (PageEntry::value of its entry).
  };
  class Host {
   public:
    // Compresses the staged pages records[0, n) name, each if its entry is still that page.
    virtual void CompressStaged(const Record* records, size_t n) = 0;
    // A record left unhandled at Stop (the store is going away).
    virtual void DropStaged(const Record& r) = 0;

   protected:
    ~Host() = default;
  };

  // max_pages 0 or threads 0: no staging (TryReserve always fails).
  Stager(uint64_t max_pages, unsigned threads, Host* host);
  ~Stager();  // Stops the threads, if Stop() did not.
  Stager(const Stager&) = delete;
  Stager& operator=(const Stager&) = delete;

  void Start();               // Starts the compressors; once the host can serve them.
  void Stop() EXCLUDES(mu_);  // Joins them and drops what is queued; before the host goes.

  // Takes one page of budget: false when staging is off or full (compress inline then).
  bool TryReserve();
  // Gives budget back for pages reserved but never queued (freed before publication).
  void Release(uint64_t pages) { staged_.fetch_sub(pages, std::memory_order_relaxed); }
  // Queues staged pages now in an index, for the compressors.
  void Enqueue(const Record* records, size_t n) EXCLUDES(mu_);
  // Waits until every page queued so far has been handled (for tests and benchmarks).
  void WaitIdle() EXCLUDES(mu_);

  uint64_t staged() const { return staged_.load(std::memory_order_relaxed); }
  uint64_t max_pages() const { return max_pages_; }
  // Appends the time waited for mu_ (store/lock_profile.h). Lock-free.
  void AddLockWaits(std::vector<LockWait>* out) const { out->push_back(profile_.Snapshot()); }

 private:
  void Loop() EXCLUDES(mu_);  // One compressor.

  const uint64_t max_pages_;
  const unsigned thread_count_;
  Host* const host_;
  std::atomic<uint64_t> staged_{0};  // Budget taken: reserved, queued or being handled.

  LockProfile profile_{"staging queue"};  // Waits for mu_.
  Mutex mu_{&profile_};
  CondVar work_cv_;                            // Wakes compressors: records queued, or stop_.
  CondVar idle_cv_;                            // Wakes WaitIdle: the queue ran dry.
  std::deque<Record> queue_ GUARDED_BY(mu_);   // Oldest first.
  unsigned busy_ GUARDED_BY(mu_) = 0;          // Compressors handling records.
  unsigned idle_waiters_ GUARDED_BY(mu_) = 0;  // Threads in WaitIdle: do not linger.
  bool stop_ GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace zbudfs

#endif  // ZBUDFS_STORE_STAGER_H_

// Reclaimer: keeps the store's memory under mem_limit by evicting cold pages to the overflow
// store (PageStorage::EvictColdest).
//
// Owns: the watermarks (background reclaim starts above 95 % of mem_limit and stops at 90 %),
// the background reclaim thread (which asks eviction to pack a page's group into a cluster
// before it writes the page out: PageStorage::EvictColdest's pack_first), and the writers' wait for
// room: the count of pages encoded but not yet published (in flight: reclaim cannot take them) and
// of evictions running, and the wakeup of writers sleeping until some are published. It reaches the
// store's memory figure and heap trimming through the small Host interface (PageStore), never its
// files.
//
// Locking: see store/page_store.h for the lock order. bg_mu_ guards bg_stop_ around the
// thread's sleep; room_mu_ pairs with room_cv_ for sleeping writers. Both are leaves:
// nothing is taken under them, and nothing else is held while waiting on them except, for
// room_mu_, at most one file's write lock (never an index lock).
#ifndef ZBUDFS_STORE_RECLAIMER_H_
#define ZBUDFS_STORE_RECLAIMER_H_

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "store/mutex.h"
#include "store/status.h"
#include "store/thread_annotations.h"

namespace zbudfs {

class PageStorage;

class Reclaimer {
 public:
  // What the reclaimer needs of the store.
  class Host {
   public:
    // Memory held: pages, page indexes and charged metadata, in bytes.
    virtual uint64_t MemUsed() const = 0;
    // Pages and files ever dropped (rises while deletes run).
    virtual uint64_t DroppedPages() const = 0;
    // Gives freed heap and wholly free arena regions back to the system.
    virtual void TrimQuietHeap() = 0;

   protected:
    ~Host() = default;
  };

  struct Options {
    uint64_t mem_limit = 0;  // 0: unlimited, nothing to reclaim (SetMemLimit changes it).
    bool overflow = false;   // An overflow store to evict to exists.
    bool background = true;  // Run the background thread (with mem_limit and overflow).
  };

  Reclaimer(const Options& options, PageStorage* storage, Host* host);
  ~Reclaimer();  // Stops the thread, if Stop() did not.
  Reclaimer(const Reclaimer&) = delete;
  Reclaimer& operator=(const Reclaimer&) = delete;

  // Starts the background thread if the options call for it; once the host can serve it.
  void Start();
  // Stops and joins the background thread; before the host goes away.
  void Stop() EXCLUDES(bg_mu_);

  // Reclaims to fit one more page under mem_limit. OK when it fits (or cannot be helped:
  // only page indexes left); EAGAIN when only pages in flight are left; ENOSPC/EIO else.
  Status MakeRoom();
  // Pushes cold pages out until memory is at most target (PageStore::ReclaimTo).
  Status ReclaimTo(uint64_t target);
  // After MakeRoom's EAGAIN, with none of the caller's pages in flight and no index lock
  // held: sleeps until pages are published (kRoomWait at most). OK to try again; ENOSPC after
  // kMaxIdleRoomWaits rounds in a row with nothing in flight (*idle_waits counts them).
  Status WaitForRoom(int* idle_waits) EXCLUDES(room_mu_);
  // Pages encoded (memory allocated) that are not yet in an index.
  void BeginInFlight(uint64_t pages) { unpublished_.fetch_add(pages, std::memory_order_relaxed); }
  // Those pages are in an index now (or freed): wakes writers waiting for room.
  void EndInFlight(uint64_t pages) EXCLUDES(room_mu_);

  uint64_t low_wm() const { return low_wm_.load(std::memory_order_relaxed); }
  uint64_t mem_limit() const { return mem_limit_.load(std::memory_order_relaxed); }
  // A new mem_limit (remount; not 0 when the store started with one): MakeRoom holds to it
  // from now on, the background thread from its next look. Memory above it is not pushed
  // out here (PageStore::SetLimits does that first).
  void SetMemLimit(uint64_t limit);

  // Appends the time waited for bg_mu_ and room_mu_ (store/lock_profile.h). Lock-free.
  void AddLockWaits(std::vector<LockWait>* out) const {
    out->push_back(bg_profile_.Snapshot());
    out->push_back(room_profile_.Snapshot());
  }

 private:
  // ReclaimTo; with enough_when_no_pages, OK once no page is left in memory to evict; with
  // pack_first (the background thread), packing a page's group comes before writing it out.
  Status Reclaim(uint64_t target, bool enough_when_no_pages, bool pack_first = false);
  Status ReclaimOne(bool pack_first);        // Evicts one page, counted in reclaiming_.
  void Loop() EXCLUDES(bg_mu_);              // The background thread.
  void SleepUntilNeeded() REQUIRES(bg_mu_);  // At most 100 ms, or until memory passes high_wm_.

  const Options options_;
  PageStorage* const storage_;
  Host* const host_;
  std::atomic<uint64_t> mem_limit_{0};  // options_.mem_limit until SetMemLimit.
  std::atomic<uint64_t> high_wm_{0};    // Background reclaim starts above this many bytes...
  std::atomic<uint64_t> low_wm_{0};     // ...and stops at this many.

  LockProfile bg_profile_{"reclaim thread"};  // Waits for bg_mu_ (LockWaits).
  LockProfile room_profile_{"reclaim room"};  // Waits for room_mu_.
  Mutex bg_mu_{&bg_profile_};
  CondVar bg_cv_;  // Wakes the thread.
  bool bg_stop_ GUARDED_BY(bg_mu_) = false;
  std::thread thread_;

  // Memory is "in flight" while it is in pages encoded but not yet published or discarded
  // (unpublished_) or in an eviction (reclaiming_); room_events_ counts publications, which
  // wake the sleepers of room_cv_ (notified only when room_waiters_ says someone sleeps).
  std::atomic<uint64_t> unpublished_{0};
  std::atomic<uint64_t> reclaiming_{0};
  std::atomic<uint64_t> room_events_{0};
  std::atomic<uint32_t> room_waiters_{0};
  Mutex room_mu_{&room_profile_};
  CondVar room_cv_;
};

}  // namespace zbudfs

#endif  // ZBUDFS_STORE_RECLAIMER_H_

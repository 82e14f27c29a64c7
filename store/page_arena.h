// PageArena: where 4 KiB pages of memory come from and go back to.
//
// Owns: anonymous mappings of kRegionPages pages each, carved into 4 KiB pages (one mmap
// per page would hit vm.max_map_count at ~256 MiB and cost a syscall per page). A freed page
// is kept warm in a small bounded cache; past that it is handed back to the kernel with
// madvise(MADV_DONTNEED), so memory a user frees really leaves the process (RSS falls).
//
// Between the two, up to spare_pages freed pages (4 MiB by default) wait, still resident, in
// a spare list shared by all threads: the next allocations take them back without a page
// fault, and when the list is full it is given back whole: sorted into contiguous stretches,
// all of them in one process_madvise() call (one TLB shootdown; madvise() per stretch where
// the kernel cannot). An `rm -rf` of small files frees a page or two per file; one madvise
// each (with the TLB shootdown it sends to every CPU the daemon runs on) was a fifth of
// the daemon's time. FlushSpare() (the store calls it once deletes have stopped) gives the
// rest back, so RSS still falls after a delete.
//
// Trim() unmaps the regions whose every page is cold, so that after a large delete the
// free list does not keep a pointer to each freed page (8 bytes a page: 5 MB after 2.5 GB)
// and the address space is given back too.
//
// Deletes: while a DeferredFree is alive on a thread, the pages that thread frees past the
// warm cache are collected (at most defer_pages, 128 MiB worth by default) and given back
// sorted, by contiguous stretches, instead of page by page (a 2 GiB delete frees
// half a million pages; a file written by concurrent writeback has its pages interleaved with
// its neighbours' ranges, so small batches still made a call every three pages):
// the RSS a free gives back is given back at the latest when the batch fills or the
// DeferredFree ends, but for what then waits in the spare list (above).
//
// Locking: one mutex, mu_, guarding the free lists and the region list; mmap, munmap and
// madvise run outside it, and nothing else is taken under it. The store's lock order is in
// store/page_store.h.
//
// AllocPage/FreePage are virtual so tests can inject allocation failure.
#ifndef ZBUDFS_STORE_PAGE_ARENA_H_
#define ZBUDFS_STORE_PAGE_ARENA_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "store/mutex.h"
#include "store/page_size.h"

namespace zbudfs {

class PageArena {
 public:
  static constexpr size_t kRegionPages = 512;  // 2 MiB per mapping.

  static constexpr size_t kDeferPages = 32768;  // Default most pages a DeferredFree holds.
  static constexpr size_t kSparePages = 1024;   // Default bound of the spare list.
  // warm_cache_pages: pages kept without madvise; defer_pages: see DeferredFree;
  // spare_pages: the spare list's bound (see the top comment).
  explicit PageArena(size_t warm_cache_pages = 512, size_t defer_pages = kDeferPages,
                     size_t spare_pages = kSparePages);
  virtual ~PageArena();  // Unmaps every region.
  PageArena(const PageArena&) = delete;
  PageArena& operator=(const PageArena&) = delete;

  // A 4096-aligned page of 4096 bytes, contents undefined; nullptr when the system has no
  // memory (mmap failed).
  virtual void* AllocPage();

  // Returns a page from AllocPage(). The page must not be touched afterwards.
  virtual void FreePage(void* page);

  // Batches this thread's FreePage calls on arena (see the top comment) until destroyed.
  // Nested ones on the same thread are no-ops.
  class DeferredFree {
   public:
    explicit DeferredFree(PageArena* arena);
    ~DeferredFree();  // Gives back what is still pending.
    DeferredFree(const DeferredFree&) = delete;
    DeferredFree& operator=(const DeferredFree&) = delete;

   private:
    bool active_ = false;  // This one started the batch (not nested).
  };

  // Pages handed out and not yet freed.
  uint64_t PagesInUse() const { return in_use_.load(std::memory_order_relaxed); }

  // Gives back every page of the spare list (madvise outside the lock).
  void FlushSpare();

  // Freed pages waiting, resident, in the spare list.
  size_t SparePages() const;

  // Unmaps every region all of whose pages are cold and returns how many it unmapped. Sorts
  // the cold list under mu_ (AllocPage/FreePage wait for that sort, which takes time in
  // proportion to the pages freed), so it does nothing unless that list grew by a region's
  // worth since the last call: meant for quiet moments (the store calls it once deletes
  // have stopped).
  size_t Trim();

  // Mappings currently held.
  size_t Regions() const;

  // Appends the time waited for the arena's lock (store/lock_profile.h). Lock-free.
  void AddLockWaits(std::vector<LockWait>* out) const { out->push_back(mu_profile_.Snapshot()); }

 private:
  void GiveBack(std::vector<void*>& pages) EXCLUDES(mu_);  // madvise in runs, then cold_.
  // Adds pages to the spare list; when that passes its bound, gives the whole list back.
  void ToSpare(void* const* pages, size_t n) EXCLUDES(mu_);
  // The same under mu_: a full list is moved to *batch, for the caller to give back after.
  void AddSpare(void* const* pages, size_t n, std::vector<void*>* batch) REQUIRES(mu_);

  const size_t warm_cache_pages_;
  const size_t defer_pages_;  // Most pages a DeferredFree holds back before giving them back.
  const size_t spare_pages_;  // Bound of spare_.
  std::atomic<uint64_t> in_use_{0};

  LockProfile mu_profile_{"page arena"};        // Waits for mu_ (LockWaits).
  mutable Mutex mu_{&mu_profile_};              // Guards everything below.
  std::vector<void*> regions_ GUARDED_BY(mu_);  // Every mapping, for the destructor.
  std::vector<void*> warm_ GUARDED_BY(mu_);     // Free pages still resident.
  std::vector<void*> spare_ GUARDED_BY(mu_);    // Free and resident, to be given back.
  std::vector<void*> cold_ GUARDED_BY(mu_);     // Free pages given back with MADV_DONTNEED.
  char* carve_next_ GUARDED_BY(mu_) = nullptr;  // Next never-used page of the newest region.
  char* carve_end_ GUARDED_BY(mu_) = nullptr;   // End of the newest region.
  size_t cold_at_trim_ GUARDED_BY(mu_) = 0;     // cold_.size() after the last Trim().
};

}  // namespace zbudfs

#endif  // ZBUDFS_STORE_PAGE_ARENA_H_

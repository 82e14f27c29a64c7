// PageStorage: where a page's bytes live in memory, and how they get there and out.
//
// Owns: the page arena (or borrows the test's), the ZbudPools holding compressed pages behind
// the owner tag (file, page) that lets eviction find a page's index entry (one pool per
// shard: each thread allocates from its own, as zswap kept 32 zbud pools, so that writers
// do not queue on one pool lock; an entry names its pool in PageEntry::stamp), raw ("huge") pages
// for data that does not compress below zbud's limit, the FIFO of raw pages for their
// eviction, and the memory those pages take. Offers: encode a page (same-filled word, zbud
// object or raw page), store a payload, load (decode) a page, free an entry, and evict the
// coldest page to the overflow store. It knows nothing of files: the index entries are the
// owner's (PageStore), reached through the PageOwners interface under the owner's locks.
//
// Locking: see store/page_store.h for the lock order. raw_mu_ guards the raw FIFO (deque work
// only, innermost); the pool and the arena lock themselves. Eviction copies a page out under
// its file's index lock (through PageOwners), writes it to the overflow store with no lock
// held, and repoints the entry only if it is unchanged.
#ifndef ZBUDFS_STORE_PAGE_STORAGE_H_
#define ZBUDFS_STORE_PAGE_STORAGE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "store/mutex.h"
#include "store/page_codec.h"
#include "store/page_index.h"
#include "store/page_size.h"
#include "store/status.h"
#include "store/thread_annotations.h"
#include "store/zbud_pool.h"

namespace zbudfs {

struct Cluster;
class OverflowStore;
class PageArena;
enum class StoreErrorKind;

// The owner of the index entries pointing at stored pages (PageStore). Each call finds page
// `page` of file `file` under that file's index lock and acts only if its entry is still
// `expect` (same kind and location): a page overwritten, truncated, punched or removed
// meanwhile is someone else's business.
class PageOwners {
 public:
  // True if the entry is still `expect`.
  virtual bool Holds(uint64_t file, uint64_t page, const PageEntry& expect) = 0;
  // Copies the stored payload (PageStorage::CopyPayload) into payload and its length into
  // *length if the entry is still `expect`; false otherwise.
  virtual bool CopyIfHolds(uint64_t file, uint64_t page, const PageEntry& expect, uint8_t* payload,
                           uint32_t* length) = 0;
  // Replaces the entry by `to` (an overflow slot holding payload) if it is still `expect`
  // and its bytes still are payload's; true if it did (the caller then frees `expect`).
  virtual bool RepointIfHolds(uint64_t file, uint64_t page, const PageEntry& expect,
                              const uint8_t* payload, const PageEntry& to) = 0;
  // Part `handle` of pool `pool` belongs to a cluster of file's pages from `first` on: move
  // the cluster's live pages to the overflow store if an entry still names it (OK if none
  // does); ENOSPC or EIO from the overflow store.
  virtual Status EvictCluster(uint64_t file, uint64_t first, uint16_t pool,
                              ZbudPool::Handle handle) = 0;
  // Reclaim chose single page `page` of `file`: pack it into a cluster with its group instead
  // of writing it out, if that saves memory and fits under mem_limit without reclaiming (it
  // is called from within reclaim); true if the entry no longer holds `expect` afterwards.
  virtual bool PackInstead(uint64_t file, uint64_t page, const PageEntry& expect) = 0;

 protected:
  ~PageOwners() = default;
};

class PageStorage {
 public:
  // A page's payload is compressed (length < kPageSize, in zbud behind the owner tag) or raw.
  static constexpr size_t kRawLength = kPageSize;

  struct Options {
    int zstd_level = 1;
    int zstd_fast_level = -1;
    PageArena* arena = nullptr;         // nullptr: an arena of its own.
    OverflowStore* overflow = nullptr;  // Where evictions go; nullptr = none.
    unsigned pools = 1;                 // Zbud pools; a thread allocates from one of them.
    // Told of every EIO met on stored data (may be empty).
    std::function<void(StoreErrorKind, const std::string&)> report_error;
  };

  PageStorage(const Options& options, PageOwners* owners);
  ~PageStorage();
  PageStorage(const PageStorage&) = delete;
  PageStorage& operator=(const PageStorage&) = delete;

  // A same-filled page: true, with *out set (such a page needs no storage).
  bool EncodeSame(const uint8_t* data, PageEntry* out) const;
  // Compresses data into scratch (kPageSize bytes); returns the payload length, or 0 when
  // the page does not compress below zbud's limit (then it is stored raw, from data).
  size_t Compress(const uint8_t* data, PageCodec::Streak* streak, uint8_t* scratch) const;
  // Memory a payload of `length` bytes takes once stored (kRawLength: a raw page).
  static uint64_t StoredCost(size_t length);
  // Allocates room for payload[0..length) (zbud behind the tag, or a raw page for
  // kRawLength), tags and copies it, in zbud pool `pool` if not -1, else this thread's.
  // ENOSPC when no memory can be had.
  Status Store(uint64_t file, uint64_t page, const uint8_t* payload, size_t length, PageEntry* out,
               int pool = -1);
  // Decodes e into out (a page). EIO (reported) if corrupt or unreadable; e must be kept
  // alive by the caller's index lock.
  Status Load(const PageEntry& e, uint8_t* out) const;
  // Load of a cluster's page (kCluster) whose frame the caller already holds (CopyFrame):
  // decoded from there, not read again.
  Status LoadFromFrame(const PageEntry& e, const uint8_t* frame, uint8_t* out) const;
  // Reads an overflow entry's payload (e.length bytes), verified; EIO (reported) on failure.
  Status ReadOverflow(const PageEntry& e, uint8_t* payload) const;
  // Decompresses an overflow page's payload into out; EIO (reported) if corrupt.
  Status DecodeOverflow(const PageEntry& e, const uint8_t* payload, uint8_t* out) const;
  // Copies a zbud or raw entry's stored payload into payload; returns its length.
  uint32_t CopyPayload(const PageEntry& e, uint8_t* payload) const;
  // True if a zbud or raw entry's bytes still are payload's (see PageOwners::RepointIfHolds).
  bool StillHolds(const PageEntry& e, const uint8_t* payload) const;
  // True if a zbud entry's payload is payload[0, length) (the packer's check: a handle may be
  // freed and reused for a newer page while no page is under reclaim).
  bool StillHoldsPayload(const PageEntry& e, const uint8_t* payload, uint32_t length) const;
  void Free(const PageEntry& e);                  // Releases e's storage (a cluster reference).
  static uint64_t EntryCost(const PageEntry& e);  // Bytes e's storage takes.

  // Clusters (store/cluster.h). Stores frame[0, length) (PageCodec::CompressRun of `pages`
  // pages, the first of them `first`) as a chain of allocations of this thread's pool; the
  // cluster starts with no reference. ENOSPC when no memory can be had.
  StatusOr<Cluster*> StoreCluster(uint64_t file, uint64_t first, const uint8_t* frame,
                                  size_t length, unsigned pages);
  // Writes frame[0, length) of a cluster of `pages` pages to overflow slots, one a part, as
  // a new spilled cluster with no reference (store/cluster.h); ENOSPC/EIO from the
  // overflow store (nothing written then).
  StatusOr<Cluster*> SpillCluster(const uint8_t* frame, uint32_t length, unsigned pages);
  // Frees a cluster no entry names (one that StoreCluster or SpillCluster made but was
  // never published).
  void DropCluster(Cluster* c);
  // Copies c's frame into out (c->frame_length bytes); EIO (reported) if a spilled
  // cluster's slots cannot be read or fail their check.
  Status CopyFrame(const Cluster& c, uint8_t* out) const;
  // Decodes c's frame into pages (c->pages pages), read from where c is or taken from
  // `frame` if given; EIO (reported) if corrupt or unreadable.
  Status DecodeCluster(const Cluster& c, uint8_t* pages, const uint8_t* frame = nullptr) const;
  // Writes a payload to the overflow store; its location, or ENOSPC/EIO (EIO reported).
  StatusOr<uint64_t> WriteOverflow(const uint8_t* payload, uint32_t length);
  uint64_t Clusters() const { return clusters_.load(std::memory_order_relaxed); }  // In memory.
  uint64_t SpilledClusters() const { return spilled_clusters_.load(std::memory_order_relaxed); }
  // Zbud allocations of clusters in memory (spilled ones hold none).
  uint64_t ClusterParts() const { return cluster_parts_.load(std::memory_order_relaxed); }
  uint64_t ClusterHeapBytes() const { return cluster_heap_.load(std::memory_order_relaxed); }

  // Queues raw pages, now in an index, for eviction (pages [0, n) of a batch, if touched).
  void RecordRawPages(uint64_t file, uint64_t first, const PageEntry* entries, const bool* touched,
                      uint64_t n) EXCLUDES(raw_mu_);
  void RecordRawPage(uint64_t file, uint64_t page, const PageEntry& e) EXCLUDES(raw_mu_);
  // Moves one cold page (raw pages first when they are most of memory, else the pool's LRU
  // tail) to the overflow store. EAGAIN when nothing can be evicted now; ENOSPC or EIO when
  // the overflow store refused, as a value. With pack_first, a single zbud page reclaim
  // takes is first offered to its owner to pack with its group (PageOwners::PackInstead),
  // which frees memory without a write; the overflow store gets it only if that fails.
  Status EvictColdest(bool pack_first = false) EXCLUDES(raw_mu_);

  // Memory of pages (pool and raw pages, in flight included, and the clusters' objects).
  uint64_t MemBytes() const { return (PoolPages() + RawPages()) * kPageSize + ClusterHeapBytes(); }
  bool HasPages() const { return PoolPages() != 0 || RawPages() != 0; }
  uint64_t PoolPages() const;     // Pages of all pools.
  uint64_t BuddiedPages() const;  // Pages holding two buddies, in all pools.
  unsigned pools() const { return static_cast<unsigned>(pools_.size()); }
  std::vector<uint64_t> PagesPerPool() const;  // Each pool's pages, in pool order.
  uint64_t RawPages() const { return raw_pages_.load(std::memory_order_relaxed); }
  uint64_t FaultedPages() const { return faulted_.load(std::memory_order_relaxed); }
  PageArena* arena() const { return arena_; }
  OverflowStore* overflow() const { return options_.overflow; }
  // New zstd levels for pages compressed from now on (remount); pages stored stay as they are.
  void SetLevels(int zstd_level, int zstd_fast_level) {
    zstd_fast_level_.store(zstd_fast_level, std::memory_order_relaxed);
    zstd_level_.store(zstd_level, std::memory_order_relaxed);
  }
  int zstd_level() const { return zstd_level_.load(std::memory_order_relaxed); }
  int zstd_fast_level() const { return zstd_fast_level_.load(std::memory_order_relaxed); }
  // Appends the time waited for the locks of page memory: the pool, the arena, the raw FIFO
  // and the overflow store (if any). Lock-free.
  void AddLockWaits(std::vector<LockWait>* out) const;
  // Reports st (an error) to the reporter, if any, and returns it.
  Status Report(StoreErrorKind kind, Status st) const;

 private:
  // Raw pages in the order they were stored: they have no zbud header to carry an owner
  // tag. Records go stale when a page is freed; skipped when popped, dropped by CompactRaw.
  struct RawRecord {
    uint64_t file;
    uint64_t page;
    uint64_t addr;
  };
  Status EvictColdestOnce() EXCLUDES(raw_mu_);  // EvictColdest's work.
  // Reads an overflow slot; EIO (reported: a failed check or the overflow's I/O) on error.
  Status ReadSlot(uint64_t loc, uint8_t* out, uint32_t length) const;
  Status EvictZbud(uint16_t pool, ZbudPool::Handle handle);  // Pool `pool`'s evict callback.
  uint16_t ThisThreadsPool() const;                          // The pool this thread allocates from.
  ZbudPool& PoolOf(const PageEntry& e) const { return *pools_[e.stamp]; }
  // Reclaims a page of the pool with the most pages, then of the others; EAGAIN if none
  // could, or the overflow store's error.
  Status EvictFromPools();
  Status EvictRaw() EXCLUDES(raw_mu_);  // Evicts the oldest raw page.
  // Writes payload to the overflow store and repoints the entry; frees what lost.
  Status MoveToOverflow(uint64_t file, uint64_t page, const PageEntry& expect,
                        const uint8_t* payload, uint32_t length);
  void CompactRawFifo() EXCLUDES(raw_mu_);
  // One page of a cluster, its frame read from the cluster or given (frame).
  Status LoadClustered(const PageEntry& e, uint8_t* out, const uint8_t* frame = nullptr) const;
  void ReleaseCluster(Cluster* c);  // Drops a reference; the last one frees it.

  Options options_;
  std::atomic<int> zstd_level_;       // options_.zstd_level until SetLevels.
  std::atomic<int> zstd_fast_level_;  // options_.zstd_fast_level until SetLevels.
  PageOwners* const owners_;
  std::unique_ptr<PageArena> owned_arena_;
  PageArena* arena_;
  std::vector<std::unique_ptr<ZbudPool>> pools_;
  std::atomic<uint64_t> raw_pages_{0};         // Raw pages allocated, in flight too.
  mutable std::atomic<uint64_t> faulted_{0};   // Pages ever read from overflow.
  std::atomic<uint64_t> clusters_{0};          // Clusters alive in memory.
  std::atomic<uint64_t> spilled_clusters_{0};  // Clusters alive in the overflow store.
  std::atomic<uint64_t> cluster_parts_{0};     // Their zbud allocations.
  std::atomic<uint64_t> cluster_heap_{0};      // Their objects' heap bytes.
  LockProfile raw_profile_{"raw fifo"};        // Waits for raw_mu_ (LockWaits).
  Mutex raw_mu_{&raw_profile_};
  std::deque<RawRecord> raw_fifo_ GUARDED_BY(raw_mu_);  // Oldest first.
};

}  // namespace zbudfs

#endif  // ZBUDFS_STORE_PAGE_STORAGE_H_

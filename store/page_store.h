// PageStore: file data as compressed 4 KiB pages. The FUSE daemon's only way to file data.
//
// Owns: the files (FileId -> File, in shards), each with its PageIndex (page number -> where
// the page lives, store/page_index.h) and its locks; the write, read, truncate, punch and
// zero protocols; and the statistics (StoreStats; README.md lists them). Page memory (the zbud
// pool, raw pages, encoding, eviction) is PageStorage's (store/page_storage.h); keeping memory
// under mem_limit is the Reclaimer's (store/reclaimer.h). Files are named by a caller-chosen
// FileId (the daemon uses the inode number); a file comes into being on its first write and
// is gone after Remove(). The store knows nothing of file sizes: a read of a page never
// written (a hole) gives zeros, and the daemon clamps reads to st_size.
//
// Locking: the lock order of the whole store layer (take them only in this order):
//   1. FileShard::mu          (SharedMutex, one per shard: 64 shards by FileId)
//                                             the FileId -> File map; held only to find,
//                                             create or drop a File, never across 2..5,
//                                             never two shards at once.
//   2. File::write_mu         (Mutex, one of 256 stripes shared by files)
//                                             serialises mutations of one file. Partial-page
//                                             writes, truncate, punch and zero compress under
//                                             it (and release it only to wait for memory);
//                                             writes of whole pages (one batch) compress
//                                             unlocked and take it only to publish.
//   3. File::index_mu         (SharedMutex)   the file's page index: shared by readers
//                                             (decompression of that file's pages happens
//                                             under it in shared mode), exclusive only to
//                                             swap entries. Eviction takes it through
//                                             PageStorage's PageOwners calls.
//   4. ZbudPool::mu_          (AdaptiveMutex) pool lists; never held across a callback;
//                                             one per pool, never two at once.
//   5. PageArena::mu_         (Mutex)         free page lists; syscalls happen outside it.
//   5. OverflowStore::mu_     (Mutex)         overflow slot lists; pread/pwrite outside it
//                                             (its open_mu_, around creating a class file,
//                                             comes just before it).
//   5. PageStorage::raw_mu_   (Mutex)         the raw-page FIFO; deque work only.
//   -  Reclaimer::bg_mu_      (Mutex)         the reclaim thread's sleep; nothing taken
//                                             under it.
//   -  Reclaimer::room_mu_    (Mutex)         writers' sleep while waiting for room; nothing
//                                             taken under it, never held while waiting on
//                                             another lock (a leaf: taken under 2 too).
//   -  DecodePool::mu_        (Mutex)         its queue of large reads' parts; a leaf. The
//                                             helpers decode under the reader's shared
//                                             index_mu (3), which it holds until they finish.
//   -  Stager::mu_            (Mutex)         the queue of staged pages; a leaf. Compressors
//                                             take a file's index_mu (3) as eviction does
//                                             (no write_mu), with mu_ released.
//   -  Packer::mu_            (Mutex)         the packer thread's sleep; a leaf. Packing
//                                             (page_store_pack.cc) takes a file's index_mu
//                                             (3) as the compressors do (no write_mu).
// I/O: the overflow store's pwrite (eviction) runs with no lock held; its pread (a read of an
// overflowed page) runs under that one file's index_mu in shared mode, or exclusive for
// promotion's re-check of a slot; readers of other files never need that lock. Freeing an
// overflow page may punch its disk block out (one fallocate, OverflowStore::Free): that runs
// after index_mu is released, under the file's write_mu at most. Statistics are atomics and
// take no lock. Each lock class above has a LockProfile (store/lock_profile.h) counting the
// time threads waited for it; LockWaits() reports them (tests/bench/store_scaling_bench.cc).
//
// Reclaim (when mem_limit and an overflow store are set): PageStorage::EvictColdest takes the
// pool's LRU tail (the owner tag stored before each compressed page names its file and page)
// or the oldest raw page, copies it out under the file's index_mu (shared), writes it to the
// overflow store with no lock, then re-checks the index entry under index_mu (exclusive) and
// only then repoints it and frees the memory; a page overwritten, truncated, punched or
// removed meanwhile is simply gone and its new overflow slot is freed. The Reclaimer's
// background thread keeps memory between 90 % and 95 % of mem_limit, packing the groups of
// the single pages it takes into clusters first where that saves memory (PackInstead); a writer
// that finds no room reclaims itself, so memory exceeds mem_limit by at most one page per writing
// thread (and, with nothing left to reclaim, by one page a zbud pool for rewrites no larger
// than what they replace: RewriteSlack), and one cluster's parts (17 pages at most) while a
// packer's check of room races a writer's. When all that memory is in pages reclaim cannot take yet
// (other writers' pages encoded but not yet published, or being evicted), the writer publishes what
// it has encoded itself, or, with nothing of its own pending, sleeps (write_mu released) until a
// publication and tries again, for as long as anything is in flight: a write never fails for memory
// while reclaim can still make room, and gets ENOSPC only when the overflow store is full or
// absent. Staging (staging_bytes, compress_threads): a whole page may be stored as written (a
// staged page, PageEntry::kFlagStaged) while memory is under mem_limit and the Stager's budget has
// room; a compressor then swaps it for its compressed form (CompressAndSwap). A staged page
// counts as a raw page in memory and as in flight for reclaim (which never evicts it) until
// its compressor is done with it, so waiting writers wait for the compressors as they wait
// for other writers; a compressor may pass mem_limit by the one allocation it swaps in.
// Memory (MemUsed, mem_used_total) is pool pages + raw pages + the page indexes' heap bytes
// (and file objects) + metadata and inodes charged by the caller (ChargeMetadata,
// ChargeInodes); the last three cannot be evicted, so
// reclaim pushes pages out to make room for them. Once no page is left in memory, a page
// still passes through it on its way to the overflow store: with a mem_limit smaller than the
// indexes of the pages stored (at most 64 bytes a page, so bounded by the capacity), memory
// is the indexes plus at most one page per writing thread.
// The one exception: a page that takes no more memory than the stored page it replaces
// (overwrite, or the edge of a truncate or punch) is stored even when reclaim cannot make
// room, since the old page is freed right after: such a page is swapped in (and the old one
// freed) at once, not with the rest of its batch, so this adds at most one page per writing
// thread, and only when the overflow store is full or absent. So: reads of one file run in
// parallel with each other and with compression of writes to the same file; writes to
// different files run in parallel, and so does the compression of whole-page writes to one
// file (the kernel's writeback sends a file's pages as concurrent 1 MiB requests); nothing
// shared by all files is held while (de)compressing.
#ifndef ZBUDFS_STORE_PAGE_STORE_H_
#define ZBUDFS_STORE_PAGE_STORE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/decode_pool.h"
#include "store/mutex.h"
#include "store/packer.h"
#include "store/page_codec.h"
#include "store/page_index.h"
#include "store/page_size.h"
#include "store/page_storage.h"
#include "store/reclaimer.h"
#include "store/stager.h"
#include "store/status.h"
#include "store/thread_annotations.h"

namespace zbudfs {

class OverflowStore;
class PageArena;

// Errors the store meets on its own data, reported (besides being returned as EIO) so that
// the daemon can log them: nothing else tells an administrator that a disk is failing.
enum class StoreErrorKind {
  kOverflowIo,   // An overflow file could not be read or written (not a full overflow).
  kCheckFailed,  // A page read back (from memory or disk) failed its check value.
};
// Called on the thread that met the error, possibly with one file's store locks held: it
// must be quick (the daemon rate-limits and writes at most a line) and must not call the
// store.
using StoreErrorReporter = std::function<void(StoreErrorKind kind, const std::string& message)>;

// Settings of a store; the daemon fills these from its mount options.
struct PageStoreOptions {
  int zstd_level = 1;           // zstd level for new pages; negative levels are allowed.
  int zstd_fast_level = -1;     // Tried first; kept if the page pairs in zbud at it.
                                // >= zstd_level: one pass at zstd_level.
  uint64_t capacity_bytes = 0;  // Logical capacity (4096 x pages held); 0 = unlimited.
  uint64_t mem_limit = 0;       // Memory the store may hold (pool + raw pages); 0 = unlimited.
  std::shared_ptr<OverflowStore> overflow;  // Where reclaim sends cold pages; nullptr = none,
                                            // and a write over mem_limit gets ENOSPC.
  bool background_reclaim = true;           // A thread keeps memory between the watermarks.
  PageArena* arena = nullptr;       // Page memory source (a test seam); nullptr = own arena.
  StoreErrorReporter report_error;  // Told of every EIO the store meets; empty = nobody.
  unsigned decode_threads = 0;      // Helpers that decode parts of large reads when idle (0: none).
  unsigned zbud_pools = 1;          // Zbud pools, threads dealt among them (1..32; more: 32).
  // The staging tier (store/stager.h): up to staging_bytes of whole pages are kept as written
  // and compressed by compress_threads background threads. Either 0: off, every page is
  // compressed by its writer.
  uint64_t staging_bytes = 0;
  unsigned compress_threads = 0;
  // Clusters (store/cluster.h): the pages of a file not written for pack_after_ms are
  // packed cluster_pages at a time (2..16; 0 or 1: off) by a background thread that looks
  // every pack_interval_ms (0: no thread; Pack and PackAll still work).
  unsigned cluster_pages = 0;
  uint64_t pack_after_ms = 30000;
  uint64_t pack_interval_ms = 0;
  // The zstd level of clusters' frames: packing is off the request path, so it can afford a
  // slower level than zstd_level, which buys density (docs/BENCHMARKS.md).
  int pack_level = 6;
};

// Limits a running store may change (a remount). Fields left empty stay as they are.
struct StoreLimits {
  std::optional<uint64_t> capacity_bytes{};  // Not 0: a store started unlimited stays so.
  std::optional<uint64_t> mem_limit{};       // Likewise.
  std::optional<uint64_t> overflow_limit{};  // Needs an overflow store.
  std::optional<int> zstd_level{};           // For pages compressed from now on.
  std::optional<int> zstd_fast_level{};
};

// The statistics of the contract, all in bytes or pages as named there.
struct StoreStats {
  uint64_t orig_data_size = 0;        // 4096 x pages held (holes excluded).
  uint64_t compr_data_size = 0;       // Compressed payload bytes, in memory and in overflow.
  uint64_t mem_used_total = 0;        // Pool pages x 4096 + raw pages x 4096 + index_bytes
                                      // + metadata_bytes + cluster_bytes.
  uint64_t index_bytes = 0;           // Heap bytes of the files' page indexes.
  uint64_t mem_limit = 0;             // The effective mem_limit (0 = unlimited).
  uint64_t pool_pages = 0;            // Zbud pages in the pool.
  uint64_t buddied_pages = 0;         // Zbud pages holding two buddies.
  uint64_t same_pages = 0;            // Pages stored as one repeated 8-byte word.
  uint64_t huge_pages = 0;            // Pages kept raw.
  uint64_t overflow_pages = 0;        // Pages whose data is in the overflow directory now.
  uint64_t overflow_bytes = 0;        // Bytes the overflow files take.
  uint64_t written_back_pages = 0;    // Pages ever written to the overflow directory.
  uint64_t faulted_pages = 0;         // Pages ever read back from the overflow directory.
  uint64_t metadata_bytes = 0;        // Charged by the caller (ChargeMetadata): xattrs, symlinks.
  uint64_t inode_bytes = 0;           // Charged by the caller (ChargeInodes): its inodes.
  uint64_t staged_pages = 0;          // Pages kept as written until a compressor takes them.
  uint64_t clustered_pages = 0;       // Pages held in clusters (store/cluster.h).
  uint64_t cluster_allocations = 0;   // Zbud allocations holding clusters' frames.
  uint64_t clusters = 0;              // Clusters held in memory.
  uint64_t spilled_clusters = 0;      // Clusters moved whole to the overflow directory.
  uint64_t cluster_bytes = 0;         // Heap bytes of the clusters' objects (in mem_used_total).
  uint64_t reclaim_packed_pages = 0;  // Pages ever packed by reclaim instead of written out.
};

// What one file costs: the daemon turns stored_bytes into st_blocks.
struct FileUsage {
  uint64_t pages = 0;  // Pages held (holes excluded).
  // Memory and disk the pages take: 64-byte zbud chunks, 4096 per raw page, 0 per same page,
  // the compressed bytes of a page in the overflow directory.
  uint64_t stored_bytes = 0;
  uint64_t compr_bytes = 0;     // Compressed payload (4096 for a raw page; 0 for a same page).
  uint64_t overflow_bytes = 0;  // Of stored_bytes, what is in the overflow directory.
};

class PageStore final : private PageOwners,
                        private Reclaimer::Host,
                        private Stager::Host,
                        private Packer::Host {
 public:
  using FileId = uint64_t;
  // Largest offset + 1 accepted: the kernel's MAX_LFS_FILESIZE, which is what FUSE gives
  // s_maxbytes. With the writeback cache the kernel accepts every write below it into its
  // page cache before we see it, so a smaller limit here loses data at writeback.
  static constexpr uint64_t kMaxFileSize = uint64_t{INT64_MAX};

  explicit PageStore(const PageStoreOptions& options);
  ~PageStore();
  PageStore(const PageStore&) = delete;
  PageStore& operator=(const PageStore&) = delete;

  // Stores len bytes at off; partial pages are read, merged and rewritten.
  // Errors: EFBIG past kMaxFileSize, ENOSPC past capacity or when memory cannot be had,
  // EIO when an existing page to merge with is corrupt. On error nothing of this call's
  // pages that failed is changed (pages before the failing one may be written).
  Status Write(FileId file, uint64_t off, const void* buf, size_t len);

  // Fills buf with len bytes from off; holes and pages never written read as zeros.
  // Errors: EIO when a page fails to decompress (the bad page only; never garbage data);
  // EINVAL for a range past kMaxFileSize.
  // Reading a page from the overflow directory may bring it back into memory (see
  // page_store_read.cc, "fault-back policy"), hence not const.
  Status Read(FileId file, uint64_t off, void* buf, size_t len);

  // Drops every page at or past ceil(size/4096) and zeroes the tail of the page holding
  // byte size-1, in that order; never fails for memory (the tail page may pass mem_limit:
  // a full store can always be shrunk). Errors: EIO when the tail page is corrupt or
  // cannot be read back from the overflow directory.
  Status Truncate(FileId file, uint64_t size);

  // Makes [off, off+len) read as zeros, freeing whole pages inside it (they become holes)
  // before the partial pages at its edges are rewritten; never fails for memory, as
  // Truncate. Errors: EIO as Truncate.
  Status PunchHole(FileId file, uint64_t off, uint64_t len);

  // Makes [off, off+len) read as zeros, keeping the pages allocated (as zero pages, which
  // cost no memory); for fallocate(FALLOC_FL_ZERO_RANGE) and plain fallocate of holes use
  // Allocate().
  Status ZeroRange(FileId file, uint64_t off, uint64_t len);

  // Turns holes in [off, off+len) into zero pages (plain fallocate: reserves capacity), as
  // extents of the index (O(1) memory per range). Errors: ENOSPC past capacity (then
  // nothing is allocated).
  Status Allocate(FileId file, uint64_t off, uint64_t len);

  // Frees every page of the file and forgets it. Unknown files are fine.
  void Remove(FileId file);

  // Packs the file's cold pages into clusters now, whatever their age (zbudfsctl pack, tests):
  // every aligned group of cluster_pages pages with two or more single compressed pages, or
  // with a cluster half dead, becomes one cluster if that takes less memory. Returns the
  // pages packed; 0 with clusters off. Never fails: a group that cannot be packed (no
  // memory, changed meanwhile) stays as it is.
  uint64_t Pack(FileId file);
  uint64_t PackAll();  // Pack of every file.

  // Pages held and their cost. Unknown files have zero usage.
  FileUsage Usage(FileId file) const;

  // Next offset >= off that starts data (want_data) or a hole (!want_data), at page
  // granularity, looking only at stored pages: beyond the last stored page everything is
  // a hole. Returns UINT64_MAX when there is no data at or after off.
  uint64_t SeekData(FileId file, uint64_t off, bool want_data) const;

  // The statistics of the contract.
  StoreStats Stats() const;

  // Pushes cold pages to the overflow store until memory is at most target bytes.
  // Errors: ENOSPC when there is no overflow store or it is full, or when no page is left in
  // memory and the page indexes (which count in memory) alone exceed target; EIO on its
  // write errors; EAGAIN when nothing more can be evicted right now.
  Status ReclaimTo(uint64_t target);

  // Memory held now: pool pages, raw pages, the page indexes and charged metadata, in bytes.
  uint64_t MemUsed() const override;

  // Charges bytes the caller keeps in memory besides file data (the daemon's extended
  // attributes) against the capacity and the memory limit: they count in metadata_bytes,
  // in mem_used_total and so in what is compared with mem_limit (reclaim pushes file pages
  // out to make room for them), and they use capacity as file pages do. Errors: ENOSPC past
  // capacity, or when even after reclaim memory would stay above mem_limit (metadata
  // cannot go to the overflow directory; pages in flight and staged pages are waited for
  // first, as writers do); nothing is charged then. A negative amount gives
  // a charge back: atomics only, no lock, never fails (callable under any caller's lock).
  Status ChargeMetadata(int64_t bytes);
  // Memory the caller keeps per inode (the daemon's inodes and names: what a flood of empty
  // files costs), counted in inode_bytes and mem_used_total, never refused: as on tmpfs,
  // the caller's inode limit (nr_inodes) bounds inodes, not the capacity or mem_limit (a
  // full mount still creates files; a mem_limit of a page still works). Past mem_limit,
  // file pages are pushed out to make room as for the page indexes, best effort and without
  // waiting. Negative: given back.
  void ChargeInodes(int64_t bytes);
  // What a file costs here besides its pages and index (its object, the shared_ptr's control
  // block, its shard's map node), about: for the caller's ChargeInodes.
  static const uint64_t kFileBytes;

  // Time threads waited for the store's locks, one entry per lock class (all files' index
  // locks are one class, the 256 write stripes another, ...; store/lock_profile.h), in lock
  // order. Totals since the store was made; lock-free.
  // Pages of each zbud pool (PageStoreOptions::zbud_pools), to see how evenly threads use them.
  std::vector<uint64_t> PagesPerPool() const { return storage_.PagesPerPool(); }
  std::vector<LockWait> LockWaits() const;

  // Waits until the compressors have handled every page staged so far (tests, benchmarks).
  void WaitForStaging() { stager_.WaitIdle(); }

  // The options this store started with; the limits SetLimits may have changed since are
  // capacity_bytes(), mem_limit(), overflow_limit() and zstd_level().
  const PageStoreOptions& options() const { return options_; }

  // Changes limits of a running store, all or none. Errors (nothing changes then): EINVAL
  // when a new capacity or overflow_limit is below what is held now, when a store started
  // without such a limit is given one (or the other way round), or when mem_limit would be
  // under twice the staging budget; ENOSPC (or EIO) when memory held above a lower
  // mem_limit cannot be pushed out to the overflow store. Lowering mem_limit pushes cold
  // pages out first, so it may take a while; safe to call from any thread holding no lock.
  Status SetLimits(const StoreLimits& limits);
  uint64_t capacity_bytes() const { return capacity_bytes_.load(std::memory_order_relaxed); }
  uint64_t mem_limit() const { return reclaimer_.mem_limit(); }
  uint64_t overflow_limit() const;  // 0 without an overflow store.
  int zstd_level() const { return storage_.zstd_level(); }

 private:
  // One file: its index and the locks around it. Files share write_mu in stripes
  // (PageStore::kWriteStripes): a mutex is 40 bytes and small files are the common case
  // (100,000 small files save 4 MiB). A stripe is never held together with another (every
  // mutation is of one file), so sharing adds no lock-order edge; two files of one stripe
  // only wait for each other's publication or partial-page writes.
  struct File {
    File(Mutex& stripe, LockProfile* index_profile) : write_mu(stripe), index_mu(index_profile) {}
    File(const File&) = delete;
    File& operator=(const File&) = delete;

    Mutex& write_mu;                                        // Serialises mutations (a stripe).
    mutable SharedMutex index_mu ACQUIRED_AFTER(write_mu);  // Shared for reads.
    PageIndex index GUARDED_BY(index_mu);                   // Page number -> entry.
    bool removed GUARDED_BY(write_mu) = false;              // Set by Remove: File is dead.
    std::atomic<uint64_t> stored_bytes{0};                  // What the pages cost (FileUsage).
    std::atomic<uint64_t> compr_bytes{0};                   // FileUsage::compr_bytes.
    std::atomic<uint64_t> overflow_bytes{0};                // FileUsage::overflow_bytes.
    // index.HeapBytes() as last charged to index_bytes_.
    size_t index_bytes GUARDED_BY(index_mu) = 0;
    // Packing (store/page_store_pack.cc): whether pages changed since the last pack, the
    // range they lie in, and when (read without the lock by the packer's scan).
    std::atomic<bool> pack_due{false};
    std::atomic<int64_t> last_write_ms{0};
    uint64_t pack_first GUARDED_BY(index_mu) = UINT64_MAX;
    uint64_t pack_last GUARDED_BY(index_mu) = 0;
  };
  struct Batch;
  struct Promotion;
  // Who holds File::write_mu while pages are rewritten.
  enum class WriteMuMode {
    kCallerHoldsWriteMu,  // The caller, throughout (released only to wait for room).
    kLockToPublish,       // Nobody while compressing; taken to publish each batch.
  };
  // Whether rewritten pages may pass mem_limit regardless of what they replace.
  enum class Limit {
    kEnforce,     // Only a page that costs no more memory than the one it replaces.
    kAdmitShrink  // Always: the caller frees space (truncate, punch); it must not fail.
  };
  // Statistics changes of several entries, summed so that a batch, a dropped range (or an
  // overwrite of a page by one of the same kind) costs at most one atomic add per counter.
  struct AccountDelta {
    int64_t stored = 0, same = 0, compr = 0, huge = 0, overflow = 0, staged = 0;
    int64_t overflow_stored = 0;  // Of stored: the overflow entries' bytes.
    int64_t clustered = 0;
    void Add(const PageEntry& e, int64_t sign);  // +/- one entry.
  };

  // Files.
  std::shared_ptr<File> FindFile(FileId file) const;    // nullptr if unknown.
  std::shared_ptr<File> FindOrCreateFile(FileId file);  // Never nullptr.
  template <typename Op>
  Status WithFile(FileId id, bool create, Op&& op);  // op(File&) under write_mu.

  // The write protocol (page_store.cc, "Rewriting pages").
  template <typename Fill>
  Status RewritePages(FileId id, File& f, uint64_t first, uint64_t n, Fill&& fill,
                      WriteMuMode mode = WriteMuMode::kCallerHoldsWriteMu,
                      Limit limit = Limit::kEnforce);
  template <typename Fill>
  Status RewriteBatch(FileId id, File& f, Batch& b, Fill& fill, WriteMuMode mode, Limit limit);
  Status AddPage(FileId id, File& f, Batch& b, const uint8_t* data, WriteMuMode mode, Limit limit);
  // What a rewrite of a page replaces: the memory its entry holds and, for a zbud entry,
  // its pool (where a rewrite that passes mem_limit allocates, to take the holes
  // rewrites leave there: zbud frees a page only with both its allocations).
  struct Replaced {
    uint64_t bytes = 0;
    int pool = -1;
  };
  Replaced ReplacedMemory(File& f, uint64_t page, Limit limit) EXCLUDES(f.index_mu);
  bool RewriteSlack(const Replaced& replaced) const;
  Status EncodePage(FileId id, uint64_t page, const uint8_t* data, Replaced replaced,
                    PageCodec::Streak* streak, PageEntry* out, bool* passed_limit);
  void QueueStaged(FileId id, const Batch& b, uint64_t from, uint64_t to);
  Status NoRoom(FileId id, File& f, Batch& b, WriteMuMode mode);
  Status WaitForRoom(File& f, WriteMuMode mode, int* idle_waits);
  Status Publish(FileId id, File& f, Batch& b, uint64_t to, WriteMuMode mode);
  Status SwapIn(FileId id, File& f, Batch& b, uint64_t from, uint64_t to) REQUIRES(f.write_mu)
      EXCLUDES(f.index_mu);
  void Discard(Batch& b, uint64_t from, uint64_t to);  // Frees unpublished pages.
  // Pages [from, to) published (staged ones stay in flight until compressed) or freed.
  void EndInFlight(Batch& b, uint64_t from, uint64_t to, bool published);

  // The other mutations, under write_mu.
  Status LoadPage(const File& f, uint64_t page, uint8_t* buf) const EXCLUDES(f.index_mu);
  Status ZeroInPage(FileId id, File& f, uint64_t page, uint64_t from, uint64_t to,
                    const uint8_t* loaded = nullptr) REQUIRES(f.write_mu);
  // Frees [first, last); keep_reserved: their capacity stays taken (ZeroRange refills it).
  void DropPages(File& f, uint64_t first, uint64_t last, bool keep_reserved = false)
      REQUIRES(f.write_mu) EXCLUDES(f.index_mu);
  Status ZeroWholePages(File& f, uint64_t first, uint64_t last) REQUIRES(f.write_mu)
      EXCLUDES(f.index_mu);
  template <typename Whole, typename Part>
  static Status SplitRange(uint64_t off, uint64_t len, Whole&& whole, Part&& part);

  // The read protocol.
  Status ReadLocked(const File& f, uint64_t off, uint8_t* dst, size_t len,
                    std::vector<Promotion>* promotions) REQUIRES_SHARED(f.index_mu);
  Status ReadParallel(const File& f, uint64_t off, uint8_t* dst, size_t len,
                      std::vector<Promotion>* promotions) REQUIRES_SHARED(f.index_mu);
  Status ReadOverflowPage(const PageEntry& e, uint64_t page, uint8_t* into,
                          std::vector<Promotion>* promotions);
  Status ReadSpilledPage(const PageEntry& e, uint64_t page, uint8_t* into,
                         std::vector<Promotion>* promotions);
  void Promote(FileId id, const Promotion& p);         // Brings p back if unchanged and room.
  void PromotePage(FileId id, const Promotion& p);     // The same for an overflow page...
  void PromoteCluster(FileId id, const Promotion& p);  // ...and for a spilled cluster.
  bool RoomToPromote(uint64_t pool_pages) const;       // Below the low watermark after it.
  // RoomToPromote, and the room taken (promoting_bytes_) until UnreservePromotion, so that
  // promotions stored at once cannot each take the last of it.
  bool ReservePromotion(uint64_t bytes);
  void UnreservePromotion(uint64_t bytes);
  bool QueueClusterPromotion(const Cluster& c, const std::vector<Promotion>& promotions) const;
  bool SlotHolds(uint64_t loc, const uint8_t* payload, uint32_t len) const;  // Promote's check.

  // PageOwners: eviction's access to the index entries (page_store_reclaim.cc).
  bool Holds(uint64_t file, uint64_t page, const PageEntry& expect) override;
  bool CopyIfHolds(uint64_t file, uint64_t page, const PageEntry& expect, uint8_t* payload,
                   uint32_t* length) override;
  bool RepointIfHolds(uint64_t file, uint64_t page, const PageEntry& expect, const uint8_t* payload,
                      const PageEntry& to) override;
  // Reclaimer::Host.
  uint64_t DroppedPages() const override;
  void TrimQuietHeap() override;
  // Stager::Host: a staged page becomes a zbud page (or a plain raw page).
  void CompressStaged(const Stager::Record* records, size_t n) override;
  void DropStaged(const Stager::Record& r) override;
  // Compresses the page r names; false if it is no longer that staged page.
  bool CompressAndSwap(File& f, const Stager::Record& r) EXCLUDES(f.index_mu);

  // Clusters (page_store_pack.cc).
  uint64_t PackFile(FileId id, File& f, uint64_t first, uint64_t last);  // Pages [first, last).
  // The range of pages changed since the file's last pack, [*first, *last), now reset.
  void TakePackRange(File& f, uint64_t* first, uint64_t* last) EXCLUDES(f.index_mu);
  // Who packs: the packer (or Pack) at pack_level, making room by pushing pages out if need
  // be; or reclaim itself (PackInstead), never reclaiming within reclaim, at the faster of
  // pack_level and zstd_level, since the memory is wanted now.
  enum class PackFor { kPacker, kReclaim };
  // Packs the group of pages from `first`; returns the pages packed (0: left alone).
  uint64_t PackGroup(FileId id, File& f, uint64_t first, PackFor who = PackFor::kPacker);
  struct PackBuffers;  // One group's pages and payloads.
  unsigned CollectCandidates(File& f, uint64_t first, PackFor who, PackBuffers& buf,
                             uint64_t* old_cost) EXCLUDES(f.index_mu);
  bool SwapCandidates(File& f, const PackBuffers& buf, unsigned k, const PageEntry* fresh)
      EXCLUDES(f.index_mu);
  uint64_t UnpackLastPage(FileId id, File& f, PackBuffers& buf, PackFor who) EXCLUDES(f.index_mu);
  bool RoomForPacking(unsigned pages, bool may_reclaim);
  void PackCold() override;  // Packer::Host.
  Status EvictCluster(uint64_t file, uint64_t first, uint16_t pool,
                      ZbudPool::Handle handle) override;  // PageOwners.
  bool PackInstead(uint64_t file, uint64_t page, const PageEntry& expect) override;
  // Moves every entry of pages [first, first + n) still naming cluster `from` (id from_id)
  // to `to`, which holds the same frame, and sets to's references to their count; what they
  // held goes to old[] (the count is returned) for ReleaseRepointed, after the lock.
  uint32_t RepointCluster(File& f, uint64_t first, uint64_t n, const Cluster* from,
                          uint64_t from_id, Cluster* to, PageEntry* old) REQUIRES(f.index_mu);
  // Drops `to` if nothing was moved to it, and the references old[0, moved) held.
  void ReleaseRepointed(Cluster* to, const PageEntry* old, uint32_t moved);
  // Pages [first, last) changed: the file is due to be packed there, once cold.
  void NoteWrite(File& f, uint64_t first, uint64_t last) REQUIRES(f.index_mu);

  // Accounting.
  // Adds d to the counters and charges the index's change in size.
  void Apply(File& f, const AccountDelta& d) REQUIRES(f.index_mu);
  void AddCounters(File& f, const AccountDelta& d);  // Adds d to the counters (no lock).
  void ChargeIndex(File& f) REQUIRES(f.index_mu);    // index_bytes_ follows f's index.
  // Statistics of old replaced by fresh in one Apply: a counter both touch (compr_data_size
  // when a page moves to overflow unchanged) is not seen to dip in between.
  void AccountSwap(File& f, const PageEntry& old, const PageEntry& fresh) REQUIRES(f.index_mu);
  bool ReservePages(uint64_t n);  // False past capacity.
  void UnreservePages(uint64_t n);
  bool ReserveCapacity(uint64_t bytes);  // False past capacity: pages and metadata.
  // ChargeMetadata's work: metadata_bytes_ takes bytes, capacity too if in_capacity.
  Status Charge(int64_t bytes, bool in_capacity, std::atomic<uint64_t>& counter);
  Status CheckLimits(const StoreLimits& limits) const;  // SetLimits' checks before any change.
  // Hands freed heap and the arena's spare pages back to the system (malloc_trim, madvise)
  // if at least `min_drops` pages or files were dropped since the last trim; one thread at
  // a time, no lock held.
  void TrimHeap(uint64_t min_drops);

  PageStoreOptions options_;
  PageStorage storage_;     // Page memory: pool, raw pages, arena; eviction.
  Reclaimer reclaimer_;     // Watermarks, the reclaim thread, writers' wait for room.
  DecodePool decode_pool_;  // Idle helpers for the parts of large reads.
  Stager stager_;           // The staging budget and the background compressors.
  Packer packer_;           // Packs cold pages into clusters in the background.
  std::atomic<uint64_t> staged_pages_{0};     // Staged pages in indexes (staged_pages).
  std::atomic<uint64_t> clustered_pages_{0};  // Entries naming clusters (clustered_pages).
  std::atomic<bool> closing_{false};          // The destructor runs: packing stops.

  // Waits for the locks of each class below (LockWaits); before the locks, which use them.
  LockProfile shard_profile_{"file shards"};     // FileShard::mu.
  LockProfile stripe_profile_{"write stripes"};  // File::write_mu.
  LockProfile index_profile_{"file index"};      // File::index_mu.

  static constexpr size_t kWriteStripes = 256;  // Mutexes shared by files as write_mu.
  struct alignas(64) WriteStripe {              // One cache line each.
    Mutex mu;
  };
  std::unique_ptr<WriteStripe[]> write_stripes_;  // File::write_mu of every file.
  // The FileId -> File map, in shards by id, so that writers of different files do not
  // bounce one reader-count cache line between cores on every request.
  static constexpr size_t kFileShards = 64;
  struct alignas(64) FileShard {
    mutable SharedMutex mu;  // Lock order 1 (see the top).
    std::unordered_map<FileId, std::shared_ptr<File>> files GUARDED_BY(mu);  // Files with pages.
  };
  FileShard& ShardOf(FileId id) const { return file_shards_[id % kFileShards]; }
  std::unique_ptr<FileShard[]> file_shards_;

  std::atomic<uint64_t> pages_held_{0};       // Non-hole pages (orig_data_size / 4096).
  std::atomic<uint64_t> capacity_used_{0};    // pages_held_ x 4096 + metadata_bytes_.
  std::atomic<uint64_t> capacity_bytes_;      // options_.capacity_bytes until SetLimits.
  std::atomic<uint64_t> metadata_bytes_{0};   // ChargeMetadata's total.
  std::atomic<uint64_t> inode_bytes_{0};      // ChargeInodes' total.
  std::atomic<uint64_t> compr_bytes_{0};      // Compressed payload bytes held.
  std::atomic<uint64_t> same_pages_{0};       // Same-filled pages.
  std::atomic<uint64_t> huge_pages_{0};       // Raw pages in the index (huge_pages).
  std::atomic<uint64_t> index_bytes_{0};      // Heap bytes of all files' page indexes.
  std::atomic<uint64_t> promoting_bytes_{0};  // Room promotions being stored have taken.
  std::atomic<uint64_t> overflow_pages_{0};   // Pages in the overflow store.
  std::atomic<uint64_t> written_back_{0};     // Pages ever written to overflow.
  std::atomic<uint64_t> reclaim_packed_{0};   // Pages ever packed by reclaim (PackInstead).
  std::atomic<uint64_t> dropped_pages_{0};    // Pages and files ever dropped (for trimming).
  std::atomic<uint64_t> trimmed_at_{0};       // dropped_pages_ at the last malloc_trim.
  std::atomic<uint32_t> writeback_stamp_{0};  // Stamps overflow entries (16 bits are kept).
};

inline constexpr uint64_t PageStore::kFileBytes = sizeof(PageStore::File) + 64;

}  // namespace zbudfs

#endif  // ZBUDFS_STORE_PAGE_STORE_H_

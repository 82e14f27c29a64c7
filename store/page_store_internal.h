// Internals shared by page_store.cc (the data path) and page_store_reclaim.cc (reclaim,
// fault-back and the raw-page FIFO): the File record, the owner tag stored before each
// compressed page, and the tuning constants. Not part of the store's API.
//
// Locking: see page_store.h; File's members are guarded as their comments say.
#ifndef ZBUDFS_STORE_PAGE_STORE_INTERNAL_H_
#define ZBUDFS_STORE_PAGE_STORE_INTERNAL_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <shared_mutex>

#include "store/page_codec.h"
#include "store/page_index.h"
#include "store/page_store.h"
#include "store/zbud_pool.h"

namespace zbudfs {
namespace store_internal {

constexpr uint64_t kBatchPages = 256;  // Pages encoded before one index swap (1 MiB).
constexpr uint64_t kDropBatch = 1024;  // Entries a delete takes out of the index at once.

// Every zbud allocation starts with the owner's tag, so that reclaim can find the index
// entry that points at a handle (as zswap keeps its swap entry beside the data).
struct OwnerTag {
  uint64_t file;  // FileId.
  uint64_t page;  // Page number in the file.
};
static_assert(sizeof(OwnerTag) == 16);
static_assert(PageCodec::kMaxCompressed + sizeof(OwnerTag) > ZbudPool::kMaxAllocSize,
              "pages compressing to between 3952 and 3968 bytes are kept raw");
constexpr size_t kMaxZbudPayload = ZbudPool::kMaxAllocSize - sizeof(OwnerTag);
// The largest payload that fits half a zbud page (31 of 63 chunks) and so can pair with any
// buddy of its size: compressing a page below this saves it no memory.
constexpr size_t kPairedPayload =
    (ZbudPool::kNumChunks / 2) * ZbudPool::kChunkSize - sizeof(OwnerTag);
static_assert(kPairedPayload == 1968);

// The tag is written and read through atomic_ref: reclaim may read a tag of a handle that a
// writer has allocated but not yet filled in. It then finds no index entry pointing at the
// handle and leaves it alone; the atomics make that benign race well defined.
inline void StoreTag(void* dst, const OwnerTag& tag) {
  auto* words = static_cast<uint64_t*>(dst);
  std::atomic_ref<uint64_t>(words[0]).store(tag.file, std::memory_order_relaxed);
  std::atomic_ref<uint64_t>(words[1]).store(tag.page, std::memory_order_relaxed);
}
inline OwnerTag LoadTag(void* src) {
  auto* words = static_cast<uint64_t*>(src);
  return {std::atomic_ref<uint64_t>(words[0]).load(std::memory_order_relaxed),
          std::atomic_ref<uint64_t>(words[1]).load(std::memory_order_relaxed)};
}

// PageEntry::flags bits.
constexpr uint8_t kFlagAccessed = 1;  // An overflow page read once since it was written back.

constexpr unsigned kReclaimRetries = 8;     // LRU pages tried per ReclaimPage.
constexpr int kMakeRoomAttempts = 16;       // Reclaim rounds before MakeRoom gives EAGAIN.
constexpr uint64_t kTrimAfterDrops = 4096;  // Pages (+1 per file) dropped before malloc_trim.
constexpr uint64_t kTrimWhenQuiet = 64;     // ... or this many, once drops have stopped.
// A writer that finds memory full of pages reclaim cannot take now (other writers' pages
// not yet published, pages being evicted or freed) sleeps until some are published, at most
// kRoomWait at a time, and tries again for as long as any of that is going on. Only after
// kMaxIdleRoomWaits waits in a row in which nothing at all moved (no page in flight, no
// reclaim running, no page published, memory not falling) does it give ENOSPC: a safety net
// against an accounting bug, not a time limit (a slow overflow disk keeps reclaim running).
constexpr std::chrono::milliseconds kRoomWait{1};
constexpr int kMaxIdleRoomWaits = 1000;
constexpr size_t kMaxPromotePerRead = 256;  // Pages a read may bring back (1 MiB).

}  // namespace store_internal

// One file: its index and the locks around it. Files share write_mu in stripes
// (PageStore::kWriteStripes): a std::mutex is 40 bytes and small files are the common case
// (100,000 small files save 4 MiB). A stripe is never held together with another (every
// mutation is of one file), so sharing adds no lock-order edge; two files of one stripe
// only wait for each other's publication or partial-page writes.
struct PageStore::File {
  explicit File(std::mutex& stripe) : write_mu(stripe) {}
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  std::mutex& write_mu;                   // Serialises mutations of this file (a stripe).
  mutable std::shared_mutex index_mu;     // Guards index; shared for reads.
  PageIndex index;                        // Page number -> entry.
  bool removed = false;                   // Set by Remove (under write_mu): File is dead.
  std::atomic<uint64_t> stored_bytes{0};  // What the pages cost (FileUsage).
  size_t index_bytes = 0;  // index.HeapBytes() as last charged to index_bytes_ (index_mu).
};

}  // namespace zbudfs

#endif  // ZBUDFS_STORE_PAGE_STORE_INTERNAL_H_

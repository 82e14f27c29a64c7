// Internals of PageStore (page_store*.cc): a batch of rewritten pages, a pending promotion
// and the tuning constants of the write and read protocols. Not part of the store's API. Locking:
// see store/page_store.h.
#ifndef ZBUDFS_STORE_PAGE_STORE_INTERNAL_H_
#define ZBUDFS_STORE_PAGE_STORE_INTERNAL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "store/cluster.h"
#include "store/mutex.h"
#include "store/page_index.h"
#include "store/page_store.h"
#include "store/thread_annotations.h"

namespace zbudfs {
namespace store_internal {

constexpr uint64_t kBatchPages = 256;  // Pages encoded before one index swap (1 MiB).
constexpr uint64_t kDropBatch = 1024;  // Entries a delete takes out of the index at once.

// PageEntry::flags bits (PageEntry::kFlagStaged, 2, is the other).
// An overflow page (or a page of a spilled cluster) read once since it was written back.
constexpr uint8_t kFlagAccessed = 1;
static_assert(kFlagAccessed != PageEntry::kFlagStaged);

constexpr uint64_t kTrimAfterDrops = 4096;  // Pages (+1 per file) dropped before malloc_trim.
constexpr uint64_t kTrimWhenQuiet = 64;     // ... or this many, once drops have stopped.
constexpr size_t kMaxPromotePerRead = 256;  // Pages a read may bring back (1 MiB).
// A read of at least kParallelReadMin bytes is decoded in parts of kReadPart bytes, some by
// idle DecodePool helpers; smaller parts would cost more in hand-offs than they save.
constexpr uint64_t kParallelReadMin = 256 * 1024;
constexpr uint64_t kReadPart = 128 * 1024;

// A page of a cluster in the overflow store (store/cluster.h).
inline bool IsSpilled(const PageEntry& e) {
  return e.kind == PageEntry::kCluster && reinterpret_cast<const Cluster*>(e.value)->spilled();
}

}  // namespace store_internal

// Rewriting pages [start, start+count) of a file, at most kBatchPages: pages [0, published)
// of the batch are in the index, [published, done) are encoded but not yet published.
struct PageStore::Batch {
  Batch(uint64_t first, uint64_t n);
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  const uint64_t start;
  const uint64_t count;
  uint64_t published = 0;
  uint64_t done = 0;
  PageEntry* const fresh;                     // The new entries (per thread: see the constructor).
  PageEntry* const old;                       // What they replaced.
  bool touched[store_internal::kBatchPages];  // Page i has a new entry in fresh[i].
  PageCodec::Streak streak;                   // Neighbouring pages compress alike.
  int idle_waits = 0;  // WaitForRoom's rounds with nothing in flight, in a row.
};

// An overflow page, or a spilled cluster, a read found twice: brought back into memory
// after the read.
struct PageStore::Promotion {
  uint64_t page;
  uint64_t loc;  // Of the page; 0 for a cluster.
  uint16_t stamp;
  uint32_t len;                        // Of payload: the page's, or the cluster's frame.
  std::unique_ptr<uint8_t[]> payload;  // What was stored: the page's payload, or the frame.
  const Cluster* cluster = nullptr;    // A spilled cluster: compared, never dereferenced
  uint64_t cluster_id = 0;             // without its file's index_mu; and its id.
  unsigned cluster_pages = 0;          // Its pages.
};

}  // namespace zbudfs

#endif  // ZBUDFS_STORE_PAGE_STORE_INTERNAL_H_

// PageStore's deletes: DropPages, which truncate, punch and Remove share, and Remove. They
// are on the path of unlink and rm -rf, so they cost a batch of index erasures and frees,
// never a scan or a page-by-page lock. Locking: store/page_store.h.
#include <cstdint>
#include <memory>
#include <vector>

#include "store/page_arena.h"
#include "store/page_index.h"
#include "store/page_store.h"
#include "store/page_store_internal.h"

namespace zbudfs {

using store_internal::kDropBatch;

// Erases pages [first, last) of f, freeing their storage, write_mu held. In batches of
// about kDropBatch entries, so that no list of a whole file is built: each batch leaves the
// index in one exclusive section (which charges the smaller index at once), its storage is
// freed with the lock dropped (the arena's madvise coalesced over the whole drop), and only
// then do the statistics lose it, so orig_data_size never falls ahead of the memory by more
// than a batch. Zero runs (fallocate) go whole: they hold no memory.
void PageStore::DropPages(File& f, uint64_t first, uint64_t last, bool keep_reserved) {
  thread_local std::vector<PageEntry> gone;  // One batch; reused.
  PageArena::DeferredFree deferred(storage_.arena());
  for (uint64_t from = first; from < last;) {
    gone.clear();
    AccountDelta delta;
    uint64_t zero_pages = 0;
    {
      WriterLock lock(&f.index_mu);
      // Clusters across either edge of the range keep dead slots: due to be packed again.
      if (from == first) NoteWrite(f, first, last == PageIndex::kNone ? first + 1 : last);
      const uint64_t to = f.index.BatchEnd(from, last, kDropBatch);
      f.index.EraseRange(
          from, to,
          [&](uint64_t, const PageEntry& e) {
            delta.Add(e, -1);
            gone.push_back(e);
          },
          [&](uint64_t a, uint64_t b) { zero_pages += b - a; });
      ChargeIndex(f);
      const uint64_t next = f.index.NextPresent(to);  // Skips the empty stretch, if any.
      from = next >= last ? last : next;
    }
    for (const PageEntry& e : gone) storage_.Free(e);
    delta.same -= static_cast<int64_t>(zero_pages);
    AddCounters(f, delta);
    if (!keep_reserved) UnreservePages(gone.size() + zero_pages);
    dropped_pages_.fetch_add(gone.size() + 1, std::memory_order_relaxed);
  }
}

void PageStore::Remove(FileId id) {
  {
    std::shared_ptr<File> f;
    {
      FileShard& shard = ShardOf(id);
      WriterLock lock(&shard.mu);
      auto it = shard.files.find(id);
      if (it == shard.files.end()) return;
      f = std::move(it->second);
      shard.files.erase(it);
    }
    MutexLock lock(&f->write_mu);
    f->removed = true;
    DropPages(*f, 0, PageIndex::kNone);
  }
  // The file's index is freed now: after a big file, or many, give the heap back at once
  // (the background thread does it too, but only once drops have stopped).
  TrimHeap(store_internal::kTrimAfterDrops);
}

}  // namespace zbudfs

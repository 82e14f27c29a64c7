// PageStore's side of reclaim: eviction's access to the page indexes (PageOwners: Holds,
// CopyIfHolds, RepointIfHolds; EvictCluster and PackInstead are with the clusters in
// page_store_pack.cc) and the Reclaimer::Host interface (memory in use, heap trimming).
// Locking: store/page_store.h.
#include <malloc.h>

#include "store/page_arena.h"
#include "store/page_store.h"
#include "store/page_store_internal.h"

namespace zbudfs {

namespace {

// A staged page at the address of an old raw page (the arena reuses pages) is not that page:
// eviction must not take it raw, its compressor will.
bool Matches(const PageEntry* e, const PageEntry& expect) {
  return e != nullptr && e->kind == expect.kind && e->value == expect.value &&
         e->staged() == expect.staged();
}

}  // namespace

// ---- Eviction's access to the indexes (PageOwners) --------------------------------------------

bool PageStore::Holds(uint64_t file, uint64_t page, const PageEntry& expect) {
  std::shared_ptr<File> f = FindFile(file);
  if (!f) return false;
  ReaderLock lock(&f->index_mu);
  return Matches(f->index.Find(page), expect);
}

bool PageStore::CopyIfHolds(uint64_t file, uint64_t page, const PageEntry& expect, uint8_t* payload,
                            uint32_t* length) {
  std::shared_ptr<File> f = FindFile(file);
  if (!f) return false;
  ReaderLock lock(&f->index_mu);
  const PageEntry* e = f->index.Find(page);
  if (!Matches(e, expect)) return false;
  *length = storage_.CopyPayload(*e, payload);
  return true;
}

// The one place an entry is repointed to the overflow store.
bool PageStore::RepointIfHolds(uint64_t file, uint64_t page, const PageEntry& expect,
                               const uint8_t* payload, const PageEntry& to) {
  std::shared_ptr<File> f = FindFile(file);
  if (!f) return false;
  WriterLock lock(&f->index_mu);
  PageEntry* e = f->index.FindMutable(page);
  if (!Matches(e, expect) || !storage_.StillHolds(*e, payload)) return false;
  const PageEntry old = *e;
  *e = to;
  e->flags = 0;
  e->stamp = static_cast<uint16_t>(writeback_stamp_.fetch_add(1, std::memory_order_relaxed));
  AccountSwap(*f, old, *e);
  written_back_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

// ---- Memory and reclaim (Reclaimer::Host) -------------------------------------------------------

uint64_t PageStore::MemUsed() const {
  return storage_.MemBytes() + index_bytes_.load(std::memory_order_relaxed) +
         metadata_bytes_.load(std::memory_order_relaxed) +
         inode_bytes_.load(std::memory_order_relaxed);
}

Status PageStore::ReclaimTo(uint64_t target) { return reclaimer_.ReclaimTo(target); }

uint64_t PageStore::DroppedPages() const { return dropped_pages_.load(std::memory_order_relaxed); }

// The arena gives back its spare pages and unmaps its wholly free regions first (a no-op
// unless a region's worth was freed), so that the free list it shrinks is part of what
// malloc_trim gives back.
void PageStore::TrimQuietHeap() {
  storage_.arena()->FlushSpare();
  storage_.arena()->Trim();
  TrimHeap(store_internal::kTrimWhenQuiet);
}

void PageStore::TrimHeap(uint64_t min_drops) {
  const uint64_t dropped = dropped_pages_.load(std::memory_order_relaxed);
  uint64_t at = trimmed_at_.load(std::memory_order_relaxed);
  if (dropped - at < min_drops) return;
  if (!trimmed_at_.compare_exchange_strong(at, dropped, std::memory_order_relaxed)) return;
  storage_.arena()->FlushSpare();
  malloc_trim(0);  // Another thread's trim may still run: harmless, glibc locks each arena.
}

}  // namespace zbudfs

// Reclaim, fault-back and the raw-page FIFO of PageStore (the data path is page_store.cc).
//
// Lock order (page_store.h): files_mu_ -> File::index_mu -> ZbudPool::mu_ -> PageArena::mu_,
// OverflowStore::mu_, raw_mu_; bg_mu_ only around the reclaimer's sleep. The overflow
// store's pwrite runs with no lock held; the evict callback re-checks the index entry
// under the exclusive index lock before it changes anything.
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <memory>
#include <thread>

#include "store/overflow_store.h"
#include "store/page_arena.h"
#include "store/page_store.h"
#include "store/page_store_internal.h"

namespace zbudfs {

using store_internal::kMakeRoomAttempts;
using store_internal::kMaxIdleRoomWaits;
using store_internal::kReclaimRetries;
using store_internal::kRoomWait;
using store_internal::kTrimWhenQuiet;
using store_internal::LoadTag;
using store_internal::OwnerTag;
using store_internal::StoreTag;

namespace {
thread_local Status t_evict_error;  // Why this thread's last eviction failed.
}  // namespace

// Records raw pages for their eviction path once they are in the index (a record of an
// unpublished page would be dropped as stale by EvictRaw and the page never evicted).
void PageStore::RecordRawPages(FileId file, uint64_t first, const PageEntry* entries,
                               const bool* touched, uint64_t n) {
  if (!options_.overflow) return;
  // Most batches hold no raw page: then raw_mu_, shared by all writers, is not taken.
  bool any = false;
  for (uint64_t i = 0; i < n && !any; ++i) any = touched[i] && entries[i].kind == PageEntry::kRaw;
  if (!any) return;
  bool compact;
  {
    std::lock_guard<std::mutex> lock(raw_mu_);
    for (uint64_t i = 0; i < n; ++i) {
      if (touched[i] && entries[i].kind == PageEntry::kRaw) {
        raw_fifo_.push_back(RawRecord{file, first + i, entries[i].value});
      }
    }
    compact = raw_fifo_.size() > 2 * huge_pages_.load(std::memory_order_relaxed) + 4096;
  }
  if (compact) CompactRawFifo();
}

Status PageStore::ReadOverflow(const PageEntry& e, uint8_t* payload) const {
  faulted_.fetch_add(1, std::memory_order_relaxed);
  Status st = options_.overflow->Read(e.value, payload, e.length);
  if (st.ok()) return st;
  const StoreErrorKind kind =
      st.code() == EBADMSG ? StoreErrorKind::kCheckFailed : StoreErrorKind::kOverflowIo;
  return Report(kind, Status::Error(EIO, st.message()));  // EBADMSG is EIO to callers.
}

Status PageStore::Report(StoreErrorKind kind, Status st) const {
  if (options_.report_error) options_.report_error(kind, st.message());
  return st;
}

// True if the overflow slot at loc holds exactly payload[0..len).
bool PageStore::SlotHolds(uint64_t loc, const uint8_t* payload, uint32_t len) const {
  uint8_t current[kPageSize];
  return options_.overflow->Read(loc, current, len).ok() && std::memcmp(current, payload, len) == 0;
}

// Brings an overflow page (payload: its stored bytes) back into memory, if its entry still
// points at loc. Best effort: on any failure the page simply stays in the overflow store.
void PageStore::Promote(FileId id, uint64_t page, uint64_t loc, uint16_t stamp,
                        const uint8_t* payload, uint32_t len) {
  std::shared_ptr<File> f = FindFile(id);
  if (!f) return;
  PageEntry fresh;
  if (len == kPageSize) {
    void* raw = arena_->AllocPage();
    if (raw == nullptr) return;
    raw_mem_pages_.fetch_add(1, std::memory_order_relaxed);
    std::memcpy(raw, payload, kPageSize);
    fresh.kind = PageEntry::kRaw;
    fresh.value = reinterpret_cast<uint64_t>(raw);
  } else {
    StatusOr<ZbudPool::Handle> h = pool_->Alloc(sizeof(OwnerTag) + len);
    if (!h.ok()) return;
    auto* dst = static_cast<uint8_t*>(pool_->Map(*h));
    StoreTag(dst, OwnerTag{id, page});
    std::memcpy(dst + sizeof(OwnerTag), payload, len);
    pool_->Unmap(*h);
    fresh.kind = PageEntry::kZbud;
    fresh.value = *h;
    fresh.length = len;
  }
  PageEntry old;
  {
    std::unique_lock<std::shared_mutex> lock(f->index_mu);
    PageEntry* e = f->index.FindMutable(page);
    // loc alone is not enough: the page may have been overwritten and written back again
    // into the same (reused, LIFO) slot since we read it. The stamp tells the two apart
    // unless it wrapped (16 bits), so the slot's bytes are compared too: one pread under
    // this file's lock, on a path taken once per promoted page.
    if (e != nullptr && e->kind == PageEntry::kOverflow && e->value == loc && e->stamp == stamp &&
        e->length == len && SlotHolds(loc, payload, len)) {
      old = *e;
      *e = fresh;
      AccountSwap(*f, old, fresh);
    }
  }
  if (!old.present()) {
    FreeEntry(fresh);  // Changed meanwhile: the page is someone else's business now.
    return;
  }
  FreeEntry(old);
  if (fresh.kind == PageEntry::kRaw) {
    std::lock_guard<std::mutex> lock(raw_mu_);
    raw_fifo_.push_back(RawRecord{id, page, fresh.value});
  }
}

// ---- Reclaim ------------------------------------------------------------------------------------

Status PageStore::MakeRoom() {
  if (options_.mem_limit == 0) return Status::OK();
  const uint64_t used = MemUsed();
  if (reclaimer_.joinable() && used + kPageSize > high_wm_) bg_cv_.notify_one();
  if (used + kPageSize <= options_.mem_limit) return Status::OK();
  if (!options_.overflow) return Status::Error(ENOSPC, "mem_limit reached (no overflow)");
  // When no page is left in memory, what fills mem_limit is the page indexes (and metadata),
  // which overflow pages need too: the page may still pass through memory on its way to the
  // overflow directory (one page per writing thread, as always); the next MakeRoom evicts it.
  Status st = Reclaim(options_.mem_limit - kPageSize, /*enough_when_no_pages=*/true);
  if (st.ok() || st.code() == EAGAIN) return st;  // EAGAIN: only unpublished pages left.
  return Status::Error(st.code() == EIO ? EIO : ENOSPC, st.message());
}

Status PageStore::ReclaimTo(uint64_t target) {
  return Reclaim(target, /*enough_when_no_pages=*/false);
}

Status PageStore::Reclaim(uint64_t target, bool enough_when_no_pages) {
  int failures = 0;
  while (MemUsed() > target) {
    // Only the page indexes (and metadata) left, charged to memory and never evictable: no
    // page to move, so the caller gets ENOSPC (or OK) at once rather than retrying.
    if (pool_->PoolPages() == 0 && raw_mem_pages_.load(std::memory_order_relaxed) == 0) {
      if (enough_when_no_pages) return Status::OK();
      return Status::Error(ENOSPC, "page indexes alone exceed the memory target");
    }
    Status st = ReclaimOne();
    if (st.ok()) {
      failures = 0;
      continue;
    }
    if (st.code() != EAGAIN || ++failures >= kMakeRoomAttempts) return st;
    std::this_thread::yield();  // Pages were in flight; let their owners finish.
  }
  return Status::OK();
}

// The pages are in an index now (or freed): they no longer hold memory reclaim cannot take.
// Wakes the writers waiting for room, if any (room_waiters_ is read after room_events_ is
// bumped, and WaitForRoom counts itself in before it reads room_events_: one of the two
// sides sees the other).
void PageStore::EndInFlight(const PageEntry* entries, const bool* touched, uint64_t n) {
  uint64_t pages = 0;
  for (uint64_t i = 0; i < n; ++i) {
    pages +=
        touched[i] && (entries[i].kind == PageEntry::kZbud || entries[i].kind == PageEntry::kRaw);
  }
  if (pages == 0) return;
  unpublished_.fetch_sub(pages, std::memory_order_relaxed);
  room_events_.fetch_add(1, std::memory_order_seq_cst);
  if (room_waiters_.load(std::memory_order_seq_cst) == 0) return;
  { std::lock_guard<std::mutex> lock(room_mu_); }  // A waiter is asleep or past its check.
  room_cv_.notify_all();
}

// Why a wait for room always ends: memory that reclaim could not take is in pages encoded
// but unpublished (their writers publish them before they wait themselves, and wait for
// nothing while they hold them), in evictions (which end), or in pages being freed. While
// any of that is seen, or memory falls, the round does not count; the writer retries
// MakeRoom, which evicts what was published. ENOSPC from here means the accounting is wrong.
Status PageStore::WaitForRoom(int* idle_waits) {
  const uint64_t used = MemUsed();
  const bool in_flight = unpublished_.load(std::memory_order_relaxed) > 0 ||
                         reclaiming_.load(std::memory_order_relaxed) > 0;
  const uint64_t events = room_events_.load(std::memory_order_relaxed);
  bool woken;
  {
    std::unique_lock<std::mutex> lock(room_mu_);
    room_waiters_.fetch_add(1, std::memory_order_seq_cst);
    woken = room_cv_.wait_for(
        lock, kRoomWait, [&] { return room_events_.load(std::memory_order_seq_cst) != events; });
    room_waiters_.fetch_sub(1, std::memory_order_relaxed);
  }
  if (in_flight || woken || MemUsed() < used) {
    *idle_waits = 0;
    return Status::OK();
  }
  if (++*idle_waits < kMaxIdleRoomWaits) return Status::OK();
  return Status::Error(ENOSPC, "mem_limit reached and nothing in flight can be reclaimed");
}

// Which memory goes first: raw pages when they are the larger part of memory, zbud pages
// (the pool's LRU tail) otherwise; each falls back to the other when it has nothing.
Status PageStore::ReclaimOne() {
  if (!options_.overflow) return Status::Error(ENOSPC, "no overflow store");
  struct Counted {  // Writers waiting for room see an eviction in flight.
    std::atomic<uint64_t>& n;
    explicit Counted(std::atomic<uint64_t>& c) : n(c) { n.fetch_add(1, std::memory_order_relaxed); }
    ~Counted() { n.fetch_sub(1, std::memory_order_relaxed); }
  } counted(reclaiming_);
  const bool raw_first = raw_mem_pages_.load(std::memory_order_relaxed) > pool_->PoolPages();
  if (raw_first) {
    Status st = EvictRaw();
    if (st.code() != EAGAIN) return st;
  }
  t_evict_error = Status::OK();
  Status st = pool_->ReclaimPage(kReclaimRetries);
  if (st.ok()) return st;
  if (!t_evict_error.ok()) return t_evict_error;  // The overflow store failed (ENOSPC/EIO).
  if (!raw_first) {
    Status raw = EvictRaw();
    if (raw.code() != EAGAIN) return raw;
  }
  return Status::Error(EAGAIN, "nothing to reclaim now");
}

Status PageStore::EvictZbud(uint64_t handle) {
  const OwnerTag tag = LoadTag(pool_->Map(handle));
  std::shared_ptr<File> f = FindFile(tag.file);
  if (!f) return Status::OK();  // Freed with its file, or not yet published: not ours to move.
  uint8_t payload[kPageSize];
  uint32_t len;
  {
    std::shared_lock<std::shared_mutex> lock(f->index_mu);
    const PageEntry* e = f->index.Find(tag.page);
    if (e == nullptr || e->kind != PageEntry::kZbud || e->value != handle) return Status::OK();
    len = e->length;
    std::memcpy(payload, static_cast<uint8_t*>(pool_->Map(handle)) + sizeof(OwnerTag), len);
    pool_->Unmap(handle);
  }
  StatusOr<uint64_t> loc = options_.overflow->Write(payload, len);  // I/O: no lock held.
  if (!loc.ok()) {
    if (loc.status().code() == EIO) Report(StoreErrorKind::kOverflowIo, loc.status());
    t_evict_error = loc.status();
    return loc.status();
  }
  {
    std::unique_lock<std::shared_mutex> lock(f->index_mu);
    PageEntry* e = f->index.FindMutable(tag.page);
    if (e != nullptr && e->kind == PageEntry::kZbud && e->value == handle) {
      const PageEntry old = *e;
      e->kind = PageEntry::kOverflow;
      e->value = *loc;
      e->flags = 0;
      e->stamp = static_cast<uint16_t>(writeback_stamp_.fetch_add(1, std::memory_order_relaxed));
      AccountSwap(*f, old, *e);
      written_back_.fetch_add(1, std::memory_order_relaxed);
      pool_->Free(handle);
      return Status::OK();
    }
  }
  options_.overflow->Free(*loc, len);  // Overwritten or dropped meanwhile.
  return Status::OK();
}

Status PageStore::EvictRaw() {
  RawRecord r;
  {
    std::lock_guard<std::mutex> lock(raw_mu_);
    if (raw_fifo_.empty()) return Status::Error(EAGAIN, "no raw pages");
    r = raw_fifo_.front();
    raw_fifo_.pop_front();
  }
  std::shared_ptr<File> f = FindFile(r.file);
  if (!f) return Status::OK();  // Stale record.
  uint8_t data[kPageSize];
  {
    std::shared_lock<std::shared_mutex> lock(f->index_mu);
    const PageEntry* e = f->index.Find(r.page);
    if (e == nullptr || e->kind != PageEntry::kRaw || e->value != r.addr) return Status::OK();
    std::memcpy(data, reinterpret_cast<const void*>(r.addr), kPageSize);
  }
  StatusOr<uint64_t> loc = options_.overflow->Write(data, kPageSize);
  if (!loc.ok()) {
    if (loc.status().code() == EIO) Report(StoreErrorKind::kOverflowIo, loc.status());
    std::lock_guard<std::mutex> lock(raw_mu_);
    raw_fifo_.push_front(r);
    return loc.status();
  }
  {
    std::unique_lock<std::shared_mutex> lock(f->index_mu);
    PageEntry* e = f->index.FindMutable(r.page);
    // The address alone is not enough: the page may have been overwritten twice meanwhile
    // and got its old address back from the arena (LIFO); then it holds newer data.
    if (e != nullptr && e->kind == PageEntry::kRaw && e->value == r.addr &&
        std::memcmp(data, reinterpret_cast<const void*>(r.addr), kPageSize) == 0) {
      const PageEntry old = *e;
      e->kind = PageEntry::kOverflow;
      e->value = *loc;
      e->length = kPageSize;
      e->flags = 0;
      e->stamp = static_cast<uint16_t>(writeback_stamp_.fetch_add(1, std::memory_order_relaxed));
      AccountSwap(*f, old, *e);
      written_back_.fetch_add(1, std::memory_order_relaxed);
      lock.unlock();
      FreeEntry(old);
      return Status::OK();
    }
  }
  options_.overflow->Free(*loc, kPageSize);
  return Status::OK();
}

void PageStore::CompactRawFifo() {
  std::deque<RawRecord> old;
  {
    std::lock_guard<std::mutex> lock(raw_mu_);
    old.swap(raw_fifo_);
  }
  std::deque<RawRecord> live;
  for (const RawRecord& r : old) {
    std::shared_ptr<File> f = FindFile(r.file);
    if (!f) continue;
    std::shared_lock<std::shared_mutex> lock(f->index_mu);
    const PageEntry* e = f->index.Find(r.page);
    if (e != nullptr && e->kind == PageEntry::kRaw && e->value == r.addr) live.push_back(r);
  }
  std::lock_guard<std::mutex> lock(raw_mu_);
  raw_fifo_.insert(raw_fifo_.begin(), live.begin(), live.end());  // Older than any new ones.
}

void PageStore::TrimHeap(uint64_t min_drops) {
  const uint64_t dropped = dropped_pages_.load(std::memory_order_relaxed);
  uint64_t at = trimmed_at_.load(std::memory_order_relaxed);
  if (dropped - at < min_drops) return;
  if (!trimmed_at_.compare_exchange_strong(at, dropped, std::memory_order_relaxed)) return;
  malloc_trim(0);  // Another thread's trim may still run: harmless, glibc locks each arena.
}

void PageStore::ReclaimerLoop() {
  uint64_t last_seen = dropped_pages_.load(std::memory_order_relaxed);
  std::unique_lock<std::mutex> lock(bg_mu_);
  while (!bg_stop_) {
    bg_cv_.wait_for(lock, std::chrono::milliseconds(100),
                    [this] { return bg_stop_ || MemUsed() > high_wm_; });
    if (bg_stop_) break;
    // Once files or pages have stopped being dropped (none in the last 100 ms), give the
    // freed heap (index chunks, and the daemon's inodes freed with them) back to the
    // system: glibc keeps it otherwise, and RSS would stay high after `rm -rf`. The arena
    // unmaps its wholly free regions first (a no-op unless a region's worth was freed), so
    // that the free list it shrinks is part of what malloc_trim gives back.
    const uint64_t dropped = dropped_pages_.load(std::memory_order_relaxed);
    if (dropped == last_seen) {
      lock.unlock();
      arena_->Trim();
      TrimHeap(kTrimWhenQuiet);
      lock.lock();
    }
    last_seen = dropped;
    if (MemUsed() <= high_wm_) continue;
    lock.unlock();
    Status st = ReclaimTo(low_wm_);
    lock.lock();
    if (!st.ok()) {
      // The overflow store is full or failing: writers will see ENOSPC/EIO; back off.
      bg_cv_.wait_for(lock, std::chrono::milliseconds(200), [this] { return bg_stop_; });
    }
  }
}

}  // namespace zbudfs

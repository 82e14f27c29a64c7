#include "store/reclaimer.h"

#include <chrono>

#include "store/page_size.h"
#include "store/page_storage.h"

namespace zbudfs {

namespace {

constexpr int kMakeRoomAttempts = 16;  // Eviction rounds before Reclaim gives EAGAIN.
// A writer that finds memory full of pages reclaim cannot take now (other writers' pages
// not yet published, pages being evicted or freed) sleeps until some are published, at most
// kRoomWait at a time, and tries again for as long as any of that is going on. Only after
// kMaxIdleRoomWaits waits in a row in which nothing at all moved (no page in flight, no
// reclaim running, no page published, memory not falling) does it give ENOSPC: a safety net
// against an accounting bug, not a time limit (a slow overflow disk keeps reclaim running).
constexpr std::chrono::milliseconds kRoomWait{1};
constexpr int kMaxIdleRoomWaits = 1000;
constexpr std::chrono::milliseconds kIdleSleep{100};     // The thread's sleep between checks.
constexpr std::chrono::milliseconds kFailureSleep{200};  // Its back-off after a failure.

}  // namespace

Reclaimer::Reclaimer(const Options& options, PageStorage* storage, Host* host)
    : options_(options), storage_(storage), host_(host) {
  SetMemLimit(options.mem_limit);
}

void Reclaimer::SetMemLimit(uint64_t limit) {
  // The watermarks first: a writer that sees the new limit never meets stale marks above it.
  high_wm_.store(limit - limit / 20, std::memory_order_relaxed);
  low_wm_.store(limit - limit / 10, std::memory_order_relaxed);
  mem_limit_.store(limit, std::memory_order_relaxed);
  if (thread_.joinable()) bg_cv_.Signal();  // Above the new marks: start now.
}

Reclaimer::~Reclaimer() { Stop(); }

void Reclaimer::Start() {
  if (mem_limit() != 0 && options_.overflow && options_.background) {
    thread_ = std::thread([this] { Loop(); });
  }
}

void Reclaimer::Stop() {
  if (!thread_.joinable()) return;
  {
    MutexLock lock(&bg_mu_);
    bg_stop_ = true;
  }
  bg_cv_.SignalAll();
  thread_.join();
}

Status Reclaimer::MakeRoom() {
  const uint64_t limit = mem_limit();
  if (limit == 0) return Status::OK();
  const uint64_t used = host_->MemUsed();
  if (thread_.joinable() && used + kPageSize > high_wm_.load(std::memory_order_relaxed)) {
    bg_cv_.Signal();
  }
  if (used + kPageSize <= limit) return Status::OK();
  if (!options_.overflow) return Status::Error(ENOSPC, "mem_limit reached (no overflow)");
  // When no page is left in memory, what fills mem_limit is the page indexes (and metadata),
  // which overflow pages need too: the page may still pass through memory on its way to the
  // overflow directory (one page per writing thread, as always); the next MakeRoom evicts it.
  Status st = Reclaim(limit - kPageSize, /*enough_when_no_pages=*/true);
  if (st.ok() || st.code() == EAGAIN) return st;  // EAGAIN: only unpublished pages left.
  return Status::Error(st.code() == EIO ? EIO : ENOSPC, st.message());
}

Status Reclaimer::ReclaimTo(uint64_t target) {
  return Reclaim(target, /*enough_when_no_pages=*/false);
}

Status Reclaimer::Reclaim(uint64_t target, bool enough_when_no_pages, bool pack_first) {
  int failures = 0;
  while (host_->MemUsed() > target) {
    // Only the page indexes (and metadata) left, charged to memory and never evictable: no
    // page to move, so the caller gets ENOSPC (or OK) at once rather than retrying.
    if (!storage_->HasPages()) {
      if (enough_when_no_pages) return Status::OK();
      return Status::Error(ENOSPC, "page indexes alone exceed the memory target");
    }
    Status st = ReclaimOne(pack_first);
    if (st.ok()) {
      failures = 0;
      continue;
    }
    if (st.code() != EAGAIN || ++failures >= kMakeRoomAttempts) return st;
    std::this_thread::yield();  // Pages were in flight; let their owners finish.
  }
  return Status::OK();
}

Status Reclaimer::ReclaimOne(bool pack_first) {
  if (!options_.overflow) return Status::Error(ENOSPC, "no overflow store");
  reclaiming_.fetch_add(1, std::memory_order_relaxed);  // Waiting writers see it in flight.
  Status st = storage_->EvictColdest(pack_first);
  reclaiming_.fetch_sub(1, std::memory_order_relaxed);
  return st;
}

// room_waiters_ is read after room_events_ is bumped, and WaitForRoom counts itself in
// before it reads room_events_: one of the two sides sees the other.
void Reclaimer::EndInFlight(uint64_t pages) {
  if (pages == 0) return;
  unpublished_.fetch_sub(pages, std::memory_order_relaxed);
  room_events_.fetch_add(1, std::memory_order_seq_cst);
  if (room_waiters_.load(std::memory_order_seq_cst) == 0) return;
  { MutexLock lock(&room_mu_); }  // A waiter is asleep or past its check.
  room_cv_.SignalAll();
}

// Why a wait for room always ends: memory that reclaim could not take is in pages encoded
// but unpublished (their writers publish them before they wait themselves, and wait for
// nothing while they hold them), in evictions (which end), or in pages being freed. While
// any of that is seen, or memory falls, the round does not count; the writer retries
// MakeRoom, which evicts what was published. ENOSPC from here means the accounting is wrong.
Status Reclaimer::WaitForRoom(int* idle_waits) {
  const uint64_t used = host_->MemUsed();
  const bool in_flight = unpublished_.load(std::memory_order_relaxed) > 0 ||
                         reclaiming_.load(std::memory_order_relaxed) > 0;
  const uint64_t events = room_events_.load(std::memory_order_relaxed);
  const auto deadline = std::chrono::steady_clock::now() + kRoomWait;
  bool woken;
  {
    MutexLock lock(&room_mu_);
    room_waiters_.fetch_add(1, std::memory_order_seq_cst);
    for (;;) {
      woken = room_events_.load(std::memory_order_seq_cst) != events;
      const auto now = std::chrono::steady_clock::now();
      if (woken || now >= deadline) break;
      room_cv_.WaitFor(&room_mu_, deadline - now);
    }
    room_waiters_.fetch_sub(1, std::memory_order_relaxed);
  }
  if (in_flight || woken || host_->MemUsed() < used) {
    *idle_waits = 0;
    return Status::OK();
  }
  if (++*idle_waits < kMaxIdleRoomWaits) return Status::OK();
  return Status::Error(ENOSPC, "mem_limit reached and nothing in flight can be reclaimed");
}

void Reclaimer::SleepUntilNeeded() {
  const auto deadline = std::chrono::steady_clock::now() + kIdleSleep;
  while (!bg_stop_ && host_->MemUsed() <= high_wm_.load(std::memory_order_relaxed)) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return;
    bg_cv_.WaitFor(&bg_mu_, deadline - now);
  }
}

void Reclaimer::Loop() {
  uint64_t last_seen = host_->DroppedPages();
  MutexLock lock(&bg_mu_);
  while (!bg_stop_) {
    SleepUntilNeeded();
    if (bg_stop_) break;
    // Once files or pages have stopped being dropped (none in the last 100 ms), give the
    // freed heap back to the system: glibc keeps it otherwise, and RSS would stay high after
    // `rm -rf`.
    const uint64_t dropped = host_->DroppedPages();
    if (dropped == last_seen) {
      lock.Unlock();
      host_->TrimQuietHeap();
      lock.Lock();
    }
    last_seen = dropped;
    if (host_->MemUsed() <= high_wm_.load(std::memory_order_relaxed)) continue;
    lock.Unlock();
    // Writers that find no room write pages out themselves; this thread, off the request
    // path, first packs the pages it takes with their neighbours when that saves memory.
    Status st = Reclaim(low_wm_.load(std::memory_order_relaxed), /*enough_when_no_pages=*/false,
                        /*pack_first=*/true);
    lock.Lock();
    if (st.ok()) continue;
    // The overflow store is full or failing: writers will see ENOSPC/EIO; back off.
    const auto deadline = std::chrono::steady_clock::now() + kFailureSleep;
    for (auto now = std::chrono::steady_clock::now(); !bg_stop_ && now < deadline;
         now = std::chrono::steady_clock::now()) {
      bg_cv_.WaitFor(&bg_mu_, deadline - now);
    }
  }
}

}  // namespace zbudfs

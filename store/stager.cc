#include "store/stager.h"

#include <algorithm>
#include <chrono>

namespace zbudfs {

namespace {

// Records a compressor takes per visit to the queue: fewer lock round trips, and neighbouring
// pages of a file (which compress alike, PageCodec::Streak) stay on one thread.
constexpr size_t kTakeAtOnce = 16;
// A compressor woken from an empty queue for fewer than kTakeAtOnce records waits this long
// for more: random 4 KiB writes would otherwise cost a wakeup (two context switches) each,
// which on a busy machine costs more than the compression it moves off the request path.
// It never lingers after a batch: what is left then is a backlog writers may be waiting on.
constexpr std::chrono::microseconds kLinger{500};

}  // namespace

Stager::Stager(uint64_t max_pages, unsigned threads, Host* host)
    : max_pages_(threads == 0 ? 0 : max_pages), thread_count_(threads), host_(host) {}

Stager::~Stager() { Stop(); }

void Stager::Start() {
  if (max_pages_ == 0) return;
  threads_.reserve(thread_count_);
  for (unsigned i = 0; i < thread_count_; ++i) threads_.emplace_back([this] { Loop(); });
}

void Stager::Stop() {
  std::deque<Record> left;
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  work_cv_.SignalAll();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  {
    MutexLock lock(&mu_);
    left.swap(queue_);
  }
  for (const Record& r : left) host_->DropStaged(r);
  Release(left.size());
}

bool Stager::TryReserve() {
  uint64_t now = staged_.load(std::memory_order_relaxed);
  do {
    if (now >= max_pages_) return false;
  } while (!staged_.compare_exchange_weak(now, now + 1, std::memory_order_relaxed));
  return true;
}

void Stager::Enqueue(const Record* records, size_t n) {
  if (n == 0) return;
  size_t before, after;
  {
    MutexLock lock(&mu_);
    before = queue_.size();
    queue_.insert(queue_.end(), records, records + n);
    after = queue_.size();
  }
  // Wake one compressor when the queue stops being empty (it lingers for more), and one per
  // kTakeAtOnce records past that: a lone page does not wake them all.
  const size_t wake = (before == 0) + (after / kTakeAtOnce - before / kTakeAtOnce);
  for (size_t i = 0; i < std::min<size_t>(wake, thread_count_); ++i) work_cv_.Signal();
}

void Stager::WaitIdle() {
  MutexLock lock(&mu_);
  ++idle_waiters_;  // Lingering compressors take what there is at once.
  work_cv_.SignalAll();
  while (!stop_ && (!queue_.empty() || busy_ != 0)) idle_cv_.Wait(&mu_);
  --idle_waiters_;
}

void Stager::Loop() {
  Record batch[kTakeAtOnce];
  MutexLock lock(&mu_);
  for (;;) {
    bool woken = false;
    while (!stop_ && queue_.empty()) {
      work_cv_.Wait(&mu_);
      woken = true;
    }
    const auto linger_end = std::chrono::steady_clock::now() + kLinger;
    while (woken && !stop_ && queue_.size() < kTakeAtOnce && idle_waiters_ == 0) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= linger_end) break;
      work_cv_.WaitFor(&mu_, linger_end - now);
    }
    if (stop_) break;
    const size_t n = std::min(kTakeAtOnce, queue_.size());
    std::copy_n(queue_.begin(), n, batch);
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    // More left than this thread takes: another sleeping compressor may help.
    if (!queue_.empty()) work_cv_.Signal();
    ++busy_;
    lock.Unlock();
    host_->CompressStaged(batch, n);
    Release(n);
    lock.Lock();
    --busy_;
    if (queue_.empty() && busy_ == 0) idle_cv_.SignalAll();
  }
  idle_cv_.SignalAll();
}

}  // namespace zbudfs

#include "store/decode_pool.h"

#include <algorithm>

namespace zbudfs {

DecodePool::DecodePool(unsigned threads) {
  threads_.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { HelperLoop(); });
}

DecodePool::~DecodePool() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  work_cv_.SignalAll();
  for (std::thread& t : threads_) t.join();
}

void DecodePool::Work(Job* job) {
  for (size_t i = job->next.fetch_add(1, std::memory_order_relaxed); i < job->n;
       i = job->next.fetch_add(1, std::memory_order_relaxed)) {
    (*job->fn)(i);
  }
}

void DecodePool::Run(size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  Job job;
  job.fn = &fn;
  job.n = n;
  bool queued = false;
  if (n > 1 && !threads_.empty()) {
    MutexLock lock(&mu_);
    const unsigned wake = std::min<size_t>(idle_, n - 1);
    if (wake > 0) {
      queue_.push_back(&job);
      queued = true;
      for (unsigned i = 0; i < wake; ++i) work_cv_.Signal();
    }
  }
  Work(&job);
  if (!queued) return;
  // Every part is claimed: once the job is out of the queue no helper can attach, and those
  // attached finish the parts they claimed (their next claim fails) before they detach.
  MutexLock lock(&mu_);
  Unqueue(&job);
  while (job.attached > 0) done_cv_.Wait(&mu_);
}

void DecodePool::Unqueue(Job* job) {
  auto it = std::find(queue_.begin(), queue_.end(), job);
  if (it != queue_.end()) queue_.erase(it);
}

void DecodePool::HelperLoop() {
  MutexLock lock(&mu_);
  while (true) {
    while (!stop_ && queue_.empty()) {
      ++idle_;
      work_cv_.Wait(&mu_);
      --idle_;
    }
    if (stop_) return;
    Job* job = queue_.front();
    ++job->attached;
    lock.Unlock();
    Work(job);
    lock.Lock();
    Unqueue(job);  // Work returned, so every part is claimed: no one else need look at it.
    if (--job->attached == 0) done_cv_.SignalAll();
  }
}

}  // namespace zbudfs

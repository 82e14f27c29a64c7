// mmap, munmap and madvise run with mu_ released; the store's lock order is in
// store/page_store.h. Pages go back to the kernel in batches: process_madvise() with one
// TLB shootdown per batch where the kernel has it (DontNeed).
#include "store/page_arena.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>

namespace zbudfs {

namespace {
// The pages freed under this thread's DeferredFree, and the arena they belong to.
struct PendingFrees {
  PageArena* arena = nullptr;
  std::vector<void*> pages;
};
thread_local PendingFrees t_pending;

// MADV_DONTNEED over runs: process_madvise() takes up to kMaxRuns of them in one call, with one
// TLB shootdown for all (kernels since 6.16 batch it), where each madvise() call sends its
// own to every CPU the daemon ran on, and a freed zbud page is rarely next to another. The
// pidfd is opened per call (a batch is hundreds of pages; no descriptor to carry across the
// daemon's fork). Falls back to one madvise() per run where process_madvise cannot do it
// (kernels before 6.13 refuse MADV_DONTNEED there; seccomp).
void DontNeed(const std::vector<iovec>& runs) {
  static std::atomic<bool> batched{true};
  constexpr size_t kMaxRuns = 1024;  // UIO_MAXIOV.
  size_t done = 0;
  if (batched.load(std::memory_order_relaxed) && runs.size() > 1) {
    const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
    while (pidfd >= 0 && done < runs.size()) {
      const size_t n = std::min(kMaxRuns, runs.size() - done);
      size_t bytes = 0;
      for (size_t i = done; i < done + n; ++i) bytes += runs[i].iov_len;
      const long r = syscall(SYS_process_madvise, pidfd, runs.data() + done, n, MADV_DONTNEED, 0);
      if (r != static_cast<long>(bytes)) {  // Failed or stopped short: the rest one by one.
        if (r < 0) batched.store(false, std::memory_order_relaxed);
        break;
      }
      done += n;
    }
    if (pidfd >= 0) close(pidfd);
  }
  for (size_t i = done; i < runs.size(); ++i) {
    madvise(runs[i].iov_base, runs[i].iov_len, MADV_DONTNEED);
  }
}

}  // namespace

PageArena::DeferredFree::DeferredFree(PageArena* arena) {
  if (t_pending.arena != nullptr) return;  // Nested: the outer one flushes.
  t_pending.arena = arena;
  active_ = true;
}

PageArena::DeferredFree::~DeferredFree() {
  if (!active_) return;
  PageArena* arena = t_pending.arena;
  t_pending.arena = nullptr;
  arena->ToSpare(t_pending.pages.data(), t_pending.pages.size());
  t_pending.pages.clear();
}

void PageArena::AddSpare(void* const* pages, size_t n, std::vector<void*>* batch) {
  spare_.insert(spare_.end(), pages, pages + n);
  if (spare_.size() >= spare_pages_) batch->swap(spare_);
}

void PageArena::ToSpare(void* const* pages, size_t n) {
  if (n == 0) return;
  std::vector<void*> batch;
  {
    MutexLock lock(&mu_);
    AddSpare(pages, n, &batch);
  }
  GiveBack(batch);
}

void PageArena::FlushSpare() {
  std::vector<void*> batch;
  {
    MutexLock lock(&mu_);
    batch.swap(spare_);
  }
  GiveBack(batch);
}

size_t PageArena::SparePages() const {
  MutexLock lock(&mu_);
  return spare_.size();
}

void PageArena::GiveBack(std::vector<void*>& pages) {
  if (pages.empty()) return;
  std::sort(pages.begin(), pages.end(), std::less<void*>());
  std::vector<iovec> runs;
  for (size_t i = 0; i < pages.size();) {
    size_t j = i + 1;
    while (j < pages.size() &&
           static_cast<char*>(pages[j]) == static_cast<char*>(pages[j - 1]) + kPageSize) {
      ++j;
    }
    runs.push_back(iovec{pages[i], (j - i) * kPageSize});
    i = j;
  }
  DontNeed(runs);
  MutexLock lock(&mu_);
  cold_.insert(cold_.end(), pages.begin(), pages.end());
  pages.clear();
}

PageArena::PageArena(size_t warm_cache_pages, size_t defer_pages, size_t spare_pages)
    : warm_cache_pages_(warm_cache_pages), defer_pages_(defer_pages), spare_pages_(spare_pages) {}

PageArena::~PageArena() {
  for (void* region : regions_) munmap(region, kRegionPages * kPageSize);
}

void* PageArena::AllocPage() {
  {
    MutexLock lock(&mu_);
    void* page = nullptr;
    if (!warm_.empty()) {
      page = warm_.back();
      warm_.pop_back();
    } else if (!spare_.empty()) {
      page = spare_.back();
      spare_.pop_back();
    } else if (!cold_.empty()) {
      page = cold_.back();
      cold_.pop_back();
    } else if (carve_next_ != carve_end_) {
      page = carve_next_;
      carve_next_ += kPageSize;
    }
    if (page != nullptr) {
      in_use_.fetch_add(1, std::memory_order_relaxed);
      return page;
    }
  }
  // No free page: map a new region outside the lock, populated at once: one call faults
  // in its 512 pages, where touching them one by one costs a page fault each (and the
  // first touch would happen under ZbudPool's lock).
  void* region = mmap(nullptr, kRegionPages * kPageSize, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_POPULATE, -1, 0);
  if (region == MAP_FAILED) return nullptr;
  char* excess = nullptr;  // Resident pages beyond the warm cache, [excess, excess_end).
  char* excess_end = nullptr;
  {
    MutexLock lock(&mu_);
    regions_.push_back(region);
    // Pages left in the previous carve stretch (if another thread mapped meanwhile) are
    // resident (populated): they join the warm pages as far as the cache bound allows.
    char* p = carve_next_;
    for (; p != carve_end_ && warm_.size() < warm_cache_pages_; p += kPageSize) warm_.push_back(p);
    excess = p;
    excess_end = carve_end_;
    carve_next_ = static_cast<char*>(region) + kPageSize;
    carve_end_ = static_cast<char*>(region) + kRegionPages * kPageSize;
  }
  in_use_.fetch_add(1, std::memory_order_relaxed);
  if (excess != excess_end) {  // The rest is given back, as FreePage does past the bound.
    madvise(excess, static_cast<size_t>(excess_end - excess), MADV_DONTNEED);
    MutexLock lock(&mu_);
    for (char* p = excess; p != excess_end; p += kPageSize) cold_.push_back(p);
  }
  return region;
}

void PageArena::FreePage(void* page) {
  in_use_.fetch_sub(1, std::memory_order_relaxed);
  const bool deferred = t_pending.arena == this;  // A DeferredFree batches it instead.
  std::vector<void*> batch;
  {
    MutexLock lock(&mu_);  // Once per free: the warm cache, else the spare list.
    if (warm_.size() < warm_cache_pages_) {
      warm_.push_back(page);
      return;
    }
    if (!deferred) AddSpare(&page, 1, &batch);
  }
  if (!deferred) {
    GiveBack(batch);  // Empty unless the spare list just filled.
    return;
  }
  t_pending.pages.push_back(page);
  if (t_pending.pages.size() >= defer_pages_) GiveBack(t_pending.pages);
}

size_t PageArena::Trim() {
  constexpr size_t kRegionBytes = kRegionPages * kPageSize;
  std::vector<void*> unmap;
  {
    MutexLock lock(&mu_);
    if (cold_.size() < cold_at_trim_ + kRegionPages) {
      cold_at_trim_ = std::min(cold_at_trim_, cold_.size());
      return 0;
    }
    std::sort(cold_.begin(), cold_.end(), std::less<void*>());
    std::sort(regions_.begin(), regions_.end(), std::less<void*>());
    // Both sorted: walk them together; a region is all cold when its kRegionPages pages
    // are the next kRegionPages entries of cold_ (a page is in cold_ at most once).
    std::vector<void*> kept_cold, kept_regions;
    kept_cold.reserve(cold_.size());
    size_t c = 0;
    for (void* region : regions_) {
      const char* begin = static_cast<char*>(region);
      const char* end = begin + kRegionBytes;
      while (c < cold_.size() && static_cast<char*>(cold_[c]) < begin)
        kept_cold.push_back(cold_[c++]);
      size_t n = 0;
      while (c + n < cold_.size() && static_cast<char*>(cold_[c + n]) < end) ++n;
      if (n == kRegionPages) {
        unmap.push_back(region);
      } else {
        kept_cold.insert(kept_cold.end(), cold_.begin() + static_cast<std::ptrdiff_t>(c),
                         cold_.begin() + static_cast<std::ptrdiff_t>(c + n));
        kept_regions.push_back(region);
      }
      c += n;
    }
    kept_cold.insert(kept_cold.end(), cold_.begin() + static_cast<std::ptrdiff_t>(c), cold_.end());
    cold_ = std::move(kept_cold);
    cold_.shrink_to_fit();  // The old capacity (8 bytes a page ever freed) goes too.
    regions_ = std::move(kept_regions);
    cold_at_trim_ = cold_.size();
  }
  for (void* region : unmap) munmap(region, kRegionBytes);
  return unmap.size();
}

size_t PageArena::Regions() const {
  MutexLock lock(&mu_);
  return regions_.size();
}

}  // namespace zbudfs

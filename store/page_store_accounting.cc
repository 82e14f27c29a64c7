// PageStore's accounting: the statistics' counters as entries come and go (AccountDelta,
// Apply) and the statistics read from them (Stats, Usage, LockWaits), the index's heap bytes,
// capacity reserved for pages and metadata, and metadata charged against mem_limit
// (ChargeMetadata). Locking: store/page_store.h.
#include <vector>

#include "store/cluster.h"
#include "store/overflow_store.h"
#include "store/page_store.h"

namespace zbudfs {

// ---- Accounting -------------------------------------------------------------------------------

void PageStore::AccountDelta::Add(const PageEntry& e, int64_t sign) {
  stored += sign * static_cast<int64_t>(PageStorage::EntryCost(e));
  switch (e.kind) {
    case PageEntry::kSame:
      same += sign;
      break;
    case PageEntry::kZbud:
      compr += sign * static_cast<int64_t>(e.length);
      break;
    case PageEntry::kRaw:
      (e.staged() ? staged : huge) += sign;
      compr += sign * static_cast<int64_t>(kPageSize);
      break;
    case PageEntry::kOverflow:
      overflow += sign;
      compr += sign * static_cast<int64_t>(e.length);
      overflow_stored += sign * static_cast<int64_t>(e.length);
      break;
    case PageEntry::kCluster: {
      const auto* c = reinterpret_cast<const Cluster*>(e.value);
      compr += sign * static_cast<int64_t>(c->ComprShare());
      if (c->spilled()) {  // In the overflow store, as an overflow page is.
        overflow += sign;
        overflow_stored += sign * static_cast<int64_t>(c->StoredShare());
      } else {
        clustered += sign;
      }
      break;
    }
    default:
      break;
  }
}

void PageStore::Apply(File& f, const AccountDelta& d) {
  AddCounters(f, d);
  ChargeIndex(f);
}

void PageStore::ChargeIndex(File& f) {
  const size_t now = f.index.HeapBytes();
  if (now == f.index_bytes) return;
  index_bytes_.fetch_add(static_cast<uint64_t>(now) - static_cast<uint64_t>(f.index_bytes),
                         std::memory_order_relaxed);
  f.index_bytes = now;
}

void PageStore::AddCounters(File& f, const AccountDelta& d) {
  // Two's complement: adding the unsigned image of a negative delta subtracts it.
  auto add = [](std::atomic<uint64_t>& counter, int64_t delta) {
    if (delta != 0) counter.fetch_add(static_cast<uint64_t>(delta), std::memory_order_relaxed);
  };
  add(f.stored_bytes, d.stored);
  add(f.compr_bytes, d.compr);
  add(f.overflow_bytes, d.overflow_stored);
  add(same_pages_, d.same);
  add(compr_bytes_, d.compr);
  add(huge_pages_, d.huge);
  add(overflow_pages_, d.overflow);
  add(staged_pages_, d.staged);
  add(clustered_pages_, d.clustered);
}

void PageStore::AccountSwap(File& f, const PageEntry& old, const PageEntry& fresh) {
  AccountDelta d;
  d.Add(old, -1);
  d.Add(fresh, +1);
  Apply(f, d);
}

// Pages and metadata share one counter of capacity, so that neither can pass it when they
// race; pages_held_ then follows for the statistics.
bool PageStore::ReserveCapacity(uint64_t bytes) {
  const uint64_t cap = capacity_bytes_.load(std::memory_order_relaxed);
  uint64_t used = capacity_used_.load(std::memory_order_relaxed);
  do {
    if (cap != 0 && (bytes > cap || used > cap - bytes)) return false;
  } while (!capacity_used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
  return true;
}

bool PageStore::ReservePages(uint64_t n) {
  if (n == 0) return true;
  if (!ReserveCapacity(n * kPageSize)) return false;
  pages_held_.fetch_add(n, std::memory_order_relaxed);
  return true;
}

void PageStore::UnreservePages(uint64_t n) {
  pages_held_.fetch_sub(n, std::memory_order_relaxed);
  capacity_used_.fetch_sub(n * kPageSize, std::memory_order_relaxed);
}

Status PageStore::ChargeMetadata(int64_t bytes) { return Charge(bytes, true, metadata_bytes_); }

void PageStore::ChargeInodes(int64_t bytes) {
  if (bytes <= 0) {
    (void)Charge(bytes, false, inode_bytes_);  // Giving back: counts towards malloc_trim too.
    return;
  }
  inode_bytes_.fetch_add(static_cast<uint64_t>(bytes), std::memory_order_relaxed);
  const uint64_t limit = reclaimer_.mem_limit();
  if (limit != 0 && options_.overflow && MemUsed() > limit) (void)ReclaimTo(limit);
}

Status PageStore::Charge(int64_t bytes, bool in_capacity, std::atomic<uint64_t>& counter) {
  if (bytes <= 0) {
    const uint64_t back = static_cast<uint64_t>(-bytes);
    counter.fetch_sub(back, std::memory_order_relaxed);
    if (in_capacity) capacity_used_.fetch_sub(back, std::memory_order_relaxed);
    // Freed metadata is heap given back: it counts towards the next malloc_trim as dropped
    // pages do, so that RSS falls after a flood of xattrs, or of empty files, is deleted.
    dropped_pages_.fetch_add((back + kPageSize - 1) / kPageSize, std::memory_order_relaxed);
    return Status::OK();
  }
  const uint64_t n = static_cast<uint64_t>(bytes);
  if (in_capacity && !ReserveCapacity(n)) {
    return Status::Error(ENOSPC, "capacity reached (metadata)");
  }
  counter.fetch_add(n, std::memory_order_relaxed);
  const uint64_t limit = reclaimer_.mem_limit();
  int idle_waits = 0;
  while (limit != 0 && MemUsed() > limit) {
    // Make room by pushing file pages out; what cannot go (metadata, pages in flight) stays.
    Status st = n >= limit || !options_.overflow ? Status::Error(ENOSPC, "mem_limit reached")
                                                 : ReclaimTo(limit);
    if (st.ok()) break;
    // Pages in flight will become evictable, and staged pages shrink once compressed: wait
    // for them as a writer does (the caller holds none of them) rather than fail for good.
    const bool transient =
        n < limit && (st.code() == EAGAIN || (st.code() == ENOSPC && stager_.staged() > 0));
    if (transient && (st = reclaimer_.WaitForRoom(&idle_waits)).ok()) continue;
    (void)Charge(-bytes, in_capacity, counter);  // Giving a charge back cannot fail.
    return Status::Error(st.code() == EIO ? EIO : ENOSPC, "mem_limit reached (metadata)");
  }
  return Status::OK();
}

// ---- Statistics -------------------------------------------------------------------------------

FileUsage PageStore::Usage(FileId id) const {
  FileUsage u;
  std::shared_ptr<File> f = FindFile(id);
  if (!f) return u;
  ReaderLock lock(&f->index_mu);
  u.pages = f->index.size();
  u.stored_bytes = f->stored_bytes.load(std::memory_order_relaxed);
  u.compr_bytes = f->compr_bytes.load(std::memory_order_relaxed);
  u.overflow_bytes = f->overflow_bytes.load(std::memory_order_relaxed);
  return u;
}

std::vector<LockWait> PageStore::LockWaits() const {
  std::vector<LockWait> out = {shard_profile_.Snapshot(), stripe_profile_.Snapshot(),
                               index_profile_.Snapshot()};
  storage_.AddLockWaits(&out);
  reclaimer_.AddLockWaits(&out);
  decode_pool_.AddLockWaits(&out);
  stager_.AddLockWaits(&out);
  return out;
}

StoreStats PageStore::Stats() const {
  StoreStats s;
  s.orig_data_size = pages_held_.load(std::memory_order_relaxed) * kPageSize;
  s.compr_data_size = compr_bytes_.load(std::memory_order_relaxed);
  s.pool_pages = storage_.PoolPages();
  s.buddied_pages = storage_.BuddiedPages();
  s.same_pages = same_pages_.load(std::memory_order_relaxed);
  s.huge_pages = huge_pages_.load(std::memory_order_relaxed);
  s.metadata_bytes = metadata_bytes_.load(std::memory_order_relaxed);
  s.inode_bytes = inode_bytes_.load(std::memory_order_relaxed);
  s.index_bytes = index_bytes_.load(std::memory_order_relaxed);
  s.cluster_bytes = storage_.ClusterHeapBytes();
  s.mem_used_total = (s.pool_pages + storage_.RawPages()) * kPageSize + s.cluster_bytes +
                     s.index_bytes + s.metadata_bytes + s.inode_bytes;
  s.mem_limit = reclaimer_.mem_limit();
  s.overflow_pages = overflow_pages_.load(std::memory_order_relaxed);
  s.overflow_bytes = options_.overflow ? options_.overflow->BytesUsed() : 0;
  s.written_back_pages = written_back_.load(std::memory_order_relaxed);
  s.faulted_pages = storage_.FaultedPages();
  s.staged_pages = staged_pages_.load(std::memory_order_relaxed);
  s.clustered_pages = clustered_pages_.load(std::memory_order_relaxed);
  s.cluster_allocations = storage_.ClusterParts();
  s.clusters = storage_.Clusters();
  s.spilled_clusters = storage_.SpilledClusters();
  s.reclaim_packed_pages = reclaim_packed_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace zbudfs

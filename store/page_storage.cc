#include "store/page_storage.h"

#include <algorithm>
#include <cstring>

#include "store/cluster.h"
#include "store/overflow_store.h"
#include "store/page_arena.h"
#include "store/page_store.h"

namespace zbudfs {

namespace {

// Every zbud allocation starts with the owner's tag, so that eviction can find the index
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

constexpr unsigned kReclaimRetries = 8;  // LRU pages tried per pool eviction.
constexpr unsigned kMaxPools = 32;       // As zswap's ZSWAP_NR_ZPOOLS.

// The tag is written and read through atomic_ref: eviction may read a tag of a handle that a
// writer has allocated but not yet filled in. It then finds no index entry pointing at the
// handle and leaves it alone; the atomics make that benign race well defined.
void StoreTag(void* dst, const OwnerTag& tag) {
  auto* words = static_cast<uint64_t*>(dst);
  std::atomic_ref<uint64_t>(words[0]).store(tag.file, std::memory_order_relaxed);
  std::atomic_ref<uint64_t>(words[1]).store(tag.page, std::memory_order_relaxed);
}

OwnerTag LoadTag(void* src) {
  auto* words = static_cast<uint64_t*>(src);
  return {std::atomic_ref<uint64_t>(words[0]).load(std::memory_order_relaxed),
          std::atomic_ref<uint64_t>(words[1]).load(std::memory_order_relaxed)};
}

}  // namespace

PageStorage::PageStorage(const Options& options, PageOwners* owners)
    : options_(options),
      zstd_level_(options.zstd_level),
      zstd_fast_level_(options.zstd_fast_level),
      owners_(owners) {
  if (options_.arena == nullptr) {
    owned_arena_ = std::make_unique<PageArena>();
    arena_ = owned_arena_.get();
  } else {
    arena_ = options_.arena;
  }
  const unsigned n = std::clamp(options_.pools, 1u, kMaxPools);
  for (unsigned i = 0; i < n; ++i) {
    const auto index = static_cast<uint16_t>(i);
    pools_.push_back(std::make_unique<ZbudPool>(
        arena_, [this, index](ZbudPool&, ZbudPool::Handle h) { return EvictZbud(index, h); }));
  }
}

// Threads are dealt pools in turn as they first allocate, so that concurrent writers mostly
// take different pool locks while one thread's pages still pair with each other.
uint16_t PageStorage::ThisThreadsPool() const {
  static std::atomic<unsigned> next_thread{0};
  thread_local const unsigned ticket = next_thread.fetch_add(1, std::memory_order_relaxed);
  return static_cast<uint16_t>(ticket % pools_.size());
}

uint64_t PageStorage::PoolPages() const {
  uint64_t n = 0;
  for (const auto& p : pools_) n += p->PoolPages();
  return n;
}

std::vector<uint64_t> PageStorage::PagesPerPool() const {
  std::vector<uint64_t> out;
  for (const auto& p : pools_) out.push_back(p->PoolPages());
  return out;
}

uint64_t PageStorage::BuddiedPages() const {
  uint64_t n = 0;
  for (const auto& p : pools_) n += p->BuddiedPages();
  return n;
}

PageStorage::~PageStorage() = default;

// ---- Encode, store, load, free ----------------------------------------------------------------

bool PageStorage::EncodeSame(const uint8_t* data, PageEntry* out) const {
  uint64_t word;
  if (!PageCodec::IsSameFilled(data, &word)) return false;
  *out = PageEntry();
  out->kind = PageEntry::kSame;
  out->value = word;
  return true;
}

size_t PageStorage::Compress(const uint8_t* data, PageCodec::Streak* streak,
                             uint8_t* scratch) const {
  const size_t n = PageCodec::CompressFastFirst(data, zstd_level_.load(std::memory_order_relaxed),
                                                zstd_fast_level_.load(std::memory_order_relaxed),
                                                kPairedPayload, streak, scratch);
  return n > kMaxZbudPayload ? 0 : n;
}

uint64_t PageStorage::StoredCost(size_t length) {
  if (length >= kRawLength) return kPageSize;
  return ZbudPool::AllocatedBytes(sizeof(OwnerTag) + length);
}

// The one place a page's memory is allocated and filled: new pages and promoted ones.
Status PageStorage::Store(uint64_t file, uint64_t page, const uint8_t* payload, size_t length,
                          PageEntry* out, int in_pool) {
  *out = PageEntry();
  if (length >= kRawLength) {
    void* raw = arena_->AllocPage();
    if (raw == nullptr) return Status::Error(ENOSPC, "no memory for a raw page");
    raw_pages_.fetch_add(1, std::memory_order_relaxed);
    std::memcpy(raw, payload, kPageSize);
    out->kind = PageEntry::kRaw;
    out->value = reinterpret_cast<uint64_t>(raw);
    return Status::OK();
  }
  const uint16_t index = in_pool >= 0 && static_cast<size_t>(in_pool) < pools_.size()
                             ? static_cast<uint16_t>(in_pool)
                             : ThisThreadsPool();
  ZbudPool& pool = *pools_[index];
  StatusOr<ZbudPool::Handle> h = pool.Alloc(sizeof(OwnerTag) + length);
  if (!h.ok()) return Status::Error(ENOSPC, h.status().message());
  auto* dst = static_cast<uint8_t*>(pool.Map(*h));
  StoreTag(dst, OwnerTag{file, page});
  std::memcpy(dst + sizeof(OwnerTag), payload, length);
  pool.Unmap(*h);
  out->kind = PageEntry::kZbud;
  out->value = *h;
  out->stamp = index;
  out->length = static_cast<uint32_t>(length);
  return Status::OK();
}

Status PageStorage::Load(const PageEntry& e, uint8_t* out) const {
  switch (e.kind) {
    case PageEntry::kSame:
      PageCodec::FillSame(out, e.value);
      return Status::OK();
    case PageEntry::kZbud: {
      ZbudPool& pool = PoolOf(e);
      const auto* src = static_cast<const uint8_t*>(pool.Map(e.value));
      Status st = PageCodec::Decompress(src + sizeof(OwnerTag), e.length, out);
      pool.Unmap(e.value);
      return st.ok() ? st : Report(StoreErrorKind::kCheckFailed, st);
    }
    case PageEntry::kRaw:
      std::memcpy(out, reinterpret_cast<const void*>(e.value), kPageSize);
      return Status::OK();
    case PageEntry::kCluster:
      return LoadClustered(e, out);
    case PageEntry::kOverflow: {
      if (e.length == kPageSize) return ReadOverflow(e, out);
      uint8_t payload[kPageSize];
      Status st = ReadOverflow(e, payload);
      return st.ok() ? DecodeOverflow(e, payload, out) : st;
    }
    default:
      return Status::Error(EIO, "page in an unknown state");
  }
}

Status PageStorage::ReadOverflow(const PageEntry& e, uint8_t* payload) const {
  faulted_.fetch_add(1, std::memory_order_relaxed);
  return ReadSlot(e.value, payload, e.length);
}

Status PageStorage::ReadSlot(uint64_t loc, uint8_t* out, uint32_t length) const {
  Status st = options_.overflow->Read(loc, out, length);
  if (st.ok()) return st;
  const StoreErrorKind kind =
      st.code() == EBADMSG ? StoreErrorKind::kCheckFailed : StoreErrorKind::kOverflowIo;
  return Report(kind, Status::Error(EIO, st.message()));  // EBADMSG is EIO to callers.
}

Status PageStorage::DecodeOverflow(const PageEntry& e, const uint8_t* payload, uint8_t* out) const {
  if (e.length == kPageSize) {
    std::memcpy(out, payload, kPageSize);
    return Status::OK();
  }
  Status st = PageCodec::Decompress(payload, e.length, out);
  return st.ok() ? st : Report(StoreErrorKind::kCheckFailed, st);
}

uint32_t PageStorage::CopyPayload(const PageEntry& e, uint8_t* payload) const {
  if (e.kind == PageEntry::kRaw) {
    std::memcpy(payload, reinterpret_cast<const void*>(e.value), kPageSize);
    return kPageSize;
  }
  std::memcpy(payload, static_cast<uint8_t*>(PoolOf(e).Map(e.value)) + sizeof(OwnerTag), e.length);
  PoolOf(e).Unmap(e.value);
  return e.length;
}

// A zbud handle cannot be reused while its page is under reclaim (ZbudPool's contract), so
// an entry still naming it holds the bytes copied. A raw page's address can come back from
// the arena (LIFO) to a later overwrite of the same page, holding newer data: compare.
bool PageStorage::StillHolds(const PageEntry& e, const uint8_t* payload) const {
  if (e.kind != PageEntry::kRaw) return true;
  return std::memcmp(payload, reinterpret_cast<const void*>(e.value), kPageSize) == 0;
}

bool PageStorage::StillHoldsPayload(const PageEntry& e, const uint8_t* payload,
                                    uint32_t length) const {
  const auto* src = static_cast<const uint8_t*>(PoolOf(e).Map(e.value));
  const bool same = e.length == length && std::memcmp(src + sizeof(OwnerTag), payload, length) == 0;
  PoolOf(e).Unmap(e.value);
  return same;
}

void PageStorage::Free(const PageEntry& e) {
  if (e.kind == PageEntry::kZbud) {
    PoolOf(e).Free(e.value);
  } else if (e.kind == PageEntry::kRaw) {
    arena_->FreePage(reinterpret_cast<void*>(e.value));
    raw_pages_.fetch_sub(1, std::memory_order_relaxed);
  } else if (e.kind == PageEntry::kOverflow) {
    options_.overflow->Free(e.value, e.length);
  } else if (e.kind == PageEntry::kCluster) {
    ReleaseCluster(reinterpret_cast<Cluster*>(e.value));
  }
}

uint64_t PageStorage::EntryCost(const PageEntry& e) {
  switch (e.kind) {
    case PageEntry::kZbud:
      return ZbudPool::AllocatedBytes(e.length + sizeof(OwnerTag));
    case PageEntry::kRaw:
      return kPageSize;
    case PageEntry::kOverflow:
      return e.length;
    case PageEntry::kCluster:
      return reinterpret_cast<const Cluster*>(e.value)->StoredShare();
    default:
      return 0;
  }
}

void PageStorage::AddLockWaits(std::vector<LockWait>* out) const {
  // The pools are one lock class: their waits are summed.
  std::vector<LockWait> pools;
  for (const auto& p : pools_) p->AddLockWaits(&pools);
  LockWait sum = pools.front();
  for (size_t i = 1; i < pools.size(); ++i) {
    sum.waits += pools[i].waits;
    sum.wait_ns += pools[i].wait_ns;
  }
  out->push_back(sum);
  arena_->AddLockWaits(out);
  out->push_back(raw_profile_.Snapshot());
  if (options_.overflow != nullptr) options_.overflow->AddLockWaits(out);
}

Status PageStorage::Report(StoreErrorKind kind, Status st) const {
  if (options_.report_error) options_.report_error(kind, st.message());
  return st;
}

// ---- Clusters ---------------------------------------------------------------------------------

namespace {
// One sequence for every store of the process: the decoded-frame cache of a thread is shared
// by all of them.
uint64_t NextClusterId() {
  static std::atomic<uint64_t> next_id{1};
  return next_id.fetch_add(1, std::memory_order_relaxed);
}

// The object of a new cluster of `pages` pages in a frame of `length` bytes, its parts in
// `pool` (not yet stored); nullptr if no cluster has that shape.
Cluster* NewCluster(size_t length, unsigned pages, uint16_t pool) {
  const unsigned parts = Cluster::PartsFor(length);
  if (parts == 0 || parts > Cluster::kMaxParts || pages == 0 || pages > Cluster::kMaxPages) {
    return nullptr;
  }
  Cluster* c = Cluster::New(parts);
  c->frame_length = static_cast<uint32_t>(length);
  c->pages = static_cast<uint8_t>(pages);
  c->pool = pool;
  c->id = NextClusterId();
  return c;
}
}  // namespace

StatusOr<Cluster*> PageStorage::StoreCluster(uint64_t file, uint64_t first, const uint8_t* frame,
                                             size_t length, unsigned pages) {
  Cluster* c = NewCluster(length, pages, ThisThreadsPool());
  if (c == nullptr) return Status::Error(EINVAL, "not a cluster");
  const unsigned parts = c->parts;
  ZbudPool& pool = *pools_[c->pool];
  for (unsigned i = 0; i < parts; ++i) {
    const uint32_t n = c->PartLength(i);
    StatusOr<ZbudPool::Handle> h = pool.Alloc(sizeof(OwnerTag) + n);
    if (!h.ok()) {
      for (unsigned j = 0; j < i; ++j) pool.Free(c->handles()[j]);
      Cluster::Delete(c);
      return Status::Error(ENOSPC, h.status().message());
    }
    c->handles()[i] = *h;
    // A full part leaves no room for a buddy: it takes the whole page.
    c->stored_bytes += static_cast<uint32_t>(
        n == Cluster::kMaxPartPayload ? kPageSize : ZbudPool::AllocatedBytes(sizeof(OwnerTag) + n));
    auto* dst = static_cast<uint8_t*>(pool.Map(*h));
    StoreTag(dst, OwnerTag{file, first | Cluster::kTagBit});
    std::memcpy(dst + sizeof(OwnerTag), frame + i * Cluster::kMaxPartPayload, n);
    pool.Unmap(*h);
  }
  clusters_.fetch_add(1, std::memory_order_relaxed);
  cluster_parts_.fetch_add(parts, std::memory_order_relaxed);
  cluster_heap_.fetch_add(Cluster::HeapBytes(parts), std::memory_order_relaxed);
  return c;
}

StatusOr<Cluster*> PageStorage::SpillCluster(const uint8_t* frame, uint32_t length,
                                             unsigned pages) {
  Cluster* c = NewCluster(length, pages, Cluster::kSpilled);
  if (c == nullptr) return Status::Error(EINVAL, "not a cluster");
  const unsigned parts = c->parts;
  for (unsigned i = 0; i < parts; ++i) {
    StatusOr<uint64_t> loc = WriteOverflow(frame + i * Cluster::kMaxPartPayload, c->PartLength(i));
    if (!loc.ok()) {
      for (unsigned j = 0; j < i; ++j) options_.overflow->Free(c->handles()[j], c->PartLength(j));
      Cluster::Delete(c);
      return loc.status();
    }
    c->handles()[i] = *loc;
  }
  spilled_clusters_.fetch_add(1, std::memory_order_relaxed);
  cluster_heap_.fetch_add(Cluster::HeapBytes(parts), std::memory_order_relaxed);
  return c;
}

void PageStorage::DropCluster(Cluster* c) {
  if (c->spilled()) {
    for (unsigned i = 0; i < c->parts; ++i) {
      options_.overflow->Free(c->handles()[i], c->PartLength(i));
    }
    spilled_clusters_.fetch_sub(1, std::memory_order_relaxed);
  } else {
    ZbudPool& pool = *pools_[c->pool];
    for (unsigned i = 0; i < c->parts; ++i) pool.Free(c->handles()[i]);
    cluster_parts_.fetch_sub(c->parts, std::memory_order_relaxed);
    clusters_.fetch_sub(1, std::memory_order_relaxed);
  }
  cluster_heap_.fetch_sub(Cluster::HeapBytes(c->parts), std::memory_order_relaxed);
  Cluster::Delete(c);
}

void PageStorage::ReleaseCluster(Cluster* c) {
  if (c->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) DropCluster(c);
}

Status PageStorage::CopyFrame(const Cluster& c, uint8_t* out) const {
  if (c.spilled()) {
    for (unsigned i = 0; i < c.parts; ++i) {
      Status st = ReadSlot(c.handles()[i], out + i * Cluster::kMaxPartPayload, c.PartLength(i));
      if (!st.ok()) return st;
    }
    return Status::OK();
  }
  ZbudPool& pool = *pools_[c.pool];
  for (unsigned i = 0; i < c.parts; ++i) {
    const auto* src = static_cast<const uint8_t*>(pool.Map(c.handles()[i]));
    std::memcpy(out + i * Cluster::kMaxPartPayload, src + sizeof(OwnerTag), c.PartLength(i));
    pool.Unmap(c.handles()[i]);
  }
  return Status::OK();
}

Status PageStorage::DecodeCluster(const Cluster& c, uint8_t* pages, const uint8_t* frame) const {
  thread_local std::unique_ptr<uint8_t[]> copy;  // Made on a thread's first cluster.
  if (frame == nullptr) {
    if (!copy) copy = std::make_unique<uint8_t[]>(Cluster::kMaxPages * kPageSize);
    if (Status st = CopyFrame(c, copy.get()); !st.ok()) return st;
    frame = copy.get();
  }
  if (c.spilled()) faulted_.fetch_add(c.pages, std::memory_order_relaxed);
  Status st = PageCodec::DecompressRun(frame, c.frame_length, pages, c.pages * kPageSize);
  return st.ok() ? st : Report(StoreErrorKind::kCheckFailed, st);
}

// A reader of consecutive pages of one cluster decodes its frame once: each thread keeps the
// last frame it decoded, keyed by the cluster's id (never reused; a cluster never changes).
Status PageStorage::LoadFromFrame(const PageEntry& e, const uint8_t* frame, uint8_t* out) const {
  if (e.kind != PageEntry::kCluster) return Status::Error(EINVAL, "not a cluster's page");
  return LoadClustered(e, out, frame);
}

Status PageStorage::LoadClustered(const PageEntry& e, uint8_t* out, const uint8_t* frame) const {
  struct Decoded {
    uint64_t id = 0;
    std::unique_ptr<uint8_t[]> pages;
  };
  thread_local Decoded last;
  const auto* c = reinterpret_cast<const Cluster*>(e.value);
  if (e.length >= c->pages)
    return Report(StoreErrorKind::kCheckFailed, Status::Error(EIO, "cluster entry out of range"));
  if (last.id != c->id) {
    if (!last.pages) last.pages = std::make_unique<uint8_t[]>(Cluster::kMaxPages * kPageSize);
    last.id = 0;
    Status st = DecodeCluster(*c, last.pages.get(), frame);
    if (!st.ok()) return st;
    last.id = c->id;
  }
  std::memcpy(out, last.pages.get() + e.length * kPageSize, kPageSize);
  return Status::OK();
}

// ---- Eviction ---------------------------------------------------------------------------------

// Records raw pages for their eviction once they are in the index (a record of an
// unpublished page would be dropped as stale by EvictRaw and the page never evicted).
void PageStorage::RecordRawPages(uint64_t file, uint64_t first, const PageEntry* entries,
                                 const bool* touched, uint64_t n) {
  if (options_.overflow == nullptr) return;
  // Most batches hold no raw page: then raw_mu_, shared by all writers, is not taken.
  bool any = false;
  auto evictable = [&](uint64_t i) {  // Staged pages are compressed, not evicted raw.
    return touched[i] && entries[i].kind == PageEntry::kRaw && !entries[i].staged();
  };
  for (uint64_t i = 0; i < n && !any; ++i) any = evictable(i);
  if (!any) return;
  bool compact;
  {
    MutexLock lock(&raw_mu_);
    for (uint64_t i = 0; i < n; ++i) {
      if (evictable(i)) {
        raw_fifo_.push_back(RawRecord{file, first + i, entries[i].value});
      }
    }
    compact = raw_fifo_.size() > 2 * RawPages() + 4096;
  }
  if (compact) CompactRawFifo();
}

void PageStorage::RecordRawPage(uint64_t file, uint64_t page, const PageEntry& e) {
  if (e.kind != PageEntry::kRaw || e.staged() || options_.overflow == nullptr) return;
  MutexLock lock(&raw_mu_);
  raw_fifo_.push_back(RawRecord{file, page, e.value});
}

// Which memory goes first: raw pages when they are the larger part of memory, zbud pages
// (the pool's LRU tail) otherwise; each falls back to the other when it has nothing.
namespace {
// EvictColdest's pack_first, for the pools' evict callback (EvictZbud) on this thread.
thread_local bool t_pack_first = false;
}  // namespace

Status PageStorage::EvictColdest(bool pack_first) {
  if (options_.overflow == nullptr) return Status::Error(ENOSPC, "no overflow store");
  const bool outer = t_pack_first;
  t_pack_first = pack_first;
  Status st = EvictColdestOnce();
  t_pack_first = outer;
  return st;
}

Status PageStorage::EvictColdestOnce() {
  const bool raw_first = RawPages() > PoolPages();
  if (raw_first) {
    Status st = EvictRaw();
    if (st.code() != EAGAIN) return st;
  }
  Status st = EvictFromPools();
  if (st.code() != EAGAIN) return st;
  if (!raw_first) {
    Status raw = EvictRaw();
    if (raw.code() != EAGAIN) return raw;
  }
  return Status::Error(EAGAIN, "nothing to reclaim now");
}

Status PageStorage::EvictFromPools() {
  // Sorted on a snapshot: the counts move while we sort, and a comparison that changes its
  // mind midway is undefined behaviour for std::sort (it ran off the array).
  std::vector<std::pair<uint64_t, uint16_t>> order(pools_.size());
  for (size_t i = 0; i < order.size(); ++i) {
    order[i] = {pools_[i]->PoolPages(), static_cast<uint16_t>(i)};
  }
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
  for (const auto& [pages, i] : order) {
    if (pages == 0) break;
    Status evict_error;
    Status st = pools_[i]->ReclaimPage(kReclaimRetries, &evict_error);
    if (st.ok()) return st;
    if (!evict_error.ok()) return evict_error;  // The overflow store failed (ENOSPC/EIO).
  }
  return Status::Error(EAGAIN, "no zbud page to reclaim now");
}

Status PageStorage::EvictZbud(uint16_t pool, ZbudPool::Handle handle) {
  const OwnerTag tag = LoadTag(pools_[pool]->Map(handle));
  if ((tag.page & Cluster::kTagBit) != 0) {
    return owners_->EvictCluster(tag.file, tag.page & ~Cluster::kTagBit, pool, handle);
  }
  PageEntry expect;
  expect.kind = PageEntry::kZbud;
  expect.value = handle;
  expect.stamp = pool;
  uint8_t payload[kPageSize];
  uint32_t length;
  // Freed with its file, overwritten, or not yet published: not ours to move (nor to pack:
  // the other buddy may have gone with a group the first one's packing took).
  if (t_pack_first && owners_->Holds(tag.file, tag.page, expect) &&
      owners_->PackInstead(tag.file, tag.page, expect)) {
    return Status::OK();
  }
  if (!owners_->CopyIfHolds(tag.file, tag.page, expect, payload, &length)) return Status::OK();
  return MoveToOverflow(tag.file, tag.page, expect, payload, length);
}

Status PageStorage::EvictRaw() {
  RawRecord r;
  {
    MutexLock lock(&raw_mu_);
    if (raw_fifo_.empty()) return Status::Error(EAGAIN, "no raw pages");
    r = raw_fifo_.front();
    raw_fifo_.pop_front();
  }
  PageEntry expect;
  expect.kind = PageEntry::kRaw;
  expect.value = r.addr;
  uint8_t data[kPageSize];
  uint32_t length;
  if (!owners_->CopyIfHolds(r.file, r.page, expect, data, &length)) return Status::OK();  // Stale.
  Status st = MoveToOverflow(r.file, r.page, expect, data, length);
  if (!st.ok()) {
    MutexLock lock(&raw_mu_);
    raw_fifo_.push_front(r);
  }
  return st;
}

// The one way a page leaves memory: its copy is written with no lock held, then the entry is
// repointed only if it still holds what was copied.
StatusOr<uint64_t> PageStorage::WriteOverflow(const uint8_t* payload, uint32_t length) {
  if (options_.overflow == nullptr) return Status::Error(ENOSPC, "no overflow store");
  StatusOr<uint64_t> loc = options_.overflow->Write(payload, length);
  if (!loc.ok() && loc.status().code() == EIO) {
    (void)Report(StoreErrorKind::kOverflowIo, loc.status());
  }
  return loc;
}

Status PageStorage::MoveToOverflow(uint64_t file, uint64_t page, const PageEntry& expect,
                                   const uint8_t* payload, uint32_t length) {
  StatusOr<uint64_t> loc = WriteOverflow(payload, length);
  if (!loc.ok()) return loc.status();
  PageEntry to;
  to.kind = PageEntry::kOverflow;
  to.value = *loc;
  to.length = length;
  if (owners_->RepointIfHolds(file, page, expect, payload, to)) {
    Free(expect);
    return Status::OK();
  }
  options_.overflow->Free(*loc, length);  // Overwritten or dropped meanwhile.
  return Status::OK();
}

void PageStorage::CompactRawFifo() {
  std::deque<RawRecord> old;
  {
    MutexLock lock(&raw_mu_);
    old.swap(raw_fifo_);
  }
  std::deque<RawRecord> live;
  for (const RawRecord& r : old) {
    PageEntry expect;
    expect.kind = PageEntry::kRaw;
    expect.value = r.addr;
    if (owners_->Holds(r.file, r.page, expect)) live.push_back(r);
  }
  MutexLock lock(&raw_mu_);
  raw_fifo_.insert(raw_fifo_.begin(), live.begin(), live.end());  // Older than any new ones.
}

}  // namespace zbudfs

// Page encoding and accounting: a page's storage (same-filled word, zbud object, raw page),
// its cost, and the statistics kept per entry. Split out of page_store.cc.
// Lock order (see page_store.h): called with at most the owning file's locks held; takes
// ZbudPool::mu_ and PageArena::mu_ through the pool and the arena.
#include <cstring>

#include "store/overflow_store.h"
#include "store/page_arena.h"
#include "store/page_codec.h"
#include "store/page_index.h"
#include "store/page_store.h"
#include "store/page_store_internal.h"
#include "store/zbud_pool.h"

namespace zbudfs {

using store_internal::kMaxZbudPayload;
using store_internal::kPairedPayload;
using store_internal::OwnerTag;
using store_internal::StoreTag;

// ---- Page encoding ----------------------------------------------------------------------------

uint64_t PageStore::EntryCost(const PageEntry& e) {
  switch (e.kind) {
    case PageEntry::kZbud:
      return ZbudPool::AllocatedBytes(e.length + sizeof(OwnerTag));
    case PageEntry::kRaw:
      return kPageSize;
    case PageEntry::kOverflow:
      return e.length;
    default:
      return 0;
  }
}

uint64_t PageStore::MemUsed() const {
  return (pool_->PoolPages() + raw_mem_pages_.load(std::memory_order_relaxed)) * kPageSize +
         index_bytes_.load(std::memory_order_relaxed) +
         metadata_bytes_.load(std::memory_order_relaxed);
}

Status PageStore::EncodePage(FileId file, uint64_t page, const uint8_t* data, uint64_t replaced_mem,
                             PageCodec::Streak* streak, PageEntry* out, bool* passed_limit) {
  *out = PageEntry();
  *passed_limit = false;
  uint64_t word;
  if (PageCodec::IsSameFilled(data, &word)) {
    out->kind = PageEntry::kSame;
    out->value = word;
    return Status::OK();
  }
  thread_local uint8_t scratch[kPageSize];
  size_t n = PageCodec::CompressFastFirst(data, options_.zstd_level, options_.zstd_fast_level,
                                          kPairedPayload, streak, scratch);
  if (n > kMaxZbudPayload) n = 0;
  const uint64_t cost = n != 0 ? ZbudPool::AllocatedBytes(sizeof(OwnerTag) + n) : kPageSize;
  // A page that takes no more memory than the one it replaces (freed right after the swap)
  // may pass mem_limit for that moment: truncate, punch and shrinking overwrites never fail
  // for memory.
  Status room = MakeRoom();
  if (!room.ok() && cost > replaced_mem) return room;
  *passed_limit = !room.ok();
  if (n != 0) {
    StatusOr<ZbudPool::Handle> h = pool_->Alloc(sizeof(OwnerTag) + n);
    if (!h.ok()) return Status::Error(ENOSPC, h.status().message());
    auto* dst = static_cast<uint8_t*>(pool_->Map(*h));
    StoreTag(dst, OwnerTag{file, page});
    std::memcpy(dst + sizeof(OwnerTag), scratch, n);
    pool_->Unmap(*h);
    out->kind = PageEntry::kZbud;
    out->value = *h;
    out->length = static_cast<uint32_t>(n);
    unpublished_.fetch_add(1, std::memory_order_relaxed);  // Until EndInFlight.
    return Status::OK();
  }
  void* raw = arena_->AllocPage();
  if (raw == nullptr) return Status::Error(ENOSPC, "no memory for a raw page");
  raw_mem_pages_.fetch_add(1, std::memory_order_relaxed);
  std::memcpy(raw, data, kPageSize);
  out->kind = PageEntry::kRaw;
  out->value = reinterpret_cast<uint64_t>(raw);
  unpublished_.fetch_add(1, std::memory_order_relaxed);  // Until EndInFlight.
  return Status::OK();
}

Status PageStore::DecodePage(const PageEntry& e, uint8_t* out) const {
  switch (e.kind) {
    case PageEntry::kSame:
      PageCodec::FillSame(out, e.value);
      return Status::OK();
    case PageEntry::kZbud: {
      const auto* src = static_cast<const uint8_t*>(pool_->Map(e.value));
      Status st = PageCodec::Decompress(src + sizeof(OwnerTag), e.length, out);
      pool_->Unmap(e.value);
      return st.ok() ? st : Report(StoreErrorKind::kCheckFailed, st);
    }
    case PageEntry::kRaw:
      std::memcpy(out, reinterpret_cast<const void*>(e.value), kPageSize);
      return Status::OK();
    case PageEntry::kOverflow: {  // Partial-page merges; Read() handles its own.
      if (e.length == kPageSize) return ReadOverflow(e, out);
      uint8_t payload[kPageSize];
      Status st = ReadOverflow(e, payload);
      if (!st.ok()) return st;
      st = PageCodec::Decompress(payload, e.length, out);
      return st.ok() ? st : Report(StoreErrorKind::kCheckFailed, st);
    }
    default:
      return Status::Error(EIO, "page in an unknown state");
  }
}

void PageStore::FreeEntry(const PageEntry& e) {
  if (e.kind == PageEntry::kZbud) {
    pool_->Free(e.value);
  } else if (e.kind == PageEntry::kRaw) {
    arena_->FreePage(reinterpret_cast<void*>(e.value));
    raw_mem_pages_.fetch_sub(1, std::memory_order_relaxed);
  } else if (e.kind == PageEntry::kOverflow) {
    options_.overflow->Free(e.value, e.length);
  }
}

void PageStore::AccountDelta::Add(const PageEntry& e, int64_t sign) {
  stored += sign * static_cast<int64_t>(EntryCost(e));
  switch (e.kind) {
    case PageEntry::kSame:
      same += sign;
      break;
    case PageEntry::kZbud:
      compr += sign * static_cast<int64_t>(e.length);
      break;
    case PageEntry::kRaw:
      huge += sign;
      compr += sign * static_cast<int64_t>(kPageSize);
      break;
    case PageEntry::kOverflow:
      overflow += sign;
      compr += sign * static_cast<int64_t>(e.length);
      break;
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
  add(same_pages_, d.same);
  add(compr_bytes_, d.compr);
  add(huge_pages_, d.huge);
  add(overflow_pages_, d.overflow);
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
  const uint64_t cap = options_.capacity_bytes;
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

Status PageStore::ChargeMetadata(int64_t bytes) {
  if (bytes <= 0) {
    const uint64_t back = static_cast<uint64_t>(-bytes);
    metadata_bytes_.fetch_sub(back, std::memory_order_relaxed);
    capacity_used_.fetch_sub(back, std::memory_order_relaxed);
    // Freed metadata is heap given back: it counts towards the next malloc_trim as dropped
    // pages do, so that RSS falls after a flood of xattrs is deleted.
    dropped_pages_.fetch_add((back + kPageSize - 1) / kPageSize, std::memory_order_relaxed);
    return Status::OK();
  }
  const uint64_t n = static_cast<uint64_t>(bytes);
  if (!ReserveCapacity(n)) return Status::Error(ENOSPC, "capacity reached (metadata)");
  metadata_bytes_.fetch_add(n, std::memory_order_relaxed);
  const uint64_t limit = options_.mem_limit;
  if (limit == 0 || MemUsed() <= limit) return Status::OK();
  // Make room by pushing file pages out; what cannot go (metadata, pages in flight) stays.
  Status st = n >= limit || !options_.overflow ? Status::Error(ENOSPC, "mem_limit reached")
                                               : ReclaimTo(limit);
  if (st.ok()) return st;
  ChargeMetadata(-bytes);
  return Status::Error(st.code() == EIO ? EIO : ENOSPC, "mem_limit reached (metadata)");
}

}  // namespace zbudfs

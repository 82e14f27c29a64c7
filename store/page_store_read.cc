// PageStore's read protocol: Read, in parts on idle DecodePool helpers for large reads
// (ReadParallel), overflow pages read with one pread and brought back into memory on their
// second read (the fault-back policy, Promote). Locking: store/page_store.h.
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "store/overflow_store.h"
#include "store/page_store.h"
#include "store/page_store_internal.h"

namespace zbudfs {

using store_internal::IsSpilled;
using store_internal::kFlagAccessed;
using store_internal::kMaxPromotePerRead;
using store_internal::kParallelReadMin;
using store_internal::kReadPart;

// Fault-back policy: a page read from the overflow store stays there on its first read (a
// one-off scan does not pull a whole file back in); its second read brings it back into
// memory if memory is below the low watermark, so re-read pages become fast again without
// evicting hotter ones.
Status PageStore::Read(FileId id, uint64_t off, void* buf, size_t len) {
  if (len == 0) return Status::OK();
  if (off >= kMaxFileSize || len > kMaxFileSize - off) return Status::Error(EINVAL);
  auto* dst = static_cast<uint8_t*>(buf);
  std::shared_ptr<File> f = FindFile(id);
  if (!f) {
    std::memset(dst, 0, len);
    return Status::OK();
  }
  std::vector<Promotion> promotions;
  {
    ReaderLock lock(&f->index_mu);
    Status st = len >= kParallelReadMin && decode_pool_.threads() > 0
                    ? ReadParallel(*f, off, dst, len, &promotions)
                    : ReadLocked(*f, off, dst, len, &promotions);
    if (!st.ok()) return st;
  }
  for (const Promotion& p : promotions) Promote(id, p);
  return Status::OK();
}

Status PageStore::ReadLocked(const File& f, uint64_t off, uint8_t* dst, size_t len,
                             std::vector<Promotion>* promotions) {
  thread_local uint8_t bounce[kPageSize];
  const uint64_t end = off + len;
  for (uint64_t pos = off; pos < end;) {
    const uint64_t page = pos / kPageSize;
    const uint64_t in_page = pos % kPageSize;
    const uint64_t n = std::min<uint64_t>(kPageSize - in_page, end - pos);
    uint8_t* out = dst + (pos - off);
    const PageEntry* e = f.index.Find(page);
    uint8_t* into = (in_page == 0 && n == kPageSize) ? out : bounce;
    if (e == nullptr) {
      std::memset(out, 0, n);
      pos += n;
      continue;
    }
    Status st = e->kind == PageEntry::kOverflow ? ReadOverflowPage(*e, page, into, promotions)
                : IsSpilled(*e)                 ? ReadSpilledPage(*e, page, into, promotions)
                                                : storage_.Load(*e, into);
    if (!st.ok()) return st;
    if (into == bounce) std::memcpy(out, bounce + in_page, n);
    pos += n;
  }
  return Status::OK();
}

// A large read in parts of kReadPart bytes (page aligned, so each decodes whole pages in
// place), on this thread and idle DecodePool helpers. All of it runs under this thread's
// shared hold of index_mu: Run returns only when every part is done.
Status PageStore::ReadParallel(const File& f, uint64_t off, uint8_t* dst, size_t len,
                               std::vector<Promotion>* promotions) {
  const uint64_t end = off + len;
  const uint64_t first_end = std::min<uint64_t>(end, (off / kReadPart + 1) * kReadPart);
  const size_t n = 1 + (end - first_end + kReadPart - 1) / kReadPart;
  std::vector<Status> status(n);
  std::vector<std::vector<Promotion>> promoted(n);
  decode_pool_.Run(n, [&](size_t i) {
    f.index_mu.AssertReaderHeld();  // By the thread in Run, which waits for this part.
    const uint64_t from = i == 0 ? off : first_end + (i - 1) * kReadPart;
    const uint64_t to = i == 0 ? first_end : std::min<uint64_t>(end, from + kReadPart);
    status[i] = ReadLocked(f, from, dst + (from - off), to - from, &promoted[i]);
  });
  for (size_t i = 0; i < n; ++i) {
    if (!status[i].ok()) return status[i];
    for (Promotion& p : promoted[i]) {
      if (promotions->size() < kMaxPromotePerRead) promotions->push_back(std::move(p));
    }
  }
  return Status::OK();
}

// One pread of the payload, decoded into the reply; kept if the page is to come back (its
// second read, with memory below the low watermark).
Status PageStore::ReadOverflowPage(const PageEntry& e, uint64_t page, uint8_t* into,
                                   std::vector<Promotion>* promotions) {
  const uint8_t before = std::atomic_ref<uint8_t>(const_cast<uint8_t&>(e.flags))
                             .fetch_or(kFlagAccessed, std::memory_order_relaxed);
  auto payload = std::make_unique<uint8_t[]>(e.length);
  Status st = storage_.ReadOverflow(e, payload.get());
  if (st.ok()) st = storage_.DecodeOverflow(e, payload.get(), into);
  if (!st.ok()) return st;
  if ((before & kFlagAccessed) != 0 && promotions->size() < kMaxPromotePerRead &&
      RoomToPromote(1)) {
    promotions->push_back(Promotion{page, e.value, e.stamp, e.length, std::move(payload)});
  }
  return Status::OK();
}

// A page of a spilled cluster: its frame read and decoded (a thread keeps the last one, as
// for clusters in memory); on the page's second read, with room below the low watermark,
// the frame is read into a copy that the page is decoded from and the whole cluster comes
// back with (PromoteCluster): its slots are read once.
Status PageStore::ReadSpilledPage(const PageEntry& e, uint64_t page, uint8_t* into,
                                  std::vector<Promotion>* promotions) {
  const uint8_t before = std::atomic_ref<uint8_t>(const_cast<uint8_t&>(e.flags))
                             .fetch_or(kFlagAccessed, std::memory_order_relaxed);
  const auto* c = reinterpret_cast<const Cluster*>(e.value);
  if ((before & kFlagAccessed) == 0 || !QueueClusterPromotion(*c, *promotions)) {
    return storage_.Load(e, into);
  }
  auto frame = std::make_unique<uint8_t[]>(c->frame_length);
  // Unreadable now: no promotion, and the page as any read gets it (the thread's decoded
  // frame may still hold it).
  if (!storage_.CopyFrame(*c, frame.get()).ok()) return storage_.Load(e, into);
  if (Status st = storage_.LoadFromFrame(e, frame.get(), into); !st.ok()) return st;
  promotions->push_back(
      Promotion{page, 0, 0, c->frame_length, std::move(frame), c, c->id, c->pages});
  return Status::OK();
}

// Whether c is to come back with this read: not queued yet, and memory below the low
// watermark with it and every promotion queued before it.
bool PageStore::QueueClusterPromotion(const Cluster& c,
                                      const std::vector<Promotion>& promotions) const {
  if (promotions.size() >= kMaxPromotePerRead) return false;
  uint64_t pending = 0;  // Pool pages the promotions already queued will take.
  for (const Promotion& p : promotions) {
    if (p.cluster == &c && p.cluster_id == c.id) return false;  // Already coming.
    pending += p.cluster == nullptr ? 1 : Cluster::PartsFor(p.len);
  }
  return RoomToPromote(pending + c.parts);
}

// Brings an overflow page or spilled cluster back into memory, in room taken first. Best
// effort: on any failure the page simply stays in the overflow store.
void PageStore::Promote(FileId id, const Promotion& p) {
  const uint64_t room = (p.cluster == nullptr ? 1 : Cluster::PartsFor(p.len)) * kPageSize;
  if (!ReservePromotion(room)) return;
  if (p.cluster != nullptr) {
    PromoteCluster(id, p);
  } else {
    PromotePage(id, p);
  }
  UnreservePromotion(room);
}

// An overflow page (p.payload: its stored bytes), if its entry still points at p.loc.
void PageStore::PromotePage(FileId id, const Promotion& p) {
  std::shared_ptr<File> f = FindFile(id);
  if (!f) return;
  PageEntry fresh;
  if (!storage_.Store(id, p.page, p.payload.get(), p.len, &fresh).ok()) return;
  PageEntry old;
  {
    WriterLock lock(&f->index_mu);
    PageEntry* e = f->index.FindMutable(p.page);
    // loc alone is not enough: the page may have been overwritten and written back again
    // into the same (reused, LIFO) slot since we read it. The stamp tells the two apart
    // unless it wrapped (16 bits), so the slot's bytes are compared too: one pread under
    // this file's lock, on a path taken once per promoted page.
    if (e != nullptr && e->kind == PageEntry::kOverflow && e->value == p.loc &&
        e->stamp == p.stamp && e->length == p.len && SlotHolds(p.loc, p.payload.get(), p.len)) {
      old = *e;
      *e = fresh;
      AccountSwap(*f, old, fresh);
    }
  }
  if (!old.present()) {
    storage_.Free(fresh);  // Changed meanwhile: the page is someone else's business now.
    return;
  }
  storage_.Free(old);
  storage_.RecordRawPage(id, p.page, fresh);
}

// Stores a spilled cluster's frame (p.payload) in memory again as a new cluster, and points
// every entry of its group still naming the spilled one at it; the spilled one's slots go
// with its last reference. Best effort, as Promote.
void PageStore::PromoteCluster(FileId id, const Promotion& p) {
  const uint64_t n = options_.cluster_pages;
  std::shared_ptr<File> f = FindFile(id);
  if (!f || n < 2) return;
  const uint64_t first = p.page - p.page % n;
  StatusOr<Cluster*> made =
      storage_.StoreCluster(id, first, p.payload.get(), p.len, p.cluster_pages);
  if (!made.ok()) return;
  PageEntry old[Cluster::kMaxPages];
  uint32_t moved;
  {
    WriterLock lock(&f->index_mu);
    moved = RepointCluster(*f, first, n, p.cluster, p.cluster_id, *made, old);
    // Half dead already (pages written while it was spilled): the packer's to repack.
    if (moved != 0 && 2 * moved <= p.cluster_pages) NoteWrite(*f, first, first + n);
  }
  ReleaseRepointed(*made, old, moved);
}

// Checked again as each promotion is stored, with what the ones before it took: a read's
// parts (ReadParallel) each queue theirs against the memory of the read's start.
bool PageStore::RoomToPromote(uint64_t pool_pages) const {
  return MemUsed() + promoting_bytes_.load(std::memory_order_relaxed) + pool_pages * kPageSize <
         reclaimer_.low_wm();
}

// Until the promotion is stored, its room counts as taken: held while it allocates, given
// back once MemUsed shows what it took (or it gave up).
bool PageStore::ReservePromotion(uint64_t bytes) {
  uint64_t taken = promoting_bytes_.load(std::memory_order_relaxed);
  do {
    if (MemUsed() + taken + bytes >= reclaimer_.low_wm()) return false;
  } while (
      !promoting_bytes_.compare_exchange_weak(taken, taken + bytes, std::memory_order_relaxed));
  return true;
}

void PageStore::UnreservePromotion(uint64_t bytes) {
  promoting_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
}

// True if the overflow slot at loc holds exactly payload[0..len).
bool PageStore::SlotHolds(uint64_t loc, const uint8_t* payload, uint32_t len) const {
  uint8_t current[kPageSize];
  return options_.overflow->Read(loc, current, len).ok() && std::memcmp(current, payload, len) == 0;
}

}  // namespace zbudfs

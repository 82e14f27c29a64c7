// PageStore's clusters: packing cold pages (PackFile, PackGroup, the Packer's PackCold) and
// unpacking a cluster reclaim has chosen into overflow pages (EvictCluster). The format and
// life of a cluster are in store/cluster.h; the lock order in store/page_store.h.
//
// Packing a group follows the compressors' protocol (CompressAndSwap): copy the candidates'
// payloads out under the file's shared index_mu, compress the frame and allocate its parts
// with no lock held, then swap every candidate's entry under the exclusive index_mu only if
// none of them changed meanwhile (a zbud handle may be freed and reused for a newer page of
// the same file and page: its payload bytes are compared; a cluster is compared by id), else
// drop the new cluster. It takes no write_mu: a swap of storage changes no byte a reader
// sees, and writers replace whatever entry they find.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>

#include "store/cluster.h"
#include "store/page_store.h"
#include "store/page_store_internal.h"

namespace zbudfs {

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// One page of a group being packed: where it was, and what it held then.
struct Candidate {
  uint64_t page;
  PageEntry entry;
  uint64_t cluster_id;  // entry names a cluster: its id; else 0.
  uint32_t length;      // entry is a zbud page: its payload bytes, kept in payload.
};

// Per-thread buffers of one group: its pages decoded, the zbud payloads copied, the frame.
struct PackBuffers {
  uint8_t pages[Cluster::kMaxPages * kPageSize];
  uint8_t payloads[Cluster::kMaxPages][kPageSize];
  uint8_t frame[Cluster::kMaxPages * kPageSize];
  Candidate candidates[Cluster::kMaxPages];
};

PackBuffers& Buffers() {
  thread_local std::unique_ptr<PackBuffers> b;  // 192 KiB, made on a thread's first pack.
  if (!b) b = std::make_unique<PackBuffers>();
  return *b;
}

// What an allocation of `bytes` costs in zbud: its chunks, and at least half a page (a
// page holds two allocations at most), a whole one for a cluster's full parts.
uint64_t ZbudCost(size_t bytes) {
  if (bytes > Cluster::kMaxPartPayload) return kPageSize;
  return std::max<uint64_t>(ZbudPool::AllocatedBytes(bytes), kPageSize / 2);
}

const Cluster* ClusterOf(const PageEntry& e) { return reinterpret_cast<const Cluster*>(e.value); }

// A cluster with half its slots or more dead is packed again with its group's other pages.
bool HalfDead(const Cluster& c) { return 2 * c.refs.load(std::memory_order_relaxed) <= c.pages; }

}  // namespace

void PageStore::NoteWrite(File& f) {
  if (options_.cluster_pages < 2) return;
  f.last_write_ms.store(NowMs(), std::memory_order_relaxed);
  if (!f.pack_due.load(std::memory_order_relaxed))
    f.pack_due.store(true, std::memory_order_relaxed);
}

uint64_t PageStore::Pack(FileId id) {
  std::shared_ptr<File> f = FindFile(id);
  if (!f || options_.cluster_pages < 2) return 0;
  f->pack_due.store(false, std::memory_order_relaxed);
  return PackFile(id, *f);
}

uint64_t PageStore::PackAll() {
  std::vector<FileId> ids;
  for (size_t i = 0; i < kFileShards; ++i) {
    ReaderLock lock(&file_shards_[i].mu);
    for (const auto& [id, file] : file_shards_[i].files) ids.push_back(id);
  }
  uint64_t packed = 0;
  for (FileId id : ids) packed += Pack(id);
  return packed;
}

// The Packer's round: files with pages published since their last pack and no write for
// pack_after_ms.
void PageStore::PackCold() {
  const int64_t cold_before = NowMs() - static_cast<int64_t>(options_.pack_after_ms);
  std::vector<std::pair<FileId, std::shared_ptr<File>>> due;
  for (size_t i = 0; i < kFileShards; ++i) {
    ReaderLock lock(&file_shards_[i].mu);
    for (const auto& [id, file] : file_shards_[i].files) {
      if (file->pack_due.load(std::memory_order_relaxed) &&
          file->last_write_ms.load(std::memory_order_relaxed) <= cold_before) {
        due.emplace_back(id, file);
      }
    }
  }
  for (auto& [id, file] : due) {
    if (closing_.load(std::memory_order_relaxed)) return;
    file->pack_due.store(false, std::memory_order_relaxed);
    (void)PackFile(id, *file);
  }
}

uint64_t PageStore::PackFile(FileId id, File& f) {
  const uint64_t n = options_.cluster_pages;
  uint64_t packed = 0;
  for (uint64_t page = 0;;) {
    {
      ReaderLock lock(&f.index_mu);
      page = f.index.NextStored(page);  // Zero runs (fallocate) hold nothing to pack.
    }
    if (page == PageIndex::kNone || closing_.load(std::memory_order_relaxed)) return packed;
    const uint64_t first = page - page % n;
    packed += PackGroup(id, f, first);
    if (first > PageIndex::kNone - n) return packed;
    page = first + n;
  }
}

uint64_t PageStore::PackGroup(FileId id, File& f, uint64_t first) {
  PackBuffers& buf = Buffers();
  Candidate* cand = buf.candidates;
  unsigned k = 0;
  uint64_t old_cost = 0;
  {
    ReaderLock lock(&f.index_mu);
    for (uint64_t p = first; p < first + options_.cluster_pages; ++p) {
      const PageEntry* e = f.index.Find(p);
      if (e == nullptr) continue;
      if (e->kind == PageEntry::kZbud) {
        cand[k] = Candidate{p, *e, 0, storage_.CopyPayload(*e, buf.payloads[k])};
      } else if (e->kind == PageEntry::kCluster && HalfDead(*ClusterOf(*e))) {
        if (!storage_.Load(*e, buf.pages + k * kPageSize).ok()) return 0;
        cand[k] = Candidate{p, *e, ClusterOf(*e)->id, 0};
      } else {
        continue;
      }
      old_cost +=
          e->kind == PageEntry::kZbud ? ZbudCost(16 + e->length) : PageStorage::EntryCost(*e);
      ++k;
    }
  }
  if (k < 2) return 0;  // A lone page gains nothing (a lone page of a cluster: later).
  for (unsigned i = 0; i < k; ++i) {
    if (cand[i].entry.kind != PageEntry::kZbud) continue;
    if (!PageCodec::Decompress(buf.payloads[i], cand[i].length, buf.pages + i * kPageSize).ok())
      return 0;  // Corrupt: left for its reader to report.
  }
  const size_t len = PageCodec::CompressRun(buf.pages, k * kPageSize, storage_.zstd_level(),
                                            buf.frame, sizeof(buf.frame));
  if (len == 0) return 0;
  const unsigned parts =
      static_cast<unsigned>((len + Cluster::kMaxPartPayload - 1) / Cluster::kMaxPartPayload);
  const uint64_t cost = (parts - 1) * kPageSize +
                        ZbudCost(16 + len - (parts - 1) * Cluster::kMaxPartPayload) +
                        Cluster::HeapBytes(parts);
  if (cost >= old_cost) return 0;
  const uint64_t limit = reclaimer_.mem_limit();
  if (limit != 0 && MemUsed() + parts * kPageSize > limit &&
      (parts * kPageSize >= limit || !ReclaimTo(limit - parts * kPageSize).ok())) {
    return 0;  // No room for the new parts before the old pages go.
  }
  StatusOr<Cluster*> made = storage_.StoreCluster(id, first, buf.frame, len, k);
  if (!made.ok()) return 0;
  Cluster* c = *made;
  PageEntry old[Cluster::kMaxPages];
  {
    WriterLock lock(&f.index_mu);
    for (unsigned i = 0; i < k; ++i) {
      const PageEntry* e = f.index.Find(cand[i].page);
      const bool same =
          e != nullptr && e->kind == cand[i].entry.kind && e->value == cand[i].entry.value &&
          (e->kind == PageEntry::kZbud
               ? e->stamp == cand[i].entry.stamp && e->length == cand[i].length &&
                     storage_.StillHoldsPayload(*e, buf.payloads[i], cand[i].length)
               : ClusterOf(*e)->id == cand[i].cluster_id && e->length == cand[i].entry.length);
      if (!same) {
        lock.Unlock();
        storage_.DropCluster(c);
        return 0;
      }
    }
    c->refs.store(k, std::memory_order_relaxed);
    AccountDelta delta;
    for (unsigned i = 0; i < k; ++i) {
      PageEntry* e = f.index.FindMutable(cand[i].page);
      old[i] = *e;
      *e = PageEntry();
      e->kind = PageEntry::kCluster;
      e->value = reinterpret_cast<uint64_t>(c);
      e->length = i;
      delta.Add(old[i], -1);
      delta.Add(*e, +1);
    }
    Apply(f, delta);
  }
  for (unsigned i = 0; i < k; ++i) storage_.Free(old[i]);
  return k;
}

// Reclaim chose a part of a cluster: its live pages go to the overflow store one by one,
// compressed as single pages (the overflow store's slots are sized for pages), and their
// entries become ordinary overflow entries; the last one's release frees the cluster, the
// part under reclaim with it. Copy under the shared lock, write with none, repoint under
// the exclusive lock only entries still naming this cluster (by id), as MoveToOverflow does.
Status PageStore::EvictCluster(uint64_t file, uint64_t first, uint16_t pool,
                               ZbudPool::Handle handle) {
  std::shared_ptr<File> f = FindFile(file);
  if (!f) return Status::OK();
  PackBuffers& buf = Buffers();
  Candidate* cand = buf.candidates;
  unsigned k = 0;
  const Cluster* c = nullptr;
  uint64_t id = 0;
  {
    ReaderLock lock(&f->index_mu);
    for (uint64_t p = first; p < first + Cluster::kMaxPages; ++p) {
      const PageEntry* e = f->index.Find(p);
      if (e == nullptr || e->kind != PageEntry::kCluster) continue;
      if (c == nullptr && ClusterOf(*e)->HasPart(pool, handle)) c = ClusterOf(*e);
      if (ClusterOf(*e) == c) cand[k++] = Candidate{p, *e, c->id, 0};
    }
    if (c == nullptr) return Status::OK();  // Freed, or not yet published.
    id = c->id;
    Status st = storage_.DecodeCluster(*c, buf.pages);
    if (!st.ok()) return st;
  }
  PageCodec::Streak streak;
  PageEntry to[Cluster::kMaxPages];
  for (unsigned i = 0; i < k; ++i) {
    const uint8_t* data = buf.pages + cand[i].entry.length * kPageSize;
    size_t n = storage_.Compress(data, &streak, buf.payloads[i]);
    const uint8_t* payload = n == 0 ? data : buf.payloads[i];
    if (n == 0) n = kPageSize;
    StatusOr<uint64_t> loc = storage_.WriteOverflow(payload, static_cast<uint32_t>(n));
    if (!loc.ok()) {
      for (unsigned j = 0; j < i; ++j) storage_.Free(to[j]);
      return loc.status();
    }
    to[i].kind = PageEntry::kOverflow;
    to[i].value = *loc;
    to[i].length = static_cast<uint32_t>(n);
  }
  PageEntry old[Cluster::kMaxPages];
  {
    WriterLock lock(&f->index_mu);
    for (unsigned i = 0; i < k; ++i) {
      PageEntry* e = f->index.FindMutable(cand[i].page);
      if (e == nullptr || e->kind != PageEntry::kCluster || e->value != cand[i].entry.value ||
          ClusterOf(*e)->id != id || e->length != cand[i].entry.length) {
        continue;  // Overwritten, dropped, or repacked meanwhile.
      }
      old[i] = *e;
      to[i].stamp = static_cast<uint16_t>(writeback_stamp_.fetch_add(1, std::memory_order_relaxed));
      *e = to[i];
      AccountSwap(*f, old[i], to[i]);
      written_back_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  for (unsigned i = 0; i < k; ++i) storage_.Free(old[i].present() ? old[i] : to[i]);
  return Status::OK();
}

}  // namespace zbudfs

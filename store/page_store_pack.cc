// PageStore's clusters: packing cold pages (PackFile, PackGroup, the Packer's PackCold),
// packing instead of writing out (PackInstead), spilling a cluster reclaim has chosen to the
// overflow store whole (EvictCluster) and bringing it back on its second read
// (PromoteCluster). The format and life of a cluster are in store/cluster.h; the lock order
// in store/page_store.h.
//
// Packing a group follows the compressors' protocol (CompressAndSwap): copy the candidates'
// payloads out under the file's shared index_mu, compress the frame and allocate its parts
// with no lock held, then swap every candidate's entry under the exclusive index_mu only if
// none of them changed meanwhile (a zbud handle may be freed and reused for a newer page of
// the same file and page: its payload bytes are compared; a cluster is compared by id), else
// drop the new cluster. It takes no write_mu: a swap of storage changes no byte a reader
// sees, and writers replace whatever entry they find.
#include <zstd.h>

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

// The frame of a cluster being spilled by reclaim, apart: PackGroup may reclaim (and so
// spill another cluster) on its own thread while its group is in PackBuffers (64 KiB).
struct SpillBuffers {
  uint8_t frame[Cluster::kMaxPages * kPageSize];
};

template <typename T>
T& ThreadBuffers() {
  thread_local std::unique_ptr<T> b;
  if (!b) b = std::make_unique<T>();
  return *b;
}

// What an allocation of `bytes` costs in zbud: its chunks, and at least half a page (a
// page holds two allocations at most), a whole one for a cluster's full parts.
uint64_t ZbudCost(size_t bytes) {
  if (bytes > Cluster::kMaxPartPayload) return kPageSize;
  return std::max<uint64_t>(ZbudPool::AllocatedBytes(bytes), kPageSize / 2);
}

const Cluster* ClusterOf(const PageEntry& e) { return reinterpret_cast<const Cluster*>(e.value); }

// The faster of two zstd levels (lower is faster; 0 means zstd's default level).
int FasterLevel(int a, int b) {
  auto effective = [](int level) { return level == 0 ? ZSTD_CLEVEL_DEFAULT : level; };
  return effective(a) <= effective(b) ? a : b;
}

// A cluster with half its slots or more dead is packed again with its group's other pages.
bool HalfDead(const Cluster& c) { return 2 * c.refs.load(std::memory_order_relaxed) <= c.pages; }

}  // namespace

// Per-thread buffers of one group being packed: its pages decoded, the zbud payloads
// copied, the frame (192 KiB, made on a thread's first pack).
struct PageStore::PackBuffers {
  uint8_t pages[Cluster::kMaxPages * kPageSize];
  uint8_t payloads[Cluster::kMaxPages][kPageSize];
  uint8_t frame[Cluster::kMaxPages * kPageSize];
  Candidate candidates[Cluster::kMaxPages];
  bool frees_disk;  // A candidate is in a spilled cluster: packing frees its slots.
};

void PageStore::NoteWrite(File& f, uint64_t first, uint64_t last) {
  if (options_.cluster_pages < 2) return;
  f.pack_first = std::min(f.pack_first, first);
  f.pack_last = std::max(f.pack_last, last);
  f.last_write_ms.store(NowMs(), std::memory_order_relaxed);
  if (!f.pack_due.load(std::memory_order_relaxed))
    f.pack_due.store(true, std::memory_order_relaxed);
}

void PageStore::TakePackRange(File& f, uint64_t* first, uint64_t* last) {
  WriterLock lock(&f.index_mu);
  *first = f.pack_first;
  *last = f.pack_last;
  f.pack_first = UINT64_MAX;
  f.pack_last = 0;
  f.pack_due.store(false, std::memory_order_relaxed);
}

// Every group of the file, whatever changed (zbudfsctl pack, tests).
uint64_t PageStore::Pack(FileId id) {
  std::shared_ptr<File> f = FindFile(id);
  if (!f || options_.cluster_pages < 2) return 0;
  uint64_t first, last;
  TakePackRange(*f, &first, &last);
  return PackFile(id, *f, 0, PageIndex::kNone);
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
    uint64_t first, last;
    TakePackRange(*file, &first, &last);
    if (first < last) (void)PackFile(id, *file, first, last);
  }
}

// The groups holding pages [first, last): only those a file's writes touched, so a big
// file appended to is not scanned whole at every pack.
uint64_t PageStore::PackFile(FileId id, File& f, uint64_t first, uint64_t last) {
  const uint64_t n = options_.cluster_pages;
  uint64_t packed = 0;
  for (uint64_t page = first - first % n;;) {
    {
      ReaderLock lock(&f.index_mu);
      page = f.index.NextStored(page);  // Zero runs (fallocate) hold nothing to pack.
    }
    if (page == PageIndex::kNone || page >= last || closing_.load(std::memory_order_relaxed)) {
      return packed;
    }
    const uint64_t first = page - page % n;
    packed += PackGroup(id, f, first);
    if (first > PageIndex::kNone - n) return packed;
    page = first + n;
  }
}

// Copies the group's candidates out under the shared lock: single zbud pages (payloads kept
// for the swap's check) and the pages of clusters half dead (decoded), spilled ones too
// for the packer (their dead slots hold disk until the last page goes; reclaim, which
// wants memory, leaves them). Returns how many, with *old_cost what they take in zbud.
unsigned PageStore::CollectCandidates(File& f, uint64_t first, PackFor who, PackBuffers& buf,
                                      uint64_t* old_cost) {
  unsigned k = 0;
  *old_cost = 0;
  buf.frees_disk = false;
  ReaderLock lock(&f.index_mu);
  for (uint64_t p = first; p < first + options_.cluster_pages; ++p) {
    const PageEntry* e = f.index.Find(p);
    if (e == nullptr) continue;
    Candidate& c = buf.candidates[k];
    if (e->kind == PageEntry::kZbud) {
      c = Candidate{p, *e, 0, storage_.CopyPayload(*e, buf.payloads[k])};
      *old_cost += ZbudCost(16 + e->length);
    } else if (e->kind == PageEntry::kCluster && HalfDead(*ClusterOf(*e)) &&
               (who == PackFor::kPacker || !ClusterOf(*e)->spilled())) {
      if (!storage_.Load(*e, buf.pages + k * kPageSize).ok()) return 0;
      c = Candidate{p, *e, ClusterOf(*e)->id, 0};
      if (ClusterOf(*e)->spilled()) {
        buf.frees_disk = true;
      } else {
        *old_cost += PageStorage::EntryCost(*e);
      }
    } else {
      continue;
    }
    ++k;
  }
  return k;
}

// Swaps the k candidates' entries for fresh[0, k) under the exclusive lock if none of them
// changed since CollectCandidates, and frees what they held; false (nothing done) otherwise.
bool PageStore::SwapCandidates(File& f, const PackBuffers& buf, unsigned k,
                               const PageEntry* fresh) {
  PageEntry old[Cluster::kMaxPages];
  {
    WriterLock lock(&f.index_mu);
    for (unsigned i = 0; i < k; ++i) {
      const Candidate& c = buf.candidates[i];
      const PageEntry* e = f.index.Find(c.page);
      const bool same = e != nullptr && e->kind == c.entry.kind && e->value == c.entry.value &&
                        (e->kind == PageEntry::kZbud
                             ? e->stamp == c.entry.stamp && e->length == c.length &&
                                   storage_.StillHoldsPayload(*e, buf.payloads[i], c.length)
                             : ClusterOf(*e)->id == c.cluster_id && e->length == c.entry.length);
      if (!same) return false;
    }
    AccountDelta delta;
    for (unsigned i = 0; i < k; ++i) {
      PageEntry* e = f.index.FindMutable(buf.candidates[i].page);
      old[i] = *e;
      *e = fresh[i];
      delta.Add(old[i], -1);
      delta.Add(*e, +1);
    }
    Apply(f, delta);
  }
  for (unsigned i = 0; i < k; ++i) storage_.Free(old[i]);
  return true;
}

uint64_t PageStore::PackGroup(FileId id, File& f, uint64_t first, PackFor who) {
  PackBuffers& buf = ThreadBuffers<PackBuffers>();
  uint64_t old_cost;
  const unsigned k = CollectCandidates(f, first, who, buf, &old_cost);
  if (k == 1 && buf.candidates[0].entry.kind == PageEntry::kCluster) {
    return UnpackLastPage(id, f, buf, who);
  }
  if (k < 2) return 0;  // A lone single page gains nothing.
  for (unsigned i = 0; i < k; ++i) {
    const Candidate& c = buf.candidates[i];
    if (c.entry.kind != PageEntry::kZbud) continue;
    if (!PageCodec::Decompress(buf.payloads[i], c.length, buf.pages + i * kPageSize).ok())
      return 0;  // Corrupt: left for its reader to report.
  }
  const int level = who == PackFor::kPacker
                        ? options_.pack_level
                        : FasterLevel(options_.pack_level, storage_.zstd_level());
  const size_t len =
      PageCodec::CompressRun(buf.pages, k * kPageSize, level, buf.frame, sizeof(buf.frame));
  if (len == 0) return 0;
  const unsigned parts = Cluster::PartsFor(len);
  const uint64_t cost = (parts - 1) * kPageSize +
                        ZbudCost(16 + len - (parts - 1) * Cluster::kMaxPartPayload) +
                        Cluster::HeapBytes(parts);
  // Memory decides, unless a spilled cluster's dead slots are to be given back.
  // Pushing pages out to make room pays only if packing then frees more than it takes:
  // bringing a spilled cluster's live pages back waits for room instead.
  const bool saves = cost < old_cost;
  if ((!saves && !buf.frees_disk) || !RoomForPacking(parts, who == PackFor::kPacker && saves)) {
    return 0;
  }
  StatusOr<Cluster*> made = storage_.StoreCluster(id, first, buf.frame, len, k);
  if (!made.ok()) return 0;
  Cluster* c = *made;
  c->refs.store(k, std::memory_order_relaxed);  // Published by the swap's lock, if it swaps.
  PageEntry fresh[Cluster::kMaxPages];
  for (unsigned i = 0; i < k; ++i) {
    fresh[i].kind = PageEntry::kCluster;
    fresh[i].value = reinterpret_cast<uint64_t>(c);
    fresh[i].length = i;
  }
  if (SwapCandidates(f, buf, k, fresh)) return k;
  storage_.DropCluster(c);
  return 0;
}

// The last live page of a cluster keeps all of it: it is stored alone instead.
uint64_t PageStore::UnpackLastPage(FileId id, File& f, PackBuffers& buf, PackFor who) {
  const Candidate& c = buf.candidates[0];
  if (!RoomForPacking(1, who == PackFor::kPacker)) return 0;
  PageCodec::Streak streak;
  size_t n = storage_.Compress(buf.pages, &streak, buf.payloads[0]);
  PageEntry fresh;
  if (!storage_
           .Store(id, c.page, n == 0 ? buf.pages : buf.payloads[0],
                  n == 0 ? PageStorage::kRawLength : n, &fresh)
           .ok()) {
    return 0;
  }
  if (SwapCandidates(f, buf, 1, &fresh)) {
    storage_.RecordRawPage(id, c.page, fresh);
    return 1;
  }
  storage_.Free(fresh);
  return 0;
}

// Whether mem_limit has room for `pages` new pool pages before the old storage goes (after
// pushing pages out to make it, if need be and may_reclaim). Packing never passes mem_limit.
bool PageStore::RoomForPacking(unsigned pages, bool may_reclaim) {
  const uint64_t limit = reclaimer_.mem_limit();
  const uint64_t need = uint64_t{pages} * kPageSize;
  if (limit == 0 || MemUsed() + need <= limit) return true;
  return may_reclaim && need < limit && ReclaimTo(limit - need).ok();
}

// The background reclaimer runs between 90 % and 95 % of mem_limit: it has room for a
// cluster's parts before the group's single pages go, and so packs cold groups in memory
// (no write, and the data stays in memory) before pushing pages to the overflow directory.
bool PageStore::PackInstead(uint64_t file, uint64_t page, const PageEntry& expect) {
  const uint64_t n = options_.cluster_pages;
  if (n < 2) return false;
  std::shared_ptr<File> f = FindFile(file);
  if (!f) return false;
  const uint64_t packed = PackGroup(file, *f, page - page % n, PackFor::kReclaim);
  if (packed == 0) return false;
  reclaim_packed_.fetch_add(packed, std::memory_order_relaxed);
  return !Holds(file, page, expect);
}

// Reclaim chose a part of a cluster: the cluster goes to the overflow store whole, its frame
// as it is (no decoding, no recompression), and every entry still naming it then names the
// spilled copy (store/cluster.h); the last release of the old one frees its parts, the one
// under reclaim with them. Copy under the shared lock, write with none, repoint under the
// exclusive lock, as MoveToOverflow does.
Status PageStore::EvictCluster(uint64_t file, uint64_t first, uint16_t pool,
                               ZbudPool::Handle handle) {
  std::shared_ptr<File> f = FindFile(file);
  if (!f) return Status::OK();
  SpillBuffers& buf = ThreadBuffers<SpillBuffers>();
  const Cluster* c = nullptr;
  uint64_t id;
  uint32_t length;
  unsigned pages;
  {
    ReaderLock lock(&f->index_mu);
    for (uint64_t p = first; p < first + Cluster::kMaxPages && c == nullptr; ++p) {
      const PageEntry* e = f->index.Find(p);
      if (e != nullptr && e->kind == PageEntry::kCluster && ClusterOf(*e)->HasPart(pool, handle)) {
        c = ClusterOf(*e);
      }
    }
    if (c == nullptr) return Status::OK();    // Freed, or not yet published.
    (void)storage_.CopyFrame(*c, buf.frame);  // In memory: cannot fail.
    id = c->id;
    length = c->frame_length;
    pages = c->pages;
  }
  StatusOr<Cluster*> spilled = storage_.SpillCluster(buf.frame, length, pages);
  if (!spilled.ok()) return spilled.status();
  PageEntry old[Cluster::kMaxPages];
  uint32_t moved;
  {
    WriterLock lock(&f->index_mu);
    moved = RepointCluster(*f, first, Cluster::kMaxPages, c, id, *spilled, old);
  }
  written_back_.fetch_add(moved, std::memory_order_relaxed);
  ReleaseRepointed(*spilled, old, moved);
  return Status::OK();
}

// Entries naming `from` are compared by address and id (an address may be reused by a newer
// cluster once `from` is freed), and only dereferenced through an entry that names it.
uint32_t PageStore::RepointCluster(File& f, uint64_t first, uint64_t n, const Cluster* from,
                                   uint64_t from_id, Cluster* to, PageEntry* old) {
  uint32_t moved = 0;
  for (uint64_t p = first; p < first + n; ++p) {
    PageEntry* e = f.index.FindMutable(p);
    if (e == nullptr || e->kind != PageEntry::kCluster ||
        e->value != reinterpret_cast<uint64_t>(from) || ClusterOf(*e)->id != from_id) {
      continue;  // Overwritten, dropped, or repacked meanwhile.
    }
    old[moved] = *e;
    e->value = reinterpret_cast<uint64_t>(to);  // The same frame: the same place in it.
    e->flags &= static_cast<uint8_t>(~store_internal::kFlagAccessed);
    AccountSwap(f, old[moved], *e);
    ++moved;
  }
  to->refs.store(moved, std::memory_order_relaxed);  // Published by the lock's release.
  return moved;
}

void PageStore::ReleaseRepointed(Cluster* to, const PageEntry* old, uint32_t moved) {
  if (moved == 0) storage_.DropCluster(to);
  for (uint32_t i = 0; i < moved; ++i) storage_.Free(old[i]);  // The old cluster's references.
}

}  // namespace zbudfs

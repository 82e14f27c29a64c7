#include "store/page_store.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "store/cluster.h"
#include "store/overflow_store.h"
#include "store/page_arena.h"
#include "store/page_codec.h"
#include "store/page_index.h"
#include "store/page_store_internal.h"
#include "store/zbud_pool.h"

namespace zbudfs {

using store_internal::kBatchPages;

namespace {

PageStorage::Options StorageOptions(const PageStoreOptions& o) {
  PageStorage::Options s;
  s.zstd_level = o.zstd_level;
  s.zstd_fast_level = o.zstd_fast_level;
  s.arena = o.arena;
  s.overflow = o.overflow.get();
  s.report_error = o.report_error;
  s.pools = o.zbud_pools;
  return s;
}

Reclaimer::Options ReclaimerOptions(const PageStoreOptions& o) {
  Reclaimer::Options r;
  r.mem_limit = o.mem_limit;
  r.overflow = o.overflow != nullptr;
  r.background = o.background_reclaim;
  return r;
}

// Per thread, not on the stack: a 4 KiB write would otherwise zero 8 KiB of entries (fresh
// and old) per call. Nothing re-enters RewritePages on the same thread.
PageEntry* FreshEntries() {
  thread_local PageEntry entries[kBatchPages];
  return entries;
}
PageEntry* OldEntries() {
  thread_local PageEntry entries[kBatchPages];
  return entries;
}

}  // namespace

PageStore::PageStore(const PageStoreOptions& options)
    : options_(options),
      storage_(StorageOptions(options), this),
      reclaimer_(ReclaimerOptions(options), &storage_, this),
      decode_pool_(options.decode_threads),
      stager_(options.staging_bytes / kPageSize, options.compress_threads, this),
      packer_(std::chrono::milliseconds(options.cluster_pages > 1 ? options.pack_interval_ms : 0),
              this),
      write_stripes_(std::make_unique<WriteStripe[]>(kWriteStripes)),
      file_shards_(std::make_unique<FileShard[]>(kFileShards)) {
  capacity_bytes_.store(options.capacity_bytes, std::memory_order_relaxed);
  options_.cluster_pages = std::min(options_.cluster_pages, Cluster::kMaxPages);
  for (size_t i = 0; i < kWriteStripes; ++i) write_stripes_[i].mu.SetProfile(&stripe_profile_);
  for (size_t i = 0; i < kFileShards; ++i) file_shards_[i].mu.SetProfile(&shard_profile_);
  reclaimer_.Start();
  stager_.Start();
  packer_.Start();
}

PageStore::~PageStore() {
  closing_.store(true, std::memory_order_relaxed);
  packer_.Stop();
  stager_.Stop();
  reclaimer_.Stop();
  std::vector<FileId> ids;
  for (size_t i = 0; i < kFileShards; ++i) {
    ReaderLock lock(&file_shards_[i].mu);
    for (const auto& [id, file] : file_shards_[i].files) ids.push_back(id);
  }
  for (FileId id : ids) Remove(id);
}

std::shared_ptr<PageStore::File> PageStore::FindFile(FileId file) const {
  FileShard& shard = ShardOf(file);
  ReaderLock lock(&shard.mu);
  auto it = shard.files.find(file);
  return it == shard.files.end() ? nullptr : it->second;
}

std::shared_ptr<PageStore::File> PageStore::FindOrCreateFile(FileId file) {
  if (auto f = FindFile(file)) return f;
  FileShard& shard = ShardOf(file);
  WriterLock lock(&shard.mu);
  auto& slot = shard.files[file];
  if (!slot)
    slot = std::make_shared<File>(write_stripes_[file % kWriteStripes].mu, &index_profile_);
  return slot;
}

// Runs op(file) with f's write_mu held, on a live File (retrying if Remove raced us).
template <typename Op>
Status PageStore::WithFile(FileId id, bool create, Op&& op) {
  for (;;) {
    std::shared_ptr<File> f = create ? FindOrCreateFile(id) : FindFile(id);
    if (!f) return Status::OK();
    MutexLock lock(&f->write_mu);
    if (f->removed) continue;
    Status st = op(*f);
    if (st.code() == ESTALE && f->removed) continue;  // Removed while op waited for memory.
    return st;
  }
}

// ---- Rewriting pages --------------------------------------------------------------------------
//
// RewritePages(first, n, fill) rewrites pages [first, first+n) of a file. For page p,
// fill(p, buf, &status) produces the page's new contents in buf and returns a pointer to them
// (buf or elsewhere), or nullptr to leave the page as it is. Locking: with
// kCallerHoldsWriteMu the caller holds write_mu, released only while waiting for memory
// held by unpublished pages (ESTALE if the file was removed meanwhile); with kLockToPublish
// it holds nothing (fill must not read the file), pages are compressed unlocked and write_mu
// is taken for each publication, which fails with ESTALE if the file was removed meanwhile.
// Compression happens before index_mu is taken; a publication takes it exclusive once; the
// old storage is freed after it is released.

PageStore::Batch::Batch(uint64_t first, uint64_t n)
    : start(first), count(n), fresh(FreshEntries()), old(OldEntries()) {}

template <typename Fill>
Status PageStore::RewritePages(FileId id, File& f, uint64_t first, uint64_t n, Fill&& fill,
                               WriteMuMode mode, Limit limit) {
  for (uint64_t start = first; start < first + n; start += kBatchPages) {
    Batch b(start, std::min(kBatchPages, first + n - start));
    Status st = RewriteBatch(id, f, b, fill, mode, limit);
    if (!st.ok()) return st;
  }
  return Status::OK();
}

template <typename Fill>
Status PageStore::RewriteBatch(FileId id, File& f, Batch& b, Fill& fill, WriteMuMode mode,
                               Limit limit) {
  thread_local uint8_t merge[kPageSize];
  while (b.done < b.count) {
    Status st;  // fill() sets it only when it fails; a retried page starts afresh.
    const uint8_t* data = fill(b.start + b.done, merge, &st);
    if (st.ok()) st = AddPage(id, f, b, data, mode, limit);
    if (!st.ok()) {
      Discard(b, b.published, b.done);  // Empty after a failed publication.
      return st;
    }
  }
  return Publish(id, f, b, b.count, mode);
}

// Encodes the next page of b from data (nullptr: leave it), or, with no room for it,
// publishes what b holds or waits for others' pages (b.done stays: the page is filled again).
Status PageStore::AddPage(FileId id, File& f, Batch& b, const uint8_t* data, WriteMuMode mode,
                          Limit limit) {
  if (data == nullptr) {
    b.touched[b.done++] = false;
    return Status::OK();
  }
  const uint64_t page = b.start + b.done;
  bool passed_limit = false;
  Status st = EncodePage(id, page, data, ReplacedMemory(f, page, limit), &b.streak,
                         &b.fresh[b.done], &passed_limit);
  if (st.code() == EAGAIN) return NoRoom(id, f, b, mode);
  if (!st.ok()) return st;
  b.touched[b.done++] = true;
  // Past mem_limit on the strength of the page it replaces: swap it in and free that one
  // now, before the next allocation (freeing one zbud buddy releases no zbud page while the
  // other lives, so a whole batch admitted this way could stay over).
  if (passed_limit) return Publish(id, f, b, b.done, mode);
  return Status::OK();
}

// The memory the current entry of page holds (0: hole, same, overflow), read now: reclaim
// may have moved the old page out since the batch began. kAdmitShrink: as if it replaced any
// amount, so that the new page is always admitted.
PageStore::Replaced PageStore::ReplacedMemory(File& f, uint64_t page, Limit limit) {
  if (limit == Limit::kAdmitShrink) return Replaced{UINT64_MAX, -1};
  ReaderLock lock(&f.index_mu);
  const PageEntry* e = f.index.Find(page);
  if (e == nullptr || e->kind == PageEntry::kOverflow) return Replaced{};
  // A cluster's memory goes only with its last page; a slot's share alone frees nothing.
  if (e->kind == PageEntry::kCluster) {
    const auto* c = reinterpret_cast<const Cluster*>(e->value);
    if (c->refs.load(std::memory_order_relaxed) != 1) return Replaced{};
    return Replaced{(c->spilled() ? 0 : c->stored_bytes) + Cluster::HeapBytes(c->parts), -1};
  }
  // Its zbud header is needed again when it is freed, after compression: load it now.
  if (e->kind == PageEntry::kZbud) {
    ZbudPool::Prefetch(e->value);
    return Replaced{PageStorage::EntryCost(*e), e->stamp};
  }
  return Replaced{PageStorage::EntryCost(*e), -1};
}

// New storage for a page: staged as it is while memory and the staging budget have room (a
// compressor takes it later), else compressed here. A page that takes no more memory than
// the one it replaces (freed right after the swap) may pass mem_limit for that moment
// (*passed_limit): truncate, punch and shrinking overwrites never fail for memory.
Status PageStore::EncodePage(FileId id, uint64_t page, const uint8_t* data, Replaced replaced,
                             PageCodec::Streak* streak, PageEntry* out, bool* passed_limit) {
  *passed_limit = false;
  if (storage_.EncodeSame(data, out)) return Status::OK();
  Status room = reclaimer_.MakeRoom();
  const bool stage = room.ok() && stager_.TryReserve();
  const uint8_t* payload = data;
  size_t length = PageStorage::kRawLength;
  thread_local uint8_t scratch[kPageSize];
  if (!stage) {
    const size_t n = storage_.Compress(data, streak, scratch);
    if (n != 0) payload = scratch, length = n;
  }
  // Staged pages will shrink once compressed: wait for them (NoRoom) before giving up.
  auto refuse = [&] {
    return room.code() == ENOSPC && stager_.staged() > 0 ? Status::Error(EAGAIN) : room;
  };
  if (!room.ok() && PageStorage::StoredCost(length) > replaced.bytes) return refuse();
  *passed_limit = !room.ok();
  Status st = storage_.Store(id, page, payload, length, out, *passed_limit ? replaced.pool : -1);
  if (!st.ok()) {
    if (stage) stager_.Release(1);
    return st;
  }
  if (*passed_limit && !RewriteSlack(replaced)) {  // It took a new page past the slack.
    storage_.Free(*out);
    *out = PageEntry();
    return refuse();
  }
  if (stage) out->flags |= PageEntry::kFlagStaged;
  reclaimer_.BeginInFlight(1);  // Until EndInFlight; a staged page until it is compressed.
  return st;
}

// Whether a rewrite that takes no more than it replaces, its new storage allocated, may
// keep it past mem_limit: always for truncate and punch (they must not fail), else while
// memory is within a page a zbud pool of it. Such a rewrite allocates in its old page's
// pool, where the hole the previous one left takes it without a new page; one that needs a
// new page past that bound gets ENOSPC until something is deleted.
bool PageStore::RewriteSlack(const Replaced& replaced) const {
  if (replaced.bytes == UINT64_MAX) return true;
  const uint64_t limit = reclaimer_.mem_limit();
  return limit == 0 || MemUsed() <= limit + storage_.pools() * kPageSize;
}

// Nothing evictable: the memory is in pages not yet published, ours or other writers'.
// Publish ours (reclaim may then take them), or wait for theirs; nothing of ours is pending
// then, and fill() runs again for this page after the wait.
Status PageStore::NoRoom(FileId id, File& f, Batch& b, WriteMuMode mode) {
  if (b.done > b.published) return Publish(id, f, b, b.done, mode);
  return WaitForRoom(f, mode, &b.idle_waits);
}

// Waits with write_mu released: the pages waited for may be those of a lock-free writer of
// this very file, which needs write_mu to publish them. Whether the caller holds write_mu
// depends on mode, a conditional unlock the analysis cannot follow: hence unchecked.
Status PageStore::WaitForRoom(File& f, WriteMuMode mode,
                              int* idle_waits) NO_THREAD_SAFETY_ANALYSIS {
  if (mode == WriteMuMode::kLockToPublish) return reclaimer_.WaitForRoom(idle_waits);
  f.write_mu.Unlock();
  Status st = reclaimer_.WaitForRoom(idle_waits);
  f.write_mu.Lock();
  if (f.removed) return Status::Error(ESTALE, "file removed during the write");
  return st;
}

// Publishes pages [published, to) of b, taking write_mu for kLockToPublish; b.published
// becomes `to` whatever happens (on failure those pages are freed).
Status PageStore::Publish(FileId id, File& f, Batch& b, uint64_t to, WriteMuMode mode) {
  const uint64_t from = b.published;
  b.published = to;
  if (mode == WriteMuMode::kCallerHoldsWriteMu) {
    f.write_mu.AssertHeld();
    return SwapIn(id, f, b, from, to);
  }
  MutexLock lock(&f.write_mu);
  if (f.removed) {
    Discard(b, from, to);
    return Status::Error(ESTALE, "file removed during the write");
  }
  return SwapIn(id, f, b, from, to);
}

// Puts pages [from, to) of b into the index (one exclusive section) and frees what they
// replace; on ENOSPC past capacity frees them instead.
Status PageStore::SwapIn(FileId id, File& f, Batch& b, uint64_t from, uint64_t to) {
  {
    WriterLock lock(&f.index_mu);
    uint64_t holes = 0;  // Pages that add to what the store holds (capacity).
    for (uint64_t i = from; i < to; ++i) {
      holes += b.touched[i] && f.index.Find(b.start + i) == nullptr;
    }
    if (!ReservePages(holes)) {
      lock.Unlock();
      Discard(b, from, to);
      return Status::Error(ENOSPC, "file system full (size)");
    }
    AccountDelta delta;
    for (uint64_t i = from; i < to; ++i) {
      if (!b.touched[i]) continue;
      b.old[i] = f.index.Set(b.start + i, b.fresh[i]);
      delta.Add(b.fresh[i], +1);
      if (b.old[i].present()) delta.Add(b.old[i], -1);
    }
    Apply(f, delta);
    NoteWrite(f, b.start + from, b.start + to);
  }
  for (uint64_t i = from; i < to; ++i) {
    if (b.touched[i] && b.old[i].present()) storage_.Free(b.old[i]);
  }
  storage_.RecordRawPages(id, b.start + from, b.fresh + from, b.touched + from, to - from);
  QueueStaged(id, b, from, to);
  EndInFlight(b, from, to, /*published=*/true);  // Reclaim may take them now.
  return Status::OK();
}

// Hands the staged pages among [from, to) of b, now in the index, to the compressors.
void PageStore::QueueStaged(FileId id, const Batch& b, uint64_t from, uint64_t to) {
  thread_local std::vector<Stager::Record> records;
  records.clear();
  for (uint64_t i = from; i < to; ++i) {
    if (b.touched[i] && b.fresh[i].staged()) {
      records.push_back(Stager::Record{id, b.start + i, b.fresh[i].value});
    }
  }
  stager_.Enqueue(records.data(), records.size());
}

void PageStore::Discard(Batch& b, uint64_t from, uint64_t to) {
  for (uint64_t i = from; i < to; ++i) {
    if (b.touched[i]) storage_.Free(b.fresh[i]);
  }
  EndInFlight(b, from, to, /*published=*/false);
}

// A staged page stays in flight once published (reclaim cannot take it: a compressor will),
// and its budget stays taken, until CompressStaged is done with it.
void PageStore::EndInFlight(Batch& b, uint64_t from, uint64_t to, bool published) {
  uint64_t pages = 0, staged = 0;
  for (uint64_t i = from; i < to; ++i) {
    if (!b.touched[i]) continue;
    const PageEntry& e = b.fresh[i];
    staged += e.staged();
    pages +=
        e.kind == PageEntry::kZbud || (e.kind == PageEntry::kRaw && !(published && e.staged()));
  }
  if (!published) stager_.Release(staged);
  reclaimer_.EndInFlight(pages);
}

// ---- Other mutations --------------------------------------------------------------------------

// Reads page p of f into buf (zeros for a hole). Takes index_mu shared.
Status PageStore::LoadPage(const File& f, uint64_t page, uint8_t* buf) const {
  ReaderLock lock(&f.index_mu);
  const PageEntry* e = f.index.Find(page);
  if (e == nullptr) {
    std::memset(buf, 0, kPageSize);
    return Status::OK();
  }
  return storage_.Load(*e, buf);
}

// ---- API ----------------------------------------------------------------------------------------

Status PageStore::Write(FileId id, uint64_t off, const void* buf, size_t len) {
  if (len == 0) return Status::OK();
  if (off >= kMaxFileSize || len > kMaxFileSize - off) return Status::Error(EFBIG);
  const auto* src = static_cast<const uint8_t*>(buf);
  const uint64_t end = off + len;
  const uint64_t first = off / kPageSize;
  const uint64_t last = (end - 1) / kPageSize;
  if (off % kPageSize == 0 && len % kPageSize == 0 && len / kPageSize <= kBatchPages) {
    // Whole pages, one batch (every writeback request): compressed with no lock of the
    // file, so that writers of one file compress in parallel; published under write_mu.
    for (;;) {
      std::shared_ptr<File> f = FindOrCreateFile(id);
      Status st = RewritePages(
          id, *f, first, len / kPageSize,
          [&](uint64_t page, uint8_t*, Status*) { return src + (page * kPageSize - off); },
          WriteMuMode::kLockToPublish);
      if (st.code() != ESTALE) return st;  // Else Remove raced us: write to the new file.
    }
  }
  return WithFile(id, /*create=*/true, [&](File& f) {
    return RewritePages(id, f, first, last - first + 1,
                        [&](uint64_t page, uint8_t* merge, Status* st) -> const uint8_t* {
                          const uint64_t pstart = page * kPageSize;
                          if (pstart >= off && pstart + kPageSize <= end)
                            return src + (pstart - off);
                          *st = LoadPage(f, page, merge);
                          const uint64_t from = std::max(pstart, off);
                          const uint64_t to = std::min(pstart + kPageSize, end);
                          std::memcpy(merge + (from - pstart), src + (from - off), to - from);
                          return merge;
                        });
  });
}

Status PageStore::Truncate(FileId id, uint64_t size) {
  if (size > kMaxFileSize) return Status::Error(EFBIG);
  return WithFile(id, /*create=*/false, [&](File& f) -> Status {
    f.write_mu.AssertHeld();  // WithFile's.
    // A truncate that fails changes nothing: the tail page is read (EIO if it cannot be)
    // before any whole page goes. Whole pages first: what they free makes room for the
    // tail page's new form.
    thread_local uint8_t tail[kPageSize];
    if (size % kPageSize != 0) {
      if (Status st = LoadPage(f, size / kPageSize, tail); !st.ok()) return st;
    }
    DropPages(f, (size + kPageSize - 1) / kPageSize, PageIndex::kNone);
    if (size % kPageSize == 0) return Status::OK();
    return ZeroInPage(id, f, size / kPageSize, size % kPageSize, kPageSize, tail);
  });
}

// Zeroes bytes [from, to) of page p if p is stored (a hole already reads as zeros), for
// truncate and punch: the page may pass mem_limit (a page in the overflow directory or a
// same-filled one holds no memory, so its new form adds some), at most one page per edge
// of the range, while the operation frees the rest. loaded: the page's bytes if the caller
// has read them already (under the write_mu it still holds, so they are current).
Status PageStore::ZeroInPage(FileId id, File& f, uint64_t page, uint64_t from, uint64_t to,
                             const uint8_t* loaded) {
  {
    ReaderLock lock(&f.index_mu);
    if (f.index.Find(page) == nullptr) return Status::OK();
  }
  return RewritePages(
      id, f, page, 1,
      [&](uint64_t p, uint8_t* merge, Status* st) {
        if (loaded != nullptr) {
          std::memcpy(merge, loaded, kPageSize);
        } else {
          *st = LoadPage(f, p, merge);
        }
        std::memset(merge + from, 0, to - from);
        return merge;
      },
      WriteMuMode::kCallerHoldsWriteMu, Limit::kAdmitShrink);
}

// Calls whole(first, last) for the whole pages of [off, off+len), then part(page, from, to)
// for the partial pages at its edges (whole pages first: punching frees them before the
// edges are rewritten).
template <typename Whole, typename Part>
Status PageStore::SplitRange(uint64_t off, uint64_t len, Whole&& whole, Part&& part) {
  if (len == 0) return Status::OK();
  if (off >= kMaxFileSize) return Status::OK();
  const uint64_t end = len > kMaxFileSize - off ? kMaxFileSize : off + len;
  const uint64_t first_whole = (off + kPageSize - 1) / kPageSize;
  const uint64_t last_whole = end / kPageSize;  // Exclusive.
  const uint64_t lead = off / kPageSize;        // The leading partial page, if off % kPageSize.
  if (off % kPageSize != 0 && lead == (end - 1) / kPageSize) {
    return part(lead, off % kPageSize, end - lead * kPageSize);  // Within one page.
  }
  if (first_whole < last_whole) {
    Status st = whole(first_whole, last_whole);
    if (!st.ok()) return st;
  }
  if (off % kPageSize != 0) {
    Status st = part(lead, off % kPageSize, kPageSize);
    if (!st.ok()) return st;
  }
  if (end % kPageSize != 0) return part(end / kPageSize, 0, end % kPageSize);
  return Status::OK();
}

Status PageStore::PunchHole(FileId id, uint64_t off, uint64_t len) {
  return WithFile(id, /*create=*/false, [&](File& f) {
    return SplitRange(
        off, len,
        [&](uint64_t first, uint64_t last) {
          f.write_mu.AssertHeld();  // WithFile's.
          DropPages(f, first, last);
          return Status::OK();
        },
        [&](uint64_t page, uint64_t from, uint64_t to) {
          f.write_mu.AssertHeld();
          return ZeroInPage(id, f, page, from, to);
        });
  });
}

// Whole pages of a zero range become one zero run, as Allocate makes them: a zeroed 1 TiB
// costs a few bytes of index, not an entry a page. The holes' capacity is reserved first (all
// or nothing); the stored pages' share is kept through the drop, so no other writer can take
// it before the run refills it. write_mu is held.
Status PageStore::ZeroWholePages(File& f, uint64_t first, uint64_t last) {
  uint64_t present;
  {
    ReaderLock lock(&f.index_mu);
    present = f.index.CountPresent(first, last);
  }
  if (!ReservePages((last - first) - present)) {
    return Status::Error(ENOSPC, "file system full (size)");
  }
  DropPages(f, first, last, /*keep_reserved=*/true);
  WriterLock lock(&f.index_mu);
  AccountDelta delta;
  delta.same = static_cast<int64_t>(f.index.FillZeroRuns(first, last));
  Apply(f, delta);
  return Status::OK();
}

Status PageStore::ZeroRange(FileId id, uint64_t off, uint64_t len) {
  return WithFile(id, /*create=*/true, [&](File& f) {
    return SplitRange(
        off, len,
        [&](uint64_t first, uint64_t last) {
          f.write_mu.AssertHeld();  // WithFile's.
          return ZeroWholePages(f, first, last);
        },
        [&](uint64_t page, uint64_t from, uint64_t to) {
          return RewritePages(id, f, page, 1, [&](uint64_t p, uint8_t* merge, Status* st) {
            *st = LoadPage(f, p, merge);
            std::memset(merge + from, 0, to - from);
            return merge;
          });
        });
  });
}

// Holes become zero runs of the index, one extent per stretch of holes, not an entry each:
// a 1 TiB fallocate costs a few bytes. All or nothing: ENOSPC reserves nothing.
Status PageStore::Allocate(FileId id, uint64_t off, uint64_t len) {
  if (len == 0) return Status::OK();
  if (off >= kMaxFileSize || len > kMaxFileSize - off) return Status::Error(EFBIG);
  const uint64_t first = off / kPageSize;
  const uint64_t last = (off + len - 1) / kPageSize + 1;
  return WithFile(id, /*create=*/true, [&](File& f) -> Status {
    WriterLock lock(&f.index_mu);
    const uint64_t holes = (last - first) - f.index.CountPresent(first, last);
    if (!ReservePages(holes)) return Status::Error(ENOSPC, "file system full (size)");
    AccountDelta delta;
    delta.same = static_cast<int64_t>(f.index.FillZeroRuns(first, last));
    Apply(f, delta);
    return Status::OK();
  });
}

uint64_t PageStore::SeekData(FileId id, uint64_t off, bool want_data) const {
  std::shared_ptr<File> f = FindFile(id);
  if (!f) return want_data ? UINT64_MAX : off;
  ReaderLock lock(&f->index_mu);
  const uint64_t page = off / kPageSize;
  const uint64_t found = want_data ? f->index.NextPresent(page) : f->index.NextHole(page);
  if (found == PageIndex::kNone) return UINT64_MAX;
  return std::max(off, found * kPageSize);
}

}  // namespace zbudfs

// Lock order (see page_store.h): files_mu_ -> File::write_mu_ -> File::index_mu_ ->
// ZbudPool::mu_ -> PageArena::mu_. files_mu_ is never held across the others.
#include "store/page_store.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "store/overflow_store.h"
#include "store/page_arena.h"
#include "store/page_codec.h"
#include "store/page_index.h"
#include "store/page_store_internal.h"
#include "store/zbud_pool.h"

namespace zbudfs {

using store_internal::kBatchPages;
using store_internal::kDropBatch;
using store_internal::kFlagAccessed;
using store_internal::kMaxPromotePerRead;

PageStore::PageStore(const PageStoreOptions& options)
    : options_(options),
      write_stripes_(std::make_unique<WriteStripe[]>(kWriteStripes)),
      file_shards_(std::make_unique<FileShard[]>(kFileShards)) {
  if (options_.arena == nullptr) {
    owned_arena_ = std::make_unique<PageArena>();
    arena_ = owned_arena_.get();
  } else {
    arena_ = options_.arena;
  }
  pool_ = std::make_unique<ZbudPool>(
      arena_, [this](ZbudPool&, ZbudPool::Handle handle) { return EvictZbud(handle); });
  // Watermarks: background reclaim starts above 95 % of mem_limit and stops at 90 %.
  high_wm_ = options_.mem_limit - options_.mem_limit / 20;
  low_wm_ = options_.mem_limit - options_.mem_limit / 10;
  if (options_.mem_limit != 0 && options_.overflow && options_.background_reclaim) {
    reclaimer_ = std::thread([this] { ReclaimerLoop(); });
  }
}

PageStore::~PageStore() {
  if (reclaimer_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(bg_mu_);
      bg_stop_ = true;
    }
    bg_cv_.notify_all();
    reclaimer_.join();
  }
  std::vector<FileId> ids;
  for (size_t i = 0; i < kFileShards; ++i) {
    std::shared_lock<std::shared_mutex> lock(file_shards_[i].mu);
    for (const auto& [id, file] : file_shards_[i].files) ids.push_back(id);
  }
  for (FileId id : ids) Remove(id);
}

std::shared_ptr<PageStore::File> PageStore::FindFile(FileId file) const {
  FileShard& shard = ShardOf(file);
  std::shared_lock<std::shared_mutex> lock(shard.mu);
  auto it = shard.files.find(file);
  return it == shard.files.end() ? nullptr : it->second;
}

std::shared_ptr<PageStore::File> PageStore::FindOrCreateFile(FileId file) {
  if (auto f = FindFile(file)) return f;
  FileShard& shard = ShardOf(file);
  std::unique_lock<std::shared_mutex> lock(shard.mu);
  auto& slot = shard.files[file];
  if (!slot) slot = std::make_shared<File>(write_stripes_[file % kWriteStripes].mu);
  return slot;
}

// ---- Mutation core ----------------------------------------------------------------------------

// Rewrites pages [first, first+n) of f. For page p, fill(p, buf) must produce the page's new
// contents in buf and return a pointer to them (buf or elsewhere), or nullptr to leave the
// page as it is. Locking: with kCallerHoldsWriteMu the caller holds write_mu, released
// only while waiting for memory held by unpublished pages (ESTALE if the file was removed
// meanwhile); with kLockToPublish it holds nothing (fill must not read the file), pages are
// compressed unlocked and write_mu is taken for each publication, which fails with ESTALE if
// the file was removed meanwhile. Compression happens before index_mu is taken; the swap takes it
// exclusive once; the old storage is freed after it is released.
template <typename Fill>
Status PageStore::RewritePages(FileId id, File& f, uint64_t first, uint64_t n, Fill&& fill,
                               WriteMuMode mode, Limit limit) {
  // Per thread, not on the stack: a 4 KiB write would otherwise zero 8 KiB of entries
  // (fresh and old) per call. Nothing here re-enters RewritePages on the same thread.
  thread_local uint8_t merge[kPageSize];
  thread_local PageEntry fresh[kBatchPages];
  thread_local PageEntry old[kBatchPages];
  bool touched[kBatchPages];
  for (uint64_t start = first; start < first + n; start += kBatchPages) {
    const uint64_t count = std::min(kBatchPages, first + n - start);
    // Frees pages [from, to) of the batch, encoded but not to be published.
    auto discard = [&](uint64_t from, uint64_t to) {
      for (uint64_t i = from; i < to; ++i) {
        if (touched[i]) FreeEntry(fresh[i]);
      }
      EndInFlight(fresh + from, touched + from, to - from);
    };
    // Puts pages [from, to) of the batch into the index (one exclusive section) and frees
    // what they replace; on ENOSPC past capacity (or ESTALE) frees them instead.
    auto publish = [&](uint64_t from, uint64_t to) -> Status {
      std::unique_lock<std::mutex> write_lock;
      if (mode == WriteMuMode::kLockToPublish) {
        write_lock = std::unique_lock<std::mutex>(f.write_mu);
        if (f.removed) {
          discard(from, to);
          return Status::Error(ESTALE, "file removed during the write");
        }
      }
      {
        std::unique_lock<std::shared_mutex> lock(f.index_mu);
        uint64_t holes = 0;  // Pages that add to what the store holds (capacity).
        for (uint64_t i = from; i < to; ++i) {
          holes += touched[i] && f.index.Find(start + i) == nullptr;
        }
        if (!ReservePages(holes)) {
          lock.unlock();
          discard(from, to);
          return Status::Error(ENOSPC, "file system full (size)");
        }
        AccountDelta delta;
        for (uint64_t i = from; i < to; ++i) {
          if (!touched[i]) continue;
          old[i] = f.index.Set(start + i, fresh[i]);
          delta.Add(fresh[i], +1);
          if (old[i].present()) delta.Add(old[i], -1);
        }
        Apply(f, delta);
      }
      for (uint64_t i = from; i < to; ++i) {
        if (touched[i] && old[i].present()) FreeEntry(old[i]);
      }
      RecordRawPages(id, start + from, fresh + from, touched + from, to - from);
      EndInFlight(fresh + from, touched + from, to - from);  // Reclaim may take them now.
      return Status::OK();
    };
    Status st;
    uint64_t published = 0;    // Pages [0, published) of the batch are in the index.
    uint64_t done = 0;         // Pages [published, done) are encoded, not yet published.
    PageCodec::Streak streak;  // Neighbouring pages compress alike.
    int idle_waits = 0;        // WaitForRoom's rounds with nothing in flight, in a row.
    while (done < count) {
      const uint64_t page = start + done;
      st = Status::OK();  // fill() sets it only when it fails; a retried page starts afresh.
      const uint8_t* data = fill(page, merge, &st);
      if (!st.ok()) break;
      touched[done] = data != nullptr;
      bool passed_limit = false;
      if (data != nullptr) {
        // The memory the current entry holds (0: hole, same, overflow), read now: reclaim
        // may have moved the old page out since the batch began.
        // (kAdmitShrink: as if it replaced any amount, so that it is always admitted.)
        uint64_t replaced_mem = limit == Limit::kAdmitShrink ? UINT64_MAX : 0;
        if (limit == Limit::kEnforce) {
          std::shared_lock<std::shared_mutex> lock(f.index_mu);
          const PageEntry* e = f.index.Find(page);
          if (e != nullptr && e->kind != PageEntry::kOverflow) replaced_mem = EntryCost(*e);
          // Its zbud header is needed again when it is freed, after compression: load it now.
          if (e != nullptr && e->kind == PageEntry::kZbud) ZbudPool::Prefetch(e->value);
        }
        st = EncodePage(id, page, data, replaced_mem, &streak, &fresh[done], &passed_limit);
      }
      if (st.code() == EAGAIN) {
        // Nothing evictable: the memory is in pages not yet published, ours or other
        // writers'. Publish ours (reclaim may then take them), or wait for theirs.
        if (done > published) {
          st = publish(published, done);
          published = done;
          if (!st.ok()) return st;
          continue;
        }
        // Wait with write_mu released: the pages waited for may be those of a lock-free
        // writer of this very file, which needs write_mu to publish them. Nothing of ours is
        // pending, and fill() runs again for this page after the wait.
        if (mode == WriteMuMode::kCallerHoldsWriteMu) f.write_mu.unlock();
        st = WaitForRoom(&idle_waits);
        if (mode == WriteMuMode::kCallerHoldsWriteMu) {
          f.write_mu.lock();
          if (f.removed) return Status::Error(ESTALE, "file removed during the write");
        }
        if (!st.ok()) break;  // Nothing pending: nothing to discard.
        continue;
      }
      if (!st.ok()) break;
      ++done;
      if (passed_limit) {
        // Past mem_limit on the strength of the page it replaces: swap it in and free that
        // one now, before the next allocation (freeing one zbud buddy releases no zbud page
        // while the other lives, so a whole batch admitted this way could stay over).
        st = publish(published, done);
        published = done;
        if (!st.ok()) return st;
      }
    }
    if (!st.ok()) {
      discard(published, done);
      return st;
    }
    st = publish(published, count);
    if (!st.ok()) return st;
  }
  return Status::OK();
}

// Reads page p of f into buf (zeros for a hole). Takes index_mu shared.
Status PageStore::LoadPage(const File& f, uint64_t page, uint8_t* buf) const {
  std::shared_lock<std::shared_mutex> lock(f.index_mu);
  const PageEntry* e = f.index.Find(page);
  if (e == nullptr) {
    std::memset(buf, 0, kPageSize);
    return Status::OK();
  }
  return DecodePage(*e, buf);
}

// Erases pages [first, last) of f, freeing their storage, write_mu held. In batches of
// about kDropBatch entries, so that no list of a whole file is built: each batch leaves the
// index in one exclusive section (which charges the smaller index at once), its storage is
// freed with the lock dropped (the arena's madvise coalesced over the whole drop), and only
// then do the statistics lose it, so orig_data_size never falls ahead of the memory by more
// than a batch. Zero runs (fallocate) go whole: they hold no memory.
void PageStore::DropPages(File& f, uint64_t first, uint64_t last, bool keep_reserved) {
  thread_local std::vector<PageEntry> gone;  // One batch; reused.
  PageArena::DeferredFree deferred(arena_);
  for (uint64_t from = first; from < last;) {
    gone.clear();
    AccountDelta delta;
    uint64_t zero_pages = 0;
    {
      std::unique_lock<std::shared_mutex> lock(f.index_mu);
      const uint64_t to = f.index.BatchEnd(from, last, kDropBatch);
      f.index.EraseRange(
          from, to,
          [&](uint64_t, const PageEntry& e) {
            delta.Add(e, -1);
            gone.push_back(e);
          },
          [&](uint64_t a, uint64_t b) { zero_pages += b - a; });
      ChargeIndex(f);
      const uint64_t next = f.index.NextPresent(to);  // Skips the empty stretch, if any.
      from = next >= last ? last : next;
    }
    for (const PageEntry& e : gone) FreeEntry(e);
    delta.same -= static_cast<int64_t>(zero_pages);
    AddCounters(f, delta);
    if (!keep_reserved) UnreservePages(gone.size() + zero_pages);
    dropped_pages_.fetch_add(gone.size() + 1, std::memory_order_relaxed);
  }
}

// Runs op(file) with f's write_mu held, on a live File (retrying if Remove raced us).
template <typename Op>
Status PageStore::WithFile(FileId id, bool create, Op&& op) {
  for (;;) {
    std::shared_ptr<File> f = create ? FindOrCreateFile(id) : FindFile(id);
    if (!f) return Status::OK();
    std::lock_guard<std::mutex> lock(f->write_mu);
    if (f->removed) continue;
    Status st = op(*f);
    if (st.code() == ESTALE && f->removed) continue;  // Removed while op waited for memory.
    return st;
  }
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
  struct Promotion {
    uint64_t page;
    uint64_t loc;
    uint16_t stamp;
    uint32_t len;
    std::unique_ptr<uint8_t[]> payload;
  };
  std::vector<Promotion> promotions;
  thread_local uint8_t bounce[kPageSize];
  {
    std::shared_lock<std::shared_mutex> lock(f->index_mu);
    uint64_t pos = off;
    const uint64_t end = off + len;
    while (pos < end) {
      const uint64_t page = pos / kPageSize;
      const uint64_t in_page = pos % kPageSize;
      const uint64_t n = std::min<uint64_t>(kPageSize - in_page, end - pos);
      uint8_t* out = dst + (pos - off);
      const PageEntry* e = f->index.Find(page);
      uint8_t* into = (in_page == 0 && n == kPageSize) ? out : bounce;
      if (e == nullptr) {
        std::memset(out, 0, n);
        pos += n;
        continue;
      }
      if (e->kind == PageEntry::kOverflow) {
        // One pread of the payload, decompressed into the reply; kept if it is to come back.
        const uint8_t before = std::atomic_ref<uint8_t>(const_cast<uint8_t&>(e->flags))
                                   .fetch_or(kFlagAccessed, std::memory_order_relaxed);
        auto payload = std::make_unique<uint8_t[]>(e->length);
        Status st = ReadOverflow(*e, payload.get());
        if (st.ok()) {
          if (e->length == kPageSize) {
            std::memcpy(into, payload.get(), kPageSize);
          } else {
            st = PageCodec::Decompress(payload.get(), e->length, into);
            if (!st.ok()) Report(StoreErrorKind::kCheckFailed, st);
          }
        }
        if (!st.ok()) return st;
        if ((before & kFlagAccessed) != 0 && promotions.size() < kMaxPromotePerRead &&
            MemUsed() + kPageSize < low_wm_) {
          promotions.push_back(Promotion{page, e->value, e->stamp, e->length, std::move(payload)});
        }
      } else {
        Status st = DecodePage(*e, into);
        if (!st.ok()) return st;
      }
      if (into == bounce) std::memcpy(out, bounce + in_page, n);
      pos += n;
    }
  }
  for (const Promotion& p : promotions) {
    Promote(id, p.page, p.loc, p.stamp, p.payload.get(), p.len);
  }
  return Status::OK();
}

Status PageStore::Truncate(FileId id, uint64_t size) {
  if (size > kMaxFileSize) return Status::Error(EFBIG);
  return WithFile(id, /*create=*/false, [&](File& f) -> Status {
    // Whole pages first: what they free makes room for the tail page's new form.
    DropPages(f, (size + kPageSize - 1) / kPageSize, PageIndex::kNone);
    if (size % kPageSize == 0) return Status::OK();
    return ZeroInPage(id, f, size / kPageSize, size % kPageSize, kPageSize);
  });
}

// Zeroes bytes [from, to) of page p if p is stored (a hole already reads as zeros), for
// truncate and punch: the page may pass mem_limit (a page in the overflow directory or a
// same-filled one holds no memory, so its new form adds some), at most one page per edge
// of the range, while the operation frees the rest.
Status PageStore::ZeroInPage(FileId id, File& f, uint64_t page, uint64_t from, uint64_t to) {
  {
    std::shared_lock<std::shared_mutex> lock(f.index_mu);
    if (f.index.Find(page) == nullptr) return Status::OK();
  }
  return RewritePages(
      id, f, page, 1,
      [&](uint64_t p, uint8_t* merge, Status* st) {
        *st = LoadPage(f, p, merge);
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
          DropPages(f, first, last);
          return Status::OK();
        },
        [&](uint64_t page, uint64_t from, uint64_t to) {
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
    std::shared_lock<std::shared_mutex> lock(f.index_mu);
    present = f.index.CountPresent(first, last);
  }
  if (!ReservePages((last - first) - present)) {
    return Status::Error(ENOSPC, "file system full (size)");
  }
  DropPages(f, first, last, /*keep_reserved=*/true);
  std::unique_lock<std::shared_mutex> lock(f.index_mu);
  AccountDelta delta;
  delta.same = static_cast<int64_t>(f.index.FillZeroRuns(first, last));
  Apply(f, delta);
  return Status::OK();
}

Status PageStore::ZeroRange(FileId id, uint64_t off, uint64_t len) {
  return WithFile(id, /*create=*/true, [&](File& f) {
    return SplitRange(
        off, len, [&](uint64_t first, uint64_t last) { return ZeroWholePages(f, first, last); },
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
    std::unique_lock<std::shared_mutex> lock(f.index_mu);
    const uint64_t holes = (last - first) - f.index.CountPresent(first, last);
    if (!ReservePages(holes)) return Status::Error(ENOSPC, "file system full (size)");
    AccountDelta delta;
    delta.same = static_cast<int64_t>(f.index.FillZeroRuns(first, last));
    Apply(f, delta);
    return Status::OK();
  });
}

void PageStore::Remove(FileId id) {
  {
    std::shared_ptr<File> f;
    {
      FileShard& shard = ShardOf(id);
      std::unique_lock<std::shared_mutex> lock(shard.mu);
      auto it = shard.files.find(id);
      if (it == shard.files.end()) return;
      f = std::move(it->second);
      shard.files.erase(it);
    }
    std::lock_guard<std::mutex> lock(f->write_mu);
    f->removed = true;
    DropPages(*f, 0, PageIndex::kNone);
  }
  // The file's index is freed now: after a big file, or many, give the heap back at once
  // (the background thread does it too, but only once drops have stopped).
  TrimHeap(store_internal::kTrimAfterDrops);
}

FileUsage PageStore::Usage(FileId id) const {
  FileUsage u;
  std::shared_ptr<File> f = FindFile(id);
  if (!f) return u;
  std::shared_lock<std::shared_mutex> lock(f->index_mu);
  u.pages = f->index.size();
  u.stored_bytes = f->stored_bytes.load(std::memory_order_relaxed);
  return u;
}

uint64_t PageStore::SeekData(FileId id, uint64_t off, bool want_data) const {
  std::shared_ptr<File> f = FindFile(id);
  if (!f) return want_data ? UINT64_MAX : off;
  std::shared_lock<std::shared_mutex> lock(f->index_mu);
  const uint64_t page = off / kPageSize;
  const uint64_t found = want_data ? f->index.NextPresent(page) : f->index.NextHole(page);
  if (found == PageIndex::kNone) return UINT64_MAX;
  return std::max(off, found * kPageSize);
}

StoreStats PageStore::Stats() const {
  StoreStats s;
  s.orig_data_size = pages_held_.load(std::memory_order_relaxed) * kPageSize;
  s.compr_data_size = compr_bytes_.load(std::memory_order_relaxed);
  s.pool_pages = pool_->PoolPages();
  s.buddied_pages = pool_->BuddiedPages();
  s.same_pages = same_pages_.load(std::memory_order_relaxed);
  s.huge_pages = huge_pages_.load(std::memory_order_relaxed);
  s.metadata_bytes = metadata_bytes_.load(std::memory_order_relaxed);
  s.index_bytes = index_bytes_.load(std::memory_order_relaxed);
  s.mem_used_total = (s.pool_pages + raw_mem_pages_.load(std::memory_order_relaxed)) * kPageSize +
                     s.index_bytes + s.metadata_bytes;
  s.mem_limit = options_.mem_limit;
  s.overflow_pages = overflow_pages_.load(std::memory_order_relaxed);
  s.overflow_bytes = options_.overflow ? options_.overflow->BytesUsed() : 0;
  s.written_back_pages = written_back_.load(std::memory_order_relaxed);
  s.faulted_pages = faulted_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace zbudfs

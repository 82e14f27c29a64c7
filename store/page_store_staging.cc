// PageStore as the Stager's host: staged pages compressed by the background compressors and
// swapped in (CompressStaged, CompressAndSwap). Locking: store/page_store.h.
#include <cstring>
#include <memory>

#include "store/page_arena.h"
#include "store/page_store.h"

namespace zbudfs {

// ---- The staging tier (Stager::Host) ----------------------------------------------------------
//
// A compressor copies the staged page out under its file's index_mu (shared), compresses and
// stores it with no lock held, then swaps the entry under index_mu (exclusive) only if it is
// still that staged page holding those bytes (its memory may have been freed and reused for
// another staged page of the same file and page meanwhile; then equal bytes make the swap
// harmless, and unequal ones are left to that page's own record). Like eviction, it takes
// no write_mu: a swap of one entry's storage changes no byte a reader sees.

// The staged pages freed are given back to the arena in one batch (one madvise per
// stretch past its warm cache, not one per page).
void PageStore::CompressStaged(const Stager::Record* records, size_t n) {
  PageArena::DeferredFree deferred(storage_.arena());
  std::shared_ptr<File> f;
  for (size_t i = 0; i < n; ++i) {
    const Stager::Record& r = records[i];
    if (i == 0 || r.file != records[i - 1].file) f = FindFile(r.file);
    if (f) (void)CompressAndSwap(*f, r);
  }
  reclaimer_.EndInFlight(n);  // Each staged page is compressed, kept raw, or gone.
}

void PageStore::DropStaged(const Stager::Record&) { reclaimer_.EndInFlight(1); }

bool PageStore::CompressAndSwap(File& f, const Stager::Record& r) {
  thread_local uint8_t data[kPageSize];
  thread_local uint8_t scratch[kPageSize];
  thread_local PageCodec::Streak streak;
  const void* staged = reinterpret_cast<const void*>(r.addr);
  {
    ReaderLock lock(&f.index_mu);
    const PageEntry* e = f.index.Find(r.page);
    if (e == nullptr || !e->staged() || e->value != r.addr) return false;
    std::memcpy(data, staged, kPageSize);
  }
  const size_t n = storage_.Compress(data, &streak, scratch);
  PageEntry fresh;  // kHole: the page stays raw, as an incompressible write leaves it.
  // Memory was made for the staged page; its compressed form passes mem_limit by at most
  // this one allocation, until the staged page is freed below. No MakeRoom: reclaim cannot
  // take staged pages, and compressing them is what makes room.
  if (n != 0 && !storage_.Store(r.file, r.page, scratch, n, &fresh).ok()) fresh = PageEntry();
  PageEntry old;
  {
    WriterLock lock(&f.index_mu);
    PageEntry* e = f.index.FindMutable(r.page);
    if (e != nullptr && e->staged() && e->value == r.addr &&
        std::memcmp(staged, data, kPageSize) == 0) {
      old = *e;
      if (!fresh.present()) fresh = old;
      fresh.flags = static_cast<uint8_t>(old.flags & ~PageEntry::kFlagStaged);
      *e = fresh;
      AccountSwap(f, old, fresh);
      NoteWrite(f, r.page, r.page + 1);  // Packable now: a pack may have skipped it staged.
    }
  }
  if (!old.present()) {
    if (fresh.present()) storage_.Free(fresh);
    return false;
  }
  if (fresh.kind == PageEntry::kZbud) {
    storage_.Free(old);
  } else {
    storage_.RecordRawPage(r.file, r.page, fresh);  // Raw for good: reclaim may take it.
  }
  return true;
}

}  // namespace zbudfs

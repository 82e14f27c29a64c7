// PageIndex: one file's map from page number to where that page lives.
//
// Owns: PageEntry values only (the storage an entry points to belongs to the PageStore).
// Layout: chunks of up to kChunkPages entries and a presence bitmap; chunk 0 (the first 256
// KiB, where most files end) is held inline, the others in a std::map from chunk number to
// Chunk. Holes cost nothing: a chunk exists only while it holds a page, so a 1 TiB
// sparse file with two written pages holds two chunks; a chunk's entry array grows in
// powers of two up to the highest page set, so small files stay small. Dense files pay 16
// bytes an entry plus the chunk's header and map node spread over 64 pages: about 17 bytes
// a page (measured in tests/store/page_index_test.cc). Lookup is O(log chunks).
//
// Locking: none; the owning File's index_mu_ guards it (see page_store.h).
#ifndef ZBUDFS_STORE_PAGE_INDEX_H_
#define ZBUDFS_STORE_PAGE_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>

namespace zbudfs {

// Where one page lives. 16 bytes.
struct PageEntry {
  enum Kind : uint8_t {
    kHole = 0,      // Not stored (only as a return value; never held in the index).
    kSame = 1,      // value: the repeated 8-byte word.
    kZbud = 2,      // value: zbud handle; length: compressed bytes after the owner tag.
    kRaw = 3,       // value: address of a 4 KiB page holding the data as is.
    kOverflow = 4,  // value: overflow location; length: compressed bytes (0 = raw page).
  };
  uint64_t value = 0;    // Meaning depends on kind (see above).
  uint32_t length = 0;   // Compressed payload bytes for kZbud and kOverflow.
  uint8_t kind = kHole;  // One of Kind.
  uint8_t flags = 0;     // Per-page bits for reclaim policy.
  uint16_t stamp = 0;    // kOverflow: which write-back put it there (see PageStore::Promote).

  bool present() const { return kind != kHole; }
};
static_assert(sizeof(PageEntry) == 16, "the index budget is 16 bytes an entry");

class PageIndex {
 public:
  static constexpr uint64_t kChunkPages = 64;
  static constexpr uint64_t kNone = UINT64_MAX;  // "no such page".

  PageIndex() = default;
  PageIndex(const PageIndex&) = delete;
  PageIndex& operator=(const PageIndex&) = delete;

  // The entry of page, or nullptr for a hole.
  const PageEntry* Find(uint64_t page) const;
  PageEntry* FindMutable(uint64_t page);

  // Stores entry (which must be present) at page; returns what was there (kHole if none).
  PageEntry Set(uint64_t page, const PageEntry& entry);

  // Removes page's entry; returns it (kHole if there was none).
  PageEntry Erase(uint64_t page);

  // Removes every entry in [first, last) and calls fn(page, entry) on each, in order.
  template <typename Fn>
  void EraseRange(uint64_t first, uint64_t last, Fn&& fn);

  // Calls fn(page, entry) for every present entry in [first, last), in order.
  template <typename Fn>
  void ForEach(uint64_t first, uint64_t last, Fn&& fn) const;

  // The first present page >= page, or kNone.
  uint64_t NextPresent(uint64_t page) const;

  // The first hole >= page (kNone only for page == kNone).
  uint64_t NextHole(uint64_t page) const;

  // Present pages in [first, last).
  uint64_t CountPresent(uint64_t first, uint64_t last) const;

  uint64_t size() const { return size_; }  // Present entries.
  size_t chunks() const {                  // Chunks holding pages.
    return chunks_.size() + (head_.present != 0 ? 1 : 0);
  }
  size_t MemoryBytes() const;  // Heap bytes the index takes.

 private:
  // 64 pages' entries, allocated only as far as the highest page set so far (rounded up
  // to a power of two), so a one-page file costs 16 bytes of entries, not 1 KiB.
  struct Chunk {
    uint64_t present = 0;                  // Bit i set: entries[i] is present.
    uint32_t cap = 0;                      // Entries allocated (0, 1, 2, 4 .. 64).
    std::unique_ptr<PageEntry[]> entries;  // Indexed by page % kChunkPages.
  };
  static void Reserve(Chunk& c, uint64_t i);  // Makes entries[i] exist.
  static uint64_t RangeMask(uint64_t base, uint64_t first, uint64_t last);  // Bits in range.
  // Calls fn(chunk number, chunk) on every chunk holding pages, from chunk `from` on, in
  // order, while fn returns true.
  template <typename Fn>
  void WalkChunks(uint64_t from, Fn&& fn) const;
  // Removes the bits of c in mask, calling fn(page, entry) on each; c starts at page base.
  template <typename Fn>
  void EraseBits(Chunk& c, uint64_t base, uint64_t mask, Fn&& fn);
  static void Release(Chunk& c) { c = Chunk(); }  // An emptied inline chunk 0 frees its array.

  Chunk head_;                        // Chunk 0, inline: a small file needs no map node.
  std::map<uint64_t, Chunk> chunks_;  // Chunks 1.. by number; no empty chunks.
  uint64_t size_ = 0;                 // Present entries.
};

// The bits of a chunk starting at page `base` whose pages fall in [first, last).
inline uint64_t PageIndex::RangeMask(uint64_t base, uint64_t first, uint64_t last) {
  if (last <= base || first >= base + kChunkPages) return 0;
  const uint64_t lo = first > base ? first - base : 0;
  const uint64_t hi = last - base >= kChunkPages ? kChunkPages : last - base;
  const uint64_t below_hi = hi == kChunkPages ? ~uint64_t{0} : (uint64_t{1} << hi) - 1;
  return below_hi & ~((uint64_t{1} << lo) - 1);
}

template <typename Fn>
void PageIndex::WalkChunks(uint64_t from, Fn&& fn) const {
  if (from == 0 && head_.present != 0 && !fn(uint64_t{0}, head_)) return;
  for (auto it = chunks_.lower_bound(from == 0 ? 1 : from); it != chunks_.end(); ++it) {
    if (!fn(it->first, it->second)) return;
  }
}

template <typename Fn>
void PageIndex::EraseBits(Chunk& c, uint64_t base, uint64_t mask, Fn&& fn) {
  for (uint64_t bits = c.present & mask; bits != 0; bits &= bits - 1) {
    const int i = __builtin_ctzll(bits);
    fn(base + static_cast<uint64_t>(i), c.entries[i]);
    c.entries[i] = PageEntry();
    c.present &= ~(uint64_t{1} << i);
    --size_;
  }
}

template <typename Fn>
void PageIndex::EraseRange(uint64_t first, uint64_t last, Fn&& fn) {
  if (first >= last) return;
  if (first < kChunkPages && head_.present != 0) {
    EraseBits(head_, 0, RangeMask(0, first, last), fn);
    if (head_.present == 0) Release(head_);
  }
  auto it = chunks_.lower_bound(first / kChunkPages);
  while (it != chunks_.end() && it->first * kChunkPages < last) {
    const uint64_t base = it->first * kChunkPages;
    EraseBits(it->second, base, RangeMask(base, first, last), fn);
    it = it->second.present == 0 ? chunks_.erase(it) : std::next(it);
  }
}

template <typename Fn>
void PageIndex::ForEach(uint64_t first, uint64_t last, Fn&& fn) const {
  if (first >= last) return;
  WalkChunks(first / kChunkPages, [&](uint64_t key, const Chunk& c) {
    const uint64_t base = key * kChunkPages;
    if (base >= last) return false;
    for (uint64_t bits = c.present & RangeMask(base, first, last); bits != 0; bits &= bits - 1) {
      const int i = __builtin_ctzll(bits);
      fn(base + static_cast<uint64_t>(i), c.entries[i]);
    }
    return true;
  });
}

}  // namespace zbudfs

#endif  // ZBUDFS_STORE_PAGE_INDEX_H_

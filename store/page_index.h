// PageIndex: one file's map from page number to where that page lives.
//
// Owns: PageEntry values only (the storage an entry points to belongs to the PageStore).
// Layout: chunks of up to kChunkPages entries and a presence bitmap; chunk 0 (the first 256
// KiB, where most files end) is held inline, the others in a trie of 64-way nodes keyed by
// chunk number, six bits a level, only as tall as the highest chunk needs (a 1 GiB file: two
// levels). A node stores only its occupied slots, in slot order, and finds one by counting
// the bits below it in its occupancy mask, so holes cost nothing: a chunk exists only while it
// holds a page and a node only while it leads to one, and a 1 TiB sparse file with two
// written pages holds two chunks and a path of four one-slot nodes. A chunk's entry array
// grows in powers of two up to the highest page set, so small files stay small. Dense files
// pay 16 bytes an entry plus the chunk's 24-byte header spread over 64 pages: about 16.4
// bytes a page (measured in tests/store/page_index_test.cc). Lookup is one mask test and one
// load a level: no comparisons to mispredict and no pointer chase through a balanced tree.
//
// Locking: none; the owning File's index_mu_ guards it (see page_store.h).
#ifndef ZBUDFS_STORE_PAGE_INDEX_H_
#define ZBUDFS_STORE_PAGE_INDEX_H_

#include <cstddef>
#include <cstdint>
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
    return tree_chunks_ + (head_.present != 0 ? 1 : 0);
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

  // 64 slots of which only the occupied ones are stored, in slot order; a slot's item is at
  // the rank of its bit in used. The array grows in powers of two like a chunk's.
  template <typename T>
  struct Slots {
    uint64_t used = 0;              // Bit s set: slot s holds an item.
    uint32_t cap = 0;               // Items allocated (0, 1, 2, 4 .. 64).
    std::unique_ptr<T[]> items;     // The occupied slots' items, in slot order.
    T* Find(unsigned s) const;      // Slot s's item, or nullptr.
    T& FindOrInsert(unsigned s);    // Slot s's item, default-made if it was empty.
    void Remove(unsigned s);        // Empties slot s (which must be occupied).
    size_t Rank(unsigned s) const;  // Occupied slots below s.
  };

  // A trie node: at height 1 its slots are chunks, higher up they are nodes one level down.
  struct Node {
    Slots<Node> nodes;    // Height >= 2.
    Slots<Chunk> chunks;  // Height 1.
    bool empty() const { return nodes.used == 0 && chunks.used == 0; }
  };
  static constexpr unsigned kSlotBits = 6;    // log2(64): chunk-number bits a level.
  static constexpr unsigned kMaxHeight = 10;  // Chunk numbers (page / 64) have 58 bits.
  static_assert(uint64_t{1} << kSlotBits == kChunkPages, "nodes and chunks are both 64 wide");
  static_assert(kSlotBits * kMaxHeight >= 64 - kSlotBits && kSlotBits * kMaxHeight < 64,
                "the tallest trie reaches every chunk and its reach still fits a shift");

  static void Reserve(Chunk& c, uint64_t i);  // Makes entries[i] exist.
  static uint64_t RangeMask(uint64_t base, uint64_t first, uint64_t last);  // Bits in range.
  // Slot of chunk number key in a node at height h.
  static unsigned SlotOf(uint64_t key, unsigned h) {
    return static_cast<unsigned>(key >> (kSlotBits * (h - 1))) & (kChunkPages - 1);
  }
  bool Covers(uint64_t key) const {  // The trie exists and reaches key (< 64^height_).
    return height_ != 0 && (key >> (kSlotBits * height_)) == 0;
  }
  const Chunk* FindChunk(uint64_t key) const;  // Chunk key (>= 1) in the trie, or nullptr.
  Chunk& ChunkFor(uint64_t key);               // Chunk key (>= 1), made (and the trie grown).
  // Calls fn(chunk number, chunk) on every chunk holding pages, from chunk `from` on, in
  // order, while fn returns true.
  template <typename Fn>
  void WalkChunks(uint64_t from, Fn&& fn) const;
  // WalkChunks below node n (height h, first chunk number base); false once fn said stop.
  template <typename Fn>
  static bool WalkNode(const Node& n, unsigned h, uint64_t base, uint64_t from, Fn& fn);
  // Removes the bits of c in mask, calling fn(page, entry) on each; c starts at page base.
  template <typename Fn>
  void EraseBits(Chunk& c, uint64_t base, uint64_t mask, Fn&& fn);
  // EraseRange's pages [first, last) below node n (height h, first chunk number base), in
  // chunks lo..hi (inclusive); drops what empties.
  template <typename Fn>
  void EraseNode(Node& n, unsigned h, uint64_t base, uint64_t first, uint64_t last, uint64_t lo,
                 uint64_t hi, Fn& fn);
  static size_t NodeBytes(const Node& n, unsigned h);  // Heap bytes below and of n's arrays.
  static void Release(Chunk& c) { c = Chunk(); }       // An emptied inline chunk 0 frees its array.

  Chunk head_;                  // Chunk 0, inline: a small file needs no trie node.
  std::unique_ptr<Node> root_;  // The trie of chunks 1.. (nullptr when empty: a file within
                                // its first 256 KiB pays 8 bytes for it); no empty chunk or
                                // node below it.
  unsigned height_ = 0;         // Trie levels: chunk numbers below 64^height_ fit (0: empty).
  size_t tree_chunks_ = 0;      // Chunks in the trie.
  uint64_t size_ = 0;           // Present entries.
};

// Every regular file holds one, so its size is the floor of a small file's cost.
static_assert(sizeof(PageIndex) <= 56, "a file's index is at most 56 bytes before any page");

// The bits of a chunk starting at page `base` whose pages fall in [first, last).
inline uint64_t PageIndex::RangeMask(uint64_t base, uint64_t first, uint64_t last) {
  if (last <= base || (first > base && first - base >= kChunkPages)) return 0;  // No overflow.
  const uint64_t lo = first > base ? first - base : 0;
  const uint64_t hi = last - base >= kChunkPages ? kChunkPages : last - base;
  const uint64_t below_hi = hi == kChunkPages ? ~uint64_t{0} : (uint64_t{1} << hi) - 1;
  return below_hi & ~((uint64_t{1} << lo) - 1);
}

template <typename T>
size_t PageIndex::Slots<T>::Rank(unsigned s) const {
  return static_cast<size_t>(__builtin_popcountll(used & ((uint64_t{1} << s) - 1)));
}

template <typename T>
T* PageIndex::Slots<T>::Find(unsigned s) const {
  return (used >> s) & 1 ? &items[Rank(s)] : nullptr;
}

template <typename T>
T& PageIndex::Slots<T>::FindOrInsert(unsigned s) {
  const size_t r = Rank(s);
  if ((used >> s) & 1) return items[r];
  const size_t n = static_cast<size_t>(__builtin_popcountll(used));
  if (n == cap) {
    const uint32_t grown_cap = cap == 0 ? 1 : cap * 2;
    auto grown = std::make_unique<T[]>(grown_cap);
    for (size_t k = 0; k < n; ++k) grown[k < r ? k : k + 1] = std::move(items[k]);
    items = std::move(grown);
    cap = grown_cap;
  } else {
    for (size_t k = n; k > r; --k) items[k] = std::move(items[k - 1]);
    items[r] = T();
  }
  used |= uint64_t{1} << s;
  return items[r];
}

template <typename T>
void PageIndex::Slots<T>::Remove(unsigned s) {
  const size_t n = static_cast<size_t>(__builtin_popcountll(used));
  for (size_t k = Rank(s); k + 1 < n; ++k) items[k] = std::move(items[k + 1]);
  items[n - 1] = T();
  used &= ~(uint64_t{1} << s);
  if (used == 0) *this = Slots();
}

template <typename Fn>
void PageIndex::WalkChunks(uint64_t from, Fn&& fn) const {
  if (from == 0 && head_.present != 0 && !fn(uint64_t{0}, head_)) return;
  if (Covers(from)) WalkNode(*root_, height_, 0, from, fn);
}

template <typename Fn>
bool PageIndex::WalkNode(const Node& n, unsigned h, uint64_t base, uint64_t from, Fn& fn) {
  const unsigned shift = kSlotBits * (h - 1);
  uint64_t bits = h == 1 ? n.chunks.used : n.nodes.used;
  if (from > base) {
    const uint64_t first = (from - base) >> shift;  // The slot holding chunk `from`.
    if (first >= kChunkPages) return true;
    bits &= ~uint64_t{0} << first;
  }
  for (; bits != 0; bits &= bits - 1) {
    const unsigned s = static_cast<unsigned>(__builtin_ctzll(bits));
    const uint64_t key = base + (uint64_t{s} << shift);
    if (h == 1) {
      if (!fn(key, n.chunks.items[n.chunks.Rank(s)])) return false;
    } else if (!WalkNode(n.nodes.items[n.nodes.Rank(s)], h - 1, key, from, fn)) {
      return false;
    }
  }
  return true;
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
void PageIndex::EraseNode(Node& n, unsigned h, uint64_t base, uint64_t first, uint64_t last,
                          uint64_t lo, uint64_t hi, Fn& fn) {
  const unsigned shift = kSlotBits * (h - 1);
  // Slots whose chunks meet lo..hi (all of this node's chunks are >= base).
  uint64_t bits = h == 1 ? n.chunks.used : n.nodes.used;
  if (lo > base) bits &= ~uint64_t{0} << ((lo - base) >> shift);
  const uint64_t top = (hi - base) >> shift;
  if (top < kChunkPages - 1) bits &= (uint64_t{2} << top) - 1;
  for (; bits != 0; bits &= bits - 1) {
    const unsigned s = static_cast<unsigned>(__builtin_ctzll(bits));
    const uint64_t key = base + (uint64_t{s} << shift);
    if (h == 1) {
      Chunk& c = *n.chunks.Find(s);
      EraseBits(c, key * kChunkPages, RangeMask(key * kChunkPages, first, last), fn);
      if (c.present == 0) {
        n.chunks.Remove(s);
        --tree_chunks_;
      }
    } else {
      Node& child = *n.nodes.Find(s);
      EraseNode(child, h - 1, key, first, last, lo, hi, fn);
      if (child.empty()) n.nodes.Remove(s);
    }
  }
}

template <typename Fn>
void PageIndex::EraseRange(uint64_t first, uint64_t last, Fn&& fn) {
  if (first >= last) return;
  if (first < kChunkPages && head_.present != 0) {
    EraseBits(head_, 0, RangeMask(0, first, last), fn);
    if (head_.present == 0) Release(head_);
  }
  const uint64_t lo = first / kChunkPages, hi = (last - 1) / kChunkPages;
  if (hi == 0 || !Covers(lo)) return;
  EraseNode(*root_, height_, 0, first, last, lo, hi, fn);
  if (root_->empty()) {
    root_.reset();
    height_ = 0;
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

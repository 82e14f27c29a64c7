// PageIndex: one file's map from page number to where that page lives.
//
// Owns: PageEntry values only (the storage an entry points to belongs to the PageStore).
// Layout: chunks of up to kChunkPages entries and a presence bitmap; chunk 0 (the first 256
// KiB, where most files end) is held inline, the others in a trie of 64-way nodes keyed by
// chunk number, six bits a level, only as tall as the highest chunk needs (a 1 GiB file: two
// levels). A node stores only its occupied slots, in slot order, and finds one by counting
// the bits below it in its occupancy mask, so holes cost nothing: a chunk exists only while it
// holds a page and a node only while it leads to one, and a 1 TiB sparse file with two
// written pages holds two chunks and a path of four one-slot nodes. A chunk stores its
// present entries the same way, packed in page order and found by rank (one alone sits in
// the chunk itself, no array), so a page costs 16 bytes whatever its neighbours: a dense file
// pays 16 bytes an entry plus the chunk's 24-byte header spread over 64 pages (about 16.4
// bytes a page), a file with one page in every chunk about 24, one in every 64th chunk about
// 48 (tests/store/page_index_test.cc bounds these). Every array holds exactly the next power
// of two of its items (it shrinks as they go), so erasing gives memory back too.
// Lookup is one mask test and one load a level: no comparisons to mispredict and no pointer
// chase through a balanced tree.
//
// Zero runs: ranges of preallocated zero pages (fallocate) are kept apart, as [first, last)
// extents in a map, not as an entry each: a 1 TiB fallocate costs one run. A run's pages are
// present (kSame, value 0) to every query; Set on one splits its run, EraseRange cuts runs
// and reports each cut piece as a whole (see EraseRange). Runs never overlap trie entries.
//
// Memory: MemoryBytes() is kept up to date as arrays grow and shrink (O(1) to read), so the
// store can charge index memory to mem_limit.
//
// Locking: none; the owning File's index_mu_ guards it (see page_store.h).
#ifndef ZBUDFS_STORE_PAGE_INDEX_H_
#define ZBUDFS_STORE_PAGE_INDEX_H_

#include <bit>
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
    kCluster = 5,   // value: Cluster* (store/cluster.h); length: the page's place in it.
  };
  uint64_t value = 0;    // Meaning depends on kind (see above).
  uint32_t length = 0;   // Compressed payload bytes for kZbud and kOverflow.
  uint8_t kind = kHole;  // One of Kind.
  uint8_t flags = 0;     // Per-page bits: kFlagStaged, and fault-back's (page_store_read.cc).
  uint16_t stamp = 0;    // kOverflow: which write-back put it there (see PageStore::Promote);
                         // kZbud: which of PageStorage's zbud pools holds it.

  // A kRaw page written as it came, not yet compressed: the staging tier (store/stager.h).
  static constexpr uint8_t kFlagStaged = 2;

  bool present() const { return kind != kHole; }
  bool staged() const { return kind == kRaw && (flags & kFlagStaged) != 0; }
};
static_assert(sizeof(PageEntry) == 16, "the index budget is 16 bytes an entry");

class PageIndex {
 public:
  static constexpr uint64_t kChunkPages = 64;
  static constexpr uint64_t kNone = UINT64_MAX;  // "no such page".
  // Heap bytes charged for one zero run (a std::map node of two keys, as malloc rounds it).
  static constexpr size_t kRunBytes = 64;

  PageIndex() = default;
  PageIndex(const PageIndex&) = delete;
  PageIndex& operator=(const PageIndex&) = delete;

  // The entry of page, or nullptr for a hole (a zero-run page: a shared kSame zero entry).
  const PageEntry* Find(uint64_t page) const;
  // As Find, but only entries of the trie (nullptr for a zero-run page: nothing to change).
  PageEntry* FindMutable(uint64_t page);

  // Stores entry (which must be present) at page; returns what was there (kHole if none).
  PageEntry Set(uint64_t page, const PageEntry& entry);

  // Removes page's entry; returns it (kHole if there was none).
  PageEntry Erase(uint64_t page);

  // Removes every entry in [first, last) and calls fn(page, entry) on each trie entry, in
  // order, and run_fn(from, to) once per piece [from, to) of a zero run removed (those
  // pages are kSame zero pages, reported as a range, not page by page).
  template <typename Fn, typename RunFn>
  void EraseRange(uint64_t first, uint64_t last, Fn&& fn, RunFn&& run_fn);
  // As above, calling fn on every page of the zero runs too, after the trie's (for small
  // ranges and tests).
  template <typename Fn>
  void EraseRange(uint64_t first, uint64_t last, Fn&& fn);

  // Makes every hole in [first, last) a zero page, as zero runs (merged with the runs next
  // to them); pages already present stay as they are. Returns how many holes it filled.
  uint64_t FillZeroRuns(uint64_t first, uint64_t last);

  // The end of a batch of about max_entries trie entries from first: the page after the
  // chunk in which the max_entries-th present trie entry >= first lies, capped at last
  // (last if fewer). Zero runs do not count: they go whole.
  uint64_t BatchEnd(uint64_t first, uint64_t last, uint64_t max_entries) const;

  // Calls fn(page, entry) for every present entry in [first, last), in order (zero-run
  // pages included, one by one).
  template <typename Fn>
  void ForEach(uint64_t first, uint64_t last, Fn&& fn) const;

  // The first present page >= page, or kNone.
  uint64_t NextPresent(uint64_t page) const;
  // The first page >= page with an entry of its own (zero runs skipped), or kNone.
  uint64_t NextStored(uint64_t page) const { return TrieNextPresent(page); }

  // The first hole >= page (kNone only for page == kNone).
  uint64_t NextHole(uint64_t page) const;

  // Present pages in [first, last).
  uint64_t CountPresent(uint64_t first, uint64_t last) const;

  uint64_t size() const {  // Present entries (zero-run pages included).
    return size_ + (runs_ ? runs_->pages : 0);
  }
  size_t chunks() const {  // Chunks holding pages.
    return tree_chunks_ + (head_.present != 0 ? 1 : 0);
  }
  size_t zero_runs() const { return runs_ ? runs_->map.size() : 0; }
  size_t MemoryBytes() const { return sizeof(*this) + bytes_; }  // Heap bytes the index takes.
  size_t HeapBytes() const { return bytes_; }  // The same without the object itself.
  size_t RecountBytes() const;                 // MemoryBytes() recomputed by a walk (for tests).

 private:
  // One 64-page chunk. Its present entries are packed in page order: entry i is at the rank
  // of bit i in present. One entry alone is held here (one); two or more in an array (many)
  // of exactly std::bit_ceil(count) entries.
  struct Chunk {
    uint64_t present = 0;  // Bit i set: page i of the chunk is present.
    union Store {
      PageEntry one;
      PageEntry* many;
      Store() : many(nullptr) {}
    } store;
    Chunk() = default;
    Chunk(Chunk&& o) noexcept : present(o.present), store(o.store) { o.present = 0; }
    Chunk& operator=(Chunk&& o) noexcept;
    ~Chunk() { FreeArray(); }
    unsigned count() const { return static_cast<unsigned>(std::popcount(present)); }
    PageEntry* Get(unsigned i) const;  // Entry of page i (whose bit must be set).
    void FreeArray() {
      if (count() >= 2) delete[] store.many;
    }
  };

  // A trie node: 64 slots of which only the occupied ones are stored, in slot order, at the
  // rank of their bit in used, in an array of exactly std::bit_ceil(popcount(used)) items.
  // At height 1 the items are chunks, higher up nodes one level down.
  struct Node {
    uint64_t used = 0;                // Bit s set: slot s holds an item.
    std::unique_ptr<Node[]> nodes;    // Height >= 2.
    std::unique_ptr<Chunk[]> chunks;  // Height 1.
    bool empty() const { return used == 0; }
  };
  static constexpr unsigned kSlotBits = 6;    // log2(64): chunk-number bits a level.
  static constexpr unsigned kMaxHeight = 10;  // Chunk numbers (page / 64) have 58 bits.
  static_assert(uint64_t{1} << kSlotBits == kChunkPages, "nodes and chunks are both 64 wide");
  static_assert(kSlotBits * kMaxHeight >= 64 - kSlotBits && kSlotBits * kMaxHeight < 64,
                "the tallest trie reaches every chunk and its reach still fits a shift");

  // Zero runs: first page -> end page (exclusive), disjoint, not touching (merged).
  struct Runs {
    std::map<uint64_t, uint64_t> map;
    uint64_t pages = 0;  // Pages in all runs.
  };

  static unsigned Rank(uint64_t mask, unsigned i) {
    return static_cast<unsigned>(std::popcount(mask & ((uint64_t{1} << i) - 1)));
  }
  static size_t ArrayCap(unsigned n) { return n < 2 ? 0 : std::bit_ceil(n); }
  // Slot s of node n in items (n.nodes or n.chunks), or nullptr.
  template <typename T>
  static T* SlotFind(const Node& n, const std::unique_ptr<T[]>& items, unsigned s);
  // Slot s's item, default-made if it was empty.
  template <typename T>
  T& SlotInsert(Node& n, std::unique_ptr<T[]>& items, unsigned s);
  // Empties slot s (which must be occupied).
  template <typename T>
  void SlotRemove(Node& n, std::unique_ptr<T[]>& items, unsigned s);
  // Resizes items from old_n to new_n items, skipping index `drop` of the old (if < old_n)
  // and leaving a gap at `gap` of the new (if < new_n).
  template <typename T>
  void Resize(std::unique_ptr<T[]>& items, unsigned old_n, unsigned new_n, unsigned drop,
              unsigned gap);

  void ChunkSet(Chunk& c, unsigned i, const PageEntry& e, PageEntry* old);  // Sets page i.
  // Removes the pages of c in mask, calling fn(page, entry) on each; c starts at page base.
  template <typename Fn>
  void EraseBits(Chunk& c, uint64_t base, uint64_t mask, Fn&& fn);
  void Repack(Chunk& c, uint64_t keep);  // Keeps only the entries in keep (a subset).

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
  // The trie's part of EraseRange: pages [first, last) below node n (height h, first chunk
  // number base), in chunks lo..hi (inclusive); drops what empties.
  template <typename Fn>
  void EraseNode(Node& n, unsigned h, uint64_t base, uint64_t first, uint64_t last, uint64_t lo,
                 uint64_t hi, Fn& fn);
  template <typename Fn>
  void EraseTrie(uint64_t first, uint64_t last, Fn& fn);
  // Cuts [first, last) out of the zero runs, calling run_fn(from, to) on each piece cut.
  template <typename RunFn>
  void EraseRuns(uint64_t first, uint64_t last, RunFn& run_fn);
  const std::pair<const uint64_t, uint64_t>* RunAt(uint64_t page) const;  // Run holding page.
  void AddRun(uint64_t first, uint64_t last);  // [first, last) must be holes; merges.
  // The trie alone (runs not considered).
  uint64_t TrieNextPresent(uint64_t page) const;
  uint64_t TrieNextHole(uint64_t page) const;
  uint64_t TrieCount(uint64_t first, uint64_t last) const;
  static size_t NodeBytes(const Node& n, unsigned h);  // Heap bytes below and of n's arrays.
  static inline const PageEntry kZeroPage = {0, 0, PageEntry::kSame, 0, 0};  // A run's page.

  Chunk head_;                     // Chunk 0, inline: a small file needs no trie node.
  std::unique_ptr<Node> root_;     // The trie of chunks 1.. (nullptr when empty: a file within
                                   // its first 256 KiB pays 8 bytes for it); no empty chunk or
                                   // node below it.
  std::unique_ptr<Runs> runs_;     // Zero runs (nullptr: none, the common case).
  uint64_t height_ : 8 = 0;        // Trie levels: chunk numbers below 64^height_ fit (0: empty).
  uint64_t tree_chunks_ : 56 = 0;  // Chunks in the trie.
  uint64_t size_ = 0;              // Present trie entries.
  size_t bytes_ = 0;               // Heap bytes of everything below this object.
};

// Every regular file holds one, so its size is the floor of a small file's cost.
static_assert(sizeof(PageIndex) <= 64, "a file's index is at most 64 bytes before any page");

// The bits of a chunk starting at page `base` whose pages fall in [first, last).
inline uint64_t PageIndex::RangeMask(uint64_t base, uint64_t first, uint64_t last) {
  if (last <= base || (first > base && first - base >= kChunkPages)) return 0;  // No overflow.
  const uint64_t lo = first > base ? first - base : 0;
  const uint64_t hi = last - base >= kChunkPages ? kChunkPages : last - base;
  const uint64_t below_hi = hi == kChunkPages ? ~uint64_t{0} : (uint64_t{1} << hi) - 1;
  return below_hi & ~((uint64_t{1} << lo) - 1);
}

inline PageIndex::Chunk& PageIndex::Chunk::operator=(Chunk&& o) noexcept {
  if (this != &o) {
    FreeArray();
    present = o.present;
    store = o.store;
    o.present = 0;
  }
  return *this;
}

// No popcount on the common paths (it is a dozen instructions without -mpopcnt): a full
// chunk (dense files) indexes directly, a lone entry is the inline one.
inline PageEntry* PageIndex::Chunk::Get(unsigned i) const {
  if (present == ~uint64_t{0}) return &store.many[i];
  if ((present & (present - 1)) == 0) return const_cast<PageEntry*>(&store.one);
  return &store.many[Rank(present, i)];
}

template <typename T>
T* PageIndex::SlotFind(const Node& n, const std::unique_ptr<T[]>& items, unsigned s) {
  if (n.used == ~uint64_t{0}) return &items[s];  // A full node: no rank to count.
  return (n.used >> s) & 1 ? &items[Rank(n.used, s)] : nullptr;
}

template <typename T>
void PageIndex::Resize(std::unique_ptr<T[]>& items, unsigned old_n, unsigned new_n, unsigned drop,
                       unsigned gap) {
  const size_t old_cap = old_n == 0 ? 0 : std::bit_ceil(old_n);
  const size_t new_cap = new_n == 0 ? 0 : std::bit_ceil(new_n);
  if (new_cap != old_cap) {
    std::unique_ptr<T[]> grown = new_cap == 0 ? nullptr : std::make_unique<T[]>(new_cap);
    for (unsigned k = 0, to = 0; k < old_n; ++k) {
      if (k == drop) continue;
      if (to == gap) ++to;
      grown[to++] = std::move(items[k]);
    }
    items = std::move(grown);
    bytes_ += new_cap * sizeof(T);
    bytes_ -= old_cap * sizeof(T);
    return;
  }
  if (gap < new_n) {  // Insert in place: shift the tail up one.
    for (unsigned k = old_n; k > gap; --k) items[k] = std::move(items[k - 1]);
    items[gap] = T();
  } else if (drop < old_n) {  // Remove in place: shift the tail down one.
    for (unsigned k = drop; k + 1 < old_n; ++k) items[k] = std::move(items[k + 1]);
    items[old_n - 1] = T();
  }
}

template <typename T>
T& PageIndex::SlotInsert(Node& n, std::unique_ptr<T[]>& items, unsigned s) {
  const unsigned r = Rank(n.used, s);
  if ((n.used >> s) & 1) return items[r];
  const unsigned count = static_cast<unsigned>(std::popcount(n.used));
  Resize(items, count, count + 1, UINT32_MAX, r);
  n.used |= uint64_t{1} << s;
  return items[r];
}

template <typename T>
void PageIndex::SlotRemove(Node& n, std::unique_ptr<T[]>& items, unsigned s) {
  const unsigned count = static_cast<unsigned>(std::popcount(n.used));
  Resize(items, count, count - 1, Rank(n.used, s), UINT32_MAX);
  n.used &= ~(uint64_t{1} << s);
}

template <typename Fn>
void PageIndex::WalkChunks(uint64_t from, Fn&& fn) const {
  if (from == 0 && head_.present != 0 && !fn(uint64_t{0}, head_)) return;
  if (Covers(from)) WalkNode(*root_, height_, 0, from, fn);
}

template <typename Fn>
bool PageIndex::WalkNode(const Node& n, unsigned h, uint64_t base, uint64_t from, Fn& fn) {
  const unsigned shift = kSlotBits * (h - 1);
  uint64_t bits = n.used;
  if (from > base) {
    const uint64_t first = (from - base) >> shift;  // The slot holding chunk `from`.
    if (first >= kChunkPages) return true;
    bits &= ~uint64_t{0} << first;
  }
  for (; bits != 0; bits &= bits - 1) {
    const unsigned s = static_cast<unsigned>(__builtin_ctzll(bits));
    const uint64_t key = base + (uint64_t{s} << shift);
    if (h == 1) {
      if (!fn(key, n.chunks[Rank(n.used, s)])) return false;
    } else if (!WalkNode(n.nodes[Rank(n.used, s)], h - 1, key, from, fn)) {
      return false;
    }
  }
  return true;
}

template <typename Fn>
void PageIndex::EraseBits(Chunk& c, uint64_t base, uint64_t mask, Fn&& fn) {
  const uint64_t gone = c.present & mask;
  if (gone == 0) return;
  for (uint64_t bits = gone; bits != 0; bits &= bits - 1) {
    const unsigned i = static_cast<unsigned>(__builtin_ctzll(bits));
    fn(base + i, *c.Get(i));
  }
  size_ -= static_cast<uint64_t>(std::popcount(gone));
  Repack(c, c.present & ~gone);
}

template <typename Fn>
void PageIndex::EraseNode(Node& n, unsigned h, uint64_t base, uint64_t first, uint64_t last,
                          uint64_t lo, uint64_t hi, Fn& fn) {
  const unsigned shift = kSlotBits * (h - 1);
  // Slots whose chunks meet lo..hi (all of this node's chunks are >= base).
  uint64_t bits = n.used;
  if (lo > base) bits &= ~uint64_t{0} << ((lo - base) >> shift);
  const uint64_t top = (hi - base) >> shift;
  if (top < kChunkPages - 1) bits &= (uint64_t{2} << top) - 1;
  // Ascending: a slot's item is looked up afresh each time, so removing one below is fine.
  for (; bits != 0; bits &= bits - 1) {
    const unsigned s = static_cast<unsigned>(__builtin_ctzll(bits));
    const uint64_t key = base + (uint64_t{s} << shift);
    if (h == 1) {
      Chunk& c = *SlotFind(n, n.chunks, s);
      EraseBits(c, key * kChunkPages, RangeMask(key * kChunkPages, first, last), fn);
      if (c.present == 0) {
        SlotRemove(n, n.chunks, s);
        --tree_chunks_;
      }
    } else {
      Node& child = *SlotFind(n, n.nodes, s);
      EraseNode(child, h - 1, key, first, last, lo, hi, fn);
      if (child.empty()) SlotRemove(n, n.nodes, s);
    }
  }
}

template <typename Fn>
void PageIndex::EraseTrie(uint64_t first, uint64_t last, Fn& fn) {
  if (first < kChunkPages && head_.present != 0) {
    EraseBits(head_, 0, RangeMask(0, first, last), fn);
  }
  const uint64_t lo = first / kChunkPages, hi = (last - 1) / kChunkPages;
  if (hi == 0 || !Covers(lo)) return;
  EraseNode(*root_, height_, 0, first, last, lo, hi, fn);
  if (root_->empty()) {
    root_.reset();
    bytes_ -= sizeof(Node);
    height_ = 0;
  }
}

template <typename RunFn>
void PageIndex::EraseRuns(uint64_t first, uint64_t last, RunFn& run_fn) {
  if (!runs_) return;
  auto& map = runs_->map;
  auto it = map.upper_bound(first);
  if (it != map.begin() && std::prev(it)->second > first) --it;
  while (it != map.end() && it->first < last) {
    const uint64_t a = it->first, b = it->second;
    const uint64_t from = std::max(a, first), to = std::min(b, last);
    it = map.erase(it);
    bytes_ -= kRunBytes;
    if (a < from) {
      map.emplace(a, from);
      bytes_ += kRunBytes;
    }
    if (to < b) {
      it = map.emplace(to, b).first;
      bytes_ += kRunBytes;
    }
    runs_->pages -= to - from;
    run_fn(from, to);
  }
  if (map.empty()) {
    runs_.reset();
    bytes_ -= sizeof(Runs);
  }
}

template <typename Fn, typename RunFn>
void PageIndex::EraseRange(uint64_t first, uint64_t last, Fn&& fn, RunFn&& run_fn) {
  if (first >= last) return;
  EraseTrie(first, last, fn);
  EraseRuns(first, last, run_fn);
}

template <typename Fn>
void PageIndex::EraseRange(uint64_t first, uint64_t last, Fn&& fn) {
  PageEntry zero;
  zero.kind = PageEntry::kSame;
  // Runs are cut after the trie's entries: their pages come last (tests use small runs).
  EraseRange(first, last, fn, [&](uint64_t from, uint64_t to) {
    for (uint64_t p = from; p < to; ++p) fn(p, zero);
  });
}

template <typename Fn>
void PageIndex::ForEach(uint64_t first, uint64_t last, Fn&& fn) const {
  if (first >= last) return;
  PageEntry zero;
  zero.kind = PageEntry::kSame;
  uint64_t run_next = first;               // Zero-run pages below run_next are done.
  auto runs_until = [&](uint64_t until) {  // Zero-run pages in [run_next, until).
    if (!runs_) return;
    for (auto it = runs_->map.upper_bound(run_next); run_next < until;) {
      if (it != runs_->map.begin() && std::prev(it)->second > run_next) --it;
      if (it == runs_->map.end() || it->first >= until) break;
      const uint64_t to = it->second < until ? it->second : until;
      for (uint64_t p = it->first > run_next ? it->first : run_next; p < to; ++p) fn(p, zero);
      run_next = to;
      ++it;
    }
    run_next = until;
  };
  WalkChunks(first / kChunkPages, [&](uint64_t key, const Chunk& c) {
    const uint64_t base = key * kChunkPages;
    if (base >= last) return false;
    for (uint64_t bits = c.present & RangeMask(base, first, last); bits != 0; bits &= bits - 1) {
      const unsigned i = static_cast<unsigned>(__builtin_ctzll(bits));
      runs_until(base + i);
      fn(base + i, *c.Get(i));
      run_next = base + i + 1;
    }
    return true;
  });
  runs_until(last);
}

}  // namespace zbudfs

#endif  // ZBUDFS_STORE_PAGE_INDEX_H_

// No locks: the owner's File::index_mu_ guards a PageIndex.
#include "store/page_index.h"

namespace zbudfs {

const PageIndex::Chunk* PageIndex::FindChunk(uint64_t key) const {
  if (!Covers(key)) return nullptr;
  const Node* n = root_.get();
  for (unsigned h = static_cast<unsigned>(height_); h > 1; --h) {
    n = SlotFind(*n, n->nodes, SlotOf(key, h));
    if (n == nullptr) return nullptr;
  }
  return SlotFind(*n, n->chunks, SlotOf(key, 1));
}

PageIndex::Chunk& PageIndex::ChunkFor(uint64_t key) {
  // Grow: the old root becomes slot 0 of a new one, a level up, until key is in reach.
  while (!Covers(key)) {
    auto top = std::make_unique<Node>();
    bytes_ += sizeof(Node);
    if (height_ != 0) {
      SlotInsert(*top, top->nodes, 0) = std::move(*root_);  // Never empty.
      bytes_ -= sizeof(Node);                               // The old root's own allocation.
    }
    root_ = std::move(top);
    ++height_;
  }
  Node* n = root_.get();
  for (unsigned h = static_cast<unsigned>(height_); h > 1; --h) {
    n = &SlotInsert(*n, n->nodes, SlotOf(key, h));
  }
  const unsigned s = SlotOf(key, 1);
  if (((n->used >> s) & 1) == 0) ++tree_chunks_;  // New: a held chunk has a page.
  return SlotInsert(*n, n->chunks, s);
}

const PageEntry* PageIndex::Find(uint64_t page) const {
  const Chunk* c = page < kChunkPages ? &head_ : FindChunk(page / kChunkPages);
  const unsigned i = static_cast<unsigned>(page % kChunkPages);
  if (c != nullptr && (c->present >> i) & 1) return c->Get(i);
  return runs_ && RunAt(page) != nullptr ? &kZeroPage : nullptr;
}

PageEntry* PageIndex::FindMutable(uint64_t page) {
  const Chunk* c = page < kChunkPages ? &head_ : FindChunk(page / kChunkPages);
  const unsigned i = static_cast<unsigned>(page % kChunkPages);
  return c != nullptr && (c->present >> i) & 1 ? c->Get(i) : nullptr;
}

PageEntry PageIndex::Set(uint64_t page, const PageEntry& entry) {
  PageEntry old;
  if (runs_ && RunAt(page) != nullptr) {  // A zero-run page moves into the trie.
    auto cut = [](uint64_t, uint64_t) {};
    EraseRuns(page, page + 1, cut);
    old = kZeroPage;
  }
  Chunk& c = page < kChunkPages ? head_ : ChunkFor(page / kChunkPages);
  PageEntry was;
  ChunkSet(c, static_cast<unsigned>(page % kChunkPages), entry, &was);
  return was.present() ? was : old;
}

void PageIndex::ChunkSet(Chunk& c, unsigned i, const PageEntry& e, PageEntry* old) {
  const uint64_t bit = uint64_t{1} << i;
  if (c.present & bit) {
    *old = *c.Get(i);
    *c.Get(i) = e;
    return;
  }
  *old = PageEntry();
  ++size_;
  const unsigned n = c.count();
  if (n == 0) {
    c.store.one = e;
  } else if (n == 1) {
    const PageEntry single = c.store.one;
    auto* many = new PageEntry[2];
    bytes_ += 2 * sizeof(PageEntry);
    const bool first = i < static_cast<unsigned>(__builtin_ctzll(c.present));
    many[first ? 0 : 1] = e;
    many[first ? 1 : 0] = single;
    c.store.many = many;
  } else {
    const unsigned r = Rank(c.present, i);
    PageEntry* many = c.store.many;
    if (n == std::bit_ceil(n)) {  // Full: twice the room, with a gap at r.
      auto* grown = new PageEntry[2 * n];
      bytes_ += n * sizeof(PageEntry);
      for (unsigned k = 0; k < n; ++k) grown[k < r ? k : k + 1] = many[k];
      delete[] many;
      c.store.many = many = grown;
    } else {
      for (unsigned k = n; k > r; --k) many[k] = many[k - 1];
    }
    many[r] = e;
  }
  c.present |= bit;
}

void PageIndex::Repack(Chunk& c, uint64_t keep) {
  const unsigned n = c.count(), m = static_cast<unsigned>(std::popcount(keep));
  if (m == n) return;
  if (n >= 2) bytes_ -= std::bit_ceil(n) * sizeof(PageEntry);
  if (m == 0) {
    c.FreeArray();
    c.present = 0;
    c.store.many = nullptr;
    return;
  }
  if (m == 1) {  // n >= 2: the one left moves into the chunk.
    const PageEntry e = *c.Get(static_cast<unsigned>(__builtin_ctzll(keep)));
    c.FreeArray();
    c.store.one = e;
    c.present = keep;
    return;
  }
  PageEntry* src = c.store.many;
  const size_t cap = std::bit_ceil(m);
  PageEntry* dst = cap == std::bit_ceil(n) ? src : new PageEntry[cap];
  bytes_ += cap * sizeof(PageEntry);
  unsigned k = 0, r = 0;  // In place, k <= r: a kept entry only moves down.
  for (uint64_t bits = c.present; bits != 0; bits &= bits - 1, ++r) {
    if ((keep >> __builtin_ctzll(bits)) & 1) dst[k++] = src[r];
  }
  if (dst != src) delete[] src;
  c.store.many = dst;
  c.present = keep;
}

PageEntry PageIndex::Erase(uint64_t page) {
  PageEntry old;
  EraseRange(page, page + 1, [&](uint64_t, const PageEntry& e) { old = e; });
  return old;
}

const std::pair<const uint64_t, uint64_t>* PageIndex::RunAt(uint64_t page) const {
  if (!runs_) return nullptr;
  auto it = runs_->map.upper_bound(page);
  if (it == runs_->map.begin()) return nullptr;
  --it;
  return it->second > page ? &*it : nullptr;
}

void PageIndex::AddRun(uint64_t first, uint64_t last) {
  if (!runs_) {
    runs_ = std::make_unique<Runs>();
    bytes_ += sizeof(Runs);
  }
  auto& map = runs_->map;
  runs_->pages += last - first;
  auto next = map.lower_bound(first);
  if (next != map.end() && next->first == last) {  // Joins the run after it.
    last = next->second;
    next = map.erase(next);
    bytes_ -= kRunBytes;
  }
  if (next != map.begin()) {
    auto prev = std::prev(next);
    if (prev->second == first) {  // Joins the run before it.
      prev->second = last;
      return;
    }
  }
  map.emplace_hint(next, first, last);
  bytes_ += kRunBytes;
}

uint64_t PageIndex::FillZeroRuns(uint64_t first, uint64_t last) {
  uint64_t filled = 0;
  for (uint64_t p = first; p < last;) {
    const uint64_t hole = NextHole(p);
    if (hole >= last) break;
    uint64_t end = NextPresent(hole);
    if (end > last) end = last;
    AddRun(hole, end);
    filled += end - hole;
    p = end;
  }
  return filled;
}

uint64_t PageIndex::BatchEnd(uint64_t first, uint64_t last, uint64_t max_entries) const {
  if (first >= last) return last;
  uint64_t n = 0, end = last;
  WalkChunks(first / kChunkPages, [&](uint64_t key, const Chunk& c) {
    const uint64_t base = key * kChunkPages;
    if (base >= last) return false;
    n += static_cast<uint64_t>(std::popcount(c.present & RangeMask(base, first, last)));
    if (n < max_entries) return true;
    if (base + kChunkPages < last) end = base + kChunkPages;
    return false;
  });
  return end;
}

uint64_t PageIndex::TrieNextPresent(uint64_t page) const {
  uint64_t found = kNone;
  WalkChunks(page / kChunkPages, [&](uint64_t key, const Chunk& c) {
    const uint64_t base = key * kChunkPages;
    uint64_t bits = c.present;
    if (base < page) bits &= ~uint64_t{0} << (page - base);
    if (bits == 0) return true;
    found = base + static_cast<uint64_t>(__builtin_ctzll(bits));
    return false;
  });
  return found;
}

uint64_t PageIndex::TrieNextHole(uint64_t page) const {
  uint64_t candidate = page;
  WalkChunks(page / kChunkPages, [&](uint64_t key, const Chunk& c) {
    const uint64_t base = key * kChunkPages;
    if (base > candidate) return false;  // A whole missing chunk before this one.
    uint64_t holes = ~c.present;
    if (base < candidate) holes &= ~uint64_t{0} << (candidate - base);
    if (holes != 0) {
      candidate = base + static_cast<uint64_t>(__builtin_ctzll(holes));
      return false;
    }
    candidate = base + kChunkPages;
    return true;
  });
  return candidate;
}

uint64_t PageIndex::TrieCount(uint64_t first, uint64_t last) const {
  uint64_t n = 0;
  WalkChunks(first / kChunkPages, [&](uint64_t key, const Chunk& c) {
    const uint64_t base = key * kChunkPages;
    if (base >= last) return false;
    n += static_cast<uint64_t>(std::popcount(c.present & RangeMask(base, first, last)));
    return true;
  });
  return n;
}

uint64_t PageIndex::NextPresent(uint64_t page) const {
  if (page == kNone) return kNone;
  uint64_t found = TrieNextPresent(page);
  if (runs_) {
    auto it = runs_->map.upper_bound(page);
    if (it != runs_->map.begin() && std::prev(it)->second > page) return page;
    if (it != runs_->map.end() && it->first < found) found = it->first;
  }
  return found;
}

uint64_t PageIndex::NextHole(uint64_t page) const {
  if (page == kNone) return kNone;
  for (uint64_t candidate = page;;) {  // Trie and runs never overlap: alternate past both.
    candidate = TrieNextHole(candidate);
    const auto* run = candidate == kNone ? nullptr : RunAt(candidate);
    if (run == nullptr) return candidate;
    candidate = run->second;
  }
}

uint64_t PageIndex::CountPresent(uint64_t first, uint64_t last) const {
  if (first >= last) return 0;
  uint64_t n = TrieCount(first, last);
  if (runs_) {
    auto it = runs_->map.upper_bound(first);
    if (it != runs_->map.begin() && std::prev(it)->second > first) --it;
    for (; it != runs_->map.end() && it->first < last; ++it) {
      n += std::min(it->second, last) - std::max(it->first, first);
    }
  }
  return n;
}

size_t PageIndex::NodeBytes(const Node& n, unsigned h) {
  const unsigned count = static_cast<unsigned>(std::popcount(n.used));
  const size_t cap = count == 0 ? 0 : std::bit_ceil(count);
  size_t bytes = cap * (h == 1 ? sizeof(Chunk) : sizeof(Node));
  for (unsigned k = 0; k < count; ++k) {
    bytes +=
        h == 1 ? ArrayCap(n.chunks[k].count()) * sizeof(PageEntry) : NodeBytes(n.nodes[k], h - 1);
  }
  return bytes;
}

size_t PageIndex::RecountBytes() const {
  return sizeof(*this) + ArrayCap(head_.count()) * sizeof(PageEntry) +
         (root_ ? sizeof(Node) + NodeBytes(*root_, static_cast<unsigned>(height_)) : 0) +
         (runs_ ? sizeof(Runs) + runs_->map.size() * kRunBytes : 0);
}

}  // namespace zbudfs

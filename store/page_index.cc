// No locks: the owner's File::index_mu_ guards a PageIndex.
#include "store/page_index.h"

namespace zbudfs {

const PageIndex::Chunk* PageIndex::FindChunk(uint64_t key) const {
  if (!Covers(key)) return nullptr;
  const Node* n = root_.get();
  for (unsigned h = height_; h > 1; --h) {
    n = n->nodes.Find(SlotOf(key, h));
    if (n == nullptr) return nullptr;
  }
  return n->chunks.Find(SlotOf(key, 1));
}

PageIndex::Chunk& PageIndex::ChunkFor(uint64_t key) {
  // Grow: the old root becomes slot 0 of a new one, a level up, until key is in reach.
  while (!Covers(key)) {
    auto top = std::make_unique<Node>();
    if (height_ != 0) top->nodes.FindOrInsert(0) = std::move(*root_);  // Never empty.
    root_ = std::move(top);
    ++height_;
  }
  Node* n = root_.get();
  for (unsigned h = height_; h > 1; --h) n = &n->nodes.FindOrInsert(SlotOf(key, h));
  Chunk& c = n->chunks.FindOrInsert(SlotOf(key, 1));
  if (c.present == 0 && c.cap == 0) ++tree_chunks_;  // New: a held chunk has a page.
  return c;
}

const PageEntry* PageIndex::Find(uint64_t page) const {
  const Chunk* c = page < kChunkPages ? &head_ : FindChunk(page / kChunkPages);
  if (c == nullptr) return nullptr;
  const uint64_t i = page % kChunkPages;
  return (c->present >> i) & 1 ? &c->entries[i] : nullptr;  // Bit => i < cap.
}

PageEntry* PageIndex::FindMutable(uint64_t page) {
  return const_cast<PageEntry*>(static_cast<const PageIndex*>(this)->Find(page));
}

PageEntry PageIndex::Set(uint64_t page, const PageEntry& entry) {
  Chunk& c = page < kChunkPages ? head_ : ChunkFor(page / kChunkPages);
  const uint64_t i = page % kChunkPages;
  Reserve(c, i);
  PageEntry old = c.entries[i];
  if (((c.present >> i) & 1) == 0) {
    c.present |= uint64_t{1} << i;
    ++size_;
  }
  c.entries[i] = entry;
  return old;
}

PageEntry PageIndex::Erase(uint64_t page) {
  PageEntry old;
  EraseRange(page, page + 1, [&](uint64_t, const PageEntry& e) { old = e; });
  return old;
}

uint64_t PageIndex::NextPresent(uint64_t page) const {
  if (page == kNone) return kNone;
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

uint64_t PageIndex::NextHole(uint64_t page) const {
  if (page == kNone) return kNone;
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

uint64_t PageIndex::CountPresent(uint64_t first, uint64_t last) const {
  if (first >= last) return 0;
  uint64_t n = 0;
  WalkChunks(first / kChunkPages, [&](uint64_t key, const Chunk& c) {
    const uint64_t base = key * kChunkPages;
    if (base >= last) return false;
    n += static_cast<uint64_t>(__builtin_popcountll(c.present & RangeMask(base, first, last)));
    return true;
  });
  return n;
}

void PageIndex::Reserve(Chunk& c, uint64_t i) {
  if (i < c.cap) return;
  uint32_t cap = c.cap == 0 ? 1 : c.cap;
  while (cap <= i) cap *= 2;
  auto grown = std::make_unique<PageEntry[]>(cap);
  for (uint32_t k = 0; k < c.cap; ++k) grown[k] = c.entries[k];
  c.entries = std::move(grown);
  c.cap = cap;
}

size_t PageIndex::NodeBytes(const Node& n, unsigned h) {
  size_t bytes = n.nodes.cap * sizeof(Node) + n.chunks.cap * sizeof(Chunk);
  if (h == 1) {
    for (size_t k = 0; k < static_cast<size_t>(__builtin_popcountll(n.chunks.used)); ++k)
      bytes += n.chunks.items[k].cap * sizeof(PageEntry);
  } else {
    for (size_t k = 0; k < static_cast<size_t>(__builtin_popcountll(n.nodes.used)); ++k)
      bytes += NodeBytes(n.nodes.items[k], h - 1);
  }
  return bytes;
}

size_t PageIndex::MemoryBytes() const {
  return sizeof(*this) + head_.cap * sizeof(PageEntry) +
         (height_ != 0 ? sizeof(Node) + NodeBytes(*root_, height_) : 0);
}

}  // namespace zbudfs

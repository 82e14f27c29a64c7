// mu_ is never held across the evict callback or a PageArena call (which may mmap or
// madvise); the store's lock order is in store/page_store.h.
#include "store/zbud_pool.h"

#include <cstddef>
#include <type_traits>

#include "store/page_arena.h"

namespace zbudfs {

// The zbud page header, in the page's first chunk. Buddy sizes are in chunks, 0 when free.
struct ZbudPool::Header {
  ListNode buddy;         // Links the page into an unbuddied list or the buddied list.
  ListNode lru;           // Links the page into the LRU.
  uint16_t first_chunks;  // Size of the first buddy in chunks, 0 if free.
  uint16_t last_chunks;   // Size of the last buddy in chunks, 0 if free.
  bool under_reclaim;     // Set while ReclaimPage works on the page.
};

static_assert((ZbudPool::kChunkSize << ZbudPool::kChunksOrder) == kPageSize,
              "kChunkShift assumes PAGE_SHIFT 12: 64 chunks make a page");
static_assert(ZbudPool::kChunkSize == 64, "NCHUNKS_ORDER 6 on 4 KiB pages gives 64-byte chunks");
static_assert(ZbudPool::kNumChunks == 63, "one chunk of 64 holds the header");
static_assert(ZbudPool::kMaxAllocSize == 3968, "the largest zpage leaves a chunk for a buddy");

// ---- Intrusive lists ------------------------------------------------------------------------

void ZbudPool::ListInit(ListNode* head) { head->prev = head->next = head; }

bool ZbudPool::ListEmpty(const ListNode* head) const { return head->next == head; }

void ZbudPool::ListAdd(ListNode* node, ListNode* head) {
  node->next = head->next;
  node->prev = head;
  head->next->prev = node;
  head->next = node;
}

void ZbudPool::ListDel(ListNode* node) {
  node->prev->next = node->next;
  node->next->prev = node->prev;
  ListInit(node);
}

// ---- Helpers --------------------------------------------------------------------------------

ZbudPool::Header* ZbudPool::InitPage(void* page) {
  static_assert(sizeof(Header) <= kHeaderSize, "the zbud header must fit in its chunk");
  static_assert(std::is_standard_layout_v<Header>, "offsetof needs a standard-layout header");
  auto* zhdr = static_cast<Header*>(page);
  zhdr->first_chunks = 0;
  zhdr->last_chunks = 0;
  ListInit(&zhdr->buddy);
  ListInit(&zhdr->lru);
  zhdr->under_reclaim = false;
  return zhdr;
}

// The first buddy starts right after the header; the last ends at the page's end.
ZbudPool::Handle ZbudPool::EncodeHandle(const Header* zhdr, Buddy bud) const {
  Handle handle = reinterpret_cast<Handle>(zhdr);
  if (bud == Buddy::kFirst) return handle + kHeaderSize;
  return handle + kPageSize - (Handle{zhdr->last_chunks} << kChunkShift);
}

ZbudPool::Header* ZbudPool::HandleToHeader(Handle handle) {
  return reinterpret_cast<Header*>(handle & ~Handle{kPageSize - 1});
}

// Free buddies have zero chunks, so no branch is needed.
int ZbudPool::NumFreeChunks(const Header* zhdr) const {
  return kNumChunks - zhdr->first_chunks - zhdr->last_chunks;
}

ZbudPool::Header* ZbudPool::FromBuddyNode(ListNode* node) {
  return reinterpret_cast<Header*>(reinterpret_cast<char*>(node) - offsetof(Header, buddy));
}

ZbudPool::Header* ZbudPool::FromLruNode(ListNode* node) {
  return reinterpret_cast<Header*>(reinterpret_cast<char*>(node) - offsetof(Header, lru));
}

void ZbudPool::ListOnto(Header* zhdr) {
  if (zhdr->first_chunks == 0 || zhdr->last_chunks == 0) {
    ListAdd(&zhdr->buddy, &unbuddied_[NumFreeChunks(zhdr)]);
  } else {
    ListAdd(&zhdr->buddy, &buddied_);
  }
}

void ZbudPool::UnlinkEmpty(Header* zhdr) {
  ListDel(&zhdr->lru);
  pages_nr_.fetch_sub(1, std::memory_order_relaxed);
}

// ---- API ------------------------------------------------------------------------------------

ZbudPool::ZbudPool(PageArena* arena, EvictFn evict) : arena_(arena), evict_(std::move(evict)) {
  for (ListNode& list : unbuddied_) ListInit(&list);
  ListInit(&buddied_);
  ListInit(&lru_);
}

ZbudPool::~ZbudPool() {
  // Anything still held goes back to the arena; the owner should have freed it all.
  while (!ListEmpty(&lru_)) {
    Header* zhdr = FromLruNode(lru_.next);
    ListDel(&zhdr->lru);
    arena_->FreePage(zhdr);
  }
}

StatusOr<ZbudPool::Handle> ZbudPool::Alloc(size_t size) {
  if (size == 0) return Status::Error(EINVAL, "zbud: zero-size allocation");
  if (size > kMaxAllocSize) return Status::Error(ENOSPC, "zbud: allocation above 3968 bytes");
  const int chunks = static_cast<int>(SizeToChunks(size));

  AdaptiveLock lock(&mu_);
  Header* zhdr = nullptr;
  Buddy bud = Buddy::kFirst;
  // First, the first unbuddied page with enough free chunks.
  for (int i = chunks; i < kNumChunks; ++i) {
    if (!ListEmpty(&unbuddied_[i])) {
      zhdr = FromBuddyNode(unbuddied_[i].next);
      ListDel(&zhdr->buddy);
      bud = zhdr->first_chunks == 0 ? Buddy::kFirst : Buddy::kLast;
      break;
    }
  }
  if (zhdr == nullptr) {
    // None: a fresh page, taken and initialised with the lock released (it is ours alone
    // until listed, and its first touch may fault the memory in: no fault under the lock).
    lock.Unlock();
    void* page = arena_->AllocPage();
    if (page == nullptr) return Status::Error(ENOMEM, "zbud: no memory for a new zbud page");
    zhdr = InitPage(page);
    lock.Lock();
    pages_nr_.fetch_add(1, std::memory_order_relaxed);
    bud = Buddy::kFirst;
  }

  if (bud == Buddy::kFirst) {
    zhdr->first_chunks = static_cast<uint16_t>(chunks);
  } else {
    zhdr->last_chunks = static_cast<uint16_t>(chunks);
  }
  if (zhdr->first_chunks != 0 && zhdr->last_chunks != 0) {
    buddied_nr_.fetch_add(1, std::memory_order_relaxed);
  }
  ListOnto(zhdr);
  // The page moves to the LRU's head.
  ListDel(&zhdr->lru);
  ListAdd(&zhdr->lru, &lru_);
  return EncodeHandle(zhdr, bud);
}

void ZbudPool::Free(Handle handle) {
  Header* zhdr = HandleToHeader(handle);
  {
    AdaptiveLock lock(&mu_);
    if (zhdr->first_chunks != 0 && zhdr->last_chunks != 0) {
      buddied_nr_.fetch_sub(1, std::memory_order_relaxed);
    }
    // A first buddy's handle is the page's address plus the header.
    if (((handle - kHeaderSize) & (kPageSize - 1)) != 0) {
      zhdr->last_chunks = 0;
    } else {
      zhdr->first_chunks = 0;
    }
    // Under reclaim, ReclaimPage frees the page once both buddies are gone.
    if (zhdr->under_reclaim) return;

    ListDel(&zhdr->buddy);
    if (zhdr->first_chunks != 0 || zhdr->last_chunks != 0) {
      ListOnto(zhdr);
      return;
    }
    UnlinkEmpty(zhdr);
  }
  arena_->FreePage(zhdr);
}

Status ZbudPool::ReclaimPage(unsigned retries, Status* evict_error) {
  AdaptiveLock lock(&mu_);
  if (!evict_ || ListEmpty(&lru_) || retries == 0) {
    return Status::Error(EINVAL, "zbud: nothing to reclaim or no evict callback");
  }
  for (unsigned i = 0; i < retries; ++i) {
    // lru_ is not empty: mu_ has been held since the check above or since the last turn put
    // its page back at the LRU's head.
    Header* zhdr = FromLruNode(lru_.prev);
    ListDel(&zhdr->lru);
    ListDel(&zhdr->buddy);
    // Protects the page against Free; the handles are encoded now because a concurrent Free
    // may zero first/last_chunks once the lock is dropped.
    zhdr->under_reclaim = true;
    const Handle first = zhdr->first_chunks != 0 ? EncodeHandle(zhdr, Buddy::kFirst) : 0;
    const Handle last = zhdr->last_chunks != 0 ? EncodeHandle(zhdr, Buddy::kLast) : 0;
    lock.Unlock();

    // Issue the evictions; after a failure the page's state below decides what happens.
    Status st;
    if (first != 0) st = evict_(*this, first);
    if (st.ok() && last != 0) st = evict_(*this, last);
    if (!st.ok() && evict_error != nullptr) *evict_error = st;

    lock.Lock();
    zhdr->under_reclaim = false;
    if (zhdr->first_chunks == 0 && zhdr->last_chunks == 0) {
      // Both buddies are gone: free the page and succeed.
      pages_nr_.fetch_sub(1, std::memory_order_relaxed);
      lock.Unlock();
      arena_->FreePage(zhdr);
      return Status::OK();
    }
    ListOnto(zhdr);
    ListAdd(&zhdr->lru, &lru_);  // Back at the LRU's head.
  }
  return Status::Error(EAGAIN, "zbud: reclaim retries exhausted");
}

}  // namespace zbudfs

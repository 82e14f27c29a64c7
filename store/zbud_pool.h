// ZbudPool: the zbud allocator of Linux (mm/zbud.c, Seth Jennings, 2013), in user space.
//
// zbud stores compressed pages ("zpages") in pairs inside 4 KiB "zbud pages". It is not a
// buddy allocator: it *buddies* two zpages in one page. The first buddy is left-justified
// just after the page's header, the last buddy is right-justified against the page's end, so
// when either is freed, its space and the slack between them form the largest possible free
// region. A zbud page never holds more than two zpages, which bounds density at 2 but also
// guarantees zbud never does harm: zpages per zbud page is never below 1. In exchange,
// reclaim is simple and deterministic: evicting a zbud page means evicting at most two
// zpages.
//
// A page is cut into 64 chunks of 64 bytes (NCHUNKS_ORDER 6). The header takes the first
// chunk, leaving 63 usable chunks, so an allocation is at most 4096 - 64 - 64 = 3968 bytes
// (one chunk is always left for a buddy). Pages holding one zpage sit on one of 63
// "unbuddied" lists indexed by their number of free chunks; full pages sit on the buddied
// list; every page sits on an LRU ordered by the last allocation into it (most recent first).
//
// Alloc returns an opaque Handle, not a pointer: Map(handle) gives the bytes and Unmap(handle)
// ends the access. (Here, as in the seed, a handle is the address of the data, and Map/Unmap
// are trivial; callers must not rely on that.)
//
// Reclaim runs from the bottom up, because only zbud knows which zpages share a page. The
// owner calls ReclaimPage(retries); ZbudPool takes the LRU's tail page, marks it
// under_reclaim, encodes both handles under the lock, and calls the owner's evict callback
// for each with the lock released. The evict-callback contract:
//   * evict(pool, handle) must either move the zpage elsewhere and call pool.Free(handle)
//     before returning OK, or return an error and leave the handle allocated.
//   * While a page is under reclaim, Free() of either buddy only clears that buddy; the
//     page is freed by ReclaimPage once both are gone. So the bytes behind a handle stay
//     valid for the whole callback, even if the owner frees the handle concurrently; the
//     callback must therefore re-check, under the owner's own lock, that the handle is
//     still in use before acting on it, and return OK if it was freed meanwhile.
//   * The callback may call Alloc and Free on this pool; it must not call ReclaimPage.
// If a buddy cannot be evicted the page goes back on the lists (at the LRU's head) and the
// next tail page is tried, up to `retries` pages.
//
// Locking: one mutex, mu_, guards every list and the first/last chunk counts and the
// under_reclaim flag of every zbud page. It spins briefly before it sleeps (the seed uses a
// spinlock): it is held only for list work, never across the evict callback, never across a
// system call or a page's first touch (new pages come from PageArena and are initialised
// with the lock released, like the seed's alloc_page). The store's lock order is in
// store/page_store.h.
#ifndef ZBUDFS_STORE_ZBUD_POOL_H_
#define ZBUDFS_STORE_ZBUD_POOL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "store/mutex.h"
#include "store/page_size.h"
#include "store/status.h"

namespace zbudfs {

class PageArena;

class ZbudPool {
 public:
  using Handle = uintptr_t;
  // The owner's evict callback; see the contract above.
  using EvictFn = std::function<Status(ZbudPool& pool, Handle handle)>;

  static constexpr int kChunksOrder = 6;                                         // NCHUNKS_ORDER.
  static constexpr size_t kChunkShift = 12 - kChunksOrder;                       // log2(64).
  static constexpr size_t kChunkSize = size_t{1} << kChunkShift;                 // 64 bytes.
  static constexpr size_t kHeaderSize = kChunkSize;                              // First chunk.
  static constexpr int kNumChunks = (kPageSize - kHeaderSize) >> kChunkShift;    // 63 usable.
  static constexpr size_t kMaxAllocSize = kPageSize - kHeaderSize - kChunkSize;  // 3968.

  // arena supplies zbud pages (not owned, must outlive the pool). evict may be empty, in
  // which case ReclaimPage fails with EINVAL.
  ZbudPool(PageArena* arena, EvictFn evict);
  ~ZbudPool();  // The pool should be empty; pages still held go back to the arena.
  ZbudPool(const ZbudPool&) = delete;
  ZbudPool& operator=(const ZbudPool&) = delete;

  // Allocates size bytes. Errors: EINVAL for size 0; ENOSPC for size > kMaxAllocSize;
  // ENOMEM when a new zbud page is needed and the arena has none.
  StatusOr<Handle> Alloc(size_t size);

  // Frees an allocation. During reclaim of its page it only clears that buddy.
  void Free(Handle handle);

  // The allocation's bytes (as many as were asked of Alloc). Never fails.
  void* Map(Handle handle) const { return reinterpret_cast<void*>(handle); }

  // Ends an access begun by Map. Never fails.
  void Unmap(Handle) const {}

  // A hint that Free(handle) comes soon: starts loading the zbud page's header into the
  // cache (a random overwrite's old page is cold; Free otherwise waits for it under mu_).
  // Reads no pool state, takes no lock, never fails, harmless on a handle freed meanwhile.
  static void Prefetch(Handle handle) {
    __builtin_prefetch(reinterpret_cast<const void*>(handle & ~Handle{kPageSize - 1}), 1, 3);
  }

  // Evicts the zpages of up to `retries` LRU-tail pages until one page is freed.
  // Errors: EINVAL with no evict callback, an empty LRU or retries == 0; EAGAIN when
  // `retries` pages were tried and none could be freed. A failed evict callback's error is
  // stored in *evict_error (if given; the last one), so that the owner learns why as a value.
  Status ReclaimPage(unsigned retries, Status* evict_error = nullptr);

  // Zbud pages held by the pool. Lock-free.
  uint64_t PoolPages() const { return pages_nr_.load(std::memory_order_relaxed); }

  // Zbud pages holding two buddies. Lock-free.
  uint64_t BuddiedPages() const { return buddied_nr_.load(std::memory_order_relaxed); }

  // Bytes a zpage of `size` bytes occupies in its zbud page (whole chunks).
  static size_t AllocatedBytes(size_t size) { return SizeToChunks(size) * kChunkSize; }

  // Appends the time waited for the pool's lock (store/lock_profile.h). Lock-free.
  void AddLockWaits(std::vector<LockWait>* out) const { out->push_back(mu_profile_.Snapshot()); }

 private:
  // An intrusive doubly linked list node, like the kernel's list_head.
  struct ListNode {
    ListNode* prev;
    ListNode* next;
  };
  // Every listed node is reached from the list heads, which mu_ guards: the helpers that
  // read or relink listed nodes require it. ListInit only touches a node not yet listed.
  static void ListInit(ListNode* head);
  bool ListEmpty(const ListNode* head) const REQUIRES(mu_);
  void ListAdd(ListNode* node, ListNode* head) REQUIRES(mu_);  // Inserts node at head's front.
  void ListDel(ListNode* node) REQUIRES(mu_);  // Unlinks node, leaves it self-linked.
  struct Header;                               // The first chunk of every zbud page.
  enum class Buddy { kFirst, kLast };

  static size_t SizeToChunks(size_t size) { return (size + kChunkSize - 1) >> kChunkShift; }
  static Header* InitPage(void* page);  // The page is ours alone: no lock needed.
  static Header* HandleToHeader(Handle handle);
  static Header* FromBuddyNode(ListNode* node);
  static Header* FromLruNode(ListNode* node);
  // The helpers below read or link page headers, which mu_ guards (the analysis cannot
  // see a header's fields as guarded, so these members carry the rule instead).
  Handle EncodeHandle(const Header* zhdr, Buddy bud) const REQUIRES(mu_);
  int NumFreeChunks(const Header* zhdr) const REQUIRES(mu_);
  void ListOnto(Header* zhdr) REQUIRES(mu_);     // Onto the unbuddied list that fits, or buddied.
  void UnlinkEmpty(Header* zhdr) REQUIRES(mu_);  // Uncounts an empty page; caller frees it.

  PageArena* const arena_;
  const EvictFn evict_;
  std::atomic<uint64_t> pages_nr_{0};    // Zbud pages held.
  std::atomic<uint64_t> buddied_nr_{0};  // Pages whose first and last chunks are both set.

  LockProfile mu_profile_{"zbud pool"};             // Waits for mu_ (LockWaits).
  AdaptiveMutex mu_{&mu_profile_};                  // Guards the lists and every page header.
  ListNode unbuddied_[kNumChunks] GUARDED_BY(mu_);  // Pages with one buddy, by free chunks.
  ListNode buddied_ GUARDED_BY(mu_);                // Pages with two buddies.
  ListNode lru_ GUARDED_BY(mu_);  // All pages, most recently allocated into first.
};

}  // namespace zbudfs

#endif  // ZBUDFS_STORE_ZBUD_POOL_H_

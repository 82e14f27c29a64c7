// Cluster: several cold pages of one file compressed as one zstd frame, to pass zbud's
// density cap.
//
// zbud holds at most two allocations per 4 KiB page, so one allocation per page can never
// hold more than 2 pages per pool page, however well they compress. A cluster compresses up
// to kMaxPages pages of one aligned group of a file (cluster=SIZE, 16 KiB by default) as one
// frame (PageCodec::CompressRun: magicless zstd, content size, 4-byte check value) and
// stores the frame as a chain of ordinary zbud allocations ("parts") of at most
// kMaxPartPayload bytes each, every one behind the usual 16-byte owner tag. The pool does
// not change: a cluster is just several allocations of one pool. The frame holds the packed
// pages one after another, in page order; an index entry of kind PageEntry::kCluster names
// the Cluster (value) and its page's place in the frame (length).
//
// Life: made by the packer (PageStore::PackFile, store/page_store_pack.cc) from pages that
// went cold, with refs = the pages packed. Every index entry pointing at it holds one
// reference; an entry that leaves the index (overwrite, truncate, punch, remove, eviction)
// gives its reference back through PageStorage::Free, and the last one frees the parts and
// the object. A slot whose entry has gone is dead: its bytes stay in the frame until the
// packer repacks the group (half or more of its slots dead).
//
// Spilled: reclaim moves a cluster to the overflow directory whole, still compressed
// (PageStore::EvictCluster): a part chosen by the pool's LRU has the frame copied out, its
// parts written to overflow slots, and a new Cluster (pool == kSpilled, handles() holding
// the slots' locations) takes the place of the old one in every entry still naming it; the
// old one's parts go with its last reference. A read of a spilled page reads and decodes
// the frame; its second read brings the whole cluster back into memory as a new Cluster
// (PageStore::PromoteCluster), as a single overflow page comes back; a spilled cluster half
// dead is packed again by the packer, into memory, to give its slots back. Nothing in a cluster
// changes after it is made except refs, so readers need only their file's index_mu
// (shared) to decode one, wherever it is.
//
// Memory: the object (24 bytes + 8 a part, as malloc rounds it, HeapBytes) is counted in
// mem_used_total beside the parts' pool pages (PageStorage::ClusterHeapBytes), spilled or
// not.
//
// Locking: none of its own. refs is atomic (entries are freed after their file's index_mu
// is released); the rest is immutable from the moment the cluster is published.
#ifndef ZBUDFS_STORE_CLUSTER_H_
#define ZBUDFS_STORE_CLUSTER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>

#include "store/page_size.h"
#include "store/zbud_pool.h"

namespace zbudfs {

struct Cluster {
  static constexpr unsigned kMaxPages = 16;  // cluster=64K.
  // A part's payload: zbud's largest allocation less the owner tag.
  static constexpr size_t kMaxPartPayload = ZbudPool::kMaxAllocSize - 16;
  // A frame is only kept if it is smaller than the pages' own payloads, each under a page.
  static constexpr unsigned kMaxParts = kMaxPages * kPageSize / kMaxPartPayload + 1;
  // Owner tags of parts carry this bit in their page word, with the cluster's first page.
  static constexpr uint64_t kTagBit = uint64_t{1} << 63;
  // `pool` of a spilled cluster: its parts are overflow slots, handles() their locations.
  static constexpr uint16_t kSpilled = 0xFFFF;

  std::atomic<uint32_t> refs{0};  // Index entries naming this cluster.
  uint32_t frame_length = 0;      // Payload bytes of the frame, check value included.
  uint64_t id = 0;                // Never reused (decoded-frame caches key on it).
  uint32_t stored_bytes = 0;      // Pool bytes of all parts (64-byte chunks); spilled: 0.
  uint16_t pool = 0;              // The zbud pool of every part, or kSpilled.
  uint8_t parts = 0;              // Allocations holding the frame.
  uint8_t pages = 0;              // Pages packed in the frame.

  ZbudPool::Handle* handles() { return reinterpret_cast<ZbudPool::Handle*>(this + 1); }
  const ZbudPool::Handle* handles() const {
    return reinterpret_cast<const ZbudPool::Handle*>(this + 1);
  }
  // The payload bytes of part i.
  uint32_t PartLength(unsigned i) const {
    return i + 1 < parts ? static_cast<uint32_t>(kMaxPartPayload)
                         : frame_length - static_cast<uint32_t>(kMaxPartPayload) * i;
  }
  bool spilled() const { return pool == kSpilled; }
  // Parts holding a frame of `frame_length` bytes.
  static unsigned PartsFor(size_t frame_length) {
    return static_cast<unsigned>((frame_length + kMaxPartPayload - 1) / kMaxPartPayload);
  }
  bool HasPart(uint16_t in_pool, ZbudPool::Handle h) const {
    if (in_pool != pool) return false;
    for (unsigned i = 0; i < parts; ++i) {
      if (handles()[i] == h) return true;
    }
    return false;
  }
  // A page's share of the cluster, for the statistics (fixed for the cluster's life, so
  // that adding and taking away an entry balance): of its pool bytes, or of its frame on
  // disk when spilled (as an overflow page counts its payload).
  uint64_t StoredShare() const { return (spilled() ? frame_length : stored_bytes) / pages; }
  uint64_t ComprShare() const { return frame_length / pages; }

  // Bytes the object takes on the heap with n parts (malloc's 16-byte granules).
  static size_t HeapBytes(unsigned n) {
    return (sizeof(Cluster) + n * sizeof(ZbudPool::Handle) + 8 + 15) & ~size_t{15};
  }
  static Cluster* New(unsigned n) {
    void* mem = ::operator new(sizeof(Cluster) + n * sizeof(ZbudPool::Handle));
    auto* c = new (mem) Cluster();
    c->parts = static_cast<uint8_t>(n);
    return c;
  }
  static void Delete(Cluster* c) {
    c->~Cluster();
    ::operator delete(c);
  }
};
static_assert(sizeof(Cluster) == 24, "a cluster's header is 24 bytes");
static_assert(Cluster::kMaxParts < 256 && Cluster::kMaxPages < 256);

}  // namespace zbudfs

#endif  // ZBUDFS_STORE_CLUSTER_H_

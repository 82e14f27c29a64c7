// PageStore's limits changed while running (a remount): SetLimits checks every new limit
// against what is held before it changes any (CheckLimits), all or nothing.
#include <string>

#include "store/overflow_store.h"
#include "store/page_store.h"

namespace zbudfs {

// ---- Limits changed while running (a remount) -----------------------------------------------

uint64_t PageStore::overflow_limit() const {
  return options_.overflow ? options_.overflow->limit() : 0;
}

namespace {

// EINVAL unless a new limit keeps "limited" as it was: 0 means unlimited to the store, and the
// background reclaim thread exists only for a store started with a memory limit.
Status SameKind(const char* name, uint64_t was, uint64_t now) {
  if ((was == 0) == (now == 0)) return Status::OK();
  return Status::Error(EINVAL, std::string(name) + (was == 0 ? " was unlimited" : " cannot be 0"));
}

std::string Bytes(uint64_t n) { return std::to_string(n) + " bytes"; }

}  // namespace

Status PageStore::CheckLimits(const StoreLimits& l) const {
  if (l.capacity_bytes) {
    if (Status s = SameKind("size", capacity_bytes(), *l.capacity_bytes); !s.ok()) return s;
    const uint64_t used = capacity_used_.load(std::memory_order_relaxed);
    if (*l.capacity_bytes < used) {
      return Status::Error(EINVAL, "size " + Bytes(*l.capacity_bytes) +
                                       " is below what is stored (" + Bytes(used) + ")");
    }
  }
  if (l.mem_limit) {
    if (Status s = SameKind("mem_limit", mem_limit(), *l.mem_limit); !s.ok()) return s;
    const uint64_t staging = stager_.max_pages() * kPageSize;
    if (*l.mem_limit / 2 < staging) {
      return Status::Error(EINVAL, "mem_limit " + Bytes(*l.mem_limit) +
                                       " is under twice the staging budget (" + Bytes(staging) +
                                       ")");
    }
    // Checked before SetLimits pushes anything out: reclaim could only fail after moving
    // every page to the overflow directory. An unchanged limit (a remount of other options)
    // is not a new promise and passes.
    const uint64_t fixed = index_bytes_.load(std::memory_order_relaxed) +
                           metadata_bytes_.load(std::memory_order_relaxed) +
                           inode_bytes_.load(std::memory_order_relaxed) +
                           storage_.ClusterHeapBytes();
    if (*l.mem_limit != 0 && *l.mem_limit != mem_limit() && *l.mem_limit < fixed) {
      return Status::Error(EINVAL, "mem_limit " + Bytes(*l.mem_limit) +
                                       " is below what the page indexes, metadata, inodes and"
                                       " cluster descriptors take (" +
                                       Bytes(fixed) + "), which never leave memory");
    }
  }
  if (l.overflow_limit) {
    if (!options_.overflow) return Status::Error(EINVAL, "there is no overflow directory");
    const uint64_t used = options_.overflow->BytesUsed();
    if (*l.overflow_limit < used) {
      return Status::Error(EINVAL, "overflow_limit " + Bytes(*l.overflow_limit) +
                                       " is below what the overflow holds (" + Bytes(used) + ")");
    }
  }
  return Status::OK();
}

Status PageStore::SetLimits(const StoreLimits& l) {
  if (Status s = CheckLimits(l); !s.ok()) return s;
  // An unchanged mem_limit (a remount of other options) moves nothing: memory above it is
  // what writes meet anyway, and pushing out every page to find that the indexes alone
  // exceed it would fail the remount after the damage.
  if (l.mem_limit && *l.mem_limit != mem_limit() && MemUsed() > *l.mem_limit) {
    if (!options_.overflow) {
      return Status::Error(EINVAL, "mem_limit " + Bytes(*l.mem_limit) +
                                       " is below the memory in use (" + Bytes(MemUsed()) +
                                       ") and there is no overflow directory");
    }
    Status s = ReclaimTo(*l.mem_limit);
    if (!s.ok()) {
      return Status::Error(s.code() == EIO ? EIO : ENOSPC,
                           "cannot push memory under the new mem_limit: " + s.message());
    }
  }
  if (l.capacity_bytes) capacity_bytes_.store(*l.capacity_bytes, std::memory_order_relaxed);
  if (l.overflow_limit) options_.overflow->SetLimit(*l.overflow_limit);
  if (l.mem_limit) reclaimer_.SetMemLimit(*l.mem_limit);
  if (l.zstd_level || l.zstd_fast_level) {
    const int level = l.zstd_level.value_or(storage_.zstd_level());
    storage_.SetLevels(level, l.zstd_fast_level.value_or(storage_.zstd_fast_level()));
  }
  return Status::OK();
}

}  // namespace zbudfs

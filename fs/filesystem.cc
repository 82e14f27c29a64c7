// Filesystem: shared helpers of the FUSE handlers.
//
// FillAttr takes Inode::mu alone; Forget takes Inode::mu, then (released) the table.
#include "fs/filesystem.h"

#include <algorithm>
#include <cstring>
#include <thread>

#include "fs/log.h"

namespace zbudfs {

Filesystem::Filesystem(const MountOptions& options)
    : options_(options), nr_inodes_(options.nr_inodes), current_(options) {}

Filesystem::~Filesystem() = default;

void Filesystem::StartStore(std::shared_ptr<OverflowStore> overflow) {
  PageStoreOptions so;
  so.zstd_level = options_.zstd_level;
  so.zstd_fast_level = options_.zstd_fast_level.value_or(options_.zstd_level);
  so.capacity_bytes = options_.size;
  so.mem_limit = options_.mem_limit;
  {
    MutexLock lock(&remount_mu_);
    overflow_dir_ = overflow ? overflow->dir() : "";
  }
  so.overflow = std::move(overflow);
  // One decode helper per other core (at most 8): they only take parts of large reads, and
  // only while idle, so a busy daemon runs as it would without them.
  const unsigned cores = std::max(std::thread::hardware_concurrency(), 1u);
  so.decode_threads = std::min(cores - 1, 8u);
  // A zbud pool per worker thread (threads are dealt pools in turn; at most 32, as zswap
  // kept): writers then rarely wait for one pool's lock (docs/BENCHMARKS.md).
  so.zbud_pools = std::max(options_.max_threads, cores);
  // Staged pages are compressed by one thread per core (at most 8); writers compress their
  // own pages once the staging budget is spent.
  so.staging_bytes = options_.staging;
  so.compress_threads = std::min(cores, 8u);
  // Files not written for pack_after are packed into clusters; the packer looks twice as
  // often as that, at most every 5 s, at least every second.
  so.cluster_pages = static_cast<unsigned>(options_.cluster / kPageSize);
  so.pack_after_ms = uint64_t{options_.pack_after} * 1000;
  so.pack_interval_ms = std::clamp<uint64_t>(so.pack_after_ms / 2, 1000, 5000);
  so.pack_level = options_.pack_level;
  so.report_error = [](StoreErrorKind kind, const std::string& message) {
    LogRateLimited(
        kind == StoreErrorKind::kCheckFailed ? LogKind::kCheckFailed : LogKind::kOverflowIo,
        "%s: %s",
        kind == StoreErrorKind::kCheckFailed ? "page check failed (EIO)" : "overflow I/O error",
        message.c_str());
  };
  store_ = std::make_unique<PageStore>(so);
}

fuse_lowlevel_ops Filesystem::Ops() {
  fuse_lowlevel_ops ops;
  std::memset(&ops, 0, sizeof(ops));
  AddAttrOps(&ops);
  AddDirOps(&ops);
  AddReadDirOps(&ops);
  AddFileOps(&ops);
  AddXattrOps(&ops);
  return ops;
}

void Filesystem::FillAttr(const std::shared_ptr<Inode>& inode, struct stat* st) {
  // The store call comes first, with none of our locks held.
  uint64_t stored = inode->is_reg() ? store_->Usage(inode->ino).stored_bytes : 0;
  std::memset(st, 0, sizeof(*st));
  st->st_ino = inode->ino;
  // The buffer stdio and most programs size their writes by. With no_writeback each
  // write(2) is a round trip: ask for 128 KiB ones (as cp does anyway).
  st->st_blksize = options_.no_writeback ? kNoWritebackBlockSize : kPageSize;
  st->st_blocks = static_cast<blkcnt_t>((stored + 511) / 512);
  MutexLock lock(&inode->mu);
  st->st_mode = inode->mode;
  st->st_nlink = inode->nlink;
  st->st_uid = inode->uid;
  st->st_gid = inode->gid;
  st->st_rdev = inode->rdev;
  st->st_size = inode->size;
  st->st_atim = inode->atime;
  st->st_mtim = inode->mtime;
  st->st_ctim = inode->ctime;
}

void Filesystem::FillEntry(const std::shared_ptr<Inode>& inode, fuse_entry_param* e) {
  std::memset(e, 0, sizeof(*e));
  e->ino = inode->ino;
  {
    MutexLock lock(&inode->mu);
    e->generation = inode->generation;
  }
  e->attr_timeout = kCacheTimeout;
  e->entry_timeout = kCacheTimeout;
  FillAttr(inode, &e->attr);
}

void Filesystem::ReleaseIfUnused(const std::shared_ptr<Inode>& inode) {
  if (!table_.DropIfUnused(inode)) return;
  if (inode->is_reg()) store_->Remove(inode->ino);
  uint64_t xattrs;
  {
    MutexLock lock(&inode->mu);
    xattrs = EraseAllXattrs(inode.get());
  }
  UnchargeXattrs(this, xattrs);
  if (inode->charged_memory != 0) {
    store_->ChargeInodes(-static_cast<int64_t>(inode->charged_memory));
  }
  // The target itself goes with the last shared_ptr; its charge now, once for all links.
  if (inode->symlink != nullptr) {
    if (const uint64_t cost = SymlinkCost(inode->symlink->size()); cost != 0) {
      (void)store_->ChargeMetadata(-static_cast<int64_t>(cost));  // Giving back never fails.
    }
  }
}

void Filesystem::Forget(fuse_ino_t ino, uint64_t n) {
  std::shared_ptr<Inode> inode = table_.Get(ino);
  if (inode == nullptr) return;
  {
    MutexLock lock(&inode->mu);
    inode->nlookup -= std::min(n, inode->nlookup);
    if (inode->nlookup != 0) return;
  }
  ReleaseIfUnused(inode);  // Re-checks every count under the table lock.
}

uint64_t Filesystem::RoomBytes() const {
  const StoreStats s = store_->Stats();
  uint64_t room = UINT64_MAX;
  const uint64_t size = store_->capacity_bytes(), mem_limit = store_->mem_limit();
  if (size != 0) room = size - std::min(size, s.orig_data_size);
  if (mem_limit != 0) {
    uint64_t mem = mem_limit - std::min(mem_limit, s.mem_used_total);
    if (store_->options().overflow != nullptr) {
      const uint64_t overflow_limit = store_->overflow_limit();
      mem += overflow_limit - std::min(overflow_limit, s.overflow_bytes);
    }
    room = std::min(room, mem);
  }
  return room;
}

bool Filesystem::NearFull() {
  const uint64_t room = RoomBytes();
  uint64_t limit = dirty_limit_.load(std::memory_order_relaxed);
  // The figure moves with free memory: read it again whenever the answer might depend on it.
  if (limit == 0 || room / 4 < limit) {
    limit = DirtyLimitBytes(bdi_dir_);
    dirty_limit_.store(limit, std::memory_order_relaxed);
  }
  return room < limit;
}

std::string FormatStats(const StoreStats& s) {
  const std::pair<const char*, uint64_t> fields[] = {
      {"orig_data_size", s.orig_data_size},
      {"compr_data_size", s.compr_data_size},
      {"mem_used_total", s.mem_used_total},
      {"mem_limit", s.mem_limit},
      {"pool_pages", s.pool_pages},
      {"buddied_pages", s.buddied_pages},
      {"same_pages", s.same_pages},
      {"huge_pages", s.huge_pages},
      {"overflow_pages", s.overflow_pages},
      {"overflow_bytes", s.overflow_bytes},
      {"written_back_pages", s.written_back_pages},
      {"faulted_pages", s.faulted_pages},
      {"metadata_bytes", s.metadata_bytes},
      {"index_bytes", s.index_bytes},
      {"inode_bytes", s.inode_bytes},
      {"staged_pages", s.staged_pages},
      {"clustered_pages", s.clustered_pages},
      {"cluster_allocations", s.cluster_allocations},
      {"clusters", s.clusters},
      {"spilled_clusters", s.spilled_clusters},
      {"cluster_bytes", s.cluster_bytes},
      {"reclaim_packed_pages", s.reclaim_packed_pages},
  };
  std::string out;
  for (const auto& [name, value] : fields) {
    out += name;
    out += ' ';
    out += std::to_string(value);
    out += '\n';
  }
  return out;
}

// ---- Remount
// -------------------------------------------------------------------------------------

// nr_inodes is checked against the inodes in use before the store's limits change, and set
// after: an inode created in between may leave the count above the new limit, and creation
// is then refused until it is below (as with size, where the store does the same).
Status Filesystem::Remount(std::string_view list) {
  MutexLock lock(&remount_mu_);
  MountOptions next;
  std::string error;
  if (!ParseRemount(list, current_, &next, &error)) {
    remount_error_ = error;
    return Status::Error(EINVAL, error);
  }
  Status s = ApplyRemount(next);
  remount_error_ = s.ok() ? "" : s.message();
  return s;
}

Status Filesystem::ApplyRemount(const MountOptions& next) {
  if (next.nr_inodes != 0) {
    const uint64_t used = table_.CountInUse() + table_.extra_links();
    if (next.nr_inodes < used) {
      return Status::Error(EINVAL, "nr_inodes " + std::to_string(next.nr_inodes) +
                                       " is below the inodes in use (" + std::to_string(used) +
                                       ")");
    }
  }
  StoreLimits limits;
  limits.capacity_bytes = next.size;
  limits.mem_limit = next.mem_limit;
  if (store_->options().overflow != nullptr) limits.overflow_limit = next.overflow_limit;
  limits.zstd_level = next.zstd_level;
  limits.zstd_fast_level = next.zstd_fast_level.value_or(next.zstd_level);
  if (Status s = store_->SetLimits(limits); !s.ok()) return s;
  nr_inodes_.store(next.nr_inodes, std::memory_order_relaxed);
  current_ = next;
  return Status::OK();
}

std::string Filesystem::LastRemountError() {
  MutexLock lock(&remount_mu_);
  return remount_error_;
}

std::string Filesystem::OptionsText() {
  MutexLock lock(&remount_mu_);
  const MountOptions& o = current_;
  std::string out;
  auto line = [&out](const char* name, const std::string& value) {
    out += std::string(name) + " " + value + "\n";
  };
  line("source", o.source.empty() ? "zbudfs" : o.source);
  line("size", std::to_string(o.size));
  line("mem_limit", std::to_string(o.mem_limit));
  line("overflow_dir", overflow_dir_);
  line("overflow_limit", std::to_string(o.overflow_limit));
  line("staging", std::to_string(o.staging));
  line("cluster", std::to_string(o.cluster));
  line("pack_after", std::to_string(o.pack_after));
  line("pack_level", std::to_string(o.pack_level));
  line("zstd_level", std::to_string(o.zstd_level));
  line("zstd_fast", o.zstd_fast_level ? std::to_string(*o.zstd_fast_level) : "off");
  line("nr_inodes", std::to_string(o.nr_inodes));
  line("max_threads", std::to_string(o.max_threads));
  return out;
}

}  // namespace zbudfs

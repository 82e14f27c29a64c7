// Near-full detection and the forgetting of refused writeback (see full_mount.h).
#include "fs/full_mount.h"

#include <sys/sysmacros.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <utility>
#include <vector>

#include "fs/filesystem.h"
#include "fs/log.h"
#include "fs/mount_table.h"
#include "fs/session_loop.h"

namespace zbudfs {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
// When sysfs cannot tell: more than 1 % of the dirty threshold of a machine with 32 GiB.
constexpr uint64_t kFallbackDirtyLimit = 64 * kMiB;

// The first number in file path, or fallback.
uint64_t ReadNumber(const std::string& path, uint64_t fallback) {
  std::ifstream in(path);
  uint64_t v;
  return (in >> v) ? v : fallback;
}

// The global dirty threshold in bytes (/proc/vmstat), or 0.
uint64_t GlobalDirtyThreshold() {
  std::ifstream in("/proc/vmstat");
  std::string name;
  uint64_t v;
  while (in >> name >> v) {
    if (name == "nr_dirty_threshold") return v * 4096;
  }
  return 0;
}

}  // namespace

std::string BdiOfMount(const std::string& mountpoint) {
  if (!FindMount(mountpoint).ok()) return std::string();
  // Called before the session serves: the cached attributes only (no GETATTR to ourselves).
  StatusOr<dev_t> dev = CachedDevice(mountpoint);
  if (!dev.ok()) return std::string();
  return "/sys/class/bdi/" + std::to_string(major(*dev)) + ":" + std::to_string(minor(*dev));
}

uint64_t DirtyLimitBytes(const std::string& bdi_dir) {
  uint64_t limit = 0;
  if (!bdi_dir.empty()) {
    limit = ReadNumber(bdi_dir + "/max_bytes", 0);
    // Without strict_limit the bdi may exceed its share until the global limit throttles.
    if (limit != 0 && ReadNumber(bdi_dir + "/strict_limit", 1) == 0) {
      limit = std::max(limit, GlobalDirtyThreshold());
    }
  }
  if (limit == 0) limit = kFallbackDirtyLimit;
  // Each writer dirties up to its ratelimit (a few hundred KiB here) between two checks of
  // the limit, and the limit itself moves with free memory: a quarter more and 4 MiB.
  return limit + limit / 4 + 4 * kMiB;
}

RefusedWrites::RefusedWrites(Filesystem* fs) : fs_(fs) {}

RefusedWrites::~RefusedWrites() { Stop(); }

void RefusedWrites::Add(fuse_ino_t ino, uint64_t off, uint64_t len) {
  MutexLock lock(&mu_);
  if (stop_) return;
  Range& r = pending_[ino];
  r.off = std::min(r.off, off);
  r.end = std::max(r.end, off + len);
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
  cv_.Signal();
}

void RefusedWrites::Stop() {
  std::thread thread;  // Joined unlocked: Run takes mu_ to finish.
  {
    MutexLock lock(&mu_);
    stop_ = true;
    cv_.Signal();
    thread = std::move(thread_);
  }
  if (thread.joinable()) thread.join();
}

void RefusedWrites::Run() {
  MutexLock lock(&mu_);
  for (;;) {
    while (!stop_ && pending_.empty()) cv_.Wait(&mu_);
    if (stop_) return;
    std::map<fuse_ino_t, Range> batch;
    batch.swap(pending_);
    lock.Unlock();
    for (const auto& [ino, range] : batch) Forget(ino, range);
    lock.Lock();
  }
}

void RefusedWrites::Forget(fuse_ino_t ino, const Range& r) {
  fuse_session* se = fs_->session();
  std::shared_ptr<Inode> inode = fs_->Get(ino);
  if (se == nullptr || inode == nullptr) return;
  fuse_lowlevel_notify_inval_inode(se, ino, static_cast<off_t>(r.off),
                                   static_cast<off_t>(r.end - r.off));
}

void ResetKernelInode(Filesystem* fs, Inode* inode) {
  fuse_session* se = fs->session();
  if (se == nullptr) return;
  {
    // Every time (no "already bumped" shortcut): a lookup answered with the old generation
    // just before may have re-created the entry after an earlier invalidation.
    MutexLock lock(&inode->mu);
    ++inode->generation;
  }
  // Every name of the file: the kernel caches entries for a day, so only an invalidated
  // entry leads to the lookup that shows it the new generation.
  std::vector<std::pair<fuse_ino_t, std::string>> names;
  {
    ReaderLock tree(&fs->tree_mu());
    std::vector<Inode*> dirs{fs->table().root().get()};
    while (!dirs.empty()) {
      Inode* dir = dirs.back();
      dirs.pop_back();
      fs->Contents(*dir).ForEachAfter(0, [&](const std::string& name, const Directory::Entry& e) {
        if (e.inode.get() == inode) names.emplace_back(dir->ino, name);
        if (e.inode->is_dir()) dirs.push_back(e.inode.get());
        return true;
      });
    }
  }
  // The kernel takes the directory's lock for this: a request it waits on under that lock
  // (a lookup, a readdir) needs another worker.
  BlockingCall blocking;
  for (const auto& [parent, name] : names) {
    fuse_lowlevel_notify_inval_entry(se, parent, name.c_str(), name.size());
  }
}

void StopCachedWrites(Filesystem* fs, Inode* inode) {
  // Without the writeback cache write(2) is never cached (only a shared mapping's pages
  // are written back): refusing the attributes would fail reads and writes with ENOSPC.
  if (fs->options().no_writeback) return;
  {
    MutexLock lock(&inode->mu);
    inode->stop_cached_writes = true;
  }
  // Every time, not once: a stat (fstat, ls -l) fetches the attributes again, after which
  // the kernel's next cached write would not ask; each near-full writeback re-arms it.
  if (fs->session() != nullptr) {
    (void)fuse_lowlevel_notify_inval_inode(fs->session(), inode->ino, -1, 0);
  }
}

bool SendBlocking(Filesystem* fs, const std::function<int(fuse_session*)>& send) {
  if (fs->options().single_thread || fs->session() == nullptr) return false;
  std::atomic<unsigned>& senders = fs->blocking_senders();
  bool sent = false;
  if (!fs->options().clone_fd || senders.fetch_add(1) + 1 < fs->options().max_threads) {
    BlockingCall blocking;
    sent = send(fs->session()) == 0;
  }
  if (fs->options().clone_fd) senders.fetch_sub(1);
  return sent;
}

void ShareDirectWrite(Filesystem* fs, fuse_ino_t ino, const char* buf, size_t size, off_t off) {
  fuse_bufvec data = FUSE_BUFVEC_INIT(size);
  data.buf[0].mem = const_cast<char*>(buf);
  // ENOENT: the kernel has no such inode cached, so nothing of it to update.
  (void)SendBlocking(fs, [&](fuse_session* se) {
    return fuse_lowlevel_notify_store(se, ino, off, &data, fuse_buf_copy_flags{});
  });
}

bool CachedWritesRefused(Filesystem* fs, Inode* inode) {
  {
    MutexLock lock(&inode->mu);
    if (!inode->stop_cached_writes || inode->write_handles == 0) return false;
  }
  if (fs->NearFull()) return true;
  MutexLock lock(&inode->mu);
  inode->stop_cached_writes = false;  // Room came back: writes may use the cache again.
  return false;
}

}  // namespace zbudfs

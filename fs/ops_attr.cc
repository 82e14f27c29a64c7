// FUSE handlers for the connection and for attributes: init, getattr, setattr, statfs,
// access, forget, forget_multi.
//
// setattr with a size takes data_mu (exclusive) around PageStore::Truncate, then Inode::mu.
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "fs/filesystem.h"
#include "fs/privileges.h"
#include "fs/session_loop.h"

namespace zbudfs {
namespace {

void Init(void* userdata, fuse_conn_info* conn) {
  const MountOptions& opts = static_cast<Filesystem*>(userdata)->options();
  // The kernel caches writes and owns size/mtime until it flushes them to us (unless
  // no_writeback: then each write(2) is a request and we keep mtime, as with direct I/O).
  if (!opts.no_writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) {
    conn->want |= FUSE_CAP_WRITEBACK_CACHE;
  }
  // We are the only writer (keep_cache): the new mtime a write gives a file must not make
  // the kernel drop its cached pages (it would, without the writeback cache, at each stat).
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
  // Let the kernel clear setuid/setgid on write, truncate and chown with its own rules
  // (it knows the writer's capabilities; delayed writeback requests carry no credentials).
  // (FUSE_HANDLE_KILLPRIV_V2, which makes the kernel flag those requests for us and spares
  // a getxattr round trip per write, is added by NegotiateInit: see session_loop.h.)
  conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
  // The data is compressed in our memory: splicing buys nothing.
  conn->want &= ~(FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE | FUSE_CAP_SPLICE_READ);
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  conn->max_write = 1 << 20;  // No more: libfuse 3.14's receive buffer is fixed.
  conn->time_gran = 1;        // Nanosecond timestamps.
  conn->max_background = 64;
  conn->congestion_threshold = 48;
}

void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Filesystem* fs = Filesystem::From(req);
  std::shared_ptr<Inode> inode = fs->Get(ino);
  if (inode == nullptr) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  // With a handle: the kernel's check before a cached write (full_mount.h).
  if (fi != nullptr && CachedWritesRefused(fs, inode.get())) {
    fuse_reply_err(req, ENOSPC);
    return;
  }
  struct stat st;
  fs->FillAttr(inode, &st);
  fuse_reply_attr(req, &st, kCacheTimeout);
}

// Applies the attribute changes of a setattr request but the data's (Inode::mu held).
void ApplyAttrs(Inode* inode, const struct stat* attr, int to_set) REQUIRES(inode->mu) {
  const struct timespec now = Now();
  if (to_set & FUSE_SET_ATTR_SIZE) {
    inode->size = attr->st_size;
    if (!(to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW))) inode->mtime = now;
  }
  if (to_set & FUSE_SET_ATTR_MODE) inode->mode = (inode->mode & S_IFMT) | (attr->st_mode & 07777);
  if (to_set & FUSE_SET_ATTR_UID) inode->uid = attr->st_uid;
  if (to_set & FUSE_SET_ATTR_GID) inode->gid = attr->st_gid;
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    inode->atime = now;
  } else if (to_set & FUSE_SET_ATTR_ATIME) {
    inode->atime = attr->st_atim;
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    inode->mtime = now;
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    inode->mtime = attr->st_mtim;
  }
  inode->ctime = (to_set & FUSE_SET_ATTR_CTIME) ? attr->st_ctim : now;
}

// A setattr with a size: the data and the attributes change under data_mu held
// exclusively, so that readers see a size and the pages behind it together.
int SetAttrWithSize(Filesystem* fs, Inode* inode, const struct stat* attr, int to_set) {
  if (inode->is_dir()) return EISDIR;
  if (!inode->is_reg()) return EINVAL;
  if (attr->st_size < 0) return EINVAL;
  if (static_cast<uint64_t>(attr->st_size) > PageStore::kMaxFileSize) return EFBIG;
  WriterLock data(&inode->data_mu);
  off_t old_size;
  {
    MutexLock lock(&inode->mu);
    old_size = inode->size;
  }
  // At or below the size: also frees pages past EOF (fallocate with KEEP_SIZE), as tmpfs.
  if (attr->st_size <= old_size) {
    Status s = fs->store().Truncate(inode->ino, attr->st_size);
    if (!s.ok()) return StoreErrno(s, EIO);
  }
  MutexLock lock(&inode->mu);
  ApplyAttrs(inode, attr, to_set);
  return 0;
}

// Applies the attribute changes of a setattr request; returns an errno value.
int DoSetAttr(Filesystem* fs, Inode* inode, const struct stat* attr, int to_set) {
  if (to_set & FUSE_SET_ATTR_SIZE) return SetAttrWithSize(fs, inode, attr, to_set);
  MutexLock lock(&inode->mu);
  ApplyAttrs(inode, attr, to_set);
  return 0;
}

// chown(f, -1, -1) of a non-directory clears setuid/setgid too (chown_common), but reaches us
// unflagged, as a setattr of the ctime alone; without the writeback cache (the kernel keeps
// no ctime to send) as an empty one. With the cache nothing else sends the ctime alone.
// Without it, the kernel's removal of a file capability on a write by a caller with
// CAP_FSETID also ends in an empty setattr: such a file (setuid and with a capability) then
// loses setuid/setgid too, which tmpfs would keep — the rarer case, and the safer mistake.
bool IsChownToSameOwner(Filesystem* fs, const Inode& inode, int to_set) {
  if (inode.is_dir()) return false;
  return fs->options().no_writeback ? to_set == 0 : to_set == FUSE_SET_ATTR_CTIME;
}

void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
             fuse_file_info* /*fi*/) {
  Filesystem* fs = Filesystem::From(req);
  std::shared_ptr<Inode> inode = fs->Get(ino);
  if (inode == nullptr) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  gid_t group_before;  // What the kernel tests setgid against: the group before a chgrp.
  {
    MutexLock lock(&inode->mu);
    group_before = inode->gid;
  }
  if (int err = DoSetAttr(fs, inode.get(), attr, to_set); err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  // A truncate or chown the kernel flagged (FUSE_HANDLE_KILLPRIV_V2). It flags truncates only
  // for callers without CAP_FSETID, chowns always. Without KILLPRIV_V2 (clone_fd) the kernel
  // clears only setuid and group-executable setgid on chown itself: the rest is ours.
  const bool chown_to_same = IsChownToSameOwner(fs, *inode, to_set);
  const bool chown = (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) != 0 || chown_to_same;
  if (chown_to_same ||
      (fs->killpriv_v2() ? (CurrentRequestFlags().setattr_valid & kSetattrKillSuidgid) != 0
                         : chown)) {
    KillPrivileges(req, inode.get(), group_before, /*may_be_capable=*/chown);
  }
  struct stat st;
  fs->FillAttr(inode, &st);
  fuse_reply_attr(req, &st, kCacheTimeout);
}

void StatFs(fuse_req_t req, fuse_ino_t /*ino*/) {
  Filesystem* fs = Filesystem::From(req);
  StoreStats s = fs->store().Stats();
  const uint64_t page = kPageSize;
  const uint64_t total = fs->store().capacity_bytes() / page;
  // File pages and, rounded up to pages, extended attributes (PageStore::ChargeMetadata).
  const uint64_t used =
      std::min<uint64_t>(total, (s.orig_data_size + s.metadata_bytes + page - 1) / page);
  const uint64_t inodes = fs->table().size() + fs->table().extra_links();  // Links count.
  struct statvfs st {};
  st.f_bsize = page;
  st.f_frsize = page;
  st.f_blocks = total;
  st.f_bfree = total - used;
  st.f_bavail = total - used;
  const uint64_t limit = fs->nr_inodes();
  st.f_files = limit != 0 ? std::max<uint64_t>(limit, inodes) : std::max<uint64_t>(total, inodes);
  st.f_ffree = st.f_files - inodes;
  st.f_favail = st.f_ffree;
  st.f_namemax = kNameMax;
  fuse_reply_statfs(req, &st);
}

// generic_permission() on our attributes (used only without default_permissions).
void Access(fuse_req_t req, fuse_ino_t ino, int mask) {
  Filesystem* fs = Filesystem::From(req);
  std::shared_ptr<Inode> inode = fs->Get(ino);
  if (inode == nullptr) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  const auto [mode, uid, gid] = inode->ReadOwners();
  const fuse_ctx* ctx = fuse_req_ctx(req);
  int err = 0;
  if (ctx->uid == 0) {
    if ((mask & X_OK) && !S_ISDIR(mode) && !(mode & 0111)) err = EACCES;
  } else if (mask != F_OK) {
    unsigned bits = ctx->uid == uid     ? (mode >> 6) & 7
                    : InGroup(req, gid) ? (mode >> 3) & 7
                                        : mode & 7;
    if ((static_cast<unsigned>(mask) & bits) != static_cast<unsigned>(mask)) err = EACCES;
  }
  fuse_reply_err(req, err);
}

void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  Filesystem::From(req)->Forget(ino, nlookup);
  fuse_reply_none(req);
}

void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  Filesystem* fs = Filesystem::From(req);
  for (size_t i = 0; i < count; ++i) fs->Forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

}  // namespace

void AddAttrOps(fuse_lowlevel_ops* ops) {
  ops->init = Init;
  ops->getattr = GetAttr;
  ops->setattr = SetAttr;
  ops->statfs = StatFs;
  ops->access = Access;
  ops->forget = Forget;
  ops->forget_multi = ForgetMulti;
}

}  // namespace zbudfs

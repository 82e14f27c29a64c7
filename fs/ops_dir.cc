// FUSE handlers for the namespace: lookup, mknod, mkdir, symlink, link, unlink, rmdir,
// rename. (Reading directories and symlinks: ops_readdir.cc.)
//
// Namespace changes hold tree_mu_ exclusively for their whole check-and-change, taking
// Inode::mu of one inode at a time inside it; lookup and readdir hold it shared. No PageStore
// call happens under tree_mu_: attributes (st_blocks asks the store) are filled after it is
// released, and inodes dropped by unlink/rmdir/rename are freed after it is released.
#include <linux/fs.h>  // RENAME_NOREPLACE, RENAME_EXCHANGE

#include <cerrno>
#include <cstring>
#include <vector>

#include "fs/filesystem.h"

namespace zbudfs {
namespace {

constexpr size_t kSymlinkMax = 4095;  // tmpfs: the target and its NUL fit in a page.

bool NameTooLong(const char* name) { return std::strlen(name) > kNameMax; }

// What a new inode is.
struct NodeSpec {
  mode_t mode;          // Type and requested permission bits (umask applied here).
  dev_t rdev;           // Device number for device nodes.
  std::string symlink;  // Target for symlinks.
};

// Looks up a directory inode for a namespace change; errno in *err when unusable.
std::shared_ptr<Inode> GetDir(Filesystem* fs, fuse_ino_t ino, int* err) {
  std::shared_ptr<Inode> dir = fs->Get(ino);
  if (dir == nullptr) {
    *err = ENOENT;
  } else if (!dir->is_dir()) {
    *err = ENOTDIR;
    dir = nullptr;
  }
  return dir;
}

// Replies with e; if the request was interrupted (the kernel then has no reference to the
// inode), takes back the lookup count the reply would have given it, so that the inode (and
// its memory charge) can still be released.
void ReplyEntryOrForget(fuse_req_t req, Filesystem* fs, const fuse_entry_param& e) {
  if (fuse_reply_entry(req, &e) == -ENOENT && e.ino != 0) fs->Forget(e.ino, 1);
}

// True when the directory has been removed (rmdir'd while still referenced).
bool IsDead(Inode* dir) EXCLUDES(dir->mu) {
  MutexLock lock(&dir->mu);
  return dir->nlink == 0;
}

// Marks a directory changed: size by delta entries, nlink by dlinks, mtime/ctime now.
void TouchDir(Inode* dir, int delta, int dlinks, const timespec& now) EXCLUDES(dir->mu) {
  MutexLock lock(&dir->mu);
  dir->size += delta * kDirentSize;
  dir->nlink += dlinks;
  dir->mtime = dir->ctime = now;
}

// True when nr_inodes leaves no room for one more inode or hard link. Call with tree_mu_
// held exclusively, so that creations and links cannot overshoot. An unlinked inode the
// kernel has not forgotten yet (a little after rm) does not count, as on tmpfs; the exact
// count is taken only at the limit.
bool InodesExhausted(Filesystem* fs) REQUIRES(fs->tree_mu()) {
  const uint64_t limit = fs->nr_inodes();
  InodeTable& table = fs->table();
  return limit != 0 && table.size() + table.extra_links() >= limit &&
         table.CountInUse() + table.extra_links() >= limit;
}

// MakeNode's work under tree_mu_; charge: what MakeNode charged for the new inode.
int AddNode(Filesystem* fs, fuse_req_t req, fuse_ino_t parent, const char* name, NodeSpec spec,
            uint64_t charge, std::shared_ptr<Inode>* out, std::shared_ptr<Inode>* existing) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  WriterLock tree(&fs->tree_mu());
  int err = 0;
  std::shared_ptr<Inode> dir = GetDir(fs, parent, &err);
  if (dir == nullptr) return err;
  Directory& contents = fs->MutableContents(*dir);
  if (Directory::Entry* e = contents.Find(name)) {
    if (existing != nullptr) {
      MutexLock lock(&e->inode->mu);
      ++e->inode->nlookup;
      *existing = e->inode;
    }
    return EEXIST;
  }
  if (InodesExhausted(fs)) return ENOSPC;
  mode_t dir_mode;
  gid_t dir_gid;
  {
    MutexLock lock(&dir->mu);
    if (dir->nlink == 0) return ENOENT;
    dir_mode = dir->mode;
    dir_gid = dir->gid;
  }
  mode_t mode = spec.mode;
  if (!S_ISLNK(mode)) mode = (mode & S_IFMT) | (mode & 07777 & ~ctx->umask);
  gid_t gid = ctx->gid;
  if (dir_mode & S_ISGID) {  // BSD group semantics of a setgid directory.
    gid = dir_gid;
    if (S_ISDIR(mode)) mode |= S_ISGID;
  }
  const bool is_dir = S_ISDIR(mode);
  const off_t size = is_dir          ? 2 * kDirentSize
                     : S_ISLNK(mode) ? static_cast<off_t>(spec.symlink.size())
                                     : 0;
  std::shared_ptr<Inode> inode = fs->table().Create(mode, std::move(spec.symlink));
  // Before any reply names the inode: the kernel cannot forget it (and so release it)
  // until then, so its release always sees this.
  inode->charged_memory = charge;
  const timespec now = Now();
  {
    MutexLock lock(&inode->mu);
    inode->nlink = is_dir ? 2 : 1;
    inode->uid = ctx->uid;
    inode->gid = gid;
    inode->rdev = spec.rdev;
    inode->size = size;
    inode->atime = inode->mtime = inode->ctime = now;
    inode->nlookup = 1;
  }
  if (is_dir) fs->SetParent(*inode, parent);
  contents.Insert(name, inode);
  TouchDir(dir.get(), 1, is_dir ? 1 : 0, now);
  *out = std::move(inode);
  return 0;
}

// Creates name in parent. On EEXIST with existing != nullptr, returns the existing inode
// there with its lookup count raised (for create without O_EXCL). The new inode's memory is
// charged to the store first (no store call under tree_mu_), and given back if none is made.
int MakeNode(Filesystem* fs, fuse_req_t req, fuse_ino_t parent, const char* name, NodeSpec spec,
             std::shared_ptr<Inode>* out, std::shared_ptr<Inode>* existing) {
  if (NameTooLong(name)) return ENAMETOOLONG;
  const uint64_t charge = InodeMemory(spec.mode, std::strlen(name), spec.symlink.size());
  fs->store().ChargeInodes(static_cast<int64_t>(charge));
  const int err = AddNode(fs, req, parent, name, std::move(spec), charge, out, existing);
  if (err != 0) fs->store().ChargeInodes(-static_cast<int64_t>(charge));
  return err;
}

// charged: what the caller charged to the store for the new inode (ChargeMetadata), given
// back here if nothing is created.
void ReplyNewNode(fuse_req_t req, Filesystem* fs, fuse_ino_t parent, const char* name,
                  NodeSpec spec, uint64_t charged = 0) {
  std::shared_ptr<Inode> inode;
  if (int err = MakeNode(fs, req, parent, name, std::move(spec), &inode, nullptr); err != 0) {
    // Giving a charge back never fails (PageStore::ChargeMetadata).
    if (charged != 0) (void)fs->store().ChargeMetadata(-static_cast<int64_t>(charged));
    fuse_reply_err(req, err);
    return;
  }
  fuse_entry_param e;
  fs->FillEntry(inode, &e);
  ReplyEntryOrForget(req, fs, e);
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Filesystem* fs = Filesystem::From(req);
  if (NameTooLong(name)) {
    fuse_reply_err(req, ENAMETOOLONG);
    return;
  }
  std::shared_ptr<Inode> child;
  {
    ReaderLock tree(&fs->tree_mu());
    int err = 0;
    std::shared_ptr<Inode> dir = GetDir(fs, parent, &err);
    if (dir == nullptr) {
      tree.Unlock();
      fuse_reply_err(req, err);
      return;
    }
    if (const Directory::Entry* e = fs->Contents(*dir).Find(name)) {
      child = e->inode;
      MutexLock lock(&child->mu);
      ++child->nlookup;
    }
  }
  fuse_entry_param e;
  if (child == nullptr) {  // A negative entry the kernel may cache: we are the only writer.
    std::memset(&e, 0, sizeof(e));
    e.entry_timeout = kCacheTimeout;
  } else {
    fs->FillEntry(child, &e);
  }
  ReplyEntryOrForget(req, fs, e);
}

void MkNod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  switch (mode & S_IFMT) {
    case S_IFREG:
    case S_IFCHR:
    case S_IFBLK:
    case S_IFIFO:
    case S_IFSOCK:
      break;
    default:
      fuse_reply_err(req, EINVAL);
      return;
  }
  ReplyNewNode(req, Filesystem::From(req), parent, name, NodeSpec{mode, rdev, {}});
}

void MkDir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  ReplyNewNode(req, Filesystem::From(req), parent, name,
               NodeSpec{static_cast<mode_t>(S_IFDIR | (mode & 07777)), 0, {}});
}

void Symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  if (std::strlen(link) > kSymlinkMax) {
    fuse_reply_err(req, ENAMETOOLONG);
    return;
  }
  // Charged before tree_mu_ (no store call under it); given back at the inode's final
  // release (Filesystem::ReleaseIfUnused), or by ReplyNewNode if nothing is created.
  Filesystem* fs = Filesystem::From(req);
  const uint64_t cost = SymlinkCost(std::strlen(link));
  if (Status s = fs->store().ChargeMetadata(static_cast<int64_t>(cost)); !s.ok()) {
    fuse_reply_err(req, s.code());
    return;
  }
  ReplyNewNode(req, fs, parent, name, NodeSpec{S_IFLNK | 0777, 0, link}, cost);
}

int DoLink(Filesystem* fs, fuse_ino_t ino, fuse_ino_t newparent, const char* newname,
           std::shared_ptr<Inode>* out) {
  if (NameTooLong(newname)) return ENAMETOOLONG;
  WriterLock tree(&fs->tree_mu());
  std::shared_ptr<Inode> inode = fs->Get(ino);
  if (inode == nullptr) return ENOENT;
  if (inode->is_dir()) return EPERM;
  int err = 0;
  std::shared_ptr<Inode> dir = GetDir(fs, newparent, &err);
  if (dir == nullptr) return err;
  Directory& contents = fs->MutableContents(*dir);
  if (contents.Find(newname) != nullptr) return EEXIST;
  if (IsDead(dir.get())) return ENOENT;
  if (InodesExhausted(fs)) return ENOSPC;  // A link costs an inode, as on tmpfs.
  const timespec now = Now();
  {
    MutexLock lock(&inode->mu);
    if (inode->nlink == 0) return ENOENT;
    fs->table().AddExtraLinks(1);
    ++inode->nlink;
    ++inode->nlookup;
    inode->ctime = now;
  }
  contents.Insert(newname, inode);
  TouchDir(dir.get(), 1, 0, now);
  *out = std::move(inode);
  return 0;
}

void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  Filesystem* fs = Filesystem::From(req);
  std::shared_ptr<Inode> inode;
  if (int err = DoLink(fs, ino, newparent, newname, &inode); err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_entry_param e;
  fs->FillEntry(inode, &e);
  ReplyEntryOrForget(req, fs, e);
}

// unlink (rmdir = false) or rmdir; *victim is the inode whose link went away.
int DoRemove(Filesystem* fs, fuse_ino_t parent, const char* name, bool rmdir,
             std::shared_ptr<Inode>* victim) {
  if (NameTooLong(name)) return ENAMETOOLONG;
  WriterLock tree(&fs->tree_mu());
  int err = 0;
  std::shared_ptr<Inode> dir = GetDir(fs, parent, &err);
  if (dir == nullptr) return err;
  Directory& contents = fs->MutableContents(*dir);
  Directory::Entry* e = contents.Find(name);
  if (e == nullptr) return ENOENT;
  std::shared_ptr<Inode> child = e->inode;
  if (rmdir) {
    if (!child->is_dir()) return ENOTDIR;
    if (!fs->Contents(*child).empty()) return ENOTEMPTY;
  } else if (child->is_dir()) {
    return EISDIR;
  }
  contents.Erase(name);
  const timespec now = Now();
  TouchDir(dir.get(), -1, rmdir ? -1 : 0, now);
  {
    MutexLock lock(&child->mu);
    if (!rmdir && child->nlink > 1) fs->table().AddExtraLinks(-1);
    child->nlink = rmdir ? 0 : child->nlink - 1;
    child->ctime = now;
  }
  *victim = std::move(child);
  return 0;
}

void Remove(fuse_req_t req, fuse_ino_t parent, const char* name, bool rmdir) {
  Filesystem* fs = Filesystem::From(req);
  std::shared_ptr<Inode> victim;
  int err = DoRemove(fs, parent, name, rmdir, &victim);
  if (victim != nullptr) fs->ReleaseIfUnused(victim);
  fuse_reply_err(req, err);
}

void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Remove(req, parent, name, false);
}

void RmDir(fuse_req_t req, fuse_ino_t parent, const char* name) { Remove(req, parent, name, true); }

// True when directory dir_ino is subtree or lies below it.
bool InSubtree(Filesystem* fs, fuse_ino_t dir_ino, fuse_ino_t subtree)
    REQUIRES_SHARED(fs->tree_mu()) {
  for (fuse_ino_t cur = dir_ino;;) {
    if (cur == subtree) return true;
    if (cur == FUSE_ROOT_ID) return false;
    std::shared_ptr<Inode> inode = fs->Get(cur);
    if (inode == nullptr) return false;
    cur = fs->Parent(*inode);
  }
}

// What a rename works on, found under tree_mu_ held exclusively.
struct RenameEnds {
  fuse_ino_t parent, newparent;       // The two directories' numbers...
  std::shared_ptr<Inode> odir, ndir;  // ...and inodes.
  Directory::Entry* src;              // The name moved.
  Directory::Entry* dst;              // The name it moves to, nullptr if absent.
  std::shared_ptr<Inode> moved;       // src's inode.
  std::shared_ptr<Inode> target;      // dst's inode, nullptr if absent.
};

// Checks the flags and the names of a rename; returns an errno value.
int CheckRenameArgs(const char* name, const char* newname, unsigned flags) {
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) return EINVAL;
  if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE)) return EINVAL;
  if (NameTooLong(name) || NameTooLong(newname)) return ENAMETOOLONG;
  return 0;
}

// Fills r with both directories and both names' entries; returns an errno value.
int FindRenameEnds(Filesystem* fs, const char* name, const char* newname, unsigned flags,
                   RenameEnds* r) REQUIRES(fs->tree_mu()) {
  int err = 0;
  r->odir = GetDir(fs, r->parent, &err);
  if (r->odir == nullptr) return err;
  r->ndir = GetDir(fs, r->newparent, &err);
  if (r->ndir == nullptr) return err;
  r->src = fs->MutableContents(*r->odir).Find(name);
  if (r->src == nullptr) return ENOENT;
  r->dst = fs->MutableContents(*r->ndir).Find(newname);
  if ((flags & RENAME_EXCHANGE) && r->dst == nullptr) return ENOENT;
  if ((flags & RENAME_NOREPLACE) && r->dst != nullptr) return EEXIST;
  r->moved = r->src->inode;
  r->target = r->dst == nullptr ? nullptr : r->dst->inode;
  return 0;
}

// Whether the types allow the rename: no directory below itself, a directory only over an
// empty directory, a non-directory only over a non-directory; returns an errno value.
int CheckRenameTypes(Filesystem* fs, const RenameEnds& r, bool exchange) REQUIRES(fs->tree_mu()) {
  const Inode& moved = *r.moved;
  const bool across = r.odir != r.ndir;
  if (moved.is_dir() && across && InSubtree(fs, r.newparent, moved.ino)) return EINVAL;
  if (exchange && r.target->is_dir() && across && InSubtree(fs, r.parent, r.target->ino)) {
    return EINVAL;
  }
  if (!exchange && r.target != nullptr) {
    if (moved.is_dir()) {
      if (!r.target->is_dir()) return ENOTDIR;
      if (!fs->Contents(*r.target).empty()) return ENOTEMPTY;
    } else if (r.target->is_dir()) {
      return EISDIR;
    }
  }
  return IsDead(r.ndir.get()) ? ENOENT : 0;
}

// Sets the change time of inode.
void TouchInode(Inode* inode, const timespec& now) EXCLUDES(inode->mu) {
  MutexLock lock(&inode->mu);
  inode->ctime = now;
}

// RENAME_EXCHANGE: swaps the two names' inodes.
void ExchangeEntries(Filesystem* fs, const RenameEnds& r, const timespec& now)
    REQUIRES(fs->tree_mu()) {
  std::swap(r.src->inode, r.dst->inode);
  if (r.odir != r.ndir) {
    // Each side's parent gains what it receives and loses what it gives.
    const int odirs = (r.target->is_dir() ? 1 : 0) - (r.moved->is_dir() ? 1 : 0);
    TouchDir(r.odir.get(), 0, odirs, now);
    TouchDir(r.ndir.get(), 0, -odirs, now);
    if (r.moved->is_dir()) fs->SetParent(*r.moved, r.newparent);
    if (r.target->is_dir()) fs->SetParent(*r.target, r.parent);
  } else {
    TouchDir(r.odir.get(), 0, 0, now);
  }
  TouchInode(r.moved.get(), now);
  TouchInode(r.target.get(), now);
}

// A plain rename: moves src's inode to newname, over the target if any (whose link goes).
void MoveEntry(Filesystem* fs, const RenameEnds& r, const char* name, const char* newname,
               const timespec& now) REQUIRES(fs->tree_mu()) {
  fs->MutableContents(*r.odir).Erase(name);  // r.src is gone from here on.
  if (r.target != nullptr) {
    r.dst->inode = r.moved;  // Replace in place (same cookie).
  } else {
    fs->MutableContents(*r.ndir).Insert(newname, r.moved);
  }
  const int dirs_moved = r.moved->is_dir() ? 1 : 0;
  const int dirs_replaced = r.target != nullptr && r.target->is_dir() ? 1 : 0;
  if (r.odir == r.ndir) {
    TouchDir(r.odir.get(), r.target != nullptr ? -1 : 0, -dirs_replaced, now);
  } else {
    TouchDir(r.odir.get(), -1, -dirs_moved, now);
    TouchDir(r.ndir.get(), r.target != nullptr ? 0 : 1, dirs_moved - dirs_replaced, now);
    if (r.moved->is_dir()) fs->SetParent(*r.moved, r.newparent);
  }
  TouchInode(r.moved.get(), now);
  if (r.target != nullptr) {
    Inode* target = r.target.get();
    MutexLock lock(&target->mu);
    if (!target->is_dir() && target->nlink > 1) fs->table().AddExtraLinks(-1);
    target->nlink = target->is_dir() ? 0 : target->nlink - 1;
    target->ctime = now;
  }
}

// rename(2); *replaced is the inode whose name was replaced (its link went away).
int DoRename(Filesystem* fs, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
             const char* newname, unsigned flags, std::shared_ptr<Inode>* replaced) {
  if (int err = CheckRenameArgs(name, newname, flags); err != 0) return err;
  WriterLock tree(&fs->tree_mu());
  RenameEnds r{};
  r.parent = parent;
  r.newparent = newparent;
  if (int err = FindRenameEnds(fs, name, newname, flags, &r); err != 0) return err;
  if (r.target == r.moved) return 0;  // Two links to one inode: POSIX says do nothing.
  const bool exchange = flags & RENAME_EXCHANGE;
  if (int err = CheckRenameTypes(fs, r, exchange); err != 0) return err;
  const timespec now = Now();
  if (exchange) {
    ExchangeEntries(fs, r, now);
  } else {
    MoveEntry(fs, r, name, newname, now);
    *replaced = std::move(r.target);
  }
  return 0;
}

void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
            const char* newname, unsigned int flags) {
  Filesystem* fs = Filesystem::From(req);
  std::shared_ptr<Inode> replaced;
  int err = DoRename(fs, parent, name, newparent, newname, flags, &replaced);
  if (replaced != nullptr) fs->ReleaseIfUnused(replaced);
  fuse_reply_err(req, err);
}

}  // namespace

// Used by ops_file.cc's create.
int MakeRegularFile(Filesystem* fs, fuse_req_t req, fuse_ino_t parent, const char* name,
                    mode_t mode, std::shared_ptr<Inode>* out, std::shared_ptr<Inode>* existing) {
  return MakeNode(fs, req, parent, name,
                  NodeSpec{static_cast<mode_t>(S_IFREG | (mode & 07777)), 0, {}}, out, existing);
}

void AddDirOps(fuse_lowlevel_ops* ops) {
  ops->lookup = Lookup;
  ops->mknod = MkNod;
  ops->mkdir = MkDir;
  ops->symlink = Symlink;
  ops->link = Link;
  ops->unlink = Unlink;
  ops->rmdir = RmDir;
  ops->rename = Rename;
}

}  // namespace zbudfs

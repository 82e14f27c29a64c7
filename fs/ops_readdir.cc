// FUSE handlers that read the namespace: readlink, opendir, readdir, readdirplus,
// releasedir, fsyncdir.
//
// readdir collects names and types (fixed at creation) under tree_mu_ (shared), taking each
// child's Inode::mu briefly for readdirplus to raise its lookup count; attributes (st_blocks asks
// the PageStore) are filled and the reply is sent after tree_mu_ is released. Readdir
// offsets are per-directory cookies that grow with each insert, so a listing resumed after
// concurrent changes returns every untouched entry exactly once.
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "fs/filesystem.h"

namespace zbudfs {
namespace {

void ReadLink(fuse_req_t req, fuse_ino_t ino) {
  std::shared_ptr<Inode> inode = Filesystem::From(req)->Get(ino);
  if (inode == nullptr) {
    fuse_reply_err(req, ENOENT);
  } else if (!inode->is_symlink()) {
    fuse_reply_err(req, EINVAL);
  } else {
    fuse_reply_readlink(req, inode->symlink ? inode->symlink->c_str() : "");
  }
}

void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  std::shared_ptr<Inode> inode = Filesystem::From(req)->Get(ino);
  if (inode == nullptr) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  if (!inode->is_dir()) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  {
    MutexLock lock(&inode->mu);
    ++inode->open_count;
  }
  fi->fh = reinterpret_cast<uint64_t>(inode.get());
  fi->cache_readdir = 1;
  fi->keep_cache = 1;
  fuse_reply_open(req, fi);
}

// One name of a readdir reply, collected under tree_mu_ and sent after it.
struct DirItem {
  std::string name;
  std::shared_ptr<Inode> inode;  // nullptr for "." and "..".
  fuse_ino_t ino;
  mode_t type;
  off_t next_off;
};

// The names of dir after cookie off that fit in size bytes of reply, under tree_mu_
// (shared); for readdirplus (plus) each child's lookup count is raised.
std::vector<DirItem> CollectItems(Filesystem* fs, fuse_req_t req, const Inode& dir, size_t size,
                                  off_t off, bool plus) {
  std::vector<DirItem> items;
  ReaderLock tree(&fs->tree_mu());
  size_t want = 0;
  auto fits = [&](const char* name) {
    size_t n = plus ? fuse_add_direntry_plus(req, nullptr, 0, name, nullptr, 0)
                    : fuse_add_direntry(req, nullptr, 0, name, nullptr, 0);
    if (want + n > size) return false;
    want += n;
    return true;
  };
  if (off < 1 && fits(".")) items.push_back({".", nullptr, dir.ino, S_IFDIR, 1});
  if (off < 2 && fits("..")) items.push_back({"..", nullptr, fs->Parent(dir), S_IFDIR, 2});
  const uint64_t from = off < 2 ? 2 : static_cast<uint64_t>(off);
  fs->Contents(dir).ForEachAfter(from, [&](const std::string& name, const Directory::Entry& e) {
    const std::shared_ptr<Inode>& child = e.inode;
    if (!fits(name.c_str())) return false;
    if (plus) {
      MutexLock lock(&child->mu);
      ++child->nlookup;
    }
    items.push_back({name, child, child->ino, child->type(), static_cast<off_t>(e.cookie)});
    return true;
  });
  return items;
}

// Adds item to buf (of size bytes, used of them taken); returns the bytes it needs, which
// did not fit when more than size - used.
size_t AddItem(Filesystem* fs, fuse_req_t req, const DirItem& item, bool plus, char* buf,
               size_t size, size_t used) {
  if (!plus) {
    struct stat st {};
    st.st_ino = item.ino;
    st.st_mode = item.type;
    return fuse_add_direntry(req, buf + used, size - used, item.name.c_str(), &st, item.next_off);
  }
  fuse_entry_param e;
  if (item.inode == nullptr) {
    std::memset(&e, 0, sizeof(e));
    e.attr.st_ino = item.ino;
    e.attr.st_mode = item.type;
  } else {
    fs->FillEntry(item.inode, &e);
  }
  return fuse_add_direntry_plus(req, buf + used, size - used, item.name.c_str(), &e, item.next_off);
}

void ReadDirCommon(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
  Filesystem* fs = Filesystem::From(req);
  std::shared_ptr<Inode> dir = fs->Get(ino);
  if (dir == nullptr || !dir->is_dir()) {
    fuse_reply_err(req, dir == nullptr ? ENOENT : ENOTDIR);
    return;
  }
  // Attributes (st_blocks asks the PageStore) are filled after tree_mu_ is released.
  const std::vector<DirItem> items = CollectItems(fs, req, *dir, size, off, plus);
  std::vector<char> buf(size);
  size_t used = 0;
  size_t i = 0;
  for (; i < items.size(); ++i) {
    const size_t n = AddItem(fs, req, items[i], plus, buf.data(), size, used);
    if (n > size - used) break;
    used += n;
  }
  const size_t sent = i;
  if (plus) {  // Entries that did not fit were not looked up after all.
    for (; i < items.size(); ++i) {
      if (items[i].inode != nullptr) fs->Forget(items[i].ino, 1);
    }
  }
  // Interrupted: the kernel got none of them, so none of their lookups either (as lookup).
  if (fuse_reply_buf(req, buf.data(), used) == -ENOENT && plus) {
    for (i = 0; i < sent; ++i) {
      if (items[i].inode != nullptr) fs->Forget(items[i].ino, 1);
    }
  }
}

void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* /*fi*/) {
  ReadDirCommon(req, ino, size, off, false);
}

void ReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* /*fi*/) {
  ReadDirCommon(req, ino, size, off, true);
}

void ReleaseDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* /*fi*/) {
  Filesystem* fs = Filesystem::From(req);
  if (std::shared_ptr<Inode> inode = fs->Get(ino)) {
    {
      MutexLock lock(&inode->mu);
      if (inode->open_count > 0) --inode->open_count;
    }
    fs->ReleaseIfUnused(inode);
  }
  fuse_reply_err(req, 0);
}

void FsyncDir(fuse_req_t req, fuse_ino_t /*ino*/, int /*datasync*/, fuse_file_info* /*fi*/) {
  fuse_reply_err(req, 0);
}

}  // namespace

void AddReadDirOps(fuse_lowlevel_ops* ops) {
  ops->readlink = ReadLink;
  ops->opendir = OpenDir;
  ops->readdir = ReadDir;
  ops->readdirplus = ReadDirPlus;
  ops->releasedir = ReleaseDir;
  ops->fsyncdir = FsyncDir;
}

}  // namespace zbudfs

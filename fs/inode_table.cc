// Inodes, directories and the inode table. DropIfUnused and CountInUse take
// InodeTable::mu_ then Inode::mu (one at a time); nothing else nests.
#include "fs/inode_table.h"

#include <algorithm>
#include <cassert>

namespace zbudfs {

Directory::Entry* Directory::Find(std::string_view name) {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &it->second;
}

const Directory::Entry* Directory::Find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &it->second;
}

void Directory::Insert(std::string_view name, std::shared_ptr<Inode> inode) {
  uint64_t cookie = next_cookie_++;
  auto [it, inserted] = by_name_.emplace(std::string(name), Entry{std::move(inode), cookie});
  assert(inserted);
  (void)inserted;
  by_cookie_.push_back(Slot{cookie, it});
}

std::shared_ptr<Inode> Directory::Erase(std::string_view name) {
  auto it = by_name_.find(name);
  assert(it != by_name_.end());
  std::shared_ptr<Inode> inode = std::move(it->second.inode);
  auto slot = std::lower_bound(by_cookie_.begin(), by_cookie_.end(), it->second.cookie,
                               [](const Slot& s, uint64_t c) { return s.cookie < c; });
  assert(slot != by_cookie_.end() && slot->it == it);
  slot->it = by_name_.end();
  by_name_.erase(it);
  if (++dead_ > 16 && dead_ > by_cookie_.size() / 2) {  // Compact: drop the tombstones.
    std::erase_if(by_cookie_, [this](const Slot& s) { return s.it == by_name_.end(); });
    dead_ = 0;
    if (by_cookie_.capacity() > 2 * by_cookie_.size() + 16) by_cookie_.shrink_to_fit();
  }
  return inode;
}

Inode::Inode(fuse_ino_t ino_in, mode_t mode_in, std::string symlink_target)
    : ino(ino_in),
      symlink(S_ISLNK(mode_in) ? std::make_unique<const std::string>(std::move(symlink_target))
                               : nullptr),
      mode(mode_in),
      type_(mode_in & S_IFMT),
      dir_(S_ISDIR(mode_in) ? std::make_unique<Directory>() : nullptr) {}

InodeTable::InodeTable() {
  root_ = std::make_shared<Inode>(FUSE_ROOT_ID, S_IFDIR | 01777, std::string());
  root_->nlink = 2;
  root_->nlookup = 1;  // The kernel holds the root without looking it up.
  root_->uid = getuid();
  root_->gid = getgid();
  root_->size = 2 * kDirentSize;
  root_->atime = root_->mtime = root_->ctime = Now();
  inodes_.emplace(FUSE_ROOT_ID, root_);
}

std::shared_ptr<Inode> InodeTable::Get(fuse_ino_t ino) const {
  MutexLock lock(&mu_);
  auto it = inodes_.find(ino);
  return it == inodes_.end() ? nullptr : it->second;
}

std::shared_ptr<Inode> InodeTable::Create(mode_t mode, std::string symlink_target) {
  MutexLock lock(&mu_);
  fuse_ino_t ino = next_ino_++;
  auto inode = std::make_shared<Inode>(ino, mode, std::move(symlink_target));
  inodes_.emplace(ino, inode);
  return inode;
}

size_t InodeTable::CountInUse() const {
  MutexLock lock(&mu_);
  size_t n = 0;
  for (const auto& [ino, inode] : inodes_) {
    MutexLock ilock(&inode->mu);
    n += inode->nlink != 0 || inode->open_count != 0;
  }
  return n;
}

bool InodeTable::DropIfUnused(const std::shared_ptr<Inode>& inode) {
  if (inode->ino == FUSE_ROOT_ID) return false;
  MutexLock lock(&mu_);
  {
    MutexLock ilock(&inode->mu);
    if (inode->nlink != 0 || inode->nlookup != 0 || inode->open_count != 0) return false;
  }
  return inodes_.erase(inode->ino) != 0;
}

size_t InodeTable::size() const {
  MutexLock lock(&mu_);
  return inodes_.size();
}

struct timespec Now() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}

}  // namespace zbudfs

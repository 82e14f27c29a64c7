// Inodes, directories and the table of every live inode of a mount.
//
// Owns: each Inode's metadata (attributes, xattrs, lookup and open counts), directory
// contents, and the map from inode number to Inode. Inode numbers are never reused (a
// 64-bit counter), so st_ino is stable; the generation starts at 1 and grows only when the
// kernel must drop its cached inode (full_mount.h); the inode number is
// also the PageStore FileId of a regular file.
//
// An inode lives in the table while it has a link (nlink > 0), a kernel lookup reference
// (nlookup > 0) or an open handle (open_count > 0). The last of those to go drops it from the
// table (DropIfUnused) and the caller then frees its file data (PageStore::Remove).
//
// Locking: Inode::mu guards an inode's fields, InodeTable::mu_ the map; a directory's
// contents and parent link are guarded by Filesystem::tree_mu_ and reached only through
// Filesystem's accessors. The lock order is in fs/filesystem.h.
#ifndef ZBUDFS_FS_INODE_TABLE_H_
#define ZBUDFS_FS_INODE_TABLE_H_

#define FUSE_USE_VERSION 314
#include <fuse3/fuse_lowlevel.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store/mutex.h"
#include "store/thread_annotations.h"

namespace zbudfs {

struct Inode;

// Bytes a directory entry adds to the directory's st_size (tmpfs's BOGO_DIRENT_SIZE).
inline constexpr off_t kDirentSize = 20;

// The entries of one directory, by name and by readdir cookie. Not locked itself: a
// directory's Directory is reached only through Filesystem::Contents/MutableContents, which
// require Filesystem::tree_mu_.
class Directory {
 public:
  // One name in a directory.
  struct Entry {
    std::shared_ptr<Inode> inode;  // The inode the name links to.
    uint64_t cookie;               // Readdir offset of this entry; grows with each insert.
  };
  using ByName = std::map<std::string, Entry, std::less<>>;

  Directory() = default;
  Directory(const Directory&) = delete;
  Directory& operator=(const Directory&) = delete;

  // The entry called name, or nullptr.
  Entry* Find(std::string_view name);
  const Entry* Find(std::string_view name) const;
  // Adds name (which must be absent) with a fresh cookie.
  void Insert(std::string_view name, std::shared_ptr<Inode> inode);
  // Removes name (which must be present) and returns its inode.
  std::shared_ptr<Inode> Erase(std::string_view name);
  // True when the directory holds no names.
  bool empty() const { return by_name_.empty(); }
  // Number of names.
  size_t size() const { return by_name_.size(); }
  // Calls fn(name, entry) for the entries whose cookie is > cookie, in cookie order, while fn
  // returns true.
  template <typename Fn>
  void ForEachAfter(uint64_t cookie, Fn&& fn) const;

  // Cookies 1 and 2 are "." and ".."; entries start at 3.
  static constexpr uint64_t kFirstCookie = 3;

 private:
  // One name in cookie order; erased names stay as tombstones (it == by_name_.end()) until
  // they are half the slots. 16 bytes a name, where a std::map node took 64.
  struct Slot {
    uint64_t cookie;
    ByName::iterator it;
  };
  ByName by_name_;               // name -> entry.
  std::vector<Slot> by_cookie_;  // Ascending cookies (inserts take the next one), for readdir.
  size_t dead_ = 0;              // Tombstones in by_cookie_.
  uint64_t next_cookie_ = kFirstCookie;  // Next cookie to hand out.
};

template <typename Fn>
void Directory::ForEachAfter(uint64_t cookie, Fn&& fn) const {
  auto it = std::upper_bound(by_cookie_.begin(), by_cookie_.end(), cookie,
                             [](uint64_t c, const Slot& s) { return c < s.cookie; });
  for (; it != by_cookie_.end(); ++it) {
    if (it->it == by_name_.end()) continue;  // Erased.
    if (!fn(it->it->first, it->it->second)) return;
  }
}

// Extended attributes by name. Most inodes have none, so Inode holds a pointer to one.
using XattrMap = std::map<std::string, std::string, std::less<>>;

// One file, directory, symlink or special file. The const members and the type are fixed
// at creation and read without a lock; the rest is guarded by mu, except the directory
// contents and parent link (tree_mu_, through Filesystem).
struct Inode {
  Inode(fuse_ino_t ino, mode_t mode, std::string symlink_target);
  Inode(const Inode&) = delete;
  Inode& operator=(const Inode&) = delete;

  const fuse_ino_t ino;                              // Inode number and PageStore FileId.
  const std::unique_ptr<const std::string> symlink;  // Target of a symlink, else nullptr.

  SharedMutex data_mu ACQUIRED_BEFORE(mu);  // Data vs. size changes (see the lock order).

  Mutex mu;
  mode_t mode GUARDED_BY(mu);                       // Type and permission bits.
  uint32_t nlink GUARDED_BY(mu) = 0;                // Links (directories: 2 + subdirectories).
  uid_t uid GUARDED_BY(mu) = 0;                     // Owner.
  gid_t gid GUARDED_BY(mu) = 0;                     // Group.
  dev_t rdev GUARDED_BY(mu) = 0;                    // Device number of device nodes.
  off_t size GUARDED_BY(mu) = 0;                    // st_size.
  struct timespec atime GUARDED_BY(mu) {};          // Access time.
  struct timespec mtime GUARDED_BY(mu) {};          // Modification time.
  struct timespec ctime GUARDED_BY(mu) {};          // Change time.
  uint64_t nlookup GUARDED_BY(mu) = 0;              // Kernel lookup references.
  uint32_t open_count GUARDED_BY(mu) = 0;           // Open handles (files and directories).
  uint32_t write_handles GUARDED_BY(mu) = 0;        // Open handles that may write.
  std::unique_ptr<XattrMap> xattrs GUARDED_BY(mu);  // Extended attributes; nullptr at first.

  // What was charged to the store for this inode (InodeMemory, PageStore::ChargeInodes):
  // set once by MakeNode before the inode is published, given back at its final release.
  uint64_t charged_memory = 0;

  // Raised when refused writeback must reset the kernel's inode (full_mount.h).
  uint64_t generation GUARDED_BY(mu) = 1;
  // Refused writeback (ops_file.cc): the size before writeback grew the file since the last
  // fsync or last close (UINT64_MAX: it did not), and whether writeback was refused since.
  uint64_t wb_floor GUARDED_BY(mu) = UINT64_MAX;
  bool wb_refused GUARDED_BY(mu) = false;
  // Cached writes are to stop while the mount is near full (full_mount.h).
  bool stop_cached_writes GUARDED_BY(mu) = false;

  // The permission bits and owners, read together (for permission decisions).
  struct Owners {
    mode_t mode;
    uid_t uid;
    gid_t gid;
  };
  Owners ReadOwners() EXCLUDES(mu) {
    MutexLock lock(&mu);
    return Owners{mode, uid, gid};
  }

  bool is_dir() const { return dir_ != nullptr; }     // Fixed at creation.
  bool is_reg() const { return S_ISREG(type_); }      // Fixed at creation.
  bool is_symlink() const { return S_ISLNK(type_); }  // Fixed at creation.
  mode_t type() const { return type_; }               // S_IFMT bits, fixed at creation.

 private:
  // Only Filesystem, which owns tree_mu_, reaches these (Contents, Parent, ...): the
  // analysis then checks every access for that lock.
  friend class Filesystem;
  const mode_t type_;                     // S_IFMT bits.
  const std::unique_ptr<Directory> dir_;  // Set for directories.
  fuse_ino_t parent_ = FUSE_ROOT_ID;      // Directories: the parent.
};

// Every live inode by number, guarded by mu_.
class InodeTable {
 public:
  InodeTable();
  InodeTable(const InodeTable&) = delete;
  InodeTable& operator=(const InodeTable&) = delete;

  // The root directory (inode 1); it is never dropped.
  const std::shared_ptr<Inode>& root() const { return root_; }
  // The live inode numbered ino, or nullptr.
  std::shared_ptr<Inode> Get(fuse_ino_t ino) const;
  // Makes a new inode with a fresh number and adds it to the table.
  std::shared_ptr<Inode> Create(mode_t mode, std::string symlink_target);
  // Drops inode from the table when it has no link, lookup or handle left; true if it did.
  bool DropIfUnused(const std::shared_ptr<Inode>& inode);
  // Number of live inodes.
  size_t size() const;
  // Live inodes a user can still reach: linked or open, so not those waiting only for the
  // kernel's forget. Locks each inode in turn: O(inodes), for when size() is at a limit.
  size_t CountInUse() const;
  // Names of non-directories beyond their first (hard links). nr_inodes and `df -i` count
  // each as one inode, as tmpfs does (each pins a dentry in memory). Changed by link,
  // unlink and rename under tree_mu_ held exclusively, where the limit is also checked.
  uint64_t extra_links() const { return extra_links_.load(std::memory_order_relaxed); }
  void AddExtraLinks(int64_t n) { extra_links_.fetch_add(n, std::memory_order_relaxed); }

 private:
  mutable Mutex mu_;
  std::unordered_map<fuse_ino_t, std::shared_ptr<Inode>> inodes_ GUARDED_BY(mu_);  // Live.
  fuse_ino_t next_ino_ GUARDED_BY(mu_) = FUSE_ROOT_ID + 1;                         // Next number.
  std::shared_ptr<Inode> root_;           // Inode 1; set by the constructor, then fixed.
  std::atomic<uint64_t> extra_links_{0};  // See extra_links().
};

// CLOCK_REALTIME now.
struct timespec Now();

}  // namespace zbudfs

#endif  // ZBUDFS_FS_INODE_TABLE_H_

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
// Locking (the lock order of the daemon; take them only in this order):
//   1. Filesystem::tree_mu_ (shared_mutex)  directory contents (Directory), Inode::parent.
//   2. Inode::data_mu       (shared_mutex)  the file's data against size changes: shared for
//                                           Write/Read, exclusive for truncate/fallocate.
//   3. InodeTable::mu_      (mutex)         the number -> Inode map.
//   4. Inode::mu            (mutex)         every other field of one Inode; at most one held.
// PageStore calls happen with at most data_mu of that one inode held (never tree_mu_,
// InodeTable::mu_ or Inode::mu), and the store's own locks come after all of these.
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
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace zbudfs {

struct Inode;

// Bytes a directory entry adds to the directory's st_size (tmpfs's BOGO_DIRENT_SIZE).
inline constexpr off_t kDirentSize = 20;

// The entries of one directory, by name and by readdir cookie. Guarded by tree_mu_.
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

// One file, directory, symlink or special file. Fields without a note are guarded by mu.
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

struct Inode {
  Inode(fuse_ino_t ino, mode_t mode, std::string symlink_target);
  Inode(const Inode&) = delete;
  Inode& operator=(const Inode&) = delete;

  const fuse_ino_t ino;                              // Inode number and PageStore FileId.
  const std::unique_ptr<const std::string> symlink;  // Target of a symlink, else nullptr.
  const std::unique_ptr<Directory> dir;  // Set for directories; contents under tree_mu_.
  fuse_ino_t parent = FUSE_ROOT_ID;      // Directories: the parent (guarded by tree_mu_).

  std::shared_mutex data_mu;  // Data vs. size changes (see the lock order).

  std::mutex mu;                     // Guards what follows.
  mode_t mode;                       // Type and permission bits.
  uint32_t nlink = 0;                // Links (directories: 2 + subdirectories).
  uid_t uid = 0;                     // Owner.
  gid_t gid = 0;                     // Group.
  dev_t rdev = 0;                    // Device number of device nodes.
  off_t size = 0;                    // st_size.
  struct timespec atime {};          // Access time.
  struct timespec mtime {};          // Modification time.
  struct timespec ctime {};          // Change time.
  uint64_t nlookup = 0;              // Kernel lookup references.
  uint32_t open_count = 0;           // Open handles (files and directories).
  uint32_t write_handles = 0;        // Open handles that may write (dirty kernel pages).
  std::unique_ptr<XattrMap> xattrs;  // Extended attributes; nullptr until the first one.

  // Raised when refused writeback must reset the kernel's inode (full_mount.h).
  uint64_t generation = 1;
  // Refused writeback (ops_file.cc): the size before writeback grew the file since the last
  // fsync or last close (UINT64_MAX: it did not), and whether writeback was refused since.
  uint64_t wb_floor = UINT64_MAX;
  bool wb_refused = false;
  // Cached writes are to stop while the mount is near full (full_mount.h).
  bool stop_cached_writes = false;

  bool is_dir() const { return dir != nullptr; }  // Immutable property.
  bool is_reg() const { return S_ISREG(type_); }  // Immutable property.

 private:
  const mode_t type_;  // S_IFMT bits, fixed at creation.
};

// Every live inode by number. Locking: mu_ (see the lock order above).
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
  mutable std::mutex mu_;                                          // Guards what follows.
  std::unordered_map<fuse_ino_t, std::shared_ptr<Inode>> inodes_;  // Live inodes.
  fuse_ino_t next_ino_ = FUSE_ROOT_ID + 1;                         // Next number.
  std::shared_ptr<Inode> root_;                                    // Inode 1.
  std::atomic<uint64_t> extra_links_{0};                           // See extra_links().
};

// CLOCK_REALTIME now.
struct timespec Now();

}  // namespace zbudfs

#endif  // ZBUDFS_FS_INODE_TABLE_H_

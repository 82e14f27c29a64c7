// Filesystem: the state of one mount and the helpers the FUSE handlers share.
//
// Owns: the PageStore (file data), the InodeTable (metadata) and tree_mu_, which guards
// every directory's contents and directories' parent links. The FUSE callbacks live in
// ops_*.cc, one file per group of operations; each is a thin wrapper that calls a helper
// returning an errno value (0 = success) and then replies.
//
// Lock order of the fs layer (written here only; take them only in this order):
//   0. Filesystem::remount_mu_ (Mutex)     one remount at a time; held across the store's
//                                          SetLimits (which may push pages out), never
//                                          across a reply.
//   1. Filesystem::tree_mu_ (SharedMutex)  every Directory and Inode's parent link: shared
//                                          for lookup/readdir, exclusive for namespace changes.
//   2. Inode::data_mu       (SharedMutex)  one file's data against size changes: shared for
//                                          read/write, exclusive for truncate/fallocate.
//   3. InodeTable::mu_      (Mutex)        the number -> Inode map.
//   4. Inode::mu            (Mutex)        every other field of one Inode; never two at once.
// Taken alone, after all of these: RefusedWrites::mu_ (full_mount.h), the session loop's
// worker and stop locks (session_loop.cc), the log's rate limits (log.cc).
// No lock of ours but Inode::data_mu is held across PageStore calls (whose own locks come
// after all of these); replies are sent with no lock held.
#ifndef ZBUDFS_FS_FILESYSTEM_H_
#define ZBUDFS_FS_FILESYSTEM_H_

#define FUSE_USE_VERSION 314
#include <fuse3/fuse_lowlevel.h>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "fs/direct_write_log.h"
#include "fs/full_mount.h"
#include "fs/inode_table.h"
#include "fs/options.h"
#include "store/mutex.h"
#include "store/overflow_store.h"
#include "store/page_store.h"
#include "store/thread_annotations.h"

namespace zbudfs {

// The root directory's control attributes: readable (and the remount one writable) by name,
// never listed, so that xattr dumps and restores of the root (getfattr -R, tar --xattrs,
// rsync -X) neither see nor try to restore them.
inline constexpr char kStatsXattr[] = "user.zbudfs.stats";      // Statistics (read only).
inline constexpr char kOptionsXattr[] = "user.zbudfs.options";  // Options in effect (read only).
// Set to a remount's option list (root or the mount's owner); read: the last remount's error.
inline constexpr char kRemountXattr[] = "user.zbudfs.remount";
// Set on the root (root or the mount's owner): packs every file's cold pages into clusters
// now (zbudfsctl pack); never stored, reads say ENODATA.
inline constexpr char kPackXattr[] = "user.zbudfs.pack";
// On every regular file, read only and never listed: what the file costs (zbudfsctl du).
inline constexpr char kUsageXattr[] = "user.zbudfs.usage";
// Longest file name, as for tmpfs.
inline constexpr size_t kNameMax = 255;
// Entry and attribute cache timeout: the daemon is the only one changing the tree.
inline constexpr double kCacheTimeout = 86400.0;
// st_blksize with -o no_writeback (Filesystem::FillAttr).
inline constexpr blksize_t kNoWritebackBlockSize = 128 << 10;

class Filesystem {
 public:
  explicit Filesystem(const MountOptions& options);
  ~Filesystem();
  Filesystem(const Filesystem&) = delete;
  Filesystem& operator=(const Filesystem&) = delete;

  // Creates the PageStore; call after daemonizing (the store may start threads).
  void StartStore(std::shared_ptr<OverflowStore> overflow);

  // The low-level operation table with every handler of ops_*.cc.
  static fuse_lowlevel_ops Ops();
  // The Filesystem a request belongs to.
  static Filesystem* From(fuse_req_t req) {
    return static_cast<Filesystem*>(fuse_req_userdata(req));
  }

  PageStore& store() { return *store_; }  // File data.
  InodeTable& table() { return table_; }  // Metadata.
  // The options the mount started with; size, mem_limit, overflow_limit, zstd_level and
  // nr_inodes may have changed since (Remount): read those from the store and nr_inodes().
  const MountOptions& options() const { return options_; }
  uint64_t nr_inodes() const { return nr_inodes_.load(std::memory_order_relaxed); }
  // Applies a remount's option list (ParseRemount) to the options in effect: all or
  // nothing. The error (EINVAL, ENOSPC, EIO) says why, and LastRemountError() keeps it.
  Status Remount(std::string_view list) EXCLUDES(remount_mu_);
  // The options in effect, one "name value" line each (kOptionsXattr).
  std::string OptionsText() EXCLUDES(remount_mu_);
  std::string LastRemountError() EXCLUDES(remount_mu_);
  SharedMutex& tree_mu() RETURN_CAPABILITY(tree_mu_) { return tree_mu_; }  // Lock 1.
  // A directory's contents and parent link (dir->is_dir()), under tree_mu_: shared to
  // read, exclusive to change.
  const Directory& Contents(const Inode& dir) const REQUIRES_SHARED(tree_mu_) { return *dir.dir_; }
  Directory& MutableContents(Inode& dir) REQUIRES(tree_mu_) { return *dir.dir_; }
  fuse_ino_t Parent(const Inode& dir) const REQUIRES_SHARED(tree_mu_) { return dir.parent_; }
  void SetParent(Inode& dir, fuse_ino_t parent) REQUIRES(tree_mu_) { dir.parent_ = parent; }
  // The session, for notifications to the kernel (set once, before the loop starts).
  void set_session(fuse_session* se) { session_ = se; }
  fuse_session* session() const { return session_; }
  // Whether the kernel granted FUSE_HANDLE_KILLPRIV_V2 (set once, before the workers start):
  // then flagged writes, truncates and chowns must clear privileges here (KillPrivileges).
  void set_killpriv_v2(bool on) { killpriv_v2_ = on; }
  bool killpriv_v2() const { return killpriv_v2_; }
  // Workers waiting in lseek for the kernel to write dirty pages back (ops_file.cc): at
  // least one worker must stay free to serve those writes.
  std::atomic<unsigned>& blocking_senders() { return blocking_senders_; }

  // A full mount (full_mount.h). The bdi of the mount ("/sys/class/bdi/MAJ:MIN", "" if
  // unknown), set once before the workers start.
  void set_bdi_dir(std::string dir) { bdi_dir_ = std::move(dir); }
  // Bytes of new data the store can surely still take, one uncompressed page per page: the
  // lesser of the capacity left and the memory left below mem_limit plus the overflow's room.
  uint64_t RoomBytes() const;
  // True when the room is below what the kernel may hold dirty for this mount: writable
  // opens then get direct I/O, so that write(2) itself reports ENOSPC.
  bool NearFull();
  // Where refused writeback goes to be forgotten by the kernel.
  RefusedWrites& refused_writes() { return refused_writes_; }
  // Recent near-full direct writes, which older writeback must not undo.
  DirectWriteLog& direct_writes() { return direct_writes_; }

  // Fills e for inode (whose nlookup the caller has already raised).
  void FillEntry(const std::shared_ptr<Inode>& inode, fuse_entry_param* e);
  // Fills st for inode; takes Inode::mu (call with no lock held).
  void FillAttr(const std::shared_ptr<Inode>& inode, struct stat* st);
  // Drops inode if unused and frees its file data and its xattrs (giving back their
  // charge); call with no lock held.
  void ReleaseIfUnused(const std::shared_ptr<Inode>& inode);
  // Lowers inode ino's lookup count by n (FUSE forget).
  void Forget(fuse_ino_t ino, uint64_t n);
  // The live inode ino, or nullptr.
  std::shared_ptr<Inode> Get(fuse_ino_t ino) { return table_.Get(ino); }

  // The inode behind an open handle (fi->fh of open/opendir/create).
  static Inode* FromHandle(const fuse_file_info* fi) {
    return reinterpret_cast<Inode*>(fi->fh & ~kChosenDirectIo);
  }
  // Set in fi->fh (an Inode*, so its low bits are free) when we gave the handle direct I/O
  // near full, as opposed to O_DIRECT the program asked for (ops_file.cc).
  static constexpr uint64_t kChosenDirectIo = 1;
  static bool ChoseDirectIo(const fuse_file_info* fi) { return (fi->fh & kChosenDirectIo) != 0; }

 private:
  MountOptions options_;
  std::atomic<uint64_t> nr_inodes_;
  Mutex remount_mu_;
  MountOptions current_ GUARDED_BY(remount_mu_);       // options_ as remounts changed it.
  std::string remount_error_ GUARDED_BY(remount_mu_);  // The last remount's, "" if it worked.
  std::string overflow_dir_ GUARDED_BY(remount_mu_);   // The overflow directory in use.
  Status ApplyRemount(const MountOptions& next) REQUIRES(remount_mu_);
  std::unique_ptr<PageStore> store_;
  InodeTable table_;
  SharedMutex tree_mu_;  // Every Directory and Inode's parent link (see the order above).
  fuse_session* session_ = nullptr;
  bool killpriv_v2_ = false;
  std::atomic<unsigned> blocking_senders_{0};
  std::string bdi_dir_;
  std::atomic<uint64_t> dirty_limit_{0};  // Last DirtyLimitBytes (0: not read yet).
  RefusedWrites refused_writes_{this};    // Its thread stops with the session (main.cc).
  DirectWriteLog direct_writes_;
};

// Handler groups, one per ops_*.cc file; each fills its part of ops.
void AddAttrOps(fuse_lowlevel_ops* ops);     // init, getattr, setattr, statfs, access, forget.
void AddDirOps(fuse_lowlevel_ops* ops);      // lookup, mknod, mkdir, symlink, link, unlink, rename.
void AddReadDirOps(fuse_lowlevel_ops* ops);  // readlink, opendir, readdir(plus), releasedir.
void AddFileOps(fuse_lowlevel_ops* ops);     // open, create, read, write, fallocate, lseek.
void AddXattrOps(fuse_lowlevel_ops* ops);    // setxattr, getxattr, listxattr, removexattr.

// Creates regular file name in parent (ops_dir.cc, for create). On EEXIST with existing set,
// hands back the inode already there with its lookup count raised.
int MakeRegularFile(Filesystem* fs, fuse_req_t req, fuse_ino_t parent, const char* name,
                    mode_t mode, std::shared_ptr<Inode>* out, std::shared_ptr<Inode>* existing);

// Extended attributes' memory (ops_xattr.cc). Each stored attribute is charged to the
// PageStore (ChargeMetadata) as XattrCost: its name and value plus kXattrOverhead, about
// what a map node and its two heap strings take, so that a flood of small attributes is
// bounded too. Erasing returns the charge; the caller gives it back with UnchargeXattrs
// once Inode::mu is released.
inline constexpr uint64_t kXattrOverhead = 128;
uint64_t XattrCost(size_t name_len, size_t value_len);
// Removes xattr name of inode (Inode::mu held); returns its charge, 0 if it was not there.
uint64_t EraseXattr(Inode* inode, std::string_view name) REQUIRES(inode->mu);
// Removes every xattr of inode (Inode::mu held); returns their charge.
uint64_t EraseAllXattrs(Inode* inode) REQUIRES(inode->mu);
// Gives back a charge of xattrs (no lock needed: the store's atomics only).
void UnchargeXattrs(Filesystem* fs, uint64_t cost);

// Symlink targets' memory. Like tmpfs, a target shorter than kShortSymlinkLen lives in the
// inode (bounded by nr_inodes, not charged); a longer one takes a page, charged to the
// PageStore (ChargeMetadata) when the symlink is created and given back at the inode's
// final release (ReleaseIfUnused), so that df and size= see it as on tmpfs. Hard links to
// a symlink share its target: no further charge.
inline constexpr size_t kShortSymlinkLen = 128;
inline constexpr uint64_t SymlinkCost(size_t target_len) {
  return target_len < kShortSymlinkLen ? 0 : kPageSize;
}

// Memory an inode and its first name take in the daemon, about: the Inode (a directory's
// Directory too, a regular file's object in the store), its shared_ptr's control block, its
// InodeTable and Directory map nodes, the name, a short symlink target. Charged to the
// store's memory (PageStore::ChargeInodes) by MakeNode and given back at the final release,
// so that mem_used_total shows what a flood of empty files takes and reclaim makes room for
// it; nr_inodes bounds their number, as on tmpfs. Extra hard links: nr_inodes, not charged.
inline constexpr uint64_t kInodeNodeBytes = 192;
inline uint64_t InodeMemory(mode_t mode, size_t name_len, size_t symlink_len) {
  return sizeof(Inode) + (S_ISDIR(mode) ? sizeof(Directory) : 0) +
         (S_ISREG(mode) ? PageStore::kFileBytes : 0) + kInodeNodeBytes + name_len +
         (symlink_len < kShortSymlinkLen ? symlink_len : 0);
}

// Statistics text: one "name value" line per CONTRACT field.
std::string FormatStats(const StoreStats& s);

// The errno to reply for a failed store call. The store gives ENOSPC/EIO; a transient code
// that slipped out (EAGAIN, EINTR, ESTALE) must never reach a program: on EAGAIN the kernel's
// writeback drops the pages, and callers retry nothing. Those become `instead` (ENOSPC for
// calls that store data, EIO for the others).
inline int StoreErrno(const Status& s, int instead) {
  const int code = s.code();
  return code == EAGAIN || code == EWOULDBLOCK || code == EINTR || code == ESTALE ? instead : code;
}

}  // namespace zbudfs

#endif  // ZBUDFS_FS_FILESYSTEM_H_

// OverflowStore: compressed pages pushed out of memory, in files of the overflow directory.
//
// Owns: the overflow directory's zbudfs files (a lock file and one data file per size class)
// and, for a default directory, the directory itself. Payloads (1..4096 bytes: compressed
// pages, or raw pages) go to slots of size classes 64, 128, ..., 4096 bytes, so the disk
// taken stays within 63 bytes a page of the compressed size. Freed slots are reused (a free
// list per class) and a class file whose slots are all free is truncated to nothing. At
// destruction every file zbudfs created is removed (and a default directory too).
//
// Directory rules: a given directory must exist, be a real directory (not a symlink, also
// when named with a trailing "/" or "/.", which would resolve one), be
// writable by us and by no other user (no group/other write bits). A default directory is
// a fresh mkdtemp under $TMPDIR or /var/tmp, mode 0700. Files are 0600, created with
// O_EXCL|O_NOFOLLOW. A lock file held with flock() makes a second mount on the same
// directory fail; data files left by a crashed earlier mount are removed once the lock is
// held (nobody else can be using them).
//
// Check values: every payload is verified when read back, so that a page changed on disk
// (corruption, another program writing our files) is an error and never data. The check
// value, the low 32 bits of XXH3-64 of the payload as written, is kept in memory, 4 bytes
// a slot, not on disk: the files hold the bare payloads (a raw page fills its 4096-byte
// slot exactly, so there is no room beside it without breaking block alignment), and a
// check that lived in the same file could be overwritten together with the data.
// Compressed payloads carry their own check value too (page_codec.h); this one covers
// raw pages and every byte of a slot's payload alike.
//
// Locking: mu_ guards the slot lists, check values and counters (Read takes it only to look
// up its slot's file and check value). pread/pwrite run with no lock; the only
// I/O under mu_ is the rare ftruncate of a class file that just emptied (no slot of it is in
// use then, so no read or write can race it). A class file is created by its first write
// under open_mu_ alone (so that two first writers do not both create it). mu_ is
// innermost: nothing else is taken under it. Lock order: PageStore's locks -> open_mu_ ->
// mu_.
#ifndef ZBUDFS_STORE_OVERFLOW_STORE_H_
#define ZBUDFS_STORE_OVERFLOW_STORE_H_

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/status.h"

namespace zbudfs {

// The system calls of the data path, virtual so tests can inject ENOSPC, EIO, short writes.
class OverflowIo {
 public:
  virtual ~OverflowIo() = default;
  virtual ssize_t Pwrite(int fd, const void* buf, size_t len, off_t off);  // pwrite(2).
  virtual ssize_t Pread(int fd, void* buf, size_t len, off_t off);         // pread(2).
};

struct OverflowOptions {
  std::string dir;           // Directory to use; empty = a fresh private default one.
  uint64_t limit = 0;        // Most bytes the files may take; 0 = no limit but the disk.
  OverflowIo* io = nullptr;  // Test seam; nullptr = the real system calls.
};

class OverflowStore {
 public:
  static constexpr size_t kClassSize = 64;                         // Slot granule.
  static constexpr int kNumClasses = 64;                           // Slots of 64 .. 4096 bytes.
  static constexpr size_t kMaxPayload = kClassSize * kNumClasses;  // 4096.

  // Checks or creates the directory, takes its lock, removes a crashed mount's leftovers.
  // Errors (with a message naming the directory): ENOENT, ENOTDIR, ELOOP (a symlink),
  // EACCES (not writable, or writable by others), EBUSY (another mount holds the lock), and
  // whatever mkdtemp/open report.
  static StatusOr<std::unique_ptr<OverflowStore>> Open(const OverflowOptions& options);

  ~OverflowStore();  // Removes every file created (and a default directory).
  OverflowStore(const OverflowStore&) = delete;
  OverflowStore& operator=(const OverflowStore&) = delete;

  // Stores len (1..kMaxPayload) bytes; returns their location. Errors: ENOSPC past the
  // limit or when the disk is full (the slot is not used; nothing else changes), EIO on
  // any other write failure, EINVAL for a bad len.
  StatusOr<uint64_t> Write(const void* data, size_t len);

  // Reads the len bytes stored at loc by Write and verifies them against their check value.
  // Errors: EIO (read failure, short read, bad location), EBADMSG when the bytes read are
  // not those written (changed on disk; callers hand it on as EIO). data is undefined then.
  Status Read(uint64_t loc, void* data, size_t len) const;

  // Frees a location returned by Write (with the same len).
  void Free(uint64_t loc, size_t len);

  uint64_t BytesUsed() const {
    return bytes_used_.load(std::memory_order_relaxed);
  }  // File extents.
  uint64_t SlotsInUse() const { return slots_in_use_.load(std::memory_order_relaxed); }
  const std::string& dir() const { return dir_; }                    // The directory in use.
  uint64_t leftovers_removed() const { return leftovers_removed_; }  // Files of a crashed mount.

 private:
  struct SizeClass {
    int fd = -1;                 // Data file, opened lazily; -1 until first write.
    uint64_t high_water = 0;     // Slots the file extends over.
    uint64_t live = 0;           // Slots in use (including writes in flight).
    std::vector<uint64_t> free;  // Freed slots below high_water.
    std::vector<uint32_t> check;  // Per slot below high_water: check value of its payload.
  };

  OverflowStore(std::string dir, bool owns_dir, int lock_fd, const OverflowOptions& options);
  static int ClassOf(size_t len) {
    return static_cast<int>((len + kClassSize - 1) / kClassSize) - 1;
  }
  static size_t SlotSize(int cls) { return (static_cast<size_t>(cls) + 1) * kClassSize; }
  static uint64_t EncodeLoc(int cls, uint64_t slot) { return (uint64_t(cls) << 56) | slot; }
  std::string DataPath(int cls) const;
  Status OpenClassFile(int cls);             // Takes open_mu_, then mu_ around the open.
  void ReleaseSlot(int cls, uint64_t slot);  // mu_ held.

  const std::string dir_;
  const bool owns_dir_;
  const int lock_fd_;
  const uint64_t limit_;
  OverflowIo default_io_;
  OverflowIo* io_;
  uint64_t leftovers_removed_ = 0;

  std::atomic<uint64_t> bytes_used_{0};
  std::atomic<uint64_t> slots_in_use_{0};
  std::mutex open_mu_;     // Serialises creating class files; taken before mu_, never under.
  mutable std::mutex mu_;  // Guards classes_ (see the top comment).
  SizeClass classes_[kNumClasses];
};

}  // namespace zbudfs

#endif  // ZBUDFS_STORE_OVERFLOW_STORE_H_

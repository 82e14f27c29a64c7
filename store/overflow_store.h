// OverflowStore: compressed pages pushed out of memory, in files of the overflow directory.
//
// Owns: the overflow directory's zbudfs files (a lock file and one data file per size class)
// and, for a default directory, the directory itself. Payloads (1..4096 bytes: compressed
// pages, or raw pages) go to slots of size classes 64, 128, ..., 4096 bytes, so the disk
// taken stays within 63 bytes a page of the compressed size. Freed slots are reused (a free
// list per class, most recently freed first). Disk space follows live data: once no slot
// in use overlaps a 4 KiB block of a class file, the block is punched out
// (fallocate(PUNCH_HOLE|KEEP_SIZE)); only the file's last, partly used block waits, and a
// class file whose slots are all free is truncated to nothing. BytesUsed() (the
// statistic overflow_bytes, and what overflow_limit bounds) is the 4 KiB blocks the files
// hold on disk: those some slot was written to since they were last punched. A slot whose
// block is being punched cannot be taken until the punch is done, so a punch never races
// a new write of a slot it covers. On a file system without hole punching, blocks stay
// until their class file empties. At destruction every file zbudfs created is removed
// (and a default directory too).
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
// Locking: mu_ guards the slot lists, check values, block states, file descriptors and
// counters (Read takes it only to look up its slot's file and check value). pread/pwrite
// and the punches run with no lock of ours (a punch from Free runs under the caller's file
// lock, as its pread does); the only I/O under mu_ is the rare ftruncate of a class file
// that just emptied (no slot of it is in use then, so no read or write can race it). A
// class file is created by its first write under open_mu_ alone (so that two first writers
// do not both create it); open_mu_ is taken before mu_, and nothing is taken under mu_.
// The store's lock order is in store/page_store.h.
#ifndef ZBUDFS_STORE_OVERFLOW_STORE_H_
#define ZBUDFS_STORE_OVERFLOW_STORE_H_

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "store/mutex.h"
#include "store/status.h"

namespace zbudfs {

// The system calls of the data path, virtual so tests can inject ENOSPC, EIO, short writes.
class OverflowIo {
 public:
  virtual ~OverflowIo() = default;
  virtual ssize_t Pwrite(int fd, const void* buf, size_t len, off_t off);  // pwrite(2).
  virtual ssize_t Pread(int fd, void* buf, size_t len, off_t off);         // pread(2).
  virtual int Punch(int fd, off_t off, off_t len);  // fallocate(PUNCH_HOLE|KEEP_SIZE).
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

  // Default directories (under base: $TMPDIR or /var/tmp) left by mounts that died
  // (SIGKILL, OOM kill, crash): ours by name and owner, idle for a minute, lock not held.
  // A later mount removes them (Open); zbudfsctl leftovers lists and removes them at once.
  struct Leftover {
    std::string dir;
    uint64_t bytes = 0;  // Disk blocks its files take.
  };
  static std::string DefaultBase();  // $TMPDIR, or /var/tmp.
  static std::vector<Leftover> FindLeftovers(const std::string& base);
  // Removes a leftover directory if it is still one (its lock free): zbudfs's own files, then
  // the directory. False if a mount holds it now or anything else is left in it.
  static bool RemoveLeftover(const std::string& dir);

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

  // Frees a location returned by Write (with the same len). Gives the disk blocks no
  // other slot uses back at once (one fallocate each, with no lock of ours held).
  void Free(uint64_t loc, size_t len);

  static constexpr uint64_t kBlock = 4096;  // The disk block: the unit of punching and of
                                            // BytesUsed.
  uint64_t BytesUsed() const {
    return bytes_used_.load(std::memory_order_relaxed);
  }  // Disk blocks held (see the top comment).
  uint64_t SlotsInUse() const { return slots_in_use_.load(std::memory_order_relaxed); }
  uint64_t limit() const { return limit_.load(std::memory_order_relaxed); }
  // A new limit for writes from now on (remount; 0 = the disk's); what is held stays.
  void SetLimit(uint64_t limit) { limit_.store(limit, std::memory_order_relaxed); }
  const std::string& dir() const { return dir_; }                    // The directory in use.
  uint64_t leftovers_removed() const { return leftovers_removed_; }  // Files of a crashed mount.
  // Appends the time waited for open_mu_ and mu_ (store/lock_profile.h). Lock-free.
  void AddLockWaits(std::vector<LockWait>* out) const {
    out->push_back(open_profile_.Snapshot());
    out->push_back(mu_profile_.Snapshot());
  }

 private:
  struct Block {  // One kBlock of a class file.
    enum State : uint8_t { kHole, kOnDisk, kPunching };
    uint8_t live = 0;     // Slots in use that overlap it (at most 64).
    State state = kHole;  // kPunching: a Punch is running; its slots cannot be taken.
  };
  struct SizeClass {
    int fd = -1;                  // Data file, opened lazily; -1 until first write.
    uint64_t high_water = 0;      // Slots the file extends over.
    uint64_t live = 0;            // Slots in use (including writes in flight).
    uint64_t punching = 0;        // Blocks being punched now.
    uint64_t disk_blocks = 0;     // Blocks in state kOnDisk or kPunching.
    std::vector<uint64_t> free;   // Slots that may be free (hints, checked when taken).
    std::vector<bool> used;       // Per slot below high_water: in use or being written.
    std::vector<uint32_t> check;  // Per slot below high_water: check value of its payload.
    std::vector<Block> blocks;    // Per block the slots below high_water overlap.
  };
  struct PunchList {  // Blocks a released slot leaves unused: a slot overlaps at most two.
    int fd = -1;      // The class file, read under mu_ with the blocks.
    uint64_t blocks[2];
    size_t n = 0;
  };

  OverflowStore(std::string dir, bool owns_dir, int lock_fd, const OverflowOptions& options);
  static int ClassOf(size_t len) {
    return static_cast<int>((len + kClassSize - 1) / kClassSize) - 1;
  }
  static size_t SlotSize(int cls) { return (static_cast<size_t>(cls) + 1) * kClassSize; }
  static uint64_t EncodeLoc(int cls, uint64_t slot) { return (uint64_t(cls) << 56) | slot; }
  std::string DataPath(int cls) const;
  // Creates the class file unless another writer did. Takes open_mu_ for the open, and mu_
  // under it to look at and publish the fd.
  Status OpenClassFile(int cls) EXCLUDES(open_mu_, mu_);
  StatusOr<uint64_t> TakeSlot(int cls) REQUIRES(mu_);  // ENOSPC past the limit.
  // Blocks to punch go to *punch; the caller calls Punch() once mu_ is released.
  void ReleaseSlot(int cls, uint64_t slot, PunchList* punch) REQUIRES(mu_);
  void Punch(int cls, const PunchList& punch) EXCLUDES(mu_);  // Takes mu_ after the punches.
  void EmptyClass(int cls) REQUIRES(mu_);                     // No slot in use, none punching.
  static bool InPunch(const SizeClass& c, int cls, uint64_t slot);  // A block being punched.
  // pwrite/pread of all len bytes at off, retried on EINTR and short transfers. WriteAll
  // returns 0 or the errno (ENOSPC for a write that makes no progress); ReadAll OK or EIO.
  int WriteAll(int fd, const void* data, size_t len, off_t off);
  Status ReadAll(int fd, void* data, size_t len, off_t off) const;

  const std::string dir_;
  const bool owns_dir_;
  const int lock_fd_;
  std::atomic<uint64_t> limit_;  // Options::limit until SetLimit.
  OverflowIo default_io_;
  OverflowIo* io_;
  uint64_t leftovers_removed_ = 0;

  std::atomic<uint64_t> bytes_used_{0};
  std::atomic<uint64_t> slots_in_use_{0};
  std::atomic<bool> punch_works_{true};        // False once the file system refused a punch.
  LockProfile open_profile_{"overflow open"};  // Waits for open_mu_ (LockWaits).
  LockProfile mu_profile_{"overflow slots"};   // Waits for mu_.
  Mutex open_mu_ ACQUIRED_BEFORE(mu_){&open_profile_};  // Serialises creating class files.
  mutable Mutex mu_{&mu_profile_};                      // Guards classes_ (see the top comment).
  SizeClass classes_[kNumClasses] GUARDED_BY(mu_);
};

}  // namespace zbudfs

#endif  // ZBUDFS_STORE_OVERFLOW_STORE_H_

// What a full mount needs so that acknowledged data never turns into zeros.
//
// With the kernel's writeback cache, write(2) returns once the data is in the page cache;
// the store sees it only at writeback, where a refusal (ENOSPC) reaches nobody but fsync and
// close. Two defences, both owned here:
//
//   * Near full, new writable opens get direct I/O (Filesystem::NearFull): write(2) then goes
//     straight to the store and returns its error. "Near" means the store's room (the lesser
//     of the capacity left and the memory left below mem_limit plus the overflow's room, one
//     uncompressed page per page) is below what the kernel may hold dirty for this mount:
//     FUSE gives its bdi max_ratio 1 % with strict_limit, so at most the bdi's max_bytes
//     (/sys/class/bdi/MAJ:MIN/max_bytes: 1 % of the global dirty threshold) is dirty or under
//     writeback at once, plus the few pages each writer dirties between two throttling
//     checks (DirtyLimitBytes adds a quarter and 4 MiB for those).
//   * Writeback the store refused anyway (a writer that opened before the mount got near
//     full): the kernel still shows the refused data and the size it gave the file. Inside
//     the size the daemon stored, dropping the cached pages is enough (the stored data reads
//     back): RefusedWrites does that after the reply, from its own thread, since dropping
//     pages waits for the folios under writeback (the refused request's own, until its reply
//     is sent) and for folio locks held by readers waiting on other requests. Past the
//     stored size (ops_file.cc first cuts the size back to the first refused byte), the
//     kernel's own i_size is the problem: with the writeback cache it never takes the
//     server's size for a cached regular file. ResetKernelInode bumps the inode's generation
//     and invalidates the kernel's entries for its names, before the refused request is
//     answered (so before the fsync or close that reports the error returns): the next
//     lookup returns the new generation, fuse_iget marks the cached inode bad (its open
//     handles then get EIO) and makes a fresh one with the daemon's size.
//   * A writer that opened before near full (`cat /dev/zero > f`) keeps the page cache: it
//     would write on, every page past the room refused at writeback. So every writeback
//     of a file that finds the mount near full (or is refused) calls StopCachedWrites, which
//     invalidates the kernel's attributes of the file (no request back, no lock): with the
//     writeback cache the kernel asks for them (a GETATTR with the file handle) before its
//     next write(2) into the cache, and GetAttr answers ENOSPC while the mount stays near
//     full, so write(2) itself fails. What is already dirty fits the room (near full means
//     room below what the kernel may hold dirty), so it is stored. Only cached writes ask
//     with a handle and a stale mode: reads, stat and fstat are unaffected.
//   * A shared mapping of a file written through such a direct handle: the kernel drops its
//     cached pages of the range before it sends a direct write, and a mapping that faults a
//     page back in before the store has the new bytes gets the old ones; writing that page
//     back later would undo the acknowledged write(2). So such a write, once stored, is
//     copied into the kernel's page cache for its range before the reply (pages it holds
//     are updated; missing ones are made, clean, and the kernel may drop them at will)
//     (ShareDirectWrite: FUSE_NOTIFY_STORE): a page faulted in meanwhile then holds both.
//     A writeback of such a page that the daemon read before that copy still carries the
//     old bytes: DirectWriteLog makes it take the stored ones for the range. Left: such a
//     writeback read by a worker preempted between read(2) and counting it (and, with
//     clone_fd, which keeps no count, every such writeback). O_DIRECT the program chose
//     itself is not covered (as on ext4: mixing it with a shared mapping is its race).
//
// Locks: RefusedWrites::mu_ guards its queue only; ResetKernelInode takes Inode::mu, then
// (released) tree_mu_ shared, and sends with no lock held (inside a BlockingCall: the kernel
// takes the parent directory's lock, which a request waiting for a worker may hold).
#ifndef ZBUDFS_FS_FULL_MOUNT_H_
#define ZBUDFS_FS_FULL_MOUNT_H_

#define FUSE_USE_VERSION 314
#include <fuse3/fuse_lowlevel.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "store/mutex.h"
#include "store/thread_annotations.h"

namespace zbudfs {

class Filesystem;

// "/sys/class/bdi/MAJ:MIN" of the file system mounted at mountpoint (an absolute, resolved
// path), named after its device number (mount_table.h); "" if nothing is mounted there.
std::string BdiOfMount(const std::string& mountpoint);

// The most bytes the kernel may hold dirty (or under writeback) for the bdi at bdi_dir:
// max_bytes, or with strict_limit off the global dirty threshold (the bdi may then go past
// its share), plus the throttling slack; 64 MiB when sysfs cannot tell.
uint64_t DirtyLimitBytes(const std::string& bdi_dir);

// Makes the kernel drop its cached inode of a regular file (and so its size) at the next
// lookup of any of its names. Call with no lock held, from a request
// handler (never from RefusedWrites' thread: see above).
struct Inode;
void ResetKernelInode(Filesystem* fs, Inode* inode);

// Near full or after a refused writeback of inode: the kernel asks for attributes before its
// next cached write (see above). Takes Inode::mu, then sends attributes-only invalidation:
// safe from any handler, with no other lock held.
void StopCachedWrites(Filesystem* fs, Inode* inode);

// True when GetAttr with a file handle must answer ENOSPC (see above). Takes Inode::mu.
bool CachedWritesRefused(Filesystem* fs, Inode* inode);

// Runs send(session), a notification the kernel may complete only once another worker has
// served a request (its page locks are held by readers waiting for one), inside a
// BlockingCall; returns false without running it where no worker could be free: with -s,
// or with clone_fd (libfuse's loop starts none) when max_threads - 1 are at it already.
// Call with no lock held.
bool SendBlocking(Filesystem* fs, const std::function<int(fuse_session*)>& send);

// After a stored write(2) through a direct handle chosen near full: copies buf, written at
// off, into the kernel's cached pages of ino (see above). Best effort; no lock held.
void ShareDirectWrite(Filesystem* fs, fuse_ino_t ino, const char* buf, size_t size, off_t off);

// Queue and thread that make the kernel drop its cached pages of data the store refused at
// writeback inside the stored size.
class RefusedWrites {
 public:
  explicit RefusedWrites(Filesystem* fs);
  ~RefusedWrites();  // Stop().
  RefusedWrites(const RefusedWrites&) = delete;
  RefusedWrites& operator=(const RefusedWrites&) = delete;

  // Notes that a writeback write of [off, off + len) to ino was refused (its reply is sent or
  // about to be). Never blocks on the kernel.
  void Add(fuse_ino_t ino, uint64_t off, uint64_t len) EXCLUDES(mu_);
  // Ends the thread; later Adds are ignored. Call before the session is destroyed.
  void Stop() EXCLUDES(mu_);

 private:
  struct Range {
    uint64_t off = UINT64_MAX;  // Union of the refused ranges of one inode.
    uint64_t end = 0;
  };
  void Run() EXCLUDES(mu_);
  void Forget(fuse_ino_t ino, const Range& r);  // Sends what makes the kernel forget r.

  Filesystem* const fs_;
  Mutex mu_;
  CondVar cv_;  // Signalled on a new range and on Stop.
  std::map<fuse_ino_t, Range> pending_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_ GUARDED_BY(mu_);  // Started by the first Add; Stop takes it to join.
};

}  // namespace zbudfs

#endif  // ZBUDFS_FS_FULL_MOUNT_H_

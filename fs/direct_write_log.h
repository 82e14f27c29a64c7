// The recent write(2)s through direct handles the daemon chose near full, so that a stale
// writeback cannot undo them (full_mount.h: "A shared mapping of a file written through
// such a direct handle").
//
// The race: the kernel drops its cached pages of a direct write's range and sends the
// write; a shared mapping faults a page of that range back in before the store has the new
// bytes, dirties it and writes it back. ShareDirectWrite copies the stored bytes into the
// cached page before the reply, which fixes every such page still in the cache; a writeback
// whose data the daemon read before that copy still carries the old bytes. Owns, per inode,
// each such write's range and the request count (session_loop.h: RequestsRead) when its
// copy was done; a writeback read no later than that (read_seq at most the count) and
// overlapping the range takes the store's bytes of the overlap instead of its own
// (ops_file.cc). A done record goes once no request read no later than its copy is still
// being served (session_loop.h: OldestReadSeqServed), so no such writeback can come after
// it, and kMinKeepMs after it was done. A worker counts a request just after read(2)
// returns it, so a writeback read just before the copy may be counted just after it: the
// writer takes the count 50 µs after its copy (ops_file.cc), which covers that unless the
// worker was preempted in between. Past kMaxPerInode records of one inode the oldest done
// one goes anyway.
//
// Locks: mu_ guards the records; count_ lets the writeback path skip mu_ when there are
// none (the usual case: only near-full direct writes make them). Nothing else is taken
// under mu_ (the oldest request served is read before it is taken).
#ifndef ZBUDFS_FS_DIRECT_WRITE_LOG_H_
#define ZBUDFS_FS_DIRECT_WRITE_LOG_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "store/mutex.h"
#include "store/thread_annotations.h"

namespace zbudfs {

class DirectWriteLog {
 public:
  struct Range {
    uint64_t off = 0;
    uint64_t end = 0;
  };
  static constexpr size_t kMaxPerInode = 64;       // Past it the oldest done record goes.
  static constexpr uint64_t kPruneAllPast = 4096;  // Records before every inode is pruned.
  static constexpr int kMinKeepMs = 1000;

  DirectWriteLog() = default;
  DirectWriteLog(const DirectWriteLog&) = delete;
  DirectWriteLog& operator=(const DirectWriteLog&) = delete;

  // Notes a direct write of [off, end) to ino before it is stored; returns its id for End.
  // oldest_served: OldestReadSeqServed(), which lets records no request needs go.
  uint64_t Begin(uint64_t ino, uint64_t off, uint64_t end, uint64_t oldest_served) EXCLUDES(mu_);
  // The write (stored or refused) and its copy into the kernel's cache are done; read_seq:
  // RequestsRead() after that.
  void End(uint64_t ino, uint64_t id, uint64_t read_seq) EXCLUDES(mu_);
  // The parts of [off, end) of ino that a writeback read at read_seq must take from the
  // store: overlaps with writes not done, or done at read_seq or later. Empty if none.
  std::vector<Range> StaleParts(uint64_t ino, uint64_t off, uint64_t end, uint64_t read_seq)
      EXCLUDES(mu_);
  size_t size() const { return count_.load(std::memory_order_relaxed); }  // Records held.

 private:
  using Clock = std::chrono::steady_clock;
  struct Record {
    uint64_t id;
    Range range;
    uint64_t done_seq;  // UINT64_MAX until End.
    Clock::time_point done_at;
  };
  // Drops the done records of v that no request being served can need.
  void PruneLocked(std::vector<Record>* v, uint64_t oldest_served) REQUIRES(mu_);

  Mutex mu_;
  std::map<uint64_t, std::vector<Record>> records_ GUARDED_BY(mu_);  // By inode.
  uint64_t next_id_ GUARDED_BY(mu_) = 1;
  std::atomic<uint64_t> count_{0};  // Records in records_.
};

}  // namespace zbudfs

#endif  // ZBUDFS_FS_DIRECT_WRITE_LOG_H_

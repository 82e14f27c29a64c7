// FUSE handlers for file data: open, create, read, write, release, fsync, fallocate, lseek.
//
// Data calls into the PageStore hold only the file's Inode::data_mu: shared for Read and
// Write (the store serialises writers of one file itself), exclusive for truncation and
// fallocate, so that a size and the pages behind it change together. Inode::mu is taken
// after the store call to read or update the size and times.
#include <fcntl.h>
#include <linux/falloc.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "fs/filesystem.h"
#include "fs/log.h"
#include "fs/privileges.h"
#include "fs/session_loop.h"

namespace zbudfs {
namespace {

// Truncates to zero for open(O_TRUNC) (the kernel sends no setattr with atomic O_TRUNC) and
// clears privileges as the kernel would: when it flagged the open under
// HANDLE_KILLPRIV_V2, or else unless the caller has CAP_FSETID; file capabilities always.
int TruncateOnOpen(Filesystem* fs, fuse_req_t req, Inode* inode) {
  {
    WriterLock data(&inode->data_mu);
    Status s = fs->store().Truncate(inode->ino, 0);
    if (!s.ok()) return StoreErrno(s, EIO);
    const timespec now = Now();
    MutexLock lock(&inode->mu);
    inode->size = 0;
    inode->mtime = inode->ctime = now;
  }
  if (!fs->killpriv_v2()) {
    KillPrivilegesUnlessCapable(req, inode);
  } else if (CurrentRequestFlags().open_flags & kOpenKillSuidgid) {
    KillPrivileges(req, inode);
  } else {
    ClearCapabilities(req, inode);
  }
  return 0;
}

// Writeback bookkeeping of a full mount (Inode::mu held). Writeback refused into what the
// file's growth by writeback left as a hole (or past EOF) must not read back as zeros: the
// size is cut back to the first refused byte and later writeback may not grow the file past
// a gap (GapAfterRefusal). Only data written since the last fsync or the last close of a
// writer is at stake, whose errors the kernel reports there; these reset the bookkeeping.
void ForgetWritebackGrowth(Inode* inode) REQUIRES(inode->mu) {
  inode->wb_floor = UINT64_MAX;
  inode->wb_refused = false;
}

// Notes a stored write of [off, end) (before the size is raised; Inode::mu held).
void NoteStoredWrite(Inode* inode, bool writeback, uint64_t end) REQUIRES(inode->mu) {
  const uint64_t size = static_cast<uint64_t>(inode->size);
  if (writeback) {
    if (end > size) inode->wb_floor = std::min(inode->wb_floor, size);
  } else if (inode->wb_floor != UINT64_MAX && end > inode->wb_floor) {
    inode->wb_floor = end;  // Acknowledged by write(2) itself: never cut back.
  }
}

// True when a writeback write at off must be refused: writeback was refused since the last
// fsync or close and this one would leave a gap past EOF (which would read as zeros).
bool GapAfterRefusal(Inode* inode, uint64_t off) {
  MutexLock lock(&inode->mu);
  return inode->wb_refused && off > static_cast<uint64_t>(inode->size);
}

// After the store refused writeback of [off, end) (inode->data_mu held exclusively): if the
// refused data fell on a hole of the writeback growth, cuts the size back to the first such
// byte, so that no zeros stand in for it. Returns true when the kernel shows the refused
// data past the stored size (it then needs ResetKernelInode).
bool CutBackRefusedWriteback(Filesystem* fs, Inode* inode, uint64_t off, uint64_t end) {
  uint64_t size, floor;
  {
    MutexLock lock(&inode->mu);
    size = static_cast<uint64_t>(inode->size);
    floor = inode->wb_floor;
    inode->wb_refused = true;
  }
  if (off >= size) return true;                // All past EOF.
  if (floor == UINT64_MAX) return end > size;  // No growth by writeback to cut back.
  const uint64_t hole = fs->store().SeekData(inode->ino, std::max(off, floor), false);
  if (hole >= std::min(end, size)) return end > size;  // Older stored data reads back.
  if (!fs->store().Truncate(inode->ino, hole).ok()) return end > size;
  const timespec now = Now();
  MutexLock lock(&inode->mu);
  inode->size = static_cast<off_t>(hole);
  inode->mtime = inode->ctime = now;
  return true;
}

// True when a handle opened with flags may write.
bool Writable(int flags) { return (flags & O_ACCMODE) != O_RDONLY; }

// Takes an open handle on inode for fi.
void AddHandle(Inode* inode, fuse_file_info* fi) {
  {
    MutexLock lock(&inode->mu);
    ++inode->open_count;
    if (Writable(fi->flags)) ++inode->write_handles;
  }
  static_assert(alignof(Inode) > Filesystem::kChosenDirectIo);
  fi->fh = reinterpret_cast<uint64_t>(inode) |
           (fi->direct_io && !(fi->flags & O_DIRECT) ? Filesystem::kChosenDirectIo : 0);
  fi->keep_cache = 1;  // Only we change file data: the kernel's cache stays valid.
}

// Near full, a handle that may write bypasses the writeback cache, so that write(2) itself
// gets ENOSPC rather than a writeback no one checks (full_mount.h). Shared mmap of such a
// handle needs FUSE_DIRECT_IO_ALLOW_MMAP (not negotiated with clone_fd: ENODEV then).
// With no_writeback every write(2) is a request already.
void ChooseDirectIo(Filesystem* fs, const Inode& inode, fuse_file_info* fi) {
  if (fs->options().no_writeback) return;
  if (Writable(fi->flags) && inode.is_reg() && fs->NearFull()) fi->direct_io = 1;
}

// Gives back a handle opened with flags; frees the inode when that was the last reference.
void DropHandle(Filesystem* fs, const std::shared_ptr<Inode>& inode, int flags) {
  {
    MutexLock lock(&inode->mu);
    if (inode->open_count > 0) --inode->open_count;
    if (Writable(flags) && inode->write_handles > 0) --inode->write_handles;
    // The kernel wrote back and reported errors at the last close (flush): a new episode.
    if (inode->write_handles == 0) ForgetWritebackGrowth(inode.get());
  }
  fs->ReleaseIfUnused(inode);
}

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Filesystem* fs = Filesystem::From(req);
  std::shared_ptr<Inode> inode = fs->Get(ino);
  if (inode == nullptr) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  if (inode->is_dir()) {
    fuse_reply_err(req, EISDIR);
    return;
  }
  // With the writeback cache the kernel may read through write-only handles and resolves
  // O_APPEND itself (writes arrive with their offsets): neither flag matters here.
  if ((fi->flags & O_TRUNC) && inode->is_reg()) {
    if (int err = TruncateOnOpen(fs, req, inode.get()); err != 0) {
      fuse_reply_err(req, err);
      return;
    }
  }
  ChooseDirectIo(fs, *inode, fi);
  AddHandle(inode.get(), fi);
  if (fuse_reply_open(req, fi) == -ENOENT)
    DropHandle(fs, inode, fi->flags);  // open was interrupted.
}

void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  Filesystem* fs = Filesystem::From(req);
  std::shared_ptr<Inode> inode;
  std::shared_ptr<Inode> existing;
  int err = MakeRegularFile(fs, req, parent, name, mode, &inode, &existing);
  if (err == EEXIST && existing != nullptr) {  // Lost a race with another creator.
    if ((fi->flags & O_EXCL) || existing->is_dir()) {
      fs->Forget(existing->ino, 1);
      fuse_reply_err(req, existing->is_dir() ? EISDIR : EEXIST);
      return;
    }
    inode = std::move(existing);
    err = 0;
    if ((fi->flags & O_TRUNC) && inode->is_reg()) {
      err = TruncateOnOpen(fs, req, inode.get());
      if (err != 0) fs->Forget(inode->ino, 1);
    }
  }
  if (err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  ChooseDirectIo(fs, *inode, fi);
  AddHandle(inode.get(), fi);
  fuse_entry_param e;
  fs->FillEntry(inode, &e);
  if (fuse_reply_create(req, &e, fi) == -ENOENT) {  // Interrupted: the kernel has neither.
    fs->Forget(inode->ino, 1);
    DropHandle(fs, inode, fi->flags);
  }
}

void Read(fuse_req_t req, fuse_ino_t /*ino*/, size_t size, off_t off, fuse_file_info* fi) {
  Filesystem* fs = Filesystem::From(req);
  Inode* inode = Filesystem::FromHandle(fi);
  // Per request, not per thread: a thread-local buffer would keep up to 1 MiB per worker
  // resident forever; freed heap goes back to the system with the store's malloc_trim.
  std::unique_ptr<char[]> buf;
  size_t n = 0;
  {
    ReaderLock data(&inode->data_mu);
    off_t file_size;
    {
      MutexLock lock(&inode->mu);
      file_size = inode->size;
    }
    if (off < file_size) {
      n = std::min<uint64_t>(size, static_cast<uint64_t>(file_size - off));
      buf.reset(new char[n]);
      Status s = fs->store().Read(inode->ino, off, buf.get(), n);
      if (!s.ok()) {
        data.Unlock();
        fuse_reply_err(req, StoreErrno(s, EIO));
        return;
      }
    }
  }
  fuse_reply_buf(req, buf.get(), n);
}

// Clears privileges before a write, as the kernel's file_remove_privs does before it copies
// data: when the kernel flagged the write (FUSE_HANDLE_KILLPRIV_V2); without KILLPRIV_V2
// (clone_fd) the kernel clears them for cached writes itself (a setattr before it copies),
// but not for direct I/O (near-full opens): those are cleared here.
void ClearPrivilegesBeforeWrite(Filesystem* fs, fuse_req_t req, Inode* inode, bool writeback) {
  if (fs->killpriv_v2()) {
    if (CurrentRequestFlags().write_flags & kWriteKillSuidgid) KillPrivileges(req, inode);
  } else if (!writeback) {
    KillPrivilegesUnlessCapable(req, inode);
  }
}

// Stores a write and raises the size and times (data_mu held, shared or exclusive).
Status StoreWriteLocked(Filesystem* fs, Inode* inode, const char* buf, size_t size, off_t off,
                        bool writeback) REQUIRES_SHARED(inode->data_mu) {
  const uint64_t end = static_cast<uint64_t>(off) + size;
  Status s = writeback && GapAfterRefusal(inode, static_cast<uint64_t>(off))
                 ? Status::Error(ENOSPC, "writeback past refused data")
                 : fs->store().Write(inode->ino, off, buf, size);
  if (s.ok()) {
    const timespec now = Now();
    MutexLock lock(&inode->mu);
    NoteStoredWrite(inode, writeback, end);
    if (static_cast<off_t>(end) > inode->size) inode->size = static_cast<off_t>(end);
    inode->mtime = inode->ctime = now;
  }
  return s;
}

Status StoreWrite(Filesystem* fs, Inode* inode, const char* buf, size_t size, off_t off,
                  bool writeback) {
  ReaderLock data(&inode->data_mu);
  return StoreWriteLocked(fs, inode, buf, size, off, writeback);
}

// A writeback whose data the kernel handed over before a near-full direct write's bytes
// reached its cache may carry that range stale (direct_write_log.h): those parts take the
// store's bytes, read and stored again under data_mu held exclusively. The check and the
// store are under one hold of data_mu, and a direct write is noted under it exclusively
// (Write), so none is noted between them.
Status StoreWriteback(Filesystem* fs, Inode* inode, const char* buf, size_t size, off_t off) {
  const uint64_t end = static_cast<uint64_t>(off) + size;
  auto stale_parts = [&] {
    return fs->direct_writes().StaleParts(inode->ino, static_cast<uint64_t>(off), end,
                                          CurrentRequestFlags().read_seq);
  };
  {
    ReaderLock data(&inode->data_mu);
    if (stale_parts().empty()) return StoreWriteLocked(fs, inode, buf, size, off, true);
  }
  std::vector<char> patched(buf, buf + size);
  WriterLock data(&inode->data_mu);
  for (const DirectWriteLog::Range& r : stale_parts()) {
    Status st = fs->store().Read(inode->ino, r.off, patched.data() + (r.off - off), r.end - r.off);
    if (!st.ok()) return st;
  }
  return StoreWriteLocked(fs, inode, patched.data(), size, off, true);
}

// Notes a write(2) through a direct handle we chose near full in DirectWriteLog, before it is
// stored (under data_mu held exclusively: not between a writeback's check and store).
uint64_t BeginChosenDirectWrite(Filesystem* fs, Inode* inode, size_t size, off_t off) {
  const uint64_t oldest = OldestReadSeqServed();
  WriterLock data(&inode->data_mu);
  return fs->direct_writes().Begin(inode->ino, static_cast<uint64_t>(off),
                                   static_cast<uint64_t>(off) + size, oldest);
}

// After the store: copies a stored write (stored: its bytes; nullptr if refused) into the
// kernel's cache and closes its record. A worker counts a request only once read(2) has
// returned it, so a writeback read just before the copy may be counted just after: the
// count is taken 50 µs later (direct_write_log.h); near full only.
void EndChosenDirectWrite(Filesystem* fs, Inode* inode, uint64_t id, const char* stored,
                          size_t size, off_t off) {
  if (stored != nullptr) ShareDirectWrite(fs, inode->ino, stored, size, off);
  std::this_thread::sleep_for(std::chrono::microseconds(50));
  fs->direct_writes().End(inode->ino, id, RequestsRead());
}

// Undoes what a refused write left and replies with its error (see full_mount.h).
void ReplyRefusedWrite(fuse_req_t req, Filesystem* fs, Inode* inode, size_t size, off_t off,
                       bool writeback, const Status& s) {
  LogRateLimited(LogKind::kWriteRefused, "write of %zu bytes at %lld to inode %llu refused: %s",
                 size, static_cast<long long>(off), static_cast<unsigned long long>(inode->ino),
                 s.ToString().c_str());
  const uint64_t end = static_cast<uint64_t>(off) + size;
  // Pages of the failed write past EOF must not show up if the file grows later.
  WriterLock data(&inode->data_mu);
  off_t file_size;
  {
    MutexLock lock(&inode->mu);
    file_size = inode->size;
  }
  if (static_cast<off_t>(end) > file_size) {
    // Best effort: the reply carries the write's own error, which is what matters here.
    (void)fs->store().Truncate(inode->ino, file_size);
  }
  // A refused writeback: the kernel still shows that data, and maybe a size past what
  // is stored. Make it forget the size before the reply (which ends the writeback that
  // fsync or close wait for), the pages after it (see full_mount.h).
  const bool past_size =
      writeback && CutBackRefusedWriteback(fs, inode, static_cast<uint64_t>(off), end);
  data.Unlock();
  if (past_size) ResetKernelInode(fs, inode);
  // The writer goes on filling the page cache: make the kernel ask for attributes at its
  // next write(2), which GetAttr then refuses with ENOSPC while the mount stays near full.
  if (writeback) StopCachedWrites(fs, inode);
  const fuse_ino_t ino = inode->ino;  // The handle (and inode) may go with the reply.
  fuse_reply_err(req, StoreErrno(s, ENOSPC));
  if (writeback && !past_size) fs->refused_writes().Add(ino, static_cast<uint64_t>(off), size);
}

void Write(fuse_req_t req, fuse_ino_t /*ino*/, const char* buf, size_t size, off_t off,
           fuse_file_info* fi) {
  Filesystem* fs = Filesystem::From(req);
  Inode* inode = Filesystem::FromHandle(fi);
  if (off < 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  if (static_cast<uint64_t>(off) + size > PageStore::kMaxFileSize) {
    fuse_reply_err(req, EFBIG);
    return;
  }
  const bool writeback = fi->writepage;  // From the kernel's page cache (not write(2)).
  // write(2) through a direct handle we chose: a shared mapping may hold its range stale.
  // Only those: a write-through (a setuid file's, or with no_writeback) holds its pages
  // locked until we reply, and ShareDirectWrite would wait for them.
  const bool chosen_direct = !writeback && Filesystem::ChoseDirectIo(fi);
  const uint64_t direct_id = chosen_direct ? BeginChosenDirectWrite(fs, inode, size, off) : 0;
  ClearPrivilegesBeforeWrite(fs, req, inode, writeback);
  Status s = writeback ? StoreWriteback(fs, inode, buf, size, off)
                       : StoreWrite(fs, inode, buf, size, off, false);
  if (chosen_direct) EndChosenDirectWrite(fs, inode, direct_id, s.ok() ? buf : nullptr, size, off);
  if (!s.ok()) {
    ReplyRefusedWrite(req, fs, inode, size, off, writeback, s);
    return;
  }
  // A writer that opened before near full goes on through the cache: stop it at write(2)
  // now, while what the kernel holds dirty still fits (full_mount.h).
  if (writeback && fs->NearFull()) StopCachedWrites(fs, inode);
  fuse_reply_write(req, size);
}

void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Filesystem* fs = Filesystem::From(req);
  if (std::shared_ptr<Inode> inode = fs->Get(ino)) DropHandle(fs, inode, fi->flags);
  fuse_reply_err(req, 0);
}

void Fsync(fuse_req_t req, fuse_ino_t /*ino*/, int /*datasync*/, fuse_file_info* fi) {
  // The kernel sends this only once its writeback of the file succeeded (it reports a
  // refusal itself): what the file holds now is acknowledged.
  Inode* inode = Filesystem::FromHandle(fi);
  bool grew;
  {
    MutexLock lock(&inode->mu);
    grew = inode->wb_floor != UINT64_MAX;
    ForgetWritebackGrowth(inode);
  }
  // The kernel keeps an open file's attributes, st_blocks too, until close: after writeback
  // grew the file, stat (du) would show the blocks of before. It asks again once (a GETATTR
  // at the next stat or cached write); a rewrite in place (a database's) costs nothing.
  if (grew) ForgetCachedAttrs(Filesystem::From(req), inode->ino);
  fuse_reply_err(req, 0);  // Nothing is more durable than memory here.
}

// After a plain or zero-range fallocate failed part way (ENOSPC past size=): frees the zero
// pages it stored past EOF, which no one could see or truncate away (st_blocks and df would
// keep them). Whole pages only, so it cannot fail. Pages inside the file stay allocated, as
// ext4 leaves them. inode->data_mu must be held exclusively.
void UndoAllocationPastEof(Filesystem* fs, Inode* inode, off_t off, uint64_t end) {
  uint64_t size;
  {
    MutexLock lock(&inode->mu);
    size = static_cast<uint64_t>(inode->size);
  }
  // The pages of this call ([off, end) rounded out) that lie wholly past EOF.
  const uint64_t from = std::max(static_cast<uint64_t>(off) / kPageSize * kPageSize,
                                 (size + kPageSize - 1) / kPageSize * kPageSize);
  const uint64_t to = (end + kPageSize - 1) / kPageSize * kPageSize;
  // Whole pages only: freeing them cannot fail (no page is rewritten, so no EIO either).
  if (to > from) (void)fs->store().PunchHole(inode->ino, from, to - from);
}

int DoFallocate(Filesystem* fs, Inode* inode, int mode, off_t off, off_t len) {
  const int known = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
  if (mode & ~known) return EOPNOTSUPP;
  const bool punch = mode & FALLOC_FL_PUNCH_HOLE;
  const bool zero = mode & FALLOC_FL_ZERO_RANGE;
  const bool keep_size = mode & FALLOC_FL_KEEP_SIZE;
  if (punch && (zero || !keep_size)) return EOPNOTSUPP;
  if (!inode->is_reg()) return inode->is_dir() ? EISDIR : ENODEV;
  if (off < 0 || len <= 0) return EINVAL;
  const uint64_t end = static_cast<uint64_t>(off) + static_cast<uint64_t>(len);
  if (end > PageStore::kMaxFileSize) return EFBIG;

  WriterLock data(&inode->data_mu);
  Status s = punch  ? fs->store().PunchHole(inode->ino, off, len)
             : zero ? fs->store().ZeroRange(inode->ino, off, len)
                    : fs->store().Allocate(inode->ino, off, len);
  if (!s.ok()) {
    if (!punch) UndoAllocationPastEof(fs, inode, off, end);
    return StoreErrno(s, ENOSPC);
  }
  const timespec now = Now();
  MutexLock lock(&inode->mu);
  if (!keep_size && static_cast<off_t>(end) > inode->size) inode->size = static_cast<off_t>(end);
  inode->mtime = inode->ctime = now;
  return 0;
}

void Fallocate(fuse_req_t req, fuse_ino_t /*ino*/, int mode, off_t off, off_t len,
               fuse_file_info* fi) {
  Filesystem* fs = Filesystem::From(req);
  Inode* inode = Filesystem::FromHandle(fi);
  const int err = DoFallocate(fs, inode, mode, off, len);
  // Under FUSE_HANDLE_KILLPRIV_V2 the kernel's file_modified() sends nothing for fallocate
  // (its setattr has nothing left to say): clear privileges here, as tmpfs would.
  if (err == 0 && fs->killpriv_v2()) KillPrivilegesUnlessCapable(req, inode);
  fuse_reply_err(req, err);
}

// With a writer open, the kernel may hold written pages (and a larger size) we have not
// seen: it does not write them back before asking. Makes it do so now (invalidating its
// cached range launders dirty pages through FUSE_WRITE, served by another worker), so that
// our size and page map are complete; true when it did. Only while another worker is free
// for those writes (never with -s: the only thread would wait for itself); otherwise the
// caller gives the conservative answer.
bool FlushKernelWrites(Filesystem* fs, Inode* inode) {
  {
    MutexLock lock(&inode->mu);
    if (inode->write_handles == 0) return false;
  }
  const fuse_ino_t ino = inode->ino;
  return SendBlocking(
      fs, [ino](fuse_session* se) { return fuse_lowlevel_notify_inval_inode(se, ino, 0, 0); });
}

// SEEK_DATA/SEEK_HOLE. The kernel does not write back its dirty pages before asking, so
// while a handle that may write is open the store may not know of every page: then the
// whole file up to EOF is reported as data (valid by POSIX, and never loses data for
// sparse-aware copiers). Once the last writer is closed (the kernel flushes on close) the
// answer comes from the store's page map.
void Lseek(fuse_req_t req, fuse_ino_t /*ino*/, off_t off, int whence, fuse_file_info* fi) {
  Filesystem* fs = Filesystem::From(req);
  Inode* inode = Filesystem::FromHandle(fi);
  if (whence != SEEK_DATA && whence != SEEK_HOLE) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  const bool flushed = FlushKernelWrites(fs, inode);
  ReaderLock data(&inode->data_mu);
  off_t file_size;
  bool maybe_dirty;
  {
    MutexLock lock(&inode->mu);
    file_size = inode->size;
    maybe_dirty = inode->write_handles > 0 && !flushed;
  }
  if (off < 0 || off >= file_size) {
    data.Unlock();
    fuse_reply_err(req, ENXIO);
    return;
  }
  uint64_t found;
  if (maybe_dirty) {
    found = whence == SEEK_DATA ? static_cast<uint64_t>(off) : static_cast<uint64_t>(file_size);
  } else {
    found = fs->store().SeekData(inode->ino, off, whence == SEEK_DATA);
  }
  data.Unlock();
  if (whence == SEEK_DATA) {
    if (found >= static_cast<uint64_t>(file_size)) {
      fuse_reply_err(req, ENXIO);
      return;
    }
  } else {
    found = std::min<uint64_t>(found, file_size);  // EOF is a hole.
  }
  fuse_reply_lseek(req, std::max<off_t>(off, static_cast<off_t>(found)));
}

}  // namespace

void AddFileOps(fuse_lowlevel_ops* ops) {
  ops->open = Open;
  ops->create = Create;
  ops->read = Read;
  ops->write = Write;
  ops->release = Release;
  ops->fsync = Fsync;
  ops->fallocate = Fallocate;
  ops->lseek = Lseek;
}

}  // namespace zbudfs

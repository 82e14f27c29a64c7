// Operations on open files through their descriptors: open, close, write/pwrite (also
// O_APPEND), read/pread, O_DIRECT reads, fsync/fdatasync, dropping the kernel's cache, fstat,
// lseek SEEK_DATA/SEEK_HOLE and comparing a whole open file. Each does the same on both sides
// and compares. Single-threaded.
#ifndef ZBUDFS_TESTS_EXERCISER_FILE_OPS_H_
#define ZBUDFS_TESTS_EXERCISER_FILE_OPS_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "tests/exerciser/context.h"
#include "tests/exerciser/seek_checker.h"

namespace zbudfs::exerciser {

class FileOps {
 public:
  FileOps(const Context& ctx, SeekChecker* seek) : c_(ctx), seek_(seek) {}
  FileOps(const FileOps&) = delete;
  FileOps& operator=(const FileOps&) = delete;

  void Open();
  void Close();
  // Closes open handle i on both sides (and forgets it).
  void CloseHandle(size_t i);
  void Write();
  void Read();
  // Reads through a fresh O_DIRECT descriptor of the same file (via /proc/self/fd), so the
  // data comes from the daemon and not from the kernel's page cache.
  void DirectRead();
  void Sync();
  // Writes back and drops the kernel's cached pages of the file, so the next reads and mmap
  // faults go to the daemon (and, under mem_limit, to the overflow directory).
  void DropCache();
  void Fstat();
  void Seek();
  // Compares a whole open file (reference extents; zbudfs's own only when nothing is open
  // for writing, since it reports all data while a writer may hold dirty pages).
  void CompareHandle();

 private:
  // Seeks both sides to off before a write(2) or read(2).
  void SeekBoth(const Handle& h, uint64_t off);

  Context c_;
  SeekChecker* const seek_;
};

}  // namespace zbudfs::exerciser

#endif  // ZBUDFS_TESTS_EXERCISER_FILE_OPS_H_

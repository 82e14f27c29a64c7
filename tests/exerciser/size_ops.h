// Operations that change a file's size or allocation: truncate/ftruncate up and down, and
// fallocate (PUNCH_HOLE|KEEP_SIZE, ZERO_RANGE, plain and KEEP_SIZE allocation). tmpfs has no
// ZERO_RANGE, so the reference gets zeros written instead (and its size extended unless
// KEEP_SIZE). Single-threaded.
#ifndef ZBUDFS_TESTS_EXERCISER_SIZE_OPS_H_
#define ZBUDFS_TESTS_EXERCISER_SIZE_OPS_H_

#include <cstdint>

#include "tests/exerciser/context.h"

namespace zbudfs::exerciser {

class SizeOps {
 public:
  explicit SizeOps(const Context& ctx) : c_(ctx) {}
  SizeOps(const SizeOps&) = delete;
  SizeOps& operator=(const SizeOps&) = delete;

  void Truncate();
  void Fallocate();

 private:
  // A new size for a file of this size.
  uint64_t PickNewSize(uint64_t size);
  void PunchHole(Handle* h, uint64_t off, uint64_t len, uint64_t size);
  void ZeroRange(Handle* h, uint64_t off, uint64_t len, uint64_t size);
  // Writes zeros over [off, end) of the reference (through a writable reopen of h->r).
  void WriteRefZeros(const Handle& h, uint64_t off, uint64_t end);
  void Allocate(Handle* h, uint64_t off, uint64_t len, uint64_t size);

  Context c_;
};

}  // namespace zbudfs::exerciser

#endif  // ZBUDFS_TESTS_EXERCISER_SIZE_OPS_H_

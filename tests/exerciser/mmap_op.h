// mmap MAP_SHARED of a range of a file on both sides: the mapped bytes are compared, and on a
// read-write mapping a few stores are made to both, optionally followed by msync. A SIGBUS
// while touching the zbudfs mapping (a page the daemon could not supply) fails the run with
// the operation named instead of killing the process. Single-threaded; InstallSigbusHandler
// once per process before the first Run.
#ifndef ZBUDFS_TESTS_EXERCISER_MMAP_OP_H_
#define ZBUDFS_TESTS_EXERCISER_MMAP_OP_H_

#include <cstdint>
#include <string>

#include "tests/exerciser/context.h"

namespace zbudfs::exerciser {

class MmapOp {
 public:
  explicit MmapOp(const Context& ctx) : c_(ctx) {}
  MmapOp(const MmapOp&) = delete;
  MmapOp& operator=(const MmapOp&) = delete;

  static void InstallSigbusHandler();

  void Run();

 private:
  // Compares the mappings; on rw, stores into both and msyncs. SIGBUS must be caught.
  void Touch(const std::string& what, uint8_t* zp, uint8_t* rp, uint64_t off, uint64_t len,
             bool rw);
  void Store(uint8_t* zp, uint8_t* rp, uint64_t off, uint64_t len);

  Context c_;
};

}  // namespace zbudfs::exerciser

#endif  // ZBUDFS_TESTS_EXERCISER_MMAP_OP_H_

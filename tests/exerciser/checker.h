// The comparisons of zbudfs with the reference: byte ranges, whole sparse files, stat results
// of handles and paths, and whole trees. A difference fails the run through the OpLog.
// Owns the two read buffers. Single-threaded.
#ifndef ZBUDFS_TESTS_EXERCISER_CHECKER_H_
#define ZBUDFS_TESTS_EXERCISER_CHECKER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "tests/exerciser/handle.h"
#include "tests/exerciser/model.h"
#include "tests/exerciser/op_log.h"
#include "tests/exerciser/options.h"

namespace zbudfs::exerciser {

class Checker {
 public:
  Checker(const Options& opt, OpLog* log, Model* model) : opt_(opt), log_(log), model_(model) {}
  Checker(const Checker&) = delete;
  Checker& operator=(const Checker&) = delete;

  // Buffers of at least n bytes for reading the zbudfs and the reference side.
  uint8_t* ZBuf(size_t n);
  uint8_t* RBuf(size_t n);

  // Reads [off, off+n) from both fds (pread, in 1 MiB pieces) and compares.
  void CompareRange(const std::string& what, int zfd, int rfd, uint64_t off, uint64_t n);
  // Compares the whole content of two files of the same size: the data extents of the
  // reference (and of zbudfs too when use_zbud_extents, i.e. no writer is open), and samples
  // of the rest, which must read as zeros on both.
  void CompareWhole(const std::string& what, int zfd, int rfd, uint64_t size,
                    bool use_zbud_extents);
  // st_size and st_nlink of a handle's file.
  void CompareFstat(const Handle& h, const char* after);
  // The lstat results of a path: mode, link count and size.
  void CompareStat(const std::string& p, const char* after);
  // Walks both trees from rel: same names, types, modes, sizes and link counts; with
  // content, every regular file's bytes too.
  void CompareTree(const std::string& rel, bool content);

 private:
  const Options& opt_;
  OpLog* const log_;
  Model* const model_;
  std::vector<uint8_t> zbuf_, rbuf_;
};

}  // namespace zbudfs::exerciser

#endif  // ZBUDFS_TESTS_EXERCISER_CHECKER_H_

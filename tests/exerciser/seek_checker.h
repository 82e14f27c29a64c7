// Checks lseek SEEK_DATA/SEEK_HOLE answers of zbudfs for truth against the reference's
// content. zbudfs need not give tmpfs's answers (it may report data where tmpfs has a hole,
// e.g. while a writer is open), but its answers must be true: no data skipped by SEEK_DATA,
// no hole reported over data by SEEK_HOLE, ENXIO only past the data / at EOF. A violation is
// counted and reported (the first five on stderr); the run goes on and fails at its end, so
// that it does not hide other differences. Single-threaded.
#ifndef ZBUDFS_TESTS_EXERCISER_SEEK_CHECKER_H_
#define ZBUDFS_TESTS_EXERCISER_SEEK_CHECKER_H_

#include <cstdint>
#include <string>

#include "tests/exerciser/op_log.h"
#include "tests/exerciser/options.h"
#include "tests/exerciser/result.h"

namespace zbudfs::exerciser {

class SeekChecker {
 public:
  SeekChecker(const Options& opt, OpLog* log) : opt_(opt), log_(log) {}
  SeekChecker(const SeekChecker&) = delete;
  SeekChecker& operator=(const SeekChecker&) = delete;

  // Checks zbudfs's answer z to lseek(off, SEEK_DATA when data, else SEEK_HOLE) on a file of
  // this size whose reference is open as rfd.
  void Check(const std::string& what, int rfd, uint64_t off, uint64_t size, bool data, Res z);
  uint64_t violations() const { return violations_; }

 private:
  void CheckData(const std::string& what, int rfd, uint64_t off, uint64_t size, Res z);
  void CheckHole(const std::string& what, int rfd, uint64_t off, uint64_t size, Res z);
  void Violation(const std::string& what);

  const Options& opt_;
  OpLog* const log_;
  uint64_t violations_ = 0;
};

}  // namespace zbudfs::exerciser

#endif  // ZBUDFS_TESTS_EXERCISER_SEEK_CHECKER_H_

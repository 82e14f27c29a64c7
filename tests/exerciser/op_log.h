// The operation log and the failure report: every operation and its results are logged (the
// last 4096 lines kept, each echoed with --verbose); a mismatch prints the seed, the failing
// operation, the log's tail and the command that replays the run, and exits with status 1.
// Single-threaded, like the whole run.
#ifndef ZBUDFS_TESTS_EXERCISER_OP_LOG_H_
#define ZBUDFS_TESTS_EXERCISER_OP_LOG_H_

#include <cstdint>
#include <deque>
#include <string>

#include "tests/exerciser/options.h"
#include "tests/exerciser/result.h"

namespace zbudfs::exerciser {

class OpLog {
 public:
  explicit OpLog(const Options& opt) : opt_(opt) {}
  OpLog(const OpLog&) = delete;
  OpLog& operator=(const OpLog&) = delete;

  // The number of the operation running now (the "#N" of each line).
  uint64_t op() const { return op_; }
  void set_op(uint64_t op) { op_ = op; }

  void Log(const std::string& s);
  [[noreturn]] void Fail(const std::string& what);

  // Both sides must succeed or fail alike (with the same errno); with same_value, their
  // return values must match too. Logs the results; returns true when both succeeded.
  bool Same(const std::string& what, Res z, Res r, bool same_value = true);

 private:
  const Options& opt_;
  std::deque<std::string> lines_;
  uint64_t op_ = 0;
};

}  // namespace zbudfs::exerciser

#endif  // ZBUDFS_TESTS_EXERCISER_OP_LOG_H_

// One job's run: owns the parts (log, model, picker, data, checker, operation classes), makes
// the starting directories, runs --ops randomly chosen operations (weights steered by the
// number of open handles and the data budget) with a light tree compare every
// --check-every, then compares and closes every handle and compares the trees with content.
// Prints a progress line per light compare and a summary; a mismatch exits via OpLog::Fail.
// Single-threaded.
#ifndef ZBUDFS_TESTS_EXERCISER_RUNNER_H_
#define ZBUDFS_TESTS_EXERCISER_RUNNER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tests/exerciser/checker.h"
#include "tests/exerciser/context.h"
#include "tests/exerciser/data_gen.h"
#include "tests/exerciser/file_ops.h"
#include "tests/exerciser/mmap_op.h"
#include "tests/exerciser/model.h"
#include "tests/exerciser/name_ops.h"
#include "tests/exerciser/op_log.h"
#include "tests/exerciser/options.h"
#include "tests/exerciser/picker.h"
#include "tests/exerciser/seek_checker.h"
#include "tests/exerciser/size_ops.h"

namespace zbudfs::exerciser {

class Runner {
 public:
  explicit Runner(const Options& opt);
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // Runs the job; returns the exit status (0, or 1 after SEEK_DATA/SEEK_HOLE violations).
  int Run();

 private:
  struct OpDef {
    const char* name;
    std::function<void()> fn;
    unsigned weight;
  };

  std::vector<OpDef> MakeOps();
  // The index of the operation to run next.
  size_t PickOp(const std::vector<OpDef>& ops);
  double Seconds() const;
  void Progress();
  // Every open handle (some of unlinked files) compared whole and closed.
  void CompareAndCloseHandles();
  int Summary();

  const Options& opt_;
  OpLog log_;
  Model model_;
  Picker pick_;
  DataGen data_;
  Checker check_;
  SeekChecker seek_;
  Context ctx_;
  FileOps file_ops_;
  SizeOps size_ops_;
  MmapOp mmap_op_;
  NameOps name_ops_;
  std::map<std::string, uint64_t> counts_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace zbudfs::exerciser

#endif  // ZBUDFS_TESTS_EXERCISER_RUNNER_H_

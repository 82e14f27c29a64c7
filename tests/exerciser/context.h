// The parts of a run every operation works with, handed to the operation classes together.
// The Runner owns them; they outlive the operation classes.
#ifndef ZBUDFS_TESTS_EXERCISER_CONTEXT_H_
#define ZBUDFS_TESTS_EXERCISER_CONTEXT_H_

#include "tests/exerciser/checker.h"
#include "tests/exerciser/data_gen.h"
#include "tests/exerciser/model.h"
#include "tests/exerciser/op_log.h"
#include "tests/exerciser/options.h"
#include "tests/exerciser/picker.h"

namespace zbudfs::exerciser {

struct Context {
  const Options& opt;
  OpLog& log;
  Model& model;
  Picker& pick;
  DataGen& data;
  Checker& check;
};

}  // namespace zbudfs::exerciser

#endif  // ZBUDFS_TESTS_EXERCISER_CONTEXT_H_

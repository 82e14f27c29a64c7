// The run's random choices: the seeded generator, and what an operation works on (a handle, a
// name, an offset, a length), biased by the data budget: while the reference holds less than
// --target-mb, writes grow files; above 5/4 of it, operations stay inside files and shrink them.
// Every choice depends only on the seed and the reference, so a seed replays the same run.
#ifndef ZBUDFS_TESTS_EXERCISER_PICKER_H_
#define ZBUDFS_TESTS_EXERCISER_PICKER_H_

#include <cstdint>
#include <string>

#include "tests/exerciser/handle.h"
#include "tests/exerciser/model.h"
#include "tests/exerciser/options.h"
#include "tests/exerciser/rng.h"

namespace zbudfs::exerciser {

class Picker {
 public:
  Picker(const Options& opt, Model* model) : opt_(opt), model_(model), rng_{opt.seed} {}
  Picker(const Picker&) = delete;
  Picker& operator=(const Picker&) = delete;

  Rng& rng() { return rng_; }

  // Measures the reference's data (Model::RefUsed) for the operation about to run.
  void Measure() { used_now_ = model_->RefUsed(); }
  uint64_t used_now() const { return used_now_; }
  bool Over() const { return used_now_ > opt_.target_bytes * 5 / 4; }
  bool Under() const { return used_now_ < opt_.target_bytes; }

  uint64_t Len();
  uint64_t Offset(uint64_t size, uint64_t len);
  // An open handle (nullptr when none), mostly one that allows writing/reading if asked to.
  Handle* PickHandle(bool want_write = false, bool want_read = false);
  std::string File();
  std::string Dir();
  std::string Any();  // Mostly a file name, sometimes a directory's.

 private:
  const Options& opt_;
  Model* const model_;
  Rng rng_;
  uint64_t used_now_ = 0;  // RefUsed() at the start of the current op.
};

}  // namespace zbudfs::exerciser

#endif  // ZBUDFS_TESTS_EXERCISER_PICKER_H_

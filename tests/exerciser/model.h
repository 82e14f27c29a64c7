// The two trees side by side: the zbudfs directory under test, the reference directory that
// says what it should hold, the fixed set of names operations pick from, and the handles open
// on both. The reference is the model of the expected file system: its state (sizes, the data
// it holds) steers the random choices, never zbudfs's. Single-threaded.
#ifndef ZBUDFS_TESTS_EXERCISER_MODEL_H_
#define ZBUDFS_TESTS_EXERCISER_MODEL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "tests/exerciser/handle.h"
#include "tests/exerciser/op_log.h"
#include "tests/exerciser/options.h"

namespace zbudfs::exerciser {

class Model {
 public:
  // The names operations use, relative to both roots.
  static const std::vector<std::string> kFiles;
  static const std::vector<std::string> kDirs;

  Model(const Options& opt, OpLog* log) : opt_(opt), log_(log) {}
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const std::string& zroot() const { return opt_.zroot; }
  const std::string& rroot() const { return opt_.rroot; }
  std::string Z(const std::string& p) const { return opt_.zroot + "/" + p; }
  std::string R(const std::string& p) const { return opt_.rroot + "/" + p; }

  std::vector<Handle>& handles() { return handles_; }
  // Records a handle opened on both sides and gives it the next id.
  const Handle& Add(int z, int r, int acc, bool append, const std::string& name);
  // Forgets handle i (the caller closes its descriptors).
  Handle Remove(size_t i);

  // st_size of the reference's file (fails the run when fstat fails).
  uint64_t RefSize(const Handle& h) const;
  // Bytes the reference files hold (the data budget's measure): st_blocks of every file under
  // the reference root and of every open handle's file (unlinked ones too), each inode once.
  // (Counted per job, not from statvfs, so that parallel jobs do not steer each other.)
  uint64_t RefUsed() const;

 private:
  const Options& opt_;
  OpLog* const log_;
  std::vector<Handle> handles_;
  uint64_t next_handle_id_ = 1;
};

}  // namespace zbudfs::exerciser

#endif  // ZBUDFS_TESTS_EXERCISER_MODEL_H_

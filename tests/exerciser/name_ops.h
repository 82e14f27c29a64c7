// Operations on names: lstat, unlink (also of open files, whose handles stay in use), rename
// and renameat2 (NOREPLACE, EXCHANGE), link, mkdir, rmdir and readdir. Each does the same on
// both sides and compares. Single-threaded.
#ifndef ZBUDFS_TESTS_EXERCISER_NAME_OPS_H_
#define ZBUDFS_TESTS_EXERCISER_NAME_OPS_H_

#include "tests/exerciser/context.h"

namespace zbudfs::exerciser {

class NameOps {
 public:
  explicit NameOps(const Context& ctx) : c_(ctx) {}
  NameOps(const NameOps&) = delete;
  NameOps& operator=(const NameOps&) = delete;

  void Stat();
  void Unlink();
  void Rename();
  void Link();
  void Mkdir();
  void Rmdir();
  void Readdir();

 private:
  Context c_;
};

}  // namespace zbudfs::exerciser

#endif  // ZBUDFS_TESTS_EXERCISER_NAME_OPS_H_

// A private temporary directory for one test (the overflow directory of the OverflowStore and
// reclaim tests), removed with everything in it when the test ends. Not thread-safe; one owner.
#ifndef ZBUDFS_TESTS_TEMP_DIR_H_
#define ZBUDFS_TESTS_TEMP_DIR_H_

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <boost/filesystem.hpp>
#include <string>

namespace zbudfs::test {

class TempDir {
 public:
  TempDir() {
    namespace fs = boost::filesystem;
    std::string templ = (fs::temp_directory_path() / "zbudfs-test.XXXXXX").string();
    EXPECT_NE(mkdtemp(templ.data()), nullptr);
    path_ = templ;
    chmod(path_.c_str(), 0700);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() { boost::filesystem::remove_all(path_); }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace zbudfs::test

#endif  // ZBUDFS_TESTS_TEMP_DIR_H_

// Tests of fs/mount_table.cc: FindMount on tables written here (escapes, the latest mount
// wins, errors) and on this process's own table; CachedDevice against stat(2). No root.
#include "fs/mount_table.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <string>

namespace zbudfs {
namespace {

// A table file in fstab(5) format, removed at the end of the test.
class TableFile {
 public:
  explicit TableFile(const std::string& text) {
    char name[] = "/tmp/mount_table_test.XXXXXX";
    int fd = mkstemp(name);
    EXPECT_GE(fd, 0);
    close(fd);
    path_ = name;
    std::ofstream(path_) << text;
  }
  ~TableFile() { unlink(path_.c_str()); }
  TableFile(const TableFile&) = delete;
  TableFile& operator=(const TableFile&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(FindMountTest, FindsTheEntryAtDir) {
  TableFile t(
      "proc /proc proc rw,nosuid 0 0\n"
      "zbudfs /mnt/z fuse.zbudfs rw,user_id=0 0 0\n");
  StatusOr<MountEntry> e = FindMount("/mnt/z", t.path());
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e.value().source, "zbudfs");
  EXPECT_EQ(e.value().dir, "/mnt/z");
  EXPECT_EQ(e.value().type, "fuse.zbudfs");
  EXPECT_EQ(e.value().options, "rw,user_id=0");
}

TEST(FindMountTest, UndoesOctalEscapes) {
  TableFile t("zbudfs /mnt/a\\040b\\011c\\134d fuse.zbudfs rw 0 0\n");
  StatusOr<MountEntry> e = FindMount("/mnt/a b\tc\\d", t.path());
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e.value().dir, "/mnt/a b\tc\\d");
  EXPECT_FALSE(FindMount("/mnt/a\\040b\\011c\\134d", t.path()).ok());
}

TEST(FindMountTest, LatestMountWins) {
  TableFile t(
      "tmpfs /mnt/z tmpfs rw 0 0\n"
      "zbudfs /mnt/z fuse.zbudfs ro 0 0\n");
  StatusOr<MountEntry> e = FindMount("/mnt/z", t.path());
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e.value().type, "fuse.zbudfs");
  EXPECT_EQ(e.value().options, "ro");
}

TEST(FindMountTest, OnlyWholePathsMatch) {
  TableFile t("zbudfs /mnt/z fuse.zbudfs rw 0 0\n");
  for (const char* dir : {"/mnt", "/mnt/", "/mnt/z/", "/mnt/zz", "/mnt/z/a"}) {
    StatusOr<MountEntry> e = FindMount(dir, t.path());
    EXPECT_FALSE(e.ok()) << dir;
    EXPECT_EQ(e.status().code(), ENOENT) << dir;
  }
}

TEST(FindMountTest, UnreadableTableIsAnError) {
  StatusOr<MountEntry> e = FindMount("/", "/nonexistent/mounts");
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), ENOENT);
}

TEST(FindMountTest, RootIsMountedHere) {
  StatusOr<MountEntry> e = FindMount("/");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e.value().dir, "/");
}

TEST(CachedDeviceTest, MatchesStat) {
  for (const char* path : {"/", "/proc", "/tmp"}) {
    struct stat st;
    ASSERT_EQ(stat(path, &st), 0) << path;
    StatusOr<dev_t> dev = CachedDevice(path);
    ASSERT_TRUE(dev.ok()) << dev.status().ToString();
    EXPECT_EQ(*dev, st.st_dev) << path;
  }
}

TEST(CachedDeviceTest, MissingPathIsAnError) {
  StatusOr<dev_t> dev = CachedDevice("/nonexistent/path");
  EXPECT_FALSE(dev.ok());
  EXPECT_EQ(dev.status().code(), ENOENT);
}

}  // namespace
}  // namespace zbudfs

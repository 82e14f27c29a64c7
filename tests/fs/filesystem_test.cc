// Tests of fs/filesystem.cc's helpers that need no FUSE session: Forget (the kernel's lookup
// count going down) and ReleaseIfUnused (an inode's last reference freeing its file data),
// on a Filesystem with a store but no session: no mount, no root. Also the metadata
// charges (long symlink targets) the final release gives back.
#include "fs/filesystem.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <memory>
#include <string>
#include <vector>

namespace zbudfs {
namespace {

class FilesystemTest : public ::testing::Test {
 protected:
  FilesystemTest() : fs_(Options()) { fs_.StartStore(nullptr); }

  static MountOptions Options() {
    MountOptions o;
    o.size = 64 << 20;
    o.mem_limit = 64 << 20;
    o.overflow_limit = o.size;
    return o;
  }

  // A regular file with one page of data in the store and the given counts.
  std::shared_ptr<Inode> FileWithData(uint32_t nlink, uint64_t nlookup) {
    std::shared_ptr<Inode> inode = fs_.table().Create(S_IFREG | 0644, "");
    inode->nlink = nlink;
    inode->nlookup = nlookup;
    std::vector<char> page(kPageSize, 'x');
    EXPECT_TRUE(fs_.store().Write(inode->ino, 0, page.data(), page.size()).ok());
    EXPECT_EQ(fs_.store().Usage(inode->ino).pages, 1u);
    return inode;
  }

  Filesystem fs_;
};

TEST_F(FilesystemTest, ForgetLowersTheLookupCount) {
  std::shared_ptr<Inode> inode = FileWithData(/*nlink=*/1, /*nlookup=*/5);
  fs_.Forget(inode->ino, 2);
  EXPECT_EQ(inode->nlookup, 3u);
  fs_.Forget(inode->ino, 3);
  EXPECT_EQ(inode->nlookup, 0u);
  // Still linked: it stays, with its data.
  EXPECT_EQ(fs_.Get(inode->ino), inode);
  EXPECT_EQ(fs_.store().Usage(inode->ino).pages, 1u);
}

TEST_F(FilesystemTest, LastForgetOfAnUnlinkedFileFreesItsData) {
  std::shared_ptr<Inode> inode = FileWithData(/*nlink=*/0, /*nlookup=*/2);
  fs_.Forget(inode->ino, 1);
  EXPECT_EQ(fs_.Get(inode->ino), inode);
  EXPECT_EQ(fs_.store().Usage(inode->ino).pages, 1u);
  fs_.Forget(inode->ino, 1);
  EXPECT_EQ(fs_.Get(inode->ino), nullptr);
  EXPECT_EQ(fs_.store().Usage(inode->ino).pages, 0u);
  EXPECT_EQ(fs_.store().Stats().orig_data_size, 0u);
  EXPECT_EQ(fs_.table().size(), 1u);  // The root.
}

TEST_F(FilesystemTest, ForgetMoreThanLookedUpStopsAtZero) {
  std::shared_ptr<Inode> inode = FileWithData(/*nlink=*/1, /*nlookup=*/2);
  fs_.Forget(inode->ino, 10);
  EXPECT_EQ(inode->nlookup, 0u);
  EXPECT_EQ(fs_.Get(inode->ino), inode);
}

TEST_F(FilesystemTest, ForgetKeepsAnOpenUnlinkedFile) {
  std::shared_ptr<Inode> inode = FileWithData(/*nlink=*/0, /*nlookup=*/1);
  inode->open_count = 1;
  fs_.Forget(inode->ino, 1);
  EXPECT_EQ(fs_.Get(inode->ino), inode);  // The handle still reads it.
  EXPECT_EQ(fs_.store().Usage(inode->ino).pages, 1u);
  inode->open_count = 0;  // Release: the last reference.
  fs_.ReleaseIfUnused(inode);
  EXPECT_EQ(fs_.Get(inode->ino), nullptr);
  EXPECT_EQ(fs_.store().Usage(inode->ino).pages, 0u);
}

TEST_F(FilesystemTest, ForgetOfAnUnknownInodeIsIgnored) {
  std::shared_ptr<Inode> inode = FileWithData(/*nlink=*/0, /*nlookup=*/1);
  fs_.Forget(inode->ino + 100, 1);
  fs_.Forget(inode->ino, 1);
  fs_.Forget(inode->ino, 1);  // Already dropped: a late duplicate forget.
  EXPECT_EQ(fs_.Get(inode->ino), nullptr);
  EXPECT_EQ(fs_.table().size(), 1u);
}

TEST_F(FilesystemTest, RootSurvivesForget) {
  fs_.Forget(FUSE_ROOT_ID, 1);
  EXPECT_EQ(fs_.table().root()->nlookup, 0u);
  EXPECT_EQ(fs_.Get(FUSE_ROOT_ID), fs_.table().root());
}

TEST_F(FilesystemTest, ReleaseOfADirectoryTouchesNoData) {
  std::shared_ptr<Inode> dir = fs_.table().Create(S_IFDIR | 0755, "");
  std::shared_ptr<Inode> file = FileWithData(/*nlink=*/1, /*nlookup=*/0);
  fs_.ReleaseIfUnused(dir);
  EXPECT_EQ(fs_.Get(dir->ino), nullptr);
  EXPECT_EQ(fs_.store().Usage(file->ino).pages, 1u);
}

// Symlink (ops_dir.cc) charges SymlinkCost when it creates the inode; the final release
// gives it back, once, however many links the inode had.
TEST_F(FilesystemTest, LastForgetOfALongSymlinkGivesItsChargeBack) {
  EXPECT_EQ(SymlinkCost(kShortSymlinkLen - 1), 0u);  // Inline in the inode, as on tmpfs.
  const std::string target(4000, 't');
  ASSERT_EQ(SymlinkCost(target.size()), kPageSize);
  ASSERT_TRUE(fs_.store().ChargeMetadata(SymlinkCost(target.size())).ok());
  std::shared_ptr<Inode> link = fs_.table().Create(S_IFLNK | 0777, target);
  link->nlink = 2;  // A hard link too.
  link->nlookup = 2;
  fs_.Forget(link->ino, 1);
  link->nlink = 0;  // Both names unlinked; one lookup left.
  EXPECT_EQ(fs_.store().Stats().metadata_bytes, kPageSize);
  fs_.Forget(link->ino, 1);
  EXPECT_EQ(fs_.Get(link->ino), nullptr);
  EXPECT_EQ(fs_.store().Stats().metadata_bytes, 0u);
  fs_.ReleaseIfUnused(link);  // Already dropped: nothing more given back.
  EXPECT_EQ(fs_.store().Stats().metadata_bytes, 0u);
}

TEST_F(FilesystemTest, ANewDirectoryIsEmptyAndUnderTheRoot) {
  std::shared_ptr<Inode> dir = fs_.table().Create(S_IFDIR | 0755, "");
  WriterLock tree(&fs_.tree_mu());
  EXPECT_TRUE(fs_.Contents(*dir).empty());
  EXPECT_TRUE(fs_.Contents(*fs_.table().root()).empty());
  EXPECT_EQ(fs_.Parent(*dir), fuse_ino_t{FUSE_ROOT_ID});
  fs_.MutableContents(*fs_.table().root()).Insert("d", dir);
  fs_.SetParent(*dir, FUSE_ROOT_ID + 7);
  EXPECT_EQ(fs_.Parent(*dir), fuse_ino_t{FUSE_ROOT_ID + 7});
  ASSERT_NE(fs_.Contents(*fs_.table().root()).Find("d"), nullptr);
  EXPECT_EQ(fs_.Contents(*fs_.table().root()).Find("d")->inode, dir);
}

}  // namespace
}  // namespace zbudfs

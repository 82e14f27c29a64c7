// Tests of fs/inode_table.cc's InodeTable and Inode: numbering, lookup, the counts that keep
// an inode alive and its release when none is left. Directory has directory_test.cc.
#include "fs/inode_table.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

namespace zbudfs {
namespace {

TEST(InodeTableTest, StartsWithTheRootOnly) {
  InodeTable table;
  EXPECT_EQ(table.size(), 1u);
  const std::shared_ptr<Inode>& root = table.root();
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(root->ino, fuse_ino_t{FUSE_ROOT_ID});
  EXPECT_EQ(table.Get(FUSE_ROOT_ID), root);
  EXPECT_TRUE(root->is_dir());
  EXPECT_FALSE(root->is_reg());
  EXPECT_EQ(root->mode, mode_t{S_IFDIR | 01777});
  EXPECT_EQ(root->nlink, 2u);
  EXPECT_EQ(root->nlookup, 1u);  // The kernel holds it without a lookup.
  EXPECT_EQ(root->uid, getuid());
  EXPECT_EQ(root->gid, getgid());
  EXPECT_EQ(root->size, 2 * kDirentSize);
  EXPECT_EQ(table.CountInUse(), 1u);
}

TEST(InodeTableTest, CreateGivesFreshNumbersAndGetFindsThem) {
  InodeTable table;
  std::shared_ptr<Inode> a = table.Create(S_IFREG | 0644, "");
  std::shared_ptr<Inode> b = table.Create(S_IFDIR | 0755, "");
  std::shared_ptr<Inode> c = table.Create(S_IFLNK | 0777, "target/of/link");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(c, nullptr);
  EXPECT_GT(a->ino, fuse_ino_t{FUSE_ROOT_ID});
  EXPECT_GT(b->ino, a->ino);
  EXPECT_GT(c->ino, b->ino);
  EXPECT_EQ(table.size(), 4u);
  EXPECT_EQ(table.Get(a->ino), a);
  EXPECT_EQ(table.Get(b->ino), b);
  EXPECT_EQ(table.Get(c->ino), c);
  EXPECT_EQ(table.Get(c->ino + 1000), nullptr);
}

TEST(InodeTableTest, CreateSetsTheTypeAndNothingElse) {
  InodeTable table;
  std::shared_ptr<Inode> file = table.Create(S_IFREG | 0640, "");
  EXPECT_TRUE(file->is_reg());
  EXPECT_FALSE(file->is_dir());
  EXPECT_FALSE(file->is_symlink());
  EXPECT_EQ(file->type(), mode_t{S_IFREG});
  EXPECT_EQ(file->symlink, nullptr);
  EXPECT_EQ(file->mode, mode_t{S_IFREG | 0640});
  EXPECT_EQ(file->nlink, 0u);  // The caller links it.
  EXPECT_EQ(file->nlookup, 0u);
  EXPECT_EQ(file->open_count, 0u);
  EXPECT_EQ(file->size, 0);
  EXPECT_EQ(file->generation, 1u);

  std::shared_ptr<Inode> dir = table.Create(S_IFDIR | 0700, "");
  EXPECT_TRUE(dir->is_dir());
  EXPECT_EQ(dir->type(), mode_t{S_IFDIR});
  EXPECT_EQ(dir->symlink, nullptr);

  std::shared_ptr<Inode> link = table.Create(S_IFLNK | 0777, "../somewhere");
  ASSERT_NE(link->symlink, nullptr);
  EXPECT_EQ(*link->symlink, "../somewhere");
  EXPECT_TRUE(link->is_symlink());
  EXPECT_FALSE(link->is_reg());
  EXPECT_FALSE(link->is_dir());

  std::shared_ptr<Inode> fifo = table.Create(S_IFIFO | 0600, "ignored");
  EXPECT_EQ(fifo->symlink, nullptr);  // Only symlinks keep a target.
  EXPECT_FALSE(fifo->is_reg());
}

TEST(InodeTableTest, NumbersAreNeverReused) {
  InodeTable table;
  std::vector<fuse_ino_t> seen;
  for (int i = 0; i < 50; ++i) {
    std::shared_ptr<Inode> inode = table.Create(S_IFREG | 0644, "");
    for (fuse_ino_t old : seen) ASSERT_NE(inode->ino, old);
    seen.push_back(inode->ino);
    ASSERT_TRUE(table.DropIfUnused(inode));  // No link, lookup or handle: dropped at once.
  }
  EXPECT_EQ(table.size(), 1u);
}

TEST(InodeTableTest, EachCountKeepsAnInode) {
  InodeTable table;
  struct Case {
    const char* what;
    uint32_t nlink;
    uint64_t nlookup;
    uint32_t open_count;
  };
  for (const Case& c : {Case{"link", 1, 0, 0}, Case{"lookup", 0, 1, 0}, Case{"handle", 0, 0, 1},
                        Case{"all", 2, 3, 4}}) {
    std::shared_ptr<Inode> inode = table.Create(S_IFREG | 0644, "");
    inode->nlink = c.nlink;
    inode->nlookup = c.nlookup;
    inode->open_count = c.open_count;
    EXPECT_FALSE(table.DropIfUnused(inode)) << c.what;
    EXPECT_EQ(table.Get(inode->ino), inode) << c.what;
    // The last count to go lets it go.
    inode->nlink = 0;
    inode->nlookup = 0;
    inode->open_count = 0;
    EXPECT_TRUE(table.DropIfUnused(inode)) << c.what;
    EXPECT_EQ(table.Get(inode->ino), nullptr) << c.what;
  }
  EXPECT_EQ(table.size(), 1u);
}

TEST(InodeTableTest, DropTwiceDropsOnce) {
  InodeTable table;
  std::shared_ptr<Inode> inode = table.Create(S_IFREG | 0644, "");
  std::shared_ptr<Inode> other = table.Create(S_IFREG | 0644, "");
  other->nlink = 1;
  EXPECT_TRUE(table.DropIfUnused(inode));
  EXPECT_FALSE(table.DropIfUnused(inode));
  EXPECT_EQ(table.size(), 2u);  // Root and other.
  EXPECT_EQ(table.Get(other->ino), other);
  // The caller's reference still works after the drop (open handles hold a raw pointer to it).
  EXPECT_EQ(inode.use_count(), 1);
}

TEST(InodeTableTest, RootIsNeverDropped) {
  InodeTable table;
  const std::shared_ptr<Inode>& root = table.root();
  root->nlink = 0;
  root->nlookup = 0;
  EXPECT_FALSE(table.DropIfUnused(root));
  EXPECT_EQ(table.Get(FUSE_ROOT_ID), root);
  EXPECT_EQ(table.size(), 1u);
}

// CountInUse is what nr_inodes compares with its limit (ops_dir.cc): inodes only waiting for
// the kernel's forget (unlinked, closed, still looked up) do not count.
TEST(InodeTableTest, CountInUseSkipsInodesOnlyWaitingForForget) {
  InodeTable table;
  std::shared_ptr<Inode> linked = table.Create(S_IFREG | 0644, "");
  linked->nlink = 1;
  linked->nlookup = 1;
  std::shared_ptr<Inode> open_unlinked = table.Create(S_IFREG | 0644, "");
  open_unlinked->open_count = 1;
  std::shared_ptr<Inode> forgotten_soon = table.Create(S_IFREG | 0644, "");
  forgotten_soon->nlookup = 2;
  std::shared_ptr<Inode> dir = table.Create(S_IFDIR | 0755, "");
  dir->nlink = 2;
  EXPECT_EQ(table.size(), 5u);
  EXPECT_EQ(table.CountInUse(), 4u);  // Root, linked, open_unlinked, dir.

  open_unlinked->open_count = 0;  // Closed: waits only for forget now.
  EXPECT_EQ(table.CountInUse(), 3u);
  EXPECT_EQ(table.size(), 5u);
  forgotten_soon->nlookup = 0;
  EXPECT_TRUE(table.DropIfUnused(forgotten_soon));
  EXPECT_EQ(table.size(), 4u);
  EXPECT_EQ(table.CountInUse(), 3u);
}

}  // namespace
}  // namespace zbudfs

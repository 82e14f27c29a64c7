// Tests of fs/inode_table.cc's Directory: names, and readdir cookies, which must stay stable
// across inserts and removals so that a listing resumed from any cookie (even one whose entry
// was removed meanwhile) returns no entry twice and skips no entry that stayed.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "fs/inode_table.h"

namespace zbudfs {
namespace {

using Listing = std::vector<std::pair<std::string, uint64_t>>;  // (name, cookie).

std::shared_ptr<Inode> NewInode(fuse_ino_t ino) {
  return std::make_shared<Inode>(ino, S_IFREG | 0644, std::string());
}

// Up to max entries after cookie, as one readdir call returns them.
Listing After(const Directory& dir, uint64_t cookie, size_t max = SIZE_MAX) {
  Listing out;
  dir.ForEachAfter(cookie, [&](const std::string& name, const Directory::Entry& e) {
    if (out.size() == max) return false;
    out.emplace_back(name, e.cookie);
    return true;
  });
  return out;
}

std::vector<std::string> Names(const Listing& l) {
  std::vector<std::string> names;
  for (const auto& [name, cookie] : l) names.push_back(name);
  return names;
}

std::string Name(int i) { return std::string("f") + std::to_string(i); }

TEST(DirectoryTest, FindInsertErase) {
  Directory dir;
  EXPECT_TRUE(dir.empty());
  EXPECT_EQ(dir.Find("a"), nullptr);
  std::shared_ptr<Inode> a = NewInode(10);
  dir.Insert("a", a);
  dir.Insert("b", NewInode(11));
  EXPECT_FALSE(dir.empty());
  EXPECT_EQ(dir.size(), 2u);
  ASSERT_NE(dir.Find("a"), nullptr);
  EXPECT_EQ(dir.Find("a")->inode, a);
  EXPECT_EQ(dir.Find("c"), nullptr);
  EXPECT_EQ(dir.Erase("a"), a);
  EXPECT_EQ(dir.Find("a"), nullptr);
  EXPECT_EQ(dir.size(), 1u);
  dir.Erase("b");
  EXPECT_TRUE(dir.empty());
}

TEST(DirectoryTest, CookiesStartAfterDotAndDotDotAndGrow) {
  Directory dir;
  for (int i = 0; i < 5; ++i) dir.Insert(Name(i), NewInode(10 + i));
  Listing l = After(dir, 0);
  EXPECT_EQ(l, (Listing{{"f0", 3}, {"f1", 4}, {"f2", 5}, {"f3", 6}, {"f4", 7}}));
  EXPECT_EQ(l.front().second, Directory::kFirstCookie);
  // "." and ".." (cookies 1 and 2) are not entries: resuming after them lists everything.
  EXPECT_EQ(After(dir, 1), l);
  EXPECT_EQ(After(dir, 2), l);
}

TEST(DirectoryTest, ListsInInsertOrderNotNameOrder) {
  Directory dir;
  for (const char* n : {"zeta", "alpha", "mu"}) dir.Insert(n, NewInode(10));
  EXPECT_EQ(Names(After(dir, 0)), (std::vector<std::string>{"zeta", "alpha", "mu"}));
}

TEST(DirectoryTest, CookiesAreStableAcrossInsertsAndRemovals) {
  Directory dir;
  for (int i = 0; i < 10; ++i) dir.Insert(Name(i), NewInode(10 + i));
  std::map<std::string, uint64_t> before;
  for (const auto& [name, cookie] : After(dir, 0)) before[name] = cookie;
  dir.Erase("f0");
  dir.Erase("f5");
  dir.Insert("new", NewInode(99));
  for (const auto& [name, cookie] : After(dir, 0)) {
    if (name == "new") {
      EXPECT_EQ(cookie, before["f9"] + 1);
    } else {
      EXPECT_EQ(cookie, before.at(name)) << name;
    }
    EXPECT_EQ(dir.Find(name)->cookie, cookie) << name;
  }
}

TEST(DirectoryTest, ReinsertedNameGetsANewCookie) {
  Directory dir;
  dir.Insert("a", NewInode(10));
  dir.Insert("b", NewInode(11));
  const uint64_t old = dir.Find("a")->cookie;
  dir.Erase("a");
  dir.Insert("a", NewInode(12));
  EXPECT_GT(dir.Find("a")->cookie, dir.Find("b")->cookie);
  EXPECT_NE(dir.Find("a")->cookie, old);
  EXPECT_EQ(Names(After(dir, 0)), (std::vector<std::string>{"b", "a"}));
}

TEST(DirectoryTest, StopsWhenTheCallbackSaysSo) {
  Directory dir;
  for (int i = 0; i < 10; ++i) dir.Insert(Name(i), NewInode(10 + i));
  EXPECT_EQ(Names(After(dir, 0, 3)), (std::vector<std::string>{"f0", "f1", "f2"}));
  EXPECT_EQ(Names(After(dir, 5, 2)), (std::vector<std::string>{"f3", "f4"}));
  EXPECT_EQ(After(dir, 12), Listing{});  // After the last cookie: nothing.
  EXPECT_EQ(After(dir, UINT64_MAX), Listing{});
}

TEST(DirectoryTest, ResumesAfterARemovedEntry) {
  Directory dir;
  for (int i = 0; i < 6; ++i) dir.Insert(Name(i), NewInode(10 + i));
  Listing first = After(dir, 0, 3);  // f0 f1 f2; the next call resumes after f2's cookie.
  ASSERT_EQ(Names(first), (std::vector<std::string>{"f0", "f1", "f2"}));
  dir.Erase("f2");  // The entry the cookie names is gone...
  dir.Erase("f1");
  EXPECT_EQ(Names(After(dir, first.back().second)),  // ...the rest still comes, once.
            (std::vector<std::string>{"f3", "f4", "f5"}));
  dir.Erase("f3");  // The next entry gone too.
  EXPECT_EQ(Names(After(dir, first.back().second)), (std::vector<std::string>{"f4", "f5"}));
}

// Erasing more than half the names compacts the tombstones away; cookies handed out before
// (of removed entries too) must still resume at the right place.
TEST(DirectoryTest, ResumesAfterCompaction) {
  Directory dir;
  const int n = 200;
  for (int i = 0; i < n; ++i) dir.Insert(Name(i), NewInode(10 + i));
  Listing all = After(dir, 0);
  ASSERT_EQ(all.size(), size_t{n});
  const uint64_t resume = all[100].second;  // A listing stopped after f100.
  for (int i = 0; i < n; ++i) {
    if (i % 10 != 0) dir.Erase(Name(i));  // f100 goes too; 20 names stay.
  }
  EXPECT_EQ(dir.size(), 20u);
  std::vector<std::string> want;
  for (int i = 110; i < n; i += 10) want.push_back(Name(i));
  EXPECT_EQ(Names(After(dir, resume)), want);
  for (int i = 0; i < n; i += 10) EXPECT_EQ(dir.Find(Name(i))->cookie, all[i].second) << i;
  // New names still get cookies after every old one.
  dir.Insert("late", NewInode(999));
  EXPECT_EQ(dir.Find("late")->cookie, all.back().second + 1);
  want.push_back("late");
  EXPECT_EQ(Names(After(dir, resume)), want);
}

TEST(DirectoryTest, EraseEverythingThenRefill) {
  Directory dir;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 100; ++i) dir.Insert(Name(i), NewInode(10 + i));
    EXPECT_EQ(After(dir, 0).size(), 100u) << round;
    for (int i = 0; i < 100; ++i) dir.Erase(Name(i));
    EXPECT_TRUE(dir.empty()) << round;
    EXPECT_EQ(After(dir, 0), Listing{}) << round;
  }
}

// A model check: a listing read in small pages while names come and go at random returns
// every name present from its start to its end exactly once, no name twice, and only names
// that existed at some point during it.
TEST(DirectoryTest, PagedListingUnderRandomChurn) {
  std::mt19937 rng(20261204);
  for (int trial = 0; trial < 50; ++trial) {
    Directory dir;
    std::set<std::string> present;
    int next = 0;
    auto insert = [&] {
      std::string name = Name(next++);
      dir.Insert(name, NewInode(10));
      present.insert(name);
    };
    auto erase_random = [&] {  // Returns the name erased ("" if none).
      if (present.empty()) return std::string();
      auto it = present.begin();
      std::advance(it, rng() % present.size());
      std::string name = *it;
      dir.Erase(name);
      present.erase(it);
      return name;
    };
    const int initial = static_cast<int>(rng() % 100);
    for (int i = 0; i < initial; ++i) insert();

    const std::set<std::string> at_start = present;
    std::set<std::string> ever = present;  // Every name that existed during the listing.
    std::set<std::string> stayed = present;
    std::multiset<std::string> returned;
    uint64_t cookie = 0;
    const size_t page = 1 + rng() % 7;
    for (int pages = 0;; ++pages) {
      Listing l = After(dir, cookie, page);
      if (l.empty()) break;
      for (const auto& [name, c] : l) {
        ASSERT_GT(c, cookie) << "cookies must grow within a listing";
        cookie = c;
        returned.insert(name);
      }
      // Churn between the pages (for the first 100, so that the listing ends).
      for (int ops = pages < 100 ? static_cast<int>(rng() % 6) : 0; ops > 0; --ops) {
        if (rng() % 2 == 0) {
          insert();
          ever.insert(Name(next - 1));
        } else {
          stayed.erase(erase_random());
        }
      }
    }
    for (const std::string& name : returned) {
      EXPECT_EQ(returned.count(name), 1u) << "trial " << trial << ": " << name << " twice";
      EXPECT_EQ(ever.count(name), 1u) << "trial " << trial << ": " << name << " never existed";
    }
    for (const std::string& name : stayed) {
      EXPECT_EQ(returned.count(name), 1u) << "trial " << trial << ": " << name << " skipped";
    }
    // Names inserted during the listing get larger cookies than any returned: all come.
    for (const std::string& name : present) {
      if (at_start.count(name) == 0) {
        EXPECT_EQ(returned.count(name), 1u) << "trial " << trial << ": new " << name << " skipped";
      }
    }
  }
}

}  // namespace
}  // namespace zbudfs

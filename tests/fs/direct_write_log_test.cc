#include "fs/direct_write_log.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

namespace zbudfs {
namespace {

using Range = DirectWriteLog::Range;
constexpr uint64_t kNoneServed = UINT64_MAX;

bool Same(const std::vector<Range>& got, const std::vector<Range>& want) {
  if (got.size() != want.size()) return false;
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i].off != want[i].off || got[i].end != want[i].end) return false;
  }
  return true;
}

TEST(DirectWriteLogTest, NothingLoggedNothingStale) {
  DirectWriteLog log;
  EXPECT_TRUE(log.StaleParts(1, 0, 4096, 5).empty());
}

TEST(DirectWriteLogTest, WriteInProgressMakesOverlapStaleForAnyReader) {
  DirectWriteLog log;
  log.Begin(7, 1000, 1100, kNoneServed);
  EXPECT_TRUE(Same(log.StaleParts(7, 0, 4096, 1'000'000), {{1000, 1100}}));
  EXPECT_TRUE(Same(log.StaleParts(7, 1050, 8192, 1), {{1050, 1100}}));
  EXPECT_TRUE(log.StaleParts(7, 1100, 4096, 1).empty());  // No overlap.
  EXPECT_TRUE(log.StaleParts(8, 0, 4096, 1).empty());     // Another inode.
}

TEST(DirectWriteLogTest, DoneWriteIsStaleOnlyForWritebackReadBeforeItsCopy) {
  DirectWriteLog log;
  const uint64_t id = log.Begin(7, 1000, 1100, kNoneServed);
  log.End(7, id, 40);
  EXPECT_TRUE(Same(log.StaleParts(7, 0, 4096, 40), {{1000, 1100}}));  // Read at 40: before.
  EXPECT_TRUE(Same(log.StaleParts(7, 0, 4096, 12), {{1000, 1100}}));
  EXPECT_TRUE(log.StaleParts(7, 0, 4096, 41).empty());  // Read after the copy: its data.
  // Libfuse's loop (clone_fd) gives no count: taken as it is, never patched.
  EXPECT_TRUE(log.StaleParts(7, 0, 4096, 0).empty());
}

TEST(DirectWriteLogTest, EveryOverlappingWriteCounts) {
  DirectWriteLog log;  // A request read at 1 is served throughout: no record goes.
  log.End(3, log.Begin(3, 0, 100, 1), 10);
  log.End(3, log.Begin(3, 200, 300, 1), 20);
  log.Begin(3, 4000, 4200, 1);
  EXPECT_TRUE(Same(log.StaleParts(3, 50, 4100, 15), {{200, 300}, {4000, 4100}}));
}

TEST(DirectWriteLogTest, DoneRecordStaysWhileAnOlderRequestIsServed) {
  DirectWriteLog log;
  log.End(9, log.Begin(9, 0, 4096, kNoneServed), 100);
  log.Begin(9, 4096, 8192, kNoneServed);  // Done just now: kept however old.
  EXPECT_FALSE(log.StaleParts(9, 0, 4096, 100).empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(DirectWriteLog::kMinKeepMs + 50));
  log.Begin(9, 8192, 12288, /*oldest_served=*/100);  // A request read at 100 is served.
  EXPECT_FALSE(log.StaleParts(9, 0, 4096, 100).empty());
  log.Begin(9, 16384, 20480, /*oldest_served=*/101);  // It is done: none can come now.
  EXPECT_TRUE(log.StaleParts(9, 0, 4096, 100).empty());
  EXPECT_FALSE(log.StaleParts(9, 8192, 12288, 1000).empty());  // Not done: kept.
  EXPECT_EQ(log.size(), 3u);
}

TEST(DirectWriteLogTest, OldestDoneRecordGoesPastTheCap) {
  DirectWriteLog log;
  log.End(5, log.Begin(5, 0, 10, 0), 1);  // Oldest served 0 keeps every done record.
  for (size_t i = 1; i < DirectWriteLog::kMaxPerInode; ++i) {
    log.Begin(5, 100 * i, 100 * i + 10, 1);
  }
  EXPECT_FALSE(log.StaleParts(5, 0, 10, 1).empty());
  log.Begin(5, 1'000'000, 1'000'010, 1);
  EXPECT_TRUE(log.StaleParts(5, 0, 10, 1).empty());
  EXPECT_FALSE(log.StaleParts(5, 100, 110, 1).empty());  // Not done: kept past the cap.
}

}  // namespace
}  // namespace zbudfs

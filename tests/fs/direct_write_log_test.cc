#include "fs/direct_write_log.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace zbudfs {
namespace {

using Range = DirectWriteLog::Range;

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
  log.Begin(7, 1000, 1100);
  EXPECT_TRUE(Same(log.StaleParts(7, 0, 4096, 1'000'000), {{1000, 1100}}));
  EXPECT_TRUE(Same(log.StaleParts(7, 1050, 8192, 1), {{1050, 1100}}));
  EXPECT_TRUE(log.StaleParts(7, 1100, 4096, 1).empty());  // No overlap.
  EXPECT_TRUE(log.StaleParts(8, 0, 4096, 1).empty());     // Another inode.
}

TEST(DirectWriteLogTest, DoneWriteIsStaleOnlyForWritebackReadBeforeItsCopy) {
  DirectWriteLog log;
  const uint64_t id = log.Begin(7, 1000, 1100);
  log.End(7, id, 40);
  EXPECT_TRUE(Same(log.StaleParts(7, 0, 4096, 40), {{1000, 1100}}));  // Read at 40: before.
  EXPECT_TRUE(Same(log.StaleParts(7, 0, 4096, 12), {{1000, 1100}}));
  EXPECT_TRUE(log.StaleParts(7, 0, 4096, 41).empty());  // Read after the copy: its data.
  // Libfuse's loop (clone_fd) gives no count: assumed read before.
  EXPECT_TRUE(Same(log.StaleParts(7, 0, 4096, 0), {{1000, 1100}}));
}

TEST(DirectWriteLogTest, EveryOverlappingWriteCounts) {
  DirectWriteLog log;
  log.End(3, log.Begin(3, 0, 100), 10);
  log.End(3, log.Begin(3, 200, 300), 20);
  log.Begin(3, 4000, 4200);
  EXPECT_TRUE(Same(log.StaleParts(3, 50, 4100, 15), {{200, 300}, {4000, 4100}}));
}

TEST(DirectWriteLogTest, OldestDoneRecordGoesPastTheCap) {
  DirectWriteLog log;
  log.End(5, log.Begin(5, 0, 10), 1);  // The oldest: dropped by the cap below.
  for (size_t i = 1; i < DirectWriteLog::kMaxPerInode; ++i) log.Begin(5, 100 * i, 100 * i + 10);
  EXPECT_FALSE(log.StaleParts(5, 0, 10, 1).empty());
  log.Begin(5, 1'000'000, 1'000'010);
  EXPECT_TRUE(log.StaleParts(5, 0, 10, 1).empty());
  EXPECT_FALSE(log.StaleParts(5, 100, 110, 1).empty());  // Not done: kept past the cap.
}

TEST(DirectWriteLogTest, DoneRecordsExpire) {
  DirectWriteLog log;
  log.End(9, log.Begin(9, 0, 4096), 100);
  const uint64_t pending = log.Begin(9, 8192, 12288);
  std::this_thread::sleep_for(std::chrono::milliseconds(DirectWriteLog::kKeepMs + 100));
  EXPECT_TRUE(log.StaleParts(9, 0, 4096, 1).empty());          // Expired.
  EXPECT_FALSE(log.StaleParts(9, 8192, 12288, 1000).empty());  // Still in progress.
  log.End(9, pending, 200);
  EXPECT_FALSE(log.StaleParts(9, 8192, 12288, 150).empty());  // Done just now: kept.
}

}  // namespace
}  // namespace zbudfs

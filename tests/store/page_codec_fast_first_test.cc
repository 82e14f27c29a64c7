// Unit tests of PageCodec::CompressFastFirst: the fast level first, the fallback to the
// configured level, streaks within a write, the level after an incompressible page.
#include <gtest/gtest.h>
#include <zstd.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "store/page_codec.h"
#include "tests/store/page_codec_test_util.h"

namespace zbudfs {
namespace {

using namespace codec_test;  // NOLINT(build/namespaces): the shared test helpers.

// A page that is small enough at the fast level keeps exactly the fast level's frame.
TEST(PageCodecTest, FastFirstKeepsAGoodEnoughFastResult) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 16; ++i) {
    const Page page = FioLikePage(rng);
    const std::vector<uint8_t> fast = CompressedAt(page, -1);
    ASSERT_FALSE(fast.empty());
    PageCodec::Streak streak;
    EXPECT_EQ(FastFirst(page, 1, -1, fast.size(), &streak), fast);
    EXPECT_FALSE(streak.strong);
  }
}

// A fast result above good_enough sends the page to the configured level too; the smaller
// frame wins, and the streak sends the next page straight to the configured level.
TEST(PageCodecTest, FastFirstFallsBackToTheLevelAndStartsAStreak) {
  int differed = 0;
  for (size_t i = 0; i < 32; ++i) {
    const Page& page = TextPages().at(i);
    const std::vector<uint8_t> fast = CompressedAt(page, -1);
    const std::vector<uint8_t> strong = CompressedAt(page, 3);
    ASSERT_FALSE(fast.empty());
    ASSERT_FALSE(strong.empty());
    PageCodec::Streak streak;
    const std::vector<uint8_t> got = FastFirst(page, 3, -1, fast.size() - 1, &streak);
    EXPECT_EQ(got, strong.size() <= fast.size() ? strong : fast) << "page " << i;
    EXPECT_TRUE(streak.strong);
    differed += fast != strong;
    // In a streak the next page is compressed at the level alone: its frame is the level's
    // even when the fast one would have been good enough.
    const Page& next = TextPages().at(i + 1);
    EXPECT_EQ(FastFirst(next, 3, -1, kPage, &streak), CompressedAt(next, 3));
  }
  EXPECT_GT(differed, 0) << "levels -1 and 3 should differ on some text pages";
}

// A page that compresses, but not below zbud's limit, is kept raw even when the caller's
// good_enough would take it: such a frame is never stored (nor given a check value).
TEST(PageCodecTest, FastFirstNeverKeepsAFrameOverTheZbudLimit) {
  std::mt19937_64 rng(11);
  for (size_t random : {3975u, 3990u, 4000u}) {
    Page page = RandomPage(rng);
    std::fill(page.begin() + static_cast<std::ptrdiff_t>(random), page.end(), 0);
    uint8_t frame[2 * kPage];
    const size_t zstd_bytes = ZSTD_compress(frame, sizeof(frame), page.data(), kPage, 1);
    ASSERT_FALSE(ZSTD_isError(zstd_bytes));
    ASSERT_GT(zstd_bytes, PageCodec::kMaxCompressed) << random << " random bytes";
    ASSERT_LT(zstd_bytes, kPage) << "zstd compressed it, if not enough: " << random;
    PageCodec::Streak streak;
    EXPECT_TRUE(FastFirst(page, 1, -1, kPage, &streak).empty()) << random;
    EXPECT_EQ(PageCodec::Compress(page.data(), 1, frame), 0u) << random;
  }
}

// After an incompressible page the next is tried at kAfterRawLevel first: incompressible
// pages still come out raw, and a compressible one still gets a frame that fits and decodes.
TEST(PageCodecTest, FastFirstAfterAnIncompressiblePage) {
  std::mt19937_64 rng(12);
  PageCodec::Streak streak;
  EXPECT_TRUE(FastFirst(RandomPage(rng), 1, -1, 1968, &streak).empty());
  EXPECT_TRUE(streak.raw);
  EXPECT_TRUE(FastFirst(RandomPage(rng), 1, -1, 1968, &streak).empty());
  EXPECT_TRUE(streak.raw);
  // fio's page: 40 % random bytes, then zeros. The zeros are elided and the random bytes
  // kept as they are in the frame: it fits, and the content counts as incompressible.
  const std::vector<uint8_t> got = FastFirst(FioLikePage(rng), 1, -1, 1968, &streak);
  ASSERT_FALSE(got.empty());
  EXPECT_LE(got.size(), 1968u);
  EXPECT_TRUE(streak.raw);
  EXPECT_FALSE(streak.strong);
  // A page that compresses ends the run of incompressible ones.
  Page easy;
  for (size_t i = 0; i < kPage; ++i) easy[i] = static_cast<uint8_t>("zbud pairs pages "[i % 17]);
  const std::vector<uint8_t> got_easy = FastFirst(easy, 1, -1, 1968, &streak);
  ASSERT_FALSE(got_easy.empty());
  EXPECT_LE(got_easy.size(), 1968u);
  EXPECT_FALSE(streak.raw);
  EXPECT_FALSE(streak.strong);
  // Text after a raw page: the result decodes (FastFirst checks) and, where the usual fast
  // level would have paired the page in zbud, it still pairs.
  for (size_t i = 0; i < 8; ++i) {
    PageCodec::Streak after_raw{.raw = true};
    const Page& text = TextPages().at(i);
    const std::vector<uint8_t> got_text = FastFirst(text, 1, -1, 1968, &after_raw);
    ASSERT_FALSE(got_text.empty()) << "text page " << i;
    if (CompressedAt(text, -1).size() <= 1968) {
      EXPECT_LE(got_text.size(), 1968u) << "text page " << i;
    }
  }
}

// A strong streak ends on a page kept raw: the configured level did not help it, and the
// pages after it are tried at the fast levels again.
TEST(PageCodecTest, FastFirstStrongStreakEndsOnAnIncompressiblePage) {
  std::mt19937_64 rng(13);
  PageCodec::Streak streak{.strong = true};
  EXPECT_TRUE(FastFirst(RandomPage(rng), 1, -1, 1968, &streak).empty());
  EXPECT_FALSE(streak.strong);
  EXPECT_TRUE(streak.raw);
}

// A streak ends on a page well under good_enough at the configured level, and lasts while
// pages are not.
TEST(PageCodecTest, FastFirstStreakEndsOnAnEasyPage) {
  std::mt19937_64 rng(8);
  const Page easy = FioLikePage(rng);
  const std::vector<uint8_t> at_level = CompressedAt(easy, 1);
  ASSERT_FALSE(at_level.empty());
  PageCodec::Streak streak{.strong = true};
  FastFirst(easy, 1, -1, at_level.size() - 1, &streak);  // Not comfortably under: stays.
  EXPECT_TRUE(streak.strong);
  FastFirst(easy, 1, -1, at_level.size() * 2, &streak);
  EXPECT_FALSE(streak.strong);
}

// Incompressible pages stop at the fast attempt: kept raw, no streak started. Same for a
// fast level at or above the configured one: one pass at the configured level.
TEST(PageCodecTest, FastFirstRawAndSinglePass) {
  std::mt19937_64 rng(9);
  const Page random = RandomPage(rng);
  PageCodec::Streak streak;
  EXPECT_TRUE(FastFirst(random, 1, -1, 1968, &streak).empty());
  EXPECT_FALSE(streak.strong);
  const Page& text = TextPages().at(3);
  EXPECT_EQ(FastFirst(text, -1, 1, 1968, &streak), CompressedAt(text, -1));
  EXPECT_EQ(FastFirst(text, 1, 1, 1968, &streak), CompressedAt(text, 1));
  EXPECT_FALSE(streak.strong);
}

}  // namespace
}  // namespace zbudfs

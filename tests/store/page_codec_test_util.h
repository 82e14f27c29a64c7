// Helpers shared by the PageCodec unit tests (page_codec_test.cc,
// page_codec_fast_first_test.cc): real pages that exist on every host (text: this repository's
// C++ sources; binary: the test binary's own machine code, see tests/corpus.h), random and
// fio-like pages, and round trips through Compress and CompressFastFirst that check the result
// decodes to the page.
#ifndef ZBUDFS_TESTS_STORE_PAGE_CODEC_TEST_UTIL_H_
#define ZBUDFS_TESTS_STORE_PAGE_CODEC_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "store/page_codec.h"
#include "tests/corpus.h"
#include "tests/same_bytes.h"

namespace zbudfs::codec_test {

inline constexpr size_t kPage = kPageSize;
using Page = std::array<uint8_t, kPage>;
using test::SameBytes;

// Whole pages of bytes, at most max_bytes of them.
inline std::vector<Page> ToPages(const std::vector<uint8_t>& bytes, size_t max_bytes) {
  std::vector<Page> pages(std::min(bytes.size(), max_bytes) / kPage);
  for (size_t i = 0; i < pages.size(); ++i) {
    std::memcpy(pages[i].data(), bytes.data() + i * kPage, kPage);
  }
  return pages;
}

inline const std::vector<Page>& TextPages() {
  static const std::vector<Page> pages = ToPages(corpus::SourceText(64 << 10, 1 << 20), 1 << 20);
  return pages;
}

inline const std::vector<Page>& BinaryPages() {
  static const std::vector<Page> pages = ToPages(corpus::MachineCode(1 << 20), 1 << 20);
  return pages;
}

inline Page RandomPage(std::mt19937_64& rng) {
  Page p;
  for (size_t i = 0; i < kPage; i += 8) {
    const uint64_t w = rng();
    std::memcpy(p.data() + i, &w, 8);
  }
  return p;
}

// fio buffer_compress_percentage=60, buffer_compress_chunk=4096: 40% random, then zeros.
inline Page FioLikePage(std::mt19937_64& rng) {
  Page p = RandomPage(rng);
  std::memset(p.data() + kPage * 40 / 100, 0, kPage - kPage * 40 / 100);
  return p;
}

// Compresses and decompresses one page; returns the compressed size (0 = kept raw).
inline size_t RoundTrip(const Page& page, int level) {
  std::vector<uint8_t> out(kPage);
  const size_t n = PageCodec::Compress(page.data(), level, out.data());
  EXPECT_LE(n, PageCodec::kMaxCompressed);
  if (n == 0) return 0;
  Page back;
  back.fill(0xA5);
  const Status st = PageCodec::Decompress(out.data(), n, back.data());
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(SameBytes(back, page)) << "round trip changed the page at level " << level;
  return n;
}

// Compresses page at level through Compress; the bytes.
inline std::vector<uint8_t> CompressedAt(const Page& page, int level) {
  std::vector<uint8_t> out(kPage);
  out.resize(PageCodec::Compress(page.data(), level, out.data()));
  return out;
}

// CompressFastFirst's result: its bytes, and they decode to the page.
inline std::vector<uint8_t> FastFirst(const Page& page, int level, int fast_level,
                                      size_t good_enough, PageCodec::Streak* streak) {
  std::vector<uint8_t> out(kPage);
  out.resize(PageCodec::CompressFastFirst(page.data(), level, fast_level, good_enough, streak,
                                          out.data()));
  if (!out.empty()) {
    Page back{};
    EXPECT_TRUE(PageCodec::Decompress(out.data(), out.size(), back.data()).ok());
    EXPECT_EQ(back, page);
  }
  return out;
}

}  // namespace zbudfs::codec_test

#endif  // ZBUDFS_TESTS_STORE_PAGE_CODEC_TEST_UTIL_H_

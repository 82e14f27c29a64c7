// Unit tests of PageCodec: same-filled detection, zstd round trips of real pages (text: the
// repository's C++ sources, binary: the test binary's machine code), zero tails, the raw ("huge")
// path, corruption detection, levels and per-thread contexts. CompressFastFirst:
// page_codec_fast_first_test.cc.
#include "store/page_codec.h"

#include <gtest/gtest.h>
#define ZSTD_STATIC_LINKING_ONLY  // ZSTD_c_format: the codec's frames are magicless.
#include <zstd.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/store/page_codec_test_util.h"

namespace zbudfs {
namespace {

using namespace codec_test;  // NOLINT(build/namespaces): the shared test helpers.

TEST(PageCodecTest, CorpusAvailable) {
  // The other tests draw their pages from these; an empty corpus would make them vacuous.
  EXPECT_GE(TextPages().size(), 128u);
  EXPECT_GE(BinaryPages().size(), 128u);
}

TEST(PageCodecTest, TextPagesRoundTrip) {
  ASSERT_GE(TextPages().size(), 128u);
  size_t in = 0, out = 0;
  for (const Page& page : TextPages()) {
    const size_t n = RoundTrip(page, 1);
    ASSERT_FALSE(HasFailure());
    // C headers always compress well below the zbud limit.
    ASSERT_GT(n, 0u) << "a text page was kept raw";
    in += kPage;
    out += n;
  }
  RecordProperty("text_ratio_level_1",
                 std::to_string(static_cast<double>(in) / static_cast<double>(out)));
  EXPECT_GT(in, 2 * out) << "text should compress better than 2:1";
}

TEST(PageCodecTest, BinaryPagesRoundTrip) {
  ASSERT_GE(BinaryPages().size(), 128u);
  size_t compressed = 0, raw = 0, same = 0;
  for (const Page& page : BinaryPages()) {
    uint64_t word;
    if (PageCodec::IsSameFilled(page.data(), &word)) ++same;
    const size_t n = RoundTrip(page, 1);
    ASSERT_FALSE(HasFailure());
    if (n == 0) {
      ++raw;
    } else {
      ++compressed;
    }
  }
  RecordProperty("binary_pages_compressed", std::to_string(compressed));
  RecordProperty("binary_pages_raw", std::to_string(raw));
  RecordProperty("binary_pages_same_filled", std::to_string(same));
  EXPECT_GT(compressed, BinaryPages().size() / 2) << "most code pages compress";
}

// The share of printable ASCII and whitespace among the bytes of pages.
double PrintableShare(const std::vector<Page>& pages) {
  size_t printable = 0;
  for (const Page& page : pages) {
    printable += static_cast<size_t>(std::count_if(page.begin(), page.end(), [](uint8_t b) {
      return (b >= 0x20 && b < 0x7F) || b == '\n' || b == '\t';
    }));
  }
  return static_cast<double>(printable) / static_cast<double>(pages.size() * kPage);
}

TEST(PageCodecTest, CorpusKindsAreTextAndCode) {
  // The hermetic corpus must keep its two kinds apart, as /usr/include and /usr/lib did: the
  // tests that want "text" or "binary" pages would mean nothing if both were alike. (Their
  // compression ratios cannot tell: -O0 code compresses better than this text.)
  const double text = PrintableShare(TextPages()), code = PrintableShare(BinaryPages());
  RecordProperty("printable_share_text", std::to_string(text));
  RecordProperty("printable_share_code", std::to_string(code));
  EXPECT_GT(text, 0.99);
  EXPECT_LT(code, 0.8);
}

TEST(PageCodecTest, RandomPagesAreKeptRaw) {
  std::mt19937_64 rng(42);
  std::vector<uint8_t> out(kPage);
  for (int i = 0; i < 64; ++i) {
    const Page page = RandomPage(rng);
    uint64_t word;
    EXPECT_FALSE(PageCodec::IsSameFilled(page.data(), &word));
    for (int level : {-5, -1, 1, 3}) {
      EXPECT_EQ(PageCodec::Compress(page.data(), level, out.data()), 0u) << "level " << level;
    }
  }
}

TEST(PageCodecTest, SameFilledPages) {
  Page page{};
  uint64_t word = 123;
  ASSERT_TRUE(PageCodec::IsSameFilled(page.data(), &word));
  EXPECT_EQ(word, 0u);

  for (uint64_t w :
       {uint64_t{0x0123456789ABCDEF}, ~uint64_t{0}, uint64_t{0xABABABABABABABAB}, uint64_t{1}}) {
    SCOPED_TRACE(w);
    for (size_t i = 0; i < kPage; i += 8) std::memcpy(page.data() + i, &w, 8);
    word = 0;
    ASSERT_TRUE(PageCodec::IsSameFilled(page.data(), &word));
    EXPECT_EQ(word, w);

    // FillSame restores it exactly.
    Page filled;
    filled.fill(0x5A);
    PageCodec::FillSame(filled.data(), word);
    EXPECT_TRUE(SameBytes(filled, page));

    // One differing byte anywhere (last, first, middle, in each 32-byte lane) breaks it.
    for (size_t pos : {kPage - 1, size_t{0}, size_t{7}, size_t{8}, size_t{31}, size_t{32},
                       size_t{2049}, kPage - 8}) {
      Page bad = page;
      bad[pos] ^= 0x10;
      uint64_t unused = 0;
      EXPECT_FALSE(PageCodec::IsSameFilled(bad.data(), &unused)) << "byte " << pos;
    }
  }

  // A page repeating a 16-byte pattern is not same-filled.
  for (size_t i = 0; i < kPage; ++i) page[i] = static_cast<uint8_t>(i % 16);
  EXPECT_FALSE(PageCodec::IsSameFilled(page.data(), &word));

  // FillSame(0) zeroes.
  Page z;
  z.fill(0xFF);
  PageCodec::FillSame(z.data(), 0);
  EXPECT_TRUE(std::all_of(z.begin(), z.end(), [](uint8_t b) { return b == 0; }));
}

// The raw path: a page whose compressed form exceeds kMaxCompressed (3968) must give 0 even
// when zstd itself fits it in 4096; at or below the limit the size is returned. Pages of k
// random bytes followed by zeros sweep the compressed size across the limit; the expected
// size comes from zstd called with the frame parameters page_codec.h documents (level,
// magicless, no zstd checksum, content size, no dictionary id), plus the 4-byte check.
TEST(PageCodecTest, HugePagePathAtTheZbudLimit) {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ASSERT_NE(cctx, nullptr);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 1);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 0);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_dictIDFlag, 0);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_format, ZSTD_f_zstd1_magicless);
  std::vector<uint8_t> ref(ZSTD_compressBound(kPage));
  std::vector<uint8_t> out(kPage);
  std::mt19937_64 rng(7);
  const Page noise = RandomPage(rng);
  int below = 0, above_fits_in_page = 0;
  for (size_t k = 3800; k <= kPage; k += 2) {
    Page page{};
    std::memcpy(page.data(), noise.data(), k);
    // The codec compresses the page without its trailing zeros.
    const size_t len = PageCodec::ContentLength(page.data());
    ASSERT_LE(len, k);
    ASSERT_GT(len, k - 16) << "k=" << k;
    const size_t frame = ZSTD_compress2(cctx, ref.data(), ref.size(), page.data(), len);
    ASSERT_FALSE(ZSTD_isError(frame));
    const size_t s = frame + PageCodec::kCheckSize;
    const size_t n = PageCodec::Compress(page.data(), 1, out.data());
    if (s <= PageCodec::kMaxCompressed) {
      ++below;
      ASSERT_EQ(n, s) << "k=" << k;
      ASSERT_TRUE(SameBytes(out.data(), ref.data(), frame)) << "k=" << k << ": the frame";
      Page back;
      ASSERT_TRUE(PageCodec::Decompress(out.data(), n, back.data()).ok());
      ASSERT_TRUE(SameBytes(back, page));
    } else {
      if (s < kPage) ++above_fits_in_page;
      ASSERT_EQ(n, 0u) << "k=" << k << ": zstd gave " << s << " bytes, above the zbud limit";
    }
  }
  ZSTD_freeCCtx(cctx);
  // The sweep really crossed the limit, including sizes zstd fits in a page.
  EXPECT_GT(below, 0);
  EXPECT_GT(above_fits_in_page, 0);
}

// Every single-byte corruption (three masks at every position) of compressed pages of each kind
// gives EIO, or at worst OK with the exact original page: never OK with wrong data.
TEST(PageCodecTest, ContentLengthIsTheLastNonZeroByte) {
  Page page{};
  EXPECT_EQ(PageCodec::ContentLength(page.data()), 0u);
  for (size_t last = 0; last < kPage; ++last) {
    page.fill(0);
    page[last] = 0x80;
    page[last / 2] = 1;  // Bytes before the last one do not matter.
    ASSERT_EQ(PageCodec::ContentLength(page.data()), last + 1) << "last non-zero byte " << last;
  }
  page.fill(0xFF);
  EXPECT_EQ(PageCodec::ContentLength(page.data()), kPage);
}

// A page's trailing zeros are left out of its frame (its content size is shorter) and come
// back on decompression, whatever the destination held: at every length of the non-zero
// part, for random and for text content, at the default and a strong level.
TEST(PageCodecTest, TrailingZerosAreElidedAndRestored) {
  std::mt19937_64 rng(21);
  const Page noise = RandomPage(rng);
  const Page& text = TextPages().at(7);
  size_t kept_raw = 0;
  for (const Page* src : {&noise, &text}) {
    for (size_t len = 1; len <= kPage; ++len) {
      Page page{};
      std::memcpy(page.data(), src->data(), len);
      page[len - 1] = 0x5A;
      for (int level : {1, 9}) {
        std::vector<uint8_t> out(kPage);
        const size_t n = PageCodec::Compress(page.data(), level, out.data());
        if (n == 0) {
          ++kept_raw;
          ASSERT_GT(len, PageCodec::kMaxCompressed - 64) << "len " << len << " kept raw";
          continue;
        }
        ZSTD_frameHeader header;
        ASSERT_EQ(ZSTD_getFrameHeader_advanced(&header, out.data(), n - PageCodec::kCheckSize,
                                               ZSTD_f_zstd1_magicless),
                  0u);
        ASSERT_EQ(header.frameContentSize, len) << "the frame holds the non-zero part only";
        Page back;
        back.fill(0xA5);
        const Status st = PageCodec::Decompress(out.data(), n, back.data());
        ASSERT_TRUE(st.ok()) << "len " << len << ": " << st.ToString();
        ASSERT_TRUE(SameBytes(back, page)) << "len " << len << " level " << level;
      }
    }
  }
  EXPECT_GT(kept_raw, 0u);  // Random content near a whole page still takes the raw path.
}

TEST(PageCodecTest, CorruptedPayloadIsDetected) {
  std::mt19937_64 rng(99);
  std::vector<Page> pages = {TextPages().at(3), TextPages().at(40), BinaryPages().at(20),
                             FioLikePage(rng)};
  int detected = 0, harmless = 0;
  for (size_t pi = 0; pi < pages.size(); ++pi) {
    const Page& page = pages[pi];
    std::vector<uint8_t> comp(kPage);
    const size_t n = PageCodec::Compress(page.data(), 1, comp.data());
    ASSERT_GT(n, 0u) << "page " << pi;
    comp.resize(n);
    for (size_t pos = 0; pos < n; ++pos) {
      for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xFF}}) {
        std::vector<uint8_t> bad = comp;
        bad[pos] ^= mask;
        Page back;
        back.fill(0xCC);
        const Status st = PageCodec::Decompress(bad.data(), bad.size(), back.data());
        if (st.ok()) {
          ASSERT_TRUE(SameBytes(back, page))
              << "page " << pi << ": flip 0x" << std::hex << int{mask} << " at byte " << std::dec
              << pos << " of " << n << " decoded OK to wrong data";
          ++harmless;
        } else {
          ASSERT_EQ(st.code(), EIO) << st.ToString();
          ++detected;
        }
      }
    }
  }
  RecordProperty("corruptions_detected", std::to_string(detected));
  RecordProperty("corruptions_harmless", std::to_string(harmless));
  EXPECT_GT(detected, 0);
}

TEST(PageCodecTest, TruncatedOrExtendedPayloadIsEio) {
  std::vector<uint8_t> comp(kPage + 16);
  const Page& page = TextPages().at(5);
  const size_t n = PageCodec::Compress(page.data(), 1, comp.data());
  ASSERT_GT(n, 0u);
  Page back;
  for (size_t len = 0; len < n; ++len) {
    const Status st = PageCodec::Decompress(comp.data(), len, back.data());
    ASSERT_EQ(st.code(), EIO) << "length " << len << " of " << n << ": " << st.ToString();
  }
  // Trailing garbage after the frame is not a page either.
  comp[n] = 0x42;
  EXPECT_EQ(PageCodec::Decompress(comp.data(), n + 1, back.data()).code(), EIO);
  // And the untouched length still decodes.
  ASSERT_TRUE(PageCodec::Decompress(comp.data(), n, back.data()).ok());
  EXPECT_TRUE(SameBytes(back, page));
}

// Appends the codec's check value (page_codec.h) to a frame, so that what is tested is the
// frame itself, not the check.
std::vector<uint8_t> WithCheck(std::vector<uint8_t> frame) {
  const auto v = static_cast<uint32_t>(XXH3_64bits(frame.data(), frame.size()));
  for (size_t i = 0; i < PageCodec::kCheckSize; ++i) frame.push_back(uint8_t(v >> (8 * i)));
  return frame;
}

TEST(PageCodecTest, NonPageFramesAreEio) {
  Page back;
  // The codec's verdict on frame bytes n long in comp, given a valid check value.
  std::vector<uint8_t> comp(ZSTD_compressBound(kPage));
  auto decode_checked = [&](size_t n) {
    const std::vector<uint8_t> payload = WithCheck({comp.begin(), comp.begin() + n});
    return PageCodec::Decompress(payload.data(), payload.size(), back.data()).code();
  };
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ASSERT_NE(cctx, nullptr);
  // A valid magicless frame of more than a page, or of nothing, is not a page.
  const std::vector<uint8_t> big(kPage + 1, 'x');
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_format, ZSTD_f_zstd1_magicless);
  size_t n = ZSTD_compress2(cctx, comp.data(), comp.size(), big.data(), big.size());
  ASSERT_FALSE(ZSTD_isError(n));
  EXPECT_EQ(decode_checked(n), EIO) << "a page and a byte";
  n = ZSTD_compress2(cctx, comp.data(), comp.size(), big.data(), 0);
  ASSERT_FALSE(ZSTD_isError(n));
  EXPECT_EQ(decode_checked(n), EIO) << "empty frame";
  // A page-sized frame without a content size in its header is not one of ours either.
  const Page& text = TextPages().at(0);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
  n = ZSTD_compress2(cctx, comp.data(), comp.size(), text.data(), kPage);
  ASSERT_FALSE(ZSTD_isError(n));
  EXPECT_EQ(decode_checked(n), EIO) << "no content size";
  // A standard frame (with the magic number) of a page: EIO.
  ZSTD_CCtx_reset(cctx, ZSTD_reset_parameters);
  n = ZSTD_compress2(cctx, comp.data(), comp.size(), text.data(), kPage);
  ASSERT_FALSE(ZSTD_isError(n));
  EXPECT_EQ(decode_checked(n), EIO) << "magic number";
  ZSTD_freeCCtx(cctx);
  // Plain bytes are not a frame, with or without a valid check.
  EXPECT_EQ(PageCodec::Decompress(text.data(), 1000, back.data()).code(), EIO);
  std::copy(text.begin(), text.begin() + 1000, comp.begin());
  EXPECT_EQ(decode_checked(1000), EIO) << "plain bytes";
}

TEST(PageCodecTest, LevelsRoundTrip) {
  EXPECT_LT(PageCodec::MinLevel(), 0);
  EXPECT_GE(PageCodec::MaxLevel(), 19);
  std::mt19937_64 rng(3);
  std::vector<Page> pages;
  for (size_t i = 0; i < 64; ++i) pages.push_back(TextPages().at(i));
  for (size_t i = 0; i < 64; ++i) pages.push_back(BinaryPages().at(i * 2));
  for (int i = 0; i < 16; ++i) pages.push_back(FioLikePage(rng));
  size_t text_total_fast = 0, text_total_slow = 0;
  for (int level : {-5, -1, 1, 3, PageCodec::MinLevel(), PageCodec::MaxLevel()}) {
    SCOPED_TRACE(level);
    for (size_t i = 0; i < pages.size(); ++i) {
      const size_t n = RoundTrip(pages[i], level);
      ASSERT_FALSE(HasFailure()) << "page " << i;
      if (i < 64 && level == -5) text_total_fast += n;
      if (i < 64 && level == 3) text_total_slow += n;
    }
  }
  // The negative levels trade ratio for speed.
  EXPECT_GT(text_total_fast, text_total_slow);
}

// The thread's context is reconfigured when the level changes: output at a level does not
// depend on the levels used before.
TEST(PageCodecTest, LevelSwitchIsDeterministic) {
  const Page& page = TextPages().at(11);
  std::vector<uint8_t> a(kPage), b(kPage), c(kPage);
  const size_t na = PageCodec::Compress(page.data(), 3, a.data());
  const size_t nb = PageCodec::Compress(page.data(), -5, b.data());
  const size_t nc = PageCodec::Compress(page.data(), 3, c.data());
  ASSERT_GT(na, 0u);
  ASSERT_GT(nb, 0u);
  EXPECT_NE(na, nb) << "levels 3 and -5 should differ on a text page";
  ASSERT_EQ(na, nc);
  EXPECT_TRUE(SameBytes(a.data(), c.data(), na));
}

// An all-zero page (the store never compresses one: it is same-filled) still makes a frame
// that decodes (a frame of nothing would not), by both entry points.
TEST(PageCodecTest, AllZeroPageStillRoundTrips) {
  const Page zeros{};
  EXPECT_GT(RoundTrip(zeros, 1), 0u);
  PageCodec::Streak streak;
  EXPECT_FALSE(FastFirst(zeros, 1, -1, 1968, &streak).empty());  // FastFirst decodes it.
}

// Per-thread contexts: threads compressing at different levels at once get the same bytes as
// a single thread does.
TEST(PageCodecTest, ConcurrentCompressAndDecompress) {
  constexpr int kThreads = 4;
  const int levels[kThreads] = {-5, -1, 1, 3};
  std::vector<Page> pages;
  for (size_t i = 0; i < 32; ++i) pages.push_back(TextPages().at(i * 3));
  for (size_t i = 0; i < 32; ++i) pages.push_back(BinaryPages().at(i * 3));
  // Reference output, single-threaded.
  std::vector<std::vector<std::vector<uint8_t>>> ref(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    for (const Page& p : pages) {
      std::vector<uint8_t> out(kPage);
      out.resize(PageCodec::Compress(p.data(), levels[t], out.data()));
      ref[t].push_back(out);
    }
  }
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<uint8_t> out(kPage);
      Page back;
      for (int round = 0; round < 4; ++round) {
        for (size_t i = 0; i < pages.size(); ++i) {
          // Alternate levels so that the thread's context is reconfigured under contention.
          const int level = (round % 2 == 0) ? levels[t] : levels[(t + 1) % kThreads];
          const auto& want = ref[(round % 2 == 0) ? t : (t + 1) % kThreads][i];
          const size_t n = PageCodec::Compress(pages[i].data(), level, out.data());
          if (n != want.size() || (n != 0 && std::memcmp(out.data(), want.data(), n) != 0)) {
            ++mismatches[t];
          }
          if (n == 0) continue;
          if (!PageCodec::Decompress(out.data(), n, back.data()).ok() || back != pages[i]) {
            ++mismatches[t];
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace zbudfs

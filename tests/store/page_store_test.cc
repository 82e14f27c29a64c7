// Unit tests of PageStore: byte-level reads and writes over 4 KiB pages, holes, truncate, punch,
// zero range, allocate, remove, capacity and memory limits, statistics, allocation failure,
// corruption, a randomized comparison against an in-memory model, and concurrent readers and
// writers (the *Concurrent* tests are the ones run under ThreadSanitizer).
#include "store/page_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "store/page_arena.h"
#include "store/page_codec.h"
#include "store/zbud_pool.h"

namespace zbudfs {
namespace {

constexpr uint64_t kPage = PageStore::kPageSize;
using Bytes = std::vector<uint8_t>;

// page_store.cc puts a 16-byte owner tag (file, page) in front of every zbud allocation, so a
// page is kept raw when it compresses above kMaxAllocSize - 16 = 3952 bytes (its static_assert).
constexpr size_t kOwnerTag = 16;
constexpr size_t kMaxZbudPayload = ZbudPool::kMaxAllocSize - kOwnerTag;
constexpr size_t kPairedPayload =  // Half a zbud page, less the owner tag.
    (ZbudPool::kNumChunks / 2) * ZbudPool::kChunkSize - kOwnerTag;

// ---- Data ---------------------------------------------------------------------------------------

// Real text: the start of /usr/include's headers in path order, 2 MiB.
const Bytes& Text() {
  static const Bytes text = [] {
    namespace fs = std::filesystem;
    std::vector<fs::path> paths;
    std::error_code ec;
    for (fs::recursive_directory_iterator
             it("/usr/include", fs::directory_options::skip_permission_denied, ec),
         end;
         !ec && it != end; it.increment(ec)) {
      std::error_code ec2;
      if (!it->is_symlink(ec2) && it->is_regular_file(ec2) && it->path().extension() == ".h") {
        paths.push_back(it->path());
      }
    }
    std::sort(paths.begin(), paths.end());
    Bytes out;
    for (const fs::path& p : paths) {
      if (out.size() >= (2u << 20)) break;
      std::ifstream in(p, std::ios::binary);
      out.insert(out.end(), std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    out.resize(std::min<size_t>(out.size(), 2u << 20));
    if (out.size() < (64u << 10)) {
      // No headers installed: fall back to generated prose so the tests still have text.
      std::cerr << "warning: /usr/include has little text; using generated text\n";
      static const char* const kWords[] = {"the ",        "page ",  "store ", "keeps ",
                                           "compressed ", "data ",  "in ",    "memory ",
                                           "and ",        "reads ", "it\n"};
      std::mt19937_64 rng(1);
      while (out.size() < (2u << 20)) {
        const char* w = kWords[rng() % std::size(kWords)];
        out.insert(out.end(), w, w + std::strlen(w));
      }
    }
    return out;
  }();
  return text;
}

// n bytes of real text starting at byte `from` of the corpus (wrapping).
Bytes TextBytes(size_t n, size_t from = 0) {
  const Bytes& t = Text();
  Bytes out(n);
  for (size_t done = 0; done < n;) {
    const size_t at = (from + done) % t.size();
    const size_t k = std::min(n - done, t.size() - at);
    std::memcpy(out.data() + done, t.data() + at, k);
    done += k;
  }
  return out;
}

Bytes RandomBytes(size_t n, std::mt19937_64& rng) {
  Bytes out(n);
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t w = rng();
    std::memcpy(out.data() + i, &w, std::min<size_t>(8, n - i));
  }
  return out;
}

Bytes WordBytes(size_t n, uint64_t word) {
  Bytes out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(word >> (8 * (i % 8)));
  return out;
}

bool AllZero(const uint8_t* p, size_t n) {
  return std::all_of(p, p + n, [](uint8_t b) { return b == 0; });
}

// Reads len bytes, failing the test on an error.
Bytes ReadBytes(PageStore& store, PageStore::FileId file, uint64_t off, size_t len) {
  Bytes out(len, 0xEE);
  const Status st = store.Read(file, off, out.data(), len);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

void WriteOk(PageStore& store, PageStore::FileId file, uint64_t off, const Bytes& data) {
  const Status st = store.Write(file, off, data.data(), data.size());
  ASSERT_TRUE(st.ok()) << st.ToString() << " writing " << data.size() << " bytes at " << off;
}

// The formula of the contract that must hold at every quiet moment.
void ExpectMemFormula(const StoreStats& s) {
  EXPECT_EQ(s.mem_used_total, (s.pool_pages + s.huge_pages) * kPage);
  EXPECT_LE(s.buddied_pages, s.pool_pages);
}

// ---- A page arena for tests: counts, tracks and can refuse pages --------------------------------

// AllocPage fails (nullptr) once `allowed` pages have been handed out in total; tracks the
// pages currently handed out.
class TestArena : public PageArena {
 public:
  explicit TestArena(uint64_t allowed = UINT64_MAX) : allowed_(allowed) {}

  void* AllocPage() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (handed_out_ >= allowed_) {
      ++refused_;
      return nullptr;
    }
    void* p = PageArena::AllocPage();
    if (p != nullptr) {
      ++handed_out_;
      live_.insert(p);
    }
    return p;
  }

  void FreePage(void* page) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      EXPECT_EQ(live_.erase(page), 1u) << "a page freed twice or never handed out";
    }
    PageArena::FreePage(page);
  }

  void Allow(uint64_t more) {
    std::lock_guard<std::mutex> lock(mu_);
    allowed_ = handed_out_ + more;
  }
  uint64_t refused() const {
    std::lock_guard<std::mutex> lock(mu_);
    return refused_;
  }
  std::set<void*> live() const {
    std::lock_guard<std::mutex> lock(mu_);
    return live_;
  }

 private:
  mutable std::mutex mu_;
  uint64_t allowed_;
  uint64_t handed_out_ = 0;
  uint64_t refused_ = 0;
  std::set<void*> live_;
};

PageStoreOptions WithArena(PageArena* arena) {
  PageStoreOptions o;
  o.arena = arena;
  return o;
}

// ---- Basic reads and writes ---------------------------------------------------------------------

TEST(PageStoreTest, WriteReadRoundTripAcrossPageBoundaries) {
  PageStore store(PageStoreOptions{});
  std::mt19937_64 rng(1);
  struct Case {
    uint64_t off;
    size_t len;
  };
  // Offsets and lengths around page boundaries; each case its own file.
  const Case cases[] = {{0, 1},
                        {0, 4096},
                        {0, 4097},
                        {1, 4095},
                        {1, 4096},
                        {4095, 2},
                        {4095, 8194},
                        {12345, 70000},
                        {3 * kPage, 3 * kPage},
                        {7, (1 << 20) + 3},
                        {kPage * 1000 - 1, 1}};
  PageStore::FileId id = 1;
  for (const Case& c : cases) {
    SCOPED_TRACE("off " + std::to_string(c.off) + " len " + std::to_string(c.len));
    // Mixed contents: text, then random, then zeros.
    Bytes data = TextBytes(c.len, c.off);
    const Bytes noise = RandomBytes(c.len / 3, rng);
    std::copy(noise.begin(), noise.end(), data.begin() + static_cast<ptrdiff_t>(c.len / 3));
    std::fill(data.end() - static_cast<ptrdiff_t>(c.len / 6), data.end(), 0);
    ASSERT_NO_FATAL_FAILURE(WriteOk(store, id, c.off, data));
    EXPECT_EQ(ReadBytes(store, id, c.off, c.len), data);
    // A read spanning more than was written shows zeros around it.
    const uint64_t before = std::min<uint64_t>(c.off, 5000);
    const Bytes wide = ReadBytes(store, id, c.off - before, before + c.len + 5000);
    EXPECT_TRUE(AllZero(wide.data(), before));
    EXPECT_TRUE(
        std::equal(data.begin(), data.end(), wide.begin() + static_cast<ptrdiff_t>(before)));
    EXPECT_TRUE(AllZero(wide.data() + before + c.len, 5000));
    // Reads at random offsets and lengths inside the data.
    for (int i = 0; i < 20; ++i) {
      const uint64_t o = rng() % c.len;
      const size_t n = 1 + rng() % (c.len - o);
      ASSERT_EQ(ReadBytes(store, id, c.off + o, n),
                Bytes(data.begin() + static_cast<ptrdiff_t>(o),
                      data.begin() + static_cast<ptrdiff_t>(o + n)));
    }
    const uint64_t pages = (c.off + c.len - 1) / kPage - c.off / kPage + 1;
    EXPECT_EQ(store.Usage(id).pages, pages);
    ++id;
  }
  // Nothing written with a zero length.
  EXPECT_TRUE(store.Write(id, 5, nullptr, 0).ok());
  EXPECT_EQ(store.Usage(id).pages, 0u);
}

TEST(PageStoreTest, PartialPageReadModifyWrite) {
  PageStore store(PageStoreOptions{});
  std::mt19937_64 rng(2);
  // Page 0 text, page 1 random (raw), page 2 same-filled, page 3 zeros.
  Bytes model = TextBytes(kPage);
  Bytes r = RandomBytes(kPage, rng);
  model.insert(model.end(), r.begin(), r.end());
  Bytes w = WordBytes(kPage, 0x1122334455667788);
  model.insert(model.end(), w.begin(), w.end());
  model.resize(4 * kPage, 0);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, model));

  // Small patches inside each page, at its edges, and across each boundary.
  const std::pair<uint64_t, size_t> patches[] = {
      {100, 100},         {kPage - 1, 1},         {kPage - 10, 20},
      {kPage + 1, 3},     {2 * kPage - 1, 2},     {2 * kPage + 5, 7},
      {3 * kPage - 3, 6}, {3 * kPage + 4000, 96}, {0, 1}};
  for (const auto& [off, len] : patches) {
    const Bytes patch = RandomBytes(len, rng);
    ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, off, patch));
    std::copy(patch.begin(), patch.end(), model.begin() + static_cast<ptrdiff_t>(off));
    ASSERT_EQ(ReadBytes(store, 1, 0, model.size()), model) << "after patching " << off;
  }
  EXPECT_EQ(store.Usage(1).pages, 4u);
  EXPECT_EQ(store.Stats().same_pages, 0u) << "every page now has random bytes";
}

TEST(PageStoreTest, HolesReadAsZeros) {
  PageStore store(PageStoreOptions{});
  const Bytes a = TextBytes(kPage, 0), b = TextBytes(100, 9000);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, a));
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 10 * kPage + 50, b));
  EXPECT_EQ(store.Usage(1).pages, 2u);
  const Bytes all = ReadBytes(store, 1, 0, 11 * kPage);
  EXPECT_TRUE(std::equal(a.begin(), a.end(), all.begin()));
  EXPECT_TRUE(AllZero(all.data() + kPage, 9 * kPage + 50));
  EXPECT_TRUE(std::equal(b.begin(), b.end(), all.begin() + 10 * kPage + 50));
  EXPECT_TRUE(AllZero(all.data() + 10 * kPage + 150, kPage - 150));
  // A read inside a hole, unaligned; and far beyond anything written.
  EXPECT_TRUE(AllZero(ReadBytes(store, 1, 3 * kPage + 17, 5000).data(), 5000));
  EXPECT_TRUE(AllZero(ReadBytes(store, 1, uint64_t{1} << 40, 9000).data(), 9000));
  EXPECT_EQ(store.Stats().orig_data_size, 2 * kPage) << "holes hold nothing";
}

TEST(PageStoreTest, UnknownFileReadsZerosAndHasNoUsage) {
  PageStore store(PageStoreOptions{});
  EXPECT_TRUE(AllZero(ReadBytes(store, 77, 0, 10000).data(), 10000));
  EXPECT_TRUE(AllZero(ReadBytes(store, 77, 123456789, 3).data(), 3));
  EXPECT_EQ(store.Usage(77).pages, 0u);
  EXPECT_EQ(store.Usage(77).stored_bytes, 0u);
  EXPECT_EQ(store.SeekData(77, 0, true), UINT64_MAX);
  EXPECT_EQ(store.SeekData(77, 5000, false), 5000u);
  // Operations that do not create data leave unknown files alone.
  EXPECT_TRUE(store.Truncate(77, 100).ok());
  EXPECT_TRUE(store.PunchHole(77, 0, 100000).ok());
  store.Remove(77);
  EXPECT_EQ(store.Usage(77).pages, 0u);
  EXPECT_EQ(store.Stats().orig_data_size, 0u);
}

// ---- Truncate, punch, zero range, allocate, remove ----------------------------------------------

TEST(PageStoreTest, TruncateFreesPagesAndZeroesTheTail) {
  PageStore store(PageStoreOptions{});
  const Bytes data = TextBytes(10 * kPage, 777);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, data));
  ASSERT_EQ(store.Usage(1).pages, 10u);

  const uint64_t size = 5 * kPage + 100;
  ASSERT_TRUE(store.Truncate(1, size).ok());
  EXPECT_EQ(store.Usage(1).pages, 6u);
  EXPECT_EQ(store.Stats().orig_data_size, 6 * kPage);
  Bytes got = ReadBytes(store, 1, 0, 10 * kPage);
  EXPECT_TRUE(std::equal(data.begin(), data.begin() + size, got.begin()));
  EXPECT_TRUE(AllZero(got.data() + size, 10 * kPage - size)) << "tail of the last page zeroed";
  EXPECT_EQ(store.SeekData(1, 6 * kPage, true), UINT64_MAX);

  // Extending by a write further on: everything between reads as zeros.
  const uint64_t far = 20 * kPage + 7;
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, far, Bytes{0x42}));
  got = ReadBytes(store, 1, 0, far + 1);
  EXPECT_TRUE(std::equal(data.begin(), data.begin() + size, got.begin()));
  EXPECT_TRUE(AllZero(got.data() + size, far - size));
  EXPECT_EQ(got[far], 0x42);
  EXPECT_EQ(store.Usage(1).pages, 7u);

  // Growing is a no-op for the store; page-aligned shrinking keeps whole pages.
  ASSERT_TRUE(store.Truncate(1, 1 << 30).ok());
  EXPECT_EQ(store.Usage(1).pages, 7u);
  ASSERT_TRUE(store.Truncate(1, 3 * kPage).ok());
  EXPECT_EQ(store.Usage(1).pages, 3u);
  got = ReadBytes(store, 1, 0, 4 * kPage);
  EXPECT_TRUE(std::equal(data.begin(), data.begin() + 3 * kPage, got.begin()));
  EXPECT_TRUE(AllZero(got.data() + 3 * kPage, kPage));

  ASSERT_TRUE(store.Truncate(1, 0).ok());
  EXPECT_EQ(store.Usage(1).pages, 0u);
  const StoreStats s = store.Stats();
  EXPECT_EQ(s.orig_data_size, 0u);
  EXPECT_EQ(s.pool_pages, 0u);
  EXPECT_EQ(s.mem_used_total, 0u);
}

TEST(PageStoreTest, TruncatedRawTailPageIsRecompressed) {
  PageStore store(PageStoreOptions{});
  std::mt19937_64 rng(5);
  const Bytes data = RandomBytes(3 * kPage, rng);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, data));
  ASSERT_EQ(store.Stats().huge_pages, 3u);
  ASSERT_TRUE(store.Truncate(1, 2 * kPage + 100).ok());
  const StoreStats s = store.Stats();
  EXPECT_EQ(s.huge_pages, 2u) << "100 random bytes and zeros compress";
  EXPECT_EQ(s.pool_pages, 1u);
  ExpectMemFormula(s);
  const Bytes got = ReadBytes(store, 1, 0, 3 * kPage);
  EXPECT_TRUE(std::equal(data.begin(), data.begin() + 2 * kPage + 100, got.begin()));
  EXPECT_TRUE(AllZero(got.data() + 2 * kPage + 100, kPage - 100));
}

TEST(PageStoreTest, PunchHoleMakesWholePagesHoles) {
  PageStore store(PageStoreOptions{});
  Bytes model = TextBytes(8 * kPage, 4242);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, model));
  const uint64_t mem_before = store.Usage(1).stored_bytes;

  // [kPage + 10, 4 * kPage + 10): page 1 from byte 10 on, pages 2 and 3, page 4 up to byte 10.
  ASSERT_TRUE(store.PunchHole(1, kPage + 10, 3 * kPage).ok());
  std::fill(model.begin() + kPage + 10, model.begin() + 4 * kPage + 10, 0);
  EXPECT_EQ(store.Usage(1).pages, 6u) << "pages 2 and 3 become holes; edges stay";
  EXPECT_LT(store.Usage(1).stored_bytes, mem_before);
  EXPECT_EQ(store.Stats().orig_data_size, 6 * kPage);
  EXPECT_EQ(ReadBytes(store, 1, 0, model.size()), model);
  EXPECT_EQ(store.SeekData(1, kPage, false), 2 * kPage);
  EXPECT_EQ(store.SeekData(1, 2 * kPage, true), 4 * kPage);

  // Inside one page: the page stays, the bytes read as zeros.
  ASSERT_TRUE(store.PunchHole(1, 6 * kPage + 100, 100).ok());
  std::fill(model.begin() + 6 * kPage + 100, model.begin() + 6 * kPage + 200, 0);
  EXPECT_EQ(store.Usage(1).pages, 6u);
  EXPECT_EQ(ReadBytes(store, 1, 0, model.size()), model);

  // Over holes and beyond the data: no page is created.
  ASSERT_TRUE(store.PunchHole(1, 2 * kPage + 1, kPage).ok());
  ASSERT_TRUE(store.PunchHole(1, 100 * kPage + 1, 10 * kPage).ok());
  EXPECT_EQ(store.Usage(1).pages, 6u);
  EXPECT_EQ(ReadBytes(store, 1, 0, model.size()), model);

  // Zero length does nothing; the whole file leaves nothing behind.
  ASSERT_TRUE(store.PunchHole(1, 0, 0).ok());
  EXPECT_EQ(store.Usage(1).pages, 6u);
  ASSERT_TRUE(store.PunchHole(1, 0, 8 * kPage).ok());
  EXPECT_EQ(store.Usage(1).pages, 0u);
  const StoreStats s = store.Stats();
  EXPECT_EQ(s.orig_data_size, 0u);
  EXPECT_EQ(s.pool_pages, 0u);
  EXPECT_EQ(s.compr_data_size, 0u);
}

TEST(PageStoreTest, ZeroRangeKeepsPagesAsZeroPages) {
  PageStore store(PageStoreOptions{});
  Bytes model = TextBytes(8 * kPage, 99);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, model));
  const uint64_t compr_before = store.Stats().compr_data_size;

  ASSERT_TRUE(store.ZeroRange(1, kPage, 3 * kPage).ok());
  std::fill(model.begin() + kPage, model.begin() + 4 * kPage, 0);
  EXPECT_EQ(ReadBytes(store, 1, 0, model.size()), model);
  EXPECT_EQ(store.Usage(1).pages, 8u) << "zeroed pages stay allocated";
  StoreStats s = store.Stats();
  EXPECT_EQ(s.same_pages, 3u);
  EXPECT_EQ(s.orig_data_size, 8 * kPage);
  EXPECT_LT(s.compr_data_size, compr_before);
  EXPECT_EQ(store.SeekData(1, kPage, false), 8 * kPage) << "zero pages are data, not holes";

  // A partial range inside a page.
  ASSERT_TRUE(store.ZeroRange(1, 5 * kPage + 100, 200).ok());
  std::fill(model.begin() + 5 * kPage + 100, model.begin() + 5 * kPage + 300, 0);
  EXPECT_EQ(ReadBytes(store, 1, 0, model.size()), model);
  EXPECT_EQ(store.Usage(1).pages, 8u);

  // Over holes, unaligned: every page the range touches becomes a zero page.
  ASSERT_TRUE(store.ZeroRange(1, 20 * kPage + 5, kPage).ok());
  EXPECT_EQ(store.Usage(1).pages, 10u);
  s = store.Stats();
  EXPECT_EQ(s.same_pages, 5u);
  EXPECT_EQ(s.orig_data_size, 10 * kPage);
  EXPECT_TRUE(AllZero(ReadBytes(store, 1, 20 * kPage, 2 * kPage).data(), 2 * kPage));
  ExpectMemFormula(s);
}

TEST(PageStoreTest, AllocateTurnsHolesIntoZeroPages) {
  PageStore store(PageStoreOptions{});
  const Bytes a = TextBytes(kPage, 1), b = TextBytes(kPage, 50000);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, a));
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 3 * kPage, b));
  const StoreStats before = store.Stats();

  ASSERT_TRUE(store.Allocate(1, 0, 6 * kPage).ok());
  EXPECT_EQ(store.Usage(1).pages, 6u);
  StoreStats s = store.Stats();
  EXPECT_EQ(s.same_pages, 4u);
  EXPECT_EQ(s.orig_data_size, 6 * kPage);
  EXPECT_EQ(s.compr_data_size, before.compr_data_size) << "existing pages untouched";
  EXPECT_EQ(s.pool_pages, before.pool_pages);
  const Bytes got = ReadBytes(store, 1, 0, 6 * kPage);
  EXPECT_TRUE(std::equal(a.begin(), a.end(), got.begin()));
  EXPECT_TRUE(AllZero(got.data() + kPage, 2 * kPage));
  EXPECT_TRUE(std::equal(b.begin(), b.end(), got.begin() + 3 * kPage));
  EXPECT_TRUE(AllZero(got.data() + 4 * kPage, 2 * kPage));
  EXPECT_EQ(store.SeekData(1, 0, false), 6 * kPage);

  // One byte allocates its page; zero length allocates nothing.
  ASSERT_TRUE(store.Allocate(1, 10 * kPage + 4095, 1).ok());
  EXPECT_EQ(store.Usage(1).pages, 7u);
  ASSERT_TRUE(store.Allocate(1, 20 * kPage, 0).ok());
  EXPECT_EQ(store.Usage(1).pages, 7u);
  // Allocate creates a file that did not exist.
  ASSERT_TRUE(store.Allocate(2, kPage - 1, 2).ok());
  EXPECT_EQ(store.Usage(2).pages, 2u);
  EXPECT_EQ(store.Usage(2).stored_bytes, 0u) << "zero pages cost no memory";
}

TEST(PageStoreTest, RemoveFreesEverything) {
  TestArena arena;
  PageStore store(WithArena(&arena));
  std::mt19937_64 rng(6);
  for (PageStore::FileId id = 1; id <= 3; ++id) {
    ASSERT_NO_FATAL_FAILURE(WriteOk(store, id, 0, TextBytes(40 * kPage, id * 1000)));
    ASSERT_NO_FATAL_FAILURE(WriteOk(store, id, 50 * kPage, RandomBytes(5 * kPage, rng)));
    ASSERT_NO_FATAL_FAILURE(WriteOk(store, id, 60 * kPage, Bytes(3 * kPage, 0)));
  }
  StoreStats s = store.Stats();
  ASSERT_GT(s.pool_pages, 0u);
  ASSERT_EQ(s.huge_pages, 15u);
  ASSERT_EQ(s.same_pages, 9u);
  ASSERT_EQ(s.orig_data_size, 3 * 48 * kPage);
  EXPECT_EQ(arena.PagesInUse(), s.pool_pages + s.huge_pages);

  store.Remove(2);
  EXPECT_EQ(store.Usage(2).pages, 0u);
  EXPECT_TRUE(AllZero(ReadBytes(store, 2, 0, 64 * kPage).data(), 64 * kPage));
  EXPECT_EQ(store.Stats().orig_data_size, 2 * 48 * kPage);
  store.Remove(1);
  store.Remove(3);
  store.Remove(3);  // Twice, and unknown files, are fine.
  store.Remove(12345);
  s = store.Stats();
  EXPECT_EQ(s.orig_data_size, 0u);
  EXPECT_EQ(s.compr_data_size, 0u);
  EXPECT_EQ(s.mem_used_total, 0u);
  EXPECT_EQ(s.pool_pages, 0u);
  EXPECT_EQ(s.buddied_pages, 0u);
  EXPECT_EQ(s.same_pages, 0u);
  EXPECT_EQ(s.huge_pages, 0u);
  EXPECT_EQ(arena.PagesInUse(), 0u) << "every page went back to the arena";

  // A removed id can be used again from scratch.
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 2, kPage, TextBytes(10)));
  EXPECT_EQ(store.Usage(2).pages, 1u);
  EXPECT_TRUE(AllZero(ReadBytes(store, 2, 0, kPage).data(), kPage));
}

// ---- Limits -------------------------------------------------------------------------------------

TEST(PageStoreTest, CapacityLimitIsEnospcAndKeepsData) {
  PageStoreOptions o;
  o.capacity_bytes = 64 * kPage;
  PageStore store(o);
  std::mt19937_64 rng(7);
  Bytes model = TextBytes(64 * kPage, 31337);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, model));
  ASSERT_EQ(store.Stats().orig_data_size, o.capacity_bytes);

  // New pages of any kind are refused, by every operation that adds pages.
  const Bytes text = TextBytes(kPage, 5);
  EXPECT_EQ(store.Write(1, 64 * kPage, text.data(), text.size()).code(), ENOSPC);
  const Bytes zeros(kPage, 0);
  EXPECT_EQ(store.Write(1, 100 * kPage, zeros.data(), zeros.size()).code(), ENOSPC);
  EXPECT_EQ(store.Write(2, 0, text.data(), 1).code(), ENOSPC);
  EXPECT_EQ(store.Allocate(1, 100 * kPage, 1).code(), ENOSPC);
  EXPECT_EQ(store.ZeroRange(1, 100 * kPage, kPage).code(), ENOSPC);
  const Bytes big = TextBytes(8 * kPage, 77);
  EXPECT_EQ(store.Write(1, 62 * kPage, big.data(), big.size()).code(), ENOSPC)
      << "a write needing 6 new pages";
  EXPECT_EQ(store.Usage(1).pages, 64u);
  EXPECT_EQ(store.Usage(2).pages, 0u);
  EXPECT_EQ(store.SeekData(1, 64 * kPage, true), UINT64_MAX);
  EXPECT_EQ(ReadBytes(store, 1, 0, 70 * kPage), [&] {
    Bytes m = model;
    m.resize(70 * kPage, 0);
    return m;
  }()) << "nothing stored was lost or changed";

  // Rewriting pages that exist needs no capacity.
  const Bytes noise = RandomBytes(3 * kPage, rng);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 10 * kPage, noise));
  std::copy(noise.begin(), noise.end(), model.begin() + 10 * kPage);
  ASSERT_TRUE(store.ZeroRange(1, 20 * kPage, kPage).ok());
  std::fill(model.begin() + 20 * kPage, model.begin() + 21 * kPage, 0);
  EXPECT_EQ(ReadBytes(store, 1, 0, model.size()), model);

  // Freed pages make room again, exactly as many.
  ASSERT_TRUE(store.PunchHole(1, 0, 4 * kPage).ok());
  for (uint64_t p = 200; p < 204; ++p) {
    ASSERT_NO_FATAL_FAILURE(WriteOk(store, 2, p * kPage, text));
  }
  EXPECT_EQ(store.Write(2, 204 * kPage, text.data(), text.size()).code(), ENOSPC);
  EXPECT_EQ(store.Stats().orig_data_size, o.capacity_bytes);
  std::fill(model.begin(), model.begin() + 4 * kPage, 0);
  EXPECT_EQ(ReadBytes(store, 1, 0, model.size()), model);
}

TEST(PageStoreTest, MemLimitIsEnospcButZeroPagesSucceed) {
  PageStoreOptions o;
  o.mem_limit = 16 * kPage;
  PageStore store(o);
  std::mt19937_64 rng(8);
  Bytes model;
  uint64_t written = 0;
  for (;; ++written) {
    ASSERT_LT(written, 100u) << "mem_limit never enforced";
    const Bytes page = RandomBytes(kPage, rng);
    const Status st = store.Write(1, written * kPage, page.data(), page.size());
    if (!st.ok()) {
      EXPECT_EQ(st.code(), ENOSPC) << st.ToString();
      break;
    }
    model.insert(model.end(), page.begin(), page.end());
  }
  EXPECT_EQ(written, 16u) << "16 raw pages fill 16 pages of memory";
  StoreStats s = store.Stats();
  EXPECT_EQ(s.mem_limit, o.mem_limit);
  EXPECT_LE(s.mem_used_total, o.mem_limit);
  ExpectMemFormula(s);

  // New pages that need memory are refused, whole or partial, in any file...
  const Bytes text = TextBytes(kPage, 3);
  EXPECT_EQ(store.Write(1, 100 * kPage, text.data(), text.size()).code(), ENOSPC);
  EXPECT_EQ(store.Write(1, 16 * kPage + 5, text.data(), 10).code(), ENOSPC);
  EXPECT_EQ(store.Write(2, 0, text.data(), 10).code(), ENOSPC);
  EXPECT_EQ(store.Usage(1).pages, 16u);
  EXPECT_EQ(store.Usage(2).pages, 0u);
  // Rewriting a stored raw page (in part, or whole with text) needs no more memory than the
  // page held: it may be allowed (page_store.h lets a page that replaces a stored one pass
  // for the moment of the swap) or refused; either way the data is exact and memory is within
  // the limit when the call returns.
  const Bytes patch = TextBytes(10, 100);
  Status st = store.Write(1, 3 * kPage + 5, patch.data(), patch.size());
  ASSERT_TRUE(st.ok() || st.code() == ENOSPC) << st.ToString();
  if (st.ok()) std::copy(patch.begin(), patch.end(), model.begin() + 3 * kPage + 5);
  st = store.Write(1, 5 * kPage, text.data(), text.size());
  ASSERT_TRUE(st.ok() || st.code() == ENOSPC) << st.ToString();
  if (st.ok()) std::copy(text.begin(), text.end(), model.begin() + 5 * kPage);
  EXPECT_LE(store.Stats().mem_used_total, o.mem_limit);
  EXPECT_EQ(ReadBytes(store, 1, 0, model.size()), model);
  // Same-filled pages need no memory at all.
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 200 * kPage, Bytes(4 * kPage, 0)));
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 2, 0, WordBytes(2 * kPage, 0xDEADBEEFCAFEF00D)));
  ASSERT_TRUE(store.Allocate(3, 0, 10 * kPage).ok());
  s = store.Stats();
  EXPECT_EQ(s.same_pages, 16u);
  EXPECT_LE(s.mem_used_total, o.mem_limit);
  ExpectMemFormula(s);
  EXPECT_EQ(ReadBytes(store, 1, 0, model.size()), model) << "stored pages intact";
  EXPECT_EQ(ReadBytes(store, 2, 0, 2 * kPage), WordBytes(2 * kPage, 0xDEADBEEFCAFEF00D));

  // Freeing memory lets compressible pages in again.
  store.Remove(1);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, text));
  EXPECT_EQ(ReadBytes(store, 1, 0, kPage), text);
}

// Overwriting stored pages must not carry memory past mem_limit when the old pages held less
// than the new ones: zero pages (fallocate, or files written with zeros) hold no memory, and a
// compressed page shares its zbud page with a buddy. Single-threaded, so after every call
// memory must be within the limit (page_store.h allows passing it only "for the moment of the
// swap").
TEST(PageStoreTest, MemLimitHoldsForOverwrites) {
  PageStoreOptions o;
  o.mem_limit = 16 * kPage;
  std::mt19937_64 rng(14);
  // Overwrites pages [0, pages) one call each; stops at the first call that leaves memory over.
  auto overwrite_with_random = [&](PageStore& store, uint64_t pages) {
    uint64_t refused = 0;
    for (uint64_t p = 0; p < pages; ++p) {
      const Bytes noise = RandomBytes(kPage, rng);
      const Bytes before = ReadBytes(store, 1, p * kPage, kPage);
      const Status st = store.Write(1, p * kPage, noise.data(), noise.size());
      if (st.ok()) {
        EXPECT_EQ(ReadBytes(store, 1, p * kPage, kPage), noise);
      } else {
        EXPECT_EQ(st.code(), ENOSPC) << st.ToString();
        EXPECT_EQ(ReadBytes(store, 1, p * kPage, kPage), before)
            << "a refused write changes nothing";
        ++refused;
      }
      const StoreStats s = store.Stats();
      if (s.mem_used_total > o.mem_limit) {
        ADD_FAILURE() << "mem_limit passed after overwriting page " << p << ": "
                      << s.mem_used_total / kPage << " pages held (" << s.huge_pages << " raw, "
                      << s.pool_pages << " zbud) for a limit of " << o.mem_limit / kPage;
        return;
      }
    }
    EXPECT_GT(refused, 0u) << "the new data cannot fit in the limit";
  };
  {
    SCOPED_TRACE("zero pages overwritten with random data");
    PageStore store(o);
    ASSERT_TRUE(store.Allocate(1, 0, 64 * kPage).ok());
    ASSERT_EQ(store.Stats().mem_used_total, 0u);
    overwrite_with_random(store, 64);
  }
  {
    SCOPED_TRACE("buddied text pages overwritten with random data");
    PageStore store(o);
    uint64_t stored = 0;
    for (; stored < 64; ++stored) {
      const Bytes text = TextBytes(kPage, stored * 3000);
      if (!store.Write(1, stored * kPage, text.data(), text.size()).ok()) break;
    }
    ASSERT_GT(store.Stats().buddied_pages, 0u);
    overwrite_with_random(store, stored);
  }
}

// At mem_limit, a multi-page overwrite whose pages each shrink (so each may pass the limit
// for the moment of the swap) must not leave memory over the limit once it returns. Files 1
// and 2 are written page by page in turn, so each zbud page holds one page of each; then file
// 1 is rewritten in one call: freeing its buddies releases no zbud page while file 2's live.
TEST(PageStoreTest, MemLimitHoldsAfterBatchOverwriteOfBuddies) {
  PageStoreOptions o;
  o.mem_limit = 16 * kPage;
  PageStore store(o);
  uint64_t pairs = 0;
  for (; pairs < 64; ++pairs) {
    const Bytes a = TextBytes(kPage, pairs * kPage), b = TextBytes(kPage, pairs * kPage + 2000);
    if (!store.Write(1, pairs * kPage, a.data(), a.size()).ok()) break;
    if (!store.Write(2, pairs * kPage, b.data(), b.size()).ok()) break;
  }
  ASSERT_GT(pairs, 4u);
  const StoreStats before = store.Stats();
  ASSERT_GE(before.buddied_pages, pairs - 1) << "the two files share zbud pages";
  Bytes data = ReadBytes(store, 1, 0, pairs * kPage);
  for (uint64_t p = 0; p < pairs; ++p) {
    std::fill(data.begin() + static_cast<ptrdiff_t>(p * kPage + kPage - 300),
              data.begin() + static_cast<ptrdiff_t>((p + 1) * kPage), 0);
  }
  const Status st = store.Write(1, 0, data.data(), data.size());
  ASSERT_TRUE(st.ok() || st.code() == ENOSPC) << st.ToString();
  if (st.ok()) {
    EXPECT_EQ(ReadBytes(store, 1, 0, data.size()), data);
  }
  const StoreStats s = store.Stats();
  // page_store.h: past the swap, memory exceeds mem_limit by at most one page per thread.
  EXPECT_LE(s.mem_used_total, o.mem_limit + kPage)
      << s.mem_used_total / kPage << " pages held (" << s.pool_pages << " zbud, " << s.buddied_pages
      << " buddied) for a limit of " << o.mem_limit / kPage << " after "
      << (st.ok() ? "an accepted" : "a refused") << " overwrite of " << pairs << " pages";
}

// Shrinking a file must work when the store is at mem_limit: Truncate's documented errors are
// EIO only, and it (like PunchHole) frees memory. Both re-encode the partial page at the cut.
TEST(PageStoreTest, TruncateAndPunchHoleSucceedAtMemLimit) {
  PageStoreOptions o;
  o.mem_limit = 16 * kPage;
  std::mt19937_64 rng(9);
  const Bytes data = RandomBytes(16 * kPage, rng);
  const Bytes more = RandomBytes(kPage, rng);
  {
    PageStore store(o);
    ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, data));
    ASSERT_EQ(store.Write(1, 16 * kPage, more.data(), more.size()).code(), ENOSPC);
    const Status st = store.Truncate(1, 8 * kPage + 100);
    EXPECT_TRUE(st.ok()) << "Truncate at mem_limit: " << st.ToString();
    EXPECT_EQ(store.Usage(1).pages, 9u);
    const Bytes got = ReadBytes(store, 1, 0, 9 * kPage);
    EXPECT_TRUE(std::equal(data.begin(), data.begin() + 8 * kPage + 100, got.begin()));
    EXPECT_TRUE(AllZero(got.data() + 8 * kPage + 100, kPage - 100));
  }
  {
    PageStore store(o);
    ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, data));
    const Status st = store.PunchHole(1, 2 * kPage + 50, 4 * kPage);
    EXPECT_TRUE(st.ok()) << "PunchHole at mem_limit: " << st.ToString();
    EXPECT_EQ(store.Usage(1).pages, 13u);
    Bytes want = data;
    std::fill(want.begin() + 2 * kPage + 50, want.begin() + 6 * kPage + 50, 0);
    EXPECT_EQ(ReadBytes(store, 1, 0, want.size()), want);
  }
}

TEST(PageStoreTest, EfbigPastMaxFileSize) {
  PageStore store(PageStoreOptions{});
  const uint64_t max = PageStore::kMaxFileSize;
  const uint64_t top = (max / kPage - 1) * kPage;  // The last whole page below max.
  const Bytes page = TextBytes(kPage);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, top, page));
  EXPECT_EQ(ReadBytes(store, 1, top, kPage), page);
  EXPECT_EQ(store.Write(1, max, page.data(), 1).code(), EFBIG);
  EXPECT_EQ(store.Write(1, max - 1, page.data(), 2).code(), EFBIG);
  EXPECT_EQ(store.Write(1, max - kPage, page.data(), kPage + 1).code(), EFBIG);
  EXPECT_EQ(store.Write(1, UINT64_MAX - 10, page.data(), 100).code(), EFBIG);
  EXPECT_EQ(store.Write(1, 0, page.data(), SIZE_MAX).code(), EFBIG);
  EXPECT_EQ(store.Allocate(1, max, 1).code(), EFBIG);
  EXPECT_EQ(store.Allocate(1, max - 1, kPage).code(), EFBIG);
  EXPECT_EQ(store.Truncate(1, max + 1).code(), EFBIG);
  EXPECT_EQ(store.Usage(1).pages, 1u) << "failed calls stored nothing";
  EXPECT_EQ(store.SeekData(1, 0, true), top);
  EXPECT_EQ(ReadBytes(store, 1, top, kPage), page);
  ASSERT_TRUE(store.Truncate(1, max).ok());
  EXPECT_EQ(store.Usage(1).pages, 1u);
}

// ---- Statistics -------------------------------------------------------------------------------

TEST(PageStoreTest, StatisticsPerPageKind) {
  TestArena arena;
  PageStore store(WithArena(&arena));
  std::mt19937_64 rng(10);

  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, Bytes(kPage, 0)));
  StoreStats s = store.Stats();
  EXPECT_EQ(s.same_pages, 1u);
  EXPECT_EQ(s.orig_data_size, kPage);
  EXPECT_EQ(s.compr_data_size, 0u);
  EXPECT_EQ(s.mem_used_total, 0u);
  EXPECT_EQ(store.Usage(1).stored_bytes, 0u);

  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, kPage, RandomBytes(kPage, rng)));
  s = store.Stats();
  EXPECT_EQ(s.huge_pages, 1u);
  EXPECT_EQ(s.compr_data_size, kPage);
  EXPECT_EQ(s.mem_used_total, kPage);
  EXPECT_EQ(store.Usage(1).stored_bytes, kPage);

  const Bytes text = TextBytes(kPage, 12345);
  Bytes comp(kPage);
  PageCodec::Streak streak;
  const size_t n = PageCodec::CompressFastFirst(text.data(), store.options().zstd_level,
                                                store.options().zstd_fast_level, kPairedPayload,
                                                &streak, comp.data());
  ASSERT_GT(n, 0u);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 2 * kPage, text));
  s = store.Stats();
  EXPECT_EQ(s.compr_data_size, kPage + n);
  EXPECT_EQ(s.pool_pages, 1u);
  EXPECT_EQ(s.buddied_pages, 0u);
  EXPECT_EQ(s.mem_used_total, 2 * kPage);
  EXPECT_EQ(s.orig_data_size, 3 * kPage);
  // A zbud page is paid in 64-byte chunks holding the payload (and its owner tag).
  const uint64_t zcost = store.Usage(1).stored_bytes - kPage;
  EXPECT_EQ(zcost % ZbudPool::kChunkSize, 0u);
  EXPECT_GE(zcost, n);
  EXPECT_LT(zcost, n + kOwnerTag + ZbudPool::kChunkSize);

  // Many text pages: zpages get buddied; the ratio shows; the formula holds.
  const uint64_t kText = 400;
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 2, 0, TextBytes(kText * kPage, 0)));
  s = store.Stats();
  EXPECT_GT(s.buddied_pages, 0u);
  EXPECT_EQ(s.orig_data_size, (3 + kText) * kPage);
  EXPECT_LT(s.compr_data_size - kPage, (kText + 1) * kPage / 2) << "text compresses over 2:1";
  EXPECT_LT(s.mem_used_total, s.orig_data_size);
  EXPECT_LE(s.pool_pages, kText + 1);
  ExpectMemFormula(s);
  EXPECT_EQ(arena.PagesInUse(), s.pool_pages + s.huge_pages);
  EXPECT_EQ(store.Usage(1).stored_bytes + store.Usage(2).stored_bytes <= s.mem_used_total, true);
  std::cout << "text: orig " << s.orig_data_size << " compr " << s.compr_data_size << " mem "
            << s.mem_used_total << " pool_pages " << s.pool_pages << " buddied " << s.buddied_pages
            << "\n";
}

TEST(PageStoreTest, OverwriteFreesMemory) {
  TestArena arena;
  PageStore store(WithArena(&arena));
  std::mt19937_64 rng(11);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, TextBytes(200 * kPage, 3)));
  ASSERT_GT(store.Stats().pool_pages, 50u);

  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, Bytes(200 * kPage, 0)));
  StoreStats s = store.Stats();
  EXPECT_EQ(s.pool_pages, 0u);
  EXPECT_EQ(s.buddied_pages, 0u);
  EXPECT_EQ(s.mem_used_total, 0u);
  EXPECT_EQ(s.compr_data_size, 0u);
  EXPECT_EQ(s.same_pages, 200u);
  EXPECT_EQ(s.orig_data_size, 200 * kPage);
  EXPECT_EQ(store.Usage(1).stored_bytes, 0u);
  EXPECT_EQ(arena.PagesInUse(), 0u);

  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, RandomBytes(50 * kPage, rng)));
  EXPECT_EQ(store.Stats().huge_pages, 50u);
  EXPECT_EQ(store.Stats().same_pages, 150u);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, TextBytes(50 * kPage, 9)));
  s = store.Stats();
  EXPECT_EQ(s.huge_pages, 0u);
  EXPECT_GT(s.pool_pages, 0u);
  EXPECT_EQ(arena.PagesInUse(), s.pool_pages);
  ExpectMemFormula(s);
}

TEST(PageStoreTest, SeekDataFindsDataAndHoles) {
  PageStore store(PageStoreOptions{});
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 2 * kPage, TextBytes(2 * kPage)));
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 70 * kPage + 5, Bytes{1}));  // Chunk 1.
  EXPECT_EQ(store.SeekData(1, 0, true), 2 * kPage);
  EXPECT_EQ(store.SeekData(1, 2 * kPage + 5, true), 2 * kPage + 5);
  EXPECT_EQ(store.SeekData(1, 4 * kPage, true), 70 * kPage);
  EXPECT_EQ(store.SeekData(1, 70 * kPage + 100, true), 70 * kPage + 100);
  EXPECT_EQ(store.SeekData(1, 71 * kPage, true), UINT64_MAX);
  EXPECT_EQ(store.SeekData(1, 0, false), 0u);
  EXPECT_EQ(store.SeekData(1, 2 * kPage, false), 4 * kPage);
  EXPECT_EQ(store.SeekData(1, 3 * kPage + 7, false), 4 * kPage);
  EXPECT_EQ(store.SeekData(1, 5 * kPage + 7, false), 5 * kPage + 7);
  EXPECT_EQ(store.SeekData(1, 70 * kPage + 1, false), 71 * kPage);
  EXPECT_EQ(store.SeekData(1, uint64_t{1} << 45, false), uint64_t{1} << 45);
  // A full chunk (pages 64..127 with 70 already there) pushes the next hole past it.
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 64 * kPage, TextBytes(64 * kPage, 1)));
  EXPECT_EQ(store.SeekData(1, 64 * kPage, false), 128 * kPage);
  EXPECT_EQ(store.SeekData(1, 4 * kPage, true), 64 * kPage);
}

// ---- Failures ---------------------------------------------------------------------------------

TEST(PageStoreTest, ArenaAllocationFailureIsEnospcAndKeepsData) {
  TestArena arena(4);  // Four pages, then nullptr.
  PageStore store(WithArena(&arena));
  std::mt19937_64 rng(12);
  Bytes model;
  for (int i = 0; i < 4; ++i) {
    const Bytes page = RandomBytes(kPage, rng);
    ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, i * kPage, page));
    model.insert(model.end(), page.begin(), page.end());
  }
  // A fifth raw page, a compressible page (needs a zbud page) and a 1 MiB batch all fail.
  const Bytes noise = RandomBytes(kPage, rng);
  EXPECT_EQ(store.Write(1, 4 * kPage, noise.data(), noise.size()).code(), ENOSPC);
  const Bytes text = TextBytes(kPage, 8);
  EXPECT_EQ(store.Write(2, 0, text.data(), text.size()).code(), ENOSPC);
  const Bytes big = TextBytes(256 * kPage, 80);
  EXPECT_EQ(store.Write(3, 0, big.data(), big.size()).code(), ENOSPC);
  // Overwriting a stored page with one that needs new memory fails and keeps the old data.
  EXPECT_EQ(store.Write(1, kPage, text.data(), text.size()).code(), ENOSPC);
  EXPECT_GT(arena.refused(), 0u);

  StoreStats s = store.Stats();
  EXPECT_EQ(store.Usage(1).pages, 4u);
  EXPECT_EQ(store.Usage(2).pages, 0u);
  EXPECT_EQ(store.Usage(3).pages, 0u);
  EXPECT_EQ(s.huge_pages, 4u);
  EXPECT_EQ(s.pool_pages, 0u);
  EXPECT_EQ(s.orig_data_size, 4 * kPage);
  EXPECT_EQ(arena.PagesInUse(), 4u) << "pages of failed calls went back";
  ExpectMemFormula(s);
  EXPECT_EQ(ReadBytes(store, 1, 0, model.size()), model);

  // Zero pages need no memory.
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 2, 0, Bytes(8 * kPage, 0)));

  // With a failure in the middle of a batch: the first pages compress into new zbud pages,
  // then the arena runs dry; nothing of the batch is kept, its zbud pages are given back.
  arena.Allow(3);
  EXPECT_EQ(store.Write(3, 0, big.data(), big.size()).code(), ENOSPC);
  EXPECT_EQ(store.Usage(3).pages, 0u);
  EXPECT_EQ(store.Stats().pool_pages, 0u);
  EXPECT_EQ(arena.PagesInUse(), 4u);

  // Memory again: everything works and the old data is still there.
  arena.Allow(1000);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 3, 0, big));
  EXPECT_EQ(ReadBytes(store, 3, 0, big.size()), big);
  EXPECT_EQ(ReadBytes(store, 1, 0, model.size()), model);
  store.Remove(1);
  store.Remove(2);
  store.Remove(3);
  EXPECT_EQ(arena.PagesInUse(), 0u);
}

// A compressed page damaged in memory reads as EIO (never as garbage); operations that must
// merge with it fail with EIO and change nothing.
TEST(PageStoreTest, CorruptPageReadsAsEio) {
  TestArena arena;
  PageStore store(WithArena(&arena));
  const Bytes text = TextBytes(kPage, 4096 * 7);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, text));
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 2, 0, Bytes(kPage, 0)));
  const std::set<void*> live = arena.live();
  ASSERT_EQ(live.size(), 1u) << "one zbud page holds the text page";
  auto* zpage = static_cast<uint8_t*>(*live.begin());
  // Damage everything after the zbud header chunk (the header holds the pool's list links).
  auto flip = [&] {
    for (size_t i = ZbudPool::kHeaderSize; i < kPage; ++i) zpage[i] ^= 0xFF;
  };
  flip();

  Bytes buf(kPage, 0x11);
  Status st = store.Read(1, 0, buf.data(), buf.size());
  EXPECT_EQ(st.code(), EIO) << st.ToString();
  st = store.Read(1, 100, buf.data(), 10);
  EXPECT_EQ(st.code(), EIO) << "a partial read of the page too";
  EXPECT_TRUE(AllZero(ReadBytes(store, 2, 0, kPage).data(), kPage)) << "other files fine";
  EXPECT_TRUE(AllZero(ReadBytes(store, 1, kPage, kPage).data(), kPage)) << "holes fine";
  const Bytes patch = {1, 2, 3};
  EXPECT_EQ(store.Write(1, 10, patch.data(), patch.size()).code(), EIO);
  EXPECT_EQ(store.Truncate(1, 100).code(), EIO);
  EXPECT_EQ(store.PunchHole(1, 100, 10).code(), EIO);
  EXPECT_EQ(store.Usage(1).pages, 1u);

  // Undo the damage: the page was left exactly as it was.
  flip();
  EXPECT_EQ(ReadBytes(store, 1, 0, kPage), text);
  // And a whole-page overwrite of a damaged page needs no merge.
  flip();
  const Bytes other = TextBytes(kPage, 999);
  ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 0, other));
  EXPECT_EQ(ReadBytes(store, 1, 0, kPage), other);
}

TEST(PageStoreTest, LevelsRoundTrip) {
  std::mt19937_64 rng(13);
  Bytes data = TextBytes(64 * kPage, 2222);
  const Bytes noise = RandomBytes(8 * kPage, rng);
  data.insert(data.end(), noise.begin(), noise.end());
  data.resize(data.size() + 8 * kPage, 0);
  uint64_t compr_fast = 0, compr_slow = 0;
  for (int level : {-5, -1, 1, 3}) {
    SCOPED_TRACE(level);
    PageStoreOptions o;
    o.zstd_level = level;
    PageStore store(o);
    ASSERT_NO_FATAL_FAILURE(WriteOk(store, 1, 3, data));
    EXPECT_EQ(ReadBytes(store, 1, 3, data.size()), data);
    const StoreStats s = store.Stats();
    EXPECT_EQ(s.huge_pages, 8u);
    if (level == -5) compr_fast = s.compr_data_size;
    if (level == 3) compr_slow = s.compr_data_size;
  }
  EXPECT_GT(compr_fast, compr_slow);
}

// ---- Randomized comparison against a model ------------------------------------------------------

// The model of one file: its bytes (zero-extended: the store has no sizes) and, per page, whether
// the store holds it and in which form. The form is a function of the page's bytes, computed
// with PageCodec the way page_store.cc chooses it.
class StoreModel {
 public:
  static constexpr uint64_t kMaxBytes = 256 << 10;
  static constexpr uint64_t kPages = kMaxBytes / kPage;
  enum Kind : uint8_t { kNone, kSame, kZbud, kRaw };
  struct PageInfo {
    Kind kind = kNone;
    uint32_t n = 0;  // Compressed bytes for kZbud.
  };
  struct File {
    Bytes bytes;
    std::array<PageInfo, kPages> pages;
  };

  StoreModel(int level, int fast_level, int files)
      : level_(level), fast_level_(fast_level), files_(files) {}

  File& file(int f) { return files_[f]; }
  uint64_t same() const { return same_; }
  uint64_t raw() const { return raw_; }
  uint64_t zbud() const { return zbud_; }
  uint64_t compr() const { return compr_; }
  uint64_t FilePages(int f) const { return pages_[f]; }
  uint64_t FileCost(int f) const { return cost_[f]; }

  void Write(int f, uint64_t off, const Bytes& data) {
    if (data.empty()) return;
    Bytes& b = files_[f].bytes;
    if (b.size() < off + data.size()) b.resize(off + data.size(), 0);
    std::copy(data.begin(), data.end(), b.begin() + static_cast<ptrdiff_t>(off));
    // The store compresses a write in batches of 256 pages, each with its own streak.
    PageCodec::Streak streak;
    for (uint64_t p = off / kPage; p <= (off + data.size() - 1) / kPage; ++p) {
      if ((p - off / kPage) % 256 == 0) streak = PageCodec::Streak();
      Reclassify(f, p, &streak);
    }
  }
  void Truncate(int f, uint64_t size) {
    Bytes& b = files_[f].bytes;
    if (size < b.size()) b.resize(size);
    for (uint64_t p = (size + kPage - 1) / kPage; p < kPages; ++p) Drop(f, p);
    if (size % kPage != 0 && Present(f, size / kPage)) Reclassify(f, size / kPage);
  }
  void PunchHole(int f, uint64_t off, uint64_t len) {
    if (len == 0) return;
    const uint64_t end = off + len;
    ZeroBytes(f, off, end);
    for (uint64_t p = off / kPage; p <= (end - 1) / kPage && p < kPages; ++p) {
      const bool whole = p * kPage >= off && (p + 1) * kPage <= end;
      if (whole) {
        Drop(f, p);
      } else if (Present(f, p)) {
        Reclassify(f, p);
      }
    }
  }
  void ZeroRange(int f, uint64_t off, uint64_t len) {
    if (len == 0) return;
    ZeroBytes(f, off, off + len);
    for (uint64_t p = off / kPage; p <= (off + len - 1) / kPage; ++p) Reclassify(f, p);
  }
  void Allocate(int f, uint64_t off, uint64_t len) {
    if (len == 0) return;
    for (uint64_t p = off / kPage; p <= (off + len - 1) / kPage; ++p) {
      if (!Present(f, p)) Set(f, p, PageInfo{kSame, 0});
    }
  }
  void Remove(int f) {
    files_[f].bytes.clear();
    for (uint64_t p = 0; p < kPages; ++p) Drop(f, p);
  }
  Bytes Read(int f, uint64_t off, size_t len) const {
    Bytes out(len, 0);
    const Bytes& b = files_[f].bytes;
    if (len != 0 && off < b.size()) {
      std::memcpy(out.data(), b.data() + off, std::min<uint64_t>(len, b.size() - off));
    }
    return out;
  }
  uint64_t SeekData(int f, uint64_t off, bool want_data) const {
    for (uint64_t p = off / kPage; p < kPages; ++p) {
      if (Present(f, p) == want_data) return std::max(off, p * kPage);
    }
    return want_data ? UINT64_MAX : std::max(off, kPages * kPage);
  }
  bool Present(int f, uint64_t p) const { return p < kPages && files_[f].pages[p].kind != kNone; }
  // Holes must read as zeros in the model too (a self-check of the model).
  bool HolesAreZero(int f) const {
    const Bytes& b = files_[f].bytes;
    for (uint64_t p = 0; p < kPages && p * kPage < b.size(); ++p) {
      if (Present(f, p)) continue;
      const uint64_t end = std::min<uint64_t>(b.size(), (p + 1) * kPage);
      if (!AllZero(b.data() + p * kPage, end - p * kPage)) return false;
    }
    return true;
  }

 private:
  void ZeroBytes(int f, uint64_t from, uint64_t to) {
    Bytes& b = files_[f].bytes;
    to = std::min<uint64_t>(to, b.size());
    if (from < to) {
      std::fill(b.begin() + static_cast<ptrdiff_t>(from), b.begin() + static_cast<ptrdiff_t>(to),
                0);
    }
  }
  // Classifies page p as the store encodes it; streak: the run it is compressed in (none:
  // a run of its own).
  void Reclassify(int f, uint64_t p, PageCodec::Streak* streak = nullptr) {
    PageCodec::Streak own;
    if (streak == nullptr) streak = &own;
    const Bytes page = Read(f, p * kPage, kPage);
    PageInfo info;
    uint64_t word;
    if (PageCodec::IsSameFilled(page.data(), &word)) {
      info.kind = kSame;
    } else {
      uint8_t out[kPage];
      const size_t n = PageCodec::CompressFastFirst(page.data(), level_, fast_level_,
                                                    kPairedPayload, streak, out);
      if (n != 0 && n <= kMaxZbudPayload) {
        info = PageInfo{kZbud, static_cast<uint32_t>(n)};
      } else {
        info.kind = kRaw;
      }
    }
    Set(f, p, info);
  }
  static uint64_t Cost(const PageInfo& i) {
    if (i.kind == kZbud) return ZbudPool::AllocatedBytes(i.n + kOwnerTag);
    return i.kind == kRaw ? kPage : 0;
  }
  void Account(int f, const PageInfo& i, int sign) {
    if (i.kind == kNone) return;
    const auto d = static_cast<uint64_t>(static_cast<int64_t>(sign));
    pages_[f] += d;
    cost_[f] += d * Cost(i);
    if (i.kind == kSame) same_ += d;
    if (i.kind == kRaw) {
      raw_ += d;
      compr_ += d * kPage;
    }
    if (i.kind == kZbud) {
      zbud_ += d;
      compr_ += d * i.n;
    }
  }
  void Set(int f, uint64_t p, const PageInfo& i) {
    Account(f, files_[f].pages[p], -1);
    files_[f].pages[p] = i;
    Account(f, i, +1);
  }
  void Drop(int f, uint64_t p) { Set(f, p, PageInfo{}); }

  int level_;
  int fast_level_;
  std::vector<File> files_;
  std::array<uint64_t, 16> pages_{}, cost_{};
  uint64_t same_ = 0, raw_ = 0, zbud_ = 0, compr_ = 0;
};

uint64_t SeedFromEnv(uint64_t fallback) {
  const char* s = std::getenv("ZBUDFS_TEST_SEED");
  return s != nullptr ? std::strtoull(s, nullptr, 0) : fallback;
}

TEST(PageStoreTest, RandomizedAgainstModel) {
  const uint64_t seed = SeedFromEnv(0x5EED2024);
  const char* ops_env = std::getenv("ZBUDFS_MODEL_OPS");
  const int kOps = ops_env != nullptr ? std::atoi(ops_env) : 100000;
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set ZBUDFS_TEST_SEED to replay)");
  constexpr int kFiles = 4;
  constexpr uint64_t kMax = StoreModel::kMaxBytes;
  std::mt19937_64 rng(seed);
  TestArena arena;
  PageStoreOptions o;
  o.arena = &arena;
  o.zstd_level = 1;
  PageStore store(o);
  StoreModel model(o.zstd_level, o.zstd_fast_level, kFiles);
  auto id = [](int f) { return static_cast<PageStore::FileId>(100 + f); };
  auto uniform = [&](uint64_t lo, uint64_t hi) { return lo + rng() % (hi - lo + 1); };

  // Data of mixed kinds, sometimes pieced together inside one buffer.
  auto make_data = [&](size_t len) {
    Bytes d;
    while (d.size() < len) {
      const size_t piece =
          std::min<size_t>(len - d.size(), rng() % 3 == 0 ? uniform(1, 2 * kPage) : len);
      Bytes part;
      switch (rng() % 6) {
        case 0:
          part.assign(piece, 0);
          break;
        case 1:
          part = WordBytes(piece, rng() % 4 == 0 ? 0x0101010101010101 * (rng() & 0xFF) : rng());
          break;
        case 2:
        case 3:
          part = TextBytes(piece, rng() % Text().size());
          break;
        default:
          part = RandomBytes(piece, rng);
          break;
      }
      d.insert(d.end(), part.begin(), part.end());
    }
    return d;
  };
  auto random_range = [&](uint64_t max_len) {
    uint64_t off, len;
    if (rng() % 3 == 0) {  // Page-aligned.
      off = uniform(0, kMax / kPage - 1) * kPage;
      len = uniform(1, std::max<uint64_t>(1, max_len / kPage)) * kPage;
    } else {
      off = uniform(0, kMax - 1);
      switch (rng() % 3) {
        case 0:
          len = uniform(1, 64);
          break;
        case 1:
          len = uniform(1, 2 * kPage + 10);
          break;
        default:
          len = uniform(1, max_len);
          break;
      }
    }
    len = std::min(len, kMax - off);
    return std::pair<uint64_t, uint64_t>(off, len);
  };

  auto check_stats = [&] {
    const StoreStats s = store.Stats();
    uint64_t pages = 0;
    for (int f = 0; f < kFiles; ++f) {
      const FileUsage u = store.Usage(id(f));
      ASSERT_EQ(u.pages, model.FilePages(f)) << "file " << f;
      ASSERT_EQ(u.stored_bytes, model.FileCost(f)) << "file " << f;
      pages += u.pages;
    }
    ASSERT_EQ(s.orig_data_size, pages * kPage);
    ASSERT_EQ(s.same_pages, model.same());
    ASSERT_EQ(s.huge_pages, model.raw());
    ASSERT_EQ(s.compr_data_size, model.compr());
    ASSERT_EQ(s.mem_used_total, (s.pool_pages + s.huge_pages) * kPage);
    // Every zbud page holds one or two zpages: zpages = pages + buddied pages.
    ASSERT_EQ(model.zbud(), s.pool_pages + s.buddied_pages);
    ASSERT_EQ(arena.PagesInUse(), s.pool_pages + s.huge_pages);
  };
  auto check_file = [&](int f) {
    ASSERT_TRUE(model.HolesAreZero(f)) << "model self-check, file " << f;
    ASSERT_EQ(ReadBytes(store, id(f), 0, kMax + kPage), model.Read(f, 0, kMax + kPage))
        << "file " << f;
  };

  int counts[9] = {};
  for (int op = 0; op < kOps; ++op) {
    const int f = static_cast<int>(rng() % kFiles);
    const unsigned dice = rng() % 100;
    std::ostringstream what;
    what << "op " << op << " file " << f << ": ";
    if (dice < 38) {
      const auto [off, len] = random_range(64 << 10);
      const Bytes data = make_data(len);
      what << "Write(" << off << ", " << len << ")";
      SCOPED_TRACE(what.str());
      ++counts[0];
      ASSERT_NO_FATAL_FAILURE(WriteOk(store, id(f), off, data));
      model.Write(f, off, data);
    } else if (dice < 63) {
      const uint64_t off = uniform(0, kMax + kPage);
      const uint64_t len = rng() % 2 == 0 ? uniform(0, 3 * kPage) : uniform(0, 64 << 10);
      what << "Read(" << off << ", " << len << ")";
      SCOPED_TRACE(what.str());
      ++counts[1];
      ASSERT_EQ(ReadBytes(store, id(f), off, len), model.Read(f, off, len));
    } else if (dice < 69) {
      const uint64_t size = rng() % 3 == 0 ? uniform(0, kMax / kPage) * kPage : uniform(0, kMax);
      what << "Truncate(" << size << ")";
      SCOPED_TRACE(what.str());
      ++counts[2];
      const Status st = store.Truncate(id(f), size);
      ASSERT_TRUE(st.ok()) << st.ToString();
      model.Truncate(f, size);
    } else if (dice < 76) {
      const auto [off, len] = random_range(64 << 10);
      what << "PunchHole(" << off << ", " << len << ")";
      SCOPED_TRACE(what.str());
      ++counts[3];
      const Status st = store.PunchHole(id(f), off, len);
      ASSERT_TRUE(st.ok()) << st.ToString();
      model.PunchHole(f, off, len);
    } else if (dice < 82) {
      const auto [off, len] = random_range(32 << 10);
      what << "ZeroRange(" << off << ", " << len << ")";
      SCOPED_TRACE(what.str());
      ++counts[4];
      const Status st = store.ZeroRange(id(f), off, len);
      ASSERT_TRUE(st.ok()) << st.ToString();
      model.ZeroRange(f, off, len);
    } else if (dice < 87) {
      const auto [off, len] = random_range(32 << 10);
      what << "Allocate(" << off << ", " << len << ")";
      SCOPED_TRACE(what.str());
      ++counts[5];
      const Status st = store.Allocate(id(f), off, len);
      ASSERT_TRUE(st.ok()) << st.ToString();
      model.Allocate(f, off, len);
    } else if (dice < 94) {
      const uint64_t off = uniform(0, kMax + kPage);
      const bool data = rng() % 2 == 0;
      what << "SeekData(" << off << ", " << data << ")";
      SCOPED_TRACE(what.str());
      ++counts[6];
      ASSERT_EQ(store.SeekData(id(f), off, data), model.SeekData(f, off, data));
    } else if (dice < 95) {
      what << "Remove";
      SCOPED_TRACE(what.str());
      ++counts[7];
      store.Remove(id(f));
      model.Remove(f);
    } else {
      const uint64_t p = uniform(0, StoreModel::kPages), n = uniform(1, 16);
      what << "ReadPages(" << p << ", " << n << ")";
      SCOPED_TRACE(what.str());
      ++counts[8];
      ASSERT_EQ(ReadBytes(store, id(f), p * kPage, n * kPage), model.Read(f, p * kPage, n * kPage));
    }
    SCOPED_TRACE(what.str());
    ASSERT_NO_FATAL_FAILURE(check_stats());
    if (op % 1000 == 999) {
      ASSERT_NO_FATAL_FAILURE(check_file(f));
    }
  }
  for (int f = 0; f < kFiles; ++f) ASSERT_NO_FATAL_FAILURE(check_file(f));
  const StoreStats s = store.Stats();
  std::cout << "model: " << kOps << " ops (write " << counts[0] << ", read " << counts[1]
            << ", truncate " << counts[2] << ", punch " << counts[3] << ", zero " << counts[4]
            << ", allocate " << counts[5] << ", seek " << counts[6] << ", remove " << counts[7]
            << ", page reads " << counts[8] << "); end: " << s.orig_data_size / kPage << " pages, "
            << s.same_pages << " same, " << s.huge_pages << " huge, " << s.pool_pages
            << " pool pages (" << s.buddied_pages << " buddied)\n";
  // The run exercised every page kind.
  EXPECT_GT(s.same_pages + s.huge_pages + s.pool_pages, 0u);
  for (int f = 0; f < kFiles; ++f) store.Remove(id(f));
  EXPECT_EQ(arena.PagesInUse(), 0u);
}

// ---- Concurrency ------------------------------------------------------------------------------

// Page contents for the concurrent test: version 0 is zeros; version v > 0 starts with a word
// naming (file, page, v) and is same-filled, text or random depending on (page + v) % 3.
class Versions {
 public:
  Versions(uint64_t file, uint64_t pages, uint32_t versions)
      : file_(file), pages_(pages), versions_(versions), data_(pages * (versions + 1) * kPage) {
    for (uint64_t p = 0; p < pages; ++p) {
      for (uint32_t v = 1; v <= versions; ++v) Generate(p, v, Mutable(p, v));
    }
  }
  const uint8_t* Get(uint64_t page, uint32_t v) const {
    return data_.data() + (page * (versions_ + 1) + v) * kPage;
  }
  uint32_t versions() const { return versions_; }
  // The version a whole page holds, or -1 if it is none of them.
  int64_t VersionOf(uint64_t page, const uint8_t* p) const {
    uint64_t h;
    std::memcpy(&h, p, 8);
    uint32_t v = 0;
    if (h != 0) {
      if (h >> 56 != 0x5A || ((h >> 48) & 0xFF) != (file_ & 0xFF) ||
          ((h >> 24) & 0xFFFFFF) != page) {
        return -1;
      }
      v = static_cast<uint32_t>(h & 0xFFFFFF);
      if (v > versions_) return -1;
    }
    return std::memcmp(Get(page, v), p, kPage) == 0 ? v : -1;
  }
  // Whether bytes [from, to) of the page are those of a single version.
  bool MatchesOneVersion(uint64_t page, size_t from, size_t to, const uint8_t* p) const {
    for (uint32_t v = 0; v <= versions_; ++v) {
      if (std::memcmp(Get(page, v) + from, p, to - from) == 0) return true;
    }
    return false;
  }

 private:
  uint8_t* Mutable(uint64_t page, uint32_t v) {
    return data_.data() + (page * (versions_ + 1) + v) * kPage;
  }
  void Generate(uint64_t page, uint32_t v, uint8_t* out) const {
    const uint64_t h = (uint64_t{0x5A} << 56) | ((file_ & 0xFF) << 48) | (page << 24) | v;
    std::mt19937_64 rng(h);
    switch ((page + v) % 3) {
      case 0:
        for (size_t i = 0; i < kPage; i += 8) std::memcpy(out + i, &h, 8);
        break;
      case 1: {
        const Bytes t = TextBytes(kPage, rng() % Text().size());
        std::memcpy(out, t.data(), kPage);
        break;
      }
      default: {
        const Bytes r = RandomBytes(kPage, rng);
        std::memcpy(out, r.data(), kPage);
        break;
      }
    }
    std::memcpy(out, &h, 8);
  }

  uint64_t file_, pages_;
  uint32_t versions_;
  Bytes data_;
};

// Writers on a shared file (each its own page-aligned region, regions sharing an index chunk),
// writers on their own files, a file written and removed over and over, readers of the shared
// and the removed file checking that every page is one whole version (never torn) and that
// versions never go back, and a thread polling statistics; then the final contents.
TEST(PageStoreTest, ConcurrentReadersAndWritersNeverSeeTornPages) {
  const uint64_t seed = SeedFromEnv(0xC0FFEE);
  SCOPED_TRACE("seed " + std::to_string(seed));
  TestArena arena;
  PageStore store(WithArena(&arena));
  constexpr PageStore::FileId kShared = 1, kChurn = 4;
  constexpr uint64_t kRegion = 48;  // Writer w owns pages [w*48, w*48+48).
  constexpr int kSharedWriters = 2;
  constexpr uint64_t kSharedPages = kRegion * kSharedWriters;
  constexpr uint32_t kVersions = 40;
  constexpr uint64_t kChurnPages = 32;
  constexpr uint32_t kChurnRounds = 30;
  const Versions shared(kShared, kSharedPages, kVersions);
  const Versions churn(kChurn, kChurnPages, kChurnRounds);

  std::atomic<int> writers_left{0};
  std::atomic<bool> go{false};
  std::mutex err_mu;
  std::vector<std::string> errors;
  auto fail = [&](const std::string& msg) {
    std::lock_guard<std::mutex> lock(err_mu);
    if (errors.size() < 20) errors.push_back(msg);
  };
  auto wait_go = [&] {
    while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
  };

  std::vector<uint32_t> final_version(kSharedPages, 0);
  std::vector<std::thread> threads;
  // Shared-file writers: versions 1..kVersions of random runs of their region, in one call.
  for (int w = 0; w < kSharedWriters; ++w) {
    ++writers_left;
    threads.emplace_back([&, w] {
      std::mt19937_64 rng(seed + 1 + static_cast<uint64_t>(w));
      wait_go();
      const uint64_t base = static_cast<uint64_t>(w) * kRegion;
      for (uint32_t v = 1; v <= kVersions; ++v) {
        uint64_t a = rng() % kRegion, b = rng() % kRegion;
        if (a > b) std::swap(a, b);
        if (v == kVersions) {  // The last version covers the whole region.
          a = 0;
          b = kRegion - 1;
        }
        Bytes buf;
        for (uint64_t p = base + a; p <= base + b; ++p) {
          buf.insert(buf.end(), shared.Get(p, v), shared.Get(p, v) + kPage);
          final_version[p] = v;  // Only this thread touches its region's entries.
        }
        const Status st = store.Write(kShared, (base + a) * kPage, buf.data(), buf.size());
        if (!st.ok()) fail("shared write: " + st.ToString());
      }
      --writers_left;
    });
  }
  // Writers of their own files, each checking its own model after every step.
  for (PageStore::FileId id : {PageStore::FileId{2}, PageStore::FileId{3}}) {
    ++writers_left;
    threads.emplace_back([&, id] {
      std::mt19937_64 rng(seed + 10 + id);
      constexpr uint64_t kMax = 128 << 10;
      Bytes model(kMax, 0);
      wait_go();
      for (int i = 0; i < 150; ++i) {
        const uint64_t off = rng() % kMax;
        const uint64_t len = 1 + rng() % std::min<uint64_t>(kMax - off, 20000);
        const unsigned what = rng() % 10;
        Status st;
        if (what < 7) {
          const Bytes data =
              what < 4 ? TextBytes(len, rng() % Text().size()) : RandomBytes(len, rng);
          st = store.Write(id, off, data.data(), data.size());
          std::copy(data.begin(), data.end(), model.begin() + static_cast<ptrdiff_t>(off));
        } else if (what < 9) {
          st = store.PunchHole(id, off, len);
          std::fill(model.begin() + static_cast<ptrdiff_t>(off),
                    model.begin() + static_cast<ptrdiff_t>(off + len), 0);
        } else {
          st = store.Truncate(id, off);
          std::fill(model.begin() + static_cast<ptrdiff_t>(off), model.end(), 0);
        }
        if (!st.ok()) fail("own file op: " + st.ToString());
        Bytes got(kMax);
        st = store.Read(id, 0, got.data(), got.size());
        if (!st.ok() || got != model) {
          fail("file " + std::to_string(id) + " differs from its model at step " +
               std::to_string(i));
          break;
        }
      }
      --writers_left;
    });
  }
  // A file written whole and removed, kChurnRounds times.
  ++writers_left;
  threads.emplace_back([&] {
    wait_go();
    for (uint32_t v = 1; v <= kChurnRounds; ++v) {
      Bytes buf;
      for (uint64_t p = 0; p < kChurnPages; ++p) {
        buf.insert(buf.end(), churn.Get(p, v), churn.Get(p, v) + kPage);
      }
      Status st = store.Write(kChurn, 0, buf.data(), buf.size());
      Bytes got(buf.size());
      if (st.ok()) st = store.Read(kChurn, 0, got.data(), got.size());
      if (!st.ok() || got != buf) fail("churn file round " + std::to_string(v));
      store.Remove(kChurn);
    }
    --writers_left;
  });
  // Readers of the shared file: aligned and unaligned reads; whole pages must be one version,
  // never older than one this reader saw before; partial pages must be a slice of one version.
  std::atomic<uint64_t> pages_checked{0};
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      std::mt19937_64 rng(seed + 100 + static_cast<uint64_t>(r));
      std::vector<int64_t> seen(kSharedPages, 0);
      wait_go();
      for (int iter = 0; writers_left.load() > 0 || iter < 50; ++iter) {
        uint64_t off, len;
        if (rng() % 4 != 0) {
          const uint64_t p = rng() % kSharedPages;
          off = p * kPage;
          len = (1 + rng() % (kSharedPages - p)) * kPage;
        } else {
          off = rng() % (kSharedPages * kPage);
          len = 1 + rng() % std::min<uint64_t>(kSharedPages * kPage - off, 64 << 10);
        }
        Bytes buf(len);
        const Status st = store.Read(kShared, off, buf.data(), len);
        if (!st.ok()) {
          fail("shared read: " + st.ToString());
          continue;
        }
        for (uint64_t pos = off; pos < off + len;) {
          const uint64_t page = pos / kPage, from = pos % kPage;
          const uint64_t to = std::min<uint64_t>(kPage, off + len - page * kPage);
          const uint8_t* data = buf.data() + (pos - off);
          if (from == 0 && to == kPage) {
            const int64_t v = shared.VersionOf(page, data);
            if (v < 0) {
              fail("torn or foreign page " + std::to_string(page));
            } else if (v < seen[page]) {
              fail("page " + std::to_string(page) + " went back from version " +
                   std::to_string(seen[page]) + " to " + std::to_string(v));
            } else {
              seen[page] = v;
            }
          } else if (!shared.MatchesOneVersion(page, from, to, data)) {
            fail("torn partial page " + std::to_string(page));
          }
          pages_checked.fetch_add(1, std::memory_order_relaxed);
          pos = page * kPage + to;
        }
      }
    });
  }
  // A reader of the churned file: every page is zeros or one whole version.
  threads.emplace_back([&] {
    std::mt19937_64 rng(seed + 200);
    wait_go();
    Bytes buf(kChurnPages * kPage);
    for (int iter = 0; writers_left.load() > 0 || iter < 50; ++iter) {
      const uint64_t p = rng() % kChurnPages, n = 1 + rng() % (kChurnPages - p);
      const Status st = store.Read(kChurn, p * kPage, buf.data(), n * kPage);
      if (!st.ok()) fail("churn read: " + st.ToString());
      for (uint64_t i = 0; i < n; ++i) {
        if (churn.VersionOf(p + i, buf.data() + i * kPage) < 0) {
          fail("torn churn page " + std::to_string(p + i));
        }
      }
    }
  });
  // Statistics, usage and seeks while all this happens.
  threads.emplace_back([&] {
    wait_go();
    for (int iter = 0; writers_left.load() > 0 || iter < 50; ++iter) {
      const StoreStats s = store.Stats();
      if (s.orig_data_size > (kSharedPages + kChurnPages + 64) * kPage) fail("orig_data_size");
      if (store.Usage(kShared).pages > kSharedPages) fail("shared usage too large");
      if (store.Usage(kChurn).pages > kChurnPages) fail("churn usage too large");
      const uint64_t d = store.SeekData(kShared, 0, true);
      if (d != UINT64_MAX && d >= kSharedPages * kPage) fail("seek past the shared file");
      std::this_thread::yield();
    }
  });

  go.store(true, std::memory_order_release);
  for (std::thread& t : threads) t.join();
  for (const std::string& e : errors) ADD_FAILURE() << e;
  ASSERT_TRUE(errors.empty());
  EXPECT_GT(pages_checked.load(), 0u);

  // The shared file holds each page's last version.
  Bytes got(kSharedPages * kPage);
  ASSERT_TRUE(store.Read(kShared, 0, got.data(), got.size()).ok());
  for (uint64_t p = 0; p < kSharedPages; ++p) {
    EXPECT_EQ(shared.VersionOf(p, got.data() + p * kPage), final_version[p]) << "page " << p;
  }
  EXPECT_EQ(store.Usage(kChurn).pages, 0u);
  const StoreStats s = store.Stats();
  uint64_t pages = 0;
  for (PageStore::FileId id = 1; id <= 4; ++id) pages += store.Usage(id).pages;
  EXPECT_EQ(s.orig_data_size, pages * kPage);
  EXPECT_EQ(arena.PagesInUse(), s.pool_pages + s.huge_pages);
  ExpectMemFormula(s);
  for (PageStore::FileId id = 1; id <= 4; ++id) store.Remove(id);
  EXPECT_EQ(store.Stats().orig_data_size, 0u);
  EXPECT_EQ(arena.PagesInUse(), 0u);
}

// Writes, truncates and removes of one file racing each other: readers see whole versions or
// zeros, and nothing leaks (every page the arena handed out is accounted for at the end).
TEST(PageStoreTest, ConcurrentRemoveAndTruncateWhileWriting) {
  const uint64_t seed = SeedFromEnv(0xBADC0DE);
  SCOPED_TRACE("seed " + std::to_string(seed));
  TestArena arena;
  PageStore store(WithArena(&arena));
  constexpr PageStore::FileId kFile = 7;
  constexpr uint64_t kPages = 64;
  constexpr uint32_t kVersions = 24;
  const Versions versions(kFile, kPages, kVersions);
  std::atomic<int> writers_left{2};
  std::atomic<uint64_t> bad{0}, removes{0};
  std::atomic<bool> go{false};
  auto wait_go = [&] {
    while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937_64 rng(seed + static_cast<uint64_t>(w));
      wait_go();
      for (uint32_t v = 1; v <= kVersions; ++v) {
        // Writer w owns the pages p with p % 2 == w, written one call per run of 1..8 pages.
        for (uint64_t p = static_cast<uint64_t>(w); p < kPages;) {
          const uint64_t n = 1 + rng() % 8;
          for (uint64_t i = 0; i < n && p < kPages; ++i, p += 2) {
            if (!store.Write(kFile, p * kPage, versions.Get(p, v), kPage).ok()) ++bad;
          }
          std::this_thread::yield();
        }
      }
      --writers_left;
    });
  }
  threads.emplace_back([&] {
    std::mt19937_64 rng(seed + 10);
    wait_go();
    for (int iter = 0; writers_left.load() > 0 || iter < 20; ++iter) {
      if (rng() % 3 == 0) {
        store.Remove(kFile);
        ++removes;
      } else if (!store.Truncate(kFile, (rng() % kPages) * kPage).ok()) {
        ++bad;
      }
      std::this_thread::yield();
    }
  });
  threads.emplace_back([&] {
    Bytes buf(kPages * kPage);
    wait_go();
    for (int iter = 0; writers_left.load() > 0 || iter < 20; ++iter) {
      if (!store.Read(kFile, 0, buf.data(), buf.size()).ok()) ++bad;
      for (uint64_t p = 0; p < kPages; ++p) {
        if (versions.VersionOf(p, buf.data() + p * kPage) < 0) ++bad;
      }
    }
  });
  go.store(true, std::memory_order_release);
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(removes.load(), 0u);
  const StoreStats s = store.Stats();
  EXPECT_EQ(s.orig_data_size, store.Usage(kFile).pages * kPage);
  EXPECT_EQ(arena.PagesInUse(), s.pool_pages + s.huge_pages) << "a page leaked or was lost";
  ExpectMemFormula(s);
  store.Remove(kFile);
  const StoreStats e = store.Stats();
  EXPECT_EQ(e.orig_data_size, 0u);
  EXPECT_EQ(e.same_pages + e.huge_pages + e.pool_pages + e.compr_data_size, 0u);
  EXPECT_EQ(arena.PagesInUse(), 0u);
  std::cout << "removes raced with writes: " << removes.load() << "\n";
}

}  // namespace
}  // namespace zbudfs

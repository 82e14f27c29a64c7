// Helpers shared by the PageStore unit tests (tests/store/page_store_*_test.cc): real text
// (hermetic) and random data, read and write checks, the mem_used_total formula, a page arena
// that counts, tracks and can refuse pages, and for the reclaim tests a store over a private
// overflow directory.
#ifndef ZBUDFS_TESTS_STORE_PAGE_STORE_TEST_UTIL_H_
#define ZBUDFS_TESTS_STORE_PAGE_STORE_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/filesystem.hpp>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <iterator>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "store/overflow_store.h"
#include "store/page_arena.h"
#include "store/page_store.h"
#include "store/zbud_pool.h"
#include "tests/corpus.h"
#include "tests/same_bytes.h"
#include "tests/temp_dir.h"

namespace zbudfs::store_test {

inline constexpr uint64_t kPage = kPageSize;
using Bytes = std::vector<uint8_t>;

// page_store.cc puts a 16-byte owner tag (file, page) in front of every zbud allocation, so a
// page is kept raw when it compresses above kMaxAllocSize - 16 = 3952 bytes (its static_assert).
inline constexpr size_t kOwnerTag = 16;
inline constexpr size_t kMaxZbudPayload = ZbudPool::kMaxAllocSize - kOwnerTag;
inline constexpr size_t kPairedPayload =  // Half a zbud page, less the owner tag.
    (ZbudPool::kNumChunks / 2) * ZbudPool::kChunkSize - kOwnerTag;

// ---- Data ---------------------------------------------------------------------------------------

// Real text that exists on every host: this repository's C++ sources (tests/corpus.h), up to
// 2 MiB (about 600 KB today; TextBytes wraps around).
inline const Bytes& Text() {
  static const Bytes text = [] {
    Bytes out = corpus::SourceText(64u << 10, 2u << 20);
    out.resize(std::min<size_t>(out.size(), 2u << 20));
    if (out.size() < (64u << 10)) {
      // Run away from its source tree: fall back to generated prose so the tests still have text.
      std::cerr << "warning: the repository's sources are missing; using generated text\n";
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
inline Bytes TextBytes(size_t n, size_t from = 0) {
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

inline Bytes RandomBytes(size_t n, std::mt19937_64& rng) {
  Bytes out(n);
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t w = rng();
    std::memcpy(out.data() + i, &w, std::min<size_t>(8, n - i));
  }
  return out;
}

inline Bytes WordBytes(size_t n, uint64_t word) {
  Bytes out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(word >> (8 * (i % 8)));
  return out;
}

// Whether p[0, n) is all zeros; on failure, where the first other byte is.
inline ::testing::AssertionResult AllZero(const uint8_t* p, size_t n) {
  return test::AllZeroBytes(p, n);
}

using test::SameBytes;

// Reads len bytes, failing the test on an error.
inline Bytes ReadBytes(PageStore& store, PageStore::FileId file, uint64_t off, size_t len) {
  Bytes out(len, 0xEE);
  const Status st = store.Read(file, off, out.data(), len);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

inline void WriteOk(PageStore& store, PageStore::FileId file, uint64_t off, const Bytes& data) {
  const Status st = store.Write(file, off, data.data(), data.size());
  ASSERT_TRUE(st.ok()) << st.ToString() << " writing " << data.size() << " bytes at " << off;
}

// The formula of the contract that must hold at every quiet moment.
inline void ExpectMemFormula(const StoreStats& s) {
  EXPECT_EQ(s.mem_used_total, (s.pool_pages + s.huge_pages + s.staged_pages) * kPage +
                                  s.index_bytes + s.metadata_bytes + s.inode_bytes +
                                  s.cluster_bytes);
  EXPECT_LE(s.buddied_pages, s.pool_pages);
}

// What a store holding nothing shows (the lifetime counters aside).
inline void ExpectEmpty(const StoreStats& s) {
  EXPECT_EQ(s.orig_data_size, 0u);
  EXPECT_EQ(s.compr_data_size, 0u);
  EXPECT_EQ(s.mem_used_total, 0u);
  EXPECT_EQ(s.pool_pages, 0u);
  EXPECT_EQ(s.buddied_pages, 0u);
  EXPECT_EQ(s.same_pages, 0u);
  EXPECT_EQ(s.huge_pages, 0u);
  EXPECT_EQ(s.staged_pages, 0u);
  EXPECT_EQ(s.overflow_pages, 0u);
  EXPECT_EQ(s.clusters, 0u);
  EXPECT_EQ(s.spilled_clusters, 0u);
  EXPECT_EQ(s.index_bytes, 0u);
  EXPECT_EQ(s.metadata_bytes, 0u);
  EXPECT_EQ(s.inode_bytes, 0u);
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

inline PageStoreOptions WithArena(PageArena* arena) {
  PageStoreOptions o;
  o.arena = arena;
  return o;
}

// The randomized tests' seed: $ZBUDFS_TEST_SEED if set (to replay a failure), else fallback.
inline uint64_t SeedFromEnv(uint64_t fallback) {
  const char* s = std::getenv("ZBUDFS_TEST_SEED");
  return s != nullptr ? std::strtoull(s, nullptr, 0) : fallback;
}

// ---- A store over a private overflow directory, for the reclaim tests ---------------------------

// Mixed data: a third random (raw pages), a third compressible, a third zeros.
inline Bytes MixedData(size_t bytes, uint64_t seed) {
  Bytes v(bytes);
  std::mt19937_64 rng(seed);
  for (size_t p = 0; p < bytes / kPage; ++p) {
    uint8_t* page = v.data() + p * kPage;
    switch ((p + seed) % 3) {
      case 0:
        for (size_t i = 0; i < kPage; i += 8) {
          uint64_t w = rng();
          std::memcpy(page + i, &w, 8);
        }
        break;
      case 1:
        for (size_t i = 0; i < kPage; ++i) page[i] = "zbudfs compressed page "[(i + p) % 23];
        page[p % kPage] = static_cast<uint8_t>(rng());
        break;
      default:
        break;  // Zeros.
    }
  }
  return v;
}

// A PageStore with mem_limit whose reclaim writes to an OverflowStore in a private directory.
struct OverflowFixture {
  explicit OverflowFixture(uint64_t mem_limit, uint64_t overflow_limit = 0, bool background = true,
                           OverflowIo* io = nullptr, PageArena* arena = nullptr,
                           StoreErrorReporter report = {}, uint64_t staging_pages = 0,
                           unsigned compress_threads = 0) {
    auto ov = OverflowStore::Open({dir.path(), overflow_limit, io});
    EXPECT_TRUE(ov.ok()) << ov.status().ToString();
    overflow = std::shared_ptr<OverflowStore>(std::move(ov).value());
    PageStoreOptions o;
    o.mem_limit = mem_limit;
    o.overflow = overflow;
    o.background_reclaim = background;
    o.arena = arena;
    o.report_error = std::move(report);
    o.staging_bytes = staging_pages * kPage;
    o.compress_threads = compress_threads;
    store = std::make_unique<PageStore>(o);
  }
  OverflowFixture(const OverflowFixture&) = delete;
  OverflowFixture& operator=(const OverflowFixture&) = delete;

  test::TempDir dir;
  std::shared_ptr<OverflowStore> overflow;
  std::unique_ptr<PageStore> store;
};

// What the store reported through PageStoreOptions::report_error.
struct Reports {
  std::mutex mu;
  std::vector<std::pair<StoreErrorKind, std::string>> seen;
  StoreErrorReporter Reporter() {
    return [this](StoreErrorKind kind, const std::string& message) {
      std::lock_guard<std::mutex> lock(mu);
      seen.emplace_back(kind, message);
    };
  }
  size_t Count(StoreErrorKind kind) {
    std::lock_guard<std::mutex> lock(mu);
    return std::count_if(seen.begin(), seen.end(), [&](const auto& r) { return r.first == kind; });
  }
};

// Every data file of the overflow directory in dir, for tests that change them under us.
inline std::vector<std::string> OverflowFiles(const std::string& dir) {
  std::vector<std::string> files;
  for (boost::filesystem::directory_iterator it(dir), end; it != end; ++it) {
    if (it->path().filename().string().rfind("zbudfs-overflow-", 0) == 0) {
      files.push_back(it->path().string());
    }
  }
  return files;
}

}  // namespace zbudfs::store_test

#endif  // ZBUDFS_TESTS_STORE_PAGE_STORE_TEST_UTIL_H_

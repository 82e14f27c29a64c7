// Concurrent PageStore readers and writers (the *Concurrent* tests are the ones run under
// ThreadSanitizer): no torn pages, and remove/truncate racing writes.
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

#include "store/page_store.h"
#include "tests/store/page_store_test_util.h"

namespace zbudfs {
namespace {

using namespace store_test;  // NOLINT(build/namespaces): the shared test helpers.

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
  RecordProperty("removes_raced_with_writes", std::to_string(removes.load()));
}

}  // namespace
}  // namespace zbudfs

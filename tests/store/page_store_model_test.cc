// PageStore against an in-memory model: random writes, reads, truncates, punches, zero ranges,
// allocates and removes, compared byte for byte and in the statistics; inline, with staging,
// with clusters (Pack among the operations), and with clusters over an overflow store
// (ReclaimTo too: clusters spilled whole, read from there, brought back on second reads).
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

#include "store/overflow_store.h"
#include "store/page_store.h"
#include "tests/store/page_store_test_util.h"
#include "tests/temp_dir.h"

namespace zbudfs {
namespace {

using namespace store_test;  // NOLINT(build/namespaces): the shared test helpers.

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

// Staged: whole pages are first kept as written and compressed by two background threads;
// the statistics are compared once they are done (WaitForStaging), with one zstd pass (no
// fast-first streak, which depends on the order pages are compressed in). Clustered: Pack
// (as zbudfsctl pack does) is one of the operations, so writes, truncates, punches and reads
// meet packed pages; a packed page's cost is the cluster's, not the model's, so only the
// statistics clusters leave alone are compared exactly, and the memory formula. Spilled:
// Clustered over an overflow store, with ReclaimTo among the operations; pages in the
// overflow store leave memory's statistics, so those are bounded rather than compared.
enum class ModelMode { kInline, kStaged, kClustered, kSpilled };
class PageStoreModelTest : public ::testing::TestWithParam<ModelMode> {};

TEST_P(PageStoreModelTest, RandomizedAgainstModel) {
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
  const bool spilled = GetParam() == ModelMode::kSpilled;
  const bool clustered = GetParam() == ModelMode::kClustered || spilled;
  if (GetParam() != ModelMode::kInline) o.zstd_fast_level = o.zstd_level;
  if (GetParam() == ModelMode::kStaged) {
    o.staging_bytes = 32 * kPage;
    o.compress_threads = 2;
  }
  if (clustered) o.cluster_pages = 4;  // No packer thread (pack_interval_ms 0): Pack only.
  test::TempDir overflow_dir;
  if (spilled) {  // Reclaim only when asked: memory never nears a limit this large.
    auto ov = OverflowStore::Open({overflow_dir.path(), 0, nullptr});
    ASSERT_TRUE(ov.ok()) << ov.status().ToString();
    o.overflow = std::shared_ptr<OverflowStore>(std::move(ov).value());
    o.mem_limit = 64 << 20;
    o.background_reclaim = false;
  }
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

  uint64_t max_clustered = 0;  // Clustered: the most pages ever seen in clusters at once.
  uint64_t max_overflow = 0;   // Spilled: the most pages ever seen in the overflow store,
  uint64_t max_spilled = 0;    // and clusters.
  auto check_stats = [&] {
    store.WaitForStaging();
    const StoreStats s = store.Stats();
    ASSERT_EQ(s.staged_pages, 0u);
    uint64_t pages = 0;
    for (int f = 0; f < kFiles; ++f) {
      const FileUsage u = store.Usage(id(f));
      ASSERT_EQ(u.pages, model.FilePages(f)) << "file " << f;
      if (!clustered) {
        ASSERT_EQ(u.stored_bytes, model.FileCost(f)) << "file " << f;
      }
      pages += u.pages;
    }
    ASSERT_EQ(s.orig_data_size, pages * kPage);
    ASSERT_EQ(s.same_pages, model.same());
    ASSERT_EQ(arena.PagesInUse(), s.pool_pages + s.huge_pages);
    if (spilled) {  // Raw and compressed pages may be in the overflow store, same pages never.
      ASSERT_LE(s.huge_pages, model.raw());
      ASSERT_LE(s.huge_pages + s.overflow_pages, model.raw() + model.zbud());
      ASSERT_EQ(s.overflow_pages == 0, s.overflow_bytes == 0);
      // Clusters in memory hold compressed pages in memory only.
      ASSERT_LE(s.clustered_pages, pages - model.same() - s.huge_pages - s.overflow_pages);
      ASSERT_EQ(s.mem_used_total,
                (s.pool_pages + s.huge_pages) * kPage + s.index_bytes + s.cluster_bytes);
      max_clustered = std::max(max_clustered, s.clustered_pages);
      max_overflow = std::max(max_overflow, s.overflow_pages);
      max_spilled = std::max(max_spilled, s.spilled_clusters);
      return;
    }
    ASSERT_EQ(s.huge_pages, model.raw());  // Clusters hold compressed pages only.
    if (clustered) {
      ASSERT_LE(s.clustered_pages, model.zbud());
      ASSERT_EQ(s.mem_used_total,
                (s.pool_pages + s.huge_pages) * kPage + s.index_bytes + s.cluster_bytes);
      max_clustered = std::max(max_clustered, s.clustered_pages);
      return;
    }
    ASSERT_EQ(s.compr_data_size, model.compr());
    ASSERT_EQ(s.mem_used_total, (s.pool_pages + s.huge_pages) * kPage + s.index_bytes);
    // Every zbud page holds one or two zpages: zpages = pages + buddied pages.
    ASSERT_EQ(model.zbud(), s.pool_pages + s.buddied_pages);
  };
  auto check_file = [&](int f) {
    ASSERT_TRUE(model.HolesAreZero(f)) << "model self-check, file " << f;
    ASSERT_EQ(ReadBytes(store, id(f), 0, kMax + kPage), model.Read(f, 0, kMax + kPage))
        << "file " << f;
  };

  int counts[11] = {};
  // PunchHole, ZeroRange or Allocate of file f on a random range of at most max_len bytes,
  // on the store and on the model alike; counted in counts[counter].
  auto range_op = [&](int f, std::ostringstream& what, const char* name, int counter,
                      uint64_t max_len,
                      Status (PageStore::*on_store)(PageStore::FileId, uint64_t, uint64_t),
                      void (StoreModel::*on_model)(int, uint64_t, uint64_t)) {
    const auto [off, len] = random_range(max_len);
    what << name << "(" << off << ", " << len << ")";
    SCOPED_TRACE(what.str());
    ++counts[counter];
    const Status st = (store.*on_store)(id(f), off, len);
    ASSERT_TRUE(st.ok()) << st.ToString();
    (model.*on_model)(f, off, len);
  };
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
      ASSERT_NO_FATAL_FAILURE(range_op(f, what, "PunchHole", 3, 64 << 10, &PageStore::PunchHole,
                                       &StoreModel::PunchHole));
    } else if (dice < 82) {
      ASSERT_NO_FATAL_FAILURE(range_op(f, what, "ZeroRange", 4, 32 << 10, &PageStore::ZeroRange,
                                       &StoreModel::ZeroRange));
    } else if (dice < 87) {
      ASSERT_NO_FATAL_FAILURE(
          range_op(f, what, "Allocate", 5, 32 << 10, &PageStore::Allocate, &StoreModel::Allocate));
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
    } else if (spilled && dice == 95) {
      // To a random fraction of memory: clusters spill whole, raw and single pages go out
      // alone. ENOSPC when the index and the clusters' descriptors alone exceed the target.
      const uint64_t target = store.Stats().mem_used_total * uniform(0, 90) / 100;
      what << "ReclaimTo(" << target << ")";
      SCOPED_TRACE(what.str());
      ++counts[10];
      const Status st = store.ReclaimTo(target);
      ASSERT_TRUE(st.ok() || st.code() == ENOSPC) << st.ToString();
    } else if (clustered && dice >= 97) {
      what << "Pack";
      SCOPED_TRACE(what.str());
      ++counts[9];
      (void)store.Pack(id(f));  // Changes no byte: the next reads and check_file compare them.
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
  std::ostringstream summary;  // In the XML report only (--gtest_output=xml): tests are quiet.
  summary << kOps << " ops (write " << counts[0] << ", read " << counts[1] << ", truncate "
          << counts[2] << ", punch " << counts[3] << ", zero " << counts[4] << ", allocate "
          << counts[5] << ", seek " << counts[6] << ", remove " << counts[7] << ", page reads "
          << counts[8] << ", pack " << counts[9] << ", reclaim " << counts[10]
          << ", most pages clustered " << max_clustered << ", in overflow " << max_overflow
          << " (clusters " << max_spilled << ")"
          << "); end: " << s.orig_data_size / kPage << " pages, " << s.same_pages << " same, "
          << s.huge_pages << " huge, " << s.pool_pages << " pool pages (" << s.buddied_pages
          << " buddied)";
  RecordProperty("model", summary.str());
  // The run exercised every page kind.
  EXPECT_GT(s.same_pages + s.huge_pages + s.pool_pages, 0u);
  if (clustered) {
    EXPECT_GT(max_clustered, 0u);
  }
  if (spilled) {
    EXPECT_GT(max_spilled, 0u);
    EXPECT_GT(s.faulted_pages, 0u);
  }
  for (int f = 0; f < kFiles; ++f) store.Remove(id(f));
  EXPECT_EQ(arena.PagesInUse(), 0u);
  EXPECT_EQ(store.Stats().overflow_bytes, 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, PageStoreModelTest,
                         ::testing::Values(ModelMode::kInline, ModelMode::kStaged,
                                           ModelMode::kClustered, ModelMode::kSpilled),
                         [](const ::testing::TestParamInfo<ModelMode>& info) {
                           switch (info.param) {
                             case ModelMode::kInline:
                               return "Inline";
                             case ModelMode::kStaged:
                               return "Staged";
                             case ModelMode::kClustered:
                               return "Clustered";
                             default:
                               return "Spilled";
                           }
                         });

}  // namespace
}  // namespace zbudfs

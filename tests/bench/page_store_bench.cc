// Micro benchmarks of the page store against bare zstd on the same 4 KiB pages.
//
//   store_write/<kind>, store_read/<kind>: PageStore::Write/Read of 1 MiB (256 pages, like
//       FUSE's largest requests), cycling over 8 MiB of data; each thread its own file.
//   store_rewrite_4k/<kind>: PageStore::Write of one 4 KiB page at a random page of the
//       thread's own 256 MiB file (fio's randwrite on a laid-out file, without FUSE): the
//       index lookup, compression, zbud alloc/free and statistics of one small write.
//   zstd_compress/<kind>, zstd_decompress/<kind>: the baseline, ZSTD_compressCCtx and
//       ZSTD_decompressDCtx page by page with a reused context at the store's level.
//   codec_compress/<kind>/level:<l>, codec_decompress/<kind>/level:<l>: the level sweep,
//       through PageCodec (the store's codec: checksummed frames, raw pages above 3968 bytes).
//   index_fill/stride:<s>, index_find/stride:<s>: PageIndex::Set of 64k pages s pages apart
//       (page s-1, 2s-1, ...: the last page of a chunk for s = 64)
//       into an empty index, and Find of random ones of them (counter bytes_per_page: the
//       index's MemoryBytes() over its pages); stride 1 is a dense file.
// Kinds: text (C headers from /usr/include, else this repository's sources), binary (shared
// objects from /usr/lib/x86_64-linux-gnu, else this binary's .text), fio60
// (fio buffer_compress_percentage=60, buffer_compress_chunk=4096: per 4 KiB, 40% random bytes
// then zeros). Counters: bytes_per_second; ratio = original / compressed payload bytes (raw
// pages count 4096); mem_ratio (store) = original / memory held (zbud pages + raw pages);
// cpu_bytes_per_second = bytes / CPU time of the thread (per thread; robust on a loaded box).
#include <benchmark/benchmark.h>
#include <zstd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "store/page_codec.h"
#include "store/page_index.h"
#include "store/page_store.h"
#include "tests/corpus.h"

namespace zbudfs {
namespace {

constexpr size_t kPage = kPageSize;
constexpr size_t kChunk = 1 << 20;      // One request: 256 pages.
constexpr size_t kDataBytes = 8 << 20;  // Per kind.
constexpr size_t kChunks = kDataBytes / kChunk;
constexpr int kLevel = 1;  // The store's default level.
using Bytes = std::vector<uint8_t>;

enum Kind { kText, kBinary, kFio, kNumKinds };
const char* const kKindNames[kNumKinds] = {"text", "binary", "fio60"};

Bytes MakeData(Kind kind) {
  Bytes d;
  if (kind == kText) {
    d = corpus::LoadFiles(
        "/usr/include", true, [](const std::filesystem::path& p) { return p.extension() == ".h"; },
        256 << 10, kDataBytes);
    // No host tree (another distribution or architecture): the unit tests' hermetic corpus.
    if (d.empty()) d = corpus::SourceText(256 << 10, kDataBytes);
  } else if (kind == kBinary) {
    d = corpus::LoadFiles(
        "/usr/lib/x86_64-linux-gnu", false,
        [](const std::filesystem::path& p) {
          return p.filename().string().find(".so") != std::string::npos;
        },
        512 << 10, kDataBytes);
    if (d.empty()) d = corpus::MachineCode(kDataBytes);
  } else {
    std::mt19937_64 rng(60);
    d.resize(kDataBytes);
    for (size_t page = 0; page < kDataBytes; page += kPage) {
      const size_t random = kPage * 40 / 100;
      for (size_t i = 0; i < random; i += 8) {
        const uint64_t w = rng();
        std::memcpy(d.data() + page + i, &w, std::min<size_t>(8, random - i));
      }
      std::memset(d.data() + page + random, 0, kPage - random);
    }
  }
  // Repeat if a corpus is short, so every kind has the same amount.
  if (d.empty()) d.assign(kPage, 0);
  while (d.size() < kDataBytes)
    d.insert(d.end(), d.begin(), d.begin() + std::min(d.size(), kDataBytes - d.size()));
  d.resize(kDataBytes);
  return d;
}

const Bytes& Data(Kind kind) {
  static std::once_flag once[kNumKinds];
  static Bytes data[kNumKinds];
  std::call_once(once[kind], [kind] { data[kind] = MakeData(kind); });
  return data[kind];
}

// One store per kind, so that its statistics describe that kind only.
PageStore& Store(Kind kind) {
  static std::once_flag once[kNumKinds];
  static std::unique_ptr<PageStore> stores[kNumKinds];
  std::call_once(once[kind], [kind] {
    PageStoreOptions o;
    o.zstd_level = kLevel;
    stores[kind] = std::make_unique<PageStore>(o);
  });
  return *stores[kind];
}

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Bytes processed per CPU-second of this thread since cpu0, averaged over threads.
void CpuRate(benchmark::State& state, double cpu0) {
  const double cpu = ThreadCpuSeconds() - cpu0;
  const double bytes = static_cast<double>(state.iterations()) * kChunk;
  state.counters["cpu_bytes_per_second"] = benchmark::Counter(
      cpu > 0 ? bytes / cpu : 0.0, benchmark::Counter::kAvgThreads, benchmark::Counter::kIs1024);
}

void StoreCounters(benchmark::State& state, Kind kind) {
  const StoreStats s = Store(kind).Stats();
  const auto avg = benchmark::Counter::kAvgThreads;
  state.counters["ratio"] = benchmark::Counter(
      s.compr_data_size == 0 ? 0.0 : static_cast<double>(s.orig_data_size) / s.compr_data_size,
      avg);
  state.counters["mem_ratio"] = benchmark::Counter(
      s.mem_used_total == 0 ? 0.0 : static_cast<double>(s.orig_data_size) / s.mem_used_total, avg);
}

void BM_StoreWrite(benchmark::State& state, Kind kind) {
  const Bytes& data = Data(kind);
  PageStore& store = Store(kind);
  const PageStore::FileId file = 100 + static_cast<PageStore::FileId>(state.thread_index());
  size_t i = 0;
  const double cpu0 = ThreadCpuSeconds();
  for (auto _ : state) {
    const size_t c = i++ % kChunks;
    const Status st = store.Write(file, c * kChunk, data.data() + c * kChunk, kChunk);
    if (!st.ok()) {
      state.SkipWithError(st.ToString().c_str());
      break;
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kChunk));
  CpuRate(state, cpu0);
  StoreCounters(state, kind);
}

void BM_StoreRead(benchmark::State& state, Kind kind) {
  const Bytes& data = Data(kind);
  PageStore& store = Store(kind);
  const PageStore::FileId file = 200 + static_cast<PageStore::FileId>(state.thread_index());
  // The thread's own file, written (untimed) and checked once.
  Bytes buf(kChunk);
  if (!store.Write(file, 0, data.data(), data.size()).ok() ||
      !store.Read(file, 0, buf.data(), kChunk).ok() ||
      std::memcmp(buf.data(), data.data(), kChunk) != 0) {
    state.SkipWithError("setup: the store did not give the data back");
  }
  size_t i = 0;
  const double cpu0 = ThreadCpuSeconds();
  for (auto _ : state) {
    const size_t c = i++ % kChunks;
    const Status st = store.Read(file, c * kChunk, buf.data(), kChunk);
    if (!st.ok()) {
      state.SkipWithError(st.ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(buf.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kChunk));
  CpuRate(state, cpu0);
  StoreCounters(state, kind);
}

void BM_StoreRewrite4k(benchmark::State& state, Kind kind) {
  constexpr size_t kFileBytes = 256 << 20;
  constexpr size_t kFilePages = kFileBytes / kPage;
  const Bytes& data = Data(kind);
  PageStore& store = Store(kind);
  const PageStore::FileId file = 300 + static_cast<PageStore::FileId>(state.thread_index());
  for (size_t off = 0; off < kFileBytes; off += kChunk) {  // Laid out untimed, as fio does.
    if (!store.Write(file, off, data.data() + off % kDataBytes, kChunk).ok()) {
      state.SkipWithError("setup: the store refused the file");
      return;
    }
  }
  std::mt19937_64 rng(4096 + static_cast<uint64_t>(state.thread_index()));
  const size_t data_pages = kDataBytes / kPage;
  const double cpu0 = ThreadCpuSeconds();
  for (auto _ : state) {
    const uint64_t r = rng();
    const size_t page = r % kFilePages;
    const Status st =
        store.Write(file, page * kPage, data.data() + (r >> 32) % data_pages * kPage, kPage);
    if (!st.ok()) {
      state.SkipWithError(st.ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kPage));
  const double cpu = ThreadCpuSeconds() - cpu0;
  state.counters["cpu_ns_per_write"] = benchmark::Counter(
      state.iterations() == 0 ? 0.0 : cpu * 1e9 / static_cast<double>(state.iterations()),
      benchmark::Counter::kAvgThreads);
  StoreCounters(state, kind);
  (void)store.Truncate(file, 0);  // Give the next run its memory back.
}

void BM_ZstdCompress(benchmark::State& state, Kind kind) {
  const Bytes& data = Data(kind);
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  Bytes out(ZSTD_compressBound(kPage));
  uint64_t in_bytes = 0, out_bytes = 0;
  size_t i = 0;
  const double cpu0 = ThreadCpuSeconds();
  for (auto _ : state) {
    const uint8_t* chunk = data.data() + (i++ % kChunks) * kChunk;
    for (size_t p = 0; p < kChunk; p += kPage) {
      const size_t n = ZSTD_compressCCtx(cctx, out.data(), out.size(), chunk + p, kPage, kLevel);
      if (ZSTD_isError(n)) {
        state.SkipWithError(ZSTD_getErrorName(n));
        break;
      }
      out_bytes += n;
    }
    in_bytes += kChunk;
  }
  ZSTD_freeCCtx(cctx);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kChunk));
  CpuRate(state, cpu0);
  state.counters["ratio"] =
      benchmark::Counter(out_bytes == 0 ? 0.0 : static_cast<double>(in_bytes) / out_bytes,
                         benchmark::Counter::kAvgThreads);
}

// Every page of a kind compressed by bare zstd at kLevel, for the decompression baseline.
struct Frames {
  std::vector<Bytes> pages;
};
const Frames& ZstdFrames(Kind kind) {
  static std::once_flag once[kNumKinds];
  static Frames frames[kNumKinds];
  std::call_once(once[kind], [kind] {
    const Bytes& data = Data(kind);
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    for (size_t p = 0; p < data.size(); p += kPage) {
      Bytes out(ZSTD_compressBound(kPage));
      out.resize(ZSTD_compressCCtx(cctx, out.data(), out.size(), data.data() + p, kPage, kLevel));
      frames[kind].pages.push_back(std::move(out));
    }
    ZSTD_freeCCtx(cctx);
  });
  return frames[kind];
}

void BM_ZstdDecompress(benchmark::State& state, Kind kind) {
  const Frames& f = ZstdFrames(kind);
  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  Bytes buf(kChunk);
  const size_t pages_per_chunk = kChunk / kPage;
  size_t i = 0;
  const double cpu0 = ThreadCpuSeconds();
  for (auto _ : state) {
    const size_t first = (i++ % kChunks) * pages_per_chunk;
    for (size_t p = 0; p < pages_per_chunk; ++p) {
      const Bytes& src = f.pages[first + p];
      const size_t n =
          ZSTD_decompressDCtx(dctx, buf.data() + p * kPage, kPage, src.data(), src.size());
      if (n != kPage) {
        state.SkipWithError("zstd: bad page");
        break;
      }
    }
    benchmark::DoNotOptimize(buf.data());
  }
  ZSTD_freeDCtx(dctx);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kChunk));
  CpuRate(state, cpu0);
}

// ---- Level sweep through PageCodec --------------------------------------------------------------

struct CodecPages {
  std::vector<Bytes> pages;  // Compressed payload, or empty for a raw page.
};
const CodecPages& CodecFrames(Kind kind, int level) {
  static std::mutex mu;
  static std::map<std::pair<int, int>, CodecPages> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto [it, fresh] = cache.try_emplace({kind, level});
  if (fresh) {
    const Bytes& data = Data(kind);
    for (size_t p = 0; p < data.size(); p += kPage) {
      Bytes out(kPage);
      out.resize(PageCodec::Compress(data.data() + p, level, out.data()));
      it->second.pages.push_back(std::move(out));
    }
  }
  return it->second;
}

void BM_CodecCompress(benchmark::State& state, Kind kind) {
  const int level = static_cast<int>(state.range(0));
  const Bytes& data = Data(kind);
  Bytes out(kPage);
  uint64_t in_bytes = 0, out_bytes = 0;
  size_t i = 0;
  const double cpu0 = ThreadCpuSeconds();
  for (auto _ : state) {
    const uint8_t* chunk = data.data() + (i++ % kChunks) * kChunk;
    for (size_t p = 0; p < kChunk; p += kPage) {
      const size_t n = PageCodec::Compress(chunk + p, level, out.data());
      out_bytes += n == 0 ? kPage : n;
    }
    in_bytes += kChunk;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kChunk));
  CpuRate(state, cpu0);
  state.counters["ratio"] =
      benchmark::Counter(static_cast<double>(in_bytes) / std::max<uint64_t>(out_bytes, 1));
}

void BM_CodecDecompress(benchmark::State& state, Kind kind) {
  const int level = static_cast<int>(state.range(0));
  const CodecPages& f = CodecFrames(kind, level);
  const Bytes& data = Data(kind);
  Bytes buf(kChunk);
  const size_t pages_per_chunk = kChunk / kPage;
  size_t i = 0;
  const double cpu0 = ThreadCpuSeconds();
  for (auto _ : state) {
    const size_t first = (i++ % kChunks) * pages_per_chunk;
    for (size_t p = 0; p < pages_per_chunk; ++p) {
      const Bytes& src = f.pages[first + p];
      uint8_t* dst = buf.data() + p * kPage;
      if (src.empty()) {
        std::memcpy(dst, data.data() + (first + p) * kPage, kPage);  // A raw page.
      } else if (!PageCodec::Decompress(src.data(), src.size(), dst).ok()) {
        state.SkipWithError("codec: bad page");
        break;
      }
    }
    benchmark::DoNotOptimize(buf.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kChunk));
  CpuRate(state, cpu0);
}

constexpr uint64_t kIndexPages = 1 << 16;

void BM_IndexFill(benchmark::State& state) {
  const uint64_t stride = static_cast<uint64_t>(state.range(0));
  PageEntry e;
  e.kind = PageEntry::kSame;
  double per_page = 0;
  for (auto _ : state) {
    PageIndex index;
    for (uint64_t i = 0; i < kIndexPages; ++i) index.Set(i * stride + stride - 1, e);
    per_page = static_cast<double>(index.MemoryBytes()) / static_cast<double>(kIndexPages);
    benchmark::DoNotOptimize(index.size());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kIndexPages));
  state.counters["bytes_per_page"] = per_page;
}

void BM_IndexFind(benchmark::State& state) {
  const uint64_t stride = static_cast<uint64_t>(state.range(0));
  PageEntry e;
  e.kind = PageEntry::kSame;
  PageIndex index;
  for (uint64_t i = 0; i < kIndexPages; ++i) index.Set(i * stride + stride - 1, e);
  std::mt19937_64 rng(7);
  uint64_t sum = 0;
  for (auto _ : state) {
    const PageEntry* found = index.Find((rng() % kIndexPages) * stride + stride - 1);
    sum += found != nullptr ? found->kind : 0;
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

void RegisterAll() {
  for (auto fn : {BM_IndexFill, BM_IndexFind}) {
    auto* b = benchmark::RegisterBenchmark(fn == BM_IndexFill ? "index_fill" : "index_find", fn);
    b->ArgName("stride");
    for (int stride : {1, 3, 64, 4096}) b->Arg(stride);
  }
  for (int k = 0; k < kNumKinds; ++k) {
    const Kind kind = static_cast<Kind>(k);
    const std::string name = kKindNames[k];
    benchmark::RegisterBenchmark(("store_write/" + name).c_str(), BM_StoreWrite, kind)
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("zstd_compress/" + name).c_str(), BM_ZstdCompress, kind)
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("store_rewrite_4k/" + name).c_str(), BM_StoreRewrite4k, kind)
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("store_read/" + name).c_str(), BM_StoreRead, kind)
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("zstd_decompress/" + name).c_str(), BM_ZstdDecompress, kind)
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
  }
  for (int k = 0; k < kNumKinds; ++k) {
    const Kind kind = static_cast<Kind>(k);
    const std::string name = kKindNames[k];
    using Fn = void (*)(benchmark::State&, Kind);
    const std::pair<const char*, Fn> sweeps[] = {{"codec_compress/", BM_CodecCompress},
                                                 {"codec_decompress/", BM_CodecDecompress}};
    for (const auto& [prefix, fn] : sweeps) {
      auto* b = benchmark::RegisterBenchmark((prefix + name).c_str(), fn, kind);
      b->ArgName("level");
      for (int level : {-5, -1, 1, 3}) b->Arg(level);
    }
  }
}

}  // namespace
}  // namespace zbudfs

int main(int argc, char** argv) {
  zbudfs::RegisterAll();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

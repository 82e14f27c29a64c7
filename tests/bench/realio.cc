// realio: file I/O with real data, for scripts/bench.sh. fio fills its buffers with random
// bytes and zero runs (buffer_compress_percentage) or a short repeated pattern, which compress
// nothing like real files do; realio writes pages cut from a corpus of real files instead.
//
//   realio --dir DIR --job JOB [--threads N] [--size SIZE] [--runtime SEC]
//          [--corpus PATH[:PATH...]] [--corpus-max SIZE] [--verify] [--json]
//   realio --dump-corpus FILE [--corpus ...] [--corpus-max SIZE]
//
// Each thread owns one file, DIR/realio.T, whose page P always holds the same corpus page
// (ExpectedPage), so any job can check what it reads (--verify) and random writes keep the
// files' contents and compressibility unchanged. Jobs:
//   seqwrite   buffered 1 MiB writes of the whole file, then fsync (the time includes it)
//   seqread    O_DIRECT 1 MiB sequential reads of the whole file (lays files out if missing)
//   randread   O_DIRECT 4 KiB reads at random pages for --runtime seconds
//   randwrite  O_DIRECT 4 KiB writes at random pages for --runtime seconds
// --dump-corpus writes the corpus pages to FILE and exits, so that zstd's own speed can be
// measured on the very data the jobs write (scripts/bench.sh runs `zstd -b` on it). A regular
// file given to --corpus is taken whole, as such a dump: `--corpus FILE` then writes the same
// pages as the trees it was dumped from, without walking them again on every run.
// Prints one line: the job, MiB/s and IOPS (with --json, one JSON object). Exit status 0, or
// 1 on an I/O error or a verify mismatch (reported on stderr), 2 on bad usage. Depends on libc
// and the C++ standard library only.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr size_t kPage = 4096;
constexpr size_t kSeqBlock = 1 << 20;

struct Options {
  std::string dir;
  std::string job;
  int threads = 1;
  uint64_t size = 256ull << 20;
  double runtime = 5;
  std::vector<std::string> corpus = {"/usr/include", "/usr/lib/x86_64-linux-gnu"};
  uint64_t corpus_max = 64ull << 20;
  bool verify = false;
  bool json = false;
  std::string dump;  // --dump-corpus FILE
};

[[noreturn]] void Usage(const char* why) {
  std::fprintf(
      stderr,
      "realio: %s\nusage: realio --dir DIR --job seqwrite|seqread|randread|randwrite "
      "[--threads N] [--size SIZE] [--runtime SEC] [--corpus PATH[:PATH...]] "
      "[--corpus-max SIZE] [--verify] [--json]\n       realio --dump-corpus FILE [--corpus ...] "
      "[--corpus-max SIZE]\n",
      why);
  std::exit(2);
}

uint64_t ParseSize(const std::string& s) {
  char* end = nullptr;
  uint64_t v = std::strtoull(s.c_str(), &end, 10);
  if (end == s.c_str()) Usage(("bad size: " + s).c_str());
  switch (*end) {
    case 'K':
    case 'k':
      v <<= 10;
      break;
    case 'M':
    case 'm':
      v <<= 20;
      break;
    case 'G':
    case 'g':
      v <<= 30;
      break;
    case '\0':
      break;
    default:
      Usage(("bad size: " + s).c_str());
  }
  return v;
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      if (i > start) out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage((a + " needs a value").c_str());
      return argv[++i];
    };
    if (a == "--dir")
      o.dir = value();
    else if (a == "--job")
      o.job = value();
    else if (a == "--threads")
      o.threads = std::atoi(value().c_str());
    else if (a == "--size")
      o.size = ParseSize(value());
    else if (a == "--runtime")
      o.runtime = std::atof(value().c_str());
    else if (a == "--corpus")
      o.corpus = Split(value(), ':');
    else if (a == "--corpus-max")
      o.corpus_max = ParseSize(value());
    else if (a == "--verify")
      o.verify = true;
    else if (a == "--json")
      o.json = true;
    else if (a == "--dump-corpus")
      o.dump = value();
    else
      Usage(("unknown argument: " + a).c_str());
  }
  if (!o.dump.empty()) return o;
  if (o.dir.empty() || o.job.empty()) Usage("--dir and --job are required");
  if (o.job != "seqwrite" && o.job != "seqread" && o.job != "randread" && o.job != "randwrite") {
    Usage(("unknown job: " + o.job).c_str());
  }
  if (o.threads < 1 || o.threads > 1024) Usage("--threads must be 1..1024");
  if (o.size < kSeqBlock || o.size % kSeqBlock != 0) Usage("--size must be a multiple of 1M");
  if (o.runtime <= 0) Usage("--runtime must be positive");
  return o;
}

// The regular files under root, in path order.
std::vector<std::filesystem::path> FilesUnder(const std::string& root) {
  namespace fs = std::filesystem;
  std::vector<fs::path> paths;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec),
       end;
       !ec && it != end; it.increment(ec)) {
    std::error_code ec2;
    if (!it->is_symlink(ec2) && it->is_regular_file(ec2)) paths.push_back(it->path());
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

// Appends a --dump-corpus file whole (it already is whole pages).
void AppendDump(const std::string& path, std::vector<uint8_t>& out) {
  std::error_code ec;
  const uintmax_t n = std::filesystem::file_size(path, ec);
  if (ec) return;
  const size_t begin = out.size();
  out.resize(begin + static_cast<size_t>(n));
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(out.data() + begin), static_cast<std::streamsize>(n));
  out.resize(begin + static_cast<size_t>(in.gcount()));
  out.resize((out.size() + kPage - 1) / kPage * kPage, 0);
}

// Whole pages of the regular files under the corpus paths, an equal share of corpus_max from
// each path (so text and binaries both count), each file's pages taken from its start (at
// most 1 MiB of a file, so one large library does not dominate). A file's last partial page is
// kept, zero-padded, as a file system would store it. A path that is a regular file is a dump.
std::vector<uint8_t> LoadCorpus(const Options& o) {
  std::vector<uint8_t> out;
  std::vector<char> buf(1 << 20);
  const uint64_t share = o.corpus_max / std::max<size_t>(o.corpus.size(), 1);
  for (const std::string& root : o.corpus) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(root, ec)) {
      AppendDump(root, out);
      continue;
    }
    const size_t begin = out.size();
    for (const std::filesystem::path& p : FilesUnder(root)) {
      if (out.size() - begin >= share) break;
      std::ifstream in(p, std::ios::binary);
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      const size_t n = static_cast<size_t>(in.gcount());
      if (n == 0) continue;
      out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
      out.resize((out.size() + kPage - 1) / kPage * kPage, 0);
    }
  }
  if (out.size() < 16 * kPage) {
    std::fprintf(stderr, "realio: corpus too small (%zu bytes); give --corpus\n", out.size());
    std::exit(2);
  }
  return out;
}

struct Shared {
  Options opt;
  std::vector<uint8_t> corpus;
  std::atomic<bool> failed{false};
  std::atomic<bool> stop{false};
};

// The page every job writes at page `page` of thread `t`'s file: threads start at different
// places in the corpus, so they do not all store the same pages.
const uint8_t* ExpectedPage(const Shared& s, int t, uint64_t page) {
  const uint64_t pages = s.corpus.size() / kPage;
  const uint64_t start = pages * static_cast<uint64_t>(t) / static_cast<uint64_t>(s.opt.threads);
  return s.corpus.data() + (start + page) % pages * kPage;
}

std::string FileOf(const Shared& s, int t) { return s.opt.dir + "/realio." + std::to_string(t); }

void Fail(Shared& s, const std::string& what) {
  if (errno != 0) {
    std::fprintf(stderr, "realio: %s: %s\n", what.c_str(), std::strerror(errno));
  } else {
    std::fprintf(stderr, "realio: %s\n", what.c_str());
  }
  s.failed = true;
}

struct AlignedFree {
  void operator()(uint8_t* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<uint8_t[], AlignedFree>;

AlignedBuffer Aligned(size_t n) {
  void* p = nullptr;
  if (posix_memalign(&p, kPage, n) != 0) std::abort();
  return AlignedBuffer(static_cast<uint8_t*>(p));
}

// Checks n bytes read at file offset off of thread t's file against ExpectedPage.
bool Matches(Shared& s, int t, uint64_t off, const uint8_t* got, size_t n) {
  for (size_t i = 0; i < n; i += kPage) {
    const uint64_t page = (off + i) / kPage;
    if (std::memcmp(got + i, ExpectedPage(s, t, page), kPage) != 0) {
      errno = 0;
      Fail(s, FileOf(s, t) + ": page " + std::to_string(page) + " differs from what was written");
      return false;
    }
  }
  return true;
}

uint64_t SeqWrite(Shared& s, int t) {
  const int fd = open(FileOf(s, t).c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  if (fd < 0) {
    Fail(s, "open " + FileOf(s, t));
    return 0;
  }
  std::vector<uint8_t> buf(kSeqBlock);
  uint64_t done = 0;
  for (uint64_t off = 0; off < s.opt.size && !s.failed; off += kSeqBlock) {
    for (size_t i = 0; i < kSeqBlock; i += kPage) {
      std::memcpy(buf.data() + i, ExpectedPage(s, t, (off + i) / kPage), kPage);
    }
    if (write(fd, buf.data(), kSeqBlock) != static_cast<ssize_t>(kSeqBlock)) {
      Fail(s, "write " + FileOf(s, t));
      break;
    }
    ++done;
  }
  if (fsync(fd) != 0) Fail(s, "fsync " + FileOf(s, t));
  close(fd);
  return done;
}

uint64_t SeqRead(Shared& s, int t) {
  const int fd = open(FileOf(s, t).c_str(), O_RDONLY | O_DIRECT);
  if (fd < 0) {
    Fail(s, "open O_DIRECT " + FileOf(s, t));
    return 0;
  }
  AlignedBuffer buf = Aligned(kSeqBlock);
  uint64_t done = 0;
  for (uint64_t off = 0; off < s.opt.size && !s.failed; off += kSeqBlock) {
    if (pread(fd, buf.get(), kSeqBlock, static_cast<off_t>(off)) !=
        static_cast<ssize_t>(kSeqBlock)) {
      Fail(s, "read " + FileOf(s, t));
      break;
    }
    if (s.opt.verify && !Matches(s, t, off, buf.get(), kSeqBlock)) break;
    ++done;
  }
  close(fd);
  return done;
}

uint64_t NextRandom(uint64_t& x) {  // xorshift64*
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  return x * 2685821657736338717ull;
}

uint64_t Random4k(Shared& s, int t, bool write_job) {
  const int fd = open(FileOf(s, t).c_str(), (write_job ? O_WRONLY : O_RDONLY) | O_DIRECT);
  if (fd < 0) {
    Fail(s, "open O_DIRECT " + FileOf(s, t));
    return 0;
  }
  AlignedBuffer buf = Aligned(kPage);
  const uint64_t pages = s.opt.size / kPage;
  uint64_t rng = 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(t + 1);
  uint64_t done = 0;
  while (!s.stop.load(std::memory_order_relaxed) && !s.failed) {
    const uint64_t page = NextRandom(rng) % pages;
    const off_t off = static_cast<off_t>(page * kPage);
    if (write_job) std::memcpy(buf.get(), ExpectedPage(s, t, page), kPage);
    const ssize_t n =
        write_job ? pwrite(fd, buf.get(), kPage, off) : pread(fd, buf.get(), kPage, off);
    if (n != static_cast<ssize_t>(kPage)) {
      Fail(s, std::string(write_job ? "write " : "read ") + FileOf(s, t));
      break;
    }
    if (!write_job && s.opt.verify && !Matches(s, t, page * kPage, buf.get(), kPage)) break;
    ++done;
  }
  close(fd);
  return done;
}

// Lays out the files a read or random-write job needs (not timed).
void LayOut(Shared& s) {
  for (int t = 0; t < s.opt.threads; ++t) {
    struct stat st;
    if (stat(FileOf(s, t).c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) == s.opt.size) {
      continue;
    }
    SeqWrite(s, t);
  }
}

struct Result {
  double seconds = 0;
  uint64_t ops = 0;    // Requests completed.
  uint64_t bytes = 0;  // Bytes moved.
};

// Runs the job on every thread at once; the clock starts when all are ready.
Result RunJob(Shared& s) {
  const bool random = s.opt.job == "randread" || s.opt.job == "randwrite";
  std::vector<uint64_t> ops(static_cast<size_t>(s.opt.threads), 0);
  std::latch ready(s.opt.threads + 1);
  std::latch go(1);
  std::vector<std::thread> threads;
  for (int t = 0; t < s.opt.threads; ++t) {
    threads.emplace_back([&, t] {
      ready.count_down();
      go.wait();
      if (s.opt.job == "seqwrite")
        ops[static_cast<size_t>(t)] = SeqWrite(s, t);
      else if (s.opt.job == "seqread")
        ops[static_cast<size_t>(t)] = SeqRead(s, t);
      else
        ops[static_cast<size_t>(t)] = Random4k(s, t, s.opt.job == "randwrite");
    });
  }
  ready.arrive_and_wait();
  const auto start = std::chrono::steady_clock::now();
  go.count_down();
  if (random) {
    std::this_thread::sleep_for(std::chrono::duration<double>(s.opt.runtime));
    s.stop = true;
  }
  for (std::thread& th : threads) th.join();
  Result r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (uint64_t n : ops) r.ops += n;
  r.bytes = r.ops * (random ? kPage : kSeqBlock);
  return r;
}

void Print(const Options& o, const Result& r, size_t corpus_bytes) {
  const double mib_s = static_cast<double>(r.bytes) / (1 << 20) / r.seconds;
  const double iops = static_cast<double>(r.ops) / r.seconds;
  if (o.json) {
    std::printf(
        "{\"job\":\"%s\",\"threads\":%d,\"size\":%llu,\"seconds\":%.4f,\"bytes\":%llu,"
        "\"ops\":%llu,\"mib_s\":%.2f,\"iops\":%.1f,\"corpus_bytes\":%zu}\n",
        o.job.c_str(), o.threads, static_cast<unsigned long long>(o.size), r.seconds,
        static_cast<unsigned long long>(r.bytes), static_cast<unsigned long long>(r.ops), mib_s,
        iops, corpus_bytes);
  } else {
    std::printf("%s threads=%d: %.1f MiB/s, %.0f IOPS (%.2f s)\n", o.job.c_str(), o.threads, mib_s,
                iops, r.seconds);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Shared s;
  s.opt = ParseArgs(argc, argv);
  s.corpus = LoadCorpus(s.opt);
  if (!s.opt.dump.empty()) {
    std::ofstream out(s.opt.dump, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(s.corpus.data()),
              static_cast<std::streamsize>(s.corpus.size()));
    return out.good() ? 0 : 1;
  }
  if (s.opt.job != "seqwrite") LayOut(s);
  if (s.failed) return 1;
  const Result r = RunJob(s);
  if (s.failed) return 1;
  Print(s.opt, r, s.corpus.size());
  return 0;
}

#include "store/overflow_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <boost/filesystem.hpp>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/same_bytes.h"
#include "tests/temp_dir.h"

namespace zbudfs {
namespace {
namespace fs = boost::filesystem;

using test::TempDir;

std::vector<uint8_t> Payload(size_t len, uint32_t seed) {
  std::vector<uint8_t> v(len);
  std::mt19937 rng(seed);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

std::unique_ptr<OverflowStore> OpenOrDie(const OverflowOptions& o) {
  auto s = OverflowStore::Open(o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

size_t CountEntries(const std::string& dir) {
  size_t n = 0;
  for (fs::directory_iterator it(dir), end; it != end; ++it) ++n;
  return n;
}

TEST(OverflowStoreTest, WriteReadRoundTripAllSizes) {
  TempDir dir;
  auto store = OpenOrDie({dir.path(), 0, nullptr});
  ASSERT_TRUE(store);
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> stored;
  for (size_t len : {1ul, 63ul, 64ul, 65ul, 1000ul, 2047ul, 3952ul, 4095ul, 4096ul}) {
    auto data = Payload(len, static_cast<uint32_t>(len));
    auto loc = store->Write(data.data(), len);
    ASSERT_TRUE(loc.ok()) << loc.status().ToString();
    stored.emplace_back(*loc, data);
  }
  for (auto& [loc, data] : stored) {
    std::vector<uint8_t> got(data.size());
    ASSERT_TRUE(store->Read(loc, got.data(), got.size()).ok());
    EXPECT_EQ(got, data);
  }
  EXPECT_EQ(store->SlotsInUse(), stored.size());
}

TEST(OverflowStoreTest, DiskTakenIsCloseToPayloadBytes) {
  TempDir dir;
  auto store = OpenOrDie({dir.path(), 0, nullptr});
  uint64_t payload = 0;
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    size_t len = 200 + rng() % 3700;
    auto data = Payload(len, i);
    ASSERT_TRUE(store->Write(data.data(), len).ok());
    payload += len;
  }
  EXPECT_GE(store->BytesUsed(), payload);
  // At most one granule a page, and each class file's last, partly used disk block.
  EXPECT_LE(store->BytesUsed(),
            payload + 2000 * 64 + OverflowStore::kNumClasses * OverflowStore::kBlock);
}

TEST(OverflowStoreTest, FreedSlotsAreReusedAndEmptyFilesReturnTheirSpace) {
  TempDir dir;
  auto store = OpenOrDie({dir.path(), 0, nullptr});
  auto a = Payload(1000, 1), b = Payload(1000, 2), c = Payload(1000, 3);
  auto la = store->Write(a.data(), a.size());
  auto lb = store->Write(b.data(), b.size());
  ASSERT_TRUE(la.ok() && lb.ok());
  const uint64_t used = store->BytesUsed();
  store->Free(*la, a.size());
  auto lc = store->Write(c.data(), c.size());
  ASSERT_TRUE(lc.ok());
  EXPECT_EQ(*lc, *la);                  // The freed slot came back.
  EXPECT_EQ(store->BytesUsed(), used);  // And the file did not grow.
  std::vector<uint8_t> got(1000);
  ASSERT_TRUE(store->Read(*lb, got.data(), got.size()).ok());
  EXPECT_EQ(got, b);
  store->Free(*lb, b.size());
  store->Free(*lc, c.size());
  EXPECT_EQ(store->BytesUsed(), 0u);
  EXPECT_EQ(store->SlotsInUse(), 0u);
  for (fs::directory_iterator it(dir.path()), end; it != end; ++it) {
    if (it->path().filename() != "zbudfs.lock") {
      EXPECT_EQ(fs::file_size(it->path()), 0u) << it->path();
    }
  }
}

TEST(OverflowStoreTest, LimitGivesEnospcAndKeepsWhatIsStored) {
  TempDir dir;
  auto store = OpenOrDie({dir.path(), 8192, nullptr});
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> stored;
  Status last;
  for (int i = 0; i < 100; ++i) {
    auto data = Payload(1024, i);
    auto loc = store->Write(data.data(), data.size());
    if (!loc.ok()) {
      last = loc.status();
      break;
    }
    stored.emplace_back(*loc, data);
  }
  EXPECT_EQ(last.code(), ENOSPC);
  EXPECT_EQ(stored.size(), 8u);
  EXPECT_LE(store->BytesUsed(), 8192u);
  for (auto& [loc, data] : stored) {
    std::vector<uint8_t> got(data.size());
    ASSERT_TRUE(store->Read(loc, got.data(), got.size()).ok());
    EXPECT_EQ(got, data);
  }
  store->Free(stored[0].first, 1024);
  auto data = Payload(1024, 999);
  EXPECT_TRUE(store->Write(data.data(), data.size()).ok());
}

TEST(OverflowStoreTest, BadLengthIsEinval) {
  TempDir dir;
  auto store = OpenOrDie({dir.path(), 0, nullptr});
  char buf[8] = {};
  EXPECT_EQ(store->Write(buf, 0).status().code(), EINVAL);
  std::vector<char> big(4097);
  EXPECT_EQ(store->Write(big.data(), big.size()).status().code(), EINVAL);
}

TEST(OverflowStoreTest, CrashLeftoversAreRemovedAndLockIsExclusive) {
  TempDir dir;
  const std::string leftover = dir.path() + "/zbudfs-overflow-1024";
  {
    int fd = open(leftover.c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, "stale", 5), 5);
    close(fd);
  }
  const std::string other = dir.path() + "/not-ours.txt";
  {
    int fd = open(other.c_str(), O_CREAT | O_WRONLY, 0600);
    close(fd);
  }
  auto store = OpenOrDie({dir.path(), 0, nullptr});
  ASSERT_TRUE(store);
  EXPECT_EQ(store->leftovers_removed(), 1u);
  EXPECT_FALSE(fs::exists(leftover));
  EXPECT_TRUE(fs::exists(other));  // Only our files are touched.

  auto second = OverflowStore::Open({dir.path(), 0, nullptr});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), EBUSY);
  EXPECT_NE(second.status().message().find(dir.path()), std::string::npos);

  auto data = Payload(100, 1);
  ASSERT_TRUE(store->Write(data.data(), data.size()).ok());
  store.reset();
  // Unmount removes everything zbudfs created and nothing else.
  EXPECT_EQ(CountEntries(dir.path()), 1u);
  EXPECT_TRUE(OverflowStore::Open({dir.path(), 0, nullptr}).ok());
}

TEST(OverflowStoreTest, FilesAre0600) {
  TempDir dir;
  auto store = OpenOrDie({dir.path(), 0, nullptr});
  auto data = Payload(100, 1);
  ASSERT_TRUE(store->Write(data.data(), data.size()).ok());
  for (fs::directory_iterator it(dir.path()), end; it != end; ++it) {
    struct stat st;
    ASSERT_EQ(lstat(it->path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u) << it->path();
  }
}

TEST(OverflowStoreTest, DefaultDirectoryIsPrivateAndRemoved) {
  TempDir parent;
  setenv("TMPDIR", parent.path().c_str(), 1);
  auto store = OpenOrDie({"", 0, nullptr});
  unsetenv("TMPDIR");
  ASSERT_TRUE(store);
  const std::string dir = store->dir();
  EXPECT_EQ(dir.rfind(parent.path(), 0), 0u);
  struct stat st;
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  store.reset();
  EXPECT_FALSE(fs::exists(dir));
}

// Makes parent/name look like the default directory of a mount, `age` seconds old.
std::string FakeDefaultDir(const std::string& parent, const std::string& name, int age) {
  const std::string dir = parent + "/" + name;
  EXPECT_EQ(mkdir(dir.c_str(), 0700), 0);
  for (const char* f : {"/zbudfs.lock", "/zbudfs-overflow-512"}) {
    int fd = open((dir + f).c_str(), O_CREAT | O_WRONLY, 0600);
    close(fd);
  }
  struct timeval times[2];
  gettimeofday(&times[0], nullptr);
  times[0].tv_sec -= age;
  times[1] = times[0];
  EXPECT_EQ(utimes(dir.c_str(), times), 0);
  return dir;
}

TEST(OverflowStoreTest, DefaultDirectoriesOfDeadMountsAreRemoved) {
  TempDir parent;
  const std::string dead = FakeDefaultDir(parent.path(), "zbudfs-overflow.dead00", 3600);
  const std::string young = FakeDefaultDir(parent.path(), "zbudfs-overflow.young0", 0);
  const std::string live = FakeDefaultDir(parent.path(), "zbudfs-overflow.live00", 3600);
  const std::string other = FakeDefaultDir(parent.path(), "someone-else.000000", 3600);
  int held = open((live + "/zbudfs.lock").c_str(), O_RDWR);
  ASSERT_GE(held, 0);
  ASSERT_EQ(flock(held, LOCK_EX), 0);  // A running mount holds its lock.
  setenv("TMPDIR", parent.path().c_str(), 1);
  auto store = OpenOrDie({"", 0, nullptr});
  unsetenv("TMPDIR");
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(young + "/zbudfs-overflow-512"));  // May be a mount starting up.
  EXPECT_TRUE(fs::exists(live + "/zbudfs-overflow-512"));
  EXPECT_TRUE(fs::exists(other + "/zbudfs-overflow-512"));  // Not ours by name.
  close(held);
}

TEST(OverflowStoreTest, LeftoversAreListedWithTheirSizeAndRemovedOnRequest) {
  TempDir parent;
  const std::string dead = FakeDefaultDir(parent.path(), "zbudfs-overflow.dead00", 3600);
  const std::string live = FakeDefaultDir(parent.path(), "zbudfs-overflow.live00", 3600);
  FakeDefaultDir(parent.path(), "zbudfs-overflow.young0", 0);
  {
    int fd = open((dead + "/zbudfs-overflow-512").c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    const std::string block(8192, 'x');
    ASSERT_EQ(write(fd, block.data(), block.size()), 8192);
    close(fd);
  }
  struct timeval old[2] = {{std::time(nullptr) - 3600, 0}, {std::time(nullptr) - 3600, 0}};
  ASSERT_EQ(utimes(dead.c_str(), old), 0);  // The write made it young again.
  int held = open((live + "/zbudfs.lock").c_str(), O_RDWR);
  ASSERT_GE(held, 0);
  ASSERT_EQ(flock(held, LOCK_EX), 0);
  const auto found = OverflowStore::FindLeftovers(parent.path());
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].dir, dead);
  EXPECT_GE(found[0].bytes, 8192u) << "its data file takes disk blocks";
  EXPECT_FALSE(OverflowStore::RemoveLeftover(live)) << "a mount holds it";
  EXPECT_TRUE(fs::exists(live));
  EXPECT_TRUE(OverflowStore::RemoveLeftover(dead));
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(OverflowStore::FindLeftovers(parent.path()).empty());
  close(held);
}

TEST(OverflowStoreTest, UnusableDirectoriesAreRefusedWithTheirName) {
  TempDir dir;
  auto missing = OverflowStore::Open({dir.path() + "/nope", 0, nullptr});
  EXPECT_EQ(missing.status().code(), ENOENT);
  EXPECT_NE(missing.status().message().find("/nope"), std::string::npos);

  const std::string file = dir.path() + "/file";
  {
    int fd = open(file.c_str(), O_CREAT | O_WRONLY, 0600);
    close(fd);
  }
  EXPECT_EQ(OverflowStore::Open({file, 0, nullptr}).status().code(), ENOTDIR);

  const std::string link = dir.path() + "/link";
  ASSERT_EQ(symlink("/tmp", link.c_str()), 0);
  EXPECT_EQ(OverflowStore::Open({link, 0, nullptr}).status().code(), ELOOP);
  // A trailing slash (or "/.") makes the kernel resolve the link: still refused.
  for (const char* suffix : {"/", "//", "/.", "/./", "//.//"}) {
    EXPECT_EQ(OverflowStore::Open({link + suffix, 0, nullptr}).status().code(), ELOOP) << suffix;
  }
  // The real directory named with a trailing slash is fine, and its files carry no "//".
  {
    auto ok = OverflowStore::Open({dir.path() + "/", 0, nullptr});
    ASSERT_TRUE(ok.ok()) << ok.status().ToString();
    EXPECT_EQ((*ok)->dir(), dir.path());
  }

  const std::string open_dir = dir.path() + "/shared";
  ASSERT_EQ(mkdir(open_dir.c_str(), 0700), 0);
  ASSERT_EQ(chmod(open_dir.c_str(), 0777), 0);
  EXPECT_EQ(OverflowStore::Open({open_dir, 0, nullptr}).status().code(), EACCES);
}

// Bytes the data files of dir take on disk (st_blocks).
uint64_t DiskBytes(const std::string& dir) {
  uint64_t bytes = 0;
  for (fs::directory_iterator it(dir), end; it != end; ++it) {
    if (it->path().filename().string().rfind("zbudfs-overflow-", 0) != 0) continue;
    struct stat sb;
    EXPECT_EQ(stat(it->path().c_str(), &sb), 0);
    bytes += static_cast<uint64_t>(sb.st_blocks) * 512;
  }
  return bytes;
}

// Freeing most slots gives their disk blocks back at once, though the files keep slots in
// use past them; BytesUsed follows, and what is left reads back; new writes reuse the
// space and count it again.
TEST(OverflowStoreTest, FreedBlocksGiveTheirDiskSpaceBackAtOnce) {
  TempDir dir;
  auto store = OpenOrDie({dir.path(), 0, nullptr});
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> stored;
  for (uint32_t i = 0; i < 3000; ++i) {
    const size_t len = i % 3 == 0 ? 4096 : i % 3 == 1 ? 1000 : 100 + i % 2000;
    auto data = Payload(len, i);
    auto loc = store->Write(data.data(), len);
    ASSERT_TRUE(loc.ok()) << loc.status().ToString();
    stored.emplace_back(*loc, data);
  }
  const uint64_t full = store->BytesUsed();
  ASSERT_GE(DiskBytes(dir.path()), full);
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> kept;
  uint64_t live_bytes = 0;
  for (size_t i = 0; i < stored.size(); ++i) {
    if (i % 50 == 7) {  // 2 % stay.
      kept.push_back(stored[i]);
      live_bytes += stored[i].second.size();
    } else {
      store->Free(stored[i].first, stored[i].second.size());
    }
  }
  // Each kept payload holds at most two blocks, and each class file its last one.
  const uint64_t bound =
      kept.size() * 2 * OverflowStore::kBlock + OverflowStore::kNumClasses * OverflowStore::kBlock;
  EXPECT_LE(store->BytesUsed(), bound) << "live payload " << live_bytes << ", full " << full;
  EXPECT_LE(DiskBytes(dir.path()), store->BytesUsed() + 16 * OverflowStore::kBlock);
  EXPECT_GE(DiskBytes(dir.path()) + 16 * OverflowStore::kBlock, store->BytesUsed());
  for (auto& [loc, data] : kept) {
    std::vector<uint8_t> got(data.size());
    ASSERT_TRUE(store->Read(loc, got.data(), got.size()).ok());
    EXPECT_EQ(got, data);
  }
  const uint64_t before = store->BytesUsed();
  auto again = Payload(4096, 1);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(store->Write(again.data(), again.size()).ok());
  EXPECT_EQ(store->BytesUsed(), before + 100 * OverflowStore::kBlock);
}

// overflow_limit bounds the blocks held: full of live data gives ENOSPC; blocks given back
// by Free make room again, and no more than they free.
TEST(OverflowStoreTest, LimitCountsBlocksGivenBack) {
  TempDir dir;
  auto store = OpenOrDie({dir.path(), 64 * 1024, nullptr});
  std::vector<uint64_t> locs;
  auto data = Payload(4096, 3);
  for (int i = 0; i < 16; ++i) {
    auto loc = store->Write(data.data(), data.size());
    ASSERT_TRUE(loc.ok()) << i;
    locs.push_back(*loc);
  }
  EXPECT_EQ(store->Write(data.data(), data.size()).status().code(), ENOSPC);
  for (int i = 0; i < 16; i += 2) store->Free(locs[i], data.size());
  EXPECT_EQ(store->BytesUsed(), 8 * OverflowStore::kBlock);
  auto small = Payload(100, 4);  // Another class: a fresh block.
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(store->Write(data.data(), data.size()).ok()) << i;
  ASSERT_TRUE(store->Write(small.data(), small.size()).ok());
  EXPECT_EQ(store->Write(data.data(), data.size()).status().code(), ENOSPC);
  EXPECT_TRUE(store->Write(small.data(), small.size()).ok());  // Its block has room.
  EXPECT_EQ(store->BytesUsed(), 16 * OverflowStore::kBlock);
}

// Writers, readers and freers of many sizes race with the punches of freed blocks: every
// payload reads back exactly until it is freed (a punch that hit a reused slot would read
// as zeros and fail its check), and at the end nothing is held.
TEST(OverflowStoreTest, ConcurrentFreesPunchWithoutLosingReusedSlots) {
  TempDir dir;
  auto store = OpenOrDie({dir.path(), 0, nullptr});
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t + 1);
      std::vector<std::pair<uint64_t, std::vector<uint8_t>>> mine;
      for (int op = 0; op < 4000; ++op) {
        if (mine.size() < 8 || rng() % 2 == 0) {
          const size_t len = rng() % 4 == 0 ? 4096 : 1 + rng() % (t % 2 == 0 ? 200 : 4096);
          auto data = Payload(len, rng());
          auto loc = store->Write(data.data(), len);
          if (!loc.ok()) {
            ++errors;
            continue;
          }
          mine.emplace_back(*loc, std::move(data));
        } else {
          const size_t i = rng() % mine.size();
          std::vector<uint8_t> got(mine[i].second.size());
          if (!store->Read(mine[i].first, got.data(), got.size()).ok() || got != mine[i].second) {
            ++errors;
          }
          store->Free(mine[i].first, mine[i].second.size());
          mine[i] = std::move(mine.back());
          mine.pop_back();
        }
      }
      for (auto& [loc, data] : mine) {
        std::vector<uint8_t> got(data.size());
        if (!store->Read(loc, got.data(), got.size()).ok() || got != data) ++errors;
        store->Free(loc, data.size());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(store->SlotsInUse(), 0u);
  EXPECT_EQ(store->BytesUsed(), 0u);
  EXPECT_EQ(DiskBytes(dir.path()), 0u);
}

// Failure injection through the I/O seam.
class FaultyIo : public OverflowIo {
 public:
  int write_errno = 0;           // Next Pwrite fails with this errno (0: none).
  bool short_then_zero = false;  // Pwrite writes half, then makes no progress.
  bool short_ok = false;         // Pwrite writes at most 100 bytes a call (but progresses).
  int read_errno = 0;            // Pread fails with this errno.
  int punch_errno = 0;           // Punch fails with this errno.
  int punches = 0;               // Punch calls.
  int Punch(int fd, off_t off, off_t len) override {
    ++punches;
    if (punch_errno != 0) {
      errno = punch_errno;
      return -1;
    }
    return OverflowIo::Punch(fd, off, len);
  }
  ssize_t Pwrite(int fd, const void* buf, size_t len, off_t off) override {
    if (write_errno != 0) {
      errno = write_errno;
      return -1;
    }
    if (short_then_zero) {
      if (off % 64 != 0) return 0;
      return OverflowIo::Pwrite(fd, buf, len / 2, off);
    }
    if (short_ok) return OverflowIo::Pwrite(fd, buf, std::min<size_t>(len, 100), off);
    return OverflowIo::Pwrite(fd, buf, len, off);
  }
  ssize_t Pread(int fd, void* buf, size_t len, off_t off) override {
    if (read_errno != 0) {
      errno = read_errno;
      return -1;
    }
    return OverflowIo::Pread(fd, buf, len, off);
  }
};

TEST(OverflowStoreTest, InjectedWriteFailuresLoseNothing) {
  TempDir dir;
  FaultyIo io;
  auto store = OpenOrDie({dir.path(), 0, &io});
  auto kept = Payload(2000, 1);
  auto loc = store->Write(kept.data(), kept.size());
  ASSERT_TRUE(loc.ok());
  const uint64_t slots = store->SlotsInUse();
  auto data = Payload(2000, 2);

  io.write_errno = ENOSPC;
  EXPECT_EQ(store->Write(data.data(), data.size()).status().code(), ENOSPC);
  io.write_errno = EDQUOT;
  EXPECT_EQ(store->Write(data.data(), data.size()).status().code(), ENOSPC);
  io.write_errno = EIO;
  EXPECT_EQ(store->Write(data.data(), data.size()).status().code(), EIO);
  io.write_errno = 0;
  io.short_then_zero = true;
  EXPECT_EQ(store->Write(data.data(), data.size()).status().code(), ENOSPC);
  io.short_then_zero = false;
  EXPECT_EQ(store->SlotsInUse(), slots);  // Failed writes hold no slot.

  io.short_ok = true;  // Short writes that progress are completed.
  auto loc2 = store->Write(data.data(), data.size());
  ASSERT_TRUE(loc2.ok());
  io.short_ok = false;
  std::vector<uint8_t> got(2000);
  ASSERT_TRUE(store->Read(*loc2, got.data(), got.size()).ok());
  EXPECT_EQ(got, data);
  ASSERT_TRUE(store->Read(*loc, got.data(), got.size()).ok());
  EXPECT_EQ(got, kept);
}

// A file system that cannot punch holes: freed blocks stay counted (they still take disk),
// are reused, and the store stops trying after the first refusal.
TEST(OverflowStoreTest, FileSystemWithoutHolePunchingKeepsBlocksCounted) {
  TempDir dir;
  FaultyIo io;
  io.punch_errno = EOPNOTSUPP;
  auto store = OpenOrDie({dir.path(), 0, &io});
  std::vector<uint64_t> locs;
  auto data = Payload(4096, 5);
  for (int i = 0; i < 8; ++i) locs.push_back(*store->Write(data.data(), data.size()));
  store->Free(locs[1], 4096);
  store->Free(locs[3], 4096);
  EXPECT_EQ(io.punches, 1);
  EXPECT_EQ(store->BytesUsed(), 8 * OverflowStore::kBlock);
  auto other = Payload(4096, 6);
  auto loc = store->Write(other.data(), other.size());
  ASSERT_TRUE(loc.ok());
  EXPECT_EQ(store->BytesUsed(), 8 * OverflowStore::kBlock);  // A freed slot came back.
  std::vector<uint8_t> got(4096);
  ASSERT_TRUE(store->Read(*loc, got.data(), got.size()).ok());
  EXPECT_EQ(got, other);
  ASSERT_TRUE(store->Read(locs[0], got.data(), got.size()).ok());
  EXPECT_EQ(got, data);
}

TEST(OverflowStoreTest, ReadErrorsAndTruncatedFilesAreEio) {
  TempDir dir;
  FaultyIo io;
  auto store = OpenOrDie({dir.path(), 0, &io});
  auto data = Payload(3000, 1);
  auto loc = store->Write(data.data(), data.size());
  ASSERT_TRUE(loc.ok());
  std::vector<uint8_t> got(3000);
  io.read_errno = EIO;
  EXPECT_EQ(store->Read(*loc, got.data(), got.size()).code(), EIO);
  io.read_errno = 0;
  ASSERT_TRUE(store->Read(*loc, got.data(), got.size()).ok());
  // Someone truncates our file under us.
  for (fs::directory_iterator it(dir.path()), end; it != end; ++it) {
    if (it->path().filename() != "zbudfs.lock") {
      ASSERT_EQ(truncate(it->path().c_str(), 0), 0);
    }
  }
  EXPECT_EQ(store->Read(*loc, got.data(), got.size()).code(), EIO);
}

// Bytes changed in a data file under us (a raw page's slot, a compressed one's) read back
// as EBADMSG, never as the changed data; the neighbouring slots still read fine.
TEST(OverflowStoreTest, BytesChangedOnDiskFailTheirCheckValue) {
  TempDir dir;
  auto store = OpenOrDie({dir.path(), 0, nullptr});
  for (size_t len : {size_t{4096}, size_t{1500}, size_t{1}}) {
    std::vector<std::pair<uint64_t, std::vector<uint8_t>>> stored;
    for (uint32_t i = 0; i < 3; ++i) {
      auto data = Payload(len, i + 100);
      auto loc = store->Write(data.data(), len);
      ASSERT_TRUE(loc.ok()) << loc.status().ToString();
      stored.emplace_back(*loc, data);
    }
    // Ten bytes (one, for a 1-byte payload) of the middle slot, as another program would.
    const std::string path = dir.path() + "/zbudfs-overflow-" +
                             std::to_string((len + OverflowStore::kClassSize - 1) /
                                            OverflowStore::kClassSize * OverflowStore::kClassSize);
    const uint64_t slot = stored[1].first & ((uint64_t{1} << 56) - 1);
    const size_t slot_size = (len + 63) / 64 * 64;
    int fd = open(path.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0) << path;
    const size_t n = std::min<size_t>(10, len);
    std::vector<uint8_t> junk(n);
    for (size_t i = 0; i < n; ++i) junk[i] = static_cast<uint8_t>(stored[1].second[i] ^ 0x5a);
    ASSERT_EQ(pwrite(fd, junk.data(), n, static_cast<off_t>(slot * slot_size)), ssize_t(n));
    close(fd);
    std::vector<uint8_t> got(len);
    Status st = store->Read(stored[1].first, got.data(), len);
    EXPECT_EQ(st.code(), EBADMSG) << len << ": " << st.ToString();
    EXPECT_NE(st.message().find(path), std::string::npos) << st.message();
    for (int i : {0, 2}) {
      ASSERT_TRUE(store->Read(stored[i].first, got.data(), len).ok()) << len;
      EXPECT_EQ(got, stored[i].second);
    }
  }
}

}  // namespace
}  // namespace zbudfs

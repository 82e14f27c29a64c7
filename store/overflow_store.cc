// pread/pwrite and hole punches run with no lock of ours; only ftruncate of an emptied class
// file runs under mu_, and a class file's creation under open_mu_ alone. The store's lock
// order is in store/page_store.h.
#include "store/overflow_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <boost/filesystem.hpp>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace zbudfs {
namespace fs = boost::filesystem;
namespace {

constexpr char kLockName[] = "zbudfs.lock";
constexpr char kDataPrefix[] = "zbudfs-overflow-";

Status Errno(int err, const std::string& what) {
  return Status::Error(err, what + ": " + std::strerror(err));
}

// The check value of a stored payload (kept in memory, see the header).
uint32_t CheckValue(const void* data, size_t len) {
  return static_cast<uint32_t>(XXH3_64bits(data, len));
}

constexpr char kDefaultDirPrefix[] = "zbudfs-overflow.";
constexpr int kStaleDirSeconds = 60;  // A default dir this old with its lock free is dead.

// The owner of path itself (a symlink is not followed): 0 or an errno. Boost.Filesystem
// has no owner query, so this one check is a system call.
int OwnerOf(const fs::path& path, uid_t* uid) {
  struct stat sb;
  if (::lstat(path.c_str(), &sb) != 0) return errno;
  *uid = sb.st_uid;
  return 0;
}

// A dead mount's default directory: ours by name and owner, a real directory, and older
// than a minute (so a mount still starting up is left alone).
bool MaybeDeadDefaultDir(const fs::directory_entry& entry, std::time_t now) {
  if (entry.path().filename().string().rfind(kDefaultDirPrefix, 0) != 0) return false;
  boost::system::error_code ec;
  if (entry.symlink_status(ec).type() != fs::directory_file || ec) return false;
  uid_t uid = 0;
  if (OwnerOf(entry.path(), &uid) != 0 || uid != geteuid()) return false;
  const std::time_t mtime = fs::last_write_time(entry.path(), ec);
  return !ec && now - mtime >= kStaleDirSeconds;
}

// Takes the lock of a dead mount's directory: an open descriptor holding it, or -1 when
// a mount holds it (or there is none).
int LockDeadDir(const fs::path& dir) {
  const fs::path lock = dir / kLockName;
  int fd = ::open(lock.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -1;
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
  ::close(fd);
  return -1;
}

// Removes zbudfs's files of a directory whose lock fd holds, then the directory (which
// fails, harmlessly, if anything else is left). True if the directory is gone.
bool RemoveLockedDir(const fs::path& dir) {
  boost::system::error_code ec;
  for (fs::directory_iterator f(dir, ec), end; !ec && f != end; f.increment(ec)) {
    if (f->path().filename().string().rfind(kDataPrefix, 0) == 0) fs::remove(f->path(), ec);
  }
  fs::remove(dir / kLockName, ec);
  return fs::remove(dir, ec) && !ec;
}

// Removes the default directories of mounts that died (SIGKILL, crash): those
// MaybeDeadDefaultDir accepts whose lock file is not held.
void RemoveDeadDefaultDirs(const std::string& base) {
  for (const OverflowStore::Leftover& l : OverflowStore::FindLeftovers(base)) {
    OverflowStore::RemoveLeftover(l.dir);
  }
}

// A fresh private directory under $TMPDIR or /var/tmp.
StatusOr<std::string> MakeDefaultDir() {
  const std::string base = OverflowStore::DefaultBase();
  RemoveDeadDefaultDirs(base);
  std::string templ = base + "/" + kDefaultDirPrefix + "XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) return Errno(errno, "overflow_dir: mkdtemp in " + base);
  boost::system::error_code ec;
  fs::permissions(templ, fs::owner_all, ec);  // mkdtemp's mode already; made sure of.
  if (templ[0] != '/') {  // A relative $TMPDIR: the daemon chdirs to / when it detaches.
    templ = fs::absolute(templ, fs::current_path(ec)).string();
  }
  return templ;
}

// The directory named without trailing "/" or "/." components: the kernel resolves a
// symlink named as "link/" or "link/.", so lstat of that form would see the directory it
// points to and the symlink check would pass. "/" stays "/".
std::string WithoutTrailingSlashes(std::string dir) {
  for (;;) {
    if (dir.size() > 1 && dir.back() == '/') {
      dir.pop_back();
    } else if (dir.size() > 2 && dir.compare(dir.size() - 2, 2, "/.") == 0) {
      dir.resize(dir.size() - 1);  // "a/." -> "a/", whose slash goes next.
    } else {
      return dir;
    }
  }
}

// Checks a user-given directory against the rules in the header.
Status CheckGivenDir(const std::string& dir) {
  boost::system::error_code ec;
  fs::file_status st = fs::symlink_status(dir, ec);
  if (st.type() == fs::file_not_found)
    return Status::Error(ENOENT, "overflow_dir " + dir + " does not exist");
  if (ec) return Errno(ec.value(), "overflow_dir " + dir);
  if (st.type() == fs::symlink_file)
    return Status::Error(ELOOP, "overflow_dir " + dir + " is a symlink; give the real directory");
  if (st.type() != fs::directory_file)
    return Status::Error(ENOTDIR, "overflow_dir " + dir + " is not a directory");
  uid_t uid = 0;
  if (int err = OwnerOf(dir, &uid); err != 0) return Errno(err, "overflow_dir " + dir);
  if (uid != geteuid()) {
    return Status::Error(EACCES, "overflow_dir " + dir + " is owned by uid " + std::to_string(uid) +
                                     ", not by us; use a private directory of our own");
  }
  // Not a symlink (checked above), so these are the directory's own permission bits.
  if ((st.permissions() & (fs::group_write | fs::others_write)) != 0) {
    return Status::Error(EACCES,
                         "overflow_dir " + dir +
                             " is writable by other users; use a private directory (chmod 0700)");
  }
  // Only the kernel knows whether we may create files here (a read-only mount, ACLs):
  // Boost.Filesystem cannot ask it, access(2) can.
  if (access(dir.c_str(), W_OK | X_OK) != 0)
    return Errno(errno == EROFS ? EROFS : EACCES, "overflow_dir " + dir + " is not writable");
  return Status::OK();
}

}  // namespace

ssize_t OverflowIo::Pwrite(int fd, const void* buf, size_t len, off_t off) {
  return ::pwrite(fd, buf, len, off);
}
ssize_t OverflowIo::Pread(int fd, void* buf, size_t len, off_t off) {
  return ::pread(fd, buf, len, off);
}
int OverflowIo::Punch(int fd, off_t off, off_t len) {
  return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
}

StatusOr<std::unique_ptr<OverflowStore>> OverflowStore::Open(const OverflowOptions& options) {
  std::string dir = options.dir;
  const bool owns_dir = dir.empty();
  // Relative paths are made absolute now: a daemon chdirs to / when it detaches, and class
  // files are created later.
  if (!dir.empty() && dir[0] != '/') {
    boost::system::error_code ec;
    fs::path abs = fs::absolute(dir, fs::current_path(ec));
    if (ec) return Errno(ec.value(), "overflow_dir " + dir);
    dir = abs.string();
  }
  if (owns_dir) {
    StatusOr<std::string> made = MakeDefaultDir();
    if (!made.ok()) return made.status();
    dir = *made;
  } else {
    dir = WithoutTrailingSlashes(dir);
    Status st = CheckGivenDir(dir);
    if (!st.ok()) return st;
  }
  const std::string lock_path = dir + "/" + kLockName;
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (lock_fd < 0) {
    Status st = Errno(errno, "overflow_dir: cannot create " + lock_path);
    boost::system::error_code ec;
    if (owns_dir) fs::remove(dir, ec);  // Ours and empty; an error here changes nothing.
    return st;
  }
  if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd);
    return Status::Error(EBUSY, "overflow_dir " + dir + " is in use by another zbudfs mount");
  }
  std::unique_ptr<OverflowStore> store(new OverflowStore(dir, owns_dir, lock_fd, options));
  // Data files here now belong to a mount that died: we hold the lock, nobody uses them.
  boost::system::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(kDataPrefix, 0) == 0) {
      boost::system::error_code rm_ec;
      if (fs::remove(it->path(), rm_ec)) ++store->leftovers_removed_;
    }
  }
  return store;
}

std::string OverflowStore::DefaultBase() {
  const char* tmp = std::getenv("TMPDIR");
  return (tmp != nullptr && *tmp != '\0') ? tmp : "/var/tmp";
}

std::vector<OverflowStore::Leftover> OverflowStore::FindLeftovers(const std::string& base) {
  std::vector<Leftover> out;
  boost::system::error_code ec;
  const std::time_t now = std::time(nullptr);
  for (fs::directory_iterator it(base, ec), end; !ec && it != end; it.increment(ec)) {
    if (!MaybeDeadDefaultDir(*it, now)) continue;
    const int fd = LockDeadDir(it->path());
    if (fd < 0) continue;
    Leftover l{it->path().string(), 0};
    boost::system::error_code fec;
    for (fs::directory_iterator f(it->path(), fec), fend; !fec && f != fend; f.increment(fec)) {
      struct stat sb;
      if (::lstat(f->path().c_str(), &sb) == 0)
        l.bytes += static_cast<uint64_t>(sb.st_blocks) * 512;
    }
    out.push_back(std::move(l));
    ::close(fd);
  }
  return out;
}

bool OverflowStore::RemoveLeftover(const std::string& dir) {
  const int fd = LockDeadDir(dir);
  if (fd < 0) return false;
  const bool gone = RemoveLockedDir(dir);
  ::close(fd);
  return gone;
}

OverflowStore::OverflowStore(std::string dir, bool owns_dir, int lock_fd,
                             const OverflowOptions& options)
    : dir_(std::move(dir)),
      owns_dir_(owns_dir),
      lock_fd_(lock_fd),
      limit_(options.limit),
      io_(options.io != nullptr ? options.io : &default_io_) {}

OverflowStore::~OverflowStore() {
  boost::system::error_code ec;
  for (int cls = 0; cls < kNumClasses; ++cls) {
    if (classes_[cls].fd >= 0) {
      ::close(classes_[cls].fd);
      fs::remove(DataPath(cls), ec);
    }
  }
  fs::remove(dir_ + "/" + kLockName, ec);
  ::close(lock_fd_);  // Drops the flock.
  if (owns_dir_) fs::remove(dir_, ec);
}

std::string OverflowStore::DataPath(int cls) const {
  return dir_ + "/" + kDataPrefix + std::to_string(SlotSize(cls));
}

Status OverflowStore::OpenClassFile(int cls) {
  MutexLock opening(&open_mu_);
  {
    MutexLock lock(&mu_);
    if (classes_[cls].fd >= 0) return Status::OK();  // Another writer opened it meanwhile.
  }
  const std::string path = DataPath(cls);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return Errno(errno == ENOSPC || errno == EDQUOT ? ENOSPC : EIO,
                 "overflow: cannot create " + path);
  MutexLock lock(&mu_);
  classes_[cls].fd = fd;
  return Status::OK();
}

bool OverflowStore::InPunch(const SizeClass& c, int cls, uint64_t slot) {
  const size_t size = SlotSize(cls);
  for (uint64_t b = slot * size / kBlock; b <= ((slot + 1) * size - 1) / kBlock; ++b) {
    if (b < c.blocks.size() && c.blocks[b].state == Block::kPunching) return true;
  }
  return false;
}

StatusOr<uint64_t> OverflowStore::TakeSlot(int cls) {
  SizeClass& c = classes_[cls];
  const size_t size = SlotSize(cls);
  uint64_t slot = c.high_water;  // A new slot at the end unless a free one turns up.
  while (!c.free.empty()) {
    const uint64_t s = c.free.back();
    c.free.pop_back();
    // A hint may be stale: the slot was taken through another hint, or its block is being
    // punched (then the punch puts it back when it is done).
    if (!c.used[s] && !InPunch(c, cls, s)) {
      slot = s;
      break;
    }
  }
  const uint64_t first = slot * size / kBlock, last = ((slot + 1) * size - 1) / kBlock;
  if (c.blocks.size() <= last) c.blocks.resize(last + 1);
  uint64_t new_blocks = 0;  // Blocks of the slot that take no disk yet: it will.
  for (uint64_t b = first; b <= last; ++b) new_blocks += c.blocks[b].state == Block::kHole;
  const uint64_t limit = limit_.load(std::memory_order_relaxed);
  if (limit != 0 && bytes_used_.load(std::memory_order_relaxed) + new_blocks * kBlock > limit) {
    if (slot < c.high_water) c.free.push_back(slot);
    return Status::Error(ENOSPC, "overflow_limit reached");
  }
  if (slot == c.high_water) {
    ++c.high_water;
    c.used.resize(c.high_water);
    c.check.resize(c.high_water);
  }
  c.used[slot] = true;
  ++c.live;
  slots_in_use_.fetch_add(1, std::memory_order_relaxed);
  for (uint64_t b = first; b <= last; ++b) {
    ++c.blocks[b].live;
    c.blocks[b].state = Block::kOnDisk;
  }
  c.disk_blocks += new_blocks;
  bytes_used_.fetch_add(new_blocks * kBlock, std::memory_order_relaxed);
  return slot;
}

void OverflowStore::ReleaseSlot(int cls, uint64_t slot, PunchList* punch) {
  SizeClass& c = classes_[cls];
  const size_t size = SlotSize(cls);
  punch->fd = c.fd;
  c.used[slot] = false;
  --c.live;
  slots_in_use_.fetch_sub(1, std::memory_order_relaxed);
  for (uint64_t b = slot * size / kBlock; b <= ((slot + 1) * size - 1) / kBlock; ++b) {
    Block& k = c.blocks[b];
    --k.live;
    // A block no slot uses any more gives its disk space back, unless it is the file's
    // last, partly used block (the next slot at the end would start in it).
    if (k.live == 0 && k.state == Block::kOnDisk && punch_works_.load(std::memory_order_relaxed) &&
        (b + 1) * kBlock <= c.high_water * size) {
      k.state = Block::kPunching;
      ++c.punching;
      punch->blocks[punch->n++] = b;
    }
  }
  if (!InPunch(c, cls, slot)) c.free.push_back(slot);
  if (c.free.size() > 2 * (c.high_water - c.live) + 64) {
    // Stale hints piled up (each punch puts its block's slots back): rebuild, lowest on top.
    c.free.clear();
    for (uint64_t s = c.high_water; s-- > 0;) {
      if (!c.used[s] && !InPunch(c, cls, s)) c.free.push_back(s);
    }
  }
  if (c.live == 0 && c.punching == 0) EmptyClass(cls);
}

void OverflowStore::EmptyClass(int cls) {
  SizeClass& c = classes_[cls];
  bytes_used_.fetch_sub(c.disk_blocks * kBlock, std::memory_order_relaxed);
  c.disk_blocks = 0;
  c.high_water = 0;
  c.free.clear();
  c.check.clear();
  c.used.clear();
  c.blocks.clear();
  if (ftruncate(c.fd, 0) != 0) {
    // Nothing lives there any more; the space comes back when the file is removed.
  }
}

void OverflowStore::Punch(int cls, const PunchList& punch) {
  if (punch.n == 0) return;
  bool punched[2] = {false, false};
  for (size_t i = 0; i < punch.n; ++i) {
    punched[i] = io_->Punch(punch.fd, static_cast<off_t>(punch.blocks[i] * kBlock), kBlock) == 0;
    if (!punched[i] && (errno == EOPNOTSUPP || errno == ENOSYS)) {
      punch_works_.store(false, std::memory_order_relaxed);  // The file system cannot.
    }
  }
  MutexLock lock(&mu_);
  SizeClass& c = classes_[cls];
  const size_t size = SlotSize(cls);
  for (size_t i = 0; i < punch.n; ++i) {
    const uint64_t b = punch.blocks[i];
    c.blocks[b].state = punched[i] ? Block::kHole : Block::kOnDisk;
    --c.punching;
    if (punched[i]) {
      --c.disk_blocks;
      bytes_used_.fetch_sub(kBlock, std::memory_order_relaxed);
    }
    // The block's slots are free (none can be taken while it is punched): offer them again.
    for (uint64_t s = b * kBlock / size; s <= ((b + 1) * kBlock - 1) / size; ++s) {
      if (s < c.high_water && !c.used[s] && !InPunch(c, cls, s)) c.free.push_back(s);
    }
  }
  if (c.live == 0 && c.punching == 0) EmptyClass(cls);
}

int OverflowStore::WriteAll(int fd, const void* data, size_t len, off_t off) {
  const auto* p = static_cast<const char*>(data);
  size_t done = 0;
  while (done < len) {
    ssize_t n = io_->Pwrite(fd, p + done, len - done, off + static_cast<off_t>(done));
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n == 0) {
      return ENOSPC;  // A write that makes no progress means a full disk.
    } else {
      return errno != 0 ? errno : EIO;
    }
  }
  return 0;
}

Status OverflowStore::ReadAll(int fd, void* data, size_t len, off_t off) const {
  auto* p = static_cast<char*>(data);
  size_t done = 0;
  while (done < len) {
    ssize_t n = io_->Pread(fd, p + done, len - done, off + static_cast<off_t>(done));
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return Status::Error(EIO, n == 0 ? "overflow read: file truncated under zbudfs"
                                       : std::string("overflow read: ") + std::strerror(errno));
    }
  }
  return Status::OK();
}

StatusOr<uint64_t> OverflowStore::Write(const void* data, size_t len) {
  if (len == 0 || len > kMaxPayload) return Status::Error(EINVAL, "overflow: bad payload length");
  const int cls = ClassOf(len);
  const uint32_t check = CheckValue(data, len);  // Before mu_: hashing needs no lock.
  uint64_t slot;
  int fd;
  {
    MutexLock lock(&mu_);
    if (classes_[cls].fd < 0) {  // The class's first write: create its file, mu_ released.
      lock.Unlock();
      Status st = OpenClassFile(cls);
      if (!st.ok()) return st;
      lock.Lock();
    }
    SizeClass& c = classes_[cls];
    StatusOr<uint64_t> taken = TakeSlot(cls);
    if (!taken.ok()) return taken.status();
    slot = *taken;
    c.check[slot] = check;
    fd = c.fd;
  }
  const int err = WriteAll(fd, data, len, static_cast<off_t>(slot * SlotSize(cls)));
  if (err == 0) return EncodeLoc(cls, slot);
  PunchList punch;
  {
    MutexLock lock(&mu_);
    ReleaseSlot(cls, slot, &punch);
  }
  Punch(cls, punch);
  if (err == ENOSPC || err == EDQUOT) return Status::Error(ENOSPC, "overflow disk is full");
  return Status::Error(EIO, std::string("overflow write: ") + std::strerror(err));
}

Status OverflowStore::Read(uint64_t loc, void* data, size_t len) const {
  const int cls = static_cast<int>(loc >> 56);
  const uint64_t slot = loc & ((uint64_t{1} << 56) - 1);
  if (cls >= kNumClasses || len == 0 || len > SlotSize(cls))
    return Status::Error(EIO, "overflow: bad location");
  int fd;
  uint32_t check;
  {
    MutexLock lock(&mu_);
    const SizeClass& c = classes_[cls];
    if (slot >= c.high_water || !c.used[slot]) return Status::Error(EIO, "overflow: bad location");
    fd = c.fd;
    check = c.check[slot];
  }
  Status st = ReadAll(fd, data, len, static_cast<off_t>(slot * SlotSize(cls)));
  if (!st.ok()) return st;
  if (CheckValue(data, len) != check) {
    return Status::Error(EBADMSG, "overflow read: the check value of " + DataPath(cls) + " slot " +
                                      std::to_string(slot) + " does not match: changed on disk");
  }
  return Status::OK();
}

void OverflowStore::Free(uint64_t loc, size_t len) {
  (void)len;
  const int cls = static_cast<int>(loc >> 56);
  const uint64_t slot = loc & ((uint64_t{1} << 56) - 1);
  PunchList punch;
  {
    MutexLock lock(&mu_);
    ReleaseSlot(cls, slot, &punch);
  }
  Punch(cls, punch);  // No lock held: see the header.
}

}  // namespace zbudfs

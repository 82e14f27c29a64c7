#include "tests/exerciser/file_ops.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "store/page_size.h"
#include "tests/exerciser/result.h"

namespace zbudfs::exerciser {
namespace {

std::string OpenFlagsName(int flags) {
  return Fmt("%s%s%s%s%s",
             (flags & O_ACCMODE) == O_RDWR     ? "RDWR"
             : (flags & O_ACCMODE) == O_RDONLY ? "RDONLY"
                                               : "WRONLY",
             flags & O_CREAT ? "|CREAT" : "", flags & O_APPEND ? "|APPEND" : "",
             flags & O_TRUNC ? "|TRUNC" : "", flags & O_EXCL ? "|EXCL" : "");
}

}  // namespace

void FileOps::Open() {
  Rng& rng = c_.pick.rng();
  const std::string p = c_.pick.File();
  int flags;
  uint64_t r = rng.Below(100);
  flags = r < 65 ? O_RDWR : r < 85 ? O_RDONLY : O_WRONLY;
  if (rng.Chance(80)) flags |= O_CREAT;
  if (rng.Chance(15)) flags |= O_APPEND;
  if (rng.Chance(c_.pick.Over() ? 30 : 7)) flags |= O_TRUNC;
  if ((flags & O_CREAT) && rng.Chance(5)) flags |= O_EXCL;
  const std::string what = "open(" + p + ", " + OpenFlagsName(flags) + ")";
  Res z = CALL(open(c_.model.Z(p).c_str(), flags | O_CLOEXEC, 0644));
  Res rr = CALL(open(c_.model.R(p).c_str(), flags | O_CLOEXEC, 0644));
  if (!c_.log.Same(what, z, rr, false)) return;
  const Handle& h = c_.model.Add(static_cast<int>(z.v), static_cast<int>(rr.v), flags & O_ACCMODE,
                                 (flags & O_APPEND) != 0, p);
  c_.log.Log("  = " + HName(h));
  c_.check.CompareFstat(h, "open");
}

void FileOps::CloseHandle(size_t i) {
  Handle h = c_.model.Remove(i);
  c_.log.Same("close " + HName(h), CALL(close(h.z)), CALL(close(h.r)));
}

void FileOps::Close() {
  if (c_.model.handles().empty()) return;
  CloseHandle(c_.pick.rng().Below(c_.model.handles().size()));
}

void FileOps::SeekBoth(const Handle& h, uint64_t off) {
  c_.log.Same(Fmt("lseek %s %llu", HName(h).c_str(), static_cast<unsigned long long>(off)),
              CALL(lseek(h.z, static_cast<off_t>(off), SEEK_SET)),
              CALL(lseek(h.r, static_cast<off_t>(off), SEEK_SET)));
}

void FileOps::Write() {
  Rng& rng = c_.pick.rng();
  Handle* h = c_.pick.PickHandle(true);
  if (!h) return;
  const uint64_t size = c_.model.RefSize(*h);
  uint64_t len = c_.pick.Len();
  uint64_t off = c_.pick.Offset(size, len);
  if (c_.pick.Over() && off + len > size)
    len = size > off ? std::max<uint64_t>(1, size - off) : rng.Range(1, 4096);
  const int kind = c_.data.Fill(rng, len);
  const char* kind_name = DataGen::kKindNames[kind];
  const uint8_t* buf = c_.data.data();
  const bool positional = !h->append && rng.Chance(85);
  if (positional) {
    const std::string what =
        Fmt("pwrite %s off=%llu len=%llu %s", HName(*h).c_str(),
            static_cast<unsigned long long>(off), static_cast<unsigned long long>(len), kind_name);
    c_.log.Same(what, CALL(pwrite(h->z, buf, len, static_cast<off_t>(off))),
                CALL(pwrite(h->r, buf, len, static_cast<off_t>(off))));
  } else {
    if (!h->append) SeekBoth(*h, off);
    const std::string what = Fmt("write %s len=%llu %s", HName(*h).c_str(),
                                 static_cast<unsigned long long>(len), kind_name);
    c_.log.Same(what, CALL(write(h->z, buf, len)), CALL(write(h->r, buf, len)));
    c_.log.Same("  position", CALL(lseek(h->z, 0, SEEK_CUR)), CALL(lseek(h->r, 0, SEEK_CUR)));
  }
  c_.check.CompareFstat(*h, "write");
}

void FileOps::Read() {
  Rng& rng = c_.pick.rng();
  Handle* h = c_.pick.PickHandle(false, true);
  if (!h) return;
  const uint64_t size = c_.model.RefSize(*h);
  uint64_t len = rng.Chance(10) ? rng.Range(kMiB, 2 * kMiB) : c_.pick.Len();
  uint64_t off = rng.Chance(10) ? size + rng.Below(10000) : rng.Below(size + 1);
  if (rng.Chance(20)) off = off / kPageSize * kPageSize;
  uint8_t* zb = c_.check.ZBuf(len);
  uint8_t* rb = c_.check.RBuf(len);
  const bool positional = rng.Chance(80);
  std::string what;
  Res z, r;
  if (positional) {
    what = Fmt("pread %s off=%llu len=%llu", HName(*h).c_str(),
               static_cast<unsigned long long>(off), static_cast<unsigned long long>(len));
    z = CALL(pread(h->z, zb, len, static_cast<off_t>(off)));
    r = CALL(pread(h->r, rb, len, static_cast<off_t>(off)));
  } else {
    SeekBoth(*h, off);
    what = Fmt("read %s len=%llu", HName(*h).c_str(), static_cast<unsigned long long>(len));
    z = CALL(read(h->z, zb, len));
    r = CALL(read(h->r, rb, len));
  }
  if (!c_.log.Same(what, z, r)) return;
  if (std::memcmp(zb, rb, static_cast<size_t>(r.v)) != 0) {
    size_t i = 0;
    while (zb[i] == rb[i]) ++i;
    c_.log.Fail(Fmt("%s: data differs at file offset %llu (zbudfs 0x%02x, reference 0x%02x)",
                    what.c_str(), static_cast<unsigned long long>(off + i), zb[i], rb[i]));
  }
}

void FileOps::DirectRead() {
  Rng& rng = c_.pick.rng();
  Handle* h = c_.pick.PickHandle(false, true);
  if (!h || !Readable(*h)) return;
  const uint64_t size = c_.model.RefSize(*h);
  // (The handle may be a directory's: then both reopens fail alike.)
  Res oz = CALL(open(Fmt("/proc/self/fd/%d", h->z).c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC));
  Res orf = CALL(open(Fmt("/proc/self/fd/%d", h->r).c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC));
  if (orf.v >= 0) close(static_cast<int>(orf.v));
  if (!c_.log.Same("O_DIRECT reopen " + HName(*h), oz, orf, false)) return;
  const int dz = static_cast<int>(oz.v);
  const uint64_t off = rng.Below(size / kPageSize + 2) * kPageSize;
  const uint64_t len = rng.Range(1, 64) * kPageSize;
  void* zb = nullptr;
  if (posix_memalign(&zb, kPageSize, len) != 0) std::abort();
  uint8_t* rb = c_.check.RBuf(len);
  const std::string what =
      Fmt("O_DIRECT pread %s off=%llu len=%llu", HName(*h).c_str(),
          static_cast<unsigned long long>(off), static_cast<unsigned long long>(len));
  Res z = CALL(pread(dz, zb, len, static_cast<off_t>(off)));
  Res r = CALL(pread(h->r, rb, len, static_cast<off_t>(off)));
  close(dz);
  if (c_.log.Same(what, z, r) && std::memcmp(zb, rb, static_cast<size_t>(r.v)) != 0) {
    size_t i = 0;
    while (static_cast<uint8_t*>(zb)[i] == rb[i]) ++i;
    c_.log.Fail(Fmt("%s: data differs at file offset %llu", what.c_str(),
                    static_cast<unsigned long long>(off + i)));
  }
  free(zb);
}

void FileOps::Sync() {
  Handle* h = c_.pick.PickHandle();
  if (!h) return;
  const bool data = c_.pick.rng().Chance(50);
  c_.log.Same(Fmt("%s %s", data ? "fdatasync" : "fsync", HName(*h).c_str()),
              CALL(data ? fdatasync(h->z) : fsync(h->z)),
              CALL(data ? fdatasync(h->r) : fsync(h->r)));
}

void FileOps::DropCache() {
  Handle* h = c_.pick.PickHandle();
  if (!h) return;
  c_.log.Same(Fmt("fsync+fadvise(DONTNEED) %s", HName(*h).c_str()), CALL(fsync(h->z)),
              CALL(fsync(h->r)));
  posix_fadvise(h->z, 0, 0, POSIX_FADV_DONTNEED);
}

void FileOps::Fstat() {
  Handle* h = c_.pick.PickHandle();
  if (!h) return;
  c_.log.Log("fstat " + HName(*h));
  c_.check.CompareFstat(*h, "fstat");
}

void FileOps::Seek() {
  Rng& rng = c_.pick.rng();
  Handle* h = c_.pick.PickHandle();
  if (!h) return;
  struct stat st;
  if (fstat(h->r, &st) != 0 || !S_ISREG(st.st_mode)) return;
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const uint64_t r = rng.Below(100);
  uint64_t off = r < 60   ? rng.Below(size + 1)
                 : r < 80 ? rng.Below(size / kPageSize + 1) * kPageSize
                 : r < 90 ? size + rng.Below(3 * kPageSize)
                          : 0;
  const bool data = rng.Chance(50);
  const std::string what =
      Fmt("lseek %s %s off=%llu (size %llu)", data ? "SEEK_DATA" : "SEEK_HOLE", HName(*h).c_str(),
          static_cast<unsigned long long>(off), static_cast<unsigned long long>(size));
  Res z = CALL(lseek(h->z, static_cast<off_t>(off), data ? SEEK_DATA : SEEK_HOLE));
  c_.log.Log(what + " -> zbudfs " + Show(z));
  if (z.v >= 0) lseek(h->r, z.v, SEEK_SET);  // Keep the two file positions equal.
  seek_->Check(what, h->r, off, size, data, z);
}

void FileOps::CompareHandle() {
  Handle* h = c_.pick.PickHandle(false, true);
  if (!h || !Readable(*h)) return;
  const uint64_t size = c_.model.RefSize(*h);
  c_.log.Log(Fmt("compare whole %s (size %llu)", HName(*h).c_str(),
                 static_cast<unsigned long long>(size)));
  c_.check.CompareFstat(*h, "compare");
  c_.check.CompareWhole("compare " + HName(*h), h->z, h->r, size, false);
}

}  // namespace zbudfs::exerciser

#include "tests/exerciser/size_ops.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "store/page_size.h"
#include "tests/exerciser/result.h"

namespace zbudfs::exerciser {

uint64_t SizeOps::PickNewSize(uint64_t size) {
  Rng& rng = c_.pick.rng();
  uint64_t r = rng.Below(100), ns;
  if (c_.pick.Over() || r < 40) {
    ns = rng.Below(size + 1);
  } else if (r < 50) {
    ns = 0;
  } else if (r < 70) {
    ns = size + rng.Below(kMiB);
  } else if (r < 90) {
    ns = rng.Below(size / kPageSize + 3) * kPageSize + rng.Range(0, 16) - 8;
    if (ns > (1ull << 62)) ns = 0;
  } else {
    ns = rng.Below(c_.opt.max_offset);
  }
  return ns;
}

void SizeOps::Truncate() {
  const bool by_path = c_.pick.rng().Chance(30);
  Handle* h = by_path ? nullptr : c_.pick.PickHandle(true);
  std::string p = by_path || !h ? c_.pick.File() : h->name;
  uint64_t size = 0;
  if (h) {
    size = c_.model.RefSize(*h);
  } else {
    struct stat st;
    if (stat(c_.model.R(p).c_str(), &st) == 0) size = static_cast<uint64_t>(st.st_size);
  }
  const uint64_t ns = PickNewSize(size);
  if (h) {
    c_.log.Same(Fmt("ftruncate %s %llu (was %llu)", HName(*h).c_str(),
                    static_cast<unsigned long long>(ns), static_cast<unsigned long long>(size)),
                CALL(ftruncate(h->z, static_cast<off_t>(ns))),
                CALL(ftruncate(h->r, static_cast<off_t>(ns))));
    c_.check.CompareFstat(*h, "ftruncate");
  } else {
    c_.log.Same(Fmt("truncate %s %llu (was %llu)", p.c_str(), static_cast<unsigned long long>(ns),
                    static_cast<unsigned long long>(size)),
                CALL(truncate(c_.model.Z(p).c_str(), static_cast<off_t>(ns))),
                CALL(truncate(c_.model.R(p).c_str(), static_cast<off_t>(ns))));
  }
}

void SizeOps::Fallocate() {
  Rng& rng = c_.pick.rng();
  Handle* h = c_.pick.PickHandle(true);
  if (!h) return;
  const uint64_t size = c_.model.RefSize(*h);
  uint64_t off =
      rng.Chance(50) ? rng.Below(size + 64 * 1024) : rng.Below(size / kPageSize + 2) * kPageSize;
  uint64_t len = rng.Chance(50)
                     ? rng.Range(1, 3 * kPageSize)
                     : rng.Range(1, 1024) * kPageSize - (rng.Chance(50) ? 0 : rng.Below(kPageSize));
  if (rng.Chance(5)) len = rng.Range(1, 4 * kMiB);
  const uint64_t r = rng.Below(100);
  if (r < 55) {
    PunchHole(h, off, len, size);
  } else if (r < 85) {
    ZeroRange(h, off, len, size);
  } else {
    Allocate(h, off, len, size);
  }
  c_.check.CompareFstat(*h, "fallocate");
}

void SizeOps::PunchHole(Handle* h, uint64_t off, uint64_t len, uint64_t size) {
  constexpr int kMode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
  c_.log.Same(Fmt("fallocate PUNCH|KEEP %s off=%llu len=%llu (size %llu)", HName(*h).c_str(),
                  static_cast<unsigned long long>(off), static_cast<unsigned long long>(len),
                  static_cast<unsigned long long>(size)),
              CALL(fallocate(h->z, kMode, static_cast<off_t>(off), static_cast<off_t>(len))),
              CALL(fallocate(h->r, kMode, static_cast<off_t>(off), static_cast<off_t>(len))));
}

void SizeOps::ZeroRange(Handle* h, uint64_t off, uint64_t len, uint64_t size) {
  const bool keep = c_.pick.rng().Chance(50);
  if (!keep && c_.pick.Over()) len = std::min<uint64_t>(len, size > off ? size - off + 1 : 1);
  const std::string what =
      Fmt("fallocate ZERO_RANGE%s %s off=%llu len=%llu (size %llu)", keep ? "|KEEP" : "",
          HName(*h).c_str(), static_cast<unsigned long long>(off),
          static_cast<unsigned long long>(len), static_cast<unsigned long long>(size));
  Res z = CALL(fallocate(h->z, FALLOC_FL_ZERO_RANGE | (keep ? FALLOC_FL_KEEP_SIZE : 0),
                         static_cast<off_t>(off), static_cast<off_t>(len)));
  Res r{0, 0};
  if (!Writable(*h)) {
    r = Res{-1, EBADF};
  } else {
    const uint64_t end = keep ? std::min(off + len, size) : off + len;
    if (end > off) WriteRefZeros(*h, off, end);
  }
  c_.log.Same(what, z, r);
}

void SizeOps::WriteRefZeros(const Handle& h, uint64_t off, uint64_t end) {
  int w = open(Fmt("/proc/self/fd/%d", h.r).c_str(), O_WRONLY | O_CLOEXEC);
  if (w < 0) c_.log.Fail(Fmt("reopen of the reference fd: %s", strerror(errno)));
  std::vector<uint8_t> zeros(std::min<uint64_t>(end - off, kMiB), 0);
  for (uint64_t pos = off; pos < end;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(end - pos, zeros.size()));
    if (pwrite(w, zeros.data(), n, static_cast<off_t>(pos)) != static_cast<ssize_t>(n)) {
      c_.log.Fail(Fmt("zero-range emulation on the reference: %s", strerror(errno)));
    }
    pos += n;
  }
  close(w);
}

void SizeOps::Allocate(Handle* h, uint64_t off, uint64_t len, uint64_t size) {
  const bool keep = c_.pick.rng().Chance(50);
  len = std::min<uint64_t>(len, 2 * kMiB);
  if (c_.pick.Over()) len = std::min<uint64_t>(len, size > off ? size - off + 1 : 1);
  const int mode = keep ? FALLOC_FL_KEEP_SIZE : 0;
  c_.log.Same(Fmt("fallocate %s %s off=%llu len=%llu (size %llu)", keep ? "KEEP" : "0",
                  HName(*h).c_str(), static_cast<unsigned long long>(off),
                  static_cast<unsigned long long>(len), static_cast<unsigned long long>(size)),
              CALL(fallocate(h->z, mode, static_cast<off_t>(off), static_cast<off_t>(len))),
              CALL(fallocate(h->r, mode, static_cast<off_t>(off), static_cast<off_t>(len))));
}

}  // namespace zbudfs::exerciser

#include "tests/exerciser/checker.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "store/page_size.h"
#include "tests/exerciser/extents.h"
#include "tests/exerciser/listing.h"
#include "tests/exerciser/result.h"
#include "tests/exerciser/rng.h"

namespace zbudfs::exerciser {
namespace {

using Ranges = std::vector<std::pair<uint64_t, uint64_t>>;

// The extents rounded out to whole pages (within size), sorted and merged.
Ranges PageAlignedUnion(Ranges ext, uint64_t size) {
  std::sort(ext.begin(), ext.end());
  Ranges merged;
  for (auto [s, e] : ext) {
    s = s / kPageSize * kPageSize;
    e = std::min(size, (e + kPageSize - 1) / kPageSize * kPageSize);
    if (!merged.empty() && s <= merged.back().second) {
      merged.back().second = std::max(merged.back().second, e);
    } else {
      merged.emplace_back(s, e);
    }
  }
  return merged;
}

}  // namespace

uint8_t* Checker::ZBuf(size_t n) {
  if (zbuf_.size() < n) zbuf_.resize(n);
  return zbuf_.data();
}

uint8_t* Checker::RBuf(size_t n) {
  if (rbuf_.size() < n) rbuf_.resize(n);
  return rbuf_.data();
}

void Checker::CompareRange(const std::string& what, int zfd, int rfd, uint64_t off, uint64_t n) {
  while (n > 0) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, kMiB));
    uint8_t* zb = ZBuf(chunk);
    uint8_t* rb = RBuf(chunk);
    ssize_t zn = pread(zfd, zb, chunk, static_cast<off_t>(off));
    int zerr = errno;
    ssize_t rn = pread(rfd, rb, chunk, static_cast<off_t>(off));
    int rerr = errno;
    if (zn != rn) {
      log_->Fail(Fmt("%s: pread(%llu, %zu) returned %zd (%s) on zbudfs, %zd (%s) on the reference",
                     what.c_str(), static_cast<unsigned long long>(off), chunk, zn,
                     zn < 0 ? ErrName(zerr).c_str() : "ok", rn,
                     rn < 0 ? ErrName(rerr).c_str() : "ok"));
    }
    if (rn <= 0) return;
    if (std::memcmp(zb, rb, static_cast<size_t>(rn)) != 0) {
      size_t i = 0;
      while (zb[i] == rb[i]) ++i;
      log_->Fail(
          Fmt("%s: data differs at offset %llu (zbudfs byte 0x%02x, reference 0x%02x; "
              "compared [%llu, +%zd))",
              what.c_str(), static_cast<unsigned long long>(off + i), zb[i], rb[i],
              static_cast<unsigned long long>(off), rn));
    }
    off += static_cast<uint64_t>(rn);
    n -= static_cast<uint64_t>(rn);
  }
}

void Checker::CompareWhole(const std::string& what, int zfd, int rfd, uint64_t size,
                           bool use_zbud_extents) {
  Ranges ext = Extents(rfd, size);
  if (use_zbud_extents) {
    Ranges zext = Extents(zfd, size);
    ext.insert(ext.end(), zext.begin(), zext.end());
  }
  for (auto [s, e] : PageAlignedUnion(std::move(ext), size)) {
    CompareRange(what, zfd, rfd, s, e - s);
  }
  // Holes: a few samples, and the last bytes (EOF).
  Rng g{opt_.seed ^ size};
  for (int i = 0; i < 8 && size > 0; ++i) {
    uint64_t off = g.Below(size);
    CompareRange(what + " (hole sample)", zfd, rfd, off, std::min<uint64_t>(kPageSize, size - off));
  }
  if (size > 0) CompareRange(what + " (tail)", zfd, rfd, size - std::min<uint64_t>(size, 100), 100);
}

void Checker::CompareFstat(const Handle& h, const char* after) {
  struct stat zs, rs;
  Res z = CALL(fstat(h.z, &zs));
  Res r = CALL(fstat(h.r, &rs));
  if ((z.v < 0) != (r.v < 0))
    log_->Fail(Fmt("fstat %s after %s: %s vs %s", HName(h).c_str(), after, Show(z).c_str(),
                   Show(r).c_str()));
  if (z.v < 0) return;
  if (zs.st_size != rs.st_size) {
    log_->Fail(Fmt("st_size of %s after %s: zbudfs %lld, reference %lld", HName(h).c_str(), after,
                   static_cast<long long>(zs.st_size), static_cast<long long>(rs.st_size)));
  }
  if (zs.st_nlink != rs.st_nlink) {
    log_->Fail(Fmt("st_nlink of %s after %s: zbudfs %llu, reference %llu", HName(h).c_str(), after,
                   static_cast<unsigned long long>(zs.st_nlink),
                   static_cast<unsigned long long>(rs.st_nlink)));
  }
}

void Checker::CompareStat(const std::string& p, const char* after) {
  struct stat zs, rs;
  Res z = CALL(lstat(model_->Z(p).c_str(), &zs));
  Res r = CALL(lstat(model_->R(p).c_str(), &rs));
  log_->Same(Fmt("lstat %s (after %s)", p.c_str(), after), z, r);
  if (z.v < 0) return;
  if (zs.st_mode != rs.st_mode || zs.st_nlink != rs.st_nlink || (zs.st_size != rs.st_size)) {
    log_->Fail(
        Fmt("lstat %s after %s: zbudfs mode %o nlink %llu size %lld; reference mode %o nlink %llu "
            "size %lld",
            p.c_str(), after, zs.st_mode, static_cast<unsigned long long>(zs.st_nlink),
            static_cast<long long>(zs.st_size), rs.st_mode,
            static_cast<unsigned long long>(rs.st_nlink), static_cast<long long>(rs.st_size)));
  }
}

void Checker::CompareTree(const std::string& rel, bool content) {
  auto z = List(rel.empty() ? model_->zroot() : model_->Z(rel));
  auto r = List(rel.empty() ? model_->rroot() : model_->R(rel));
  if (z.first != r.first || z.second != r.second) {
    log_->Fail(Fmt("tree compare: directory /%s: zbudfs %s [%s], reference %s [%s]", rel.c_str(),
                   ErrName(z.first).c_str(), Join(z.second).c_str(), ErrName(r.first).c_str(),
                   Join(r.second).c_str()));
  }
  for (const auto& n : r.second) {
    const std::string p = rel.empty() ? n : rel + "/" + n;
    CompareStat(p, "tree walk");
    struct stat st;
    lstat(model_->R(p).c_str(), &st);
    if (S_ISDIR(st.st_mode)) {
      CompareTree(p, content);
    } else if (S_ISREG(st.st_mode) && content) {
      int zf = open(model_->Z(p).c_str(), O_RDONLY | O_CLOEXEC);
      int rf = open(model_->R(p).c_str(), O_RDONLY | O_CLOEXEC);
      if (zf < 0 || rf < 0) log_->Fail("tree compare: cannot open " + p + ": " + strerror(errno));
      CompareWhole("tree compare " + p, zf, rf, static_cast<uint64_t>(st.st_size),
                   model_->handles().empty());
      close(zf);
      close(rf);
    }
  }
}

}  // namespace zbudfs::exerciser

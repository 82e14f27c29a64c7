#include "tests/exerciser/seek_checker.h"

#include <cerrno>
#include <cstdio>

#include "store/page_size.h"
#include "tests/exerciser/extents.h"

namespace zbudfs::exerciser {

void SeekChecker::Check(const std::string& what, int rfd, uint64_t off, uint64_t size, bool data,
                        Res z) {
  if (data) {
    CheckData(what, rfd, off, size, z);
  } else {
    CheckHole(what, rfd, off, size, z);
  }
}

void SeekChecker::CheckData(const std::string& what, int rfd, uint64_t off, uint64_t size, Res z) {
  const uint64_t got = static_cast<uint64_t>(z.v);
  if (z.v < 0) {
    if (z.err != ENXIO) return Violation(what + ": " + Show(z));
    if (off < size && RefZeros(rfd, off, size) == false) {
      Violation(what +
                ": ENXIO, but there is data after the offset (the file holds non-zero bytes "
                "before EOF)");
    }
  } else if (got < off || got >= size) {
    Violation(what +
              Fmt(": returned %llu, outside [offset, EOF)", static_cast<unsigned long long>(got)));
  } else if (RefZeros(rfd, off, got) == false) {
    Violation(what +
              Fmt(": returned %llu, skipping non-zero data", static_cast<unsigned long long>(got)));
  }
}

void SeekChecker::CheckHole(const std::string& what, int rfd, uint64_t off, uint64_t size, Res z) {
  const uint64_t got = static_cast<uint64_t>(z.v);
  if (z.v < 0) {
    if (z.err != ENXIO || off < size) Violation(what + ": " + Show(z) + " before EOF");
  } else if (got < off || got > size) {
    Violation(what +
              Fmt(": returned %llu, outside [offset, EOF]", static_cast<unsigned long long>(got)));
  } else if (got < size &&
             RefZeros(rfd, got, std::min(size, got / kPageSize * kPageSize + kPageSize)) == false) {
    Violation(what + Fmt(": returned %llu, a hole over non-zero data",
                         static_cast<unsigned long long>(got)));
  }
}

void SeekChecker::Violation(const std::string& what) {
  ++violations_;
  log_->Log("  SEEK VIOLATION: " + what);
  if (violations_ <= 5) {
    std::fprintf(stderr, "%sexerciser: SEEK_DATA/SEEK_HOLE violation at op #%llu (seed %llu): %s\n",
                 opt_.job_tag.c_str(), static_cast<unsigned long long>(log_->op()),
                 static_cast<unsigned long long>(opt_.seed), what.c_str());
  }
}

}  // namespace zbudfs::exerciser

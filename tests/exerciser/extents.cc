#include "tests/exerciser/extents.h"

#include <unistd.h>

#include <algorithm>

#include "tests/exerciser/options.h"

namespace zbudfs::exerciser {

std::vector<std::pair<uint64_t, uint64_t>> Extents(int fd, uint64_t size) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  const off_t saved = lseek(fd, 0, SEEK_CUR);  // SEEK_DATA/SEEK_HOLE move the position.
  off_t pos = 0;
  while (static_cast<uint64_t>(pos) < size) {
    off_t d = lseek(fd, pos, SEEK_DATA);
    if (d < 0) break;
    off_t h = lseek(fd, d, SEEK_HOLE);
    if (h < 0) h = static_cast<off_t>(size);
    out.emplace_back(d, std::min<uint64_t>(h, size));
    pos = h;
  }
  lseek(fd, saved, SEEK_SET);
  return out;
}

std::optional<bool> RefZeros(int rfd, uint64_t a, uint64_t b) {
  if (a >= b) return true;
  uint64_t budget = 4 * kMiB;
  for (auto [s, e] : Extents(rfd, b)) {
    s = std::max(s, a);
    if (s >= e) continue;
    if (e - s > budget) return std::nullopt;
    budget -= e - s;
    std::vector<uint8_t> buf(e - s);
    if (pread(rfd, buf.data(), buf.size(), static_cast<off_t>(s)) !=
        static_cast<ssize_t>(buf.size()))
      return std::nullopt;
    for (uint8_t c : buf) {
      if (c != 0) return false;
    }
  }
  return true;
}

}  // namespace zbudfs::exerciser

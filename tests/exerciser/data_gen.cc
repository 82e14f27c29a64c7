#include "tests/exerciser/data_gen.h"

#include <algorithm>
#include <cstring>

#include "store/page_size.h"

namespace zbudfs::exerciser {
namespace {

const char* const kWords[] = {"alpha ",    "beta ",    "gamma ", "page ",     "zbud ", "store ",
                              "overflow ", "reclaim ", "4096 ",  "compress ", "\n",    "the ",
                              "of ",       "mount ",   "fuse ",  "kernel "};

void FillRandom(uint8_t* p, size_t n, Rng& g) {  // Incompressible.
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = g.Next();
    std::memcpy(p + i, &v, 8);
  }
  for (; i < n; ++i) p[i] = static_cast<uint8_t>(g.Next());
}

void FillText(uint8_t* p, size_t n, Rng& g) {  // Compressible.
  size_t i = 0;
  while (i < n) {
    const char* w = kWords[g.Below(16)];
    size_t l = std::min(std::strlen(w), n - i);
    std::memcpy(p + i, w, l);
    i += l;
  }
}

void FillHalf(uint8_t* p, size_t n, Rng& g) {  // Half random, half zeros: compresses about 2x.
  for (size_t i = 0; i < n; i += 64) {
    size_t l = std::min<size_t>(64, n - i);
    if (g.Chance(50)) {
      std::memset(p + i, 0, l);
    } else {
      for (size_t j = 0; j < l; ++j) p[i + j] = static_cast<uint8_t>(g.Next());
    }
  }
}

// Fills n bytes with one of the kinds 0..4.
void FillKind(uint8_t* p, size_t n, int kind, Rng& g) {
  switch (kind) {
    case 0:
      return FillRandom(p, n, g);
    case 1:
      return FillText(p, n, g);
    case 2:
      std::memset(p, 0, n);
      return;
    case 3: {  // One repeated 8-byte word (a same-filled page).
      uint64_t v = g.Next();
      for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(v >> (8 * (i % 8)));
      return;
    }
    default:
      return FillHalf(p, n, g);
  }
}

}  // namespace

const char* const DataGen::kKindNames[] = {"random", "text", "zeros", "same", "half", "mixed"};

int DataGen::Fill(Rng& rng, size_t n) {
  if (buf_.size() < n) buf_.resize(n);
  const int kind = static_cast<int>(rng.Below(6));
  Rng g{rng.Next()};
  if (kind < 5) {
    FillKind(buf_.data(), n, kind, g);
  } else {  // Mixed: a kind per page.
    for (size_t i = 0; i < n; i += kPageSize) {
      FillKind(buf_.data() + i, std::min<size_t>(kPageSize, n - i), static_cast<int>(g.Below(5)),
               g);
    }
  }
  return kind;
}

}  // namespace zbudfs::exerciser

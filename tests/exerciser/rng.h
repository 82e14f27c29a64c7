// Random numbers: splitmix64, so that a seed gives the same sequence on every machine and
// compiler (the standard library's distributions do not promise that). Not thread-safe; each
// user owns its Rng.
#ifndef ZBUDFS_TESTS_EXERCISER_RNG_H_
#define ZBUDFS_TESTS_EXERCISER_RNG_H_

#include <cstdint>

namespace zbudfs::exerciser {

struct Rng {
  uint64_t s;
  uint64_t Next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : Next() % n; }
  uint64_t Range(uint64_t lo, uint64_t hi) { return lo + Below(hi - lo + 1); }  // Inclusive.
  bool Chance(unsigned percent) { return Below(100) < percent; }
};

}  // namespace zbudfs::exerciser

#endif  // ZBUDFS_TESTS_EXERCISER_RNG_H_

// The bytes operations write: one buffer, refilled before each write or mmap store with a
// randomly chosen kind of data (random, text, zeros, a repeated word, half zeros, or a
// mix per page), so that every path of the page codec is exercised.
#ifndef ZBUDFS_TESTS_EXERCISER_DATA_GEN_H_
#define ZBUDFS_TESTS_EXERCISER_DATA_GEN_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tests/exerciser/rng.h"

namespace zbudfs::exerciser {

class DataGen {
 public:
  // The kinds' names for the log, indexed by what Fill returns.
  static const char* const kKindNames[];

  DataGen() = default;
  DataGen(const DataGen&) = delete;
  DataGen& operator=(const DataGen&) = delete;

  // Fills data()[0, n) with a kind of data chosen by rng; returns the kind.
  int Fill(Rng& rng, size_t n);
  const uint8_t* data() const { return buf_.data(); }

 private:
  std::vector<uint8_t> buf_;
};

}  // namespace zbudfs::exerciser

#endif  // ZBUDFS_TESTS_EXERCISER_DATA_GEN_H_

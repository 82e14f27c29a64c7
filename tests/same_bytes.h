// Byte-buffer comparisons for the unit tests (tests/store, tests/fs) that say where buffers
// differ: EXPECT_TRUE(SameBytes(got, want)) fails with the first differing offset, how many
// bytes differ and a few bytes of each side from there, where EXPECT_EQ on two 4 MiB vectors
// would print their first 32 bytes and `memcmp(...) == 0` nothing at all. No state.
#ifndef ZBUDFS_TESTS_SAME_BYTES_H_
#define ZBUDFS_TESTS_SAME_BYTES_H_

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

namespace zbudfs::test {

namespace same_bytes_internal {

// Up to 8 bytes of p[from, n) in hex, with "..." when there are more.
inline std::string Hex(const uint8_t* p, size_t from, size_t n) {
  std::string out;
  const size_t end = from + 8 < n ? from + 8 : n;
  for (size_t i = from; i < end; ++i) {
    char b[4];
    std::snprintf(b, sizeof(b), "%02x ", p[i]);
    out += b;
  }
  if (end < n) out += "...";
  return out;
}

}  // namespace same_bytes_internal

// Whether got[0, n) and want[0, n) hold the same bytes; if not, where and how they differ.
inline ::testing::AssertionResult SameBytes(const void* got, const void* want, size_t n) {
  const auto* g = static_cast<const uint8_t*>(got);
  const auto* w = static_cast<const uint8_t*>(want);
  size_t first = n, differing = 0;
  for (size_t i = 0; i < n; ++i) {
    if (g[i] == w[i]) continue;
    if (differing++ == 0) first = i;
  }
  if (differing == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << differing << " of " << n << " bytes differ, the first at offset " << first
         << "\n  got:  " << same_bytes_internal::Hex(g, first, n)
         << "\n  want: " << same_bytes_internal::Hex(w, first, n);
}

// The same for two whole buffers, which must also have the same length.
inline ::testing::AssertionResult SameBytes(std::span<const uint8_t> got,
                                            std::span<const uint8_t> want) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure() << "got " << got.size() << " bytes, want " << want.size();
  }
  return SameBytes(got.data(), want.data(), got.size());
}

// Whether p[0, n) is all zeros; if not, where the first other byte is.
inline ::testing::AssertionResult AllZeroBytes(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) {
    if (b[i] == 0) continue;
    return ::testing::AssertionFailure()
           << "byte " << i << " of " << n << " is not zero: " << same_bytes_internal::Hex(b, i, n);
  }
  return ::testing::AssertionSuccess();
}

}  // namespace zbudfs::test

#endif  // ZBUDFS_TESTS_SAME_BYTES_H_

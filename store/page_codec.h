// PageCodec: one 4 KiB page in, its cheapest stored form out, and back.
//
// Three forms, tried in this order:
//   * same-filled: every 8-byte word of the page is equal (all zeros is the common case);
//     stored as that one word: no pool space, no compression call;
//   * compressed: zstd at the configured level, with a 4-byte content checksum so that a
//     corrupted payload is detected on decompression rather than returned as data;
//   * raw ("huge"): the compressed form would exceed zbud's 3968-byte limit, so the page is
//     kept as is. Never stored larger than 4096 bytes, never a failure.
//
// Contexts: one ZSTD_CCtx and one ZSTD_DCtx per thread, created on first use and reused
// (a fresh context per call is 2-4x slower). No locks: everything here is per thread.
#ifndef ZBUDFS_STORE_PAGE_CODEC_H_
#define ZBUDFS_STORE_PAGE_CODEC_H_

#include <cstddef>
#include <cstdint>

#include "store/status.h"

namespace zbudfs {

class PageCodec {
 public:
  static constexpr size_t kPageSize = 4096;
  static constexpr size_t kMaxCompressed = 3968;  // zbud's largest allocation.

  // True if every 8-byte word of the page equals the first; *word gets that word.
  static bool IsSameFilled(const void* page, uint64_t* word);

  // Fills a page with one repeated 8-byte word.
  static void FillSame(void* page, uint64_t word);

  // Compresses a page at `level` into out (capacity kPageSize). Returns the compressed size
  // if it is at most kMaxCompressed, or 0 if the page should be kept raw.
  static size_t Compress(const void* page, int level, void* out);

  // Decompresses src[0..len) into page. Errors: EIO if the payload is corrupt, fails its
  // checksum, or does not decode to exactly kPageSize bytes.
  static Status Decompress(const void* src, size_t len, void* page);

  // The valid zstd level range on this build (negative levels are the fast ones).
  static int MinLevel();
  static int MaxLevel();
};

}  // namespace zbudfs

#endif  // ZBUDFS_STORE_PAGE_CODEC_H_

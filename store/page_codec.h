// PageCodec: one 4 KiB page in, its cheapest stored form out, and back.
//
// Three forms, tried in this order:
//   * same-filled: every 8-byte word of the page is equal (all zeros is the common case);
//     stored as that one word: no pool space, no compression call;
//   * compressed: a zstd frame at the configured level of the page without its trailing
//     zero bytes (the frame's content size says how many it holds; Decompress zero-fills the
//     rest), magicless (ZSTD_f_zstd1_magicless) and without zstd's own content checksum,
//     followed by a 4-byte check value: the low 32 bits of XXH3-64 of the frame bytes,
//     little-endian. A corrupted payload is detected before it is decoded (EIO, never
//     data). Hashing the frame instead of letting zstd hash the 4 KiB page is cheaper both
//     ways, as the frame is smaller, and the payload is no larger: the 4 bytes of the check
//     replace the 4 of zstd's magic number.
//     CompressFastFirst tries a fast level first and keeps its result when it is already
//     small enough (in zbud, any payload up to half a page costs half a page: compressing
//     it harder saves no memory), which makes writes of well-compressible data much faster.
//     Leaving out the zero tail (a file's last page, padding, fio's compressible buffers)
//     saves zstd the work of the run and, when the rest is one or two sequences, the
//     building of three entropy tables for them (zstd does that for every tiny block).
//     The measurements behind these choices are in docs/BENCHMARKS.md;
//   * raw ("huge"): the compressed form would exceed zbud's 3968-byte limit, so the page is
//     kept as is. Never stored larger than 4096 bytes, never a failure.
//
// Contexts: three ZSTD_CCtx (the fast level, the configured level and kAfterRawLevel) and one
// ZSTD_DCtx per thread, created on first use and reused (a fresh context per call is several
// times slower). No locks: everything here is per thread.
#ifndef ZBUDFS_STORE_PAGE_CODEC_H_
#define ZBUDFS_STORE_PAGE_CODEC_H_

#include <cstddef>
#include <cstdint>

#include "store/page_size.h"
#include "store/status.h"

namespace zbudfs {

class PageCodec {
 public:
  static constexpr size_t kMaxCompressed = 3968;  // zbud's largest allocation.
  static constexpr size_t kCheckSize = 4;         // The check value after the frame.

  // True if every 8-byte word of the page equals the first; *word gets that word.
  static bool IsSameFilled(const void* page, uint64_t* word);

  // Fills a page with one repeated 8-byte word.
  static void FillSame(void* page, uint64_t word);

  // Compresses a page at `level` into out (capacity kPageSize). Returns the compressed size
  // if it is at most kMaxCompressed, or 0 if the page should be kept raw (also when zstd
  // has no memory for this thread's context: keeping a page raw never fails).
  static size_t Compress(const void* page, int level, void* out);

  // The page's length without its trailing zero bytes (0 for an all-zero page).
  static size_t ContentLength(const void* page);

  // A run of pages compressed one after another (one write request): whether the last page
  // needed the configured level, or was incompressible (zstd stored its content, zero tail
  // aside, as it was). Neighbouring pages tend to be alike,
  // so while they do, the fast attempt is skipped, or made at kAfterRawLevel.
  struct Streak {
    bool strong = false;  // The next page goes straight to the configured level.
    bool raw = false;     // The last page was kept raw: try the next at kAfterRawLevel.
  };

  // The first attempt's level after an incompressible page (when lower than fast_level).
  // It tells incompressible data apart faster than -1 (docs/BENCHMARKS.md); a page it
  // cannot compress, -1 could at best shrink a little, which costs a whole zbud page anyway.
  static constexpr int kAfterRawLevel = -10;

  // Compresses at fast_level and keeps that if it is at most good_enough bytes, or if zstd
  // stored the page uncompressed (incompressible data gains nothing from a slower level);
  // otherwise also compresses at level and keeps the smaller. While *streak says so, starts
  // at level and returns to the fast level once a result is well under good_enough, or
  // starts at kAfterRawLevel after a page kept raw. Returns like Compress. fast_level >=
  // level means one pass at level.
  static size_t CompressFastFirst(const void* page, int level, int fast_level, size_t good_enough,
                                  Streak* streak, void* out);

  // Decompresses src[0..len) into page. Errors: EIO if the payload is shorter than its
  // check value, fails it, or is not one frame whose content (kPageSize bytes at most, the
  // rest zero-filled) decodes to exactly its stated size; ENOMEM if zstd has no memory for
  // this thread's decompression context.
  static Status Decompress(const void* src, size_t len, void* page);

  // A run of whole pages as one frame (a cluster, store/cluster.h): compresses data[0, len)
  // at level into out (capacity bytes), frame then check value. Returns the payload length,
  // or 0 if it does not fit capacity (or zstd has no context for this thread).
  static size_t CompressRun(const void* data, size_t len, int level, void* out, size_t capacity);
  // Decompresses a run's payload src[0..len) into out, which must decode to exactly `expect`
  // bytes. Errors as Decompress.
  static Status DecompressRun(const void* src, size_t len, void* out, size_t expect);

  // Compress of page[0, len) only, len = ContentLength(page) (at least 1), 1..kPageSize.
  static size_t CompressPrefix(const void* page, size_t len, int level, void* out);

  // The valid zstd level range on this build (negative levels are the fast ones).
  static int MinLevel();
  static int MaxLevel();
};

}  // namespace zbudfs

#endif  // ZBUDFS_STORE_PAGE_CODEC_H_

// No locks: contexts are per thread.
#include "store/page_codec.h"

#define ZSTD_STATIC_LINKING_ONLY  // ZSTD_c_format and ZSTD_d_format (magicless frames).
#include <zstd.h>
// Header-only: the hash is inlined here, nothing to link.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

namespace zbudfs {
namespace {

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxDeleter {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// Which of the thread's compression contexts: one stays at the fast level, one at the
// configured one and one at the level after an incompressible page, so alternating between
// them reconfigures nothing.
enum CCtxSlot { kFastSlot = 0, kLevelSlot = 1, kAfterRawSlot = 2, kNumSlots = 3 };

// The calling thread's compression context in `slot`, set up for `level`; nullptr if zstd
// has no memory for one.
ZSTD_CCtx* ThreadCCtx(int level, CCtxSlot slot = kLevelSlot) {
  struct Slot {
    std::unique_ptr<ZSTD_CCtx, CCtxDeleter> cctx;
    int level = 0;
    bool configured = false;
  };
  thread_local Slot slots[kNumSlots];
  Slot& s = slots[slot];
  if (!s.cctx) {
    s.cctx.reset(ZSTD_createCCtx());
    if (!s.cctx) return nullptr;
    s.configured = false;
  }
  if (!s.configured || s.level != level) {
    ZSTD_CCtx_reset(s.cctx.get(), ZSTD_reset_parameters);
    ZSTD_CCtx_setParameter(s.cctx.get(), ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(s.cctx.get(), ZSTD_c_checksumFlag, 0);
    ZSTD_CCtx_setParameter(s.cctx.get(), ZSTD_c_contentSizeFlag, 1);
    ZSTD_CCtx_setParameter(s.cctx.get(), ZSTD_c_dictIDFlag, 0);
    ZSTD_CCtx_setParameter(s.cctx.get(), ZSTD_c_format, ZSTD_f_zstd1_magicless);
    s.level = level;
    s.configured = true;
  }
  return s.cctx.get();
}

// The check value of a frame: the low 32 bits of its XXH3-64.
uint32_t CheckValue(const void* frame, size_t len) {
  return static_cast<uint32_t>(XXH3_64bits(frame, len));
}

void PutCheck(uint32_t v, unsigned char* out) {
  for (size_t i = 0; i < PageCodec::kCheckSize; ++i)
    out[i] = static_cast<unsigned char>(v >> (8 * i));
}

uint32_t GetCheck(const unsigned char* in) {
  uint32_t v = 0;
  for (size_t i = 0; i < PageCodec::kCheckSize; ++i) v |= uint32_t{in[i]} << (8 * i);
  return v;
}

// Compresses a page with cctx into out (capacity kPageSize + slack, see below): the frame,
// then its check value. Returns the payload size, or 0 on error (no room included). A
// payload over kMaxCompressed is never kept (the page is stored raw), so its size is
// returned without the check value being computed: hashing 4 KiB of incompressible data
// only to throw the frame away showed in profiles (docs/BENCHMARKS.md).
size_t CompressWith(ZSTD_CCtx* cctx, const void* page, size_t len, void* out, size_t capacity) {
  auto* bytes = static_cast<unsigned char*>(out);
  const size_t n = ZSTD_compress2(cctx, bytes, capacity - PageCodec::kCheckSize, page, len);
  if (ZSTD_isError(n)) return 0;
  if (n + PageCodec::kCheckSize <= PageCodec::kMaxCompressed) {
    PutCheck(CheckValue(bytes, n), bytes + n);
  }
  return n + PageCodec::kCheckSize;
}

ZSTD_DCtx* ThreadDCtx() {
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxDeleter> dctx;
  if (!dctx) {
    dctx.reset(ZSTD_createDCtx());
    if (dctx) ZSTD_DCtx_setParameter(dctx.get(), ZSTD_d_format, ZSTD_f_zstd1_magicless);
  }
  return dctx.get();
}

}  // namespace

bool PageCodec::IsSameFilled(const void* page, uint64_t* word) {
  const auto* bytes = static_cast<const unsigned char*>(page);
  uint64_t first;
  std::memcpy(&first, bytes, sizeof(first));
  // Compare 32 bytes at a time; the compiler vectorises the inner loop.
  for (size_t off = 0; off < kPageSize; off += 32) {
    uint64_t w[4];
    std::memcpy(w, bytes + off, sizeof(w));
    if ((w[0] ^ first) | (w[1] ^ first) | (w[2] ^ first) | (w[3] ^ first)) return false;
  }
  *word = first;
  return true;
}

void PageCodec::FillSame(void* page, uint64_t word) {
  auto* bytes = static_cast<unsigned char*>(page);
  if (word == 0) {
    std::memset(bytes, 0, kPageSize);
    return;
  }
  for (size_t off = 0; off < kPageSize; off += sizeof(word)) {
    std::memcpy(bytes + off, &word, sizeof(word));
  }
}

size_t PageCodec::ContentLength(const void* page) {
  const auto* bytes = static_cast<const unsigned char*>(page);
  size_t end = kPageSize;
  // 64 bytes at a time from the end while they are all zero (the compiler vectorises the
  // OR), then 8, then byte by byte.
  while (end >= 64) {
    uint64_t any = 0;
    for (size_t i = 0; i < 64; i += 8) {
      uint64_t w;
      std::memcpy(&w, bytes + end - 64 + i, sizeof(w));
      any |= w;
    }
    if (any != 0) break;
    end -= 64;
  }
  while (end >= 8) {
    uint64_t w;
    std::memcpy(&w, bytes + end - 8, sizeof(w));
    if (w != 0) break;
    end -= 8;
  }
  while (end > 0 && bytes[end - 1] == 0) --end;
  return end;
}

size_t PageCodec::Compress(const void* page, int level, void* out) {
  // An all-zero page (the store keeps those as same-filled) still gets a frame of one byte:
  // a frame of nothing is not a page (Decompress).
  return CompressPrefix(page, std::max<size_t>(1, ContentLength(page)), level, out);
}

size_t PageCodec::CompressPrefix(const void* page, size_t len, int level, void* out) {
  ZSTD_CCtx* cctx = ThreadCCtx(level);
  if (cctx == nullptr) return 0;  // No context: keep the page raw rather than fail.
  const size_t n = CompressWith(cctx, page, len, out, kPageSize);
  return n > kMaxCompressed ? 0 : n;
}

size_t PageCodec::CompressFastFirst(const void* page, int level, int fast_level, size_t good_enough,
                                    Streak* streak, void* out) {
  if (fast_level >= level) return Compress(page, level, out);
  // Lets a frame one block header past the page be seen: zstd stores an incompressible
  // page as one raw block, 4096 bytes plus headers (and our check), and that is the sign
  // to stop.
  constexpr size_t kSlack = 64;
  thread_local unsigned char fast[kPageSize + kSlack];
  // Well under good_enough: the page would pair at the fast level too, so end the streak.
  const size_t comfortable = good_enough - good_enough / 8;
  if (streak->strong) {
    const size_t n = Compress(page, level, out);
    // Well under: back to the fast level. Kept raw: the level did not help either, and
    // incompressible data is told apart faster at the fast levels.
    if (n == 0 || n <= comfortable) streak->strong = false;
    streak->raw = n == 0;
    return n;
  }
  const size_t len = std::max<size_t>(1, ContentLength(page));  // As Compress.
  const bool after_raw = streak->raw && kAfterRawLevel < fast_level;
  ZSTD_CCtx* cctx =
      after_raw ? ThreadCCtx(kAfterRawLevel, kAfterRawSlot) : ThreadCCtx(fast_level, kFastSlot);
  const size_t nf = cctx != nullptr ? CompressWith(cctx, page, len, fast, sizeof(fast)) : 0;
  // zstd stored the content as is: it is incompressible.
  const bool incompressible = nf > len;
  streak->raw = incompressible;
  if (nf != 0 && nf <= good_enough && nf <= kMaxCompressed) {
    std::memcpy(out, fast, nf);
    return nf;
  }
  if (incompressible && nf > kMaxCompressed) return 0;  // A slower level would not help.
  streak->strong = true;
  const size_t n = CompressPrefix(page, len, level, out);
  if (nf != 0 && nf <= kMaxCompressed && (n == 0 || nf < n)) {
    std::memcpy(out, fast, nf);
    return nf;
  }
  return n;
}

namespace {

// Checks and decodes one payload into out (capacity bytes): its content must be 1..capacity
// bytes long, or exactly `exact` when that is not 0. Returns the content length.
StatusOr<size_t> DecodeChecked(const void* src, size_t len, void* out, size_t capacity,
                               size_t exact) {
  const auto* bytes = static_cast<const unsigned char*>(src);
  if (len <= PageCodec::kCheckSize) return Status::Error(EIO, "corrupt page: too short");
  const size_t frame = len - PageCodec::kCheckSize;
  if (CheckValue(bytes, frame) != GetCheck(bytes + frame)) {
    return Status::Error(EIO, "corrupt page: check value mismatch");
  }
  ZSTD_DCtx* dctx = ThreadDCtx();
  if (dctx == nullptr) return Status::Error(ENOMEM, "zstd: no decompression context");
  ZSTD_frameHeader header;
  if (ZSTD_getFrameHeader_advanced(&header, bytes, frame, ZSTD_f_zstd1_magicless) != 0 ||
      header.frameType != ZSTD_frame || header.frameContentSize == 0 ||
      header.frameContentSize > capacity || (exact != 0 && header.frameContentSize != exact)) {
    return Status::Error(EIO, "corrupt page: bad frame header");
  }
  const size_t n = ZSTD_decompressDCtx(dctx, out, capacity, bytes, frame);
  if (ZSTD_isError(n))
    return Status::Error(EIO, std::string("corrupt page: ") + ZSTD_getErrorName(n));
  if (n != header.frameContentSize) return Status::Error(EIO, "corrupt page: wrong length");
  return n;
}

}  // namespace

Status PageCodec::Decompress(const void* src, size_t len, void* page) {
  StatusOr<size_t> n = DecodeChecked(src, len, page, kPageSize, 0);
  if (!n.ok()) return n.status();
  std::memset(static_cast<unsigned char*>(page) + *n, 0, kPageSize - *n);  // The elided zeros.
  return Status::OK();
}

size_t PageCodec::CompressRun(const void* data, size_t len, int level, void* out, size_t capacity) {
  ZSTD_CCtx* cctx = ThreadCCtx(level);
  if (cctx == nullptr || capacity <= kCheckSize) return 0;
  auto* bytes = static_cast<unsigned char*>(out);
  const size_t n = ZSTD_compress2(cctx, bytes, capacity - kCheckSize, data, len);
  if (ZSTD_isError(n)) return 0;
  PutCheck(CheckValue(bytes, n), bytes + n);
  return n + kCheckSize;
}

Status PageCodec::DecompressRun(const void* src, size_t len, void* out, size_t expect) {
  StatusOr<size_t> n = DecodeChecked(src, len, out, expect, expect);
  return n.ok() ? Status::OK() : n.status();
}

int PageCodec::MinLevel() { return ZSTD_minCLevel(); }
int PageCodec::MaxLevel() { return ZSTD_maxCLevel(); }

}  // namespace zbudfs

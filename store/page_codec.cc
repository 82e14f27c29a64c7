// No locks: contexts are per thread.
#include "store/page_codec.h"

#include <zstd.h>

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

// Which of the thread's two compression contexts: one stays at the fast level, the other
// at the configured one, so alternating between them reconfigures nothing.
enum CCtxSlot { kFastSlot = 0, kLevelSlot = 1, kNumSlots = 2 };

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
    ZSTD_CCtx_setParameter(s.cctx.get(), ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(s.cctx.get(), ZSTD_c_contentSizeFlag, 1);
    ZSTD_CCtx_setParameter(s.cctx.get(), ZSTD_c_dictIDFlag, 0);
    s.level = level;
    s.configured = true;
  }
  return s.cctx.get();
}

// Compresses a page with cctx into out (capacity kPageSize + slack, see below); returns
// the frame size, or 0 on error.
size_t CompressWith(ZSTD_CCtx* cctx, const void* page, void* out, size_t capacity) {
  const size_t n = ZSTD_compress2(cctx, out, capacity, page, PageCodec::kPageSize);
  return ZSTD_isError(n) ? 0 : n;
}

ZSTD_DCtx* ThreadDCtx() {
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxDeleter> dctx;
  if (!dctx) dctx.reset(ZSTD_createDCtx());
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

size_t PageCodec::Compress(const void* page, int level, void* out) {
  ZSTD_CCtx* cctx = ThreadCCtx(level);
  if (cctx == nullptr) return 0;  // No context: keep the page raw rather than fail.
  const size_t n = CompressWith(cctx, page, out, kPageSize);
  return n > kMaxCompressed ? 0 : n;
}

size_t PageCodec::CompressFastFirst(const void* page, int level, int fast_level, size_t good_enough,
                                    Streak* streak, void* out) {
  if (fast_level >= level) return Compress(page, level, out);
  // Lets a frame one block header past the page be seen: zstd stores an incompressible
  // page as one raw block, 4096 bytes plus headers, and that is the sign to stop.
  constexpr size_t kSlack = 64;
  thread_local unsigned char fast[kPageSize + kSlack];
  // Well under good_enough: the page would pair at the fast level too, so end the streak.
  const size_t comfortable = good_enough - good_enough / 8;
  if (streak->strong) {
    const size_t n = Compress(page, level, out);
    if (n != 0 && n <= comfortable) streak->strong = false;
    return n;
  }
  ZSTD_CCtx* cctx = ThreadCCtx(fast_level, kFastSlot);
  const size_t nf = cctx != nullptr ? CompressWith(cctx, page, fast, sizeof(fast)) : 0;
  if (nf != 0 && nf <= good_enough) {
    std::memcpy(out, fast, nf);
    return nf;
  }
  if (nf >= kPageSize) return 0;  // Stored raw by zstd: incompressible, keep the page raw.
  streak->strong = true;
  const size_t n = Compress(page, level, out);
  if (nf != 0 && nf <= kMaxCompressed && (n == 0 || nf < n)) {
    std::memcpy(out, fast, nf);
    return nf;
  }
  return n;
}

Status PageCodec::Decompress(const void* src, size_t len, void* page) {
  ZSTD_DCtx* dctx = ThreadDCtx();
  if (dctx == nullptr) return Status::Error(ENOMEM, "zstd: no decompression context");
  if (ZSTD_getFrameContentSize(src, len) != kPageSize) {
    return Status::Error(EIO, "corrupt page: bad frame header");
  }
  const size_t n = ZSTD_decompressDCtx(dctx, page, kPageSize, src, len);
  if (ZSTD_isError(n))
    return Status::Error(EIO, std::string("corrupt page: ") + ZSTD_getErrorName(n));
  if (n != kPageSize) return Status::Error(EIO, "corrupt page: wrong length");
  return Status::OK();
}

int PageCodec::MinLevel() { return ZSTD_minCLevel(); }
int PageCodec::MaxLevel() { return ZSTD_maxCLevel(); }

}  // namespace zbudfs

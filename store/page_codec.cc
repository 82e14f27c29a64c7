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

// The calling thread's compression context, set up for `level`; nullptr if zstd has no
// memory for one.
ZSTD_CCtx* ThreadCCtx(int level) {
  thread_local std::unique_ptr<ZSTD_CCtx, CCtxDeleter> cctx;
  thread_local int cctx_level = 0;
  thread_local bool configured = false;
  if (!cctx) {
    cctx.reset(ZSTD_createCCtx());
    if (!cctx) return nullptr;
    configured = false;
  }
  if (!configured || cctx_level != level) {
    ZSTD_CCtx_reset(cctx.get(), ZSTD_reset_parameters);
    ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_contentSizeFlag, 1);
    ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_dictIDFlag, 0);
    cctx_level = level;
    configured = true;
  }
  return cctx.get();
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
  const size_t n = ZSTD_compress2(cctx, out, kPageSize, page, kPageSize);
  if (ZSTD_isError(n) || n > kMaxCompressed) return 0;
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

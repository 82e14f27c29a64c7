// libFuzzer target: random sequences of PageStore operations against a reference model
// (one zero-extended byte vector per file), with a tiny mem_limit so that reclaim, the
// overflow store and fault-back are exercised too. Every read is compared with the model,
// and after each input every file is removed and the store must hold nothing.
//
// Build: scripts/build.sh fuzz; run: build-fuzz/tests/page_store_fuzz tests/fuzz/corpus
// (add -max_total_time=300 to fuzz; new inputs land in the corpus directory).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "store/overflow_store.h"
#include "store/page_store.h"

namespace {

using zbudfs::OverflowStore;
using zbudfs::PageStore;
using zbudfs::PageStoreOptions;

constexpr int kFiles = 3;
constexpr uint64_t kSpan = 1 << 20;  // Offsets stay below 1 MiB (plus one far page).

// Reads the input a few bytes at a time; zeros once it runs out.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint64_t Take(int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | (pos_ < size_ ? data_[pos_++] : 0);
    return v;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// Offsets biased to land on and around page boundaries.
uint64_t Offset(Input& in) {
  const uint64_t raw = in.Take(3) % kSpan;
  switch (in.Take(1) % 4) {
    case 0:
      return raw & ~uint64_t{4095};
    case 1:
      return (raw & ~uint64_t{4095}) + 4096 - 1 - (raw % 3);
    default:
      return raw;
  }
}

// Data of a kind chosen by the input: zeros, a repeated word, text-like, or noise.
void Fill(Input& in, uint8_t* buf, size_t len) {
  const uint64_t kind = in.Take(1) % 4;
  uint64_t seed = in.Take(2) + 1;
  for (size_t i = 0; i < len; ++i) {
    switch (kind) {
      case 0:
        buf[i] = 0;
        break;
      case 1:
        buf[i] = static_cast<uint8_t>(seed >> (8 * (i % 8)));
        break;
      case 2:
        buf[i] = static_cast<uint8_t>("compressible text, "[(i + seed) % 19]);
        break;
      default:
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        buf[i] = static_cast<uint8_t>(seed >> 56);
    }
  }
}

void Check(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "page_store_fuzz: %s\n", what);
    abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::shared_ptr<OverflowStore> overflow = [] {
    auto s = OverflowStore::Open({});
    Check(s.ok(), "cannot open an overflow store");
    return std::shared_ptr<OverflowStore>(std::move(s).value());
  }();
  PageStoreOptions o;
  o.mem_limit = 64 * 4096;
  o.overflow = overflow;
  o.background_reclaim = false;
  o.staging_bytes = 8 * 4096;  // Staged pages race the operations: a compressor thread.
  o.compress_threads = 1;
  o.cluster_pages = 4;  // Pack (op 7) makes clusters; reclaim spills them, reads bring them back.
  PageStore store(o);
  std::vector<uint8_t> model[kFiles];
  std::vector<uint8_t> buf, got;
  Input in(data, size);
  for (int ops = 0; !in.empty() && ops < 256; ++ops) {
    const int op = static_cast<int>(in.Take(1) % 9);
    const int f = static_cast<int>(in.Take(1) % kFiles);
    std::vector<uint8_t>& m = model[f];
    const uint64_t off = Offset(in);
    const uint64_t len = in.Take(2) % (64 * 1024) + 1;
    switch (op) {
      case 0:
      case 1: {  // Write.
        buf.resize(len);
        Fill(in, buf.data(), len);
        zbudfs::Status st = store.Write(f, off, buf.data(), len);
        if (!st.ok()) {
          Check(st.code() == ENOSPC, "write failed with other than ENOSPC");
          break;
        }
        if (m.size() < off + len) m.resize(off + len);
        std::memcpy(m.data() + off, buf.data(), len);
        break;
      }
      case 2: {  // Read, compared with the model (zero-extended).
        got.assign(len, 0xAA);
        Check(store.Read(f, off, got.data(), len).ok(), "read failed");
        for (uint64_t i = 0; i < len; ++i) {
          const uint8_t want = off + i < m.size() ? m[off + i] : 0;
          Check(got[i] == want, "read differs from the model");
        }
        break;
      }
      case 3: {  // Truncate.
        const uint64_t to = off % (m.size() + 4097);
        Check(store.Truncate(f, to).ok(), "truncate failed");
        m.resize(to);
        break;
      }
      case 4:    // Punch hole.
      case 5: {  // Zero range.
        zbudfs::Status st = op == 4 ? store.PunchHole(f, off, len) : store.ZeroRange(f, off, len);
        if (!st.ok()) {
          Check(op == 5 && st.code() == ENOSPC, "punch/zero failed");
          break;
        }
        if (op == 5 && m.size() < off + len) m.resize(off + len);
        for (uint64_t i = off; i < off + len && i < m.size(); ++i) m[i] = 0;
        break;
      }
      case 6:  // Remove.
        store.Remove(f);
        m.clear();
        break;
      case 7: {  // Reclaim everything it can (may fail: nothing to take), or pack the file.
        const uint64_t how = in.Take(1) % 3;
        if (how == 2) {
          (void)store.Pack(f);
        } else {
          (void)store.ReclaimTo(how == 0 ? 0 : 16 * 4096);
        }
        break;
      }
      default: {  // One far page, to keep the index sparse.
        buf.assign(4096, 7);
        const uint64_t far = (uint64_t{1} << 40) + off;
        if (store.Write(f, far, buf.data(), buf.size()).ok()) {
          Check(store.Read(f, far, buf.data(), buf.size()).ok() && buf[4095] == 7, "far page");
          Check(store.PunchHole(f, far, 4096).ok(), "far punch");
        }
      }
    }
  }
  for (int f = 0; f < kFiles; ++f) {
    got.resize(model[f].size());
    Check(store.Read(f, 0, got.data(), got.size()).ok(), "final read failed");
    Check(got == model[f], "final contents differ from the model");
    store.Remove(f);
  }
  store.WaitForStaging();  // A compressor may still hold a page it could not swap in.
  const zbudfs::StoreStats s = store.Stats();
  Check(s.orig_data_size == 0 && s.mem_used_total == 0 && s.overflow_pages == 0 &&
            s.clusters == 0 && s.spilled_clusters == 0 && s.clustered_pages == 0 &&
            s.overflow_bytes == 0 && s.compr_data_size == 0,
        "the store holds something after every file was removed");
  return 0;
}

#include "tests/exerciser/picker.h"

#include <algorithm>
#include <vector>

#include "store/page_size.h"

namespace zbudfs::exerciser {

uint64_t Picker::Len() {
  uint64_t r = rng_.Below(100);
  if (Under() && rng_.Chance(30)) return rng_.Range(256 * 1024, 4 * kMiB);
  if (r < 35) return rng_.Range(1, 600);
  if (r < 60) return rng_.Range(1, 16 * 1024);
  if (r < 80)
    return rng_.Range(1, 8) * kPageSize +
           (rng_.Chance(50) ? 0 : rng_.Range(0, 2 * kPageSize) - kPageSize / 2);
  if (r < 95) return rng_.Range(64 * 1024, kMiB);
  return rng_.Range(kMiB, 3 * kMiB);
}

uint64_t Picker::Offset(uint64_t size, uint64_t len) {
  if (Over()) {  // Stay inside the file.
    if (size <= 1) return 0;
    return rng_.Below(size > len ? size - len : 1);
  }
  uint64_t r = rng_.Below(100);
  if (r < 30) return rng_.Below(size + 1);
  if (r < 45) return size;
  if (r < 65) {  // Straddling a 4 KiB boundary.
    uint64_t b = rng_.Below(size / kPageSize + 4) * kPageSize;
    uint64_t back = rng_.Below(std::min<uint64_t>(len, 64) + 1);
    return b > back ? b - back : b;
  }
  if (r < 80) return size + rng_.Below(kMiB);
  if (r < 85) return rng_.Below(opt_.max_offset);  // Huge sparse offset.
  return rng_.Below(size + 64 * 1024);
}

Handle* Picker::PickHandle(bool want_write, bool want_read) {
  std::vector<Handle>& handles = model_->handles();
  if (handles.empty()) return nullptr;
  if (want_write || want_read) {
    std::vector<size_t> ok;
    for (size_t i = 0; i < handles.size(); ++i) {
      if ((!want_write || Writable(handles[i])) && (!want_read || Readable(handles[i])))
        ok.push_back(i);
    }
    if (!ok.empty() && rng_.Chance(92)) return &handles[ok[rng_.Below(ok.size())]];
  }
  return &handles[rng_.Below(handles.size())];
}

std::string Picker::File() { return Model::kFiles[rng_.Below(Model::kFiles.size())]; }
std::string Picker::Dir() { return Model::kDirs[rng_.Below(Model::kDirs.size())]; }

std::string Picker::Any() {
  if (rng_.Chance(85)) return File();
  return Dir();
}

}  // namespace zbudfs::exerciser

// Real files as test and benchmark data: one loader shared by the unit tests
// (tests/store/page_codec_test_util.h) and the micro benchmarks (tests/bench/).
#ifndef ZBUDFS_TESTS_CORPUS_H_
#define ZBUDFS_TESTS_CORPUS_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <vector>

namespace zbudfs::corpus {

// Whole regular files under dir (symlinks skipped; subdirectories too if recursive) that
// want() accepts, in path order, concatenated: at most per_file bytes of each, and no file
// started once max_bytes are loaded (the last one may pass it).
inline std::vector<uint8_t> LoadFiles(const std::filesystem::path& dir, bool recursive,
                                      bool (*want)(const std::filesystem::path&), size_t per_file,
                                      size_t max_bytes) {
  namespace fs = std::filesystem;
  std::vector<fs::path> paths;
  std::error_code ec;
  auto consider = [&](const fs::directory_entry& e) {
    std::error_code ec2;
    if (!e.is_symlink(ec2) && e.is_regular_file(ec2) && want(e.path())) paths.push_back(e.path());
  };
  if (recursive) {
    for (fs::recursive_directory_iterator
             it(dir, fs::directory_options::skip_permission_denied, ec),
         end;
         !ec && it != end; it.increment(ec)) {
      consider(*it);
    }
  } else {
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) consider(*it);
  }
  std::sort(paths.begin(), paths.end());
  std::vector<uint8_t> out;
  std::vector<char> buf(per_file);
  for (const fs::path& p : paths) {
    if (out.size() >= max_bytes) break;
    std::ifstream in(p, std::ios::binary);
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(in.gcount()));
  }
  return out;
}

}  // namespace zbudfs::corpus

#endif  // ZBUDFS_TESTS_CORPUS_H_

// Real files as test and benchmark data, shared by the unit tests (tests/store/*_test_util.h)
// and the micro benchmarks (tests/bench/). The unit tests use only hermetic data, present on
// every host and architecture: SourceText (this repository's own C++ sources) and MachineCode
// (the running binary's own .text section). The benchmarks may load host trees (LoadFiles)
// and fall back to those. No state, no locking.
#ifndef ZBUDFS_TESTS_CORPUS_H_
#define ZBUDFS_TESTS_CORPUS_H_

#include <elf.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
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

// The repository's root, set by tests/CMakeLists.txt for every test and benchmark target.
#ifndef ZBUDFS_SOURCE_DIR
#error "ZBUDFS_SOURCE_DIR must name the repository's root (tests/CMakeLists.txt defines it)"
#endif

inline bool IsSourceFile(const std::filesystem::path& p) {
  return p.extension() == ".h" || p.extension() == ".cc";
}

// Real C++ text that ships with the repository: the .h and .cc files under store/, fs/ and
// tests/ in path order, at most per_file bytes of each, about max_bytes in all (about 600 KB
// exist). The same bytes at a given commit on every host.
inline std::vector<uint8_t> SourceText(size_t per_file, size_t max_bytes) {
  const std::filesystem::path root = ZBUDFS_SOURCE_DIR;
  std::vector<uint8_t> out;
  for (const char* dir : {"fs", "store", "tests"}) {
    if (out.size() >= max_bytes) break;
    const std::vector<uint8_t> part =
        LoadFiles(root / dir, true, IsSourceFile, per_file, max_bytes - out.size());
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

// Real machine code for whatever architecture the tests run on: the .text section of the
// running executable (/proc/self/exe), at most max_bytes of it; empty if it cannot be found.
// Only 64-bit ELF is parsed (every Linux target this project builds for).
inline std::vector<uint8_t> MachineCode(size_t max_bytes) {
  std::ifstream in("/proc/self/exe", std::ios::binary);
  const std::vector<char> elf{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  Elf64_Ehdr eh;
  if (elf.size() < sizeof(eh)) return {};
  std::memcpy(&eh, elf.data(), sizeof(eh));
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shstrndx >= eh.e_shnum ||
      eh.e_shoff + uint64_t{eh.e_shnum} * sizeof(Elf64_Shdr) > elf.size()) {
    return {};
  }
  auto section = [&](size_t i) {
    Elf64_Shdr sh;
    std::memcpy(&sh, elf.data() + eh.e_shoff + i * sizeof(sh), sizeof(sh));
    return sh;
  };
  const Elf64_Shdr names = section(eh.e_shstrndx);
  for (size_t i = 0; i < eh.e_shnum; ++i) {
    const Elf64_Shdr sh = section(i);
    const uint64_t name_at = names.sh_offset + sh.sh_name;
    if (sh.sh_type != SHT_PROGBITS || name_at + sizeof(".text") > elf.size() ||
        std::memcmp(elf.data() + name_at, ".text", sizeof(".text")) != 0 ||
        sh.sh_offset + sh.sh_size > elf.size()) {
      continue;
    }
    const size_t n = std::min<uint64_t>(sh.sh_size, max_bytes);
    return std::vector<uint8_t>(elf.begin() + static_cast<std::ptrdiff_t>(sh.sh_offset),
                                elf.begin() + static_cast<std::ptrdiff_t>(sh.sh_offset + n));
  }
  return {};
}

}  // namespace zbudfs::corpus

#endif  // ZBUDFS_TESTS_CORPUS_H_

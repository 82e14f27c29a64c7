#include "tests/exerciser/listing.h"

#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace zbudfs::exerciser {

std::pair<int, std::vector<std::string>> List(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (!d) return {errno, names};
  while (dirent* e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    names.push_back(e->d_name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return {0, names};
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

}  // namespace zbudfs::exerciser

#include "tests/exerciser/model.h"

#include <dirent.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <set>

namespace zbudfs::exerciser {
namespace {

void RefUsedWalk(const std::string& dir, std::set<ino_t>* seen, uint64_t* total) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    const std::string p = dir + "/" + e->d_name;
    struct stat st;
    if (lstat(p.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      RefUsedWalk(p, seen, total);
    } else if (S_ISREG(st.st_mode) && seen->insert(st.st_ino).second) {
      *total += static_cast<uint64_t>(st.st_blocks) * 512;
    }
  }
  closedir(d);
}

}  // namespace

const std::vector<std::string> Model::kFiles = {
    "f0",    "f1",    "f2",    "f3",    "f4",    "f5",    "f6",      "f7",
    "d0/f0", "d0/f1", "d0/f2", "d1/f0", "d1/f1", "d1/f2", "d0/s/f0", "d0/s/f1"};
const std::vector<std::string> Model::kDirs = {"d0", "d1", "d0/s", "d2"};

const Handle& Model::Add(int z, int r, int acc, bool append, const std::string& name) {
  handles_.push_back(Handle{z, r, acc, append, name, next_handle_id_++});
  return handles_.back();
}

Handle Model::Remove(size_t i) {
  Handle h = handles_[i];
  handles_.erase(handles_.begin() + static_cast<long>(i));
  return h;
}

uint64_t Model::RefSize(const Handle& h) const {
  struct stat st;
  if (fstat(h.r, &st) != 0) {
    log_->Fail(Fmt("fstat of the reference fd failed: %s", strerror(errno)));
  }
  return static_cast<uint64_t>(st.st_size);
}

uint64_t Model::RefUsed() const {
  std::set<ino_t> seen;
  uint64_t total = 0;
  RefUsedWalk(opt_.rroot, &seen, &total);
  for (const Handle& h : handles_) {
    struct stat st;
    if (fstat(h.r, &st) == 0 && S_ISREG(st.st_mode) && seen.insert(st.st_ino).second) {
      total += static_cast<uint64_t>(st.st_blocks) * 512;
    }
  }
  return total;
}

}  // namespace zbudfs::exerciser

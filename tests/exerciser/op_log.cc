#include "tests/exerciser/op_log.h"

#include <cstdio>
#include <cstdlib>

namespace zbudfs::exerciser {

void OpLog::Log(const std::string& s) {
  std::string line = Fmt("#%llu ", static_cast<unsigned long long>(op_)) + s;
  if (opt_.verbose) std::fprintf(stderr, "%s\n", line.c_str());
  lines_.push_back(std::move(line));
  if (lines_.size() > 4096) lines_.pop_front();
}

void OpLog::Fail(const std::string& what) {
  std::fflush(stdout);
  std::fprintf(stderr, "\n%sEXERCISER MISMATCH at op #%llu (seed %llu): %s\n", opt_.job_tag.c_str(),
               static_cast<unsigned long long>(op_), static_cast<unsigned long long>(opt_.seed),
               what.c_str());
  std::fprintf(stderr, "--- last %d operations (oldest first; zbudfs=%s reference=%s):\n",
               opt_.tail, opt_.zroot.c_str(), opt_.rroot.c_str());
  const size_t tail = static_cast<size_t>(opt_.tail);
  const size_t from = lines_.size() > tail ? lines_.size() - tail : 0;
  for (size_t i = from; i < lines_.size(); ++i) std::fprintf(stderr, "  %s\n", lines_[i].c_str());
  std::fprintf(stderr,
               "--- reproduce on fresh empty directories: exerciser --zbud DIR --ref DIR "
               "--seed %llu --ops %llu --target-mb %llu --max-offset-mb %llu%s\n",
               static_cast<unsigned long long>(opt_.seed), static_cast<unsigned long long>(op_ + 1),
               static_cast<unsigned long long>(opt_.target_bytes / kMiB),
               static_cast<unsigned long long>(opt_.max_offset / kMiB),
               opt_.mmap ? "" : " --no-mmap");
  std::exit(1);
}

bool OpLog::Same(const std::string& what, Res z, Res r, bool same_value) {
  Log(what + " -> zbudfs " + Show(z) + ", ref " + Show(r));
  const bool zf = z.v < 0, rf = r.v < 0;
  if (zf != rf || (zf && z.err != r.err) || (!zf && same_value && z.v != r.v)) {
    Fail(what + ": zbudfs returned " + Show(z) + ", the reference " + Show(r));
  }
  return !zf;
}

}  // namespace zbudfs::exerciser

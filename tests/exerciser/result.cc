#include "tests/exerciser/result.h"

#include <cstdarg>
#include <cstdio>
#include <utility>

namespace zbudfs::exerciser {
namespace {

constexpr std::pair<int, const char*> kErrNames[] = {
    {0, "OK"},          {ENOENT, "ENOENT"},     {EEXIST, "EEXIST"}, {ENOTDIR, "ENOTDIR"},
    {EISDIR, "EISDIR"}, {EINVAL, "EINVAL"},     {EBADF, "EBADF"},   {ENOTEMPTY, "ENOTEMPTY"},
    {EBUSY, "EBUSY"},   {EACCES, "EACCES"},     {EPERM, "EPERM"},   {ENOSPC, "ENOSPC"},
    {EIO, "EIO"},       {EFBIG, "EFBIG"},       {EXDEV, "EXDEV"},   {EOPNOTSUPP, "EOPNOTSUPP"},
    {ENODEV, "ENODEV"}, {ENOTCONN, "ENOTCONN"}, {EMLINK, "EMLINK"}, {ENXIO, "ENXIO"},
};

}  // namespace

std::string Fmt(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  return buf;
}

std::string ErrName(int e) {
  for (const auto& [code, name] : kErrNames) {
    if (code == e) return name;
  }
  return Fmt("errno%d", e);
}

std::string Show(Res r) { return r.v < 0 ? ErrName(r.err) : Fmt("%ld", r.v); }

}  // namespace zbudfs::exerciser

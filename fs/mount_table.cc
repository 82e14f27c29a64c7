// Mount-table lookups (see mount_table.h). No locks.
#include "fs/mount_table.h"

#include <fcntl.h>
#include <mntent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <memory>

namespace zbudfs {
namespace {

struct MntCloser {
  void operator()(FILE* f) const { endmntent(f); }
};

}  // namespace

StatusOr<MountEntry> FindMount(const std::string& dir, const std::string& table) {
  std::unique_ptr<FILE, MntCloser> f(setmntent(table.c_str(), "r"));
  if (f == nullptr) return Status::Error(errno, table);
  // glibc drops what of a line does not fit (long option lists): the mount point, the
  // second field, still does.
  char buf[16 * 1024];
  struct mntent ent;
  StatusOr<MountEntry> found = Status::Error(ENOENT, dir);
  while (getmntent_r(f.get(), &ent, buf, sizeof(buf)) != nullptr) {
    if (dir != ent.mnt_dir) continue;
    found = MountEntry{ent.mnt_fsname, ent.mnt_dir, ent.mnt_type, ent.mnt_opts};  // Latest wins.
  }
  return found;
}

StatusOr<dev_t> CachedDevice(const std::string& path) {
  struct statx stx;
  if (statx(AT_FDCWD, path.c_str(), AT_STATX_DONT_SYNC | AT_NO_AUTOMOUNT, 0, &stx) != 0) {
    return Status::Error(errno, path);
  }
  return makedev(stx.stx_dev_major, stx.stx_dev_minor);
}

}  // namespace zbudfs

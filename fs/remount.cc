// The command-line side of a remount; see remount.h.
#include "fs/remount.h"

#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

#include "fs/filesystem.h"
#include "fs/log.h"
#include "fs/mount_table.h"

namespace zbudfs {
namespace {

// A kernel flag option of mount(8) and what it sets or clears.
struct KernelFlag {
  const char* name;
  unsigned long set;
  unsigned long clear;
};
constexpr KernelFlag kKernelFlags[] = {
    {"ro", MS_RDONLY, 0},
    {"rw", 0, MS_RDONLY},
    {"nosuid", MS_NOSUID, 0},
    {"suid", 0, MS_NOSUID},
    {"nodev", MS_NODEV, 0},
    {"dev", 0, MS_NODEV},
    {"noexec", MS_NOEXEC, 0},
    {"exec", 0, MS_NOEXEC},
    {"sync", MS_SYNCHRONOUS, 0},
    {"async", 0, MS_SYNCHRONOUS},
    {"noatime", MS_NOATIME, MS_RELATIME | MS_STRICTATIME},
    {"relatime", MS_RELATIME, MS_NOATIME | MS_STRICTATIME},
    {"strictatime", MS_STRICTATIME, MS_NOATIME | MS_RELATIME},
    {"nodiratime", MS_NODIRATIME, 0},
    {"diratime", 0, MS_NODIRATIME},
};

// The mount's flags now, as mount(2) takes them (statvfs's ST_* bits).
unsigned long CurrentFlags(const struct statvfs& st) {
  unsigned long f = 0;
  if (st.f_flag & ST_RDONLY) f |= MS_RDONLY;
  if (st.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (st.f_flag & ST_NODEV) f |= MS_NODEV;
  if (st.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (st.f_flag & ST_SYNCHRONOUS) f |= MS_SYNCHRONOUS;
  if (st.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (st.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (st.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

// Applies the kernel flag options among args to flags; false if there were none.
bool ApplyKernelFlags(const std::vector<std::string>& args, unsigned long* flags) {
  bool any = false;
  for (const std::string& list : args) {
    std::string_view rest = list;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      const std::string_view item = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      for (const KernelFlag& k : kKernelFlags) {
        if (item != k.name) continue;
        *flags = (*flags & ~k.clear) | k.set;
        any = true;
      }
    }
  }
  return any;
}

// Hands the zbudfs options to the daemon; on refusal logs the daemon's reason.
int SendToDaemon(const std::string& mountpoint, const std::string& list) {
  if (setxattr(mountpoint.c_str(), kRemountXattr, list.data(), list.size(), 0) == 0) return 0;
  const int err = errno;
  char why[1024];
  const ssize_t n = getxattr(mountpoint.c_str(), kRemountXattr, why, sizeof(why) - 1);
  const std::string reason = n > 0          ? std::string(why, static_cast<size_t>(n))
                             : err == EPERM ? "only root or the mount's owner may remount it"
                                            : std::strerror(err);
  LogError("cannot remount %s: %s", mountpoint.c_str(), reason.c_str());
  return 1;
}

// Changes the kernel's flags of the mount when the options ask for other ones.
int ChangeKernelFlags(const MountOptions& opts, const std::string& mountpoint) {
  struct statvfs st;
  if (statvfs(mountpoint.c_str(), &st) != 0) {
    LogError("cannot remount %s: %s", mountpoint.c_str(), std::strerror(errno));
    return 1;
  }
  const unsigned long now = CurrentFlags(st);
  unsigned long want = now;
  if (!ApplyKernelFlags(opts.other_args, &want) || want == now) return 0;
  if (mount(nullptr, mountpoint.c_str(), nullptr, MS_REMOUNT | want, nullptr) != 0) {
    LogError("cannot remount %s%s: %s", mountpoint.c_str(),
             (want & MS_RDONLY) != (now & MS_RDONLY)
                 ? ((want & MS_RDONLY) ? " read-only" : " read-write")
                 : "",
             std::strerror(errno));
    return 1;
  }
  return 0;
}

}  // namespace

int RemountMounted(const MountOptions& opts, const std::string& mountpoint) {
  StatusOr<MountEntry> entry = FindMount(mountpoint);
  if (!entry.ok() || entry.value().type != "fuse.zbudfs") {
    LogError("cannot remount %s: not a zbudfs mount", mountpoint.c_str());
    return 1;
  }
  std::string list;
  for (const std::string& arg : opts.zbudfs_args) list += (list.empty() ? "" : ",") + arg;
  if (!list.empty()) {
    if (int ret = SendToDaemon(mountpoint, list); ret != 0) return ret;
  }
  return ChangeKernelFlags(opts, mountpoint);
}

}  // namespace zbudfs

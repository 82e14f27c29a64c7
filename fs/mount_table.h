// The kernel's table of mounts, read with the C library's getmntent_r(3).
//
// Owns: finding the mount at a path (/proc/self/mounts, whose octal escapes such as \040
// for a space getmntent_r undoes) and the device number of a mounted file system, read
// without sending a request to it. No locks: each call reads the table afresh.
#ifndef ZBUDFS_FS_MOUNT_TABLE_H_
#define ZBUDFS_FS_MOUNT_TABLE_H_

#include <sys/types.h>

#include <string>

#include "store/status.h"

namespace zbudfs {

// One line of the table, unescaped.
struct MountEntry {
  std::string source;   // What is mounted ("zbudfs", "/dev/sda1", ...).
  std::string dir;      // Where.
  std::string type;     // "fuse.zbudfs", "ext4", ...
  std::string options;  // "rw,nosuid,...".
};

// The latest mount at dir (an absolute, resolved path) in table, a file in fstab(5) format.
// ENOENT if nothing is mounted there; the errno of setmntent(3) if table cannot be read.
StatusOr<MountEntry> FindMount(const std::string& dir,
                               const std::string& table = "/proc/self/mounts");

// The device number (st_dev) of whatever is at path, from the inode the kernel has cached:
// statx(2) with AT_STATX_DONT_SYNC, so that for a FUSE mount the kernel answers without a
// GETATTR (our own daemon may not serve yet: the request would never be answered).
StatusOr<dev_t> CachedDevice(const std::string& path);

}  // namespace zbudfs

#endif  // ZBUDFS_FS_MOUNT_TABLE_H_

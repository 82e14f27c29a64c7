// The command-line side of a remount: `zbudfs -o remount,size=2G MNT`, which is also what
// `mount -o remount,size=2G MNT` runs (through mount.fuse3) for a fuse.zbudfs mount.
//
// Owns nothing: it hands the zbudfs options given to the running daemon through the root's
// control attribute (kRemountXattr, see fs/filesystem.h; the daemon checks and applies
// them, Filesystem::Remount), then changes the kernel's flags of the mount (ro/rw, nosuid,
// nodev, noexec, atime ones) with mount(2) when they differ from the mount's. The daemon
// is untouched when an option is refused; a refused kernel change comes after the daemon's
// has been made, and is reported as such. No threads, no locks.
#ifndef ZBUDFS_FS_REMOUNT_H_
#define ZBUDFS_FS_REMOUNT_H_

#include <string>

#include "fs/options.h"

namespace zbudfs {

// Remounts the zbudfs at mountpoint (absolute, resolved) with opts (opts.remount set).
// Returns the exit status; messages go to the log (stderr) naming what was refused.
int RemountMounted(const MountOptions& opts, const std::string& mountpoint);

}  // namespace zbudfs

#endif  // ZBUDFS_FS_REMOUNT_H_

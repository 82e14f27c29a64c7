// Privileges a change must clear, as the kernel's file_remove_privs and
// setattr_should_drop_sgid: setuid and setgid bits, the security.capability xattr, and
// the caller's group membership and capabilities they depend on.
//
// Owns no state. The functions that change an inode take its Inode::mu themselves (call
// them with no lock held); the group and capability tests read /proc and the request's
// groups with no lock held. Used by setattr, open(O_TRUNC), write and fallocate.
#ifndef ZBUDFS_FS_PRIVILEGES_H_
#define ZBUDFS_FS_PRIVILEGES_H_

#define FUSE_USE_VERSION 314
#include <fuse3/fuse_lowlevel.h>
#include <sys/types.h>

#include <optional>

namespace zbudfs {

class Filesystem;
struct Inode;

// Clears what a change by the caller of req must clear, as the kernel's file_remove_privs:
// setuid; setgid when the group may execute, or the caller is outside `group` (the file's
// group before the change; default: its group now) and, if may_be_capable, lacks
// CAP_FSETID; and the security.capability xattr. For the requests the kernel flags under
// FUSE_HANDLE_KILLPRIV_V2 (it flags writes and truncates only for callers without
// CAP_FSETID, chowns always). When the mode changed, the kernel's cached attributes are
// invalidated (ForgetCachedAttrs) before this returns, so before the request's reply.
// Takes Inode::mu; call with no lock held.
void KillPrivileges(fuse_req_t req, Inode* inode, std::optional<gid_t> group = std::nullopt,
                    bool may_be_capable = false);
// The same for a change the kernel does not flag (fallocate; open(O_TRUNC) without
// HANDLE_KILLPRIV_V2): setuid and setgid only when the caller lacks CAP_FSETID (read from
// /proc, and only when the file has either bit); file capabilities always.
void KillPrivilegesUnlessCapable(fuse_req_t req, Inode* inode);
// Makes the kernel drop its cached attributes of ino (after the daemon cleared setuid or
// setgid, or writeback grew the file): the kernel keeps a mode for kCacheTimeout and execs
// by it, and neither a write's reply nor fallocate's or open(O_TRUNC)'s refreshes it; nor
// does writeback refresh st_blocks. Safe from any handler: it sends
// nothing back to us and takes no lock the kernel may hold meanwhile.
void ForgetCachedAttrs(Filesystem* fs, fuse_ino_t ino);
// Removes the security.capability xattr (a truncate or write by a capable caller).
void ClearCapabilities(fuse_req_t req, Inode* inode);
// True when the process behind req has capability cap (CAP_* of <linux/capability.h>) in
// its effective set, read from /proc/PID/status; false if that process is gone.
bool CallerHasCapability(fuse_req_t req, int cap);
// True when the caller of req is in group gid (primary or supplementary).
bool InGroup(fuse_req_t req, gid_t gid);

}  // namespace zbudfs

#endif  // ZBUDFS_FS_PRIVILEGES_H_

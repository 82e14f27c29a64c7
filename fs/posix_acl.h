// POSIX access ACLs as the kernel passes them in system.posix_acl_access (the xattr form of
// <linux/posix_acl_xattr.h>: a version word, then tag/perm/id entries in canonical order).
//
// zbudfs stores no ACLs (it does not negotiate FUSE_POSIX_ACL, so the kernel would not
// enforce them) but accepts an access ACL that says no more than the mode does: user::,
// group:: and other:: only. Setting one is a chmod of the permission bits, as on tmpfs,
// where posix_acl_update_mode() turns such an ACL into the mode and stores nothing. cp -a,
// rsync -A and tar --acls set exactly that on every file they copy; answering it spares
// them the failed call and the chmod they make after it (two FUSE requests per file).
//
// Pure functions, no state, no locks.
#ifndef ZBUDFS_FS_POSIX_ACL_H_
#define ZBUDFS_FS_POSIX_ACL_H_

#include <sys/types.h>

#include <string_view>

namespace zbudfs {

inline constexpr std::string_view kAclAccessXattr = "system.posix_acl_access";
inline constexpr std::string_view kAclDefaultXattr = "system.posix_acl_default";
inline bool IsAclName(std::string_view name) {
  return name == kAclAccessXattr || name == kAclDefaultXattr;
}

// What an access ACL amounts to.
enum class AclKind {
  kMalformed,  // Not an ACL in the kernel's xattr form (EINVAL).
  kMode,       // Exactly user::, group:: and other::: the permission bits in *mode.
  kExtended,   // Named users or groups, or a mask: needs stored ACLs (EOPNOTSUPP).
};

// Parses value (the xattr form) and, for AclKind::kMode, sets *mode to the nine permission
// bits it grants (0 to 0777).
AclKind ParseAccessAcl(std::string_view value, mode_t* mode);

}  // namespace zbudfs

#endif  // ZBUDFS_FS_POSIX_ACL_H_

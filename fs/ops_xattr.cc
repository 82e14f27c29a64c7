// FUSE handlers for extended attributes: setxattr, getxattr, listxattr, removexattr, plus the
// root directory's control attributes (filesystem.h): user.zbudfs.stats and
// user.zbudfs.options to read, user.zbudfs.remount to change a running mount's limits. They
// are answered by name and never listed. POSIX ACLs (system.posix_acl_*) are never stored:
// an access ACL that is only a mode sets the mode, removing one succeeds, reading one says
// ENODATA, as tmpfs does for those; an ACL with named entries or a mask is EOPNOTSUPP
// (posix_acl.h).
//
// Memory: every stored attribute is charged to the PageStore (ChargeMetadata: against size=
// and mem_limit, shown in df and mem_used_total) before it is stored, and given back when it
// is replaced or removed and when its inode is freed. The statistics attribute is not
// stored, so not charged.
//
// Only Inode::mu is taken here; the statistics come from PageStore::Stats(), charges are
// made and the caller's capabilities read from /proc with no lock held. The kernel itself enforces
// name length (ERANGE), value size (E2BIG), permissions and the user.* rules for special files.
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "fs/filesystem.h"
#include "fs/log.h"
#include "fs/posix_acl.h"
#include "fs/privileges.h"

namespace zbudfs {
namespace {

// Namespaces tmpfs keeps in memory; others (system.*, none) are not supported.
bool SupportedName(std::string_view name) {
  return name.starts_with("user.") || name.starts_with("trusted.") || name.starts_with("security.");
}

// A supported prefix with nothing after it ("user."): EINVAL, as tmpfs says.
bool EmptySuffix(std::string_view name) {
  return name == "user." || name == "trusted." || name == "security.";
}

bool IsControl(fuse_ino_t ino, std::string_view name) {
  return ino == FUSE_ROOT_ID && (name == kStatsXattr || name == kOptionsXattr ||
                                 name == kRemountXattr || name == kPackXattr);
}

// Packs every file into clusters now (PageStore::PackAll): root or the mount's owner.
int DoPack(Filesystem* fs, fuse_req_t req) {
  const uid_t uid = fuse_req_ctx(req)->uid;
  if (uid != 0 && uid != getuid()) return EPERM;
  const uint64_t packed = fs->store().PackAll();
  LogInfo("packed %llu pages into clusters", static_cast<unsigned long long>(packed));
  return 0;
}

// A remount through the control attribute: root or the user the daemon runs as (the mount's
// owner) only; the kernel has already checked write permission on the root directory.
int DoRemount(Filesystem* fs, fuse_req_t req, std::string_view list) {
  const uid_t uid = fuse_req_ctx(req)->uid;
  if (uid != 0 && uid != getuid()) return EPERM;
  Status s = fs->Remount(list);
  if (!s.ok()) {
    LogError("remount refused: %s", s.message().c_str());
    return StoreErrno(s, EINVAL);
  }
  LogInfo("remounted: %.*s", static_cast<int>(list.size()), list.data());
  return 0;
}

// Replies with value, or its size when size == 0, or ERANGE when it does not fit.
void ReplyValue(fuse_req_t req, const std::string& value, size_t size) {
  if (size == 0) {
    fuse_reply_xattr(req, value.size());
  } else if (value.size() > size) {
    fuse_reply_err(req, ERANGE);
  } else {
    fuse_reply_buf(req, value.data(), value.size());
  }
}

}  // namespace

uint64_t XattrCost(size_t name_len, size_t value_len) {
  return name_len + value_len + kXattrOverhead;
}

uint64_t EraseXattr(Inode* inode, std::string_view name) {
  XattrMap* map = inode->xattrs.get();
  if (map == nullptr) return 0;
  auto it = map->find(name);
  if (it == map->end()) return 0;
  const uint64_t cost = XattrCost(it->first.size(), it->second.size());
  map->erase(it);
  if (map->empty()) inode->xattrs.reset();  // Most inodes have none: free the map.
  return cost;
}

uint64_t EraseAllXattrs(Inode* inode) {
  uint64_t cost = 0;
  if (const XattrMap* map = inode->xattrs.get()) {
    for (const auto& [name, value] : *map) cost += XattrCost(name.size(), value.size());
  }
  inode->xattrs.reset();
  return cost;
}

void UnchargeXattrs(Filesystem* fs, uint64_t cost) {
  // Giving a charge back never fails (PageStore::ChargeMetadata).
  if (cost != 0) (void)fs->store().ChargeMetadata(-static_cast<int64_t>(cost));
}

namespace {

// Stores the attribute under Inode::mu; returns an errno value, and in *refund what the
// caller charged beforehand that is to be given back (the value replaced, or all of it if
// nothing was stored).
int StoreXattr(Inode* inode, std::string_view name, const char* value, size_t size, int flags,
               uint64_t charged, uint64_t* refund) {
  const timespec now = Now();
  *refund = charged;
  MutexLock lock(&inode->mu);
  XattrMap* map = inode->xattrs.get();
  auto it = map != nullptr ? map->find(name) : XattrMap::iterator();
  const bool exists = map != nullptr && it != map->end();
  if ((flags & XATTR_CREATE) && exists) return EEXIST;
  if ((flags & XATTR_REPLACE) && !exists) return ENODATA;
  if (exists) {
    *refund = XattrCost(it->first.size(), it->second.size());
    it->second.assign(value, size);
  } else {
    if (map == nullptr) map = (inode->xattrs = std::make_unique<XattrMap>()).get();
    map->emplace(std::string(name), std::string(value, size));
    *refund = 0;
  }
  inode->ctime = now;
  return 0;
}

// ACLs are the owner's to change, or a caller's with CAP_FOWNER.
bool OwnerOrCapable(fuse_req_t req, uid_t owner) {
  constexpr int kCapFowner = 3;  // CAP_FOWNER in <linux/capability.h>.
  return fuse_req_ctx(req)->uid == owner || CallerHasCapability(req, kCapFowner);
}

// Removing an ACL (or setting an empty one) succeeds with nothing stored, as on tmpfs: the
// mode stays, the ctime changes.
int RemoveAcl(fuse_req_t req, Inode* inode) {
  if (!OwnerOrCapable(req, inode->ReadOwners().uid)) return EPERM;
  const timespec now = Now();
  MutexLock lock(&inode->mu);
  inode->ctime = now;
  return 0;
}

// An access ACL that says no more than a mode is a chmod of the permission bits (posix_acl.h),
// under posix_acl_update_mode()'s rules: the owner or CAP_FOWNER only; setgid dropped when
// the caller is outside the file's group and lacks CAP_FSETID. The ctime changes even when
// the mode does not, as on tmpfs.
int SetAccessAcl(Filesystem* fs, fuse_req_t req, Inode* inode, std::string_view value) {
  mode_t perms = 0;
  switch (ParseAccessAcl(value, &perms)) {
    case AclKind::kMalformed:
      return EINVAL;
    case AclKind::kExtended:
      return EOPNOTSUPP;
    case AclKind::kMode:
      break;
  }
  const Inode::Owners o = inode->ReadOwners();
  if (!OwnerOrCapable(req, o.uid)) return EPERM;
  constexpr int kCapFsetid = 4;  // CAP_FSETID in <linux/capability.h>.
  const bool drop_sgid =
      (o.mode & S_ISGID) && !InGroup(req, o.gid) && !CallerHasCapability(req, kCapFsetid);
  const timespec now = Now();
  bool changed;
  {
    MutexLock lock(&inode->mu);
    const mode_t before = inode->mode;
    inode->mode = (inode->mode & ~mode_t{0777}) | perms;
    if (drop_sgid) inode->mode &= ~mode_t{S_ISGID};
    inode->ctime = now;
    changed = inode->mode != before;
  }
  // The kernel keeps the mode it has (it only updates the ctime after a setxattr).
  if (changed) ForgetCachedAttrs(fs, inode->ino);
  return 0;
}

int DoSetXattr(Filesystem* fs, fuse_req_t req, Inode* inode, std::string_view name,
               const char* value, size_t size, int flags) {
  if (inode->ino == FUSE_ROOT_ID && name == kRemountXattr) {
    return DoRemount(fs, req, std::string_view(value, size));
  }
  if (inode->ino == FUSE_ROOT_ID && name == kPackXattr) return DoPack(fs, req);
  if (name == kAclAccessXattr) return SetAccessAcl(fs, req, inode, std::string_view(value, size));
  if (IsControl(inode->ino, name) || name == kUsageXattr) return EPERM;
  if (!SupportedName(name)) return EOPNOTSUPP;
  if (EmptySuffix(name)) return EINVAL;
  // Charged in full first and the replaced value given back after, as tmpfs does: a
  // replace on a full mount may fail even when the new value is the smaller.
  const uint64_t cost = XattrCost(name.size(), size);
  if (Status s = fs->store().ChargeMetadata(static_cast<int64_t>(cost)); !s.ok()) return s.code();
  uint64_t refund = 0;
  const int err = StoreXattr(inode, name, value, size, flags, cost, &refund);
  UnchargeXattrs(fs, refund);
  return err;
}

// What a regular file costs, one "name value" line each (kUsageXattr).
std::string UsageText(Filesystem* fs, Inode* inode) {
  const FileUsage u = fs->store().Usage(inode->ino);
  off_t size;
  {
    MutexLock lock(&inode->mu);
    size = inode->size;
  }
  return "size " + std::to_string(size) + "\npages " + std::to_string(u.pages) + "\nstored_bytes " +
         std::to_string(u.stored_bytes) + "\ncompr_bytes " + std::to_string(u.compr_bytes) +
         "\noverflow_bytes " + std::to_string(u.overflow_bytes) + "\n";
}

void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
              int flags) {
  Filesystem* fs = Filesystem::From(req);
  std::shared_ptr<Inode> inode = fs->Get(ino);
  fuse_reply_err(
      req, inode == nullptr ? ENOENT : DoSetXattr(fs, req, inode.get(), name, value, size, flags));
}

void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  Filesystem* fs = Filesystem::From(req);
  if (IsControl(ino, name)) {
    const std::string_view n = name;
    if (n == kPackXattr) {
      fuse_reply_err(req, ENODATA);
      return;
    }
    ReplyValue(req,
               n == kStatsXattr     ? FormatStats(fs->store().Stats())
               : n == kOptionsXattr ? fs->OptionsText()
                                    : fs->LastRemountError(),
               size);
    return;
  }
  std::shared_ptr<Inode> inode = fs->Get(ino);
  if (inode == nullptr) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  if (std::string_view(name) == kUsageXattr && inode->is_reg()) {
    ReplyValue(req, UsageText(fs, inode.get()), size);
    return;
  }
  std::string value;
  bool found = false;
  {
    MutexLock lock(&inode->mu);
    if (const XattrMap* map = inode->xattrs.get()) {
      auto it = map->find(std::string_view(name));
      if (it != map->end()) {
        value = it->second;
        found = true;
      }
    }
  }
  if (!found) {
    // No ACL is ever stored (posix_acl.h): the mode is the whole answer, as on tmpfs.
    fuse_reply_err(req, SupportedName(name) || IsAclName(name) ? ENODATA : EOPNOTSUPP);
    return;
  }
  ReplyValue(req, value, size);
}

void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  std::shared_ptr<Inode> inode = Filesystem::From(req)->Get(ino);
  if (inode == nullptr) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  std::string names;
  std::string trusted;  // trusted.* names, listed only to callers with CAP_SYS_ADMIN.
  {
    MutexLock lock(&inode->mu);
    if (const XattrMap* map = inode->xattrs.get()) {
      for (const auto& [name, value] : *map) {
        (name.starts_with("trusted.") ? trusted : names).append(name.c_str(), name.size() + 1);
      }
    }
  }
  // As tmpfs (the kernel already refuses their values to others); /proc is read only when
  // there are some.
  constexpr int kCapSysAdmin = 21;  // CAP_SYS_ADMIN in <linux/capability.h>.
  if (!trusted.empty() && CallerHasCapability(req, kCapSysAdmin)) names += trusted;
  ReplyValue(req, names, size);
}

int DoRemoveXattr(Filesystem* fs, fuse_req_t req, Inode* inode, std::string_view name) {
  if (IsControl(inode->ino, name) || name == kUsageXattr) return EPERM;
  if (IsAclName(name)) return RemoveAcl(req, inode);
  if (!SupportedName(name)) return EOPNOTSUPP;
  const timespec now = Now();
  uint64_t cost;
  {
    MutexLock lock(&inode->mu);
    cost = EraseXattr(inode, name);
    if (cost == 0) return ENODATA;
    inode->ctime = now;
  }
  UnchargeXattrs(fs, cost);
  return 0;
}

void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  Filesystem* fs = Filesystem::From(req);
  std::shared_ptr<Inode> inode = fs->Get(ino);
  fuse_reply_err(req, inode == nullptr ? ENOENT : DoRemoveXattr(fs, req, inode.get(), name));
}

}  // namespace

void AddXattrOps(fuse_lowlevel_ops* ops) {
  ops->setxattr = SetXattr;
  ops->getxattr = GetXattr;
  ops->listxattr = ListXattr;
  ops->removexattr = RemoveXattr;
}

}  // namespace zbudfs

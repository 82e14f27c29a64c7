// Clearing setuid, setgid and file capabilities (see privileges.h).
#include "fs/privileges.h"

#include <cstdio>
#include <string>
#include <vector>

#include "fs/filesystem.h"

namespace zbudfs {
namespace {

bool CallerHasCapFsetid(fuse_req_t req) {
  constexpr int kCapFsetid = 4;  // CAP_FSETID in <linux/capability.h>.
  return CallerHasCapability(req, kCapFsetid);
}

}  // namespace

bool InGroup(fuse_req_t req, gid_t gid) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  if (ctx->gid == gid) return true;
  std::vector<gid_t> groups(64);
  int n = fuse_req_getgroups(req, static_cast<int>(groups.size()), groups.data());
  if (n > static_cast<int>(groups.size())) {
    groups.resize(n);
    n = fuse_req_getgroups(req, n, groups.data());
  }
  for (int i = 0; i < n && i < static_cast<int>(groups.size()); ++i) {
    if (groups[i] == gid) return true;
  }
  return false;
}

bool CallerHasCapability(fuse_req_t req, int cap) {
  const std::string path = "/proc/" + std::to_string(fuse_req_ctx(req)->pid) + "/status";
  FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) return false;
  char line[256];
  unsigned long long caps = 0;
  bool found = false;
  while (!found && std::fgets(line, sizeof(line), f) != nullptr) {
    found = std::sscanf(line, "CapEff: %llx", &caps) == 1;
  }
  std::fclose(f);
  return found && (caps & (1ull << cap)) != 0;
}

void ClearCapabilities(fuse_req_t req, Inode* inode) {
  uint64_t cost;
  {
    MutexLock lock(&inode->mu);
    cost = EraseXattr(inode, "security.capability");
    if (cost != 0) inode->ctime = Now();
  }
  UnchargeXattrs(Filesystem::From(req), cost);
}

void ForgetCachedAttrs(Filesystem* fs, fuse_ino_t ino) {
  // Attributes only (offset -1): no page is touched and no request is sent back to us, so
  // this cannot wait for a worker or for the inode lock that the kernel holds around the
  // write, truncate or fallocate being served (fuse_reverse_inval_inode takes only the
  // inode's spinlock). It also bumps the kernel's attribute version, so that a getattr
  // answered before the change cannot put the old mode back.
  if (fs->session() != nullptr) (void)fuse_lowlevel_notify_inval_inode(fs->session(), ino, -1, 0);
}

void KillPrivilegesUnlessCapable(fuse_req_t req, Inode* inode) {
  bool privileged;
  {
    MutexLock lock(&inode->mu);
    privileged = (inode->mode & (S_ISUID | S_ISGID)) != 0;
  }
  if (privileged && !CallerHasCapFsetid(req)) {
    KillPrivileges(req, inode);
  } else {
    ClearCapabilities(req, inode);
  }
}

void KillPrivileges(fuse_req_t req, Inode* inode, std::optional<gid_t> group, bool may_be_capable) {
  mode_t mode;
  gid_t gid;
  {
    MutexLock lock(&inode->mu);
    mode = inode->mode;
    gid = group.value_or(inode->gid);
  }
  // The kernel's setattr_should_drop_sgid. The group and capability tests read /proc: only
  // for setgid without group execute, and with no lock held.
  const bool drop_sgid =
      (mode & S_ISGID) &&
      ((mode & S_IXGRP) || (!InGroup(req, gid) && !(may_be_capable && CallerHasCapFsetid(req))));
  const mode_t kill = S_ISUID | (drop_sgid ? S_ISGID : 0);
  bool mode_changed;
  uint64_t caps_cost;
  {
    MutexLock lock(&inode->mu);
    caps_cost = EraseXattr(inode, "security.capability");
    mode_changed = (inode->mode & kill) != 0;
    if (mode_changed || caps_cost != 0) {
      inode->mode &= ~kill;
      inode->ctime = Now();
    }
  }
  Filesystem* fs = Filesystem::From(req);
  UnchargeXattrs(fs, caps_cost);
  if (mode_changed) ForgetCachedAttrs(fs, inode->ino);
}

}  // namespace zbudfs

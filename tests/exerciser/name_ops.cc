#include "tests/exerciser/name_ops.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "tests/exerciser/listing.h"
#include "tests/exerciser/result.h"

namespace zbudfs::exerciser {

void NameOps::Stat() { c_.check.CompareStat(c_.pick.Any(), "stat"); }

void NameOps::Unlink() {
  const std::string p = c_.pick.Any();
  c_.log.Same("unlink " + p, CALL(unlink(c_.model.Z(p).c_str())),
              CALL(unlink(c_.model.R(p).c_str())));
}

void NameOps::Rename() {
  const std::string a = c_.pick.Any(), b = c_.pick.Any();
  const std::string za = c_.model.Z(a), zb = c_.model.Z(b);
  const std::string ra = c_.model.R(a), rb = c_.model.R(b);
  const uint64_t r = c_.pick.rng().Below(100);
  if (r < 80) {
    c_.log.Same("rename " + a + " -> " + b, CALL(rename(za.c_str(), zb.c_str())),
                CALL(rename(ra.c_str(), rb.c_str())));
  } else {
    const unsigned flags = r < 90 ? RENAME_NOREPLACE : RENAME_EXCHANGE;
    c_.log.Same(
        std::string(flags == RENAME_NOREPLACE ? "renameat2 NOREPLACE " : "renameat2 EXCHANGE ") +
            a + " <-> " + b,
        CALL(syscall(SYS_renameat2, AT_FDCWD, za.c_str(), AT_FDCWD, zb.c_str(), flags)),
        CALL(syscall(SYS_renameat2, AT_FDCWD, ra.c_str(), AT_FDCWD, rb.c_str(), flags)));
  }
  c_.check.CompareStat(b, "rename");
}

void NameOps::Link() {
  const std::string a = c_.pick.Any(), b = c_.pick.File();
  if (c_.log.Same("link " + a + " -> " + b,
                  CALL(link(c_.model.Z(a).c_str(), c_.model.Z(b).c_str())),
                  CALL(link(c_.model.R(a).c_str(), c_.model.R(b).c_str())))) {
    c_.check.CompareStat(a, "link");
  }
}

void NameOps::Mkdir() {
  const std::string d = c_.pick.rng().Chance(80) ? c_.pick.Dir() : c_.pick.File();
  c_.log.Same("mkdir " + d, CALL(mkdir(c_.model.Z(d).c_str(), 0755)),
              CALL(mkdir(c_.model.R(d).c_str(), 0755)));
}

void NameOps::Rmdir() {
  const std::string d = c_.pick.rng().Chance(80) ? c_.pick.Dir() : c_.pick.File();
  c_.log.Same("rmdir " + d, CALL(rmdir(c_.model.Z(d).c_str())), CALL(rmdir(c_.model.R(d).c_str())));
}

void NameOps::Readdir() {
  const std::string d = c_.pick.rng().Chance(40) ? std::string() : c_.pick.Dir();
  auto z = List(d.empty() ? c_.model.zroot() : c_.model.Z(d));
  auto r = List(d.empty() ? c_.model.rroot() : c_.model.R(d));
  c_.log.Log("readdir /" + d + " -> [" + Join(r.second) + "] " + ErrName(r.first));
  if (z.first != r.first || z.second != r.second) {
    c_.log.Fail(Fmt("readdir /%s: zbudfs %s [%s], reference %s [%s]", d.c_str(),
                    ErrName(z.first).c_str(), Join(z.second).c_str(), ErrName(r.first).c_str(),
                    Join(r.second).c_str()));
  }
}

}  // namespace zbudfs::exerciser

#!/usr/bin/env bash
# Permissions and extended attributes as unprivileged users (zbudfs mounted with
# allow_other): ownership of new inodes, 0600 files, chmod/chown rules, the sticky bit,
# setgid directories, setuid/setgid clearing on write and chown (and a setuid binary run
# right after another user's change runs as that user), umask; xattrs with flags,
# ENODATA, ERANGE, E2BIG and namespace rules; POSIX ACLs that are only a mode. Compared with
# tmpfs result by result (an ACL with named entries is refused on zbudfs only); then the
# statistics xattr is readable by any user and read-only.
source "$(dirname "$0")/lib.sh"

for u in zbt_alice zbt_bob; do
  id "$u" >/dev/null 2>&1 || useradd -M -N -s /usr/sbin/nologin "$u" || fail "useradd $u"
done
getent group zbt_team >/dev/null || groupadd zbt_team || fail "groupadd zbt_team"
usermod -a -G zbt_team zbt_alice

cat >"$WORK/perm.py" <<'PY'
import ctypes, errno, mmap, os, pwd, grp, shutil, stat, struct, subprocess, sys

os.chdir(sys.argv[1])
only_zbudfs = sys.argv[2] == "zbudfs"
libc = ctypes.CDLL(None, use_errno=True)
alice, bob = pwd.getpwnam("zbt_alice"), pwd.getpwnam("zbt_bob")
team = grp.getgrnam("zbt_team").gr_gid
users = {0: "root", alice.pw_uid: "alice", bob.pw_uid: "bob"}
groups = {0: "root", alice.pw_gid: "users", bob.pw_gid: "users", team: "team"}

from probe import outcome, read, write

def run_as(user, fn, umask=0o022):
    """Runs fn in a child with user's credentials; returns its result or errno name."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        def as_user():
            if user is not None:
                os.setgroups(os.getgrouplist(user.pw_name, user.pw_gid))
                os.setresgid(user.pw_gid, user.pw_gid, user.pw_gid)
                os.setresuid(user.pw_uid, user.pw_uid, user.pw_uid)
            os.umask(umask)
            return fn()
        os.write(w, outcome(as_user).encode())
        os._exit(0)
    os.close(w)
    out = os.read(r, 1 << 20).decode()
    os.close(r)
    os.waitpid(pid, 0)
    return out

def t(label, user, fn, umask=0o022):
    who = "root" if user is None else user.pw_name[4:]
    print(f"{label} [{who}]: {run_as(user, fn, umask)}")

def owner(p):
    s = os.lstat(p)
    return (stat.filemode(s.st_mode), users.get(s.st_uid, s.st_uid), groups.get(s.st_gid, s.st_gid))

def getx_small(p, name, size):
    buf = ctypes.create_string_buffer(size)
    n = libc.getxattr(p.encode(), name.encode(), buf, ctypes.c_size_t(size))
    if n < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return n

A, B = alice, bob
# Ownership and modes of new inodes.
t("alice creates secret", A, lambda: write("secret", b"s3cr3t", mode=0o600))
t("secret owner", None, lambda: owner("secret"))
t("bob reads secret", B, lambda: read("secret"))
t("bob writes secret", B, lambda: write("secret", b"x", os.O_WRONLY))
t("bob stats secret", B, lambda: owner("secret"))
t("alice reads secret", A, lambda: read("secret"))
t("umask 077 create", A, lambda: (write("private"), owner("private"))[1], umask=0o077)
t("umask 000 mkdir", A, lambda: (os.mkdir("adir", 0o777), owner("adir"))[1], umask=0)
# chmod / chown rules.
t("bob chmods secret", B, lambda: os.chmod("secret", 0o644))
t("bob chowns secret", B, lambda: os.chown("secret", B.pw_uid, -1))
t("alice gives secret to bob", A, lambda: os.chown("secret", B.pw_uid, -1))
t("alice chgrp to team", A, lambda: (os.chown("secret", -1, team), owner("secret"))[1])
t("alice chgrp to root's group", A, lambda: os.chown("secret", -1, 0))
t("root chowns to bob", None, lambda: (os.chown("secret", B.pw_uid, B.pw_gid), owner("secret"))[1])
t("bob reads his file", B, lambda: read("secret"))
t("bob chmods his file", B, lambda: (os.chmod("secret", 0o640), owner("secret"))[1])
# Directories without search permission.
t("alice private dir", A, lambda: (os.mkdir("priv", 0o700), write("priv/f"))[0])
t("bob lists priv", B, lambda: os.listdir("priv"))
t("bob stats priv/f", B, lambda: os.stat("priv/f").st_size)
t("bob creates in priv", B, lambda: write("priv/g"))
t("bob access priv", B, lambda: (os.access("priv", os.R_OK), os.access("priv", os.X_OK)))
# Sticky directory (the root is 1777).
t("alice file in sticky root", A, lambda: write("afile", mode=0o666))
t("bob unlinks it", B, lambda: os.unlink("afile"))
t("bob renames it", B, lambda: os.rename("afile", "bfile"))
t("bob writes it", B, lambda: write("afile", b"bob", os.O_WRONLY))
t("alice unlinks it", A, lambda: os.unlink("afile"))
# setgid directories.
t("team dir", None, lambda: (os.mkdir("sg"), os.chown("sg", 0, team), os.chmod("sg", 0o2777), owner("sg"))[3])
t("alice file in sg", A, lambda: (write("sg/f"), owner("sg/f"))[1])
t("alice dir in sg", A, lambda: (os.mkdir("sg/d", 0o755), owner("sg/d"))[1])
t("bob g+s file in sg", B, lambda: (write("sg/bf", mode=0o2755), owner("sg/bf"))[1])
t("bob chmod g+s on team file", B, lambda: (os.chmod("sg/bf", 0o2755), owner("sg/bf"))[1])
# setuid/setgid clearing.
t("alice suid file", A, lambda: (write("suid", mode=0o6777), os.chmod("suid", 0o6777), owner("suid"))[2])
t("bob writes suid file", B, lambda: write("suid", b"bob", os.O_WRONLY))
t("mode after bob's write", None, lambda: owner("suid"))
t("alice suid again", A, lambda: (os.chmod("suid", 0o6755), owner("suid"))[1])
t("alice writes own suid file", A, lambda: write("suid", b"alice", os.O_WRONLY))
t("mode after alice's write", None, lambda: owner("suid"))
t("alice suid once more", A, lambda: (os.chmod("suid", 0o4755), owner("suid"))[1])
t("root writes suid file", None, lambda: write("suid", b"root", os.O_WRONLY))
t("mode after root's write", None, lambda: owner("suid"))
t("alice truncates suid file", A, lambda: os.truncate("suid", 1))
t("mode after truncate", None, lambda: owner("suid"))
t("alice suid + chown", A, lambda: (os.chmod("suid", 0o4755), os.chown("suid", -1, team), owner("suid"))[2])
t("root suid + chown", None, lambda: (os.chmod("suid", 0o4755), os.chown("suid", B.pw_uid, -1), owner("suid"))[2])
# ... with the kernel trusting the daemon to clear them (FUSE_HANDLE_KILLPRIV_V2): every
# path that must clear, and the cases that must not.
def write_direct(p, data):
    fd = os.open(p, os.O_WRONLY | os.O_DIRECT)
    try:
        buf = mmap.mmap(-1, 4096)
        buf.write(data.ljust(4096, b"."))
        os.write(fd, buf)
    finally:
        os.close(fd)
def fallocate(p, length):
    fd = os.open(p, os.O_WRONLY)
    try:
        os.posix_fallocate(fd, 0, length)
    finally:
        os.close(fd)
CAPS = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)  # v2, effective, cap_net_raw.
t("bob writes plain file", B, lambda: (write("kp", b"plain", mode=0o666), os.chmod("kp", 0o666), write("kp", b"again", os.O_WRONLY), owner("kp"))[3])
t("alice cannot chmod bob's file", A, lambda: os.chmod("kp", 0o6777))
for how, op in [("writes", lambda: write("kp", b"alice", os.O_WRONLY)),
                ("writes O_DIRECT", lambda: write_direct("kp", b"direct")),
                ("fallocates", lambda: fallocate("kp", 65536)),
                ("opens O_TRUNC", lambda: os.close(os.open("kp", os.O_WRONLY | os.O_TRUNC))),
                ("truncates", lambda: os.truncate("kp", 7))]:
    t("bob sets 6777", B, lambda: (os.chmod("kp", 0o6777), owner("kp"))[1])
    t(f"alice {how}", A, lambda: (op(), owner("kp"))[1])
t("bob sets 2766 (setgid, no group exec)", B, lambda: (os.chmod("kp", 0o2766), owner("kp"))[1])
t("alice (not in group users) writes", A, lambda: (write("kp", b"x", os.O_WRONLY), owner("kp"))[1])
t("team file 2766", None, lambda: (os.chown("kp", B.pw_uid, team), os.chmod("kp", 0o2766), owner("kp"))[2])
t("alice (in group team) writes", A, lambda: (write("kp", b"y", os.O_WRONLY), owner("kp"))[1])
t("bob (not in group team) writes", B, lambda: (write("kp", b"z", os.O_WRONLY), owner("kp"))[1])
t("root writes, direct writes, fallocates, truncates a 6777 file", None, lambda: (os.chmod("kp", 0o6777), write("kp", b"r", os.O_WRONLY), write_direct("kp", b"rd"), fallocate("kp", 8192), os.truncate("kp", 3), owner("kp"))[5])
t("root chowns a 6777 file", None, lambda: (os.chown("kp", A.pw_uid, -1), owner("kp"))[1])
t("root chowns a 2755 file", None, lambda: (os.chmod("kp", 0o2755), os.chown("kp", B.pw_uid, -1), owner("kp"))[2])
t("root chowns a 2745 file", None, lambda: (os.chmod("kp", 0o2745), os.chown("kp", A.pw_uid, -1), owner("kp"))[2])
t("root chowns a 6755 file to -1 -1", None, lambda: (os.chmod("kp", 0o6755), os.chown("kp", -1, -1), owner("kp"))[2])
t("root chowns a 2745 file to -1 -1", None, lambda: (os.chmod("kp", 0o2745), os.chown("kp", -1, -1), owner("kp"))[2])
t("owner chowns her 4755 file to -1 -1", A, lambda: (os.chmod("kp", 0o4755), os.chown("kp", -1, -1), owner("kp"))[2])
t("root chowns a 3777 dir to -1 -1", None, lambda: (os.mkdir("cd"), os.chmod("cd", 0o3777), os.chown("cd", -1, -1), owner("cd"))[3])
# The setgid decision of a chgrp is made against the group before it; O_TRUNC clears like a
# truncate; root without CAP_FSETID is cleared like anyone (setpriv drops it).
def no_fsetid(code):
    return os.system("setpriv --bounding-set=-fsetid -- python3 -c " + repr(code))
t("alice 2664 file of group root", None, lambda: (write("cg", mode=0o664), os.chown("cg", A.pw_uid, 0), os.chmod("cg", 0o2664), owner("cg"))[3])
t("alice chgrp to team", A, lambda: (os.chown("cg", -1, team), owner("cg"))[1])
t("bob 2766 file of group root", None, lambda: (os.chown("cg", B.pw_uid, 0), os.chmod("cg", 0o2766), owner("cg"))[2])
t("alice opens it O_TRUNC", A, lambda: (os.close(os.open("cg", os.O_WRONLY | os.O_TRUNC)), owner("cg"))[1])
t("root without CAP_FSETID opens a 6777 file O_TRUNC", None, lambda: (os.chmod("cg", 0o6777), no_fsetid("import os; os.close(os.open('cg', os.O_WRONLY | os.O_TRUNC))"), owner("cg"))[2])
t("root without CAP_FSETID writes a 6777 file", None, lambda: (os.chmod("cg", 0o6777), no_fsetid("import os; fd = os.open('cg', os.O_WRONLY); os.write(fd, b'x'); os.close(fd)"), owner("cg"))[2])
t("root without CAP_FSETID truncates a 2776 file of group root", None, lambda: (os.chmod("cg", 0o2776), no_fsetid("import os; os.truncate('cg', 0)"), owner("cg"))[2])
t("root without CAP_FSETID fallocates a 6777 file", None, lambda: (os.chmod("cg", 0o6777), no_fsetid("import os; fd = os.open('cg', os.O_WRONLY); os.posix_fallocate(fd, 0, 4096); os.close(fd)"), owner("cg"))[2])
t("written data survives", None, lambda: read("kp"))
t("root sets file capability", None, lambda: (write("cap", b"c", mode=0o777), os.chmod("cap", 0o777), os.setxattr("cap", "security.capability", CAPS), len(os.getxattr("cap", "security.capability")))[3])
t("root writes it", None, lambda: (write("cap", b"rw", os.O_WRONLY), os.listxattr("cap"))[1])
t("capability again, root truncates", None, lambda: (os.setxattr("cap", "security.capability", CAPS), os.truncate("cap", 0), os.listxattr("cap"))[2])
t("capability again, root chowns", None, lambda: (os.setxattr("cap", "security.capability", CAPS), os.chown("cap", B.pw_uid, -1), os.listxattr("cap"))[2])
for how, op in [("writes", lambda: write("cap", b"b", os.O_WRONLY)),
                ("writes O_DIRECT", lambda: write_direct("cap", b"bd"))]:
    t("root sets capability", None, lambda: (os.setxattr("cap", "security.capability", CAPS), os.listxattr("cap"))[1])
    t(f"alice {how}", A, lambda: (op(), os.listxattr("cap"))[1])
# A setuid copy of id(1) run by another user right after that user (or the owner) changed
# it: the kernel must not exec by a mode it cached before the daemon cleared the bits (the
# mount has `suid`). Each change is followed directly by the exec, with no stat between.
ID = read(shutil.which("id"))
def run_id(p):
    return subprocess.run(["./" + p, "-un"], capture_output=True, text=True).stdout.strip()
def fallocate_more(p):
    fd = os.open(p, os.O_WRONLY)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size + 4096)
    finally:
        os.close(fd)
t("alice 6777 copy of id", A, lambda: (write("sid", ID, mode=0o777), os.chmod("sid", 0o6777), owner("sid"))[2])
for who, how, op in [(B, "bob appends", lambda: write("sid", b"\n", os.O_WRONLY | os.O_APPEND)),
                     (B, "bob fallocates", lambda: fallocate_more("sid")),
                     (B, "bob truncates up", lambda: os.truncate("sid", len(ID) + 8192)),
                     (B, "bob rewrites O_TRUNC", lambda: write("sid", ID, os.O_WRONLY | os.O_TRUNC)),
                     (A, "alice chgrps", lambda: os.chown("sid", -1, team))]:
    t("alice sets 6777", A, lambda: os.chmod("sid", 0o6777))
    t(f"{how}, bob runs it", B, lambda: (op(), run_id("sid"))[1])
t("bob runs alice's untouched 6777 id", B, lambda: (os.chmod("sid", 0o6777), run_id("sid"))[1])
# Extended attributes.
t("alice sets user.a", A, lambda: os.setxattr("private", "user.a", b"1"))
t("alice gets user.a", A, lambda: os.getxattr("private", "user.a"))
t("bob gets user.a of 0600", B, lambda: os.getxattr("private", "user.a"))
t("alice opens private to all", A, lambda: os.chmod("private", 0o644))
t("bob gets user.a of 0644", B, lambda: os.getxattr("private", "user.a"))
t("bob sets user.b of 0644", B, lambda: os.setxattr("private", "user.b", b"2"))
t("create existing", A, lambda: os.setxattr("private", "user.a", b"9", os.XATTR_CREATE))
t("replace missing", A, lambda: os.setxattr("private", "user.z", b"9", os.XATTR_REPLACE))
t("replace existing", A, lambda: (os.setxattr("private", "user.a", b"22", os.XATTR_REPLACE), os.getxattr("private", "user.a"))[1])
t("get missing", A, lambda: os.getxattr("private", "user.zz"))
t("size query", A, lambda: getx_small("private", "user.a", 0))
t("small buffer", A, lambda: getx_small("private", "user.a", 1))
t("64 KiB value", A, lambda: os.setxattr("private", "user.big", b"v" * 65536))
t("64 KiB + 1 value", A, lambda: os.setxattr("private", "user.big2", b"v" * 65537))
t("empty value", A, lambda: (os.setxattr("private", "user.e", b""), os.getxattr("private", "user.e"))[1])
t("name 255", A, lambda: os.setxattr("private", "user." + "n" * 250, b"x"))
t("name 256", A, lambda: os.setxattr("private", "user." + "n" * 251, b"x"))
t("list", A, lambda: sorted(x[:12] for x in os.listxattr("private")))
t("remove", A, lambda: os.removexattr("private", "user.e"))
t("remove missing", A, lambda: os.removexattr("private", "user.e"))
t("trusted as user", A, lambda: os.setxattr("private", "trusted.t", b"x"))
t("trusted as root", None, lambda: (os.setxattr("private", "trusted.t", b"x"), os.getxattr("private", "trusted.t"))[1])
t("trusted listed to root", None, lambda: [x for x in os.listxattr("private") if x.startswith("trusted.")])
t("trusted listed to bob", B, lambda: [x for x in os.listxattr("private") if x.startswith("trusted.")])
t("trusted value to bob", B, lambda: os.getxattr("private", "trusted.t"))
t("unknown namespace", None, lambda: os.setxattr("private", "bogus.t", b"x"))
t("user.* on symlink", None, lambda: (os.symlink("private", "lnk"), os.setxattr("lnk", "user.a", b"x", follow_symlinks=False))[1])
t("user.* on fifo", None, lambda: (os.mkfifo("ff"), os.setxattr("ff", "user.a", b"x"))[1])
t("user.* on dir", A, lambda: (os.setxattr("adir", "user.d", b"dd"), os.getxattr("adir", "user.d"))[1])
t("xattr ctime", A, lambda: (lambda c: (os.setxattr("private", "user.c", b"1"), os.stat("private").st_ctime_ns != c)[1])(os.stat("private").st_ctime_ns))
# POSIX access ACLs that are only a mode (what cp -a and setfacl -b set): a chmod by the
# owner, with setgid dropped for a caller outside the group; nothing is stored.
def acl(*entries):  # (tag, perm) or (tag, perm, id): the kernel's xattr form.
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e, *([] if len(e) > 2 else [0xffffffff])) for e in entries)
ACL_750 = acl((1, 7), (4, 5), (0x20, 0))
ACL_644 = acl((1, 6), (4, 4), (0x20, 4))
t("alice sets a mode ACL", A, lambda: (write("acl", b"a", mode=0o644), os.setxattr("acl", "system.posix_acl_access", ACL_750), owner("acl"))[2])
t("alice reads the ACL", A, lambda: os.getxattr("acl", "system.posix_acl_access"))
t("bob sets alice's ACL", B, lambda: os.setxattr("acl", "system.posix_acl_access", ACL_644))
t("bob removes alice's ACL", B, lambda: os.removexattr("acl", "system.posix_acl_access"))
t("alice removes the ACL", A, lambda: (os.removexattr("acl", "system.posix_acl_access"), owner("acl"))[1])
t("alice's 2775 file of group root", None, lambda: (os.chown("acl", A.pw_uid, 0), os.chmod("acl", 0o2775), owner("acl"))[2])
t("alice sets a mode ACL on it", A, lambda: (os.setxattr("acl", "system.posix_acl_access", ACL_644), owner("acl"))[1])
t("ACL ctime", A, lambda: (lambda c: (os.setxattr("acl", "system.posix_acl_access", ACL_644), os.stat("acl").st_ctime_ns != c)[1])(os.stat("acl").st_ctime_ns))
t("default ACL of a dir", A, lambda: os.getxattr("adir", "system.posix_acl_default"))
t("ACLs listed", A, lambda: os.listxattr("acl"))
if only_zbudfs:
    t("Z alice sets an ACL with a named user", A, lambda: os.setxattr("acl", "system.posix_acl_access", acl((1, 7), (2, 4, B.pw_uid), (4, 5), (0x10, 5), (0x20, 0))))
    t("Z stats readable by bob", B, lambda: os.getxattr(".", "user.zbudfs.stats").split()[0])
    t("Z control names listed", B, lambda: [x for x in os.listxattr(".") if x.startswith("user.zbudfs")])
    t("Z options readable by bob", B, lambda: os.getxattr(".", "user.zbudfs.options").split()[0])
    t("Z bob remounts", B, lambda: os.setxattr(".", "user.zbudfs.remount", b"size=128M"))
    t("Z root remounts with a bad size", None, lambda: os.setxattr(".", "user.zbudfs.remount", b"size=abc"))
    t("Z the remount's error", B, lambda: os.getxattr(".", "user.zbudfs.remount").split(b":")[0])
    t("Z root removes remount", None, lambda: os.removexattr(".", "user.zbudfs.remount"))
    t("Z root sets options", None, lambda: os.setxattr(".", "user.zbudfs.options", b"x"))
    t("Z root sets stats", None, lambda: os.setxattr(".", "user.zbudfs.stats", b"x"))
    t("Z root removes stats", None, lambda: os.removexattr(".", "user.zbudfs.stats"))
    t("Z stats on a subdir", None, lambda: os.getxattr("adir", "user.zbudfs.stats"))
PY

check "reference transcript on tmpfs"
make_tmpfs "$WORK/tmpfs"
chmod 1777 "$WORK/tmpfs"
python3 "$WORK/perm.py" "$WORK/tmpfs" tmpfs >"$WORK/tmpfs.out" || fail "perm.py crashed on tmpfs"
check "same operations on zbudfs -o allow_other"
mount_zbudfs -o allow_other,suid,size=64M
python3 "$WORK/perm.py" "$MNT" zbudfs >"$WORK/zbudfs.out" || fail "perm.py crashed on zbudfs"
require_mounted
check "transcripts are identical ($(wc -l <"$WORK/tmpfs.out") operations)"
diff -u "$WORK/tmpfs.out" <(grep -v '^Z ' "$WORK/zbudfs.out") ||
  fail "zbudfs differs from tmpfs (- tmpfs, + zbudfs)"
check "control xattrs: readable by any user, never listed, remount by root only"
cat >"$WORK/z.expected" <<'EXP'
Z alice sets an ACL with a named user [alice]: ENOTSUP
Z stats readable by bob [bob]: b'orig_data_size'
Z control names listed [bob]: []
Z options readable by bob [bob]: b'source'
Z bob remounts [bob]: EPERM
Z root remounts with a bad size [root]: EINVAL
Z the remount's error [bob]: b'invalid size for option size'
Z root removes remount [root]: EPERM
Z root sets options [root]: EPERM
Z root sets stats [root]: EPERM
Z root removes stats [root]: EPERM
Z stats on a subdir [root]: ENODATA
EXP
diff -u "$WORK/z.expected" <(grep '^Z ' "$WORK/zbudfs.out") || fail "statistics xattr rules"
check "zbudfsctl works for an unprivileged user"
runuser -u zbt_bob -- "$ZBUDFSCTL_BIN" stats "$MNT" | grep -q '^mem_used_total [0-9]' ||
  fail "zbudfsctl stats as zbt_bob"
unmount_zbudfs

# Near full (size=16M is below what the kernel may hold dirty), every open for writing is
# direct I/O, and clone_fd's loop cannot negotiate HANDLE_KILLPRIV_V2: the daemon itself must
# clear setuid/setgid on those writes (the kernel's cached-write path does it for itself).
check "same operations near full with clone_fd (direct I/O writes, no KILLPRIV_V2)"
mount_zbudfs -o allow_other,suid,clone_fd,size=16M
python3 "$WORK/perm.py" "$MNT" zbudfs >"$WORK/zbudfs2.out" || fail "perm.py crashed on zbudfs"
require_mounted
diff -u "$WORK/tmpfs.out" <(grep -v '^Z ' "$WORK/zbudfs2.out") ||
  fail "zbudfs near full with clone_fd differs from tmpfs (- tmpfs, + zbudfs)"
unmount_zbudfs

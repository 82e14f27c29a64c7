// zbudfs daemon entry point: options, session, mount, daemonize, loop, shutdown.
//
// Owns: the fuse_session (RAII), the mount, the signal thread. Locking: none of the
// filesystem's; the signal thread shares only the session pointer and the mountpoint, which
// are fixed before it starts.
//
// Shutdown: SIGTERM, SIGINT and SIGHUP are blocked in every thread and taken by one thread
// with sigwait(). It detaches the mount (umount2(MNT_DETACH) as root, `fusermount3 -u -z`
// otherwise); the kernel then ends the connection once no file is open on the mount, every
// worker's read of /dev/fuse fails with ENODEV and the loop returns. (In libfuse 3.14,
// fuse_session_exit() alone does not wake a multithreaded loop blocked in read.) Files still
// open after the detach are served until they are closed.
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "fs/filesystem.h"
#include "fs/log.h"
#include "fs/mount_table.h"
#include "fs/options.h"
#include "fs/remount.h"
#include "fs/session_loop.h"

namespace zbudfs {
namespace {

struct SessionDeleter {
  void operator()(fuse_session* se) const { fuse_session_destroy(se); }
};
using SessionPtr = std::unique_ptr<fuse_session, SessionDeleter>;

struct LoopConfigDeleter {
  void operator()(fuse_loop_config* cfg) const { fuse_loop_cfg_destroy(cfg); }
};
using LoopConfigPtr = std::unique_ptr<fuse_loop_config, LoopConfigDeleter>;

// Unmounts a mounted session on scope exit.
class MountGuard {
 public:
  explicit MountGuard(fuse_session* se) : se_(se) {}
  ~MountGuard() { fuse_session_unmount(se_); }
  MountGuard(const MountGuard&) = delete;
  MountGuard& operator=(const MountGuard&) = delete;

 private:
  fuse_session* se_;
};

// Detaches the mount at path; returns true on success.
bool DetachMount(const std::string& path) {
  if (geteuid() == 0) {
    if (umount2(path.c_str(), MNT_DETACH) == 0) return true;
    LogError("umount %s: %s", path.c_str(), std::strerror(errno));
    return false;
  }
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    execlp("fusermount3", "fusermount3", "-u", "-z", "--", path.c_str(),
           static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Waits for termination signals and unmounts; stopped by SIGUSR1 from the destructor.
class SignalThread {
 public:
  SignalThread(fuse_session* se, std::string mountpoint, const sigset_t& set)
      : se_(se), mountpoint_(std::move(mountpoint)), set_(set), thread_([this] { Run(); }) {}
  ~SignalThread() {
    stopping_ = true;
    pthread_kill(thread_.native_handle(), SIGUSR1);
    thread_.join();
  }
  SignalThread(const SignalThread&) = delete;
  SignalThread& operator=(const SignalThread&) = delete;

 private:
  void Run() {
    for (;;) {
      int sig = 0;
      if (sigwait(&set_, &sig) != 0) continue;
      if (stopping_) return;
      if (sig == SIGUSR1) continue;
      LogInfo("signal %d: unmounting %s", sig, mountpoint_.c_str());
      if (!DetachMount(mountpoint_)) StopWorkers(se_);
    }
  }

  fuse_session* const se_;
  const std::string mountpoint_;
  const sigset_t set_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;  // Last: starts after the fields above are set.
};

// Why path (absolute, resolved) cannot be our mountpoint, or "" if it can.
std::string CheckMountpoint(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return std::strerror(errno);
  if (!S_ISDIR(st.st_mode)) return "not a directory";
  // An unreadable mount table is no reason to refuse: the mount itself will tell.
  if (FindMount(path).ok()) return "already a mount point (unmount it first)";
  return "";
}

void PrintVersion() {
  std::printf("zbudfs %s\nFUSE library version %s\nzstd version %s\n", ZBUDFS_VERSION,
              fuse_pkgversion(), ZSTD_versionString());
}

// Parses and checks the command line, and resolves the mountpoint into *mountpoint. Returns
// the exit status when there is nothing to mount (--help, --version, an error).
std::optional<int> ParseAndCheck(FuseArgs* args, const char* prog, MountOptions* opts,
                                 std::string* mountpoint) {
  std::string error;
  if (!ParseCommandLine(args, opts, &error)) {
    LogError("%s", error.c_str());
    return 1;
  }
  if (opts->show_help) {
    std::fputs(HelpText(prog).c_str(), stdout);
    std::fflush(stdout);
    fuse_lowlevel_help();
    return 0;
  }
  if (opts->show_version) {
    PrintVersion();
    return 0;
  }
  if (!ValidateOptions(*opts, &error)) {
    LogError("%s", error.c_str());
    return 1;
  }
  char resolved[PATH_MAX];
  if (realpath(opts->mountpoint.c_str(), resolved) == nullptr) {
    LogError("bad mountpoint '%s': %s", opts->mountpoint.c_str(), std::strerror(errno));
    return 1;
  }
  *mountpoint = resolved;
  if (opts->remount) return RemountMounted(*opts, *mountpoint);
  if (std::string err = CheckMountpoint(*mountpoint); !err.empty()) {
    LogError("bad mountpoint '%s': %s", opts->mountpoint.c_str(), err.c_str());
    return 1;
  }
  return std::nullopt;
}

// The overflow directory: checked, locked and cleaned before the mount, so that an unusable
// one fails the mount with a message. nullptr (logged) on failure.
std::unique_ptr<OverflowStore> OpenOverflow(const MountOptions& opts,
                                            const std::string& mountpoint) {
  if (!opts.overflow_dir.empty()) {
    char dir[PATH_MAX];
    if (realpath(opts.overflow_dir.c_str(), dir) != nullptr &&
        (std::string(dir) == mountpoint || std::string(dir).rfind(mountpoint + "/", 0) == 0)) {
      LogError("option overflow_dir: '%s' is on the mount itself", opts.overflow_dir.c_str());
      return nullptr;
    }
  }
  StatusOr<std::unique_ptr<OverflowStore>> overflow =
      OverflowStore::Open({opts.overflow_dir, opts.overflow_limit, nullptr});
  if (!overflow.ok()) {
    LogError("option overflow_dir: %s", overflow.status().message().c_str());
    return nullptr;
  }
  if ((*overflow)->leftovers_removed() != 0) {
    LogInfo("overflow_dir %s: removed %llu files left by an earlier mount",
            (*overflow)->dir().c_str(),
            static_cast<unsigned long long>((*overflow)->leftovers_removed()));
  }
  return std::move(overflow).value();
}

// Blocks the termination signals (and SIGUSR1, SignalThread's wake-up) in this thread and
// every thread started after; returns them for the signal thread.
sigset_t BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&set, sig);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return set;
}

// Runs the request loop of a mounted session until the mount goes; returns its status.
int RunLoop(fuse_session* se, Filesystem* fs, const MountOptions& opts) {
  if (opts.clone_fd && !opts.single_thread) {
    // One descriptor per worker needs libfuse's own loop, which cannot pass the kernel's
    // kill flags on: no FUSE_HANDLE_KILLPRIV_V2 then (a getxattr per write(2) instead),
    // and no FUSE_DIRECT_IO_ALLOW_MMAP (near full, shared mmap of a writable open fails).
    LoopConfigPtr cfg(fuse_loop_cfg_create());
    fuse_loop_cfg_set_clone_fd(cfg.get(), 1);
    fuse_loop_cfg_set_max_threads(cfg.get(), opts.max_threads);
    return fuse_session_loop_mt(se, cfg.get());
  }
  InitWants want;
  want.killpriv_v2 = want.direct_io_mmap = true;
  InitGranted granted;
  if (int ret = NegotiateInit(se, want, &granted); ret != 0) return ret;
  fs->set_killpriv_v2(granted.killpriv_v2);
  if (!granted.direct_io_mmap) {
    LogInfo(
        "kernel without FUSE_DIRECT_IO_ALLOW_MMAP: near full, shared mmap of "
        "files opened for writing fails (ENODEV)");
  }
  return RunWorkers(se, opts.single_thread ? 1 : opts.max_threads);
}

// Mounts at mountpoint, daemonizes and serves until unmounted; returns the exit status.
int Serve(FuseArgs* args, const MountOptions& opts, const std::string& mountpoint,
          std::unique_ptr<OverflowStore> overflow) {
  // Before any thread exists: the signal thread takes them.
  const sigset_t set = BlockTerminationSignals();
  Filesystem fs(opts);
  const fuse_lowlevel_ops ops = Filesystem::Ops();
  SessionPtr se(fuse_session_new(args->get(), &ops, sizeof(ops), &fs));
  if (se == nullptr) return 1;  // libfuse has said why (e.g. an unknown option).
  fs.set_session(se.get());
  if (fuse_session_mount(se.get(), mountpoint.c_str()) != 0) return 1;
  MountGuard mount(se.get());
  // The kernel names the mount's bdi after its st_dev: its max_bytes bounds what the kernel
  // holds dirty for us (full_mount.h).
  fs.set_bdi_dir(BdiOfMount(mountpoint));
  if (!opts.foreground) {
    if (const std::string where = ChooseBackgroundLog(); where != "syslog") {
      std::fprintf(stderr, "zbudfs: no syslog here: messages go to %s\n", where.c_str());
    }
  }
  if (fuse_daemonize(opts.foreground ? 1 : 0) != 0) return 1;
  if (!opts.foreground) LogInBackground();

  fs.StartStore(std::move(overflow));
  int ret;
  {
    SignalThread signals(se.get(), mountpoint, set);
    ret = RunLoop(se.get(), &fs, opts);
  }
  fs.refused_writes().Stop();  // Before the session goes.
  if (ret != 0) LogError("session loop ended with %d", ret);
  return ret == 0 ? 0 : 1;
}

int Run(int argc, char** argv) {
  LogInit();
  FuseArgs args(argc, argv);
  MountOptions opts;
  std::string mountpoint;
  if (std::optional<int> status = ParseAndCheck(&args, argv[0], &opts, &mountpoint)) {
    return *status;
  }
  std::unique_ptr<OverflowStore> overflow = OpenOverflow(opts, mountpoint);
  if (overflow == nullptr) return 1;
  return Serve(&args, opts, mountpoint, std::move(overflow));
}

}  // namespace
}  // namespace zbudfs

int main(int argc, char** argv) { return zbudfs::Run(argc, argv); }

// The daemon's request loop: libfuse 3.14's public receive/process calls on N worker threads,
// with three things libfuse's own loop cannot do.
//
//   * FUSE_HANDLE_KILLPRIV_V2. Without it the kernel asks getxattr("security.capability")
//     before every write(2) to decide whether to clear privileges: a second round trip per
//     write. With it the kernel marks inodes S_NOSEC after one check and leaves clearing
//     setuid/setgid/capabilities to the server, flagging the writes, truncates and chowns
//     that must clear them. libfuse 3.14 knows neither the capability nor the flags, so:
//     NegotiateInit lets libfuse answer FUSE_INIT into a pipe (the session's descriptor is
//     swapped for the pipe's for that one call), adds the capability to the answer when the
//     kernel offered it, and sends the answer itself.
//   * FUSE_DIRECT_IO_ALLOW_MMAP, in the same way (flags2 of the answer, with FUSE_INIT_EXT):
//     near full, writable opens get direct I/O (full_mount.h), and without it the kernel
//     refuses shared mmap of them (ENODEV).
//   * The request's raw flags. Before handing a request to libfuse the worker notes the
//     kernel's kill flags of WRITE, SETATTR, OPEN and CREATE (which libfuse drops) in a
//     thread-local RequestFlags; handlers read them with CurrentRequestFlags().
//
// Threads: NegotiateInit runs on the main thread before any worker exists. Workers share
// nothing of ours; each owns its receive buffer. RunWorkers' own thread waits for the end
// and then wakes workers still blocked in read(2) with SIGUSR2 (a no-op handler). The only
// lock is the stop flag's.
#ifndef ZBUDFS_FS_SESSION_LOOP_H_
#define ZBUDFS_FS_SESSION_LOOP_H_

#define FUSE_USE_VERSION 314
#include <fuse3/fuse_lowlevel.h>

#include <cstdint>

namespace zbudfs {

// The kernel's kill-privileges flags of the request being processed on this thread (zero
// for other opcodes, and always zero without FUSE_HANDLE_KILLPRIV_V2).
struct RequestFlags {
  uint32_t write_flags = 0;    // fuse_write_in.write_flags (FUSE_WRITE_KILL_SUIDGID).
  uint32_t setattr_valid = 0;  // fuse_setattr_in.valid (FATTR_KILL_SUIDGID).
  uint32_t open_flags = 0;     // open_flags of fuse_open_in and fuse_create_in
                               // (FUSE_OPEN_KILL_SUIDGID).
  uint64_t read_seq = 0;       // RequestsRead() once this request was read; 0 without our
                               // loop (clone_fd: libfuse's).
};
const RequestFlags& CurrentRequestFlags();

// How many requests our loop has read from /dev/fuse so far: a request with a read_seq
// above a value taken from here was read (its data copied from the kernel) after that.
uint64_t RequestsRead();

// The least read_seq of the requests our workers are serving now; UINT64_MAX if none (or
// without our loop). Takes the worker pool's lock.
uint64_t OldestReadSeqServed();

// Bits of those fields, as in <linux/fuse.h> (ABI 7.33).
inline constexpr uint32_t kWriteKillSuidgid = 1u << 2;     // FUSE_WRITE_KILL_SUIDGID.
inline constexpr uint32_t kSetattrKillSuidgid = 1u << 11;  // FATTR_KILL_SUIDGID.
inline constexpr uint32_t kOpenKillSuidgid = 1u << 0;      // FUSE_OPEN_KILL_SUIDGID.

// FUSE_DIRECT_IO_ALLOW_MMAP (init flag bit 36, kernel >= 6.6, unknown to libfuse 3.14) as a
// bit of fuse_init_in/out.flags2: shared mmap of direct I/O opens (full_mount.h).
inline constexpr uint32_t kDirectIoAllowMmap2 = 1u << (36 - 32);

// What NegotiateInit asks of the kernel beyond libfuse's answer, and what it got.
struct InitWants {
  bool killpriv_v2 = false;     // FUSE_HANDLE_KILLPRIV_V2.
  bool direct_io_mmap = false;  // FUSE_DIRECT_IO_ALLOW_MMAP.
};
struct InitGranted {
  bool killpriv_v2 = false;     // The kernel expects the server to clear privileges.
  bool direct_io_mmap = false;  // Shared mmap works on direct I/O opens.
};

// Receives FUSE_INIT and has libfuse answer it (calling the init handler), adding the
// capabilities of `want` that the kernel offers. Returns 0 and fills *granted; a negative
// errno when the session ended or the device failed (the session is then exited).
int NegotiateInit(fuse_session* se, const InitWants& want, InitGranted* granted);

// Serves requests on `threads` worker threads until the file system is unmounted, a worker
// fails, or StopWorkers is called. Returns 0 after an unmount, or a negative errno.
int RunWorkers(fuse_session* se, unsigned threads);

// Brackets, in a handler, a call that blocks until another worker serves a request (lseek
// making the kernel write dirty pages back): if no other worker of RunWorkers is free, one
// more is started, so that such calls never wait for each other. Without RunWorkers
// (libfuse's loop) it does nothing: the caller must keep a worker free itself.
class BlockingCall {
 public:
  BlockingCall();
  ~BlockingCall();
  BlockingCall(const BlockingCall&) = delete;
  BlockingCall& operator=(const BlockingCall&) = delete;
};

// Ends the session and wakes RunWorkers' workers (from any thread, e.g. a signal thread that
// could not detach the mount). Requests not yet read are left to the kernel.
void StopWorkers(fuse_session* se);

}  // namespace zbudfs

#endif  // ZBUDFS_FS_SESSION_LOOP_H_

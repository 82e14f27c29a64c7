// Locks: g_pool_mu (the worker list) and g_stop_mu (the stop flag), never nested. Each
// worker owns its buffer and its RequestFlags.
#include "fs/session_loop.h"

#include <fcntl.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <list>
#include <thread>
#include <vector>

#include "fs/log.h"
#include "store/mutex.h"
#include "store/thread_annotations.h"

namespace zbudfs {
namespace {

static_assert(kWriteKillSuidgid == FUSE_WRITE_KILL_SUIDGID);
static_assert(kSetattrKillSuidgid == FATTR_KILL_SUIDGID);
static_assert(kOpenKillSuidgid == FUSE_OPEN_KILL_SUIDGID);

thread_local RequestFlags current_flags;
std::atomic<uint64_t> requests_read{0};

// A file descriptor closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int* out() { return &fd_; }

 private:
  int fd_;
};

// A receive buffer as libfuse allocates it (malloc) and expects it freed.
struct OwnedBuf {
  fuse_buf buf{};
  OwnedBuf() = default;
  ~OwnedBuf() { std::free(buf.mem); }
  OwnedBuf(const OwnedBuf&) = delete;
  OwnedBuf& operator=(const OwnedBuf&) = delete;
};

// The request header, or nullptr if the buffer does not hold one in memory.
const fuse_in_header* Header(const fuse_buf& buf) {
  if ((buf.flags & FUSE_BUF_IS_FD) || buf.mem == nullptr || buf.size < sizeof(fuse_in_header)) {
    return nullptr;
  }
  return static_cast<const fuse_in_header*>(buf.mem);
}

// The opcode's argument struct T, or nullptr if the request is too short for it.
template <typename T>
const T* Arg(const fuse_buf& buf) {
  if (buf.size < sizeof(fuse_in_header) + sizeof(T)) return nullptr;
  return reinterpret_cast<const T*>(static_cast<const char*>(buf.mem) + sizeof(fuse_in_header));
}

// Notes the kill flags of the request in buf for this thread's handlers.
void NoteFlags(const fuse_buf& buf) {
  current_flags = RequestFlags();
  current_flags.read_seq = requests_read.fetch_add(1, std::memory_order_acq_rel) + 1;
  const fuse_in_header* in = Header(buf);
  if (in == nullptr) return;
  switch (in->opcode) {
    case FUSE_WRITE:
      if (const auto* w = Arg<fuse_write_in>(buf)) current_flags.write_flags = w->write_flags;
      break;
    case FUSE_SETATTR:
      if (const auto* s = Arg<fuse_setattr_in>(buf)) current_flags.setattr_valid = s->valid;
      break;
    case FUSE_OPEN:
      if (const auto* o = Arg<fuse_open_in>(buf)) current_flags.open_flags = o->open_flags;
      break;
    case FUSE_CREATE:
      if (const auto* c = Arg<fuse_create_in>(buf)) current_flags.open_flags = c->open_flags;
      break;
    default:
      break;
  }
}

// Receives the next request into b; 1 when one arrived, 0 when the session ended, or a
// negative errno. Retries interrupted reads.
int Receive(fuse_session* se, OwnedBuf* b) {
  for (;;) {
    const int res = fuse_session_receive_buf(se, &b->buf);
    if (res == -EINTR || res == -EAGAIN) {
      if (fuse_session_exited(se)) return 0;
      continue;
    }
    if (res < 0) return res;
    return res == 0 ? 0 : 1;
  }
}

// Has libfuse process the request in b with its replies going into a pipe instead of the
// device; the reply's bytes go to *reply. Returns 0 or a negative errno.
int ProcessIntoPipe(fuse_session* se, OwnedBuf* b, std::vector<char>* reply) {
  const int dev = fuse_session_fd(se);
  Fd saved(dup(dev));
  if (saved.get() < 0) return -errno;
  int p[2];
  if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return -errno;
  Fd pipe_r(p[0]);
  Fd pipe_w(p[1]);
  if (dup2(pipe_w.get(), dev) < 0) return -errno;
  fuse_session_process_buf(se, &b->buf);
  // Put the device back under its number before anything can fail.
  if (dup3(saved.get(), dev, O_CLOEXEC) < 0) {
    const int err = errno;
    LogError("cannot restore /dev/fuse descriptor: %s", std::strerror(err));
    return -err;
  }
  reply->resize(64 * 1024);
  const ssize_t n = read(pipe_r.get(), reply->data(), reply->size());
  if (n < 0) return -errno;
  reply->resize(static_cast<size_t>(n));
  return 0;
}

}  // namespace

const RequestFlags& CurrentRequestFlags() { return current_flags; }

uint64_t RequestsRead() { return requests_read.load(std::memory_order_acquire); }

int NegotiateInit(fuse_session* se, const InitWants& want, InitGranted* granted) {
  *granted = InitGranted();
  OwnedBuf b;
  const int got = Receive(se, &b);
  if (got <= 0) return got == 0 ? -ENODEV : got;
  const fuse_in_header* in = Header(b.buf);
  // Kernels before 5.17 send a 16-byte fuse_init_in: only read as far as the flags, and
  // flags2 only when the kernel says it sent them (FUSE_INIT_EXT).
  const bool has_flags =
      in != nullptr && in->opcode == FUSE_INIT &&
      b.buf.size >= sizeof(fuse_in_header) + offsetof(fuse_init_in, flags) + sizeof(uint32_t);
  const auto* init = reinterpret_cast<const fuse_init_in*>(in + 1);
  const uint32_t offered = has_flags ? init->flags : uint32_t{0};
  const bool has_flags2 =
      (offered & FUSE_INIT_EXT) &&
      b.buf.size >= sizeof(fuse_in_header) + offsetof(fuse_init_in, flags2) + sizeof(uint32_t);
  const uint32_t offered2 = has_flags2 ? init->flags2 : uint32_t{0};
  const bool killpriv_v2 = want.killpriv_v2 && (offered & FUSE_HANDLE_KILLPRIV_V2);
  const bool dio_mmap = want.direct_io_mmap && (offered2 & kDirectIoAllowMmap2);
  if (!killpriv_v2 && !dio_mmap) {
    // Nothing to add: libfuse answers as usual.
    fuse_session_process_buf(se, &b.buf);
    return fuse_session_exited(se) ? -EPROTO : 0;
  }
  std::vector<char> reply;
  if (int err = ProcessIntoPipe(se, &b, &reply); err != 0) {
    fuse_session_exit(se);
    return err;
  }
  const size_t head = sizeof(fuse_out_header);
  if (reply.size() >= head + offsetof(fuse_init_out, flags) + sizeof(uint32_t) &&
      reinterpret_cast<fuse_out_header*>(reply.data())->error == 0) {
    auto* out = reinterpret_cast<fuse_init_out*>(reply.data() + head);
    if (killpriv_v2) {
      out->flags |= FUSE_HANDLE_KILLPRIV_V2;
      granted->killpriv_v2 = true;
    }
    // flags2 counts only with FUSE_INIT_EXT, and only in a reply long enough to hold it.
    if (dio_mmap && reply.size() >= head + offsetof(fuse_init_out, flags2) + sizeof(uint32_t)) {
      out->flags |= FUSE_INIT_EXT;
      out->flags2 |= kDirectIoAllowMmap2;
      granted->direct_io_mmap = true;
    }
  }
  // One write: the kernel takes a reply whole or not at all.
  const ssize_t n = write(fuse_session_fd(se), reply.data(), reply.size());
  if (n != static_cast<ssize_t>(reply.size())) {
    const int err = n < 0 ? errno : EIO;
    LogError("cannot answer FUSE_INIT: %s", std::strerror(err));
    *granted = InitGranted();
    fuse_session_exit(se);
    return -err;
  }
  return fuse_session_exited(se) ? -EPROTO : 0;
}

namespace {

// What the thread running RunWorkers waits for: a worker that has ended, or StopWorkers.
Mutex g_stop_mu;
CondVar g_stop_cv;
bool g_stop GUARDED_BY(g_stop_mu) = false;

void NotifyStop() {
  MutexLock lock(&g_stop_mu);
  g_stop = true;
  g_stop_cv.SignalAll();
}

// The handler of kWakeSignal: none needed, the interrupted read(2) is the point.
void IgnoreWake(int) {}
constexpr int kWakeSignal = SIGUSR2;

// One worker thread and what RunWorkers needs to know of it.
struct Worker {
  std::thread thread;
  std::atomic<bool> running{true};
  std::atomic<uint64_t> serving{0};  // read_seq of the request it serves; 0 between them.
  int result = 0;
};

// The workers of the running RunWorkers (a std::list, so that a Worker never moves), and
// how many of them are not inside a BlockingCall.
Mutex g_pool_mu;
std::list<Worker> g_pool GUARDED_BY(g_pool_mu);
// nullptr: no RunWorkers (libfuse's loop, or ended): no more workers start.
fuse_session* g_pool_se GUARDED_BY(g_pool_mu) = nullptr;
std::atomic<int> g_free{0};

// Starts one more worker.
void StartWorkerLocked(fuse_session* se) REQUIRES(g_pool_mu) {
  Worker& w = g_pool.emplace_back();
  g_free.fetch_add(1);
  w.thread = std::thread([se, &w] {
    OwnedBuf b;
    while (!fuse_session_exited(se)) {
      const int got = Receive(se, &b);
      if (got <= 0) {
        if (got < 0) w.result = got;
        fuse_session_exit(se);
        break;
      }
      // A bound below the count NoteFlags gives first, so that OldestReadSeqServed never
      // misses this request once it has a count.
      w.serving.store(RequestsRead() + 1, std::memory_order_release);
      NoteFlags(b.buf);
      w.serving.store(current_flags.read_seq, std::memory_order_release);
      fuse_session_process_buf(se, &b.buf);
      w.serving.store(0, std::memory_order_release);
    }
    w.running.store(false);
    NotifyStop();
  });
}

}  // namespace

uint64_t OldestReadSeqServed() {
  uint64_t oldest = UINT64_MAX;
  MutexLock lock(&g_pool_mu);
  for (const Worker& w : g_pool) {
    const uint64_t s = w.serving.load(std::memory_order_acquire);
    if (s != 0 && s < oldest) oldest = s;
  }
  return oldest;
}

BlockingCall::BlockingCall() {
  if (g_free.fetch_sub(1) - 1 > 0) return;  // Another worker is free to serve.
  MutexLock lock(&g_pool_mu);
  if (g_pool_se != nullptr && !fuse_session_exited(g_pool_se)) StartWorkerLocked(g_pool_se);
}

BlockingCall::~BlockingCall() { g_free.fetch_add(1); }

void StopWorkers(fuse_session* se) {
  fuse_session_exit(se);
  NotifyStop();
}

namespace {

// Waits for a worker to end or for StopWorkers.
void WaitForStop() {
  MutexLock lock(&g_stop_mu);
  while (!g_stop) g_stop_cv.Wait(&g_stop_mu);
}

// Wakes the workers still in read(2) until all are out, and joins them; returns the first
// error a worker met (ENODEV, the unmount, is none). A signal that lands just before a
// worker enters read is lost, hence the repeats.
int WakeAndJoin(std::list<Worker>* pool) {
  for (;;) {
    bool any = false;
    for (Worker& w : *pool) {
      if (w.running.load()) {
        any = true;
        pthread_kill(w.thread.native_handle(), kWakeSignal);
      }
    }
    if (!any) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  int ret = 0;
  for (Worker& w : *pool) {
    w.thread.join();
    if (w.result != 0 && w.result != -ENODEV && ret == 0) ret = w.result;
  }
  return ret;
}

}  // namespace

int RunWorkers(fuse_session* se, unsigned threads) {
  // A worker blocked in read(2) of /dev/fuse notices the session's end only when the read
  // returns: after an unmount it fails with ENODEV, but after an error of one worker or
  // StopWorkers the others are woken by kWakeSignal (installed without SA_RESTART).
  struct sigaction sa {};
  sa.sa_handler = IgnoreWake;
  sigemptyset(&sa.sa_mask);
  sigaction(kWakeSignal, &sa, nullptr);
  {
    MutexLock lock(&g_stop_mu);
    g_stop = false;
  }
  {
    MutexLock lock(&g_pool_mu);
    g_pool_se = se;
    for (unsigned i = 0; i < (threads == 0 ? 1 : threads); ++i) StartWorkerLocked(se);
  }
  WaitForStop();
  // The session is over (or ending): no new workers from here on, so the list is taken out
  // (splice keeps each Worker where it is) and woken and joined unlocked: a worker may still
  // be in BlockingCall, waiting for g_pool_mu.
  std::list<Worker> pool;
  {
    MutexLock lock(&g_pool_mu);
    g_pool_se = nullptr;
    pool.splice(pool.end(), g_pool);
  }
  const int ret = WakeAndJoin(&pool);
  g_free.store(0);
  return ret;
}

}  // namespace zbudfs

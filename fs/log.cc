// Logging sink: stderr or syslog. The sink flag is set before threads start; the rate
// limits take one mutex per kind, released before the line is written.
#include "fs/log.h"

#define FUSE_USE_VERSION 314
#include <fuse3/fuse_log.h>
#include <syslog.h>

#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>

#include "store/mutex.h"
#include "store/thread_annotations.h"

namespace zbudfs {
namespace {

std::atomic<bool> use_syslog{false};

void Emit(int priority, const char* fmt, va_list ap) {
  if (use_syslog.load(std::memory_order_relaxed)) {
    vsyslog(priority, fmt, ap);
    return;
  }
  std::fputs("zbudfs: ", stderr);
  std::vfprintf(stderr, fmt, ap);
  std::fputc('\n', stderr);
}

// libfuse messages already end in a newline; syslog does not mind, stderr must not double it.
void FuseLogHook(enum fuse_log_level level, const char* fmt, va_list ap) {
  if (use_syslog.load(std::memory_order_relaxed)) {
    vsyslog(static_cast<int>(level), fmt, ap);
  } else {
    std::vfprintf(stderr, fmt, ap);
  }
}

// One kind's rate limit.
struct RateLimit {
  Mutex mu;
  bool started GUARDED_BY(mu) = false;                        // A line was written.
  std::chrono::steady_clock::time_point last GUARDED_BY(mu);  // When.
  uint64_t suppressed GUARDED_BY(mu) = 0;                     // Lines left out since.
};
RateLimit rate_limits[static_cast<int>(LogKind::kCount)];

}  // namespace

void LogInit() { fuse_set_log_func(FuseLogHook); }

void LogToSyslog() {
  openlog("zbudfs", LOG_PID, LOG_DAEMON);
  use_syslog.store(true, std::memory_order_relaxed);
}

#define ZBUDFS_EMIT(priority) \
  va_list ap;                 \
  va_start(ap, fmt);          \
  Emit((priority), fmt, ap);  \
  va_end(ap)

void LogError(const char* fmt, ...) { ZBUDFS_EMIT(LOG_ERR); }
void LogInfo(const char* fmt, ...) { ZBUDFS_EMIT(LOG_INFO); }

#undef ZBUDFS_EMIT

void LogRateLimited(LogKind kind, const char* fmt, ...) {
  RateLimit& r = rate_limits[static_cast<int>(kind)];
  uint64_t suppressed;
  {
    MutexLock lock(&r.mu);
    const auto now = std::chrono::steady_clock::now();
    if (r.started && now - r.last < std::chrono::seconds(kLogIntervalSeconds)) {
      ++r.suppressed;
      return;
    }
    r.started = true;
    r.last = now;
    suppressed = r.suppressed;
    r.suppressed = 0;
  }
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  if (suppressed == 0) {
    LogError("%s", line);
  } else {
    LogError("%s (and %llu more like it in the last %d s or more, not logged)", line,
             static_cast<unsigned long long>(suppressed), kLogIntervalSeconds);
  }
}

}  // namespace zbudfs

// Logging sink: stderr or syslog. No locks: the sink flag is set before threads start.
#include "fs/log.h"

#define FUSE_USE_VERSION 314
#include <fuse3/fuse_log.h>
#include <syslog.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>

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
void LogWarning(const char* fmt, ...) { ZBUDFS_EMIT(LOG_WARNING); }
void LogInfo(const char* fmt, ...) { ZBUDFS_EMIT(LOG_INFO); }

#undef ZBUDFS_EMIT

}  // namespace zbudfs

// Logging sink: stderr or syslog. The sink flag is set before threads start; the rate
// limits take one mutex per kind, released before the line is written.
#include "fs/log.h"

#define FUSE_USE_VERSION 314
#include <fcntl.h>
#include <fuse3/fuse_log.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>

#include "store/mutex.h"
#include "store/thread_annotations.h"

namespace zbudfs {
namespace {

enum class Sink { kStderr, kSyslog, kFile };
std::atomic<Sink> sink{Sink::kStderr};
FILE* log_file = nullptr;  // The fallback file (kFile), line buffered.

// One line to the sink; text has no trailing newline.
void Write(int priority, const char* text) {
  switch (sink.load(std::memory_order_relaxed)) {
    case Sink::kSyslog:
      syslog(priority, "%s", text);
      return;
    case Sink::kFile: {
      char when[32];
      const time_t now = time(nullptr);
      struct tm tm;
      strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&now, &tm));
      std::fprintf(log_file, "%s zbudfs[%d]: %s\n", when, static_cast<int>(getpid()), text);
      return;
    }
    case Sink::kStderr:
      std::fprintf(stderr, "zbudfs: %s\n", text);
      return;
  }
}

void Emit(int priority, const char* fmt, va_list ap) {
  char text[2048];
  std::vsnprintf(text, sizeof(text), fmt, ap);
  Write(priority, text);
}

// One whole line of libfuse's. An unknown -o option is only named by libfuse: that line is
// where the user learns where the options are listed.
void FuseLine(enum fuse_log_level level, std::string line) {
  if (line.starts_with("fuse: unknown option")) line += " (see zbudfs --help)";
  if (sink.load(std::memory_order_relaxed) == Sink::kStderr) {
    std::fprintf(stderr, "%s\n", line.c_str());  // libfuse's own "fuse: " prefix.
  } else {
    Write(static_cast<int>(level), line.c_str());
  }
}

// libfuse writes some lines in pieces (the unknown options one by one): collect them until
// the newline.
void FuseLogHook(enum fuse_log_level level, const char* fmt, va_list ap) {
  thread_local std::string pending;
  char text[2048];
  std::vsnprintf(text, sizeof(text), fmt, ap);
  pending += text;
  for (size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
    FuseLine(level, pending.substr(0, nl));
    pending.erase(0, nl + 1);
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

std::string ChooseBackgroundLog() {
  struct stat st;
  if (stat("/dev/log", &st) == 0 && S_ISSOCK(st.st_mode)) return "syslog";
  const std::string path =
      getuid() == 0 ? "/var/log/zbudfs.log" : "/tmp/zbudfs-" + std::to_string(getuid()) + ".log";
  // O_NOFOLLOW: /tmp is shared, and another user's symlink must not redirect our lines.
  const int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd >= 0) log_file = fdopen(fd, "a");
  if (log_file == nullptr) {
    if (fd >= 0) close(fd);
    return "nowhere (no /dev/log, and " + path + " cannot be written)";
  }
  setvbuf(log_file, nullptr, _IOLBF, 0);
  return path;
}

void LogInBackground() {
  if (log_file != nullptr) {
    sink.store(Sink::kFile, std::memory_order_relaxed);
    return;
  }
  openlog("zbudfs", LOG_PID, LOG_DAEMON);
  sink.store(Sink::kSyslog, std::memory_order_relaxed);
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

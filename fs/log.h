// Logging for the daemon: stderr while in the foreground; once daemonized, syslog, or a
// file where there is no syslog (no /dev/log, as in many containers): /var/log/zbudfs.log
// for root, /tmp/zbudfs-UID.log for other users.
//
// Owns: the choice of sink (process-wide, set once) and the libfuse log hook, so that
// libfuse's own messages follow the same sink; and the rate limits of runtime error messages.
// Locking: ChooseBackgroundLog() and LogInBackground() are called before any thread starts;
// LogRateLimited takes one small mutex per kind, never across the write of the line.
#ifndef ZBUDFS_FS_LOG_H_
#define ZBUDFS_FS_LOG_H_

#include <string>

namespace zbudfs {

// Routes libfuse's messages through our sink; call once at start.
void LogInit();

// Where a daemonized zbudfs will log: "syslog", or the fallback file (opened now, so that a
// file that cannot be written is known before the mount). Call before daemonizing; the
// caller tells the user about a file while stderr still reaches them.
std::string ChooseBackgroundLog();
// Sends every later message there (syslog ident "zbudfs") instead of stderr.
void LogInBackground();

// printf-style messages at two levels.
void LogError(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void LogInfo(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// Runtime errors, each kind rate-limited on its own.
enum class LogKind {
  kOverflowIo,    // The overflow directory's files could not be read or written.
  kCheckFailed,   // A page read back failed its check value (corrupt on disk or in memory).
  kWriteRefused,  // The store refused a write (ENOSPC at writeback, EIO).
  kCount
};
constexpr int kLogIntervalSeconds = 5;  // At most one line per kind this often.

// Logs like LogError at most one line per kind every kLogIntervalSeconds: a flood of
// errors (every read of a bad page fails) must not flood syslog. Lines left out are
// counted, and the next line of the kind says how many there were.
void LogRateLimited(LogKind kind, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace zbudfs

#endif  // ZBUDFS_FS_LOG_H_

// Logging for the daemon: stderr while in the foreground, syslog once daemonized.
//
// Owns: the choice of sink (a process-wide flag) and the libfuse log hook, so that libfuse's
// own messages follow the same sink. Locking: none; LogToSyslog() is called once, before
// the session loop starts any thread.
#ifndef ZBUDFS_FS_LOG_H_
#define ZBUDFS_FS_LOG_H_

namespace zbudfs {

// Routes libfuse's messages through our sink; call once at start.
void LogInit();

// Sends every later message to syslog (ident "zbudfs") instead of stderr.
void LogToSyslog();

// printf-style messages at three levels.
void LogError(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void LogWarning(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void LogInfo(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace zbudfs

#endif  // ZBUDFS_FS_LOG_H_

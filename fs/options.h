// Mount options: the command line of the daemon, parsed once into a typed struct.
//
// Owns: the table of zbudfs's options (fs/option_table.h, with the defaults and --help), one
// entry per option: its spellings, its kind (flag, size, count, integer, path), the
// MountOptions field it writes, its limits and its --help text, so that each kind's checks and
// messages are written once; options.cc parses against it. Parses size=, mem_limit=,
// overflow_dir=, overflow_limit=, staging=, cluster=, pack_after=, zstd_level=, zstd_fast=,
// nr_inodes=, max_threads=, clone_fd, no_writeback, -f, -d, -s, --help, --version and the
// positionals, and keeps the list of standard FUSE options handed on to fuse_session_new().
// No locks: used before the session starts.
#ifndef ZBUDFS_FS_OPTIONS_H_
#define ZBUDFS_FS_OPTIONS_H_

#define FUSE_USE_VERSION 314
#include <fuse3/fuse_opt.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zbudfs {

// Everything the command line says, with defaults filled in by ParseCommandLine().
struct MountOptions {
  uint64_t size = 0;                        // Logical capacity in bytes (a multiple of 4096).
  uint64_t mem_limit = 0;                   // Memory the store may hold, bytes.
  std::string overflow_dir;                 // Given overflow directory; empty = a private default.
  uint64_t overflow_limit = 0;              // Most bytes the overflow may hold.
  uint64_t staging = 0;                     // Bytes of pages kept as written; 0 = off.
  uint64_t cluster = 16384;                 // Bytes of cold pages packed as one frame; 0 = off.
  unsigned pack_after = 30;                 // Seconds without a write before a file is packed.
  int pack_level = 6;                       // zstd level of clusters.
  int zstd_level = 1;                       // zstd level for new pages.
  std::optional<int> zstd_fast_level = -1;  // Level tried first; nullopt = off.
  uint64_t nr_inodes = 0;                   // Most live inodes; 0 = unlimited.
  unsigned max_threads = 0;                 // Most worker threads of the loop; 0 until defaulted.
  bool clone_fd = false;                    // One /dev/fuse fd per worker thread.
  bool no_writeback = false;                // No kernel writeback cache: write(2) is a request.
  bool foreground = false;                  // -f (or -d): stay in the foreground.
  bool debug = false;                       // -d: libfuse request tracing.
  bool single_thread = false;               // -s: single-threaded loop.
  bool allow_other = false;                 // -o allow_other was given.
  bool show_help = false;                   // -h / --help.
  bool show_version = false;                // -V / --version.
  bool remount = false;                     // -o remount: change a running mount's options.
  std::string mountpoint;                   // Last positional argument, as given.
  std::string source;                       // SOURCE of "SOURCE MOUNTPOINT"; "" if none.
  std::vector<std::string> zbudfs_args;     // The zbudfs options given ("size=2G"), in order.
  std::vector<std::string> other_args;      // -o options left for libfuse ("ro", "nosuid").
};

// Owns a struct fuse_args; frees it on destruction.
class FuseArgs {
 public:
  FuseArgs(int argc, char** argv) : args_(FUSE_ARGS_INIT(argc, argv)) {}
  ~FuseArgs() { fuse_opt_free_args(&args_); }
  FuseArgs(const FuseArgs&) = delete;
  FuseArgs& operator=(const FuseArgs&) = delete;

  fuse_args* get() { return &args_; }  // For the libfuse calls.

 private:
  fuse_args args_;
};

// Parses a size: decimal bytes with an optional K/M/G/T suffix (powers of 1024, either case).
// Returns nullopt for empty, signed, malformed or overflowing input.
std::optional<uint64_t> ParseSize(std::string_view text);

// Physical RAM in bytes (sysconf), for the defaults.
uint64_t PhysicalMemory();

// Fills opts from args and leaves in args only what fuse_session_new() should see (plus
// zbudfs's defaults: fsname, subtype, default_permissions). On failure returns false and
// sets *error to a one-line message naming the offending option.
bool ParseCommandLine(FuseArgs* args, MountOptions* opts, std::string* error);

// Checks what the parse alone cannot: that a mountpoint was given. (The overflow directory is
// checked by OverflowStore::Open, the mountpoint itself by main.cc.)
bool ValidateOptions(const MountOptions& opts, std::string* error);

// The options of a remount (a comma-separated list, as the remount channel carries it) applied
// to current: the zbudfs options that may change on a running mount (size, mem_limit,
// overflow_limit, nr_inodes, zstd_level, zstd_fast) are checked as at mount time; the others
// must keep their value; names that are not zbudfs's (ro, nosuid, user_id=...) are left to
// the kernel and ignored here. False with *error set (one line naming the option) on a bad
// value or a change that needs a new mount.
bool ParseRemount(std::string_view list, const MountOptions& current, MountOptions* next,
                  std::string* error);

// The --help text, with the defaults of this machine.
std::string HelpText(const char* prog);

}  // namespace zbudfs

#endif  // ZBUDFS_FS_OPTIONS_H_

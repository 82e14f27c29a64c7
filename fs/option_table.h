// The typed table of zbudfs's mount options, which fs/options.cc parses the command line and
// a remount's list against. Not part of the options' API (fs/options.h).
//
// Owns: one OptionSpec an option, in --help's order: its spellings, its kind (flag, size,
// count, integer, path), the MountOptions field it writes, its limits and its --help text;
// the defaults that depend on this machine (size, mem_limit, staging, nr_inodes,
// max_threads) and --help itself (HelpText, from the table's labels and texts). No locks:
// the table is built on first use, before the session starts.
#ifndef ZBUDFS_FS_OPTION_TABLE_H_
#define ZBUDFS_FS_OPTION_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "fs/options.h"

namespace zbudfs {
namespace options_internal {

// How an option's value is read and checked; each kind's checks and messages exist once.
enum class Kind {
  kFlag,          // No value: sets its bool.
  kPassThrough,   // Only noted (for zbudfs's FUSE defaults) and left for libfuse.
  kSize,          // Bytes with a K/M/G/T suffix, at least min_bytes, at most max_bytes.
  kCount,         // A count with a K/M/G suffix; 0 = unlimited.
  kInteger,       // A decimal integer from min to max.
  kIntegerOrOff,  // A kInteger, or "off" for none.
  kPath,          // A non-empty path.
};

// The MountOptions member an option writes; its type must fit the option's kind.
using Field = std::variant<std::monostate, bool MountOptions::*, uint64_t MountOptions::*,
                           int MountOptions::*, unsigned MountOptions::*,
                           std::optional<int> MountOptions::*, std::string MountOptions::*>;

enum class Section { kHidden, kGeneral, kZbudfs };  // Where --help shows the option.

// One option: how it is spelled, what it writes, its limits and its --help text.
struct OptionSpec {
  std::vector<const char*> spellings{};  // fuse_opt templates: "-f", "clone_fd", "size=".
  Kind kind = Kind::kFlag;
  Field field{};
  bool to_libfuse = false;  // Also left in the arguments for fuse_session_new().
  uint64_t min_bytes = 0;   // kSize.
  uint64_t max_bytes = std::numeric_limits<uint64_t>::max();
  bool round_up_to_pages = false;  // kSize.
  long min = 0;                    // kInteger, kIntegerOrOff.
  long max = 0;
  Section section = Section::kHidden;
  bool remountable = false;  // May change on a running mount (ParseRemount).
  std::string label{};       // --help's left column ("-o size=SIZE").
  std::string help{};        // --help's right column; lines separated by '\n'.
};

// Every option zbudfs knows, in --help's order.
const std::vector<OptionSpec>& Options();

// The index in Options() of the option spelled spelling; Options().size() if none.
size_t IndexOf(std::string_view spelling);

// bytes with the largest K/M/G/T/P suffix that divides it exactly ("4P", "12K", "4097").
std::string HumanSize(uint64_t bytes);

// The defaults of this machine, for ParseCommandLine and --help.
uint64_t DefaultSize();                       // Half of RAM, in whole pages.
uint64_t DefaultMemLimit();                   // A quarter of RAM, in whole pages.
uint64_t DefaultNrInodes();                   // Half of RAM's pages, at least 1024.
unsigned DefaultMaxThreads();                 // Twice the cores, 4 to 16.
uint64_t DefaultStaging(uint64_t mem_limit);  // mem_limit/8, at most 64 MiB, in whole pages.

}  // namespace options_internal
}  // namespace zbudfs

#endif  // ZBUDFS_FS_OPTION_TABLE_H_

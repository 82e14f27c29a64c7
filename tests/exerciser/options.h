// The exerciser's command line: what to run, where and how much. Parsed once in main(); a job
// of --jobs N gets its own copy (ForkJobs in jobs.h). Read-only once the run starts.
#ifndef ZBUDFS_TESTS_EXERCISER_OPTIONS_H_
#define ZBUDFS_TESTS_EXERCISER_OPTIONS_H_

#include <cstdint>
#include <string>

namespace zbudfs::exerciser {

inline constexpr uint64_t kMiB = 1 << 20;

struct Options {
  std::string zroot, rroot;
  uint64_t seed = 0;
  bool seed_given = false;
  uint64_t ops = 20000;
  uint64_t target_bytes = 16 * kMiB;  // Data the reference should hold, roughly.
  uint64_t max_offset = 3ull << 30;   // Largest sparse offset (3 GiB).
  uint64_t check_every = 2000;        // Light tree compare every N ops.
  bool mmap = true;
  bool verbose = false;
  int tail = 40;        // Log lines printed on failure.
  unsigned jobs = 1;    // Parallel jobs, each in its own subdirectory.
  std::string job_tag;  // "job N: " in a job's messages.
};

// Parses argv; prints the usage and exits with status 2 on a bad command line. Without
// --seed, the seed comes from the clock (and is printed by the run).
Options ParseOptions(int argc, char** argv);

}  // namespace zbudfs::exerciser

#endif  // ZBUDFS_TESTS_EXERCISER_OPTIONS_H_

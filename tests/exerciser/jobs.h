// --jobs N: N processes in parallel, so that the daemon serves several writers, readers and
// reclaim at once. Job i runs in subdirectory jI of both roots, with seed+i and 1/N of the
// operations and of the data.
#ifndef ZBUDFS_TESTS_EXERCISER_JOBS_H_
#define ZBUDFS_TESTS_EXERCISER_JOBS_H_

#include <optional>

#include "tests/exerciser/options.h"

namespace zbudfs::exerciser {

// Forks the jobs (opt->jobs > 1). In the parent: waits for them all, prints the verdict and
// returns the exit status (1 when a job failed, 2 when they could not be started). In a job:
// returns nullopt, with *opt now that job's options.
std::optional<int> ForkJobs(Options* opt);

}  // namespace zbudfs::exerciser

#endif  // ZBUDFS_TESTS_EXERCISER_JOBS_H_

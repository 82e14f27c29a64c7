#include "tests/exerciser/jobs.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tests/exerciser/result.h"

namespace zbudfs::exerciser {
namespace {

// Turns the options of the whole run into those of job j in subdirectory sub.
void BecomeJob(Options* opt, unsigned j, const std::string& sub) {
  opt->zroot += sub;
  opt->rroot += sub;
  opt->seed += j;
  opt->ops /= opt->jobs;
  opt->target_bytes /= opt->jobs;
  opt->jobs = 1;
  opt->job_tag = Fmt("job %u: ", j);
}

int WaitForJobs(const std::vector<pid_t>& pids, unsigned jobs) {
  int failed = 0;
  for (pid_t pid : pids) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
  }
  std::printf("exerciser: %s (%d of %u jobs failed)\n", failed ? "FAIL" : "PASS", failed, jobs);
  return failed ? 1 : 0;
}

}  // namespace

std::optional<int> ForkJobs(Options* opt) {
  std::printf("exerciser: %u jobs, seeds %llu..%llu\n", opt->jobs,
              static_cast<unsigned long long>(opt->seed),
              static_cast<unsigned long long>(opt->seed + opt->jobs - 1));
  std::fflush(stdout);
  std::vector<pid_t> pids;
  for (unsigned j = 0; j < opt->jobs; ++j) {
    const std::string sub = Fmt("/j%u", j);
    if ((mkdir((opt->zroot + sub).c_str(), 0755) != 0 && errno != EEXIST) ||
        (mkdir((opt->rroot + sub).c_str(), 0755) != 0 && errno != EEXIST)) {
      std::fprintf(stderr, "exerciser: cannot make the job directories: %s\n", strerror(errno));
      return 2;
    }
    pid_t pid = fork();
    if (pid < 0) return 2;
    if (pid == 0) {
      BecomeJob(opt, j, sub);
      return std::nullopt;
    }
    pids.push_back(pid);
  }
  return WaitForJobs(pids, opt->jobs);
}

}  // namespace zbudfs::exerciser

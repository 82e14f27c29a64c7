#include "tests/exerciser/options.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace zbudfs::exerciser {
namespace {

[[noreturn]] void Usage() {
  std::fprintf(
      stderr,
      "usage: exerciser --zbud DIR --ref DIR [--seed N] [--ops N] [--target-mb N]\n"
      "                 [--max-offset-mb N] [--check-every N] [--no-mmap] [--verbose]\n"
      "                 [--tail N] [--jobs N]\n"
      "  --zbud DIR        a directory on the zbudfs mount (empty)\n"
      "  --ref DIR         the reference directory, on a tmpfs of its own (empty)\n"
      "  --seed N          random seed (default: from the clock; always printed)\n"
      "  --ops N           operations (default 20000; long mode: --ops 1000000)\n"
      "  --target-mb N     data the files should hold, roughly (default 16)\n"
      "  --max-offset-mb N largest sparse offset (default 3072)\n"
      "  --check-every N   compare the trees' metadata every N ops (default 2000)\n"
      "  --jobs N          N processes in parallel, job i in subdirectory jI of both\n"
      "                    roots with seed+i, --ops and --target-mb each divided by N\n"
      "                    (a job's failure prints the single-job command replaying it)\n");
  std::exit(2);
}

uint64_t Number(const char* s) { return std::strtoull(s, nullptr, 0); }

// Applies one option (argv[*i], and its value, which advances *i); false when unknown.
bool ParseOne(int argc, char** argv, int* i, Options* opt) {
  const std::string a = argv[*i];
  auto val = [&]() -> const char* {
    if (*i + 1 >= argc) Usage();
    return argv[++*i];
  };
  if (a == "--zbud") {
    opt->zroot = val();
  } else if (a == "--ref") {
    opt->rroot = val();
  } else if (a == "--seed") {
    opt->seed = Number(val());
    opt->seed_given = true;
  } else if (a == "--ops") {
    opt->ops = Number(val());
  } else if (a == "--target-mb") {
    opt->target_bytes = Number(val()) * kMiB;
  } else if (a == "--max-offset-mb") {
    opt->max_offset = std::max<uint64_t>(1, Number(val())) * kMiB;
  } else if (a == "--check-every") {
    opt->check_every = Number(val());
  } else if (a == "--tail") {
    opt->tail = std::atoi(val());
  } else if (a == "--no-mmap") {
    opt->mmap = false;
  } else if (a == "--jobs") {
    opt->jobs = std::max(1, std::atoi(val()));
  } else if (a == "--verbose" || a == "-v") {
    opt->verbose = true;
  } else {
    return false;
  }
  return true;
}

}  // namespace

Options ParseOptions(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    if (!ParseOne(argc, argv, &i, &opt)) Usage();
  }
  if (opt.zroot.empty() || opt.rroot.empty()) Usage();
  if (!opt.seed_given) {
    opt.seed = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) ^
               (static_cast<uint64_t>(getpid()) << 32);
    opt.seed %= 1000000000000ull;
  }
  return opt;
}

}  // namespace zbudfs::exerciser

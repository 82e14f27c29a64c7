#include "tests/exerciser/runner.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "tests/exerciser/result.h"

namespace zbudfs::exerciser {

Runner::Runner(const Options& opt)
    : opt_(opt),
      log_(opt),
      model_(opt, &log_),
      pick_(opt, &model_),
      check_(opt, &log_, &model_),
      seek_(opt, &log_),
      ctx_{opt, log_, model_, pick_, data_, check_},
      file_ops_(ctx_, &seek_),
      size_ops_(ctx_),
      mmap_op_(ctx_),
      name_ops_(ctx_) {}

std::vector<Runner::OpDef> Runner::MakeOps() {
  return {
      {"open", [this] { file_ops_.Open(); }, 8},
      {"close", [this] { file_ops_.Close(); }, 5},
      {"write", [this] { file_ops_.Write(); }, 26},
      {"read", [this] { file_ops_.Read(); }, 15},
      {"direct", [this] { file_ops_.DirectRead(); }, 2},
      {"truncate", [this] { size_ops_.Truncate(); }, 5},
      {"fallocate", [this] { size_ops_.Fallocate(); }, 7},
      {"mmap", [this] { mmap_op_.Run(); }, 4},
      {"sync", [this] { file_ops_.Sync(); }, 2},
      {"dropcache", [this] { file_ops_.DropCache(); }, 2},
      {"fstat", [this] { file_ops_.Fstat(); }, 2},
      {"stat", [this] { name_ops_.Stat(); }, 2},
      {"unlink", [this] { name_ops_.Unlink(); }, 3},
      {"rename", [this] { name_ops_.Rename(); }, 3},
      {"link", [this] { name_ops_.Link(); }, 2},
      {"mkdir", [this] { name_ops_.Mkdir(); }, 1},
      {"rmdir", [this] { name_ops_.Rmdir(); }, 1},
      {"readdir", [this] { name_ops_.Readdir(); }, 1},
      {"compare", [this] { file_ops_.CompareHandle(); }, 1},
      {"seek", [this] { file_ops_.Seek(); }, 2},
  };
}

size_t Runner::PickOp(const std::vector<OpDef>& ops) {
  const size_t open_handles = model_.handles().size();
  std::vector<unsigned> w;
  unsigned total = 0;
  for (const OpDef& d : ops) {
    unsigned x = d.weight;
    const std::string n = d.name;
    if (n == "open") x = open_handles < 3 ? 30 : open_handles > 20 ? 1 : x;
    if (n == "close") x = open_handles > 20 ? 30 : open_handles < 3 ? 1 : x;
    if (n == "mmap" && !opt_.mmap) x = 0;
    if (pick_.Over() && (n == "truncate" || n == "unlink" || n == "fallocate")) x *= 3;
    if (n == "compare" && pick_.used_now() > 4 * opt_.target_bytes) x = 0;
    w.push_back(x);
    total += x;
  }
  unsigned pick = static_cast<unsigned>(pick_.rng().Below(total));
  size_t k = 0;
  while (pick >= w[k]) pick -= w[k++];
  return k;
}

double Runner::Seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Runner::Progress() {
  log_.Log("light tree compare");
  check_.CompareTree("", false);
  const double s = Seconds();
  std::printf("%sexerciser: %llu ops, %.1f s, reference holds %.1f MiB, %zu open handles\n",
              opt_.job_tag.c_str(), static_cast<unsigned long long>(log_.op() + 1), s,
              model_.RefUsed() / double(kMiB), model_.handles().size());
  std::fflush(stdout);
}

int Runner::Run() {
  for (const char* d : {"d0", "d1", "d0/s"}) {
    log_.Same(std::string("mkdir ") + d, CALL(mkdir(model_.Z(d).c_str(), 0755)),
              CALL(mkdir(model_.R(d).c_str(), 0755)));
  }
  const std::vector<OpDef> ops = MakeOps();
  start_ = std::chrono::steady_clock::now();
  for (uint64_t op = 0; op < opt_.ops; ++op) {
    log_.set_op(op);
    pick_.Measure();
    const size_t k = PickOp(ops);
    ops[k].fn();
    ++counts_[ops[k].name];
    if (opt_.check_every != 0 && (op + 1) % opt_.check_every == 0) Progress();
  }
  log_.set_op(opt_.ops);
  CompareAndCloseHandles();
  log_.Log("final: full tree compare with content");
  check_.CompareTree("", true);
  return Summary();
}

void Runner::CompareAndCloseHandles() {
  log_.Log("final: compare and close every handle");
  std::vector<Handle>& handles = model_.handles();
  while (!handles.empty()) {
    const Handle& h = handles.back();
    check_.CompareFstat(h, "final");
    if (Readable(h)) {
      check_.CompareWhole("final " + HName(h), h.z, h.r, model_.RefSize(h), false);
    } else {
      // Write-only: compare through read-only reopens.
      int zf = open(Fmt("/proc/self/fd/%d", h.z).c_str(), O_RDONLY | O_CLOEXEC);
      int rf = open(Fmt("/proc/self/fd/%d", h.r).c_str(), O_RDONLY | O_CLOEXEC);
      if (zf >= 0 && rf >= 0) {
        check_.CompareWhole("final " + HName(h), zf, rf, model_.RefSize(h), false);
      }
      if (zf >= 0) close(zf);
      if (rf >= 0) close(rf);
    }
    file_ops_.CloseHandle(handles.size() - 1);
  }
}

int Runner::Summary() {
  const double s = Seconds();
  const uint64_t violations = seek_.violations();
  std::printf("%sexerciser: %s seed %llu: %llu ops in %.1f s; reference holds %.1f MiB;",
              opt_.job_tag.c_str(),
              violations != 0 ? "finished (data and metadata all equal)" : "PASS",
              static_cast<unsigned long long>(opt_.seed), static_cast<unsigned long long>(opt_.ops),
              s, model_.RefUsed() / double(kMiB));
  for (const auto& [n, c] : counts_)
    std::printf(" %s=%llu", n.c_str(), static_cast<unsigned long long>(c));
  std::printf("\n");
  if (violations == 0) return 0;
  std::printf(
      "%sexerciser: FAIL: %llu SEEK_DATA/SEEK_HOLE answers were untrue (seed %llu; first ones "
      "above)\n",
      opt_.job_tag.c_str(), static_cast<unsigned long long>(violations),
      static_cast<unsigned long long>(opt_.seed));
  return 1;
}

}  // namespace zbudfs::exerciser

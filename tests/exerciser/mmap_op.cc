#include "tests/exerciser/mmap_op.h"

#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>

#include "store/page_size.h"
#include "tests/exerciser/result.h"

namespace zbudfs::exerciser {
namespace {

// Process-wide because a signal handler can reach nothing else: where to jump on SIGBUS, and
// whether a mapping is being touched (any other SIGBUS is re-raised and kills the process).
sigjmp_buf g_jmp;
volatile sig_atomic_t g_in_mmap = 0;

void OnSigbus(int sig) {
  if (g_in_mmap) siglongjmp(g_jmp, sig);
  signal(sig, SIG_DFL);
  raise(sig);
}

}  // namespace

void MmapOp::InstallSigbusHandler() {
  struct sigaction sa {};
  sa.sa_handler = OnSigbus;
  sigaction(SIGBUS, &sa, nullptr);
}

void MmapOp::Run() {
  Rng& rng = c_.pick.rng();
  Handle* h = c_.pick.PickHandle(true, true);
  if (!h) return;
  const uint64_t size = c_.model.RefSize(*h);
  if (size == 0) return;
  const uint64_t off = rng.Below((size + kPageSize - 1) / kPageSize) * kPageSize;
  const uint64_t len = rng.Range(1, std::min<uint64_t>(size - off, 2 * kMiB));
  const bool rw = Readable(*h) && Writable(*h) && rng.Chance(80);
  const int prot = rw ? PROT_READ | PROT_WRITE : PROT_READ;
  const std::string what =
      Fmt("mmap %s %s off=%llu len=%llu (size %llu)", rw ? "RW" : "R", HName(*h).c_str(),
          static_cast<unsigned long long>(off), static_cast<unsigned long long>(len),
          static_cast<unsigned long long>(size));
  errno = 0;
  void* zm = mmap(nullptr, len, prot, MAP_SHARED, h->z, static_cast<off_t>(off));
  Res z{zm == MAP_FAILED ? -1 : 0, zm == MAP_FAILED ? errno : 0};
  errno = 0;
  void* rm = mmap(nullptr, len, prot, MAP_SHARED, h->r, static_cast<off_t>(off));
  Res r{rm == MAP_FAILED ? -1 : 0, rm == MAP_FAILED ? errno : 0};
  if (!c_.log.Same(what, z, r)) return;
  Touch(what, static_cast<uint8_t*>(zm), static_cast<uint8_t*>(rm), off, len, rw);
  munmap(zm, len);
  munmap(rm, len);
  c_.check.CompareFstat(*h, "mmap");
}

void MmapOp::Touch(const std::string& what, uint8_t* zp, uint8_t* rp, uint64_t off, uint64_t len,
                   bool rw) {
  int sig = sigsetjmp(g_jmp, 1);
  if (sig != 0) {
    g_in_mmap = 0;
    c_.log.Fail(what +
                ": SIGBUS while touching the zbudfs mapping (a page could not be read or written)");
  }
  g_in_mmap = 1;
  if (std::memcmp(zp, rp, len) != 0) {
    size_t i = 0;
    while (zp[i] == rp[i]) ++i;
    g_in_mmap = 0;
    c_.log.Fail(Fmt("%s: mapped data differs at file offset %llu", what.c_str(),
                    static_cast<unsigned long long>(off + i)));
  }
  if (rw) {
    Store(zp, rp, off, len);
    if (std::memcmp(zp, rp, len) != 0) {
      g_in_mmap = 0;
      c_.log.Fail(what + ": mapped data differs after stores");
    }
  }
  g_in_mmap = 0;
}

void MmapOp::Store(uint8_t* zp, uint8_t* rp, uint64_t off, uint64_t len) {
  Rng& rng = c_.pick.rng();
  const int writes = static_cast<int>(rng.Range(1, 4));
  for (int k = 0; k < writes; ++k) {
    uint64_t wo = rng.Below(len);
    uint64_t wl = rng.Range(1, std::min<uint64_t>(len - wo, 3 * kPageSize));
    const int kind = c_.data.Fill(rng, wl);
    c_.log.Log(Fmt("  mmap store at file offset %llu len %llu %s",
                   static_cast<unsigned long long>(off + wo), static_cast<unsigned long long>(wl),
                   DataGen::kKindNames[kind]));
    std::memcpy(zp + wo, c_.data.data(), wl);
    std::memcpy(rp + wo, c_.data.data(), wl);
  }
  if (rng.Chance(70)) {
    const int flags = rng.Chance(70) ? MS_SYNC : MS_ASYNC;
    c_.log.Same(flags == MS_SYNC ? "  msync MS_SYNC" : "  msync MS_ASYNC",
                CALL(msync(zp, len, flags)), CALL(msync(rp, len, flags)));
  }
}

}  // namespace zbudfs::exerciser

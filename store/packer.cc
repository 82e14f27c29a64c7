#include "store/packer.h"

namespace zbudfs {

void Packer::Start() {
  if (interval_.count() == 0 || thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void Packer::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  cv_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

void Packer::Kick() {
  {
    MutexLock lock(&mu_);
    kicked_ = true;
  }
  cv_.SignalAll();
}

void Packer::Loop() {
  for (;;) {
    {
      MutexLock lock(&mu_);
      if (!stop_ && !kicked_) (void)cv_.WaitFor(&mu_, interval_);
      if (stop_) return;
      kicked_ = false;
    }
    host_->PackCold();
  }
}

}  // namespace zbudfs

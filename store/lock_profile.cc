#include "store/lock_profile.h"

namespace zbudfs {

LockWait LockProfile::Snapshot() const {
  LockWait w;
  w.name = name_;
  w.waits = waits_.load(std::memory_order_relaxed);
  w.wait_ns = wait_ns_.load(std::memory_order_relaxed);
  return w;
}

}  // namespace zbudfs

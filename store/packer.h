// Packer: the background thread that packs cold pages into clusters (store/cluster.h).
//
// Owns: one thread that wakes every `interval` (or when Kick is called) and asks its host
// (PageStore) to pack the files nobody has written for a while (PageStore::PackCold). It
// keeps no list of its own: the host knows which files have pages to pack and when they
// were last written.
//
// Locking: mu_ guards the stop flag and the kick (a leaf: nothing is taken under it, and
// the host is called with it released).
#ifndef ZBUDFS_STORE_PACKER_H_
#define ZBUDFS_STORE_PACKER_H_

#include <chrono>
#include <thread>

#include "store/mutex.h"
#include "store/thread_annotations.h"

namespace zbudfs {

class Packer {
 public:
  class Host {
   public:
    virtual void PackCold() = 0;  // Packs what has gone cold; called with no lock held.

   protected:
    ~Host() = default;
  };

  Packer(std::chrono::milliseconds interval, Host* host) : interval_(interval), host_(host) {}
  ~Packer() { Stop(); }
  Packer(const Packer&) = delete;
  Packer& operator=(const Packer&) = delete;

  void Start();               // Starts the thread (no-op for a zero interval).
  void Stop() EXCLUDES(mu_);  // Ends it; idempotent.
  void Kick() EXCLUDES(mu_);  // Runs a round now.

 private:
  void Loop() EXCLUDES(mu_);

  const std::chrono::milliseconds interval_;
  Host* const host_;
  Mutex mu_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  bool kicked_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace zbudfs

#endif  // ZBUDFS_STORE_PACKER_H_

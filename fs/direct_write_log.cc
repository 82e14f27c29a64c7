// Recent near-full direct writes, against stale writeback (see direct_write_log.h).
#include "fs/direct_write_log.h"

#include <algorithm>

namespace zbudfs {

uint64_t DirectWriteLog::Begin(uint64_t ino, uint64_t off, uint64_t end, uint64_t oldest_served) {
  MutexLock lock(&mu_);
  if (count_.load(std::memory_order_relaxed) > kPruneAllPast) {
    for (auto it = records_.begin(); it != records_.end();) {
      PruneLocked(&it->second, oldest_served);
      it = it->second.empty() ? records_.erase(it) : std::next(it);
    }
  }
  std::vector<Record>& mine = records_[ino];
  PruneLocked(&mine, oldest_served);
  if (mine.size() >= kMaxPerInode) {
    auto done = std::find_if(mine.begin(), mine.end(),
                             [](const Record& r) { return r.done_seq != UINT64_MAX; });
    if (done != mine.end()) {
      mine.erase(done);
      count_.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  const uint64_t id = next_id_++;
  mine.push_back(Record{id, Range{off, end}, UINT64_MAX, Clock::time_point()});
  count_.fetch_add(1, std::memory_order_relaxed);
  return id;
}

void DirectWriteLog::End(uint64_t ino, uint64_t id, uint64_t read_seq) {
  MutexLock lock(&mu_);
  auto it = records_.find(ino);
  if (it == records_.end()) return;
  for (Record& r : it->second) {
    if (r.id == id) {
      r.done_seq = read_seq;
      r.done_at = Clock::now();
      return;
    }
  }
}

std::vector<DirectWriteLog::Range> DirectWriteLog::StaleParts(uint64_t ino, uint64_t off,
                                                              uint64_t end, uint64_t read_seq) {
  std::vector<Range> parts;
  // read_seq 0: read by libfuse's loop (clone_fd), which keeps no count. Assuming it stale
  // would undo a later write through a mapping: such writebacks are taken as they are.
  if (read_seq == 0 || count_.load(std::memory_order_relaxed) == 0) return parts;
  MutexLock lock(&mu_);
  auto it = records_.find(ino);
  if (it == records_.end()) return parts;
  for (const Record& r : it->second) {
    const uint64_t from = std::max(off, r.range.off);
    const uint64_t to = std::min(end, r.range.end);
    if (from < to && read_seq <= r.done_seq) parts.push_back(Range{from, to});
  }
  return parts;
}

// A done record is needed only by writebacks read no later than its copy (read_seq at most
// done_seq); once every request being served was read after that, none can still come.
void DirectWriteLog::PruneLocked(std::vector<Record>* v, uint64_t oldest_served) {
  const size_t before = v->size();
  const Clock::time_point kept_since = Clock::now() - std::chrono::milliseconds(kMinKeepMs);
  std::erase_if(*v, [&](const Record& r) {
    return r.done_seq != UINT64_MAX && r.done_seq < oldest_served && r.done_at < kept_since;
  });
  count_.fetch_sub(before - v->size(), std::memory_order_relaxed);
}

}  // namespace zbudfs

// Internal to the archive import: finishes extracted regular files on a second thread, so that
// this overlaps extracting the next ones.
#pragma once
#include <sys/stat.h>

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "archive/api.hpp"
#include "os/unique_fd.hpp"
#include "os/xattrs.hpp"
#include "unify/hash.hpp"

namespace vunify::archive {

// A directory fd shared by the files extracted into it (and the cache that opened it).
using SharedDir = std::shared_ptr<const os::unique_fd>;

// A regular file with its final content, still mode 0600 and owned by root.
struct PlaceJob {
  os::unique_fd file;
  SharedDir dir;
  std::string name, rel;  // entry in `dir`; path in the template (for messages)
  struct stat st {};      // mode, owner and times to give it
  os::Xattrs xattrs;
  unify::Hash128 content;
};

// On its own thread, per file: sets the metadata and calls the target's place(), which makes the
// file a link to a store object (vunify reads its real key: fstat, xattrs as stored). Calls
// place() (and so the index) only from that thread. Wakes the thread once per batch of files, not per
// file, and holds at most kMaxUnfinished files (two fds each) at a time.
class FilePlacer {
 public:
  explicit FilePlacer(const ImportTarget& target);
  ~FilePlacer();  // stops the thread; unfinished files are left as they are (still 0600)
  FilePlacer(const FilePlacer&) = delete;
  FilePlacer& operator=(const FilePlacer&) = delete;

  // Queues a file; waits while kMaxUnfinished are queued. Rethrows an error of an earlier file.
  void push(PlaceJob job);
  // Waits until every queued file is placed; rethrows an error of the thread.
  void drain();

 private:
  static constexpr size_t kMaxUnfinished = 256;
  static constexpr size_t kBatch = 32;
  static constexpr size_t kNoWaiter = SIZE_MAX;
  void work();
  void finish(PlaceJob& job);
  bool done_one(std::unique_lock<std::mutex>& lock, std::exception_ptr err);
  void wait_until(std::unique_lock<std::mutex>& lock, size_t unfinished_at_most);

  const ImportTarget& target_;
  std::mutex mu_;
  std::condition_variable has_work_, has_room_;
  std::vector<PlaceJob> pending_;
  size_t unfinished_ = 0;  // pending_ + the batch being worked on
  size_t waiter_wants_ = kNoWaiter;  // the producer waits until unfinished_ <= this
  bool stop_ = false, worker_idle_ = false;
  std::exception_ptr error_;
  std::thread thread_;  // last: started once everything it uses exists
};

}  // namespace vunify::archive

#include "archive/placer.hpp"

#include <utility>

#include "os/copy.hpp"

namespace vunify::archive {

FilePlacer::FilePlacer(const ImportTarget& target) : target_(target), thread_([this] { work(); }) {}

FilePlacer::~FilePlacer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  has_work_.notify_one();
  thread_.join();
}

void FilePlacer::push(PlaceJob job) {
  std::unique_lock lock(mu_);
  if (unfinished_ >= kMaxUnfinished) wait_until(lock, kMaxUnfinished / 2);
  if (error_) std::rethrow_exception(error_);
  pending_.push_back(std::move(job));
  ++unfinished_;
  if (worker_idle_ && pending_.size() >= kBatch) has_work_.notify_one();
}

void FilePlacer::drain() {
  std::unique_lock lock(mu_);
  wait_until(lock, 0);
  if (error_) std::rethrow_exception(error_);
}

// Hands the pending files to the thread and waits until at most `unfinished_at_most` are left
// (or the thread failed).
void FilePlacer::wait_until(std::unique_lock<std::mutex>& lock, size_t unfinished_at_most) {
  if (worker_idle_ && !pending_.empty()) has_work_.notify_one();
  waiter_wants_ = unfinished_at_most;
  has_room_.wait(lock, [&] { return unfinished_ <= unfinished_at_most || error_; });
  waiter_wants_ = kNoWaiter;
}

void FilePlacer::finish(PlaceJob& job) {
  os::copy_file_metadata(job.file.get(), job.st, job.xattrs, job.rel);
  Error err;
  if (!target_.place(target_.ctx, job.file.get(), job.content, !job.xattrs.empty(), job.dir->get(), job.name, job.rel, &err))
    throw_error(err);
}

// Books one finished file (under the lock); false if the thread must stop working on its batch.
bool FilePlacer::done_one(std::unique_lock<std::mutex>& lock, std::exception_ptr err) {
  lock.lock();
  --unfinished_;
  if (err && !error_) error_ = err;
  if (waiter_wants_ != kNoWaiter && (unfinished_ <= waiter_wants_ || error_)) has_room_.notify_one();
  bool go_on = !error_ && !stop_;
  lock.unlock();
  return go_on;
}

void FilePlacer::work() {
  std::vector<PlaceJob> batch;
  std::unique_lock lock(mu_);
  for (;;) {
    worker_idle_ = true;
    has_work_.wait(lock, [this] { return stop_ || pending_.size() >= kBatch || (waiter_wants_ != kNoWaiter && !pending_.empty()); });
    worker_idle_ = false;
    if (stop_) return;
    batch.swap(pending_);
    lock.unlock();
    for (PlaceJob& job : batch) {
      std::exception_ptr err;
      try {
        finish(job);
      } catch (...) {
        err = std::current_exception();
      }
      job = {};  // closes its fds
      if (!done_one(lock, err)) break;
    }
    batch.clear();  // after an error or stop: the rest is dropped, left as it is
    lock.lock();
    if (error_) {
      pending_.clear();
      unfinished_ = 0;
      has_room_.notify_one();
    }
  }
}

}  // namespace vunify::archive

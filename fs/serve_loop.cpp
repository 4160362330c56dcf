#include "fs/serve_loop.hpp"

#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace vunify::fs {

namespace {

// The signals fuse_set_signal_handlers makes end the session.
sigset_t exit_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGHUP, SIGINT, SIGTERM}) sigaddset(&set, sig);
  return set;
}

// The buffer a thread reads requests into (libfuse allocates it at the first read).
struct RequestBuf {
  fuse_buf buf{};
  RequestBuf() = default;
  RequestBuf(const RequestBuf&) = delete;
  RequestBuf& operator=(const RequestBuf&) = delete;
  ~RequestBuf() { std::free(buf.mem); }
};

class LeaderFollowers {
 public:
  LeaderFollowers(fuse_session* se, int max_threads, const RequestFilter& may_be_slow)
      : se_(se), max_threads_(max_threads), may_be_slow_(may_be_slow), signals_(exit_signals()) {}

  int run() {
    sigset_t old;
    if (many()) pthread_sigmask(SIG_BLOCK, &signals_, &old);  // inherited by every thread started
    work();
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mu_);
      threads.swap(threads_);  // none is started any more: the session ended
    }
    for (auto& t : threads) t.join();
    if (many()) pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return error_;
  }

 private:
  bool many() const { return max_threads_ > 1; }

  // One thread's life: a follower until it may lead, the leader until it hands over.
  void work() {
    RequestBuf rb;
    std::unique_lock lock(mu_);
    for (;;) {
      while (leader_ && !ended_) {
        ++idle_;
        wake_.wait(lock);
        --idle_;
      }
      if (ended_) return;
      leader_ = true;
      lock.unlock();
      bool ended = lead(rb.buf);
      lock.lock();
      if (ended) {
        ended_ = true;
        wake_.notify_all();
        return;
      }
    }
  }

  // Reads and serves requests until the session ends (true) or this thread served a request
  // that may be slow after handing the lead to another thread (false).
  bool lead(fuse_buf& buf) {
    if (many()) pthread_sigmask(SIG_UNBLOCK, &signals_, nullptr);
    for (;;) {
      if (fuse_session_exited(se_)) return true;
      int res = fuse_session_receive_buf(se_, &buf);
      if (res == -EINTR) continue;
      if (res <= 0) {  // 0: unmounted (ENODEV) or exited
        if (res < 0) {
          error_ = res;
          fuse_session_exit(se_);
        }
        return true;
      }
      if (many() && may_be_slow_(buf.mem, static_cast<size_t>(res))) {
        hand_over();
        fuse_session_process_buf(se_, &buf);
        return false;
      }
      fuse_session_process_buf(se_, &buf);
    }
  }

  // Gives up the lead: wakes an idle follower or starts a thread, which becomes the leader.
  void hand_over() {
    pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
    std::lock_guard lock(mu_);
    leader_ = false;
    if (idle_ > 0) {
      wake_.notify_one();
    } else if (started_ < max_threads_) {
      ++started_;
      threads_.emplace_back([this] { work(); });  // starts with the exit signals blocked
    }
  }

  fuse_session* const se_;
  const int max_threads_;
  const RequestFilter& may_be_slow_;
  const sigset_t signals_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool leader_ = false;  // some thread leads (reads, or serves a fast request)
  bool ended_ = false;
  int idle_ = 0;     // followers waiting in wake_
  int started_ = 1;  // threads, the caller's included
  std::vector<std::thread> threads_;
  int error_ = 0;  // written by the last leader before ended_, read after the joins
};

}  // namespace

int serve_requests(fuse_session* se, int max_threads, const RequestFilter& may_be_slow) {
  return LeaderFollowers(se, max_threads < 1 ? 1 : max_threads, may_be_slow).run();
}

}  // namespace vunify::fs

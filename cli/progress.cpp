#include "cli/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace vunify::cli {

ProgressLine::ProgressLine(bool enabled) : tty_(enabled && ::isatty(2) == 1) {}

void ProgressLine::update(const std::string& line) {
  if (!tty_) return;
  std::lock_guard lock(mu_);
  line_ = line;
  fresh_ = true;
  if (!drawer_.joinable()) drawer_ = std::thread([this] { draw_loop(); });
}

void ProgressLine::draw_loop() {
  std::unique_lock lock(mu_);
  for (;;) {  // draws a line given before finish() at least once, however fast the command
    if (fresh_) {
      fmt::print(stderr, "\r\033[K{}", line_);
      std::fflush(stderr);
      fresh_ = false;
      drawn_ = true;
    }
    if (stop_) return;
    wake_.wait_for(lock, kInterval, [this] { return stop_; });
  }
}

void ProgressLine::finish() {
  std::unique_lock lock(mu_);
  if (drawer_.joinable()) {
    stop_ = true;
    wake_.notify_all();
    lock.unlock();
    drawer_.join();
    lock.lock();
  }
  if (drawn_) {
    fmt::print(stderr, "\r\033[K");
    std::fflush(stderr);
  }
  drawn_ = fresh_ = stop_ = false;
}

os::Progress ProgressLine::sink() {
  if (!tty_) return {};
  return [this](const std::string& line) { update(line); };
}

}  // namespace vunify::cli

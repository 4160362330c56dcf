// The one progress display of every command: a single line on stderr, drawn only when stderr
// is a terminal and the command does not print JSON, redrawn at most ten times a second by a
// drawing thread (so the latest line always shows, however seldom or often it comes), erased
// at the end. Nothing at all reaches a pipe or a file.
#pragma once
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "os/progress.hpp"

namespace vunify::cli {

class ProgressLine {
 public:
  // `enabled` false (e.g. --json) draws nothing even on a terminal.
  explicit ProgressLine(bool enabled = true);
  ~ProgressLine() { finish(); }
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  // Makes `line` the one to show (the first at once, later ones on the next tick). Any thread.
  void update(const std::string& line);
  // Stops drawing and erases the line; call before printing the command's result.
  void finish();
  // A receiver for the library's reports, valid while this object lives; empty when nothing is
  // drawn, so the library does not even format its lines.
  os::Progress sink();

 private:
  void draw_loop();
  static constexpr std::chrono::milliseconds kInterval{100};
  const bool tty_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::string line_;
  bool fresh_ = false, drawn_ = false, stop_ = false;
  std::thread drawer_;  // started by the first update
};

}  // namespace vunify::cli

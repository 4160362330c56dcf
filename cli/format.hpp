// Human-readable output helpers.
#pragma once
#include <cstdint>
#include <mutex>
#include <string>

namespace vunify::cli {

std::string human_bytes(uint64_t bytes);   // "1.5 GiB"
std::string human_time_ns(int64_t ns);     // "2026-11-25 12:00:00"

// A one-line progress display on stderr, drawn only when stderr is a terminal.
// update() may be called from any thread.
class ProgressLine {
 public:
  ProgressLine();
  ~ProgressLine() { finish(); }
  void update(const std::string& line);
  void finish();  // erases the line

 private:
  std::mutex mu_;
  bool tty_ = false, drawn_ = false;
};

}  // namespace vunify::cli

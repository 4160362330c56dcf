// The memory watchdog of a running guest, run by its supervisor: it counts OOM events and
// memory-pressure events of the guest's memory cgroup, logs each OOM to the console log and
// keeps the counts in POOL/run/NAME.events.json for `vunify status`.
//
// v1: eventfds registered through cgroup.event_control on memory.oom_control (each time the
// cgroup runs out of memory) and on memory.pressure_level (low, medium, critical: one each).
// v2: memory.events polled for changes (POLLPRI); "high" counts as medium pressure and "max"
// as critical. OOM kills themselves are the kernel's own counter (oom_kill in memory.oom_control
// or memory.events), read when asked.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "context/limit_target.hpp"
#include "os/unique_fd.hpp"

namespace vunify::context {

struct MemoryEvents {
  uint64_t oom_kills = 0;   // processes of the guest the OOM killer killed (kernel counter)
  uint64_t oom_events = 0;  // times the guest ran out of memory (watchdog)
  uint64_t pressure_low = 0, pressure_medium = 0, pressure_critical = 0;  // (watchdog)
};

// What is known now of a guest's memory events (zeros where nothing is known).
MemoryEvents memory_events(const LimitTarget& target);
// Removes the watchdog's record (teardown).
void remove_memory_events(const std::string& pool, const std::string& guest);

class MemoryWatchdog {
 public:
  // Watches the guest's memory cgroup. Never throws: what cannot be watched is left out and
  // said in `problems()`.
  explicit MemoryWatchdog(const LimitTarget& target);
  // A pollable fd (epoll) that is readable when something fired; -1 if nothing is watched.
  int fd() const { return epoll_.get(); }
  // Counts what fired and updates the record; returns lines for the console log.
  std::vector<std::string> handle();
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  enum class Kind { Oom, Low, Medium, Critical, V2Events };
  struct Watch {
    Kind kind;
    os::unique_fd fd, target;  // the eventfd (v1) or memory.events (v2); the watched file (v1)
  };
  void watch_v1(const std::string& dir);
  void watch_v2(const std::string& dir);
  void add(Kind kind, os::unique_fd fd, os::unique_fd target, uint32_t events);
  void save() const;

  LimitTarget target_;
  os::unique_fd epoll_;
  std::vector<Watch> watches_;
  MemoryEvents counts_;
  std::vector<std::string> problems_;
};

}  // namespace vunify::context

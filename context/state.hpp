// A running context's record: POOL/run/NAME.json, written by the supervisor once PID 1 runs and
// removed after the context's cleanup. Liveness is checked through a pidfd plus the start time
// of the recorded pid, so a recycled pid is never mistaken for the guest's init.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "context/cgroup.hpp"
#include "context/view_cgroup.hpp"
#include "context/network.hpp"
#include "os/unique_fd.hpp"

namespace vunify::context {

struct RunState {
  pid_t pid1 = 0;              // PID 1 of the context, as the host sees it
  uint64_t pid1_start = 0;     // its start time (clock ticks since boot, /proc/PID/stat field 22)
  pid_t supervisor = 0;        // the host-side process that waits for PID 1 and cleans up
  uint64_t supervisor_start = 0;
  int64_t started_ns = 0;      // wall clock
  bool mounted_view = false;   // start mounted the view (stop unmounts it)
  std::string init;            // what PID 1 runs
  int stop_signal = 0;
  uint64_t context_id = 0;     // the inode of its pid namespace
  std::vector<CgroupDir> cgroups;
  ViewAccount view;            // the view daemon's own cgroups (vunify/NAME.view)
  NetworkState network;        // what start set up for the [network] mode
};

std::string run_dir(const std::string& pool_root);
std::optional<RunState> read_state(const std::string& pool_root, const std::string& guest);
void write_state(const std::string& pool_root, const std::string& guest, const RunState& state);
void remove_state(const std::string& pool_root, const std::string& guest);

// Start time of `pid` (0 if it does not exist).
uint64_t start_time(pid_t pid);
// A pidfd of `pid` if it is still the process started at `start` (not a zombie); else empty.
os::unique_fd open_live(pid_t pid, uint64_t start);

// Serializes start/stop/restart of one guest: flock on POOL/run/NAME.lock.
class GuestLock {
 public:
  GuestLock(const std::string& pool_root, const std::string& guest);

 private:
  os::unique_fd fd_;
};

}  // namespace vunify::context

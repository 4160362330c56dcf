// What a running guest uses, read from its cgroups and its network namespace: the counters
// behind `vunify top`. On a hybrid host each comes from the v1 controller's hierarchy, else from
// the cgroup2 directory.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "context/cgroup.hpp"

namespace vunify::context {

struct Usage {
  uint64_t cpu_ns = 0;                 // CPU time (cpuacct.usage; cgroup2 cpu.stat usage_usec)
  uint64_t memory = 0;                 // bytes charged (memory.usage_in_bytes; memory.current)
  uint64_t pids = 0;                   // tasks (pids.current, else the processes listed)
  uint64_t io_read = 0, io_write = 0;  // bytes submitted to block devices (blkio.throttle.io_service_bytes_recursive; io.stat)
};

// The counters of the cgroup directories `dirs` (one guest's, or its view's).
Usage cgroup_usage(const std::vector<CgroupDir>& dirs);

struct NetBytes {
  uint64_t rx = 0, tx = 0;
};
// Bytes received and sent on every interface but lo of the network namespace `pid` is in
// (/proc/PID/net/dev).
NetBytes net_bytes(pid_t pid);

}  // namespace vunify::context

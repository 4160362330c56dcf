// The view daemon of a running guest, accounted in a cgroup of its own: `vunify/NAME.view`
// beside the guest's `vunify/NAME`, in the memory, cpu, cpuacct, blkio and pids hierarchies (or
// the cgroup2 tree). `vunify top` shows what the guest's file I/O costs the host from it, the
// guest's I/O limits apply to it too (io_limits.hpp), and the guest's memory limit cannot make
// the OOM killer pick the daemon that serves the guest its own files.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "context/cgroup.hpp"

namespace vunify::context {

struct ViewAccount {
  pid_t daemon = 0;  // the view daemon (0: none was found, nothing below is set)
  uint64_t daemon_start = 0;
  std::vector<CgroupDir> cgroups;   // vunify/NAME.view in each hierarchy
  std::vector<std::string> origin;  // where the daemon was in each of them (same order)
};

// Creates NAME.view and moves the guest's live view daemon (POOL/log/NAME.pid) into it,
// remembering where it was. Throws os::SysError; on failure nothing is left and the daemon
// stays where it was.
ViewAccount account_view(const std::string& pool_root, const std::string& guest);

// Puts the daemon back where it was if it still runs (its view stays mounted after the guest),
// then removes NAME.view. Returns false if a directory stayed busy.
bool release_view(const ViewAccount& view);

}  // namespace vunify::context

// The barrier (DESIGN invariant 7): the mount root guests/NAME lets only host-context
// callers through. Decided per request from the caller's pid namespace.
#pragma once
#include <string>

#include "fs/fuse.hpp"

namespace vunify::fs {

class Barrier {
 public:
  Barrier();  // records the daemon's own pid namespace as the host context
  // True if the request comes from a process in the host context.
  bool admits(fuse_req_t req) const;

 private:
  std::string host_pidns_;  // readlink of /proc/self/ns/pid, e.g. "pid:[4026531836]"
};

// The one child of the barrier directory: the guest root.
constexpr const char* kRootEntry = "root";

}  // namespace vunify::fs

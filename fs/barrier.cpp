#include "fs/barrier.hpp"

#include <unistd.h>

#include <cstdio>

#include "os/error.hpp"

namespace vunify::fs {

namespace {

std::string pidns_of(const char* proc_link) {
  char buf[64];
  ssize_t n = ::readlink(proc_link, buf, sizeof buf - 1);
  if (n < 0) return {};
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace

Barrier::Barrier() : host_pidns_(pidns_of("/proc/self/ns/pid")) {
  if (host_pidns_.empty()) os::throw_errno("read pid namespace of", "/proc/self/ns/pid");
}

bool Barrier::admits(fuse_req_t req) const {
  const fuse_ctx* caller = fuse_req_ctx(req);
  if (caller->pid <= 0) return false;  // not visible from the host: not a host process
  char link[48];
  std::snprintf(link, sizeof link, "/proc/%d/ns/pid", static_cast<int>(caller->pid));
  return pidns_of(link) == host_pidns_;
}

}  // namespace vunify::fs

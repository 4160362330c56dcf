// Disk I/O limits of a guest on the pool's block device: read/write bytes per second and I/O
// operations per second. Keys ([limits] of POOL/etc/NAME.toml, `vunify set`; limits_io.cpp):
//
//   io.rbps = "20M"     read bytes/s (a size: bytes or K, M, G, T with optional B/iB, powers of 1024)
//   io.wbps = "10M"     write bytes/s
//   io.riops = 500      read operations/s
//   io.wiops = 200      write operations/s
//
// "max" (or unset) is no limit. They are written for the device backing the pool
// (block_device.hpp) to blkio.throttle.{read,write}_{bps,iops}_device on cgroup v1 and to io.max
// on cgroup2, in the guest's cgroup and in its view daemon's (view_cgroup.hpp): reads through the
// view are done by the guest itself (FUSE passthrough) or by the daemon (cached files), and each
// is charged to the cgroup of the process that submits the I/O.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "context/cgroup.hpp"

namespace vunify::context {

struct IoLimits {
  uint64_t rbps = 0, wbps = 0, riops = 0, wiops = 0;  // 0: no limit
  bool operator==(const IoLimits&) const = default;
};

// The line io.max takes for `device` ("7:0 rbps=4194304 wbps=max riops=max wiops=max").
std::string io_max_line(const std::string& device, const IoLimits& limits);

// Writes `limits` for `device` ("MAJ:MIN") into every directory of `dirs` that has the blkio
// controller (v1) or io.max (cgroup2); an unset limit removes the device's rule. Throws
// os::SysError naming the file (e.g. ENODEV for a device without a request queue).
void apply_io_limits(const std::vector<CgroupDir>& dirs, const std::string& device, const IoLimits& limits);

// A running guest's limits on the device backing `pool_root`, in its cgroups (`guest`: reads
// and writes it submits itself, FUSE passthrough included) and its view daemon's (`view`: what
// the daemon reads and writes for it). Throws os::UserError if the pool has no block device and
// a limit is set. `start` calls it even without limits: on cgroup v1 the kernel counts a
// cgroup's I/O (blkio.throttle.io_service_bytes, what `vunify top` shows) only on devices
// where a throttle rule was ever written, and writing "no limit" is such a rule.
void limit_guest_io(const std::string& pool_root, const std::vector<CgroupDir>& guest, const std::vector<CgroupDir>& view,
                    const IoLimits& limits);

// Whether `dir` is where I/O limits are written: a v1 blkio hierarchy or cgroup2.
bool has_io_controller(const CgroupDir& dir);

}  // namespace vunify::context

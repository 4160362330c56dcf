#include "context/io_limits.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>

#include "context/block_device.hpp"
#include "os/error.hpp"

namespace vunify::context {

std::string io_max_line(const std::string& device, const IoLimits& l) {
  auto v = [](uint64_t x) { return x ? std::to_string(x) : std::string("max"); };
  return fmt::format("{} rbps={} wbps={} riops={} wiops={}", device, v(l.rbps), v(l.wbps), v(l.riops), v(l.wiops));
}

void limit_guest_io(const std::string& pool_root, const std::vector<CgroupDir>& guest, const std::vector<CgroupDir>& view,
                    const IoLimits& limits) {
  std::string device;
  try {
    device = block_device_of(pool_root);
  } catch (const os::UserError&) {
    if (limits == IoLimits{}) return;  // nothing to limit, nothing to count on
    throw;
  }
  apply_io_limits(guest, device, limits);
  apply_io_limits(view, device, limits);
}

bool has_io_controller(const CgroupDir& dir) { return dir.v2 || dir.has("blkio"); }

void apply_io_limits(const std::vector<CgroupDir>& dirs, const std::string& device, const IoLimits& l) {
  // On a hybrid host the blkio controller is the v1 one; the cgroup2 tree there has no io.
  bool v1_blkio = std::any_of(dirs.begin(), dirs.end(), [](const CgroupDir& d) { return !d.v2 && has_io_controller(d); });
  for (const auto& d : dirs) {
    if (!has_io_controller(d) || (d.v2 && v1_blkio)) continue;
    if (d.v2) {
      if (::access((d.dir + "/io.max").c_str(), F_OK) != 0) {
        if (l == IoLimits{}) continue;  // nothing to limit where the io controller is off
        throw os::UserError(fmt::format("the io controller is not enabled for {} (cgroup.subtree_control of its parent): "
                                    "disk I/O limits cannot apply",
                                    d.dir));
      }
      write_cgroup_file(d.dir + "/io.max", io_max_line(device, l));
      continue;
    }
    const std::pair<const char*, uint64_t> files[] = {{"read_bps_device", l.rbps},
                                                      {"write_bps_device", l.wbps},
                                                      {"read_iops_device", l.riops},
                                                      {"write_iops_device", l.wiops}};
    for (const auto& [file, value] : files)
      write_cgroup_file(d.dir + "/blkio.throttle." + file, fmt::format("{} {}", device, value));
  }
}

}  // namespace vunify::context

#include "context/io_limits.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "context/block_device.hpp"
#include "os/error.hpp"

namespace vunify::context {

namespace {

using os::UserError;

uint64_t IoLimits::*field(const std::string& key) {
  if (key == "io.rbps") return &IoLimits::rbps;
  if (key == "io.wbps") return &IoLimits::wbps;
  if (key == "io.riops") return &IoLimits::riops;
  if (key == "io.wiops") return &IoLimits::wiops;
  throw UserError(fmt::format("unknown I/O limit '{}' (known: io.rbps, io.wbps, io.riops, io.wiops)", key));
}

bool is_bytes(const std::string& key) { return key == "io.rbps" || key == "io.wbps"; }

// "4M", "4MiB", "4mb", "4096" -> bytes; false if it is none or too large.
bool parse_size(std::string_view s, uint64_t& out) {
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end == s.data()) return false;
  std::string unit(end, s.data() + s.size());
  std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char c) { return std::tolower(c); });
  if (unit.size() > 1 && (unit.substr(1) == "b" || unit.substr(1) == "ib")) unit.resize(1);
  static constexpr std::string_view kUnits = "kmgtp";
  int shift = 0;
  if (unit == "b") unit.clear();
  if (!unit.empty()) {
    auto pos = kUnits.find(unit);
    if (unit.size() != 1 || pos == std::string_view::npos) return false;
    shift = 10 * (static_cast<int>(pos) + 1);
  }
  if (shift && n > (UINT64_MAX >> 1) >> shift) return false;
  out = n << shift;
  return out <= static_cast<uint64_t>(INT64_MAX);
}

std::string size_text(uint64_t v) {
  static constexpr const char* kUnits[] = {"", "K", "M", "G", "T", "P"};
  int i = 0;
  while (i < 5 && v && v % 1024 == 0) v /= 1024, ++i;
  return fmt::format("{}{}", v, kUnits[i]);
}

}  // namespace

const std::vector<std::string>& io_keys() {
  static const std::vector<std::string> keys = {"io.rbps", "io.wbps", "io.riops", "io.wiops"};
  return keys;
}

bool is_io_key(std::string_view key) {
  const auto& keys = io_keys();
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

void set_io_key(IoLimits& limits, const std::string& key, const std::string& value) {
  auto member = field(key);
  uint64_t v = 0;
  if (value == "max" || value == "none") {
    limits.*member = 0;
    return;
  }
  bool ok = is_bytes(key) ? parse_size(value, v)
                          : !value.empty() && std::all_of(value.begin(), value.end(), ::isdigit) &&
                                std::from_chars(value.data(), value.data() + value.size(), v).ec == std::errc() &&
                                v <= static_cast<uint64_t>(INT64_MAX);
  if (!ok)
    throw UserError(is_bytes(key) ? fmt::format("{}: '{}' is not a rate: give bytes per second or a number with a unit "
                                                "(4M, 512K, 1GiB), or max",
                                                key, value)
                                  : fmt::format("{}: '{}' is not a number of operations per second (or max)", key, value));
  limits.*member = v;
}

std::string io_value(const IoLimits& limits, const std::string& key) {
  uint64_t v = limits.*field(key);
  if (!v) return "max";
  return is_bytes(key) ? size_text(v) : std::to_string(v);
}

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
        throw UserError(fmt::format("the io controller is not enabled for {} (cgroup.subtree_control of its parent): "
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

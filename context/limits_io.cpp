// io.rbps io.wbps io.riops io.wiops: disk I/O limits on the pool's block device, in the guest's
// cgroups and its view daemon's (io_limits.hpp says why both).
#include <nlohmann/json.hpp>

#include "context/io_limits.hpp"
#include "context/limit_keys.hpp"
#include "context/limit_target.hpp"
#include "context/usage.hpp"

namespace vunify::context {

namespace {

IoLimits io_limits_of(const Limits& limits) {
  IoLimits l;
  l.rbps = size_of("io.rbps", limits).value_or(0);
  l.wbps = size_of("io.wbps", limits).value_or(0);
  l.riops = static_cast<uint64_t>(integer_of("io.riops", limits).value_or(0));
  l.wiops = static_cast<uint64_t>(integer_of("io.wiops", limits).value_or(0));
  return l;
}

LimitKey rate_key(const char* name, const char* what) {
  return {name, std::string(what) + " bytes/s: a size, e.g. 4M, 512K, 1GiB",
          [](const std::string& v) { return canonical_size(v, 1); }, true};
}

LimitKey ops_key(const char* name, const char* what) {
  return {name, std::string(what) + " operations/s, 1..1000000000",
          [](const std::string& v) { return canonical_integer(v, 1, 1000000000); }};
}

}  // namespace

LimitModule io_limit_module() {
  LimitModule m;
  m.name = "io";
  m.keys = {rate_key("io.rbps", "read"), rate_key("io.wbps", "write"), ops_key("io.riops", "read"),
            ops_key("io.wiops", "write")};
  // Written even when none is set ("max"): on cgroup v1 that is also what makes the kernel
  // count the guest's I/O on the pool's disk (vunify top, status).
  m.apply = [](const LimitTarget& t, const Limits& limits) {
    limit_guest_io(t.pool, t.cgroups, t.view_cgroups, io_limits_of(limits));
  };
  m.usage = [](const LimitTarget& t, const Limits& limits, nlohmann::json& out) {
    Usage guest = cgroup_usage(t.cgroups), view = cgroup_usage(t.view_cgroups);
    nlohmann::json j = {{"read", guest.io_read + view.io_read},
                        {"write", guest.io_write + view.io_write},
                        {"view_read", view.io_read},
                        {"view_write", view.io_write}};
    for (const char* key : {"io.rbps", "io.wbps", "io.riops", "io.wiops"}) {
      auto it = limits.find(key);
      j["limits"][key] = it == limits.end() ? nlohmann::json() : nlohmann::json(it->second);
    }
    out["io"] = j;
  };
  return m;
}

}  // namespace vunify::context

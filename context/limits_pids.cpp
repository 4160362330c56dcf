// pids.max: the most processes and threads the guest may have at once (the pids controller).
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "context/limit_keys.hpp"
#include "context/limit_target.hpp"

namespace vunify::context {

LimitModule pids_limit_module() {
  LimitModule m;
  m.name = "pids";
  m.keys = {{"pids.max", "a number of processes, 1..4194304", [](const std::string& v) { return canonical_integer(v, 1, 4194304); }}};
  m.apply = [](const LimitTarget& t, const Limits& limits) {
    const CgroupDir* d = t.find("pids");
    auto it = limits.find("pids.max");
    if (!d && it != limits.end()) t.need("pids", "pids.max");
    if (d) write_cgroup(*d, {{"pids.max", it == limits.end() ? "max" : it->second}});
  };
  m.usage = [](const LimitTarget& t, const Limits& limits, nlohmann::json& out) {
    nlohmann::json j;
    auto limit = integer_of("pids.max", limits);
    j["limit"] = limit ? nlohmann::json(*limit) : nlohmann::json();
    if (const CgroupDir* d = t.find("pids")) {
      if (auto cur = read_cgroup(d->dir, "pids.current")) j["current"] = std::stoull(*cur);
      // v1 pids.events / v2 pids.events: "max N", forks refused at the limit
      if (auto refused = read_cgroup_key(d->dir, "pids.events", "max")) j["forks_refused"] = *refused;
    }
    out["pids"] = j;
  };
  return m;
}

}  // namespace vunify::context

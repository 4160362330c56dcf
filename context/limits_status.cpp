// What `vunify status` shows of limits: the configured values, usage against them, memory events.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "context/limit_target.hpp"
#include "context/limits.hpp"
#include "context/limits_config.hpp"
#include "context/watchdog.hpp"

namespace vunify::context {

nlohmann::json limits_json(const std::string& pool_root, const std::string& guest, const RunState* state) {
  Limits limits = load_limits(pool_root, guest);
  nlohmann::json out = {{"limits", nlohmann::json::object()}};
  for (const auto& [k, v] : limits) {
    const LimitKey* key = find_limit_key(k);
    bool number = key && !key->quoted;  // 50, 0.5 as JSON numbers; sizes and lists as text
    out["limits"][k] = number ? nlohmann::json::parse(v, nullptr, false) : nlohmann::json(v);
  }
  if (!state) return out;
  LimitTarget target{pool_root, guest, state->cgroups, state->view.cgroups};
  nlohmann::json usage = nlohmann::json::object();
  for (const auto& m : limit_modules())
    if (m.usage) m.usage(target, limits, usage);
  out["usage"] = usage;
  return out;
}

std::string memory_events_line(const std::string& pool_root, const std::string& guest, const RunState& state) {
  MemoryEvents e = memory_events(LimitTarget{pool_root, guest, state.cgroups, state.view.cgroups});
  return fmt::format("oom kills {}, memory pressure events low {} medium {} critical {}", e.oom_kills, e.pressure_low,
                     e.pressure_medium, e.pressure_critical);
}

}  // namespace vunify::context

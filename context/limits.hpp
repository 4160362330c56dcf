// Resource limits of guests, for the CLI and the runtime: `vunify set`, what `start` applies,
// what `status` shows. The keys themselves are in the registry (limit_keys.hpp).
#pragma once
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "context/limit_keys.hpp"
#include "context/state.hpp"

namespace vunify::context {

// `vunify set NAME KEY=VALUE…`: checks every pair (unknown key, bad value: os::UserError naming
// the file and the key, nothing changed), writes etc/NAME.toml atomically (temp, fsync, rename;
// the other tables untouched), then applies the changed modules to the guest if it runs. If
// applying fails, the old values are applied again and the old file put back before the error
// is thrown. "KEY=max" or "KEY=none" unsets a key.
void set_limits(const std::string& pool_root, const std::string& guest, const std::vector<std::string>& assignments);
// `vunify set NAME`: every key with its value in the file ("-": unset) and what it takes.
void show_limits(const std::string& pool_root, const std::string& guest);

// For `status --json`: {"limits": {key: value}, "usage": {module: {...}}} (usage only when
// `state` is given: a running guest).
nlohmann::json limits_json(const std::string& pool_root, const std::string& guest, const RunState* state);
// For `status`: "oom kills N, memory pressure events low A medium B critical C".
std::string memory_events_line(const std::string& pool_root, const std::string& guest, const RunState& state);

}  // namespace vunify::context

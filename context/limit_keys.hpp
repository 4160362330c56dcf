// The registry of resource-limit keys: the [limits] table of POOL/etc/NAME.toml.
//
//   [limits]
//   cpu.share = 1024      # see README "Resource limits" for every key
//   cpu.cap = 0.5
//   mem.rss = "64M"
//   pids.max = 50
//
// Keys are grouped in modules, one file each (limits_cpu.cpp, limits_memory.cpp,
// limits_pids.cpp). A module names its keys with their parsers, applies its keys of a guest's
// whole limit set to the guest's cgroups (all of them at once: mem.rss and mem.swap go
// together), may act on each process entering the guest (RLIMIT_MEMLOCK) and adds its usage
// to `vunify status --json`.
//
// TO ADD KEYS: write context/limits_X.cpp defining `LimitModule X_limit_module()`, declare it
// below and add it to the list in limit_keys.cpp. Nothing else needs to change: `vunify set`,
// the file, start and status go through this registry.
#pragma once
#include <sys/types.h>

#include <functional>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace vunify::context {

// A guest's limits: key -> canonical value text (as the file stores it). A missing key is unset.
using Limits = std::map<std::string, std::string>;

struct LimitTarget;  // limit_target.hpp: the guest's cgroups and processes

struct LimitKey {
  std::string name;    // "cpu.cap"
  std::string syntax;  // what a value looks like, for errors and `set --help`: "cores, e.g. 0.5 or 2"
  // Checks a value (from `set` or the file) and returns its canonical text; throws os::UserError
  // saying what is wrong (callers add the file and the key). "max" and "none" never reach it:
  // they unset the key.
  std::function<std::string(const std::string&)> canonical;
  bool quoted = false;  // stored as a TOML string ("64M", "0-1") rather than a bare number
};

struct LimitModule {
  std::string name;  // "cpu"
  std::vector<LimitKey> keys;
  // Checks between keys of a whole limit set (mem.swap >= mem.rss); throws os::UserError.
  std::function<void(const Limits&)> check;
  // Puts the module's keys of `limits` into effect for the guest; unset keys go back to no
  // limit. Must be idempotent: `set` re-applies the old set to roll back a failure.
  std::function<void(const LimitTarget&, const Limits&)> apply;
  // A process entering the guest (PID 1 before it runs the guest's code, each exec'd command),
  // given by host pid; may be empty.
  std::function<void(pid_t, const Limits&)> on_process;
  // Adds the module's usage against its limits to a running guest's `status --json` object.
  std::function<void(const LimitTarget&, const Limits&, nlohmann::json&)> usage;
};

LimitModule cpu_limit_module();     // limits_cpu.cpp: cpu.share cpu.reserve cpu.cap cpu.cpus
LimitModule memory_limit_module();  // limits_memory.cpp: mem.rss mem.swap mem.memlock
LimitModule pids_limit_module();    // limits_pids.cpp: pids.max
LimitModule io_limit_module();      // limits_io.cpp: io.rbps io.wbps io.riops io.wiops
LimitModule net_limit_module();     // limits_net.cpp: net.rate_out net.rate_in

// limits_net.cpp: a net.rate_* key's bits per second (0: unset).
uint64_t rate_of(const Limits& limits, const char* key);

// Every module, in the order they are applied.
const std::vector<LimitModule>& limit_modules();
// The key named `name` and its module, or nullptrs.
const LimitKey* find_limit_key(std::string_view name, const LimitModule** module = nullptr);
// "cpu.share, cpu.reserve, ..." for error messages.
std::string limit_key_names();

// True for the values that unset a key ("max", "none").
bool unsets_limit(const std::string& value);
// Canonical text of `value` for `key`; throws os::UserError "WHERE: KEY: reason".
std::string check_limit(const std::string& key, const std::string& value, const std::string& where);
// Every module's cross-key check; throws os::UserError prefixed with `where`.
void check_limits(const Limits& limits, const std::string& where);

// Applies every module to a guest (at start before PID 1 runs, or to roll back).
void apply_limits(const LimitTarget& target, const Limits& limits);
// Every module's process hook for `pid`.
void apply_process_limits(pid_t pid, const Limits& limits);

}  // namespace vunify::context

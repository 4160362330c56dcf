#include "context/limit_keys.hpp"

#include <fmt/format.h>

#include "context/limit_target.hpp"
#include "os/error.hpp"

namespace vunify::context {

const std::vector<LimitModule>& limit_modules() {
  // Add a module here (and its file): its keys are then known to the file, `set` and status.
  static const std::vector<LimitModule> modules = {
      cpu_limit_module(),
      memory_limit_module(),
      pids_limit_module(),
      io_limit_module(),
      net_limit_module(),
  };
  return modules;
}

const LimitKey* find_limit_key(std::string_view name, const LimitModule** module) {
  for (const auto& m : limit_modules())
    for (const auto& k : m.keys)
      if (k.name == name) {
        if (module) *module = &m;
        return &k;
      }
  return nullptr;
}

std::string limit_key_names() {
  std::string out;
  for (const auto& m : limit_modules())
    for (const auto& k : m.keys) out += (out.empty() ? "" : ", ") + k.name;
  return out;
}

bool unsets_limit(const std::string& value) { return value == "max" || value == "none"; }

std::string check_limit(const std::string& key, const std::string& value, const std::string& where) {
  const LimitKey* k = find_limit_key(key);
  if (!k) throw os::UserError(fmt::format("{}: unknown limit '{}' (known: {})", where, key, limit_key_names()));
  try {
    return k->canonical(value);
  } catch (const os::UserError& e) {
    throw os::UserError(fmt::format("{}: {}='{}': {} (expected {}, or max/none for no limit)", where, key, value, e.what(),
                                    k->syntax));
  }
}

void check_limits(const Limits& limits, const std::string& where) {
  for (const auto& m : limit_modules()) {
    if (!m.check) continue;
    try {
      m.check(limits);
    } catch (const os::UserError& e) {
      throw os::UserError(fmt::format("{}: {}", where, e.what()));
    }
  }
}

void apply_limits(const LimitTarget& target, const Limits& limits) {
  for (const auto& m : limit_modules())
    if (m.apply) m.apply(target, limits);
}

void apply_process_limits(pid_t pid, const Limits& limits) {
  for (const auto& m : limit_modules())
    if (m.on_process) m.on_process(pid, limits);
}

}  // namespace vunify::context

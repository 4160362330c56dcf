// `vunify set`: check everything, persist, apply to the running guest, roll back on failure.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <set>

#include "context/limit_target.hpp"
#include "context/limits.hpp"
#include "context/limits_config.hpp"
#include "context/runtime.hpp"
#include "os/error.hpp"
#include "os/files.hpp"

namespace vunify::context {

namespace {

using os::UserError;

// `old` with the assignments applied; throws before anything changed.
Limits assign(const Limits& old, const std::vector<std::string>& assignments, const std::string& path) {
  Limits out = old;
  std::set<std::string> seen;
  for (const auto& a : assignments) {
    auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0)
      throw UserError(fmt::format("'{}' is not KEY=VALUE (keys: {})", a, limit_key_names()));
    std::string key = a.substr(0, eq), value = a.substr(eq + 1);
    if (!seen.insert(key).second) throw UserError(fmt::format("{} is given twice", key));
    if (!unsets_limit(value)) {
      out[key] = check_limit(key, value, path);
      continue;
    }
    if (!find_limit_key(key)) check_limit(key, value, path);  // throws: unknown key
    out.erase(key);
  }
  check_limits(out, path);
  return out;
}

bool module_changed(const LimitModule& m, const Limits& a, const Limits& b) {
  for (const auto& k : m.keys)
    if (a.count(k.name) != b.count(k.name) || (a.count(k.name) && a.at(k.name) != b.at(k.name))) return true;
  return false;
}

// Applies the modules whose keys changed; on failure re-applies `old` to those tried and rethrows.
void apply_changes(const LimitTarget& target, const Limits& old, const Limits& updated) {
  std::vector<const LimitModule*> tried;
  try {
    for (const auto& m : limit_modules()) {
      if (!m.apply || !module_changed(m, old, updated)) continue;
      tried.push_back(&m);
      m.apply(target, updated);
    }
  } catch (...) {
    for (const LimitModule* m : tried) {
      try {
        m->apply(target, old);
      } catch (const std::exception& e) {
        fmt::print(stderr, "vunify: putting back the old {} limits of {}: {}\n", m->name, target.guest, e.what());
      }
    }
    throw;
  }
}

std::string describe(const std::vector<std::string>& assignments) {
  std::string out;
  for (const auto& a : assignments) out += (out.empty() ? "" : " ") + a;
  return out;
}

}  // namespace

void set_limits(const std::string& pool_root, const std::string& guest, const std::vector<std::string>& assignments) {
  check_guest(pool_root, guest);
  GuestLock lock(pool_root, guest);
  std::string path = config_path(pool_root, guest);
  os::unique_fd etc(::open((pool_root + "/etc").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!etc) os::throw_errno("open", pool_root + "/etc");
  std::optional<std::string> text = os::read_whole_file(etc.get(), guest + ".toml");
  Limits old = parse_limits(text.value_or(""), path);
  Limits updated = assign(old, assignments, path);
  std::string new_text = replace_limits(text.value_or(""), updated, path);
  struct stat st {};
  mode_t mode = ::fstatat(etc.get(), (guest + ".toml").c_str(), &st, 0) == 0 ? st.st_mode & 07777 : 0644;
  os::write_file_atomic(etc.get(), guest + ".toml", new_text, mode);
  auto state = read_state(pool_root, guest);
  bool running = state && open_live(state->pid1, state->pid1_start);
  if (running) {
    try {
      apply_changes(LimitTarget{pool_root, guest, state->cgroups, state->view.cgroups}, old, updated);
    } catch (const std::exception& e) {
      if (text) os::write_file_atomic(etc.get(), guest + ".toml", *text, mode);
      else os::remove_file_durable(etc.get(), guest + ".toml");
      std::string why = fmt::format("{}: could not apply {} to the running guest: {}; the old limits are back in place and "
                                    "the file is unchanged", path, describe(assignments), e.what());
      if (dynamic_cast<const UserError*>(&e)) throw UserError(why);
      throw std::runtime_error(why);
    }
  }
  fmt::print("guest {}: {} {}\n", guest, describe(assignments),
             running ? "applied to the running guest and saved" : "saved (applied when it starts)");
}

void show_limits(const std::string& pool_root, const std::string& guest) {
  check_guest(pool_root, guest);
  Limits limits = load_limits(pool_root, guest);
  fmt::print("{:<12} {:<10} {}\n", "KEY", "VALUE", "TAKES");
  for (const auto& m : limit_modules())
    for (const auto& k : m.keys) {
      auto it = limits.find(k.name);
      fmt::print("{:<12} {:<10} {}\n", k.name, it == limits.end() ? "-" : it->second, k.syntax);
    }
}

}  // namespace vunify::context

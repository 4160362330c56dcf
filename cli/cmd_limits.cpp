// vunify set: resource limits of a guest, live and persisted.
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "context/limit_keys.hpp"
#include "context/limits.hpp"

namespace vunify::cli {

namespace {

std::string keys_help() {
  std::string out = "\nKeys (\"KEY=max\" or \"KEY=none\" removes a limit):\n";
  for (const auto& m : context::limit_modules())
    for (const auto& k : m.keys) out += "  " + k.name + std::string(k.name.size() < 12 ? 12 - k.name.size() : 1, ' ') + k.syntax + "\n";
  return out;
}

}  // namespace

void add_limits_command(CLI::App& app, Globals& g) {
  struct Args {
    std::string name;
    std::vector<std::string> pairs;
  };
  auto a = std::make_shared<Args>();
  auto* set = app.add_subcommand(
      "set", "Set resource limits of a guest (etc/NAME.toml [limits]; applied at once if it runs); without KEY=VALUE: show them");
  set->add_option("NAME", a->name, "Guest")->required();
  set->add_option("KEY=VALUE", a->pairs, "Limits to set, e.g. cpu.cap=0.5 mem.rss=512M pids.max=200");
  set->footer(keys_help());
  set->callback([&g, a] {
    if (a->pairs.empty()) return context::show_limits(g.pool, a->name);
    context::set_limits(g.pool, a->name, a->pairs);
  });
}

}  // namespace vunify::cli

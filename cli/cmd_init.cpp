#include <fmt/format.h>

#include "cli/commands.hpp"
#include "unify/pool.hpp"

namespace vunify::cli {

void add_init_command(CLI::App& app, Globals& g) {
  auto* cmd = app.add_subcommand("init", "Create a pool (store, index, guest and template folders)");
  cmd->callback([&g] {
    unify::Pool::init(g.pool);
    unify::Pool pool(g.pool, unify::Access::Read);
    fmt::print("pool ready at {} (index schema v{})\n", pool.root(), pool.index().schema_version());
  });
}

}  // namespace vunify::cli

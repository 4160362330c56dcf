#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "context/runtime.hpp"
#include "cli/format.hpp"
#include "cli/progress.hpp"
#include "unify/guests.hpp"

namespace vunify::cli {

namespace {

struct GuestArgs {
  std::string name, from;
  bool move = false;
  std::vector<std::string> names;
};

std::string state_text(const unify::GuestInfo& x) {
  if (x.stopped)
    return x.daemon ? fmt::format("mounted, daemon stopped (SIGSTOP; 'kill -CONT {}' resumes it, 'vunify umount {}' unmounts)",
                                  x.daemon, x.name)
                    : fmt::format("mounted, daemon does not answer ('vunify umount {}' unmounts)", x.name);
  if (x.mounted) return "mounted";
  if (x.stale) return "dead daemon (stale mount; 'vunify mount' or 'umount' clears it)";
  return "-";
}

void list(Globals& g) {
  unify::Pool pool(g.pool, unify::Access::Read);
  auto guests = unify::list_guests(pool);
  if (g.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& x : guests)
      out.push_back({{"name", x.name}, {"created_ns", x.created_ns}, {"template", x.template_name}, {"mounted", x.mounted}, {"stale_mount", x.stale},
                      {"daemon_stopped", x.stopped}});
    fmt::print("{}\n", out.dump(2));
    return;
  }
  if (guests.empty()) {
    fmt::print("no guests in {}\n", pool.root());
    return;
  }
  fmt::print("{:<24} {:<20} {:<16} {}\n", "NAME", "CREATED", "TEMPLATE", "STATE");
  for (const auto& x : guests)
    fmt::print("{:<24} {:<20} {:<16} {}\n", x.name, human_time_ns(x.created_ns), x.template_name.empty() ? "-" : x.template_name,
               state_text(x));
}

}  // namespace

void add_guest_commands(CLI::App& app, Globals& g) {
  auto args = std::make_shared<GuestArgs>();
  auto* guest = app.add_subcommand("guest", "Add, list and remove guests");
  guest->require_subcommand(1);

  auto* add = guest->add_subcommand("add", "Copy a guest tree into the pool (everything preserved)");
  add->add_option("NAME", args->name, "Guest name: [A-Za-z0-9][A-Za-z0-9._-]*")->required();
  add->add_option("--from", args->from, "Directory holding the guest's root tree")->required();
  add->add_flag("--move", args->move, "Move the tree instead of copying (same filesystem as the pool)");
  add->callback([&g, args] {
    unify::Pool pool(g.pool, unify::Access::Write);
    ProgressLine progress;
    auto stats = unify::add_guest(pool, args->name, args->from, args->move, progress.sink());
    progress.finish();
    if (args->move)
      fmt::print("guest {} added (moved {})\n", args->name, args->from);
    else
      fmt::print("guest {} added: {} entries, {} copied\n", args->name, stats.entries, human_bytes(stats.bytes_written));
  });

  auto* ls = guest->add_subcommand("list", "List guests");
  ls->add_flag("--json", g.json, "Machine-readable output");
  ls->callback([&g] { list(g); });

  auto* rm = guest->add_subcommand("rm", "Remove guests (their unused objects go with 'vunify gc')");
  rm->add_option("NAME", args->names, "Guest names")->required();
  rm->callback([&g, args] {
    context::refuse_if_running(g.pool, args->names, false, "removing it");
    unify::Pool pool(g.pool, unify::Access::Write);
    for (const auto& name : args->names) {
      unify::remove_guest(pool, name);
      fmt::print("guest {} removed\n", name);
    }
  });
}

}  // namespace vunify::cli

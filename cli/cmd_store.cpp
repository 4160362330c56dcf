#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <set>

#include "cli/commands.hpp"
#include "cli/format.hpp"
#include "cli/progress.hpp"
#include "os/error.hpp"
#include "unify/fsck.hpp"
#include "unify/stats.hpp"
#include "unify/store.hpp"

namespace vunify::cli {

namespace {

void print_stats(const unify::PoolStats& ps, const std::vector<std::string>& only, bool json) {
  std::set<std::string> want(only.begin(), only.end());
  for (const auto& n : want) {
    bool found = std::any_of(ps.guests.begin(), ps.guests.end(), [&](const auto& g) { return g.name == n; });
    if (!found) throw os::UserError(fmt::format("no guest named '{}'", n));
  }
  auto shown = [&](const unify::GuestStats& g) { return want.empty() || want.count(g.name); };
  if (json) {
    nlohmann::json guests = nlohmann::json::array();
    for (const auto& g : ps.guests)
      if (shown(g))
        guests.push_back({{"name", g.name},
                          {"files", g.files},
                          {"shared_files", g.shared_files},
                          {"apparent_bytes", g.apparent_bytes},
                          {"shared_bytes", g.shared_bytes},
                          {"private_bytes", g.private_bytes},
                          {"standalone_bytes", g.standalone_bytes}});
    nlohmann::json templates = nlohmann::json::array();
    for (const auto& t : ps.templates)
      templates.push_back({{"name", t.name}, {"files", t.files}, {"shared_bytes", t.shared_bytes}, {"private_bytes", t.private_bytes}});
    nlohmann::json out = {{"guests", guests},
                          {"templates", templates},
                          {"pool",
                           {{"objects", ps.objects},
                            {"object_bytes", ps.object_bytes},
                            {"disk_bytes", ps.disk_bytes},
                            {"standalone_bytes", ps.standalone_bytes},
                            {"saved_bytes", ps.standalone_bytes > ps.disk_bytes ? ps.standalone_bytes - ps.disk_bytes : 0},
                            {"savings_ratio", ps.savings_ratio()}}}};
    fmt::print("{}\n", out.dump(2));
    return;
  }
  fmt::print("{:<20} {:>8} {:>8} {:>11} {:>11} {:>11} {:>11}\n", "GUEST", "FILES", "SHARED", "APPARENT", "SHARED*", "PRIVATE",
             "ALONE");
  for (const auto& g : ps.guests)
    if (shown(g))
      fmt::print("{:<20} {:>8} {:>8} {:>11} {:>11} {:>11} {:>11}\n", g.name, g.files, g.shared_files, human_bytes(g.apparent_bytes),
                 human_bytes(g.shared_bytes), human_bytes(g.private_bytes), human_bytes(g.standalone_bytes));
  for (const auto& t : ps.templates)
    if (want.empty())
      fmt::print("{:<20} {:>8} {:>8} {:>11} {:>11} {:>11} {:>11}\n", "template " + t.name, t.files, t.shared_files,
                 human_bytes(t.apparent_bytes), human_bytes(t.shared_bytes), human_bytes(t.private_bytes), "-");
  fmt::print("* each object's disk blocks divided equally among the guests and templates that use it\n");
  fmt::print("pool: {} objects ({}), {} on disk for guests that would take {} alone: {} saved, {:.2f}x\n", ps.objects,
             human_bytes(ps.object_bytes), human_bytes(ps.disk_bytes), human_bytes(ps.standalone_bytes),
             human_bytes(ps.standalone_bytes > ps.disk_bytes ? ps.standalone_bytes - ps.disk_bytes : 0), ps.savings_ratio());
}

}  // namespace

void add_store_commands(CLI::App& app, Globals& g) {
  auto names = std::make_shared<std::vector<std::string>>();
  auto* stat = app.add_subcommand("stat", "Disk use per guest and for the pool (shared bytes divided fairly)");
  stat->add_option("NAME", *names, "Guests to show (default: all)");
  stat->add_flag("--json", g.json, "Machine-readable output");
  stat->callback([&g, names] {
    unify::Pool pool(g.pool, unify::Access::Read);
    print_stats(unify::pool_stats(pool), *names, g.json);
  });

  auto dry = std::make_shared<bool>(false);
  auto* gc = app.add_subcommand("gc", "Remove store objects that no guest uses");
  gc->add_flag("--dry-run", *dry, "Report only");
  gc->callback([&g, dry] {
    // A dry run reads only: no recovery, no reconcile, no index write.
    unify::Pool pool(g.pool, *dry ? unify::Access::Read : unify::Access::Write);
    ProgressLine progress;
    auto r = unify::Store(pool).gc(*dry, progress.sink());
    progress.finish();
    if (*dry)
      fmt::print("dry run: would remove {} unused objects ({}), {} kept; nothing was changed\n", r.removed,
                 human_bytes(r.bytes_freed), r.kept);
    else
      fmt::print("{} unused objects removed ({}), {} kept\n", r.removed, human_bytes(r.bytes_freed), r.kept);
  });

  auto* verify = app.add_subcommand("verify", "Re-hash every store object; exit 3 if any changed");
  verify->callback([&g] {
    unify::Pool pool(g.pool, unify::Access::Read);
    unify::Store store(pool);
    ProgressLine progress;
    auto problems = store.verify(0, progress.sink());
    progress.finish();
    for (const auto& p : problems) fmt::print("object {}: {}\n", p.object, p.problem);
    size_t n = store.load().size();
    if (!problems.empty()) {
      fmt::print(stderr, "vunify: verify found {} problems in {} objects\n", problems.size(), n);
      throw ExitStatus{kExitProblems};
    }
    fmt::print("{} objects verified, all intact\n", n);
  });

  auto repair = std::make_shared<bool>(false);
  auto* fsck = app.add_subcommand("fsck", "Check the index against the trees; --repair rebuilds what is wrong");
  fsck->add_flag("--repair", *repair, "Fix what is found (the index is a cache of the trees)");
  fsck->callback([&g, repair] {
    // Without --repair fsck reads only (it works on a full disk and reports leftovers of an
    // interrupted run instead of recovering them).
    unify::Pool pool(g.pool, *repair ? unify::Access::Repair : unify::Access::Read);
    ProgressLine progress;
    auto r = unify::fsck(pool, *repair, progress.sink());
    progress.finish();
    if (r.recovered) fmt::print("recovered {} leftovers of an interrupted run\n", r.recovered);
    for (const auto& p : r.problems) fmt::print("problem: {}\n", p);
    for (const auto& p : r.repaired) fmt::print("repaired: {}\n", p);
    if (!r.problems.empty() && !*repair) {
      fmt::print(stderr, "vunify: fsck found {} problems (run 'vunify fsck --repair')\n", r.problems.size());
      throw ExitStatus{kExitProblems};
    }
    fmt::print("fsck: {}\n", r.problems.empty() ? "pool is consistent" : "repaired");
  });
}

}  // namespace vunify::cli

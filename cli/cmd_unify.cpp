#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/format.hpp"
#include "cli/options.hpp"
#include "cli/progress.hpp"
#include "context/runtime.hpp"
#include "os/error.hpp"
#include "unify/unifier.hpp"

namespace vunify::cli {

namespace {

struct UnifyArgs {
  std::vector<std::string> guests;
  bool all = false;
  unify::UnifyOptions opts;
};

nlohmann::json to_json(const unify::UnifyReport& r) {
  return {{"guests", r.guests},
          {"files_scanned", r.files_scanned},
          {"already_shared", r.already_shared},
          {"skipped_hardlinks", r.skipped_hardlinks},
          {"link_groups", r.link_groups},
          {"skipped_small", r.skipped_small},
          {"skipped_excluded", r.skipped_excluded},
          {"files_read", r.files_read},
          {"bytes_read", r.bytes_read},
          {"cached_hashes", r.cached_hashes},
          {"files_compared", r.files_compared},
          {"collisions", r.collisions},
          {"files_linked", r.files_linked},
          {"objects_created", r.objects_created},
          {"bytes_saved", r.bytes_saved},
          {"changed_during_run", r.changed_during_run},
          {"seconds", r.seconds},
          {"phase_seconds",
           {{"scan", r.scan_seconds},
            {"read", r.read_seconds},
            {"store", r.store_seconds},
            {"link", r.link_seconds}}},
          {"warnings", r.warnings}};
}

void print_report(const unify::UnifyReport& r, bool dry_run) {
  for (const auto& w : r.warnings) fmt::print(stderr, "warning: {}\n", w);
  if (dry_run)
    fmt::print("dry run: would link {} files to store objects ({} new), saving {} ({} guests, {} files scanned, {} "
               "already shared, {} read, {:.2f} s)\n",
               r.files_linked, r.objects_created, human_bytes(r.bytes_saved), r.guests, r.files_scanned, r.already_shared,
               human_bytes(r.bytes_read), r.seconds);
  else
    fmt::print("{} files linked to store objects ({} new), {} saved ({} guests, {} files scanned, {} already "
               "shared, {} read, {:.2f} s)\n",
               r.files_linked, r.objects_created, human_bytes(r.bytes_saved), r.guests, r.files_scanned, r.already_shared,
               human_bytes(r.bytes_read), r.seconds);
  if (r.link_groups)
    fmt::print("{} hard-link groups of a guest {} as one file each\n", r.link_groups, dry_run ? "would be unified" : "unified");
  if (r.skipped_hardlinks)
    fmt::print("{} files with hard links reaching outside their guest left alone\n", r.skipped_hardlinks);
  if (r.collisions) fmt::print("{} hash collisions with different bytes kept apart\n", r.collisions);
  if (r.changed_during_run) fmt::print("{} files changed during the run and were left alone\n", r.changed_during_run);
  if (dry_run) fmt::print("dry run: nothing was changed\n");
}

}  // namespace

void add_unify_command(CLI::App& app, Globals& g) {
  auto args = std::make_shared<UnifyArgs>();
  auto* cmd = app.add_subcommand("unify", "Replace identical files of guests by links to shared store objects");
  cmd->add_option("NAME", args->guests, "Guests to unify (with each other and the store)");
  cmd->add_flag("--all", args->all, "Unify every guest in the pool");
  cmd->add_flag("--ignore-mtime", args->opts.ignore_mtime, "Leave mtime out of the key; linked files take the object's mtime");
  cmd->add_option("--min-size", args->opts.min_size, "Leave files smaller than this alone (bytes, or with a unit: 4K, 1M, 2GiB)")
      ->transform(size_value());
  cmd->add_option("--exclude", args->opts.excludes,
                  "Glob of files to leave alone (with '/': path from the guest root, else the file name); repeat the "
                  "flag for more")
      ->allow_extra_args(false);
  cmd->add_flag("--dry-run", args->opts.dry_run, "Report what would be linked, change nothing");
  cmd->add_option("--threads", args->opts.threads, "Reader threads (hash + compare) and walkers (0: 16, or twice the cores if more)");
  cmd->add_flag("--json", g.json, "Machine-readable summary");
  cmd->callback([&g, args] {
    check_names_or_all(args->guests, args->all, "unify");
    context::refuse_if_running(g.pool, args->guests, args->all, "unifying it");
    unify::Pool pool(g.pool, unify::Access::Write);
    ProgressLine progress(!g.json);
    args->opts.guests = args->guests;
    args->opts.progress = progress.sink();
    unify::UnifyReport report = unify::unify(pool, args->opts);
    progress.finish();
    if (g.json) {
      nlohmann::json out = to_json(report);
      out["dry_run"] = args->opts.dry_run;
      fmt::print("{}\n", out.dump(2));
    } else {
      print_report(report, args->opts.dry_run);
    }
  });
}

}  // namespace vunify::cli

// `vunify template ...` and `vunify guest create|clone`.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/format.hpp"
#include "cli/options.hpp"
#include "cli/progress.hpp"
#include "os/error.hpp"
#include "unify/archive.hpp"
#include "unify/provision.hpp"
#include "unify/templates.hpp"

namespace vunify::cli {

namespace {

struct TemplateArgs {
  std::string name, file, guest, dst;
  std::vector<std::string> names;
  bool force = false;
  unify::ImportLimits limits;
  unify::DebootstrapOptions deb;
  unify::CreateOptions create;
};

void print_import(const std::string& name, const unify::ImportResult& r) {
  fmt::print("template {} ready: {} files ({}) -> {} new objects, {} files shared with existing objects ({:.2f} s)\n", name,
             r.files, human_bytes(r.bytes), r.new_objects, r.shared_files, r.seconds);
}

void list_templates(Globals& g) {
  unify::Pool pool(g.pool, unify::Access::Read);
  auto templates = unify::list_templates(pool);
  if (g.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& t : templates) out.push_back({{"name", t.name}, {"created_ns", t.created_ns}, {"source", t.source}});
    fmt::print("{}\n", out.dump(2));
    return;
  }
  if (templates.empty()) {
    fmt::print("no templates in {}\n", pool.root());
    return;
  }
  fmt::print("{:<24} {:<20} {}\n", "NAME", "CREATED", "SOURCE");
  for (const auto& t : templates) fmt::print("{:<24} {:<20} {}\n", t.name, human_time_ns(t.created_ns), t.source);
}

void add_import(CLI::App* tpl, Globals& g, std::shared_ptr<TemplateArgs> a) {
  auto* cmd = tpl->add_subcommand("import", "Import a tar/cpio/... archive (any common compression) as a template");
  cmd->add_option("NAME", a->name, "Template name")->required();
  cmd->add_option("FILE", a->file, "Archive file, or - for stdin")->required();
  cmd->add_flag("--allow-devices", a->limits.allow_devices,
                "Import every device node (default: only null zero full random urandom tty console ptmx)");
  cmd->add_option("--max-size", a->limits.max_bytes, "Refuse archives whose files hold more than this (e.g. 64G)")
      ->transform(size_value());
  cmd->add_option("--max-entries", a->limits.max_entries, "Refuse archives with more entries than this");
  cmd->add_option("--max-ratio", a->limits.max_ratio, "Refuse archives expanding more than this many times")
      ->check(CLI::PositiveNumber);
  cmd->callback([&g, a] {
    unify::Pool pool(g.pool, unify::Access::Write);
    ProgressLine progress;
    auto r = unify::import_template(pool, a->name, a->file, a->limits, progress.sink());
    progress.finish();
    print_import(a->name, r);
  });
}

void add_build(CLI::App* tpl, Globals& g, std::shared_ptr<TemplateArgs> a) {
  auto* cmd = tpl->add_subcommand("build", "Build a template with debootstrap");
  cmd->add_option("NAME", a->name, "Template name")->required();
  cmd->add_option("--debootstrap", a->deb.suite, "Debian suite (e.g. bookworm)")->required();
  cmd->add_option("--variant", a->deb.variant, "debootstrap variant");
  cmd->add_option("--include", a->deb.include, "Extra packages (PKG,PKG,...; or repeat the flag)")->delimiter(',')->allow_extra_args(false);
  cmd->add_option("--mirror", a->deb.mirror, "Mirror URL (default: debootstrap's)");
  cmd->callback([&g, a] {
    unify::Pool pool(g.pool, unify::Access::Write);
    ProgressLine progress;
    auto r = unify::build_template(pool, a->name, a->deb, progress.sink());
    progress.finish();
    print_import(a->name, r);
  });
}

void add_template_group(CLI::App& app, Globals& g, std::shared_ptr<TemplateArgs> a) {
  auto* tpl = app.add_subcommand("template", "Import, build, export, list and remove templates");
  tpl->require_subcommand(1);
  add_import(tpl, g, a);
  add_build(tpl, g, a);

  auto* from = tpl->add_subcommand("from-guest", "Make a template from a guest's tree");
  from->add_option("NAME", a->name, "Template name")->required();
  from->add_option("GUEST", a->guest, "Guest to copy")->required();
  from->callback([&g, a] {
    unify::Pool pool(g.pool, unify::Access::Write);
    ProgressLine progress;
    auto r = unify::template_from_guest(pool, a->name, a->guest, progress.sink());
    progress.finish();
    print_import(a->name, r);
  });

  auto* exp = tpl->add_subcommand("export", "Write a template as a reproducible pax archive (.gz/.xz/.zst by suffix)");
  exp->add_option("NAME", a->name, "Template name")->required();
  exp->add_option("FILE", a->file, "Output file, or - for stdout")->required();
  exp->callback([&g, a] {
    unify::Pool pool(g.pool, unify::Access::Read);
    ProgressLine progress;
    uint64_t n = unify::export_template(pool, a->name, a->file, progress.sink());
    progress.finish();
    if (a->file != "-") fmt::print("template {} exported to {}: {} entries\n", a->name, a->file, n);
  });

  auto* ls = tpl->add_subcommand("list", "List templates");
  ls->add_flag("--json", g.json, "Machine-readable output");
  ls->callback([&g] { list_templates(g); });

  auto* rm = tpl->add_subcommand("rm", "Remove templates (refused while guests use them, unless --force)");
  rm->add_option("NAME", a->names, "Template names")->required();
  rm->add_flag("--force", a->force, "Remove even if guests were made from them (their files stay)");
  rm->callback([&g, a] {
    unify::Pool pool(g.pool, unify::Access::Write);
    for (const auto& name : a->names)  // all known before any goes
      if (!unify::has_template(pool, name)) throw os::UserError(fmt::format("no template named '{}'; nothing removed", name));
    for (const auto& name : a->names) {
      unify::remove_template(pool, name, a->force);
      fmt::print("template {} removed\n", name);
    }
  });
}

void add_guest_provisioning(CLI::App& app, Globals& g, std::shared_ptr<TemplateArgs> a) {
  CLI::App* guest = app.get_subcommand("guest");
  auto* create = guest->add_subcommand("create", "Create guests from a template (files are links to the store)");
  create->add_option("NAME", a->name, "Guest name (with --count: the prefix of NAME-01...)")->required();
  create->add_option("--template", a->create.template_name, "Template")->required();
  create->add_option("--count", a->create.count, "Create N guests NAME-01 ... NAME-N")->check(CLI::Range(1u, 100000u));
  create->add_option("--threads", a->create.threads, "Guests built in parallel (0: all cores)");
  create->callback([&g, a] {
    unify::Pool pool(g.pool, unify::Access::Write);
    ProgressLine progress;
    a->create.progress = [&progress](size_t done, size_t total) { progress.update(fmt::format("created {}/{} guests", done, total)); };
    auto r = unify::create_guests(pool, a->name, a->create);
    progress.finish();
    fmt::print("{} guest{} created from {} in {:.2f} s ({} entries each: {} shared, {} private)\n", r.names.size(),
               r.names.size() == 1 ? "" : "s", a->create.template_name, r.seconds, r.entries_per_guest, r.linked_per_guest,
               r.private_per_guest);
  });

  auto* clone = guest->add_subcommand("clone", "Make a new guest from an existing one (shared files stay shared)");
  clone->add_option("SRC", a->guest, "Guest to clone")->required();
  clone->add_option("DST", a->dst, "New guest")->required();
  clone->callback([&g, a] {
    unify::Pool pool(g.pool, unify::Access::Write);
    ProgressLine progress;
    auto r = unify::clone_guest(pool, a->guest, a->dst, progress.sink());
    progress.finish();
    fmt::print("guest {} cloned from {} in {:.2f} s ({} shared files, {} private)\n", a->dst, a->guest, r.seconds,
               r.linked_per_guest, r.private_per_guest);
  });
}

}  // namespace

void add_template_commands(CLI::App& app, Globals& g) {
  auto args = std::make_shared<TemplateArgs>();
  add_template_group(app, g, args);
  add_guest_provisioning(app, g, args);
}

}  // namespace vunify::cli

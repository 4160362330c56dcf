// vunify mount / umount: the FUSE guest views.
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "context/runtime.hpp"
#include "fs/mount_control.hpp"
#include "fs/view_settings.hpp"
#include "os/error.hpp"

namespace vunify::cli {

namespace {

struct MountArgs {
  std::vector<std::string> names;
  bool all = false;
  bool no_passthrough = false;
  bool lazy = false;
  fs::MountOptions options;
};

}  // namespace

void add_mount_commands(CLI::App& app, Globals& g) {
  auto args = std::make_shared<MountArgs>();
  auto* mount = app.add_subcommand("mount", "Mount guest views at POOL/guests/NAME (guest root: POOL/guests/NAME/root)");
  mount->add_option("NAME", args->names, "Guests to mount");
  mount->add_flag("--all", args->all, "Mount every guest");
  mount->add_flag("--foreground", args->options.foreground, "Serve one guest in this process (debugging)");
  mount->add_flag("--no-passthrough", args->no_passthrough, "Serve file I/O through the daemon (no kernel passthrough)");
  auto* dev = mount->add_flag("--dev", args->options.allow_devices,
                              "Allow the guest's character device nodes to be opened (default: nodev); trusted guests only");
  mount->add_flag("--allow-block-devices", args->options.allow_block_devices,
                  "With --dev, serve block device nodes too (a guest root could then read and write disks)")
      ->needs(dev);
  auto* cpus = mount->add_option("--cpus", args->options.cpus,
                    "Run the view daemons' threads only on these CPUs (e.g. 0 or 0-1,3; overrides [view] cpus of "
                    "POOL/etc/NAME.toml): faster small-file churn, all of the guest's file requests served there")
      ->type_name("LIST");
  auto* threads = mount->add_option("--threads", args->options.threads,
                    "Worker threads of each view daemon (1-64, default 8; overrides [view] threads): 1 is faster "
                    "for small-file churn, but serves one request at a time");
  mount->callback([&g, args, cpus, threads] {
    check_names_or_all(args->names, args->all, "mount");
    if (cpus->count() && args->options.cpus.empty())
      throw os::UserError("--cpus: '' is not a CPU list (e.g. 0, 0-3, 0,2-3)");
    if (threads->count()) {
      std::string n = std::to_string(args->options.threads);
      fs::view_threads(n, "--threads " + n);
    }
    args->options.passthrough = !args->no_passthrough;
    if (args->no_passthrough) args->options.given.push_back("--no-passthrough");
    if (args->options.allow_devices) args->options.given.push_back("--dev");
    if (args->options.allow_block_devices) args->options.given.push_back("--allow-block-devices");
    if (!args->options.cpus.empty()) args->options.given.push_back("--cpus " + args->options.cpus);
    if (args->options.threads) args->options.given.push_back("--threads " + std::to_string(args->options.threads));
    fs::mount_guests(g.pool, args->names, args->all, args->options);
  });

  auto* umount = app.add_subcommand("umount", "Unmount guest views (their daemons exit)");
  umount->add_option("NAME", args->names, "Guests to unmount");
  umount->add_flag("--all", args->all, "Unmount every mounted guest");
  umount->add_flag("--lazy", args->lazy, "Detach busy views (they go away when no longer used)");
  umount->callback([&g, args] {
    check_names_or_all(args->names, args->all, "umount");
    context::refuse_if_running(g.pool, args->names, args->all, "unmounting its view");
    fs::umount_guests(g.pool, args->names, args->all, args->lazy);
  });
}

}  // namespace vunify::cli

// The `vunify` subcommands: each cmd_*.cpp registers one group on the CLI11 app.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

namespace vunify::cli {

struct Globals {
  std::string pool;   // --pool (default: $VUNIFY_POOL or /var/lib/vunify)
  bool json = false;  // --json where a command supports it
};

void add_init_command(CLI::App& app, Globals& g);
void add_guest_commands(CLI::App& app, Globals& g);
void add_unify_command(CLI::App& app, Globals& g);
void add_store_commands(CLI::App& app, Globals& g);  // stat, gc, verify, fsck
void add_mount_commands(CLI::App& app, Globals& g);     // mount, umount (cmd_mount.cpp)
void add_template_commands(CLI::App& app, Globals& g);  // template ..., guest create/clone (cmd_template.cpp)
void add_context_commands(CLI::App& app, Globals& g);   // start, stop, restart, exec, enter, ps, status
void add_limits_command(CLI::App& app, Globals& g);     // set (cmd_limits.cpp)

// Exit status for "the command ran and found problems" (verify, fsck).
constexpr int kExitProblems = 3;
// Thrown by a command callback to end with a given status after printing its own output.
struct ExitStatus {
  int code;
};

}  // namespace vunify::cli

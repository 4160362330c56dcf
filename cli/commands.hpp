// The `vunify` subcommands: each cmd_*.cpp registers one group on the CLI11 app.
#pragma once
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
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

// The subcommand named on the command line (the first word that is not a global option or its
// value), "" if there is none before a flag such as --help.
std::string subcommand_word(int argc, char** argv);
// Whether `word` is one of vunify's subcommands.
bool is_command(const std::string& word);
// Registers the groups that define `word`, or every group if `word` is "" or no group names it
// (--help: CLI11 then lists them all). The other groups' options, validators and strings are
// work every start and exec paid for commands they never run (-0.3 ms of CPU for `status`).
void add_commands(CLI::App& app, Globals& g, const std::string& word);

// Exit status for "the command ran and found problems" (verify, fsck).
constexpr int kExitProblems = 3;
// Thrown by a command callback to end with a given status after printing its own output.
struct ExitStatus {
  int code;
};

// Ends the process once a command has done its work, without tearing the CLI down (the CLI11
// app, the heap, static destructors): for `start`, whose supervisor was forked from this process
// and shares every heap page with it copy-on-write, so each page the teardown wrote would be
// copied first; and for `exec`, which is timed against a bare nsenter. Output is flushed; a
// failed flush turns success into status 1.
[[noreturn]] inline void exit_at_once(int code) {
  if (std::fflush(nullptr) != 0 && code == 0) code = 1;
  ::_exit(code);
}

}  // namespace vunify::cli

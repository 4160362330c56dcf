// vunify start / stop / restart / exec / enter / ps / status: running guests in contexts.
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/top.hpp"
#include "context/runtime.hpp"
#include "os/error.hpp"

namespace vunify::cli {

namespace {

struct ContextArgs {
  std::string name;
  std::vector<std::string> names, command;
  bool all = false;
  int timeout = 30;
  context::ExecOptions exec;
};

// The command after `--` (CLI11 may hand the separator over with it).
std::vector<std::string> command_of(std::vector<std::string> cmd) {
  if (!cmd.empty() && cmd.front() == "--") cmd.erase(cmd.begin());
  return cmd;
}

void need_one(const ContextArgs& a, const char* cmd) {
  if (a.all == !a.name.empty())
    throw os::UserError(std::string("name the guest to ") + cmd + ", or give --all");
}

void add_start_stop(CLI::App& app, Globals& g) {
  auto a = std::make_shared<ContextArgs>();
  auto* start = app.add_subcommand("start", "Start a guest in its own context (returns once PID 1 runs)");
  start->add_option("NAME", a->name, "Guest to start");
  start->add_flag("--all", a->all, "Start every guest with autostart = true");
  start->add_option("CMD", a->command, "Command to run as the guest's only job (after --)");
  start->positionals_at_end();
  start->callback([&g, a] {
    need_one(*a, "start");
    if (a->all) return context::start_all(g.pool);
    context::start(g.pool, a->name, command_of(a->command));
    exit_at_once(0);
  });

  auto* stop = app.add_subcommand("stop", "Stop a guest: its stop signal, then SIGKILL of its cgroup after the timeout");
  stop->add_option("NAME", a->name, "Guest to stop");
  stop->add_flag("--all", a->all, "Stop every running guest");
  stop->add_option("--timeout", a->timeout, "Seconds to wait before killing")->check(CLI::Range(0, 86400));
  stop->callback([&g, a] {
    need_one(*a, "stop");
    if (a->all) return context::stop_all(g.pool, a->timeout);
    context::stop(g.pool, a->name, a->timeout);
  });

  auto* restart = app.add_subcommand("restart", "Stop a guest if it runs, then start it with its init");
  restart->add_option("NAME", a->name, "Guest to restart")->required();
  restart->add_option("--timeout", a->timeout, "Seconds to wait before killing")->check(CLI::Range(0, 86400));
  restart->callback([&g, a] {
    if (context::is_running(g.pool, a->name)) context::stop(g.pool, a->name, a->timeout);
    context::start(g.pool, a->name, {});
  });
}

void add_exec_enter(CLI::App& app, Globals& g) {
  auto a = std::make_shared<ContextArgs>();
  auto* exec = app.add_subcommand("exec", "Run a command in a running guest (exit status passed through)");
  exec->add_option("NAME", a->name, "Guest")->required();
  exec->add_option("CMD", a->exec.command, "Command and its arguments (after --)")->required();
  exec->add_flag("-t,--tty", a->exec.tty, "Give the command a pty of the guest");
  exec->add_option("-u,--user", a->exec.user, "User (name or uid in the guest; default root)");
  exec->add_option("-w,--workdir", a->exec.workdir, "Working directory (default: the user's home)");
  exec->add_option("-e,--env", a->exec.env, "Environment variable K=V (repeatable)")->allow_extra_args(false);
  exec->positionals_at_end();
  exec->callback([&g, a] {
    a->exec.command = command_of(a->exec.command);
    if (a->exec.command.empty()) throw os::UserError("exec: give the command after --");
    exit_at_once(context::exec(g.pool, a->name, a->exec));
  });

  auto* enter = app.add_subcommand("enter", "A login shell in a running guest (exec -t of root's shell)");
  enter->add_option("NAME", a->name, "Guest")->required();
  enter->callback([&g, a] {
    context::ExecOptions o;
    o.tty = true;
    exit_at_once(context::exec(g.pool, a->name, o));
  });
}

void add_ps_status(CLI::App& app, Globals& g) {
  auto a = std::make_shared<ContextArgs>();
  auto* ps = app.add_subcommand("ps", "Processes of a running guest; --all: of every guest (spectator, cannot signal)");
  ps->add_option("NAME", a->name, "Guest");
  ps->add_flag("--all", a->all, "Every running guest, with a CONTEXT column");
  ps->callback([&g, a] {
    need_one(*a, "list");
    if (a->all) return context::ps_all(g.pool);
    context::ps(g.pool, a->name);
  });

  auto* status = app.add_subcommand("status", "State of guests: running or stopped, PID 1, uptime, context id, view");
  status->add_option("NAME", a->names, "Guests (default: all)");
  status->add_flag("--json", g.json, "Machine-readable");
  status->callback([&g, a] { context::status(g.pool, a->names, g.json); });

  auto t = std::make_shared<TopOptions>();
  auto* top = app.add_subcommand("top", "Live table of running guests: CPU %, memory, pids, I/O and network bytes, view daemon");
  top->add_option("NAME", t->guests, "Guests (default: every running guest)");
  top->add_option("-n,--count", t->count, "Print N tables, then exit (default: until q or Ctrl-C)")->check(CLI::Range(1, 1000000));
  auto once = std::make_shared<bool>(false);
  top->add_flag("--once", *once, "One table (after one interval), then exit: -n 1");
  top->add_option("-d,--interval", t->interval, "Seconds between tables (default 1)");
  top->add_flag("--json", t->json, "One JSON object per table, a line each");
  top->callback([&g, t, once] {
    if (*once) {
      if (t->count > 1) throw os::UserError("top: give --once or -n, not both");
      t->count = 1;
    }
    run_top(g.pool, *t);
  });
}

}  // namespace

void add_context_commands(CLI::App& app, Globals& g) {
  add_start_stop(app, g);
  add_exec_enter(app, g);
  add_ps_status(app, g);
}

}  // namespace vunify::cli

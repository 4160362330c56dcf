// Running guests: start, stop, exec, ps, status (the CLI's `vunify start` & co.).
//
// `start` mounts the view if needed, creates the guest's cgroups and forks a supervisor that
// clones PID 1 into fresh namespaces, writes POOL/run/NAME.json once PID 1 runs, copies the
// console to POOL/log/NAME.console, and after PID 1 exits removes the cgroups, the view it
// mounted and the state. `stop` signals PID 1, kills the cgroup after the timeout and waits for
// that cleanup (doing it itself if the supervisor is gone).
#pragma once
#include <string>
#include <vector>

namespace vunify::context {

// Throws os::UserError unless `guest` is a valid name of a guest in the pool.
void check_guest(const std::string& pool_root, const std::string& guest);

// Starts `guest`; `command` empty runs the configured init. Returns once PID 1 runs. Throws
// os::UserError (bad state, init cannot run) or os::SysError, leaving nothing behind.
void start(const std::string& pool_root, const std::string& guest, const std::vector<std::string>& command);
// Starts every guest with autostart = true that is not running.
void start_all(const std::string& pool_root);
// Stops `guest`: its stop signal, then SIGKILL of its cgroups after `timeout_s`.
void stop(const std::string& pool_root, const std::string& guest, int timeout_s);
void stop_all(const std::string& pool_root, int timeout_s);

bool is_running(const std::string& pool_root, const std::string& guest);
// Throws os::UserError naming `vunify stop` if any of `guests` (every guest if `all`) runs.
void refuse_if_running(const std::string& pool_root, const std::vector<std::string>& guests, bool all,
                       const std::string& action);

struct ExecOptions {
  bool tty = false;
  std::string user;     // name or uid in the guest (default root)
  std::string workdir;  // default: the user's home, else /
  std::vector<std::string> env;
  std::vector<std::string> command;
};
// Runs `command` in the running guest; returns its exit status (128+N if killed by signal N,
// 127 if it could not run).
int exec(const std::string& pool_root, const std::string& guest, const ExecOptions& options);

// Lists the guest's processes (ps NAME), or every guest's as the spectator (ps --all).
void ps(const std::string& pool_root, const std::string& guest);
void ps_all(const std::string& pool_root);
// State of the named guests (all if empty), as a table or JSON.
void status(const std::string& pool_root, const std::vector<std::string>& guests, bool json);

}  // namespace vunify::context

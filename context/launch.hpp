// Bringing a context up (the supervisor and the steps of PID 1) and tearing it down.
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

#include "context/cgroup.hpp"
#include "context/limit_keys.hpp"
#include "context/net_config.hpp"
#include "context/security.hpp"
#include "context/state.hpp"

namespace vunify::context {

struct Launch {
  std::string pool, guest;
  std::string root;         // host path of the guest root in its view
  std::string hostname;
  std::string console_log;  // POOL/log/NAME.console
  bool own_init = false;    // PID 1 is vunify's init running `argv` (maybe none)
  bool systemd = false;     // PID 1 is systemd: tmpfs /run, /run/lock, /tmp
  bool mounted_view = false;
  std::vector<std::string> argv;  // the command (own init) or the guest's init and its arguments
  int stop_signal = 0;
  PreparedSecurity security{};  // its seccomp filter compiled before the supervisor forks
  std::vector<CgroupDir> cgroups;
  Limits limits;  // etc/NAME.toml [limits]: applied to the cgroups before launch, to PID 1 here
  ViewAccount view;  // the view daemon's cgroups
  NetworkConfig network;
};

// Forks the supervisor, which starts PID 1 and records the state. Returns PID 1's host pid once
// it runs. Throws os::UserError with the reason if it could not start (the supervisor has
// exited then; the cgroups and the view are the caller's to remove).
pid_t launch(const Launch& launch);

// pid1.cpp: the helper that builds the guest's root, in the guest's pid (for /proc), mount, uts,
// ipc and net namespaces but in no Landlock domain: mount tree from `root_tree` (mounts.hpp),
// console (its master sent on `console_sock`), hostname, lo, pivot_root. Errors go to `report`.
// It runs in the supervisor's memory (clone_shared) and frees what it allocates.
[[noreturn]] void run_root_setup(const Launch& launch, int root_tree, int console_sock, int report);

// pid1.cpp: the first process of the context, started by the holder (in its Landlock domain) into
// fresh namespaces. `procs`: the guest's cgroup.procs files (cgroup.hpp open_procs); `go` is
// readable once the root is ready; errors go to `report`; `self` is the sealed vunify-init.
struct Pid1Fds {
  std::vector<int> procs;
  int go = -1, report = -1, self = -1;
};
// What PID 1 execs (argv, environment): filled by PID 1, freed by the holder once it has exec'd.
struct Pid1Image {
  std::vector<std::string> args, env;
  std::vector<char*> argv, envp;
};
// PID 1 starts in the holder's memory (clone_shared): the holder waits until it has exec'd, so
// PID 1 itself sends its pidfd ('P') to the supervisor on `control`, and closes `control` and
// `listen` in its own fd table.
struct Pid1Start {
  const Launch& launch;
  const Pid1Fds& fds;
  int control, listen;
  Pid1Image& image;
};
int run_pid1(void* start);  // clone_shared's fn: execs, or exits 1 after a report

// holder.cpp: the guest's holder (holder.hpp), forked by the supervisor. Never returns; exits
// with PID 1's status.
struct HolderFds {
  int root_tree = -1;  // the guest root, for the Landlock rule (closed once the domain is made)
  int listen = -1;     // POOL/run/NAME.sock
  int control = -1;    // to the supervisor: PID 1's pidfd
  Pid1Fds pid1;
};
[[noreturn]] void run_holder(const Launch& launch, const HolderFds& fds);

// Ends whatever is left of the context: SIGKILL to its cgroups until they are empty, removes
// them, unmounts the view if start mounted it, removes the state. Returns false if some cgroup
// could not be removed.
bool cleanup(const std::string& pool, const std::string& guest, const RunState& state);

}  // namespace vunify::context

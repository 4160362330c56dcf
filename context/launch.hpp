// Bringing a context up (the supervisor and the steps of PID 1) and tearing it down.
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

#include "context/cgroup.hpp"
#include "context/limit_keys.hpp"
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
};

// Forks the supervisor, which starts PID 1 and records the state. Returns PID 1's host pid once
// it runs. Throws os::UserError with the reason if it could not start (the supervisor has
// exited then; the cgroups and the view are the caller's to remove).
pid_t launch(const Launch& launch);

// pid1.cpp: the first process of the context, in its fresh namespaces; `root_tree` is the
// detached copy of the guest root (mounts.hpp). `go` is readable once it
// is in the guest's cgroups; errors go to `report`, the console's master to `console_sock`.
// `self` is the sealed copy of vunify (own init). Never returns.
[[noreturn]] void run_pid1(const Launch& launch, int root_tree, int go, int report, int console_sock, int self);

// Ends whatever is left of the context: SIGKILL to its cgroups until they are empty, removes
// them, unmounts the view if start mounted it, removes the state. Returns false if some cgroup
// could not be removed.
bool cleanup(const std::string& pool, const std::string& guest, const RunState& state);

}  // namespace vunify::context

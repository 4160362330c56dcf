// An exec'd command as the guest's holder forks it (already in the guest's pid namespace and
// Landlock domain): joins the guest's cgroups and its other namespaces, takes the caller's
// stdio (or a pty of the guest's devpts, whose master goes back to the caller), then session,
// user, directory, environment, the security profile without a domain of its own, exec.
#pragma once
#include <vector>

#include "context/limit_keys.hpp"
#include "context/runtime.hpp"
#include "context/security.hpp"

namespace vunify::context {

struct ExecChild {
  const ExecOptions& options;
  const PreparedSecurity& security;  // the guest's, as at start (seccomp compiled)
  const Limits& limits;            // the guest's [limits] as the caller read them
  int conn;                        // to the `vunify exec` caller: 'T' pty master, 'E' errors
  std::vector<int> stdio;          // the caller's stdin, stdout, stderr (none with -t)
  std::vector<int> procs;          // the guest's cgroup.procs files
  int pid1fd;                      // the guest's PID 1, whose namespaces it joins
};

// Never returns: exec, or exit 127 after an 'E' message.
[[noreturn]] void run_exec_child(const ExecChild& child);

}  // namespace vunify::context

// An exec'd command as the guest's holder starts it (already in the guest's pid namespace and
// Landlock domain): joins the guest's cgroups and its other namespaces, takes the caller's
// stdio (or a pty of the guest's devpts, whose master goes back to the caller), then session,
// user, directory, environment, the security profile without a domain of its own, exec.
// The holder starts it with clone_shared (namespaces.hpp): until it execs, it runs in the
// holder's memory, so what must outlive its setup (the arguments and environment exec takes)
// goes into the holder's ExecImage, which the holder frees once the child has exec'd.
#pragma once
#include <string>
#include <vector>

#include "context/limit_keys.hpp"
#include "context/runtime.hpp"
#include "context/security.hpp"

namespace vunify::context {

struct ExecImage {
  std::vector<std::string> args, env;
  std::vector<char*> argv, envp;
  int conn = -1;  // where errors go (fd 3 once set up)
};

struct ExecChild {
  const ExecOptions& options;
  const PreparedSecurity& security;  // the guest's, as at start (seccomp compiled)
  const Limits& limits;            // the guest's [limits] as the caller read them
  int conn;                        // to the `vunify exec` caller: 'T' pty master, 'E' errors
  std::vector<int> stdio;          // the caller's stdin, stdout, stderr (none with -t)
  std::vector<int> procs;          // the guest's cgroup.procs files
  int pid1fd;                      // the guest's PID 1, whose namespaces it joins
  ExecImage& image;                // the holder's: filled by the child
};

// The child's body (clone_shared's fn, `arg` an ExecChild): exec, or exit 127 after an 'E'
// message.
int run_exec_child(void* arg);

}  // namespace vunify::context

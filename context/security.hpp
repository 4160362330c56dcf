// The security profile of a context: capabilities, seccomp, Landlock, device allowlist.
// Applied by the runtime in the guest's first process after pivot_root, just before exec.
#pragma once
#include <cstdint>
#include <string_view>

#include "os/unique_fd.hpp"

namespace vunify::context {

struct SecurityProfile {
  uint64_t capabilities;  // bounding (and permitted/effective) set kept, bit N = capability N
  bool seccomp = true;    // the default seccomp filter
  bool landlock = true;   // filesystem confined beneath "/", signals and abstract sockets scoped
};

// Docker's default 14 capabilities (00000000a80425fb).
uint64_t default_capabilities();
// "CAP_NET_ADMIN", "net_admin" or "NET_ADMIN" -> its bit number; throws os::UserError if unknown.
int parse_capability(std::string_view name);

// In the guest's process, as root, after pivot_root and before exec: Landlock ruleset, seccomp
// filter, then capabilities (bounding set reduced, inheritable and ambient cleared). Survives
// exec. Throws os::SysError naming the step that failed.
void apply_security(const SecurityProfile& profile);

// The spectator: scopes this process's signals with Landlock (it can read every guest's
// /proc entries but any signal to a process outside its own domain fails with EPERM).
void enter_spectator();

// Device allowlist (Docker's default: null zero full tty random urandom ptmx pts/* console)
// for the guest's cgroup: v1 writes devices.deny/devices.allow in the devices controller's
// directory; v2 attaches a BPF_CGROUP_DEVICE program to the cgroup2 directory (the attachment
// lives as long as the cgroup). Throws os::SysError.
void restrict_devices_v1(int devices_cgroup_dir_fd);
void restrict_devices_v2(int cgroup2_dir_fd);

}  // namespace vunify::context

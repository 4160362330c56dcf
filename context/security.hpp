// The security profile of a context: capabilities, seccomp, Landlock, device allowlist.
// The guest's Landlock domain is made once by its holder (enter_guest_domain, holder.hpp); the
// rest is applied in PID 1 and each exec'd command after pivot_root, just before exec.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <string_view>

#include "context/seccomp.hpp"
#include "os/unique_fd.hpp"

namespace vunify::context {

// Docker's default 14 capabilities (00000000a80425fb): CHOWN DAC_OVERRIDE FOWNER FSETID KILL
// SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
inline constexpr uint64_t kDefaultCapabilities = 0x00000000a80425fbULL;

struct SecurityProfile {
  uint64_t capabilities = kDefaultCapabilities;  // bounding (and permitted/effective) set kept, bit N = capability N
  bool seccomp = true;    // the default seccomp filter
  // Filesystem confined beneath "/", signals and abstract sockets scoped to the domain made
  // here. Off for a process that inherited the guest's domain (enter_guest_domain). A domain
  // that handles filesystem access also forbids mount(2), even with CAP_SYS_ADMIN kept.
  bool landlock = true;
  // On by default, as the start sequence of runc/crun sets it: no setuid bit or file capability
  // gains privileges in the guest. A guest whose users need setuid binaries (sudo, su, ping on
  // some distributions) turns it off (`[context] no_new_privs = false`, Docker's default);
  // even then a setuid binary only reaches the bounding set above.
  bool no_new_privs = true;
};

// Docker's default 14 capabilities (kDefaultCapabilities).
uint64_t default_capabilities();
// "CAP_NET_ADMIN", "net_admin" or "NET_ADMIN" -> its bit number; throws os::UserError if unknown.
int parse_capability(std::string_view name);

// A profile with its seccomp filter compiled (prepare_security), made on the host side before
// the fork of the process that applies it.
struct PreparedSecurity {
  SecurityProfile profile;
  SeccompProgram seccomp;  // empty if profile.seccomp is off
};
PreparedSecurity prepare_security(const SecurityProfile& profile);

// In the guest's process (single-threaded), as root, after pivot_root and before exec: Landlock
// ruleset, seccomp filter, then capabilities (bounding set reduced, inheritable and ambient
// cleared). Survives exec. Throws os::SysError naming the step that failed, os::UserError if
// the profile asks for a capability this process does not have in its bounding set, or keeps
// CAP_SYS_BOOT while in the host's pid namespace (reboot(2) would reboot the host).
// On kernels without Landlock (or ABI < 6 for the scoping) it prints a warning and goes on.
void apply_security(const PreparedSecurity& security);
// prepare_security + apply_security, in one process.
void apply_security(const SecurityProfile& profile);

// Only the Landlock part of apply_security, beneath `root_dir_fd` (the directory that will be
// the guest's "/", e.g. before pivot_root). For a process that stays outside the guest's pid
// namespace and forks the guest's processes (its init, and later `exec`'d commands): they
// inherit one domain and can signal each other. A process that makes its own domain (as
// apply_security with landlock = true does) can signal neither the guest's processes nor be
// signalled by them (the guest's init cannot stop it at shutdown): Landlock lets a process
// signal only its own domain and the domains nested in it.
void enter_guest_domain(int root_dir_fd);

// The spectator: this process lists every guest's processes (/proc/PID/status and cmdline,
// cgroup.procs: all world-readable) and gains nothing else. Its signals and abstract unix
// sockets are scoped with Landlock (any signal to a process outside its own domain fails with
// EPERM), no_new_privs is set, it becomes uid and gid kSpectatorId with no supplementary group
// and every capability set (bounding included) empty, so other processes' environ, maps, mem,
// fds and namespaces are closed to it. Irreversible; call it after reading what needs root.
// Throws os::SysError (EOPNOTSUPP) when Landlock cannot scope signals (ABI < 6), or naming the
// step that failed.
inline constexpr uid_t kSpectatorId = 65534;  // the overflow uid ("nobody")
void enter_spectator();

// Device allowlist (Docker's default: null zero full tty random urandom ptmx pts/* console,
// and mknod of any node) for the guest's cgroup: v1 writes devices.deny/devices.allow in the
// devices controller's directory; v2 attaches a BPF_CGROUP_DEVICE program to the cgroup2
// directory (the attachment lives as long as the cgroup). Throws os::SysError.
void restrict_devices_v1(int devices_cgroup_dir_fd);
void restrict_devices_v2(int cgroup2_dir_fd);

}  // namespace vunify::context

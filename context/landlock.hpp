// Landlock (raw syscalls: Debian 12's headers predate ABI 6).
#pragma once
#include <cstdint>

namespace vunify::context {

// The kernel's Landlock ABI version, 0 if Landlock is unavailable.
int landlock_abi();

// What a guest's domain handles on a kernel with Landlock ABI `abi`: every filesystem right it
// knows (13 in ABI 1, + REFER in 2, TRUNCATE in 3, IOCTL_DEV in 5) and, from ABI 6, the
// signal and abstract unix socket scopes.
struct LandlockRights {
  uint64_t fs;
  uint64_t scoped;
};
LandlockRights landlock_rights(int abi);

// Restricts this process and its future children: every filesystem access right of the ABI is
// handled and allowed beneath `root_dir_fd` only (a directory fd or cwd leaked from outside
// cannot be used), signals and abstract unix sockets scoped to the domain (ABI >= 6). Warns on
// stderr and does less on older ABIs. Needs CAP_SYS_ADMIN or no_new_privs.
void landlock_confine_beneath(int root_dir_fd);

// Scoping only, of signals and abstract unix sockets (the spectator). Throws
// os::SysError(EOPNOTSUPP) if ABI < 6.
void landlock_scope_only();

}  // namespace vunify::context

// apply_security: the order of the steps matters. Landlock and seccomp need CAP_SYS_ADMIN
// when no_new_privs is not set (a guest may turn it off), so capabilities go last.
#include "context/security.hpp"

#include <fcntl.h>
#include <grp.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include <cerrno>
#include <string>

#include "context/capabilities.hpp"
#include "context/landlock.hpp"
#include "context/seccomp.hpp"
#include "os/error.hpp"

namespace vunify::context {
namespace {

// The initial pid namespace's inode number (PROC_PID_INIT_INO, fixed since Linux 3.8).
constexpr ino_t kInitPidNamespaceIno = 0xEFFFFFFCU;

// With CAP_SYS_BOOT, reboot(2) restarts the machine unless the caller is in a child pid
// namespace, where it only ends the namespace's init.
void check_reboot_is_contained(uint64_t caps) {
  if (!((caps >> CAP_SYS_BOOT) & 1)) return;
  struct stat st {};
  if (::stat("/proc/self/ns/pid", &st) != 0)
    throw os::UserError("CAP_SYS_BOOT kept but /proc/self/ns/pid cannot be read: cannot check the pid namespace");
  if (st.st_ino == kInitPidNamespaceIno)
    throw os::UserError("CAP_SYS_BOOT kept in the host's pid namespace: reboot(2) would reboot the host");
}

}  // namespace

PreparedSecurity prepare_security(const SecurityProfile& profile) {
  PreparedSecurity prepared{profile, {}};
  if (profile.seccomp) prepared.seccomp = compile_seccomp(profile.capabilities);
  return prepared;
}

void apply_security(const SecurityProfile& profile) { apply_security(prepare_security(profile)); }

void apply_security(const PreparedSecurity& security) {
  const SecurityProfile& profile = security.profile;
  check_reboot_is_contained(profile.capabilities);
  if (profile.no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) os::throw_errno("security: set no_new_privs", "");
  if (profile.landlock) {
    os::unique_fd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) os::throw_errno("landlock: open", "/");
    landlock_confine_beneath(root.get());
  }
  if (profile.seccomp) load_seccomp(security.seccomp);
  apply_capabilities(profile.capabilities);
}

void enter_guest_domain(int root_dir_fd) { landlock_confine_beneath(root_dir_fd); }

void enter_spectator() {
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) os::throw_errno("spectator: set no_new_privs", "");
  landlock_scope_only();
  empty_bounding_and_inheritable();
  if (::setgroups(0, nullptr) != 0) os::throw_errno("spectator: drop supplementary groups", "");
  if (::setresgid(kSpectatorId, kSpectatorId, kSpectatorId) != 0) os::throw_errno("spectator: setresgid", std::to_string(kSpectatorId));
  if (::setresuid(kSpectatorId, kSpectatorId, kSpectatorId) != 0) os::throw_errno("spectator: setresuid", std::to_string(kSpectatorId));
  // Leaving uid 0 for good has cleared the permitted, effective and ambient sets.
}

}  // namespace vunify::context

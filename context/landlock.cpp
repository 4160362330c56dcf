// Landlock through raw syscalls (Debian 12's linux-libc-dev 6.1 lacks the ABI 5-7 fields).
// The guest's domain handles every filesystem right of the kernel's ABI and allows all of them
// beneath "/" (the new root after pivot_root): a directory fd or a cwd leaked from the host
// resolves outside that hierarchy and is refused with EACCES (CVE-2024-21626 pattern).
#include "context/landlock.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <string>

#include "os/error.hpp"
#include "os/unique_fd.hpp"

namespace vunify::context {
namespace {

// struct landlock_ruleset_attr as of ABI 6; older kernels accept it while the unknown
// trailing fields are zero.
struct RulesetAttr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;
  uint64_t scoped;
};

struct __attribute__((packed)) PathBeneathAttr {
  uint64_t allowed_access;
  int32_t parent_fd;
};

constexpr uint32_t kCreateRulesetVersion = 1U << 0;
constexpr int kRulePathBeneath = 1;
constexpr uint64_t kScopeAbstractUnixSocket = 1ULL << 0;
constexpr uint64_t kScopeSignal = 1ULL << 1;

os::unique_fd create_ruleset(const RulesetAttr& attr) {
  long fd = ::syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
  if (fd < 0) os::throw_errno("landlock: create ruleset", "");
  return os::unique_fd(static_cast<int>(fd));
}

void allow_beneath(int ruleset_fd, int dir_fd, uint64_t rights) {
  PathBeneathAttr rule{rights, dir_fd};
  if (::syscall(SYS_landlock_add_rule, ruleset_fd, kRulePathBeneath, &rule, 0) != 0)
    os::throw_errno("landlock: add rule beneath the root (fd)", std::to_string(dir_fd));
}

void restrict_self(int ruleset_fd) {
  if (::syscall(SYS_landlock_restrict_self, ruleset_fd, 0) != 0) os::throw_errno("landlock: restrict self", "");
}

}  // namespace

LandlockRights landlock_rights(int abi) {
  uint64_t fs = abi >= 5 ? (1ULL << 16) - 1 : abi >= 3 ? (1ULL << 15) - 1 : abi >= 2 ? (1ULL << 14) - 1 : (1ULL << 13) - 1;
  return {abi >= 1 ? fs : 0, abi >= 6 ? kScopeSignal | kScopeAbstractUnixSocket : 0};
}

int landlock_abi() {
  long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, kCreateRulesetVersion);
  return abi < 0 ? 0 : static_cast<int>(abi);
}

void landlock_confine_beneath(int root_dir_fd) {
  int abi = landlock_abi();
  if (abi == 0) {
    fmt::print(stderr, "vunify: warning: Landlock is not available (kernel < 5.13 or not in lsm=): "
                       "the filesystem is not confined beneath the guest's root, signals are not scoped\n");
    return;
  }
  if (abi < 6)
    fmt::print(stderr, "vunify: warning: Landlock ABI {} < 6: signals and abstract unix sockets are not scoped to the context\n", abi);
  LandlockRights rights = landlock_rights(abi);
  RulesetAttr attr{rights.fs, 0, rights.scoped};
  os::unique_fd ruleset = create_ruleset(attr);
  allow_beneath(ruleset.get(), root_dir_fd, attr.handled_access_fs);
  restrict_self(ruleset.get());
}

void landlock_scope_only() {
  int abi = landlock_abi();
  if (abi < 6) throw os::SysError(EOPNOTSUPP, fmt::format("landlock: signal scoping needs ABI 6, kernel has {}", abi), "");
  RulesetAttr attr{0, 0, kScopeSignal | kScopeAbstractUnixSocket};
  restrict_self(create_ruleset(attr).get());
}

}  // namespace vunify::context

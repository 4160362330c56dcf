// The guest's seccomp filter (libseccomp).
#pragma once
#include <linux/filter.h>

#include <cstdint>
#include <string>
#include <vector>

namespace vunify::context {

// The default filter for a process keeping `capabilities` (the mount and namespace calls are
// allowed only with CAP_SYS_ADMIN, reboot only with CAP_SYS_BOOT, as Docker does), compiled by
// libseccomp into the classic BPF program seccomp(2) loads. Compiled on the host side before
// fork: libseccomp's work (milliseconds) is then not redone, and not paid in copy-on-write
// faults, in every process that enters the guest.
struct SeccompProgram {
  std::vector<sock_filter> code;
};
SeccompProgram compile_seccomp(uint64_t capabilities);

// Loads `program` into this process, as libseccomp's seccomp_load does for our filter
// (seccomp(SECCOMP_SET_MODE_FILTER) without flags). Does not set no_new_privs: needs
// CAP_SYS_ADMIN (or no_new_privs set by the caller).
void load_seccomp(const SeccompProgram& program);

// compile_seccomp + load_seccomp.
void apply_seccomp(uint64_t capabilities);

// The same filter in libseccomp's pseudo-filter-code text (one section per architecture).
std::string describe_seccomp(uint64_t capabilities);

}  // namespace vunify::context

// The guest's seccomp filter (libseccomp).
#pragma once
#include <cstdint>
#include <string>

namespace vunify::context {

// Loads the default filter for a process keeping `capabilities` (the mount and namespace
// calls are allowed only with CAP_SYS_ADMIN, reboot only with CAP_SYS_BOOT, as Docker does).
// Does not set no_new_privs: needs CAP_SYS_ADMIN (or no_new_privs set by the caller).
void apply_seccomp(uint64_t capabilities);

// The same filter in libseccomp's pseudo-filter-code text (one section per architecture).
std::string describe_seccomp(uint64_t capabilities);

}  // namespace vunify::context

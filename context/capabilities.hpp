// Capability sets of the guest's process (libcap).
#pragma once
#include <cstdint>

namespace vunify::context {

// Bounding set reduced to `keep`, permitted and effective = `keep`, inheritable and ambient
// cleared. Needs CAP_SETPCAP; throws os::UserError if `keep` holds a capability this process
// cannot have (not in its bounding set or unknown to the kernel), os::SysError otherwise.
void apply_capabilities(uint64_t keep);

// The capabilities this kernel knows, as a mask (bits 0..CAP_LAST_CAP).
uint64_t kernel_capabilities();

}  // namespace vunify::context

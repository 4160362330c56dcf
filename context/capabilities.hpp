// Capability sets of the guest's process (libcap).
#pragma once
#include <cstdint>

namespace vunify::context {

// Bounding set reduced to `keep`, permitted and effective = `keep`, inheritable and ambient
// cleared. Needs CAP_SETPCAP; throws os::UserError if `keep` holds a capability this process
// cannot have (not in its bounding set or unknown to the kernel), os::SysError otherwise.
void apply_capabilities(uint64_t keep);

// Empties the bounding set and the inheritable set, leaving permitted and effective as they are
// (a setuid to a non-root uid then clears those). Needs CAP_SETPCAP. Throws os::SysError.
void empty_bounding_and_inheritable();

// The capabilities this kernel knows, as a mask (bits 0..CAP_LAST_CAP).
uint64_t kernel_capabilities();

}  // namespace vunify::context

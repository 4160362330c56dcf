// PLACEHOLDER (lead): replaced by the `security` helper's implementation before anything lands.
#include "context/security.hpp"

#include <stdexcept>

namespace vunify::context {
uint64_t default_capabilities() { return 0x00000000a80425fbULL; }
int parse_capability(std::string_view) { throw std::logic_error("security: not implemented yet"); }
void apply_security(const SecurityProfile&) {}
void enter_spectator() {}
void restrict_devices_v1(int) {}
void restrict_devices_v2(int) {}
}  // namespace vunify::context

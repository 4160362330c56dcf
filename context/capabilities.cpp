// Capabilities: bounding set reduced to the profile, permitted/effective = profile,
// inheritable and ambient empty. A root guest exec'ing gets permitted = bounding, so the
// profile survives exec.
#include "context/capabilities.hpp"

#include <fmt/format.h>
#include <sys/capability.h>

#include <cerrno>
#include <memory>
#include <vector>

#include "context/security.hpp"
#include "os/error.hpp"

namespace vunify::context {
namespace {

struct CapFree {
  void operator()(cap_t c) const { cap_free(c); }
};
using unique_cap = std::unique_ptr<std::remove_pointer_t<cap_t>, CapFree>;

std::string cap_name(int cap) {
  char* name = cap_to_name(static_cast<cap_value_t>(cap));
  std::string s = name ? name : fmt::format("cap_{}", cap);
  cap_free(name);
  return s;
}

// Refuses a profile keeping capabilities the kernel does not know or this process lacks.
void check_available(uint64_t keep) {
  uint64_t missing = keep & ~kernel_capabilities();
  for (int cap = 0; cap < 64; ++cap) {
    uint64_t bit = uint64_t{1} << cap;
    if ((keep & bit) && !(missing & bit) && cap_get_bound(static_cast<cap_value_t>(cap)) != 1) missing |= bit;
  }
  if (missing == 0) return;
  std::string names;
  for (int cap = 0; cap < 64; ++cap)
    if (missing & (uint64_t{1} << cap)) names += (names.empty() ? "" : ", ") + cap_name(cap);
  throw os::UserError(fmt::format("capabilities {} (mask {:016x}) are not in this host's bounding set", names, missing));
}

void drop_bounding(uint64_t keep) {
  for (int cap = 0; cap <= cap_max_bits() - 1; ++cap) {
    if (keep & (uint64_t{1} << cap)) continue;
    if (cap_drop_bound(static_cast<cap_value_t>(cap)) != 0) os::throw_errno("capabilities: drop from bounding set", cap_name(cap));
  }
}

void set_process_caps(uint64_t keep) {
  unique_cap caps(cap_init());  // all three sets empty
  if (!caps) os::throw_errno("capabilities: cap_init", "");
  std::vector<cap_value_t> values;
  for (int cap = 0; cap < 64; ++cap)
    if (keep & (uint64_t{1} << cap)) values.push_back(static_cast<cap_value_t>(cap));
  for (cap_flag_t flag : {CAP_PERMITTED, CAP_EFFECTIVE})
    if (!values.empty() && cap_set_flag(caps.get(), flag, static_cast<int>(values.size()), values.data(), CAP_SET) != 0)
      os::throw_errno("capabilities: cap_set_flag", "");
  if (cap_set_proc(caps.get()) != 0) os::throw_errno("capabilities: capset (permitted/effective/inheritable)", "");
}

}  // namespace

uint64_t kernel_capabilities() {
  int bits = cap_max_bits();
  return bits >= 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
}

uint64_t default_capabilities() { return kDefaultCapabilities; }

int parse_capability(std::string_view name) {
  std::string lower;
  for (char c : name) lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (lower.rfind("cap_", 0) != 0) lower = "cap_" + lower;
  // cap_from_name also takes numbers and the first of a list ("chown,kill"): only an exact,
  // whole name is a capability here.
  cap_value_t value = 0;
  if (cap_from_name(lower.c_str(), &value) != 0 || value < 0 || value >= 64 || cap_name(value) != lower)
    throw os::UserError(fmt::format("unknown capability '{}' (expected a name such as CAP_NET_ADMIN or net_admin)", name));
  return static_cast<int>(value);
}

void empty_bounding_and_inheritable() {
  drop_bounding(0);
  unique_cap caps(cap_get_proc());
  if (!caps || cap_clear_flag(caps.get(), CAP_INHERITABLE) != 0 || cap_set_proc(caps.get()) != 0)
    os::throw_errno("capabilities: clear the inheritable set", "");
}

void apply_capabilities(uint64_t keep) {
  check_available(keep);
  drop_bounding(keep);  // needs CAP_SETPCAP, so before capset may drop it
  if (cap_reset_ambient() != 0 && errno != EINVAL) os::throw_errno("capabilities: clear ambient set", "");
  set_process_caps(keep);
}

}  // namespace vunify::context

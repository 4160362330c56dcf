// Users of the guest, read from its own /etc/passwd and /etc/group (never the host's NSS).
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

namespace vunify::context {

struct GuestUser {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name, home = "/", shell = "/bin/sh";
  std::vector<gid_t> groups;  // supplementary groups
};

// `spec` is a name or a numeric uid ("" is root), looked up in /etc/passwd of the current root.
// A numeric uid without an entry gets gid = uid. Throws os::UserError for an unknown name.
GuestUser lookup_user(const std::string& spec);

}  // namespace vunify::context

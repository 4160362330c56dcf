// Guests: add (copy or move a tree into the pool), list, remove.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "os/tree_copy.hpp"
#include "unify/pool.hpp"

namespace vunify::unify {

struct GuestInfo {
  std::string name;
  int64_t created_ns = 0;
  std::string template_name;
  bool mounted = false;  // a live view
  bool stale = false;    // the mount of a view daemon that died
  bool stopped = false;  // mounted, but its daemon is stopped (SIGSTOP): it answers nothing
  pid_t daemon = 0;      // the view daemon's pid when known
};

std::vector<GuestInfo> list_guests(Pool& pool);

// Copies (or, with `move`, renames: same filesystem only) the tree at `from` into
// backing/NAME. Copies into a temp name and renames at the end: a failure leaves nothing.
os::TreeCopyStats add_guest(Pool& pool, const std::string& name, const std::string& from, bool move,
                            const os::Progress& progress = {});

// Removes the guest's tree and index rows; objects it used stay until `vunify gc`.
void remove_guest(Pool& pool, const std::string& name);

// Records a guest whose tree is already at backing/NAME (used by add and by provisioning).
void register_guest(Pool& pool, const std::string& name, const std::string& template_name);

}  // namespace vunify::unify

// Rebuilding a lost or damaged index from the trees (fsck --repair): objects from
// store/objects, guests from backing/ (template and creation time from etc/NAME.toml where it
// exists), templates from templates/. The index is a cache of the trees.
#pragma once
#include <string>
#include <vector>

#include "unify/pool.hpp"

namespace vunify::unify {

struct RebuildReport {
  size_t objects = 0, guests = 0, templates = 0;
  std::vector<std::string> notes;  // what could not be taken over (named, left in place)
};

// Fills the (empty) index of `pool` from its trees. Needs the exclusive lock (Access::Repair).
RebuildReport rebuild_index(Pool& pool);

}  // namespace vunify::unify

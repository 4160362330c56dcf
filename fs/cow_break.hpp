// Copy-on-write link breaking (DESIGN invariant 1): before a guest modifies a file whose
// backing inode is a store object, the guest path gets a private copy (temp file in the same
// directory, data + metadata + xattrs minus vunify's marker, fsync, rename over the path),
// and the node is pointed at the copy. The store object itself is never written.
#pragma once
#include <sys/types.h>

#include <limits>

#include "fs/view_state.hpp"

namespace vunify::fs {

constexpr off_t kKeepAll = std::numeric_limits<off_t>::max();

// Breaks `node` if it is shared, keeping the first `keep_bytes` bytes of content (0: an empty
// private file, nothing copied). Caller holds node.mu. Returns 0 or an errno (the shared file
// is then untouched, e.g. ENOSPC).
int break_shared_locked(ViewState& vs, Node& node, off_t keep_bytes = kKeepAll);
// Same, taking node.mu.
int break_if_shared(ViewState& vs, Node& node, off_t keep_bytes = kKeepAll);

}  // namespace vunify::fs

// Paths given to commands (a source tree, an archive to read or write) must lie wholly outside
// the pool: a source inside it would move or copy the pool into itself, a target inside it
// would write into the store or a guest. Compared by device and inode along the physical path
// (symlinks and bind mounts resolved by the kernel), never by string.
#pragma once
#include <string>
#include <string_view>

#include "unify/pool.hpp"

namespace vunify::unify {

// Throws UserError naming `path` (`role`: "source", "archive", ...) if it is the pool, lies
// inside it, or contains it. A path that does not exist is checked through its parent
// directory (a target about to be created); if that does not exist either, nothing is refused
// here (the command fails on its own when it opens the path).
void check_outside_pool(const Pool& pool, const std::string& path, std::string_view role);

}  // namespace vunify::unify

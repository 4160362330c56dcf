// Copies a whole tree preserving everything: types, mode, owner, ns times, xattrs (caps, ACLs),
// device nodes, fifos, sockets, sparse files and hard links within the tree.
#pragma once
#include <cstdint>
#include <string>

#include "os/progress.hpp"

namespace vunify::os {

struct TreeCopyStats {
  uint64_t entries = 0;
  uint64_t bytes_written = 0;
};

// Copies the tree at src_root_fd into a new directory `dst_name` in `dst_parent_fd`
// (which must not exist). Never follows symlinks in the source. On error the partial
// destination is left for the caller to remove (callers copy into a temp name).
TreeCopyStats copy_tree(int src_root_fd, int dst_parent_fd, const std::string& dst_name, const Progress& progress = {});

}  // namespace vunify::os

// An open file of the guest view (fuse_file_info::fh).
#pragma once
#include <fcntl.h>

#include <cstdint>

#include "fs/fuse.hpp"
#include "os/unique_fd.hpp"

namespace vunify::fs {

struct FileHandle {
  os::unique_fd fd;           // the backing file, opened with the guest's flags
  int flags = 0;              // open flags
  uint32_t epoch = 0;         // node epoch at open: older than the node's = opened before a break
  bool uses_backing = false;  // counted in the node's passthrough backing users
  bool cached = false;        // counted in the node's cached-mode users

  // The fd if it may be used to change the file (a write open), else -1 (use the node).
  int writable_fd() const { return (flags & O_ACCMODE) != O_RDONLY ? fd.get() : -1; }
};

inline FileHandle& handle_of(fuse_file_info* fi) { return *reinterpret_cast<FileHandle*>(fi->fh); }

}  // namespace vunify::fs

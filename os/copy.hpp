// File data and metadata copies: FICLONE -> copy_file_range -> read/write, holes kept.
#pragma once
#include <sys/stat.h>
#include <sys/types.h>

#include <string>

#include "os/xattrs.hpp"

namespace vunify::os {

// Copies `size` bytes of src into the empty file dst, keeping holes (SEEK_DATA/SEEK_HOLE).
// Tries a reflink first. Returns the number of bytes actually written (0 for a reflink).
off_t copy_file_data(int src_fd, int dst_fd, off_t size, const std::string& path_for_errors);

// Gives dst_fd the owner, mode, xattrs and times in `st`/`xattrs` (in an order that keeps
// setuid bits and file capabilities: chown, chmod, xattrs, times).
void copy_file_metadata(int dst_fd, const struct stat& st, const Xattrs& xattrs, const std::string& path_for_errors);

// Same for `name` in `dirfd`, never following a final symlink (for symlinks, fifos, devices, dirs).
void copy_metadata_at(int dirfd, const std::string& name, const struct stat& st, const Xattrs& xattrs);

// Compares two open files byte for byte (from offset 0). True if equal.
bool same_bytes(int fd_a, int fd_b, const std::string& path_for_errors);

}  // namespace vunify::os

// The FUSE operation table of a guest view, filled one family per file (ops_*.cpp).
#pragma once
#include "fs/fuse.hpp"

namespace vunify::fs {

void add_entry_ops(fuse_lowlevel_ops& ops);  // lookup, forget, mknod, mkdir, symlink, link, unlink, rmdir, rename
void add_attr_ops(fuse_lowlevel_ops& ops);   // getattr, setattr, readlink, access, statfs
void add_dir_ops(fuse_lowlevel_ops& ops);    // opendir, readdir(plus), fsyncdir
void add_file_ops(fuse_lowlevel_ops& ops);   // open, create, read, write, release, fsync, fallocate, copy_file_range, lseek
void add_xattr_ops(fuse_lowlevel_ops& ops);  // get/set/list/removexattr

// Replies `err` and returns true if `ino` is the barrier and the request may not touch it:
// non-host callers get EACCES, host callers EPERM (the barrier is not writable).
bool refuse_barrier_change(fuse_req_t req, fuse_ino_t ino);

}  // namespace vunify::fs

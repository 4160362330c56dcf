// Fd-relative tree access that never follows symlinks (DESIGN invariant 5).
#pragma once
#include <sys/stat.h>

#include <functional>
#include <string>

#include "os/unique_fd.hpp"

namespace vunify::os {

// Opens `rel` beneath `rootfd` with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
// RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV): no symlink anywhere in the path, never outside root.
// `rel` may be "" or "." for root itself. Throws SysError (path = `rel`).
unique_fd open_beneath(int rootfd, const std::string& rel, int flags, mode_t mode = 0);
// Same, returning -errno instead of throwing.
int try_open_beneath(int rootfd, const std::string& rel, int flags, mode_t mode = 0);

// Opens `name` in `dirfd` read-only without following a final symlink, with O_NOATIME where
// the caller may use it (it may not on files it does not own without CAP_FOWNER).
// Throws SysError (path = `path_for_errors`).
unique_fd open_read_at(int dirfd, const std::string& name, const std::string& path_for_errors);

// Opens a directory by path (host path given by the user/pool), following nothing at the end.
unique_fd open_dir(const std::string& path);

struct WalkEntry {
  const std::string& rel;  // path relative to the walk root ("a/b/c")
  int dirfd;               // directory that holds the entry
  const char* name;        // entry name within dirfd
  const struct stat& st;   // lstat of the entry
};

// Calls `visit` for every entry beneath rootfd (not for the root), pre-order, names sorted.
// Directories are opened with O_NOFOLLOW and checked to be the inode that was lstat'ed.
// If `visit` returns false for a directory, its children are skipped.
// `leave_dir` (optional) is called after a directory's children, with the directory's own fd
// as `dirfd` and name "."; it is also called for the root with rel "".
using WalkVisit = std::function<bool(const WalkEntry&)>;
using WalkLeave = std::function<void(const WalkEntry&)>;
void walk_tree(int rootfd, const WalkVisit& visit, const WalkLeave& leave_dir = {});

// Removes `name` in `dirfd` and everything beneath it, without following symlinks.
// Missing is not an error; a mount point beneath is (EXDEV), nothing is removed through it.
void remove_tree(int dirfd, const std::string& name);

// fstatat(AT_SYMLINK_NOFOLLOW) that throws.
struct stat stat_at(int dirfd, const std::string& name);

}  // namespace vunify::os

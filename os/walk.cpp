#include "os/walk.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "os/error.hpp"

namespace vunify::os {

int try_open_beneath(int rootfd, const std::string& rel, int flags, mode_t mode) {
  struct open_how how {};
  how.flags = static_cast<unsigned>(flags | O_CLOEXEC | O_NOFOLLOW);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  const char* path = rel.empty() ? "." : rel.c_str();
  long fd = syscall(SYS_openat2, rootfd, path, &how, sizeof how);
  return fd < 0 ? -errno : static_cast<int>(fd);
}

unique_fd open_beneath(int rootfd, const std::string& rel, int flags, mode_t mode) {
  int fd = try_open_beneath(rootfd, rel, flags, mode);
  if (fd < 0) {
    errno = -fd;
    throw_errno("open", rel);
  }
  return unique_fd(fd);
}

unique_fd open_read_at(int dirfd, const std::string& name, const std::string& path_for_errors) {
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) throw_errno("open", path_for_errors);
  return unique_fd(fd);
}

unique_fd open_dir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) throw_errno("open directory", path);
  return unique_fd(fd);
}

struct stat stat_at(int dirfd, const std::string& name) {
  struct stat st {};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) throw_errno("stat", name);
  return st;
}

namespace {

std::vector<std::string> list_dir(int dirfd, const std::string& rel) {
  int dup_fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dup_fd < 0) throw_errno("open directory", rel);
  DIR* dir = ::fdopendir(dup_fd);
  if (!dir) {
    ::close(dup_fd);
    throw_errno("read directory", rel);
  }
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* d = ::readdir(dir)) {
    std::string_view n = d->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
    errno = 0;
  }
  int err = errno;
  ::closedir(dir);
  if (err) {
    errno = err;
    throw_errno("read directory", rel);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Opens child directory `name` of dirfd, refusing anything but the directory we lstat'ed.
unique_fd open_child_dir(int dirfd, const char* name, const struct stat& expected, const std::string& rel) {
  int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) throw_errno("open directory", rel);
  unique_fd child(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno("stat", rel);
  if (st.st_ino != expected.st_ino || st.st_dev != expected.st_dev) throw SysError(ESTALE, "directory changed during walk", rel);
  return child;
}

void walk_dir(int dirfd, const std::string& rel, const WalkVisit& visit, const WalkLeave& leave_dir) {
  for (const std::string& name : list_dir(dirfd, rel)) {
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // vanished since listing
      throw_errno("stat", join_path(rel, name));
    }
    std::string child_rel = join_path(rel, name);
    bool descend = visit(WalkEntry{child_rel, dirfd, name.c_str(), st});
    if (!descend || !S_ISDIR(st.st_mode)) continue;
    unique_fd child = open_child_dir(dirfd, name.c_str(), st, child_rel);
    walk_dir(child.get(), child_rel, visit, leave_dir);
    if (leave_dir) {
      struct stat cst {};
      if (::fstat(child.get(), &cst) != 0) throw_errno("stat", child_rel);
      leave_dir(WalkEntry{child_rel, child.get(), ".", cst});
    }
  }
}

}  // namespace

void walk_tree(int rootfd, const WalkVisit& visit, const WalkLeave& leave_dir) {
  walk_dir(rootfd, "", visit, leave_dir);
  if (leave_dir) {
    struct stat st {};
    if (::fstat(rootfd, &st) != 0) throw_errno("stat", ".");
    std::string rel;
    leave_dir(WalkEntry{rel, rootfd, ".", st});
  }
}

void remove_tree(int dirfd, const std::string& name) {
  struct stat st {};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return;
    throw_errno("stat", name);
  }
  if (S_ISDIR(st.st_mode)) {
    struct stat parent {};
    if (::fstat(dirfd, &parent) != 0) throw_errno("stat", ".");
    // Never remove through a mount point (a view a caller forgot to unmount).
    if (parent.st_dev != st.st_dev) throw SysError(EXDEV, "refusing to remove across a mount point", name);
    unique_fd child = open_child_dir(dirfd, name.c_str(), st, name);
    for (const std::string& n : list_dir(child.get(), name)) remove_tree(child.get(), n);
    if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) throw_errno("remove directory", name);
  } else if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) {
    throw_errno("remove", name);
  }
}

}  // namespace vunify::os

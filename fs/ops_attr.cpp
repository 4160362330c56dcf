// Attributes: getattr, setattr (each change of a shared file breaks it first), readlink,
// access, statfs.
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>

#include "fs/view_state.hpp"
#include "fs/cow_break.hpp"
#include "fs/file_handle.hpp"
#include "fs/ops.hpp"

namespace vunify::fs {

namespace {

// The barrier's attributes are never cached, so every permission check on it comes here.
void getattr_barrier(fuse_req_t req) {
  ViewState& vs = state_of(req);
  if (!vs.host_only.admits(req)) return (void)fuse_reply_err(req, EACCES);
  fuse_reply_attr(req, &vs.barrier_attr, 0);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  if (is_barrier(ino)) return getattr_barrier(req);
  struct stat st;
  if (int err = node_attr(state_of(req), node_of(req, ino), st)) return (void)fuse_reply_err(req, err);
  fuse_reply_attr(req, &st, state_of(req).timeout);
}

int set_times(int node_fd, int open_fd, const struct stat& attr, int valid) {
  struct timespec tv[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
  if (valid & FUSE_SET_ATTR_ATIME_NOW) tv[0].tv_nsec = UTIME_NOW;
  else if (valid & FUSE_SET_ATTR_ATIME) tv[0] = attr.st_atim;
  if (valid & FUSE_SET_ATTR_MTIME_NOW) tv[1].tv_nsec = UTIME_NOW;
  else if (valid & FUSE_SET_ATTR_MTIME) tv[1] = attr.st_mtim;
  if (open_fd >= 0) return ::futimens(open_fd, tv);
  return ::utimensat(AT_FDCWD, proc_path(node_fd).c_str(), tv, 0);
}

// Applies the changes in `valid` to the (private) backing inode. Returns errno or 0.
int apply_setattr(Node& node, int open_fd, const struct stat& attr, int valid) {
  int fd = node.fd();
  if ((valid & FUSE_SET_ATTR_MODE) &&
      (open_fd >= 0 ? ::fchmod(open_fd, attr.st_mode) : ::chmod(proc_path(fd).c_str(), attr.st_mode)) != 0)
    return errno;
  if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
    uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr.st_uid : static_cast<uid_t>(-1);
    gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr.st_gid : static_cast<gid_t>(-1);
    if (::fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return errno;
  }
  if ((valid & FUSE_SET_ATTR_SIZE) &&
      (open_fd >= 0 ? ::ftruncate(open_fd, attr.st_size) : ::truncate(proc_path(fd).c_str(), attr.st_size)) != 0)
    return errno;
  if ((valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)) &&
      set_times(fd, open_fd, attr, valid) != 0)
    return errno;
  return 0;
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int valid, fuse_file_info* fi) {
  if (refuse_barrier_change(req, ino)) return;
  ViewState& vs = state_of(req);
  Node& node = node_of(req, ino);
  off_t keep = (valid & FUSE_SET_ATTR_SIZE) ? attr->st_size : kKeepAll;
  if (int err = break_if_shared(vs, node, keep)) return (void)fuse_reply_err(req, err);
  // An open handle from before a break still refers to the shared object: use the path.
  int open_fd = fi && fi->fh ? handle_of(fi).writable_fd() : -1;
  if (int err = apply_setattr(node, open_fd, *attr, valid)) return (void)fuse_reply_err(req, err);
  op_getattr(req, ino, nullptr);
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  char buf[PATH_MAX + 1];
  ssize_t n = ::readlinkat(node_of(req, ino).fd(), "", buf, sizeof buf);
  if (n < 0) return (void)fuse_reply_err(req, errno);
  if (n == static_cast<ssize_t>(sizeof buf)) return (void)fuse_reply_err(req, ENAMETOOLONG);
  buf[n] = '\0';
  fuse_reply_readlink(req, buf);
}

// With default_permissions the kernel checks access itself; only the barrier is special.
void op_access(fuse_req_t req, fuse_ino_t ino, int) {
  fuse_reply_err(req, is_barrier(ino) && !state_of(req).host_only.admits(req) ? EACCES : 0);
}

void op_statfs(fuse_req_t req, fuse_ino_t) {
  struct statvfs sv;
  if (::fstatvfs(state_of(req).backing_root.get(), &sv) != 0) return (void)fuse_reply_err(req, errno);
  fuse_reply_statfs(req, &sv);
}

}  // namespace

void add_attr_ops(fuse_lowlevel_ops& ops) {
  ops.getattr = op_getattr;
  ops.setattr = op_setattr;
  ops.readlink = op_readlink;
  ops.access = op_access;
  ops.statfs = op_statfs;
}

}  // namespace vunify::fs

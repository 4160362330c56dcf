// Extended attributes. vunify's markers (trusted.vunify.*) are invisible to guests and cannot
// be set or removed by them; a change of a shared file's xattrs breaks it first.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <cerrno>
#include <string>
#include <string_view>
#include <vector>

#include "fs/view_state.hpp"
#include "fs/cow_break.hpp"
#include "fs/ops.hpp"
#include "fs/protocol_hooks.hpp"
#include "os/xattrs.hpp"

namespace vunify::fs {

namespace {

constexpr std::string_view kCapability = "security.capability";

bool denied_at_barrier(fuse_req_t req, fuse_ino_t ino) {
  if (!is_barrier(ino) || state_of(req).host_only.admits(req)) return false;
  fuse_reply_err(req, EACCES);
  return true;
}

// Replies with `value` under the size protocol (size 0: just its length).
void reply_sized(fuse_req_t req, const char* value, size_t len, size_t size) {
  if (size == 0) fuse_reply_xattr(req, len);
  else if (len > size) fuse_reply_err(req, ERANGE);
  else fuse_reply_buf(req, value, len);
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  if (denied_at_barrier(req, ino)) return;
  if (os::is_marker_xattr(name)) return (void)fuse_reply_err(req, ENODATA);
  Node& node = node_of(req, ino);
  if (node.no_capability.load(std::memory_order_relaxed) && std::string_view(name) == kCapability)
    return (void)fuse_reply_err(req, ENODATA);
  std::string path = proc_path(node.fd());
  std::vector<char> buf(size ? size : 0);
  ssize_t n = ::getxattr(path.c_str(), name, size ? buf.data() : nullptr, size);
  if (n < 0) return (void)fuse_reply_err(req, errno);
  if (size == 0) return (void)fuse_reply_xattr(req, static_cast<size_t>(n));
  fuse_reply_buf(req, buf.data(), static_cast<size_t>(n));
}

// Lists names without the markers.
void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  if (denied_at_barrier(req, ino)) return;
  std::string path = proc_path(node_of(req, ino).fd());
  std::vector<char> names;
  for (;;) {
    ssize_t need = ::listxattr(path.c_str(), nullptr, 0);
    if (need < 0) return (void)fuse_reply_err(req, errno);
    names.resize(static_cast<size_t>(need));
    ssize_t n = ::listxattr(path.c_str(), names.data(), names.size());
    if (n >= 0) {
      names.resize(static_cast<size_t>(n));
      break;
    }
    if (errno != ERANGE) return (void)fuse_reply_err(req, errno);
  }
  std::string visible;
  for (size_t pos = 0; pos < names.size();) {
    std::string name(names.data() + pos);
    pos += name.size() + 1;
    if (!name.empty() && !os::is_marker_xattr(name)) visible.append(name).push_back('\0');
  }
  reply_sized(req, visible.data(), visible.size(), size);
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags) {
  if (refuse_barrier_change(req, ino)) return;
  if (os::is_marker_xattr(name)) return (void)fuse_reply_err(req, EPERM);
  Node& node = node_of(req, ino);
  if (int err = break_if_shared(state_of(req), node)) return (void)fuse_reply_err(req, err);
  if (std::string_view(name) == kCapability) node.no_capability.store(false, std::memory_order_relaxed);
  std::string path = proc_path(node.fd());
  if (::setxattr(path.c_str(), name, value, size, flags) != 0) return (void)fuse_reply_err(req, errno);
  // The daemon has CAP_FSETID, so the backing filesystem kept setgid; the caller's own call
  // would have cleared it (posix_acl_update_mode), and the kernel says so.
  if (setxattr_kills_sgid() && std::string_view(name) == "system.posix_acl_access") {
    struct stat st;
    if (::fstatat(node.fd(), "", &st, AT_EMPTY_PATH) == 0 && (st.st_mode & S_ISGID) &&
        ::chmod(path.c_str(), st.st_mode & 07777 & ~S_ISGID) != 0)
      return (void)fuse_reply_err(req, errno);
  }
  fuse_reply_err(req, 0);
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  if (refuse_barrier_change(req, ino)) return;
  if (os::is_marker_xattr(name)) return (void)fuse_reply_err(req, EPERM);
  Node& node = node_of(req, ino);
  if (int err = break_if_shared(state_of(req), node)) return (void)fuse_reply_err(req, err);
  int rc = ::removexattr(proc_path(node.fd()).c_str(), name);
  fuse_reply_err(req, rc != 0 ? errno : 0);
}

}  // namespace

void add_xattr_ops(fuse_lowlevel_ops& ops) {
  ops.getxattr = op_getxattr;
  ops.listxattr = op_listxattr;
  ops.setxattr = op_setxattr;
  ops.removexattr = op_removexattr;
}

}  // namespace vunify::fs

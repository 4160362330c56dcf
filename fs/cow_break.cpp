#include "fs/cow_break.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <atomic>
#include <cerrno>
#include <vector>

#include "os/copy.hpp"
#include "os/error.hpp"
#include "os/files.hpp"
#include "os/xattrs.hpp"
#include "unify/pool.hpp"

namespace vunify::fs {

namespace {

using os::throw_errno;
using os::unique_fd;

constexpr const char* kAccessAcl = "system.posix_acl_access";

// An anonymous private copy of the open shared file `src` in directory `dirfd`.
unique_fd make_private_copy(int src, int dirfd, off_t keep_bytes, const std::string& name) {
  struct stat st;
  if (::fstat(src, &st) != 0) throw_errno("stat", name);
  os::Xattrs xattrs = os::read_xattrs(src, name);  // markers excluded
  unique_fd copy(::openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!copy) throw_errno("create private copy of", name);
  // The new inode inherits the directory's default ACL, if any: the copy must carry exactly
  // the source's xattrs (write_xattrs sets the source's own access ACL).
  bool source_acl = std::any_of(xattrs.begin(), xattrs.end(), [](const os::Xattr& x) { return x.name == kAccessAcl; });
  if (!source_acl && ::fremovexattr(copy.get(), kAccessAcl) != 0 && errno != ENODATA && errno != EOPNOTSUPP)
    throw_errno("drop the inherited ACL of the private copy of", name);
  off_t size = std::min(st.st_size, keep_bytes);
  if (size > 0) os::copy_file_data(src, copy.get(), size, name);
  if (::ftruncate(copy.get(), size) != 0) throw_errno("truncate private copy of", name);
  os::copy_file_metadata(copy.get(), st, xattrs, name);
  if (::fsync(copy.get()) != 0) throw_errno("fsync private copy of", name);
  return copy;
}

// Renames the anonymous `copy` over `name` in `dirfd`, if `name` is still `node_fd`'s inode;
// keeps the directory's mtime (the guest did not change the directory). False if the name
// moved on (the copy then stays anonymous).
bool put_in_place(int copy, int dirfd, const std::string& name, int node_fd) {
  struct stat at_name, node_st;
  if (::fstatat(dirfd, name.c_str(), &at_name, AT_SYMLINK_NOFOLLOW) != 0 || ::fstat(node_fd, &node_st) != 0 ||
      at_name.st_ino != node_st.st_ino || at_name.st_dev != node_st.st_dev)
    return false;
  os::replace_by_link_keep_mtime(copy, dirfd, name, std::string(unify::kTempPrefix) + "cow.", name);
  return true;
}

// Points `name` in `dirfd` back at the object `object_fd` (undoing a partial group break),
// keeping the directory's mtime.
void put_back(int object_fd, int dirfd, const std::string& name) {
  os::replace_by_link_keep_mtime(object_fd, dirfd, name, std::string(unify::kTempPrefix), name);
}

// Breaks a path-keyed shared node: the private copy replaces its one guest path (if it still
// has one). Returns the copy.
unique_fd break_path(ViewState& vs, Node& node, off_t keep_bytes) {
  Node* parent = nullptr;
  std::string name;
  bool linked = vs.nodes.linked_path(node, parent, name);
  int dirfd = linked ? parent->fd() : vs.backing_root.get();
  if (!linked) name = "(unlinked file)";
  int src = reopen(node, O_RDONLY);
  if (src < 0) throw os::SysError(-src, "open", name);
  unique_fd src_fd(src);
  unique_fd copy = make_private_copy(src, dirfd, keep_bytes, name);
  if (linked) put_in_place(copy.get(), dirfd, name, node.fd());
  return copy;
}

// Breaks a link group's node: one private copy of all the bytes (whatever the change: so a
// crash leaves every member with the old bytes or a copy of them, which resolve_links at the
// next mount joins again), put in place of every member still linked to the object, then the
// group leaves the record. On failure the members already moved go back to the object.
unique_fd break_group(ViewState& vs, Node& node) {
  std::vector<LinkGroupTable::MemberRef> linked;
  struct stat obj;
  if (::fstat(node.fd(), &obj) != 0) throw_errno("stat", "link group object");
  for (auto& m : vs.groups.members(node.group)) {
    struct stat st;
    if (::fstatat(m.dir, m.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == obj.st_dev &&
        st.st_ino == obj.st_ino)
      linked.push_back(std::move(m));
  }
  int dirfd = linked.empty() ? vs.backing_root.get() : linked.front().dir;
  std::string name = linked.empty() ? "(unlinked file)" : linked.front().name;
  int src = reopen(node, O_RDONLY);
  if (src < 0) throw os::SysError(-src, "open", name);
  unique_fd src_fd(src);
  unique_fd copy = make_private_copy(src, dirfd, kKeepAll, name);
  size_t moved = 0;
  try {
    for (; moved < linked.size(); ++moved)
      if (!put_in_place(copy.get(), linked[moved].dir, linked[moved].name, node.fd()))
        throw os::SysError(EAGAIN, "break the link group of", linked[moved].name);
  } catch (...) {
    for (size_t i = 0; i < moved; ++i) {
      try {
        put_back(node.fd(), linked[i].dir, linked[i].name);
      } catch (const std::exception& e) {
        fuse_log(FUSE_LOG_ERR, "undoing a link group break failed (the next mount repairs it): %s\n", e.what());
      }
    }
    throw;
  }
  // The renames must be durable before the record forgets the group (a power loss must not
  // leave members split between the object and the copy with no record to join them again).
  // If they cannot be made so, the record keeps the group: resolve_links drops it at the next
  // mount, as it does if rewriting the record fails (no member links to the object any more).
  bool durable = true;
  for (const auto& m : linked) {
    unique_fd dir(::open(proc_path(m.dir).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    durable = durable && dir && ::fsync(dir.get()) == 0;
  }
  try {
    if (!durable) throw os::SysError(errno ? errno : EIO, "sync the directories of", name);
    vs.groups.drop(node.group);
  } catch (const std::exception& e) {
    fuse_log(FUSE_LOG_ERR, "dropping a broken link group from the record failed: %s\n", e.what());
  }
  return copy;
}

// Test hook (tests only, never set in production): with VUNIFY_TEST_BREAK_DELAY_MS=N in the
// daemon's environment every copy-on-write break first sleeps N ms, so a test can prove that a
// slow request does not hold up the others (fs/serve_loop.hpp).
void test_break_delay() {
  static const long delay_ms = [] {
    const char* env = std::getenv("VUNIFY_TEST_BREAK_DELAY_MS");
    return env ? std::strtol(env, nullptr, 10) : 0L;
  }();
  if (delay_ms > 0) ::usleep(static_cast<useconds_t>(delay_ms) * 1000);
}

}  // namespace

int break_shared_locked(ViewState& vs, Node& node, off_t keep_bytes) {
  if (!node.shared.load()) return 0;
  test_break_delay();
  try {
    unique_fd copy = node.group ? break_group(vs, node) : break_path(vs, node, keep_bytes);
    unique_fd path_fd(::open(proc_path(copy.get()).c_str(), O_PATH | O_CLOEXEC));
    struct stat st;
    if (!path_fd || ::fstat(path_fd.get(), &st) != 0) throw_errno("reopen private copy", "");
    node.replace_fd(path_fd.release());
    node.shared = false;
    if (node.backing_id) {
      // Open in passthrough mode on the object: the kernel inode cannot take another backing
      // file, so the path gets a fresh node (opens of this one answer ESTALE: see ops_file).
      node.backing_stale = true;
      vs.nodes.detach(node);
    } else {
      vs.nodes.rekey_private(node, st);
    }
    ++node.epoch;
    node.stale_opens = node.nopen;
    node.cache_stale = true;
    return 0;
  } catch (const os::SysError& e) {
    fuse_log(FUSE_LOG_ERR, "copy-on-write break failed: %s\n", e.what());
    return e.err() ? e.err() : EIO;
  } catch (const std::exception& e) {
    fuse_log(FUSE_LOG_ERR, "copy-on-write break failed: %s\n", e.what());
    return EIO;
  }
}

int break_if_shared(ViewState& vs, Node& node, off_t keep_bytes) {
  if (!node.shared.load()) return 0;
  std::lock_guard lock(node.mu);
  return break_shared_locked(vs, node, keep_bytes);
}

}  // namespace vunify::fs

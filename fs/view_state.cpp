#include "fs/view_state.hpp"

#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "os/error.hpp"
#include "unify/pool.hpp"

namespace vunify::fs {

namespace {

// A plain (not O_PATH) fd of the directory `path_fd`: open_by_handle_at refuses O_PATH fds.
os::unique_fd plain_dir_fd(int path_fd) {
  os::unique_fd fd(::openat(path_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) os::throw_errno("open", "the guest tree");
  return fd;
}

}  // namespace

ViewState::ViewState(os::unique_fd backing_root_fd, os::unique_fd barrier_fd, const struct stat& barrier_st, int dev_fd,
                     bool passthrough_wanted, unify::ObjectSet store_objects, const std::string& guest,
                     const unify::GuestLinks& links, os::unique_fd links_dir)
    : backing_root(std::move(backing_root_fd)),
      barrier(barrier_fd.release(), barrier_st, false, child_path_hash(0, guest)),  // inos differ per guest
      barrier_attr(barrier_st),
      passthrough(dev_fd, passthrough_wanted),
      objects(std::move(store_objects)),
      groups(links.empty() ? -1 : plain_dir_fd(backing_root.get()).get(), links, objects, std::move(links_dir), guest) {
  barrier_attr.st_ino = FUSE_ROOT_ID;
}

Node& node_of(fuse_req_t req, fuse_ino_t ino) {
  if (is_barrier(ino)) return state_of(req).barrier;
  return *reinterpret_cast<Node*>(ino);
}

std::string proc_path(int fd) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "/proc/self/fd/%d", fd);
  return buf;
}

bool is_store_object(const ViewState& vs, const struct stat& st) {
  return S_ISREG(st.st_mode) && vs.objects.contains(st);
}

namespace {

// What the guest sees of `node` whose backing stat is `st`.
void show(ViewState& vs, const Node& node, struct stat& st) {
  st.st_ino = node.shown_ino;
  if (node.shared.load(std::memory_order_relaxed)) st.st_nlink = node.group ? vs.groups.nlink(node.group) : 1;
}

}  // namespace

int node_attr(ViewState& vs, Node& node, struct stat& st) {
  if (::fstatat(node.fd(), "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return errno;
  show(vs, node, st);
  return 0;
}

uint64_t group_of_entry(ViewState& vs, Node& parent, const char* name, const struct stat& st) {
  if (!vs.groups.may_be_member(name) || !is_store_object(vs, st)) return 0;
  struct stat dir_st;
  if (::fstat(parent.fd(), &dir_st) != 0) return 0;
  return vs.groups.find(dir_st, name, st).value_or(0);
}

int reopen(const Node& node, int flags) {
  flags &= ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW);
  int fd = ::open(proc_path(node.fd()).c_str(), flags | O_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

int lookup_entry(fuse_req_t req, Node& parent, const char* name, fuse_entry_param& e) {
  int fd = ::openat(parent.fd(), name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno;
  return entry_of(req, parent, name, os::unique_fd(fd), e);
}

int entry_of(fuse_req_t req, Node& parent, const char* name, os::unique_fd path_fd, fuse_entry_param& e) {
  ViewState& vs = state_of(req);
  e = fuse_entry_param{};
  int fd = path_fd.get();
  struct stat st;
  if (::fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return errno;
  if (S_ISBLK(st.st_mode) && vs.refuse_block_devices) return EACCES;
  bool shared = is_store_object(vs, st);
  uint64_t group = shared ? group_of_entry(vs, parent, name, st) : 0;
  Node* node = vs.nodes.lookup(parent, name, std::move(path_fd), st, shared, group);
  e.attr = st;
  show(vs, *node, e.attr);
  e.ino = node_id(node);
  e.attr_timeout = vs.timeout;
  e.entry_timeout = vs.timeout;
  return 0;
}

}  // namespace vunify::fs

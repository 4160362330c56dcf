// Names: lookup, forget, creating and removing entries, link, rename.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fs/view_state.hpp"
#include "fs/cow_break.hpp"
#include "fs/creds.hpp"
#include "fs/ops.hpp"

namespace vunify::fs {

namespace {

void reply_entry_or_err(fuse_req_t req, Node& parent, const char* name) {
  fuse_entry_param e;
  int err = lookup_entry(req, parent, name, e);
  if (err) fuse_reply_err(req, err);
  else fuse_reply_entry(req, &e);
}

// Breaks the link group that entry `name` of `dir` belongs to, if any, before a namespace
// change of that entry (unlink, rename from or over it): the other members then are the
// guest's own hard links to the private copy, and the change has exactly the guest's semantics.
int break_group_member(fuse_req_t req, Node& dir, const char* name) {
  ViewState& vs = state_of(req);
  if (!vs.groups.may_be_member(name)) return 0;
  fuse_entry_param e;
  if (lookup_entry(req, dir, name, e) != 0) return 0;  // the change itself reports the error
  Node* node = reinterpret_cast<Node*>(e.ino);
  int err = node->group ? break_if_shared(vs, *node) : 0;
  vs.nodes.forget(node, 1);
  return err;
}

// The barrier's one child: the guest root, never cached, host callers only.
void lookup_guest_root(fuse_req_t req, const char* name) {
  ViewState& vs = state_of(req);
  if (std::strcmp(name, kRootEntry) != 0) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  if (!vs.host_only.admits(req)) {
    fuse_reply_err(req, EACCES);
    return;
  }
  int fd = ::openat(vs.backing_root.get(), ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    fuse_reply_err(req, errno);
    if (fd >= 0) ::close(fd);
    return;
  }
  Node* node = vs.nodes.lookup(vs.barrier, name, os::unique_fd(fd), st, false);
  fuse_entry_param e{};
  e.ino = node_id(node);
  e.attr = st;
  e.attr.st_ino = node->shown_ino;
  e.attr_timeout = vs.timeout;
  e.entry_timeout = 0;
  fuse_reply_entry(req, &e);
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (is_barrier(parent)) return lookup_guest_root(req, name);
  fuse_entry_param e;
  int err = lookup_entry(req, node_of(req, parent), name, e);
  if (err == ENOENT) {  // a negative entry the kernel may cache
    e = fuse_entry_param{};
    e.entry_timeout = state_of(req).timeout;
    fuse_reply_entry(req, &e);
  } else if (err) {
    fuse_reply_err(req, err);
  } else {
    fuse_reply_entry(req, &e);
  }
}

void forget_one(fuse_req_t req, fuse_ino_t ino, uint64_t n) {
  if (!is_barrier(ino)) state_of(req).nodes.forget(&node_of(req, ino), n);
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n) {
  forget_one(req, ino, n);
  fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; ++i) forget_one(req, forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  if (refuse_barrier_change(req, parent)) return;
  if (S_ISBLK(mode) && state_of(req).refuse_block_devices) return (void)fuse_reply_err(req, EPERM);
  Node& dir = node_of(req, parent);
  int rc;
  {
    CallerCreds creds(req);
    rc = ::mknodat(dir.fd(), name, creds.mode(mode), rdev);
  }
  if (rc != 0) return (void)fuse_reply_err(req, errno);
  reply_entry_or_err(req, dir, name);
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  if (refuse_barrier_change(req, parent)) return;
  Node& dir = node_of(req, parent);
  int rc;
  {
    CallerCreds creds(req);
    rc = ::mkdirat(dir.fd(), name, creds.mode(mode));
  }
  if (rc != 0) return (void)fuse_reply_err(req, errno);
  reply_entry_or_err(req, dir, name);
}

void op_symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  if (refuse_barrier_change(req, parent)) return;
  Node& dir = node_of(req, parent);
  int rc;
  {
    CallerCreds creds(req);
    rc = ::symlinkat(target, dir.fd(), name);
  }
  if (rc != 0) return (void)fuse_reply_err(req, errno);
  reply_entry_or_err(req, dir, name);
}

// A new guest link to a shared file must not link the store object: break first.
void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t new_parent, const char* new_name) {
  if (refuse_barrier_change(req, ino) || refuse_barrier_change(req, new_parent)) return;
  ViewState& vs = state_of(req);
  Node& node = node_of(req, ino);
  Node& dir = node_of(req, new_parent);
  if (int err = break_if_shared(vs, node)) return (void)fuse_reply_err(req, err);
  if (::linkat(node.fd(), "", dir.fd(), new_name, AT_EMPTY_PATH) != 0) return (void)fuse_reply_err(req, errno);
  reply_entry_or_err(req, dir, new_name);
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (refuse_barrier_change(req, parent)) return;
  Node& dir = node_of(req, parent);
  if (int err = break_group_member(req, dir, name)) return (void)fuse_reply_err(req, err);
  if (::unlinkat(dir.fd(), name, 0) != 0) return (void)fuse_reply_err(req, errno);
  state_of(req).nodes.unlinked(dir, name);
  fuse_reply_err(req, 0);
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (refuse_barrier_change(req, parent)) return;
  Node& dir = node_of(req, parent);
  fuse_reply_err(req, ::unlinkat(dir.fd(), name, AT_REMOVEDIR) != 0 ? errno : 0);
}

// Renaming over a shared file drops the guest's link to the object; the object is unchanged.
// Link group members on either side are broken first.
void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent, const char* new_name,
               unsigned int flags) {
  if (refuse_barrier_change(req, parent) || refuse_barrier_change(req, new_parent)) return;
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) return (void)fuse_reply_err(req, EINVAL);
  Node& from = node_of(req, parent);
  Node& to = node_of(req, new_parent);
  if (int err = break_group_member(req, from, name)) return (void)fuse_reply_err(req, err);
  if (int err = break_group_member(req, to, new_name)) return (void)fuse_reply_err(req, err);
  if (::renameat2(from.fd(), name, to.fd(), new_name, flags) != 0) return (void)fuse_reply_err(req, errno);
  state_of(req).nodes.renamed(from, name, to, new_name, flags & RENAME_EXCHANGE);
  fuse_reply_err(req, 0);
}

}  // namespace

bool refuse_barrier_change(fuse_req_t req, fuse_ino_t ino) {
  if (!is_barrier(ino)) return false;
  fuse_reply_err(req, state_of(req).host_only.admits(req) ? EPERM : EACCES);
  return true;
}

void add_entry_ops(fuse_lowlevel_ops& ops) {
  ops.lookup = op_lookup;
  ops.forget = op_forget;
  ops.forget_multi = op_forget_multi;
  ops.mknod = op_mknod;
  ops.mkdir = op_mkdir;
  ops.symlink = op_symlink;
  ops.link = op_link;
  ops.unlink = op_unlink;
  ops.rmdir = op_rmdir;
  ops.rename = op_rename;
}

}  // namespace vunify::fs

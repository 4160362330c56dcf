// The state of one mounted guest view (the FUSE session's userdata) that every operation works
// with. ("Context" means the context runtime in context/, not this.)
#pragma once
#include <sys/stat.h>

#include <optional>
#include <string>

#include "fs/barrier.hpp"
#include "fs/fuse.hpp"
#include "fs/link_group_table.hpp"
#include "fs/node_table.hpp"
#include "fs/passthrough.hpp"
#include "fs/protocol_hooks.hpp"
#include "os/unique_fd.hpp"
#include "unify/link_groups.hpp"
#include "unify/object_set.hpp"

namespace vunify::fs {

struct ViewState {
  ViewState(os::unique_fd backing_root_fd, os::unique_fd barrier_fd, const struct stat& barrier_st, int dev_fd,
            bool passthrough_wanted, unify::ObjectSet store_objects, const std::string& guest,
            const unify::GuestLinks& links, os::unique_fd links_dir);

  os::unique_fd backing_root;  // O_PATH fd of backing/NAME: the guest root
  Node barrier;                // node 1: the mount root guests/NAME
  struct stat barrier_attr;    // what host callers see of it
  Barrier host_only;
  NodeTable nodes;
  Passthrough passthrough;
  ProtocolState protocol;
  const unify::ObjectSet objects;  // inodes of store objects (loaded at mount)
  LinkGroupTable groups;           // the guest's link groups (POOL/links/NAME)
  double timeout = 86400.0;    // the daemon is the only writer of the backing tree
  // A view mounted without nodev (--dev) still refuses block device nodes (lookup EACCES,
  // mknod EPERM) unless --allow-block-devices: the kernel opens a device node itself, never
  // asking the daemon, so a guest root could otherwise open the pool's disk beneath the store.
  bool refuse_block_devices = false;
};

inline ViewState& state_of(fuse_req_t req) { return *static_cast<ViewState*>(fuse_req_userdata(req)); }
Node& node_of(fuse_req_t req, fuse_ino_t ino);
inline bool is_barrier(fuse_ino_t ino) { return ino == FUSE_ROOT_ID; }

// The attributes the guest sees for a node: backing stat, with the node's own st_ino and,
// for shared files, st_nlink 1 (the store's link is not the guest's), or for a link group the
// number of its paths. Returns errno or 0.
int node_attr(ViewState& vs, Node& node, struct stat& st);
// Reopens a node's O_PATH fd with `flags` (never following a final symlink).
int reopen(const Node& node, int flags);
// "/proc/self/fd/N" for a node's fd (for calls with no fd-based variant).
std::string proc_path(int fd);
// Looks up `name` in `parent` and fills the entry (counting a kernel lookup). Returns errno or 0.
int lookup_entry(fuse_req_t req, Node& parent, const char* name, fuse_entry_param& e);
// The same for the inode `path_fd` (O_PATH) already opened as entry `name` of `parent`.
int entry_of(fuse_req_t req, Node& parent, const char* name, os::unique_fd path_fd, fuse_entry_param& e);
// True if the backing inode `st` is a store object (shared: modifying it must break first).
bool is_store_object(const ViewState& vs, const struct stat& st);
// The link group whose member is entry `name` of `parent`, now the shared inode `st`; 0 if none.
uint64_t group_of_entry(ViewState& vs, Node& parent, const char* name, const struct stat& st);

}  // namespace vunify::fs

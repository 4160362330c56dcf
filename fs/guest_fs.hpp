// Serving one guest's view: the FUSE session, its operation table and the mount.
#pragma once
#include <functional>
#include <set>
#include <string>

#include "unify/link_groups.hpp"
#include "unify/object_set.hpp"

namespace vunify::fs {

struct ViewConfig {
  std::string guest;         // guest name (for messages and the mount source)
  std::string backing_path;  // POOL/backing/NAME: the guest's real tree
  std::string mountpoint;    // POOL/guests/NAME: the barrier directory
  bool passthrough = true;   // use kernel passthrough when the kernel offers it
  bool allow_devices = false;  // mount without nodev
  unify::ObjectSet objects;    // store membership: a backing file is shared iff its inode is here
  std::string links_dir;       // POOL/links: the daemon rewrites links/NAME when a group breaks
  unify::GuestLinks links;     // the guest's link groups (repaired by resolve_links at mount)
  bool allow_block_devices = false;  // with allow_devices: block device nodes too (else EACCES)
  std::set<int> cpus;                // the daemon's threads run only on these CPUs (empty: anywhere)
  int threads = 8;                   // worker threads at most (idle ones are kept)
};

// Mounts the view and serves it until it is unmounted or the daemon gets SIGTERM/SIGINT/SIGHUP.
// `ready` is called once the mount is in place (with "" on success; on failure with the error
// message, and serve then throws). Returns the session loop's status.
int serve_view(const ViewConfig& config, const std::function<void(const std::string& error)>& ready);

}  // namespace vunify::fs

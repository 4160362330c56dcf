// The guest's mount tree, built in its own mount namespace before pivot_root: the view's guest
// root bound as the new root, fresh proc, read-only sys with the guest's cgroups, a minimal
// /dev (devices.cpp), masked and read-only /proc paths, tmpfs for systemd. Every target is
// resolved beneath the root without following symlinks (a guest's symlink cannot redirect a
// mount onto the host) and mounted through its /proc/self/fd path.
#pragma once
#include <string>
#include <vector>

#include "context/cgroup.hpp"
#include "os/unique_fd.hpp"

namespace vunify::context {

struct RootPlan {
  // The guest root: a detached copy (open_tree) of POOL/guests/NAME/root made in the host's
  // namespaces (the view's barrier refuses lookups from a guest's pid namespace), attached in
  // the context's mount namespace on `attach_at`, a host directory.
  int tree_fd = -1;
  std::string attach_at;
  bool systemd = false;
  std::vector<CgroupDir> cgroups;
};

// In the host's namespaces: the detached copy of the guest root at `root` for RootPlan.
os::unique_fd clone_root(const std::string& root);

// Makes every mount a slave (nothing propagates back to the host), attaches the root and
// mounts the rest beneath it. Returns an fd of the new root. Throws SysError.
os::unique_fd prepare_root(const RootPlan& plan);

// pivot_root into `root_fd` and detach the old root.
void enter_root(int root_fd);

// Mount helpers shared with devices.cpp and console.cpp. `rel` is relative to `root_fd`.
// Opens `rel` (O_PATH, no symlinks, beneath root_fd); creates it (directory, or empty file if
// `file`) when missing.
os::unique_fd open_target(int root_fd, const std::string& rel, bool create = true, bool file = false);
void mount_at(int root_fd, const std::string& rel, const char* source, const char* type, unsigned long flags,
              const char* data = nullptr, bool file = false);
void bind_at(int root_fd, const std::string& rel, const std::string& source, bool file = false);
void remount_read_only(int root_fd, const std::string& rel, unsigned long flags = 0);
std::string fd_link(int fd);  // "/proc/self/fd/N"

}  // namespace vunify::context

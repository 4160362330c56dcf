// `vunify mount` / `vunify umount`: one view daemon per guest, started outside any guest
// namespace, logging to POOL/log/NAME.log; stale mounts of dead daemons are cleaned up.
#pragma once
#include <string>
#include <vector>

namespace vunify::fs {

struct MountOptions {
  bool foreground = false;     // serve in this process (debugging), logging to stderr
  bool passthrough = true;     // --no-passthrough turns kernel passthrough off
  bool allow_devices = false;  // mount without nodev
  bool allow_block_devices = false;  // and serve block device nodes (a guest could write a disk)
  std::string cpus;            // --cpus LIST: pin the daemons' threads (overrides [view] cpus; "" none)
  int threads = 0;             // --threads N: worker threads (overrides [view] threads; 0 none)
  std::vector<std::string> given;  // options given on the command line (named when not applied)
};

enum class MountState { NotMounted, Live, Stopped, Stale };
// Whether POOL/guests/NAME is a live view, a view whose daemon is stopped (SIGSTOP), the mount
// of a dead daemon (ENOTCONN), or neither; never a system call into the view
// (os/view_probe.hpp), so a stopped daemon never makes the caller hang.
MountState mount_state(const std::string& mountpoint);

// Mounts each guest (all guests if `names` is empty and `all`); prints one line per guest.
// Returns once every mount is live. Throws UserError for unknown guests or a failed daemon,
// and (after mounting the others) when `options.given` could not be applied to a guest that
// was already mounted.
void mount_guests(const std::string& pool_root, std::vector<std::string> names, bool all, const MountOptions& options);

// Unmounts each guest (stale mounts lazily). With `lazy`, a busy mount is detached.
void umount_guests(const std::string& pool_root, std::vector<std::string> names, bool all, bool lazy);

}  // namespace vunify::fs

// Tearing a context down: whatever is left in its cgroups is killed, the cgroups removed, the
// view unmounted if start mounted it, and the state removed last.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

#include "context/holder_protocol.hpp"
#include "context/launch.hpp"
#include "context/watchdog.hpp"
#include "fs/mount_control.hpp"

namespace vunify::context {

bool cleanup(const std::string& pool, const std::string& guest, const RunState& state) {
  GuestCgroups cgroups(state.cgroups);
  // Usually PID 1 took every process with it: the cgroups go at the first try. Only when one
  // stays busy is what is left in them looked for and killed.
  bool cgroups_gone = cgroups.remove();
  if (!cgroups_gone) {
    for (int i = 0; i < 500 && !cgroups.pids().empty(); ++i) {  // up to ~10 s
      cgroups.kill_all();
      ::usleep(20000);
    }
  }
  bool removed = teardown_network(state.network);
  for (int i = 0; i < 100 && !cgroups_gone && !(cgroups_gone = cgroups.remove()); ++i) ::usleep(20000);
  // The view daemon back where it was before it is unmounted (or stays mounted), then its cgroup.
  removed = release_view(state.view) && cgroups_gone && removed;
  if (state.mounted_view) {
    try {
      fs::umount_guests(pool, {guest}, false, false);
    } catch (const std::exception& e) {
      fmt::print(stderr, "vunify: unmounting the view of {}: {}; detaching it\n", guest, e.what());
      try {
        fs::umount_guests(pool, {guest}, false, true);
      } catch (const std::exception& e2) {
        fmt::print(stderr, "vunify: {}\n", e2.what());
      }
    }
  }
  remove_memory_events(pool, guest);
  ::unlink(holder_socket_path(pool, guest).c_str());
  remove_state(pool, guest);
  std::fflush(stdout);
  return removed;
}

}  // namespace vunify::context

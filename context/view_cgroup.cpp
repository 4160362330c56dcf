#include "context/view_cgroup.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "context/state.hpp"
#include "os/error.hpp"
#include "os/unique_fd.hpp"

namespace vunify::context {

namespace {

// The pid the view daemon of `guest` recorded (0 if none).
pid_t recorded_daemon(const std::string& pool_root, const std::string& guest) {
  std::ifstream in(pool_root + "/log/" + guest + ".pid");
  pid_t pid = 0;
  return in >> pid && pid > 1 ? pid : 0;
}

// Writes `pid` to DIR/cgroup.procs; false if DIR is gone or refuses it.
bool move_to(const std::string& dir, pid_t pid) {
  os::unique_fd fd(::open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
  std::string text = std::to_string(pid);
  return fd && ::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size());
}

void move_back(const ViewAccount& v) {
  for (size_t i = 0; i < v.cgroups.size() && i < v.origin.size(); ++i) {
    if (move_to(v.origin[i], v.daemon)) continue;
    // Where it was is gone (a transient scope of the command that mounted it): the directory
    // vunify/ is in, the supervisor's own cgroup.
    const std::string& dir = v.cgroups[i].dir;
    std::string vunify_dir = dir.substr(0, dir.rfind('/'));
    move_to(vunify_dir.substr(0, vunify_dir.rfind('/')), v.daemon);
  }
}

}  // namespace

ViewAccount account_view(const std::string& pool_root, const std::string& guest) {
  ViewAccount v;
  pid_t pid = recorded_daemon(pool_root, guest);
  uint64_t start = pid ? start_time(pid) : 0;
  if (!start) return v;
  GuestCgroups made = GuestCgroups::create_view(guest);
  v.cgroups = made.dirs();
  for (const auto& d : v.cgroups) v.origin.push_back(cgroup_of(pid, d));
  v.daemon = pid;
  v.daemon_start = start;
  try {
    // Checked after its cgroups were read: still the process that wrote the pid file.
    if (start_time(pid) != start) throw os::SysError(ESRCH, "move the view daemon into", v.cgroups.at(0).dir);
    for (const auto& d : v.cgroups)
      if (!move_to(d.dir, pid)) os::throw_errno("move the view daemon into", d.dir);
  } catch (...) {
    move_back(v);
    made.remove();
    throw;
  }
  return v;
}

bool release_view(const ViewAccount& v) {
  if (v.daemon && start_time(v.daemon) == v.daemon_start) move_back(v);
  GuestCgroups cgroups(v.cgroups);
  bool removed = false;
  for (int i = 0; i < 100 && !(removed = cgroups.remove()); ++i) ::usleep(20000);
  return removed;
}

}  // namespace vunify::context

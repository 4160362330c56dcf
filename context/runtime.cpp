// start / stop / restart orchestration (the supervisor and PID 1 are in launch.cpp, pid1.cpp).
#include "context/runtime.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

#include "context/config.hpp"
#include "context/launch.hpp"
#include "context/limit_target.hpp"
#include "context/limits_config.hpp"
#include "context/state.hpp"
#include "fs/mount_control.hpp"
#include "os/error.hpp"
#include "os/files.hpp"
#include "unify/pool.hpp"

namespace vunify::context {

namespace {

using os::UserError;

// The host path `path` leads to inside the guest root (symlinks resolved within it), if it is an
// executable regular file.
std::string resolve_in_guest(const std::string& root, const std::string& path) {
  os::unique_fd rootfd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!rootfd) os::throw_errno("open the guest root", root);
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  os::unique_fd fd(static_cast<int>(::syscall(SYS_openat2, rootfd.get(), path.c_str(), &how, sizeof how)));
  struct stat st;
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || !(st.st_mode & 0111)) return "";
  return os::fd_path(fd.get());
}

// Waits up to `ms` for the process behind `pidfd` to exit; true if it did.
bool wait_exit(int pidfd, int ms) {
  pollfd p{pidfd, POLLIN, 0};
  int rc;
  do rc = ::poll(&p, 1, ms);
  while (rc < 0 && errno == EINTR);
  return rc > 0;
}

// PID 1's pidfd if the recorded context still runs.
os::unique_fd live_pid1(const RunState& s) { return open_live(s.pid1, s.pid1_start); }

// A context whose PID 1 is gone: waits for its supervisor's cleanup, or cleans up itself.
void finish_stale(const std::string& pool_root, const std::string& guest, const RunState& s) {
  if (auto sup = open_live(s.supervisor, s.supervisor_start)) wait_exit(sup.get(), 30000);
  if (read_state(pool_root, guest)) cleanup(pool_root, guest, s);
}

Launch plan_launch(const std::string& pool_root, const std::string& guest, const std::vector<std::string>& command,
                   const ContextConfig& cfg) {
  Launch l;
  l.pool = pool_root;
  l.guest = guest;
  l.root = pool_root + "/guests/" + guest + "/root";
  l.hostname = cfg.hostname.empty() ? guest : cfg.hostname;
  l.console_log = pool_root + "/log/" + guest + ".console";
  l.security = prepare_security(cfg.profile());
  l.network = cfg.network;
  if (!command.empty()) {
    l.own_init = true;
    l.argv = command;
  } else {
    std::string init = cfg.init.empty() ? "/sbin/init" : cfg.init;
    std::string host_path = resolve_in_guest(l.root, init);
    if (!host_path.empty()) {
      l.argv = {init};
      l.systemd = host_path.substr(host_path.rfind('/') + 1) == "systemd";
    } else if (!cfg.init.empty()) {
      throw UserError(fmt::format("guest {}: its init {} is not an executable file in the guest", guest, init));
    } else {
      l.own_init = true;  // no init: vunify's keeps the context alive
    }
  }
  l.stop_signal = cfg.stop_signal.value_or(l.systemd ? SIGRTMIN + 3 : SIGTERM);
  return l;
}

// `view_live`: the view was mounted and served when start looked (before the lock).
void start_locked(const std::string& pool_root, const std::string& guest, const std::vector<std::string>& command,
                  bool view_live) {
  if (auto s = read_state(pool_root, guest)) {
    if (live_pid1(*s))
      throw UserError(fmt::format("guest {} is already running (PID 1 is host pid {}); stop it first with 'vunify stop {}'",
                                  guest, s->pid1, guest));
    finish_stale(pool_root, guest, *s);
  }
  ContextConfig cfg = load_config(pool_root, guest);
  Limits limits = load_limits(pool_root, guest);
  cfg.network.rate_out = rate_of(limits, "net.rate_out");  // the network is set up with its rates
  cfg.network.rate_in = rate_of(limits, "net.rate_in");
  check_network(cfg.network, config_path(pool_root, guest));
  std::string view = pool_root + "/guests/" + guest;
  bool mounted = false;
  if (!view_live && fs::mount_state(view) != fs::MountState::Live) {
    fs::mount_guests(pool_root, {guest}, false, fs::MountOptions{});
    mounted = true;
  }
  std::vector<CgroupDir> cgroups;
  ViewAccount accounted;
  try {
    Launch l = plan_launch(pool_root, guest, command, cfg);
    l.mounted_view = mounted;
    l.cgroups = GuestCgroups::create(guest).dirs();
    cgroups = l.cgroups;
    l.view = accounted = account_view(pool_root, guest);
    apply_limits(LimitTarget{pool_root, guest, l.cgroups, l.view.cgroups}, limits);  // before PID 1 exists
    l.limits = limits;
    pid_t pid1 = launch(l);
    fmt::print("guest {} started (PID 1: {}, host pid {})\n", guest, l.own_init ? "vunify-init" : l.argv[0], pid1);
  } catch (...) {
    GuestCgroups(cgroups).remove();
    release_view(accounted);
    if (mounted) fs::umount_guests(pool_root, {guest}, false, true);
    throw;
  }
}

std::vector<std::string> all_guests(const std::string& pool_root) {
  unify::Pool pool(pool_root, unify::Access::Read);
  return pool.guest_names();
}

}  // namespace

void check_guest(const std::string& pool_root, const std::string& guest) {
  unify::Pool::check_name(guest, "guest");
  unify::Pool pool(pool_root, unify::Access::Read);
  if (!pool.has_guest(guest)) throw os::UserError(fmt::format("no guest named '{}' in pool {}", guest, pool_root));
}

void start(const std::string& pool_root, const std::string& guest, const std::vector<std::string>& command) {
  // A live view proves the guest exists (it was in the index when mounted, and 'guest rm'
  // refuses a mounted guest): the pool's index is opened only when the view is not mounted
  // (mounting it opens the index anyway).
  unify::Pool::check_name(guest, "guest");
  bool view_live = fs::mount_state(pool_root + "/guests/" + guest) == fs::MountState::Live;
  if (!view_live) check_guest(pool_root, guest);
  GuestLock lock(pool_root, guest);
  start_locked(pool_root, guest, command, view_live);
}

void start_all(const std::string& pool_root) {
  int failed = 0;
  for (const auto& guest : all_guests(pool_root)) {
    try {
      if (!load_config(pool_root, guest).autostart || is_running(pool_root, guest)) continue;
      start(pool_root, guest, {});
    } catch (const std::exception& e) {
      fmt::print(stderr, "vunify: {}\n", e.what());
      ++failed;
    }
  }
  if (failed) throw UserError(fmt::format("{} autostart guest(s) did not start", failed));
}

void stop(const std::string& pool_root, const std::string& guest, int timeout_s) {
  check_guest(pool_root, guest);
  GuestLock lock(pool_root, guest);
  auto s = read_state(pool_root, guest);
  os::unique_fd pid1 = s ? live_pid1(*s) : os::unique_fd();
  if (!pid1) {
    if (s) finish_stale(pool_root, guest, *s);
    throw UserError(fmt::format("guest {} is not running", guest));
  }
  ::syscall(SYS_pidfd_send_signal, pid1.get(), s->stop_signal, nullptr, 0);
  if (!wait_exit(pid1.get(), timeout_s * 1000)) {
    fmt::print(stderr, "vunify: guest {} did not stop within {} s after {}; killing it\n", guest, timeout_s,
               signal_name(s->stop_signal));
    GuestCgroups(s->cgroups).kill_all();
    ::syscall(SYS_pidfd_send_signal, pid1.get(), SIGKILL, nullptr, 0);
    wait_exit(pid1.get(), 10000);
  }
  finish_stale(pool_root, guest, *s);
  fmt::print("guest {} stopped\n", guest);
}

void stop_all(const std::string& pool_root, int timeout_s) {
  for (const auto& guest : all_guests(pool_root))
    if (is_running(pool_root, guest)) stop(pool_root, guest, timeout_s);
}

bool is_running(const std::string& pool_root, const std::string& guest) {
  auto s = read_state(pool_root, guest);
  return s && live_pid1(*s);
}

void refuse_if_running(const std::string& pool_root, const std::vector<std::string>& guests, bool all,
                       const std::string& action) {
  for (const auto& guest : all ? all_guests(pool_root) : guests) {
    unify::Pool::check_name(guest, "guest");
    if (is_running(pool_root, guest))
      throw UserError(fmt::format("guest {} is running; stop it first with 'vunify stop {}' before {}", guest, guest, action));
  }
}

}  // namespace vunify::context

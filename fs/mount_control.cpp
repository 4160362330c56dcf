#include "fs/mount_control.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "fs/guest_fs.hpp"
#include "fs/view_settings.hpp"
#include "os/error.hpp"
#include "os/view_probe.hpp"
#include "unify/link_groups.hpp"
#include "unify/object_set.hpp"
#include "unify/pool.hpp"

namespace vunify::fs {

namespace {

using os::throw_errno;
using os::UserError;

struct Plan {
  std::string name;
  ViewConfig view;
  std::string log_path;
  std::string pid_path;  // the daemon's pid while it serves
};

// Resolves names against the pool (whose lock the caller holds).
std::vector<std::string> resolve_names(unify::Pool& pool, std::vector<std::string> names, bool all) {
  if (all) return pool.guest_names();
  if (names.empty()) throw UserError("name the guests to act on, or use --all");
  for (const auto& n : names) {
    unify::Pool::check_name(n, "guest");
    if (!pool.has_guest(n)) throw UserError(fmt::format("no guest named '{}' in pool {}", n, pool.root()));
  }
  return names;
}

// True if any of `names` has a link-group record: mounting it repairs the record first
// (resolve_links), which needs the pool's write lock.
bool any_link_record(const unify::Pool& pool, const std::vector<std::string>& names) {
  for (const auto& n : names)
    if (::faccessat(pool.fd(), ("links/" + n).c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0) return true;
  return false;
}

// The link groups the view of `name` serves. With the write lock held (`repair`), first
// finishes groups a crash left halfway (resolve_links); the guest is not mounted.
unify::GuestLinks guest_links(unify::Pool& pool, const std::string& name, const unify::ObjectSet& objects, bool repair) {
  if (repair) {
    unify::LinkRepair r = unify::resolve_links(pool, name, objects);
    if (r.relinked || r.dropped)
      fmt::print("guest {}: repaired link groups ({} kept, {} dropped, {} paths relinked)\n", name, r.kept, r.dropped,
                 r.relinked);
  }
  if (::faccessat(pool.fd(), ("links/" + name).c_str(), F_OK, AT_SYMLINK_NOFOLLOW) != 0) return {};
  return unify::read_links(unify::open_links_dir(pool).get(), name);
}

void detach(const std::string& mountpoint) {
  if (::umount2(mountpoint.c_str(), MNT_DETACH) != 0 && errno != EINVAL) throw_errno("unmount", mountpoint);
}

void detach_or_unmount(const std::string& mnt, bool lazy, const std::string& name) {
  if (::umount2(mnt.c_str(), lazy ? MNT_DETACH : 0) != 0) {
    if (errno == EBUSY)
      throw UserError(fmt::format("guest {} is busy (processes use its view); stop them or use --lazy", name));
    throw_errno("unmount", mnt);
  }
}

// Writes the daemon's first words (empty: mounted) to the pipe and closes it.
void report_ready(int fd, const std::string& error) {
  std::string msg = error.empty() ? "ok" : error;
  ssize_t ignored = ::write(fd, msg.data(), msg.size());
  (void)ignored;
  ::close(fd);
}

void write_pid_file(const std::string& path) {
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) return;
  std::fputs(os::pid_file_line().c_str(), f);
  std::fclose(f);
  ::rename(tmp.c_str(), path.c_str());
}

// Waits (up to ~3 s) for the daemon named in `pid_path` to finish after its unmount: it
// removes its pid file as its last step (a dead daemon never reaped still answers kill 0).
void wait_for_daemon_exit(const std::string& pid_path) {
  FILE* f = std::fopen(pid_path.c_str(), "r");
  if (!f) return;
  int pid = 0;
  bool have = std::fscanf(f, "%d", &pid) == 1 && pid > 1;
  std::fclose(f);
  for (int i = 0; have && i < 300 && ::kill(pid, 0) == 0 && ::access(pid_path.c_str(), F_OK) == 0; ++i) ::usleep(10000);
}

// Test hook (tests only, never set in production): with VUNIFY_TEST_MOUNT_GATE=PATH in its
// environment, a view daemon waits before mounting until PATH exists (up to 60 s), so a test
// can hold it in the gap between `mount` loading the store's object list and the view
// serving, and prove that no pool-changing command gets into that gap.
void test_mount_gate() {
  const char* gate = std::getenv("VUNIFY_TEST_MOUNT_GATE");
  if (!gate || !*gate) return;
  for (int i = 0; i < 6000 && ::access(gate, F_OK) != 0; ++i) ::usleep(10000);
}

[[noreturn]] void run_daemon(const Plan& plan, int ready_fd) {
  ::setsid();
  int log = ::open(plan.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (log >= 0) {
    ::dup2(log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
  }
  if (null >= 0) ::dup2(null, STDIN_FILENO);
  // Keep nothing of the command's open files but the ready pipe.
  ::close_range(3, static_cast<unsigned>(ready_fd) - 1, 0);
  ::close_range(static_cast<unsigned>(ready_fd) + 1, ~0U, 0);
  if (::chdir("/") != 0) _exit(1);
  write_pid_file(plan.pid_path);
  test_mount_gate();
  try {
    int rc = serve_view(plan.view, [ready_fd](const std::string& error) { report_ready(ready_fd, error); });
    ::unlink(plan.pid_path.c_str());
    _exit(rc == 0 ? 0 : 1);
  } catch (const std::exception& e) {
    fmt::print(stderr, "vunify view daemon for {}: {}\n", plan.name, e.what());
    std::fflush(stderr);
    _exit(1);
  }
}

// Forks the daemon and waits until it reports the mount in place (or its failure).
void start_daemon(const Plan& plan) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw_errno("create pipe for", plan.name);
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork daemon for", plan.name);
  if (pid == 0) {
    ::close(pipe_fds[0]);
    run_daemon(plan, pipe_fds[1]);
  }
  ::close(pipe_fds[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    msg.append(buf, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  if (msg == "ok") return;
  ::waitpid(pid, nullptr, 0);
  throw UserError(fmt::format("mounting guest {} failed: {} (log: {})", plan.name, msg.empty() ? "daemon died" : msg,
                              plan.log_path));
}

}  // namespace

namespace {

// POOL/log/NAME.pid for the mount point POOL/guests/NAME.
std::string pid_file_of(const std::string& mountpoint) {
  auto slash = mountpoint.rfind('/');
  std::string guests = mountpoint.substr(0, slash);
  return guests.substr(0, guests.rfind('/')) + "/log/" + mountpoint.substr(slash + 1) + ".pid";
}

MountState state_of(const os::ViewStatus& v) {
  switch (v.state) {
    case os::ViewState::NotMounted: return MountState::NotMounted;
    case os::ViewState::Live: return MountState::Live;
    case os::ViewState::Stopped: return MountState::Stopped;
    case os::ViewState::Dead: return MountState::Stale;
  }
  return MountState::NotMounted;
}

}  // namespace

MountState mount_state(const std::string& mountpoint) { return state_of(os::view_status(mountpoint, pid_file_of(mountpoint))); }

void mount_guests(const std::string& pool_root, std::vector<std::string> names, bool all, const MountOptions& options) {
  std::vector<Plan> plans;
  std::vector<std::string> not_applied;  // already mounted while options were given
  std::vector<std::string> stopped;      // mounted, but the daemon is stopped
  std::set<int> given_cpus;
  if (!options.cpus.empty()) given_cpus = view_cpus(options.cpus, "--cpus " + options.cpus);  // refused before anything
  if (options.threads) view_threads(std::to_string(options.threads), "--threads " + std::to_string(options.threads));
  bool repair = false;
  {
    unify::Pool pool(pool_root, unify::Access::Read);
    repair = any_link_record(pool, resolve_names(pool, names, all));
  }
  // The pool lock is held from loading the object list until every daemon serves: a daemon
  // treats what is not in its list as private, so no pool-changing command (which takes the
  // lock exclusively and refuses mounted guests) may turn its files into objects before its
  // view is mounted. Repairing link groups needs the lock exclusively.
  std::optional<unify::Pool> pool(std::in_place, pool_root, repair ? unify::Access::Write : unify::Access::Read);
  unify::ObjectSet objects = unify::ObjectSet::load(*pool);
  for (const auto& name : resolve_names(*pool, std::move(names), all)) {
    std::string mnt = pool->path("guests/" + name);
    os::ViewStatus status = pool->view(name);
    MountState state = state_of(status);
    if (state == MountState::Stopped) {
      stopped.push_back(fmt::format("guest {} is mounted but {}; or 'vunify umount {}' and mount it again", name,
                                    os::stopped_daemon_note(status), name));
      continue;
    }
    if (state == MountState::Live) {
      fmt::print("guest {} is already mounted at {}\n", name, mnt);
      if (!options.given.empty()) not_applied.push_back(name);
      continue;
    }
    if (state == MountState::Stale) {
      detach(mnt);
      fmt::print("guest {}: removed the stale mount of a dead daemon\n", name);
    }
    if (::mkdir(mnt.c_str(), 0755) != 0 && errno != EEXIST) throw_errno("create mount point", mnt);
    ViewConfig view{name, pool->path("backing/" + name), mnt, options.passthrough, options.allow_devices, objects};
    view.allow_block_devices = options.allow_block_devices;
    ViewSettings settings = load_view_settings(pool->path("etc/" + name + ".toml"));
    view.cpus = options.cpus.empty() ? settings.cpus : given_cpus;
    view.threads = options.threads ? options.threads : settings.threads ? settings.threads : kDefaultViewThreads;
    view.links_dir = pool->path("links");
    view.links = guest_links(*pool, name, objects, repair);
    plans.push_back({name, view, pool->path("log/" + name + ".log"), pool->path("log/" + name + ".pid")});
  }
  if (options.foreground) {
    if (plans.size() != 1) throw UserError("--foreground serves exactly one guest");
    write_pid_file(plans[0].pid_path);  // for the liveness checks of other commands
    struct RemovePid {
      const std::string& path;
      ~RemovePid() { ::unlink(path.c_str()); }
    } remove_pid{plans[0].pid_path};
    int rc = serve_view(plans[0].view, [&](const std::string& error) {
      pool.reset();  // mounted (or failed): the pool is free again
      if (error.empty()) fmt::print(stderr, "guest {} mounted at {} (foreground; Ctrl-C unmounts)\n", plans[0].name,
                                    plans[0].view.mountpoint);
    });
    if (rc != 0) throw UserError(fmt::format("the view of guest {} ended with status {}", plans[0].name, rc));
    return;
  }
  for (const Plan& plan : plans) {
    start_daemon(plan);
    fmt::print("guest {} mounted at {}\n", plan.name, plan.view.mountpoint);
  }
  if (!stopped.empty()) {
    std::string msg;
    for (const auto& m : stopped) msg += (msg.empty() ? "" : "\n") + m;
    throw UserError(msg);
  }
  if (!not_applied.empty()) {
    std::string opts, guests;
    for (const auto& o : options.given) opts += (opts.empty() ? "" : " ") + o;
    for (const auto& n : not_applied) guests += (guests.empty() ? "" : ", ") + n;
    throw UserError(fmt::format("{} not applied to {} (already mounted with its own options): unmount first "
                                "('vunify umount NAME') to mount with new options",
                                opts, guests));
  }
}

void umount_guests(const std::string& pool_root, std::vector<std::string> names, bool all, bool lazy) {
  struct Target {
    std::string name, mountpoint, pid_path;
  };
  std::vector<Target> targets;
  {
    unify::Pool pool(pool_root, unify::Access::Read);
    for (const auto& name : resolve_names(pool, std::move(names), all))
      targets.push_back({name, pool.path("guests/" + name), pool.path("log/" + name + ".pid")});
  }
  for (const auto& [name, mnt, pid_path] : targets) {
    os::ViewStatus status = os::view_status(mnt, pid_path);
    switch (state_of(status)) {
      case MountState::Stopped:
        // The kernel unmounts without asking the daemon; a stopped one exits once continued.
        detach_or_unmount(mnt, lazy, name);
        fmt::print("guest {} unmounted; {} (it exits once continued)\n", name, os::stopped_daemon_note(status));
        break;
      case MountState::NotMounted:
        if (!all) fmt::print("guest {} is not mounted\n", name);
        break;
      case MountState::Stale:
        detach(mnt);
        fmt::print("guest {}: removed the stale mount of a dead daemon\n", name);
        break;
      case MountState::Live:
        detach_or_unmount(mnt, lazy, name);
        if (!lazy) wait_for_daemon_exit(pid_path);
        fmt::print("guest {} unmounted\n", name);
        break;
    }
  }
}

}  // namespace vunify::fs

// The supervisor: a host-side process per running guest (in no guest namespace and no Landlock
// domain), the parent of the guest's holder (holder.hpp), which forks PID 1. It sets up the
// guest's root beside PID 1, records the state, copies the console to the log, and cleans up
// when PID 1 (and with it the holder) exits.
#include "context/launch.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <optional>

#include "context/console.hpp"
#include "context/holder.hpp"
#include "context/holder_protocol.hpp"
#include "context/init.hpp"
#include "context/limit_target.hpp"
#include "context/mounts.hpp"
#include "context/namespaces.hpp"
#include "context/network.hpp"
#include "context/watchdog.hpp"
#include "os/error.hpp"

namespace vunify::context {

namespace {

using os::unique_fd;

// The supervisor's message once PID 1 runs, followed by PID 1's host pid.
constexpr const char* kReadyPrefix = "ok ";

struct Pipe {
  unique_fd read, write;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) os::throw_errno("create pipe", "");
    read.reset(fds[0]);
    write.reset(fds[1]);
  }
};

std::string read_all(int fd) {
  std::string out;
  char buf[1024];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void log_line(const std::string& guest, const std::string& text) {
  fmt::print(stderr, "vunify[{}]: {}\n", guest, text);
  std::fflush(stderr);
}

int64_t wall_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

struct SocketPair {
  unique_fd mine, theirs;
  explicit SocketPair(int type) {
    int fds[2];
    if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) != 0) os::throw_errno("socketpair", "");
    mine.reset(fds[0]);
    theirs.reset(fds[1]);
  }
};

std::vector<int> raw_fds(const std::vector<unique_fd>& fds) {
  std::vector<int> out;
  for (const auto& fd : fds) out.push_back(fd.get());
  return out;
}

struct SetupArgs {
  const Launch* launch;
  int pid1fd, tree, console, report;
};

int setup_main(void* p) {
  const auto& a = *static_cast<const SetupArgs*>(p);
  if (::setns(a.pid1fd, CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET) != 0) {
    char msg[160];  // no heap: it is the supervisor's
    int n = std::snprintf(msg, sizeof msg, "setns into the guest's namespaces: %s", std::strerror(errno));
    ssize_t ignored = ::write(a.report, msg, static_cast<size_t>(std::max(n, 0)));
    (void)ignored;
    _exit(1);
  }
  run_root_setup(*a.launch, a.tree, a.console, a.report);
}

// The root's setup helper (run_root_setup) in the namespaces of PID 1 (`pid1fd`): cloned into
// the guest's pid namespace (for /proc; this process enters it for its children only and goes
// back at once), it joins the others itself. It shares this process's memory until it exits
// (clone_shared): the supervisor waits for it anyway. Returns what went wrong ("" if nothing)
// once it is done; the console's master comes on `console`.
std::string set_up_root(const Launch& l, int pid1fd, int tree, SocketPair& console) {
  Pipe report;
  unique_fd own(::open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC));
  if (!own) return fmt::format("open /proc/self/ns/pid: {}", std::strerror(errno));
  if (::setns(pid1fd, CLONE_NEWPID) != 0) return fmt::format("setns into the guest's pid namespace: {}", std::strerror(errno));
  SetupArgs args{&l, pid1fd, tree, console.theirs.get(), report.write.get()};
  pid_t helper = -1;
  std::string error;
  try {
    helper = clone_shared(setup_main, &args);
  } catch (const std::exception& e) {
    error = e.what();
  }
  report.write.reset();
  console.theirs.reset();
  // Back for every later child of the supervisor (its own pid namespace, which it may always
  // enter); if that failed, the start fails and the supervisor exits.
  if (::setns(own.get(), CLONE_NEWPID) != 0 && error.empty())
    error = fmt::format("cannot return to the host's pid namespace: {}", std::strerror(errno));
  if (helper < 0) return error;
  std::string why = read_all(report.read.get());
  int status = 0;
  while (::waitpid(helper, &status, 0) < 0 && errno == EINTR) {
  }
  if (!error.empty()) return error;
  if (why.empty() && WIFSIGNALED(status))
    why = fmt::format("the guest's root could not be set up: its setup helper was killed by signal {} ({}){}",
                      WTERMSIG(status), ::strsignal(WTERMSIG(status)),
                      WTERMSIG(status) == SIGKILL ? "; the guest's PID 1 may have ended, which ends its pid namespace" : "");
  if (why.empty() && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
    why = fmt::format("the guest's root could not be set up (its setup helper exited with status {})",
                      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return why;
}

// Starts the holder, which starts PID 1 in the guest's domain; sets up the root beside it and
// returns the state once PID 1 runs, throws with the reason otherwise (the holder and PID 1
// are gone then).
RunState start_pid1(const Launch& l, unique_fd& holder_fd, unique_fd& console_out, int self, int ready) {
  Pipe go, report;
  SocketPair control(SOCK_SEQPACKET), console(SOCK_STREAM);
  unique_fd tree = clone_root(l.root);
  unique_fd listen = listen_holder(holder_socket_path(l.pool, l.guest));
  std::vector<unique_fd> procs = GuestCgroups(l.cgroups).open_procs();
  pid_t holder = clone_into(0, holder_fd);
  if (holder == 0) {
    go.write.reset();
    report.read.reset();
    control.mine.reset();
    console.mine.reset();
    console.theirs.reset();
    ::close(ready);
    run_holder(l, HolderFds{tree.get(), listen.get(), control.theirs.get(),
                            Pid1Fds{raw_fds(procs), go.read.get(), report.write.get(), self}});
  }
  go.read.reset();
  report.write.reset();
  control.theirs.reset();
  listen.reset();
  procs.clear();
  unique_fd pid1fd;
  NetworkState network;
  auto fail = [&](const std::string& why) {
    teardown_network(network);
    // PID 1 first: the holder reaps it and exits, so PID 1 has left the cgroups once the holder
    // is gone (the caller removes them).
    if (pid1fd) ::syscall(SYS_pidfd_send_signal, pid1fd.get(), SIGKILL, nullptr, 0);
    pollfd p{holder_fd.get(), POLLIN, 0};
    if (!pid1fd || ::poll(&p, 1, 5000) <= 0) ::syscall(SYS_pidfd_send_signal, holder_fd.get(), SIGKILL, nullptr, 0);
    ::waitpid(holder, nullptr, 0);
    ::unlink(holder_socket_path(l.pool, l.guest).c_str());
    throw os::UserError(why);
  };
  std::optional<HolderMessage> m;
  try {
    m = recv_message(control.mine.get());
  } catch (const std::exception& e) {
    fail(e.what());
  }
  if (!m || m->type != 'P' || m->fds.empty()) fail(m && m->type == 'E' ? m->data : "the guest's holder died before PID 1 started");
  pid1fd = std::move(m->fds[0]);
  pid_t pid = pid_of(pid1fd.get());
  if (pid <= 0) fail("PID 1 died before it started");
  try {
    apply_process_limits(pid, l.limits);  // RLIMIT_MEMLOCK before PID 1 runs the guest's code
  } catch (const std::exception& e) {
    fail(fmt::format("cannot put the guest's PID 1 under its limits: {}", e.what()));
  }
  try {
    network = setup_network(l.guest, l.network, pid, l.cgroups);
  } catch (const std::exception& e) {
    fail(fmt::format("cannot set up the guest's network: {}", e.what()));
  }
  std::string error = set_up_root(l, pid1fd.get(), tree.get(), console);
  tree.reset();
  unique_fd console_master = error.empty() ? recv_fd(console.mine.get()) : unique_fd();
  if (!error.empty() || !console_master) fail(error.empty() ? "no console from the root's setup" : error);
  // What is read of PID 1 is read before it runs: a command that ends at once is reaped by the
  // holder, and its /proc entry gone, before this process reads on.
  RunState s;
  s.pid1 = pid;
  s.pid1_start = start_time(pid);
  s.context_id = pid_namespace_of(pid);
  if (::write(go.write.get(), "g", 1) != 1) fail("PID 1 died before it started");
  go.write.reset();
  error = read_all(report.read.get());
  if (!error.empty()) fail(error);
  s.supervisor = ::getpid();
  s.supervisor_start = start_time(s.supervisor);
  s.started_ns = wall_ns();
  s.mounted_view = l.mounted_view;
  s.init = l.own_init ? "vunify-init" : l.argv.at(0);
  for (size_t i = 1; l.own_init && i <= l.argv.size(); ++i) s.init += " " + l.argv[i - 1];
  s.stop_signal = l.stop_signal;
  s.cgroups = l.cgroups;
  s.view = l.view;
  s.network = network;
  write_state(l.pool, l.guest, s);
  console_out = std::move(console_master);
  return s;
}

int status_code(const siginfo_t& info) {
  return info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
}

// Copies the console to stdout (the log) until the holder exits (it does when PID 1 does);
// returns PID 1's exit status, which the holder exits with. A peer of
// the console kept open here means the master never hangs up when the guest closes its last
// console fd, so a later writer (systemd reopens /dev/console) is always read, never blocked.
int supervise(int holder_fd, int console, MemoryWatchdog& watchdog, const std::string& guest) {
  unique_fd peer(::ioctl(console, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
  ::fcntl(console, F_SETFL, O_NONBLOCK);
  bool console_open = true;
  for (;;) {
    pollfd fds[3] = {{holder_fd, POLLIN, 0}, {watchdog.fd(), POLLIN, 0}, {console, POLLIN, 0}};
    if (::poll(fds, console_open ? 3 : 2, -1) < 0) continue;
    if (fds[1].revents & POLLIN)
      for (const auto& line : watchdog.handle()) log_line(guest, line);
    if (console_open && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) console_open = pump(console, 1);
    if (fds[0].revents & POLLIN) break;
  }
  while (console_open && pump(console, 1)) {
    pollfd p{console, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN)) break;
  }
  siginfo_t info{};
  ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(holder_fd), &info, WEXITED);
  return status_code(info);
}

[[noreturn]] void run_supervisor(const Launch& l, int ready, int self) {
  ::setsid();
  ::prctl(PR_SET_NAME, "vunify-ctx");
  if (::chdir("/") != 0) _exit(1);  // keep no mount of the caller's cwd busy
  int log = ::open(l.console_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) ::dup2(null, 0);
  if (log >= 0) {
    ::dup2(log, 1);
    ::dup2(log, 2);
  }
  unique_fd holder, console;
  RunState state;
  try {
    state = start_pid1(l, holder, console, self, ready);
  } catch (const std::exception& e) {
    log_line(l.guest, fmt::format("start failed: {}", e.what()));
    std::string msg = e.what();
    ssize_t ignored = ::write(ready, msg.data(), msg.size());
    (void)ignored;
    _exit(1);
  }
  log_line(l.guest, fmt::format("PID 1 ({}) runs as host pid {}", state.init, state.pid1));
  // PID 1's pid goes with "ok": a command that ends at once may have its state removed by the
  // cleanup below before the caller could read it.
  std::string ok = fmt::format("{}{}", kReadyPrefix, state.pid1);
  if (::write(ready, ok.data(), ok.size()) != static_cast<ssize_t>(ok.size())) log_line(l.guest, "start did not wait for PID 1");
  ::close(ready);
  ::close(self);
  int code = 0;
  {
    MemoryWatchdog watchdog(LimitTarget{l.pool, l.guest, l.cgroups, l.view.cgroups});
    for (const auto& p : watchdog.problems()) log_line(l.guest, "memory watchdog: " + p);
    code = supervise(holder.get(), console.get(), watchdog, l.guest);
  }
  console.reset();
  log_line(l.guest, fmt::format("PID 1 exited with status {}", code));
  bool clean = cleanup(l.pool, l.guest, state);
  log_line(l.guest, clean ? "context removed" : "context removed, but some cgroups stay busy");
  _exit(0);
}

}  // namespace

pid_t launch(const Launch& l) {
  Pipe ready;
  unique_fd self = l.own_init ? sealed_init() : unique_fd();
  std::fflush(nullptr);
  pid_t sup = ::fork();
  if (sup < 0) os::throw_errno("fork the supervisor of", l.guest);
  if (sup == 0) {
    ready.read.reset();
    // Nothing of the caller's open files but these two (no pool lock, no test pipes).
    int keep_ready = ::fcntl(ready.write.get(), F_DUPFD_CLOEXEC, 3);
    int keep_self = self ? ::fcntl(self.get(), F_DUPFD_CLOEXEC, 3) : -1;
    ::dup2(keep_ready, 3);
    if (keep_self >= 0) ::dup2(keep_self, 4);
    ::close_range(keep_self >= 0 ? 5 : 4, ~0U, 0);
    run_supervisor(l, 3, keep_self >= 0 ? 4 : -1);
  }
  ready.write.reset();
  std::string msg = read_all(ready.read.get());
  if (msg.rfind(kReadyPrefix, 0) == 0) return static_cast<pid_t>(std::stol(msg.substr(std::strlen(kReadyPrefix))));
  ::waitpid(sup, nullptr, 0);
  throw os::UserError(fmt::format("guest {} did not start: {}", l.guest, msg.empty() ? "its supervisor died" : msg));
}

}  // namespace vunify::context

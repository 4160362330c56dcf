// The supervisor: a host-side process per running guest (in no guest namespace), the parent of
// PID 1. It starts PID 1, records the state, copies the console to the log, and cleans up when
// PID 1 exits.
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

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>

#include "context/console.hpp"
#include "context/init.hpp"
#include "context/limit_target.hpp"
#include "context/mounts.hpp"
#include "context/namespaces.hpp"
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

// Starts PID 1; returns its state once it runs, throws with the reason otherwise.
RunState start_pid1(const Launch& l, unique_fd& pidfd, unique_fd& console_out, int self, int ready) {
  Pipe go, report;
  int sock[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sock) != 0) os::throw_errno("socketpair", "");
  unique_fd mine(sock[0]), theirs(sock[1]);
  unique_fd tree = clone_root(l.root);
  pid_t pid = clone_into(kCloneNamespaces, pidfd);
  if (pid == 0) {
    go.write.reset();
    report.read.reset();
    mine.reset();
    ::close(ready);
    run_pid1(l, tree.get(), go.read.get(), report.write.get(), theirs.get(), self);
  }
  go.read.reset();
  report.write.reset();
  theirs.reset();
  tree.reset();
  auto fail = [&](const std::string& why) {
    ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
    ::waitpid(pid, nullptr, 0);
    throw os::UserError(why);
  };
  try {
    GuestCgroups(l.cgroups).add(pid);
    apply_process_limits(pid, l.limits);  // RLIMIT_MEMLOCK before PID 1 runs the guest's code
  } catch (const std::exception& e) {
    fail(fmt::format("cannot put the guest's PID 1 in its cgroups or under its limits: {}", e.what()));
  }
  if (::write(go.write.get(), "g", 1) != 1) fail("PID 1 died before it started");
  go.write.reset();
  unique_fd console = recv_fd(mine.get());
  std::string error = read_all(report.read.get());
  if (!error.empty() || !console) fail(error.empty() ? "PID 1 died while it started" : error);
  RunState s;
  s.pid1 = pid;
  s.pid1_start = start_time(pid);
  s.supervisor = ::getpid();
  s.supervisor_start = start_time(s.supervisor);
  s.started_ns = wall_ns();
  s.mounted_view = l.mounted_view;
  s.init = l.own_init ? "vunify-init" : l.argv.at(0);
  for (size_t i = 1; l.own_init && i <= l.argv.size(); ++i) s.init += " " + l.argv[i - 1];
  s.stop_signal = l.stop_signal;
  s.context_id = pid_namespace_of(pid);
  s.cgroups = l.cgroups;
  s.view = l.view;
  write_state(l.pool, l.guest, s);
  console_out = std::move(console);
  return s;
}

int status_code(const siginfo_t& info) {
  return info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
}

// Copies the console to stdout (the log) until PID 1 exits; returns its exit status. A peer of
// the console kept open here means the master never hangs up when the guest closes its last
// console fd, so a later writer (systemd reopens /dev/console) is always read, never blocked.
int supervise(int pidfd, int console, MemoryWatchdog& watchdog, const std::string& guest) {
  unique_fd peer(::ioctl(console, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
  ::fcntl(console, F_SETFL, O_NONBLOCK);
  bool console_open = true;
  for (;;) {
    pollfd fds[3] = {{pidfd, POLLIN, 0}, {watchdog.fd(), POLLIN, 0}, {console, POLLIN, 0}};
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
  ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, WEXITED);
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
  unique_fd pidfd, console;
  RunState state;
  try {
    state = start_pid1(l, pidfd, console, self, ready);
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
    code = supervise(pidfd.get(), console.get(), watchdog, l.guest);
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

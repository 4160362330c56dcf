// `vunify exec`: a process in a running guest. The host-side helper (this process, a child
// subreaper) forks a joiner that enters the guest's cgroups and namespaces and forks the command
// (so it is in the guest's pid namespace), then exits; the command is reparented to the helper,
// which forwards signals, relays the pty of -t and passes the exit status through. The helper
// waits only for exit (no WUNTRACED): when the guest's init stops every process on shutdown,
// the helper does not stop with its child.
#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "context/config.hpp"
#include "context/console.hpp"
#include "context/limits_config.hpp"
#include "context/namespaces.hpp"
#include "context/runtime.hpp"
#include "context/state.hpp"
#include "context/users.hpp"
#include "os/error.hpp"
#include "unify/pool.hpp"

namespace vunify::context {

namespace {

using os::unique_fd;

constexpr const char* kPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM};

void say(int fd, const std::string& text) {
  ssize_t ignored = ::write(fd, text.data(), text.size());
  (void)ignored;
}

void set_environment(const ExecOptions& o, const GuestUser& u) {
  const char* term = ::getenv("TERM");
  std::string host_term = term ? term : "";
  ::clearenv();
  ::setenv("PATH", kPath, 1);
  ::setenv("HOME", u.home.c_str(), 1);
  ::setenv("USER", u.name.c_str(), 1);
  ::setenv("LOGNAME", u.name.c_str(), 1);
  ::setenv("container", "vunify", 1);
  if (o.tty) ::setenv("TERM", host_term.empty() ? "xterm" : host_term.c_str(), 1);
  for (const auto& kv : o.env) {
    auto eq = kv.find('=');
    ::setenv(kv.substr(0, eq).c_str(), eq == std::string::npos ? "" : kv.substr(eq + 1).c_str(), 1);
  }
}

// The command, in the guest's namespaces: session, pty, user, directory, security, exec.
[[noreturn]] void run_command(const ExecOptions& o, const PreparedSecurity& security, int slave, int report) {
  try {
    ::prctl(PR_SET_DUMPABLE, 0);
    ::setsid();
    if (slave >= 0) {
      if (::ioctl(slave, TIOCSCTTY, 0) != 0) os::throw_errno("make the pty the controlling terminal", "");
      for (int fd = 0; fd < 3; ++fd) ::dup2(slave, fd);
      ::close(slave);
    }
    GuestUser u = lookup_user(o.user);
    std::string dir = o.workdir.empty() ? u.home : o.workdir;
    if (::chdir(dir.c_str()) != 0) {
      if (!o.workdir.empty()) os::throw_errno("cannot change to the directory", o.workdir);
      if (::chdir("/") != 0) os::throw_errno("chdir", "/");
    }
    set_environment(o, u);
    std::vector<std::string> args = o.command.empty() ? std::vector<std::string>{u.shell, "-l"} : o.command;
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::close_range(3, static_cast<unsigned>(report) - 1, 0);
    ::close_range(static_cast<unsigned>(report) + 1, ~0U, 0);
    apply_security(security);
    if (::setgroups(u.groups.size(), u.groups.data()) != 0) os::throw_errno("setgroups for", u.name);
    if (::setgid(u.gid) != 0) os::throw_errno("setgid for", u.name);
    if (::setuid(u.uid) != 0) os::throw_errno("setuid for", u.name);
    ::execvp(argv[0], argv.data());
    say(report, fmt::format("cannot run {} in the guest: {}", args[0], std::strerror(errno)));
  } catch (const std::exception& e) {
    say(report, e.what());
  }
  _exit(127);
}

// The joiner: into the guest's cgroups and namespaces, then forks the command and exits.
[[noreturn]] void join_and_fork(const RunState& s, int pid1, const ExecOptions& o, const PreparedSecurity& security,
                                const Limits& limits, int sock, int report) {
  try {
    GuestCgroups(s.cgroups).add(::getpid());
    apply_process_limits(::getpid(), limits);
    join_namespaces(pid1);
    ::close(pid1);
    int slave = -1;
    if (o.tty) {
      Pty pty = open_pty("/dev/ptmx");
      send_fd(sock, pty.master.get());
      slave = pty.slave.release();
    }
    pid_t child = ::fork();
    if (child < 0) os::throw_errno("fork in", "the guest");
    if (child == 0) {
      ::close(sock);
      run_command(o, security, slave, report);
    }
    if (::write(sock, &child, sizeof child) != sizeof child) _exit(1);
    _exit(0);
  } catch (const std::exception& e) {
    say(report, e.what());
  }
  _exit(1);
}

struct Relay {
  int child_pidfd, signals, master;
};

// Forwards signals and relays the pty until the command exits.
void relay(pid_t child, const Relay& r) {
  bool stdin_open = r.master >= 0;
  if (r.master >= 0) copy_window_size(0, r.master);
  for (;;) {
    pollfd fds[4] = {{r.child_pidfd, POLLIN, 0}, {r.signals, POLLIN, 0}, {r.master, POLLIN, 0}, {0, POLLIN, 0}};
    int n = r.master < 0 ? 2 : stdin_open ? 4 : 3;
    if (::poll(fds, static_cast<nfds_t>(n), -1) < 0) continue;
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo si;
      if (::read(r.signals, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGWINCH && r.master >= 0) copy_window_size(0, r.master);
        else ::kill(child, static_cast<int>(si.ssi_signo));
      }
    }
    if (n > 2 && (fds[2].revents & (POLLIN | POLLHUP | POLLERR)) && !pump(r.master, 1)) break;
    if (n > 3 && (fds[3].revents & (POLLIN | POLLHUP | POLLERR)) && !pump(0, r.master)) stdin_open = false;
    if (fds[0].revents & POLLIN) break;
  }
  if (r.master >= 0)
    for (pollfd p{r.master, POLLIN, 0}; ::poll(&p, 1, 50) > 0 && pump(r.master, 1);) {
    }
}

int wait_status(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

int exec(const std::string& pool_root, const std::string& guest, const ExecOptions& o) {
  unify::Pool::check_name(guest, "guest");
  {
    unify::Pool pool(pool_root, unify::Access::Read);
    if (!pool.has_guest(guest)) throw os::UserError(fmt::format("no guest named '{}' in pool {}", guest, pool_root));
  }
  auto s = read_state(pool_root, guest);
  unique_fd pid1 = s ? open_live(s->pid1, s->pid1_start) : unique_fd();
  if (!pid1) throw os::UserError(fmt::format("guest {} is not running; start it with 'vunify start {}'", guest, guest));
  PreparedSecurity security = prepare_security(load_config(pool_root, guest).profile());
  Limits limits = load_limits(pool_root, guest);
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  int sv[2], rp[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) os::throw_errno("socketpair", "");
  unique_fd sock(sv[0]), their_sock(sv[1]);
  if (::pipe2(rp, O_CLOEXEC) != 0) os::throw_errno("pipe", "");
  unique_fd report(rp[0]), their_report(rp[1]);
  sigset_t forwarded;
  sigemptyset(&forwarded);
  for (int sig : kForwarded) sigaddset(&forwarded, sig);
  ::sigprocmask(SIG_BLOCK, &forwarded, nullptr);
  std::fflush(nullptr);
  pid_t joiner = ::fork();
  if (joiner < 0) os::throw_errno("fork", "");
  if (joiner == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    sock.reset();
    report.reset();
    join_and_fork(*s, pid1.release(), o, security, limits, their_sock.get(), their_report.get());
  }
  their_sock.reset();
  their_report.reset();
  unique_fd master = o.tty ? recv_fd(sock.get()) : unique_fd();
  pid_t child = -1;
  bool have_child = ::read(sock.get(), &child, sizeof child) == sizeof child;
  wait_status(joiner);  // the command is now this process's child (subreaper)
  std::string error;
  char buf[512];
  for (ssize_t n; (n = ::read(report.get(), buf, sizeof buf)) > 0;) error.append(buf, static_cast<size_t>(n));
  if (!error.empty() || !have_child) {
    if (have_child) wait_status(child);
    fmt::print(stderr, "vunify: exec in guest {}: {}\n", guest, error.empty() ? "could not enter the guest" : error);
    return 127;
  }
  unique_fd child_fd(static_cast<int>(::syscall(SYS_pidfd_open, child, 0)));
  unique_fd signals(::signalfd(-1, &forwarded, SFD_CLOEXEC));
  {
    std::optional<RawTerminal> raw;
    if (master && ::isatty(0)) raw.emplace(0);
    relay(child, Relay{child_fd.get(), signals.get(), master ? master.get() : -1});
  }
  return wait_status(child);
}

}  // namespace vunify::context

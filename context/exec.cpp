// `vunify exec`: a process in a running guest. The guest's holder (holder.hpp) forks it, so it
// is in the guest's one Landlock domain; this side (run_exec_child) is what the forked command
// does before exec. The caller (exec) sends the request with its stdio over POOL/run/NAME.sock,
// forwards signals to the command's pidfd, relays the pty of -t, and returns the exit status the
// holder reports. The caller is no parent of the command: when the guest's init stops every
// process on shutdown, nothing stops with it.
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
#include <cstdlib>
#include <cstring>
#include <optional>

#include "context/console.hpp"
#include "context/exec_child.hpp"
#include "context/holder_protocol.hpp"
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

// The command's environment: PATH, HOME, USER, LOGNAME, container, then each -e (a key given
// again keeps its place and takes the last value, as setenv does).
std::vector<std::string> environment(const ExecOptions& o, const GuestUser& u) {
  std::vector<std::string> env;
  auto set = [&env](const std::string& key, const std::string& value) {
    if (key.empty()) return;
    for (auto& e : env)
      if (e.size() > key.size() && e[key.size()] == '=' && e.compare(0, key.size(), key) == 0) {
        e = key + "=" + value;
        return;
      }
    env.push_back(key + "=" + value);
  };
  set("PATH", kPath);
  set("HOME", u.home);
  set("USER", u.name);
  set("LOGNAME", u.name);
  set("container", "vunify");
  for (const auto& kv : o.env) {  // with -t the caller put its TERM first
    auto eq = kv.find('=');
    set(kv.substr(0, eq), eq == std::string::npos ? "" : kv.substr(eq + 1));
  }
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

void report(int conn, const std::string& text) {
  try {
    send_message(conn, 'E', text);
  } catch (const std::exception&) {
  }
}

// The command, in the guest's namespaces: session, pty, user, directory, environment and
// arguments (into `image`), security. Frees everything else it allocates: the child runs in
// the holder's memory (clone_shared).
void set_up_command(const ExecOptions& o, const PreparedSecurity& security, int slave, ExecImage& image) {
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
  image.env = environment(o, u);
  image.args = o.command.empty() ? std::vector<std::string>{u.shell, "-l"} : o.command;
  image.envp = c_strings(image.env);
  image.argv = c_strings(image.args);
  if (image.conn != 3 && ::dup2(image.conn, 3) < 0) os::throw_errno("dup2", "");
  image.conn = 3;
  ::fcntl(image.conn, F_SETFD, FD_CLOEXEC);
  ::close_range(4, ~0U, 0);
  PreparedSecurity own = security;
  own.profile.landlock = false;  // the holder's domain, the guest's
  apply_security(own);
  if (::setgroups(u.groups.size(), u.groups.data()) != 0) os::throw_errno("setgroups for", u.name);
  if (::setgid(u.gid) != 0) os::throw_errno("setgid for", u.name);
  if (::setuid(u.uid) != 0) os::throw_errno("setuid for", u.name);
}

// Joins the guest (cgroups, limits, namespaces) and takes the caller's stdio or a pty.
void set_up_child(const ExecChild& c) {
  join_cgroups(c.procs);
  apply_process_limits(::getpid(), c.limits);
  join_namespaces(c.pid1fd);
  int slave = -1;
  if (c.options.tty) {
    Pty pty = open_pty("/dev/ptmx");
    send_message(c.conn, 'T', "", {pty.master.get()});
    slave = pty.slave.release();
  } else {
    for (int fd = 0; fd < 3; ++fd)
      if (::dup2(c.stdio.at(static_cast<size_t>(fd)), fd) < 0) os::throw_errno("dup2 the caller's stdio", "");
  }
  set_up_command(c.options, c.security, slave, c.image);
}

// Output of the pty until it hangs up or stays quiet for 50 ms.
void drain(int master) {
  for (pollfd p{master, POLLIN, 0}; ::poll(&p, 1, 50) > 0 && pump(master, 1);) {
  }
}

// The caller's side: forwards signals and relays the pty until the holder reports the exit.
struct Caller {
  int conn, signals;
  unique_fd pidfd, master;
  std::optional<RawTerminal> raw;
  std::string error;
  bool stdin_open = true;

  // Handles one message; returns the exit status once it came.
  std::optional<int> on_message() {
    auto m = recv_message(conn);
    if (!m) {
      if (error.empty()) error = "the guest's holder went away (the guest stopped?)";
      return 127;
    }
    if (m->type == 'P' && !m->fds.empty()) pidfd = std::move(m->fds[0]);
    if (m->type == 'T' && !m->fds.empty()) {
      master = std::move(m->fds[0]);
      if (::isatty(0)) raw.emplace(0);
      copy_window_size(0, master.get());
    }
    if (m->type == 'E') error += m->data;
    if (m->type == 'X') return std::atoi(m->data.c_str());
    return std::nullopt;
  }

  void on_signal() {
    signalfd_siginfo si;
    if (::read(signals, &si, sizeof si) != sizeof si) return;
    if (si.ssi_signo == SIGWINCH) {
      if (master) copy_window_size(0, master.get());
    } else if (pidfd) {
      ::syscall(SYS_pidfd_send_signal, pidfd.get(), static_cast<int>(si.ssi_signo), nullptr, 0);
    }
  }

  int run() {
    for (;;) {
      pollfd fds[4] = {{conn, POLLIN, 0}, {signals, POLLIN, 0}, {master.get(), POLLIN, 0}, {0, POLLIN, 0}};
      int n = !master ? 2 : stdin_open ? 4 : 3;
      if (::poll(fds, static_cast<nfds_t>(n), -1) < 0) continue;
      if (fds[1].revents & POLLIN) on_signal();
      if (n > 2 && (fds[2].revents & (POLLIN | POLLHUP | POLLERR)) && !pump(master.get(), 1)) {
        fds[2].fd = -1;
        master.reset();
      }
      if (n > 3 && master && (fds[3].revents & (POLLIN | POLLHUP | POLLERR)) && !pump(0, master.get())) stdin_open = false;
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR))
        if (auto code = on_message()) {
          if (master) drain(master.get());
          return *code;
        }
    }
  }
};

}  // namespace

int run_exec_child(void* arg) {
  const ExecChild& c = *static_cast<const ExecChild*>(arg);
  ExecImage& image = c.image;
  image.conn = c.conn;
  try {
    set_up_child(c);
  } catch (const std::exception& e) {
    report(image.conn, e.what());
    image.argv.clear();
  }
  if (!image.argv.empty()) {
    // execvp searches the command's PATH; the holder puts its own environment back (clone_shared
    // shares it) once this process has exec'd.
    environ = image.envp.data();
    ::execvp(image.argv[0], image.argv.data());
    report(image.conn, fmt::format("cannot run {} in the guest: {}", image.args[0], std::strerror(errno)));
  }
  _exit(127);
}

int exec(const std::string& pool_root, const std::string& guest, const ExecOptions& o) {
  unify::Pool::check_name(guest, "guest");
  // A live PID 1 of a recorded context proves the guest exists ('guest rm' refuses a running
  // guest): the pool's index is opened only to tell a missing guest from a stopped one.
  auto s = read_state(pool_root, guest);
  unique_fd pid1 = s ? open_live(s->pid1, s->pid1_start) : unique_fd();
  if (!pid1) {
    check_guest(pool_root, guest);
    throw os::UserError(fmt::format("guest {} is not running; start it with 'vunify start {}'", guest, guest));
  }
  Limits limits = load_limits(pool_root, guest);  // current ones: `vunify set` may have changed them
  std::string path = holder_socket_path(pool_root, guest);
  unique_fd conn = connect_holder(path);
  if (!conn)
    throw os::UserError(fmt::format("guest {} runs, but its holder ({}) is gone: restart it with 'vunify restart {}'", guest,
                                    path, guest));
  sigset_t forwarded;
  sigemptyset(&forwarded);
  for (int sig : kForwarded) sigaddset(&forwarded, sig);
  ::sigprocmask(SIG_BLOCK, &forwarded, nullptr);
  unique_fd signals(::signalfd(-1, &forwarded, SFD_CLOEXEC));
  ExecOptions request = o;
  if (o.tty) {
    const char* term = ::getenv("TERM");
    request.env.insert(request.env.begin(), std::string("TERM=") + (term && *term ? term : "xterm"));
  }
  send_message(conn.get(), 'R', encode_request(request, limits), o.tty ? std::vector<int>{} : std::vector<int>{0, 1, 2});
  Caller caller{conn.get(), signals.get(), {}, {}, {}, {}, true};
  int code = caller.run();
  caller.raw.reset();
  if (!caller.error.empty()) fmt::print(stderr, "vunify: exec in guest {}: {}\n", guest, caller.error);
  return code;
}

}  // namespace vunify::context

#include "context/holder.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>
#include <vector>

#include "context/exec_child.hpp"
#include "context/holder_protocol.hpp"
#include "context/namespaces.hpp"
#include "context/security.hpp"
#include "os/error.hpp"

namespace vunify::context {

namespace {

using os::unique_fd;

struct Session {
  unique_fd pidfd, conn;
};

int code_of(const siginfo_t& info) { return info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status; }

// Waits for the child behind `pidfd` (already exited, or being killed) and returns its status.
int reap(int pidfd) {
  siginfo_t info{};
  while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, WEXITED) != 0 && errno == EINTR) {
  }
  return code_of(info);
}

void tell(int conn, char type, const std::string& data, const std::vector<int>& fds = {}) {
  try {
    send_message(conn, type, data, fds);
  } catch (const std::exception&) {
    // the exec caller went away: its command still runs to its end
  }
}

struct Serving {
  const Launch& launch;
  const HolderFds& fds;
  int pid1fd;
  std::vector<Session> sessions;
};

// Reads the request on `conn` and forks its command into the guest; the session lasts until the
// command is reaped.
void start_session(Serving& s, unique_fd conn) {
  timeval timeout{5, 0};  // a caller that connects and says nothing does not block the holder
  ::setsockopt(conn.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::optional<HolderMessage> m;
  ExecOptions options;
  Limits limits;
  try {
    m = recv_message(conn.get());
    if (!m || m->type != 'R') return;
    options = decode_request(m->data, limits);
    if (!options.tty && m->fds.size() != 3) throw os::UserError("an exec request without -t must pass stdin, stdout and stderr");
  } catch (const std::exception& e) {
    tell(conn.get(), 'E', e.what());
    tell(conn.get(), 'X', "127");
    return;
  }
  std::vector<int> stdio;
  for (const auto& fd : m->fds) stdio.push_back(fd.get());
  pid_t child = -1;
  {
    // Into the guest's pid namespace (setns in run_holder), in this process's memory until it
    // has exec'd: the holder waits meanwhile, then frees `image` and takes its environment back.
    ExecImage image;
    ExecChild c{options, s.launch.security, limits, conn.get(), stdio, s.fds.pid1.procs, s.pid1fd, image};
    char** own_environment = environ;
    try {
      child = clone_shared(run_exec_child, &c);
    } catch (const std::exception& e) {
      tell(conn.get(), 'E', fmt::format("cannot start the command in the guest: {}", e.what()));
    }
    environ = own_environment;
  }
  if (child < 0) {
    tell(conn.get(), 'X', "127");
    return;
  }
  unique_fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, child, 0)));
  tell(conn.get(), 'P', std::to_string(child), {pidfd.get()});
  s.sessions.push_back(Session{std::move(pidfd), std::move(conn)});
}

// Serves exec requests until PID 1 exits; returns its status.
int serve(Serving& s) {
  for (;;) {
    std::vector<pollfd> fds{{s.pid1fd, POLLIN, 0}, {s.fds.listen, POLLIN, 0}};
    for (const auto& session : s.sessions) fds.push_back({session.pidfd.get(), POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) continue;
    for (size_t i = fds.size(); i-- > 2;)
      if (fds[i].revents & POLLIN) {
        Session& done = s.sessions[i - 2];
        tell(done.conn.get(), 'X', std::to_string(reap(done.pidfd.get())));
        s.sessions.erase(s.sessions.begin() + static_cast<std::ptrdiff_t>(i - 2));
      }
    if (fds[1].revents & POLLIN) {
      unique_fd conn(::accept4(s.fds.listen, nullptr, nullptr, SOCK_CLOEXEC));
      if (conn) start_session(s, std::move(conn));
    }
    if (fds[0].revents & POLLIN) break;
  }
  int code = reap(s.pid1fd);
  ::close(s.fds.listen);
  // The kernel kills what is left in the pid namespace: report those exits too.
  for (auto& session : s.sessions) tell(session.conn.get(), 'X', std::to_string(reap(session.pidfd.get())));
  return code;
}

}  // namespace

void run_holder(const Launch& l, const HolderFds& fds) {
  ::prctl(PR_SET_NAME, "vunify-hold");
  ::prctl(PR_SET_DUMPABLE, 0);
  unique_fd pid1fd;
  try {
    enter_guest_domain(fds.root_tree);
    ::close(fds.root_tree);
    // Shared network mode: PID 1 stays in the host's network namespace.
    bool shared = l.network.mode == NetworkMode::Shared;
    pid_t pid1 = -1;
    {
      // PID 1 runs in this process's memory until it has exec'd (it sends the supervisor its
      // pidfd itself); its argv and environment are freed here afterwards.
      Pid1Image image;
      Pid1Start start{l, fds.pid1, fds.control, fds.listen, image};
      pid1 = clone_shared(run_pid1, &start, shared ? kCloneNamespaces & ~CLONE_NEWNET : kCloneNamespaces);
    }
    pid1fd.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid1, 0)));  // its parent: not reaped yet
    if (!pid1fd) os::throw_errno("pidfd_open", "PID 1");
    for (int fd : {fds.pid1.go, fds.pid1.report, fds.pid1.self})
      if (fd >= 0) ::close(fd);
    // Every later fork (the exec'd commands) goes into the guest's pid namespace. A command
    // that ended at once took its namespaces with it: nothing to serve then.
    if (::setns(pid1fd.get(), CLONE_NEWPID) != 0) {
      pollfd p{pid1fd.get(), POLLIN, 0};
      if (::poll(&p, 1, 0) == 1) {
        ::close(fds.control);
        ::close(fds.listen);
        _exit(reap(pid1fd.get()) & 0xff);
      }
      os::throw_errno("setns into the guest's pid namespace", "");
    }
  } catch (const std::exception& e) {
    tell(fds.control, 'E', e.what());
    if (pid1fd) ::syscall(SYS_pidfd_send_signal, pid1fd.get(), SIGKILL, nullptr, 0);
    _exit(1);
  }
  ::close(fds.control);
  Serving s{l, fds, pid1fd.get(), {}};
  _exit(serve(s) & 0xff);
}

}  // namespace vunify::context

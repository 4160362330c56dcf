// The start sequence of runc/crun, in two processes, since PID 1 is born in the guest's Landlock
// domain (holder.hpp), which forbids mount(2) and pivot_root: a setup helper in no domain builds
// the mount tree, the console, hostname, lo and pivot_roots (for every process of the mount
// namespace, PID 1 included); PID 1 joins the guest's cgroups and its own cgroup namespace, waits
// for the root, then stdio, environment, every other fd closed, security profile, exec.
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <exception>
#include <string>

#include "context/cgroup.hpp"
#include "context/console.hpp"
#include "context/holder_protocol.hpp"
#include "context/init.hpp"
#include "context/launch.hpp"
#include "context/mounts.hpp"
#include "context/namespaces.hpp"
#include "os/error.hpp"

namespace vunify::context {

namespace {

constexpr const char* kPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

void report_error(int fd, const std::string& what) {
  ssize_t ignored = ::write(fd, what.data(), what.size());
  (void)ignored;
}

void set_stdio(int console) {
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) os::throw_errno("open", "/dev/null (in the guest)");
  if (::dup2(null, 0) < 0 || ::dup2(console, 1) < 0 || ::dup2(console, 2) < 0) os::throw_errno("set up stdio", "");
  ::close(null);
}


// Moves `fd` to `target` keeping (or not) close-on-exec.
void move_fd(int fd, int target, bool cloexec) {
  if (fd != target && ::dup2(fd, target) < 0) os::throw_errno("dup2", "");
  ::fcntl(target, F_SETFD, cloexec ? FD_CLOEXEC : 0);
}

}  // namespace

namespace {

// Everything it allocates is freed on return: the helper shares the supervisor's heap.
void set_up_root_here(const Launch& l, int root_tree, int console_sock) {
  RootPlan plan{root_tree, l.pool + "/run", l.systemd, l.cgroups};
  os::unique_fd root = prepare_root(plan);
  Pty console = make_console(root.get());
  send_fd(console_sock, console.master.get());
  set_hostname(l.hostname);
  if (l.network.mode != NetworkMode::Shared) loopback_up();  // shared: the host's lo
  enter_root(root.get());
}

}  // namespace

void run_root_setup(const Launch& l, int root_tree, int console_sock, int report) {
  try {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    set_up_root_here(l, root_tree, console_sock);
    _exit(0);
  } catch (const std::exception& e) {
    report_error(report, e.what());
  }
  _exit(1);
}

namespace {

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Everything but the exec; what the exec takes goes into `start.image`, everything else it
// allocates is freed on return (PID 1 runs in the holder's memory until it execs).
void set_up_pid1(const Pid1Start& start, int& report) {
  const Launch& l = start.launch;
  const Pid1Fds& fds = start.fds;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  ::prctl(PR_SET_DUMPABLE, 0);  // no /proc/1/exe to the host binary before exec
  {
    os::unique_fd self(static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0)));
    if (!self) os::throw_errno("pidfd_open", "PID 1");
    send_message(start.control, 'P', "", {self.get()});
  }
  ::close(start.control);
  ::close(start.listen);
  join_cgroups(fds.procs);
  for (int fd : fds.procs) ::close(fd);
  if (::unshare(CLONE_NEWCGROUP) != 0) os::throw_errno("unshare the cgroup namespace", "");
  char byte;
  if (::read(fds.go, &byte, 1) != 1) throw os::UserError("");  // the supervisor gave up
  ::prctl(PR_SET_PDEATHSIG, 0);
  os::unique_fd console(::open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!console) os::throw_errno("open", "/dev/console (in the guest)");
  set_stdio(console.get());
  console.reset();
  Pid1Image& image = start.image;
  image.env = {"container=vunify", std::string("PATH=") + kPath, "HOME=/"};
  if (l.systemd) image.env.push_back("TERM=vt220");
  image.args = l.argv;
  if (l.own_init) image.args.insert(image.args.begin(), std::string(kInitName));
  image.envp = c_strings(image.env);
  image.argv = c_strings(image.args);
  // Only the report pipe (init's fd 3, or closed by a successful exec) and the vunify copy
  // survive; close_range drops everything else.
  move_fd(report, kInitReportFd, !l.own_init);
  if (l.own_init) move_fd(fds.self, kInitReportFd + 1, true);
  ::close_range(l.own_init ? kInitReportFd + 2 : kInitReportFd + 1, ~0U, 0);
  report = kInitReportFd;
  PreparedSecurity security = l.security;
  security.profile.landlock = false;  // the holder's domain, shared with every exec'd command
  apply_security(security);
}

}  // namespace

int run_pid1(void* arg) {
  const Pid1Start& start = *static_cast<const Pid1Start*>(arg);
  Pid1Image& image = start.image;
  int report = start.fds.report;
  try {
    set_up_pid1(start, report);
  } catch (const std::exception& e) {
    if (*e.what()) report_error(report, e.what());
    image.argv.clear();
  }
  if (!image.argv.empty()) {
    if (start.launch.own_init)
      ::syscall(SYS_execveat, kInitReportFd + 1, "", image.argv.data(), image.envp.data(), AT_EMPTY_PATH);
    else
      ::execve(image.argv[0], image.argv.data(), image.envp.data());
    int err = errno;
    report_error(report, os::SysError(err, start.launch.own_init ? "exec vunify's init" : "cannot run the guest's init",
                                      start.launch.own_init ? "memfd:vunify-init" : start.launch.argv.at(0))
                             .what());
  }
  _exit(1);
}

}  // namespace vunify::context

// vunify exec: exit status, environment, user, directory, pty, signals.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstddef>
#include <cstring>
#include <fstream>

#include "context/landlock.hpp"
#include "context/security.hpp"
#include "os/error.hpp"
#include "os/unique_fd.hpp"
#include "tests/context_guest.hpp"

namespace vunify::test {

namespace {

// Starts `vunify exec` in the background (output to `out`); returns its pid.
pid_t spawn_exec(const ContextGuest& g, const std::string& command, const std::string& out) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execl(VUNIFY_BIN, VUNIFY_BIN, "--pool", g.pool.c_str(), "exec", g.name.c_str(), "--", "sh", "-c", command.c_str(),
            nullptr);
    _exit(126);
  }
  return pid;
}

// Host pid of the guest process whose command line is `cmdline` (0 if none within ~2 s).
pid_t find_in_guest(const ContextGuest& g, const std::string& cmdline) {
  auto s = g.state();
  for (int i = 0; s && i < 100; ++i, ::usleep(20000))
    for (pid_t p : processes_in_namespace(s->context_id)) {
      std::string c = read_file("/proc/" + std::to_string(p) + "/cmdline");
      for (auto& ch : c)
        if (ch == '\0') ch = ' ';
      if (c == cmdline + " ") return p;
    }
  return 0;
}

char proc_state(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  return stat[stat.rfind(')') + 2];
}

int wait_code(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The pid of host process `pid` in its innermost pid namespace (NSpid's last field).
pid_t guest_pid_of(pid_t pid) {
  std::string status = read_file("/proc/" + std::to_string(pid) + "/status");
  auto at = status.find("NSpid:");
  std::string line = status.substr(at, status.find('\n', at) - at);
  return std::stoi(line.substr(line.find_last_of(" \t") + 1));
}

// A host process that shows up in the guest: forked into the guest's pid and network
// namespaces, listening on the abstract socket @`socket_name` there; in no Landlock domain, or
// (`own_domain`) in one of its own as another guest's processes are. Returns the pid of the
// process that joined (its child is the intruder), and the intruder's host pid.
std::pair<pid_t, pid_t> intrude(pid_t pid1, const std::string& socket_name, bool own_domain) {
  int pipefd[2];
  REQUIRE(::pipe(pipefd) == 0);
  pid_t joiner = ::fork();
  if (joiner == 0) {
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid1, 0));
    if (pidfd < 0 || ::setns(pidfd, CLONE_NEWPID | CLONE_NEWNET) != 0) _exit(1);
    if (own_domain) {
      int root = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
      try {
        context::enter_guest_domain(root);
      } catch (const std::exception&) {
        _exit(1);
      }
    }
    pid_t intruder = ::fork();
    if (intruder == 0) {
      int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::memcpy(addr.sun_path + 1, socket_name.data(), socket_name.size());
      auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + socket_name.size());
      if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, 4) != 0) _exit(1);
      for (;;) ::pause();
    }
    ssize_t ignored = ::write(pipefd[1], &intruder, sizeof intruder);
    (void)ignored;
    int status = 0;
    ::waitpid(intruder, &status, 0);
    _exit(0);
  }
  ::close(pipefd[1]);
  pid_t intruder = 0;
  ssize_t n = ::read(pipefd[0], &intruder, sizeof intruder);
  ::close(pipefd[0]);
  REQUIRE(n == sizeof intruder);
  ::usleep(100000);  // bound and listening
  return {joiner, intruder};
}

}  // namespace

TEST_CASE("context: exec'd commands share the guest's Landlock domain: they signal and reach the guest's own processes, nothing else", "[context][exec][landlock]") {
  VUNIFY_REQUIRE_CONTEXT();
  if (context::landlock_abi() < 6) {
    WARN("skipped: Landlock ABI " << context::landlock_abi() << " < 6 scopes neither signals nor abstract sockets");
    return;
  }
  ContextGuest g("dom", false);
  write_file(g.dir / "src/bin/abstract_socket", read_file(VUNIFY_TEST_ABSTRACT_SOCKET), 0755);
  g.add_guest(g.name, g.dir / "src");
  std::string sock = g.name + "-pid1";
  g.ok("start " + g.name + " -- /bin/sh -c '/bin/sleep 1011 & /bin/abstract_socket listen " + sock + " & exec /bin/sleep 1010'");
  pid_t daemon = find_in_guest(g, "/bin/sleep 1011");
  REQUIRE(daemon > 0);
  REQUIRE(find_in_guest(g, "/bin/abstract_socket listen " + sock) > 0);
  // From exec (and from a shell of exec), as from the guest's init's own children.
  auto r = g.sh("/bin/abstract_socket connect " + sock);
  CHECK(r.out == "ok\n");
  CHECK(r.status == 0);
  r = g.sh("kill -0 " + std::to_string(guest_pid_of(daemon)) + " && kill " + std::to_string(guest_pid_of(daemon)));
  INFO(r.out);
  CHECK(r.status == 0);
  for (int i = 0; i < 100 && ::kill(daemon, 0) == 0 && proc_state(daemon) != 'Z'; ++i) ::usleep(20000);
  CHECK((::kill(daemon, 0) != 0 || proc_state(daemon) == 'Z'));
  // A second exec'd command is in the same domain too.
  pid_t helper = spawn_exec(g, "exec sleep 995", g.dir / "exec.out");
  pid_t other = find_in_guest(g, "sleep 995");
  REQUIRE(other > 0);
  bool killed = g.sh("kill " + std::to_string(guest_pid_of(other))).status == 0;
  CHECK(killed);
  if (!killed) ::kill(helper, SIGTERM);  // `vunify exec` forwards it
  CHECK(wait_code(helper) == 128 + SIGTERM);
  // A process of the host, or of another domain (as another guest's), that joined the guest's
  // pid and network namespaces is visible in the guest but outside its domain: no signal, no
  // connection to its abstract socket.
  for (bool own_domain : {false, true}) {
    INFO((own_domain ? "a process in a domain of its own" : "a host process"));
    std::string host_sock = g.name + (own_domain ? "-other" : "-host");
    auto [joiner, intruder] = intrude(g.state()->pid1, host_sock, own_domain);
    r = g.sh("kill -0 " + std::to_string(guest_pid_of(intruder)));
    CHECK(r.status != 0);
    CHECK(r.out.find("not permitted") != std::string::npos);
    r = g.sh("/bin/abstract_socket connect " + host_sock);
    CHECK(r.out == "connect EPERM\n");
    CHECK(::kill(intruder, 0) == 0);
    ::kill(intruder, SIGKILL);
    ::waitpid(joiner, nullptr, 0);
  }
}

TEST_CASE("context: exec passes exit status, environment, user and directory", "[context][exec]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("exec");
  g.ok("start " + g.name + " -- /bin/sleep 1000");
  CHECK(g.sh("exit 7").status == 7);
  CHECK(g.sh("kill -USR1 $$").status == 128 + SIGUSR1);
  auto r = g.sh("echo $FOO-$BAR-$container; echo $PATH", "-e FOO=1 -e BAR=two");
  CHECK(r.out == "1-two-vunify\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
  CHECK(g.sh("id -u; id -g; pwd", "-u nobody -w /tmp").out == "65534\n65534\n/tmp\n");
  CHECK(g.sh("id -u; pwd", "-u 4242").out == "4242\n/\n");
  CHECK(g.sh("pwd").out == "/root\n");
  r = vunify(g.pool, "exec " + g.name + " -- /no/such/command");
  CHECK(r.status == 127);
  CHECK(r.out.find("cannot run /no/such/command") != std::string::npos);
  r = vunify(g.pool, "exec -u nosuchuser " + g.name + " -- true");
  CHECK(r.status == 127);
  CHECK(r.out.find("no user 'nosuchuser'") != std::string::npos);
  r = vunify(g.pool, "exec -w /no/dir " + g.name + " -- true");
  CHECK(r.status == 127);
  CHECK(r.out.find("/no/dir") != std::string::npos);
  // in the guest's cgroups, each the root of its cgroup namespace
  CHECK(g.sh("grep -vc :/$ /proc/self/cgroup").out == "0\n");
  // a guest without /etc/passwd still gets root by default
  REQUIRE(g.sh("rm /etc/passwd").status == 0);
  CHECK(g.sh("id -u; pwd").out == "0\n/\n");
}

namespace {

// A field of /proc/PID/status in kB (-1 if missing).
long status_kb(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  return -1;
}

}  // namespace

TEST_CASE("context: exec'd commands start in the holder's memory and leave nothing of it behind", "[context][exec]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("execmem");
  g.ok("start " + g.name + " -- /bin/sleep 1000");
  auto s = g.state();
  REQUIRE(s);
  pid_t sup = s->supervisor;
  std::string children = read_file("/proc/" + std::to_string(sup) + "/task/" + std::to_string(sup) + "/children");
  pid_t holder = static_cast<pid_t>(std::atoi(children.c_str()));
  REQUIRE(holder > 0);
  REQUIRE(read_file("/proc/" + std::to_string(holder) + "/comm") == "vunify-hold\n");
  // -e, -u, a failing command and a missing user: every path of the child's setup
  std::string loop = "for i in $(seq 40); do " + std::string(VUNIFY_BIN) + " --pool '" + g.pool + "' exec " +
                     "-e K$i=v -u nobody -w / " + g.name + " -- true; " + std::string(VUNIFY_BIN) + " --pool '" + g.pool +
                     "' exec " + g.name + " -- /no/such; " + std::string(VUNIFY_BIN) + " --pool '" + g.pool +
                     "' exec -u nosuchuser " + g.name + " -- true; done >/dev/null 2>&1";
  run(loop);  // warm-up: the heap reaches its working size
  long before = status_kb(holder, "VmData");
  run(loop);
  run(loop);
  long after = status_kb(holder, "VmData");
  INFO("holder VmData " << before << " kB -> " << after << " kB after 240 more execs");
  CHECK(before > 0);
  CHECK(after - before < 200);  // a leak of 1 kB per exec would be 240 kB
  // the holder's own environment is back after each exec (execvp saw the command's PATH)
  CHECK(g.sh("echo $PATH", "-e PATH=/bin").out == "/bin\n");
  CHECK(g.sh("true").status == 0);
}

TEST_CASE("context: exec -t gives a pty of the guest's devpts", "[context][exec]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("tty");
  g.ok("start " + g.name + " -- /bin/sleep 1000");
  auto r = vunify(g.pool, "exec -t " + g.name + " -- sh -c 'tty; test -t 0 && echo interactive' </dev/null");
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(r.out.find("/dev/pts/1") != std::string::npos);  // 0 is the console
  CHECK(r.out.find("interactive") != std::string::npos);
  CHECK(g.sh("test -t 0").status == 1);
}

TEST_CASE("context: enter gives root's login shell on a pty", "[context][exec]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("enter");
  g.ok("start " + g.name + " -- /bin/sleep 1000");
  auto r = run("printf 'echo in-$(hostname)-$(id -u)-$(tty)\\nexit 3\\n' | " + std::string(VUNIFY_BIN) + " --pool '" +
               g.pool + "' enter " + g.name);
  INFO(r.out);
  CHECK(r.status == 3);
  CHECK(r.out.find("in-" + g.name + "-0-/dev/pts/") != std::string::npos);
}

TEST_CASE("context: exec forwards signals and does not stop with its stopped child", "[context][exec]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("sig");
  g.ok("start " + g.name + " -- /bin/sleep 1000");
  std::string out = g.dir / "exec.out";
  pid_t helper = spawn_exec(g, "exec sleep 997", out);
  pid_t child = find_in_guest(g, "sleep 997");
  REQUIRE(child > 0);
  // systemd stops every process at shutdown: the helper must keep running
  REQUIRE(::kill(child, SIGSTOP) == 0);
  ::usleep(200000);
  CHECK(proc_state(child) == 'T');
  CHECK(proc_state(helper) != 'T');
  ::kill(child, SIGCONT);
  REQUIRE(::kill(helper, SIGTERM) == 0);
  CHECK(wait_code(helper) == 128 + SIGTERM);
  // a trapped signal reaches the command's own handler
  helper = spawn_exec(g, "trap \"exit 42\" HUP; sleep 996 & wait", out);
  REQUIRE(find_in_guest(g, "sleep 996") > 0);
  ::kill(helper, SIGHUP);
  CHECK(wait_code(helper) == 42);
}

}  // namespace vunify::test

#include "tests/child_report.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "os/error.hpp"

namespace vunify::test {

std::string errno_name(int err) {
  if (err == 0) return "OK";
  const char* name = ::strerrorname_np(err);
  return name ? name : "errno" + std::to_string(err);
}

void Reporter::put(const std::string& name, const std::string& value) {
  std::string line = name + " " + value + "\n";
  if (::write(fd_, line.data(), line.size()) < 0) _exit(4);
}

void Reporter::call(const std::string& name, long rc) {
  int err = errno;
  put(name, rc >= 0 ? "OK" : errno_name(err));
}

void report_status(Reporter& r, const std::string& prefix) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Cap", 0) != 0 && line.rfind("Seccomp:", 0) != 0) continue;
    size_t colon = line.find(':');
    r.put(prefix + line.substr(0, colon), line.substr(line.find_first_not_of(" \t", colon + 1)));
  }
}

std::string own_status(const std::string& field) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind(field + ":", 0) == 0) return line.substr(line.find_first_not_of(" \t", field.size() + 1));
  return "";
}

void must(long rc, const char* what) {
  if (rc < 0) os::throw_errno(what, "");
}

std::string ChildReport::get(const std::string& name) const {
  auto it = found.find(name);
  return it == found.end() ? "MISSING" : it->second;
}

namespace {

void parse(const std::string& text, ChildReport& report) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    size_t space = line.find_first_of(" \t");
    std::string name = line.substr(0, space);
    std::string value = space == std::string::npos ? "" : line.substr(line.find_first_not_of(" \t", space));
    if (name == "exception") report.error = value;
    report.found[name] = value;
  }
}

int wait_status(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

ChildReport run_child(const std::function<void(Reporter&)>& body, int timeout_s) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a test binary that was killed
    if (::getppid() != parent) _exit(5);
    ::close(fds[0]);
    for (int sig : {SIGSEGV, SIGABRT, SIGBUS, SIGILL, SIGFPE}) ::signal(sig, SIG_DFL);  // not the test framework's
    Reporter reporter(fds[1]);
    try {
      body(reporter);
    } catch (const std::exception& e) {
      reporter.put("exception", e.what());
      _exit(3);
    }
    _exit(0);
  }
  ::close(fds[1]);
  std::string text;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    pollfd p{fds[0], POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) == 0) {
      ::kill(pid, SIGKILL);
      text += "timeout killed\n";
      break;
    }
    char buf[4096];
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  ChildReport report;
  report.status = wait_status(pid);
  parse(text, report);
  return report;
}

Sleeper::Sleeper() {
  pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) _exit(0);
    for (;;) ::pause();
  }
}

Sleeper::~Sleeper() {
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
}

bool Sleeper::alive() const {
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == 0;
}

}  // namespace vunify::test

#include "os/view_probe.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <fstream>
#include <sstream>

namespace vunify::os {

namespace {

// Mount points in mountinfo escape space, tab, newline and backslash as \ooo.
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    bool octal = s[i] == '\\' && i + 3 < s.size();
    for (size_t k = 1; octal && k <= 3; ++k) octal = s[i + k] >= '0' && s[i + k] <= '7';
    if (octal) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The path with its directory part resolved (symlinks, ..): as the mount table shows it. The
// last component is kept as it is: resolving it would walk into the mount.
std::string canonical_mount_path(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return path;
  std::string dir = slash == 0 ? "/" : path.substr(0, slash);
  char buf[PATH_MAX];
  if (!::realpath(dir.c_str(), buf)) return path;
  std::string out = buf;
  return (out == "/" ? "" : out) + path.substr(slash);
}

struct ProcState {
  char state = 0;  // 0: no such process
  unsigned long long start = 0;
};

ProcState proc_state(pid_t pid) {
  ProcState p;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return p;
  auto close = line.rfind(')');
  if (close == std::string::npos) return p;
  std::istringstream rest(line.substr(close + 1));
  std::string field;
  rest >> p.state;
  for (int i = 4; i <= 22 && rest >> field; ++i)
    if (i == 22) p.start = std::stoull(field);
  return p;
}

// Probes a mount without a recorded daemon: a stat in a child, killed after `timeout_ms`.
ViewState probe_by_stat(const std::string& mountpoint, int timeout_ms) {
  pid_t child = ::fork();
  if (child < 0) return ViewState::Live;  // cannot tell: assume in use (the safe side)
  if (child == 0) {
    struct stat st;
    if (::stat(mountpoint.c_str(), &st) == 0) ::_exit(0);
    ::_exit(errno == ENOTCONN || errno == ECONNABORTED ? 1 : 2);
  }
  for (int waited = 0;; waited += 10) {
    int status = 0;
    pid_t r = ::waitpid(child, &status, WNOHANG);
    if (r == child) {
      if (WIFEXITED(status) && WEXITSTATUS(status) == 1) return ViewState::Dead;
      return ViewState::Live;
    }
    if (r < 0 && errno != EINTR) return ViewState::Live;
    if (waited >= timeout_ms) {
      ::kill(child, SIGKILL);  // a FUSE request waits killably
      ::waitpid(child, nullptr, 0);
      return ViewState::Stopped;
    }
    ::usleep(10000);
  }
}

}  // namespace

bool is_mount_point(const std::string& path) {
  std::string want = canonical_mount_path(path);
  std::ifstream f("/proc/self/mountinfo");
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string id, parent, devno, root, mnt;
    if (in >> id >> parent >> devno >> root >> mnt && unescape(mnt) == want) return true;
  }
  return false;
}

std::string pid_file_line() { return fmt::format("{} {}\n", ::getpid(), proc_state(::getpid()).start); }

ViewStatus view_status(const std::string& mountpoint, const std::string& pid_file) {
  ViewStatus s;
  if (!is_mount_point(mountpoint)) return s;
  std::ifstream f(pid_file);
  long pid = 0;
  unsigned long long start = 0;
  if (!(f >> pid) || pid <= 1) {
    s.state = probe_by_stat(mountpoint, 2000);
    return s;
  }
  bool has_start = static_cast<bool>(f >> start);
  ProcState p = proc_state(static_cast<pid_t>(pid));
  if (p.state == 0 || p.state == 'Z' || p.state == 'X' || (has_start && p.start != start)) {
    s.state = ViewState::Dead;
    return s;
  }
  s.daemon = static_cast<pid_t>(pid);
  s.state = p.state == 'T' || p.state == 't' ? ViewState::Stopped : ViewState::Live;
  return s;
}

std::string stopped_daemon_note(const ViewStatus& s) {
  if (s.daemon == 0) return "its view daemon does not answer";
  return fmt::format("its view daemon (pid {}) is stopped (SIGSTOP): 'kill -CONT {}' resumes it", s.daemon, s.daemon);
}

}  // namespace vunify::os

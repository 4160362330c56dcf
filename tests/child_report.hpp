// Running a check in a forked child (namespaces, security profiles, cgroups: things a test
// must not do to its own process) and reading its findings back through a pipe.
#pragma once
#include <sys/types.h>

#include <functional>
#include <map>
#include <string>

namespace vunify::test {

// The child's side: one "name value" line per finding.
class Reporter {
 public:
  explicit Reporter(int fd) : fd_(fd) {}
  void put(const std::string& name, const std::string& value);
  // Records "OK" if rc >= 0, else errno's name ("EPERM"). Call as call("x", syscall(...)).
  void call(const std::string& name, long rc);
  int fd() const { return fd_; }

 private:
  int fd_;
};

struct ChildReport {
  int status = -1;                           // exit status, or 128+signal
  std::map<std::string, std::string> found;  // name -> value ("MISSING" via get() if absent)
  std::string error;                         // the child's exception, if any
  std::string get(const std::string& name) const;
};

// Forks; the child runs `body` and exits 0 (3 after an exception, reported as `error`). The
// parent reads the report until EOF, then reaps the child; after `timeout_s` it kills it.
ChildReport run_child(const std::function<void(Reporter&)>& body, int timeout_s = 120);

// Reports this process's Cap* and Seccomp lines of /proc/self/status ("CapBnd" -> hex).
void report_status(Reporter& r, const std::string& prefix = "");
// A field of this process's /proc/self/status ("CapBnd"), "" if absent.
std::string own_status(const std::string& field);
// Throws os::SysError(errno, what) if rc < 0 (setup steps in a child).
void must(long rc, const char* what);

// "EPERM" for EPERM, "OK" for 0.
std::string errno_name(int err);

// A forked process that only waits to be killed; killed by PID and reaped on destruction.
class Sleeper {
 public:
  Sleeper();
  ~Sleeper();
  Sleeper(const Sleeper&) = delete;
  Sleeper& operator=(const Sleeper&) = delete;
  pid_t pid() const { return pid_; }
  bool alive() const;  // not exited or killed (without reaping)

 private:
  pid_t pid_;
};

}  // namespace vunify::test

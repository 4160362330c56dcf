// vunify-init: PID 1 of a context started with a command (or without an init of its own). Runs
// the command, reaps orphans, forwards signals to it and exits with its status. Built static
// and embedded in vunify (context/init.cpp), which runs it from a sealed memfd: it needs nothing
// from the guest's tree, and the guest cannot reach the host's binary through /proc/1/exe.
//
// fd 3 (if open) is the start report: the reason the command could not run, or EOF once it runs.
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <initializer_list>

namespace {

constexpr int kInitReportFd = 3;


void write_all(int fd, const char* text, size_t size) {
  for (size_t off = 0; off < size;) {
    ssize_t n = ::write(fd, text + off, size - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

[[noreturn]] void run_command(char** argv, int exec_report) {
  sigset_t none;
  sigemptyset(&none);
  for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::close(kInitReportFd);
  ::setsid();
  ::execvp(argv[0], argv);
  // One write: init reads the report with a single read.
  char msg[512];
  size_t len = 0;
  const char* error = std::strerror(errno);
  for (const char* part : {"cannot run ", const_cast<const char*>(argv[0]), " in the guest: ", error})
    for (; *part && len < sizeof msg; ++part) msg[len++] = *part;
  write_all(exec_report, msg, len);
  _exit(127);
}

int status_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

// Reaps every child that has exited; returns the status of `main_pid` if it was one of them.
bool reap(pid_t main_pid, int& code) {
  bool done = false;
  int status;
  for (pid_t p; (p = ::waitpid(-1, &status, WNOHANG)) > 0;)
    if (p == main_pid) {
      done = true;
      code = status_code(status);
    }
  return done;
}

bool is_stop_signal(int sig) { return sig == SIGTERM || sig == SIGINT || sig == SIGRTMIN + 3 || sig == SIGPWR; }


}  // namespace

int main(int argc, char** argv) {
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_BLOCK, &all, nullptr);
  ::prctl(PR_SET_NAME, "vunify-init");
  ::prctl(PR_SET_DUMPABLE, 0);  // nothing in the guest may open /proc/1/exe or ptrace PID 1
  pid_t main_pid = -1;
  if (argc > 1) {
    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0) return 127;
    main_pid = ::fork();
    if (main_pid == 0) run_command(argv + 1, report[1]);
    ::close(report[1]);
    char buf[512];
    ssize_t n;
    while ((n = ::read(report[0], buf, sizeof buf)) < 0 && errno == EINTR) {
    }
    if (n > 0 || main_pid < 0) {
      if (n > 0) write_all(kInitReportFd, buf, static_cast<size_t>(n));
      else write_all(kInitReportFd, "init: cannot fork", 17);
      return 127;
    }
    ::close(report[0]);
  }
  ::close(kInitReportFd);
  for (int code = 0;;) {
    siginfo_t info;
    int sig = ::sigwaitinfo(&all, &info);
    if (sig < 0) continue;
    if (sig == SIGCHLD) {
      if (reap(main_pid, code)) return code;
    } else if (main_pid < 0) {
      if (is_stop_signal(sig)) return 0;
    } else {
      ::kill(main_pid, sig == SIGRTMIN + 3 ? SIGTERM : sig);
    }
  }
}


#include "context/namespaces.hpp"

#include <linux/sched.h>
#include <net/if.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "os/error.hpp"

namespace vunify::context {

pid_t clone_into(int flags, os::unique_fd& pidfd) {
  int fd = -1;
  clone_args args{};
  args.flags = static_cast<uint64_t>(flags) | CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uint64_t>(&fd);
  args.exit_signal = SIGCHLD;
  long pid = ::syscall(SYS_clone3, &args, sizeof args);
  if (pid < 0) os::throw_errno("clone3 into new namespaces", "");
  if (pid > 0) pidfd.reset(fd);
  return static_cast<pid_t>(pid);
}

pid_t clone_shared(int (*fn)(void*), void* arg, int flags) {
  constexpr size_t kStack = 1 << 20;  // touched pages only: what the child's C++ code uses
  void* stack = ::mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) os::throw_errno("mmap a stack for a child", "");
  int pid = ::clone(fn, static_cast<char*>(stack) + kStack, CLONE_VM | CLONE_VFORK | flags | SIGCHLD, arg);
  int err = errno;
  ::munmap(stack, kStack);  // the child has exited or exec'd
  if (pid < 0) throw os::SysError(err, "clone a child", "");
  return pid;
}

void join_namespaces(int pidfd) {
  if (::setns(pidfd, kAllNamespaces & ~CLONE_NEWPID) != 0) os::throw_errno("setns into the guest's namespaces", "");
}

pid_t pid_of(int pidfd) {
  char path[64], buf[1024];
  std::snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  const char* line = std::strstr(buf, "\nPid:");
  return line ? static_cast<pid_t>(std::max(0L, std::strtol(line + 5, nullptr, 10))) : 0;
}

uint64_t pid_namespace_of(pid_t pid) {
  struct stat st;
  if (::stat(("/proc/" + std::to_string(pid) + "/ns/pid").c_str(), &st) != 0) return 0;
  return st.st_ino;
}

void set_hostname(const std::string& name) {
  if (::sethostname(name.data(), name.size()) != 0) os::throw_errno("set hostname", name);
}

void loopback_up() {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) os::throw_errno("socket for", "lo");
  ifreq req{};
  std::strncpy(req.ifr_name, "lo", IFNAMSIZ - 1);
  bool ok = ::ioctl(s, SIOCGIFFLAGS, &req) == 0;
  req.ifr_flags |= IFF_UP;
  ok = ok && ::ioctl(s, SIOCSIFFLAGS, &req) == 0;
  int err = errno;
  ::close(s);
  if (!ok) throw os::SysError(err, "bring up", "lo");
}

}  // namespace vunify::context

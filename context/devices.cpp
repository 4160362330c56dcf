#include "context/devices.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "context/mounts.hpp"
#include "os/error.hpp"

namespace vunify::context {

namespace {

struct Node {
  const char* name;
  unsigned major, minor;
};
constexpr Node kNodes[] = {{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
constexpr const char* kLinks[][2] = {{"ptmx", "pts/ptmx"},          {"fd", "/proc/self/fd"},
                                     {"stdin", "/proc/self/fd/0"},  {"stdout", "/proc/self/fd/1"},
                                     {"stderr", "/proc/self/fd/2"}};

}  // namespace

void make_dev(int root_fd) {
  mount_at(root_fd, "dev", "tmpfs", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=64k,nr_inodes=4096");
  os::unique_fd dev_path = open_target(root_fd, "dev", false);
  os::unique_fd dev(::openat(dev_path.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dev) os::throw_errno("open", "/dev");
  mode_t old = ::umask(0);
  for (const Node& n : kNodes)
    if (::mknodat(dev.get(), n.name, S_IFCHR | 0666, ::makedev(n.major, n.minor)) != 0) {
      ::umask(old);
      os::throw_errno("mknod", std::string("/dev/") + n.name);
    }
  ::umask(old);
  for (const auto& l : kLinks)
    if (::symlinkat(l[1], dev.get(), l[0]) != 0) os::throw_errno("symlink", std::string("/dev/") + l[0]);
  mount_at(root_fd, "dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5");
  mount_at(root_fd, "dev/shm", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=64m");
  mount_at(root_fd, "dev/mqueue", "mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC);
}

}  // namespace vunify::context

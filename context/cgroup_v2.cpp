// cgroup2: the device allowlist is a BPF program attached to the guest's directory, and
// cgroup.kill ends every process of the subtree at once.
#include <fcntl.h>
#include <unistd.h>

#include "context/cgroup.hpp"
#include "context/security.hpp"
#include "os/error.hpp"
#include "os/unique_fd.hpp"

namespace vunify::context {

void prepare_v2_dir(const CgroupDir& dir) {
  os::unique_fd fd(::open(dir.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) os::throw_errno("open", dir.dir);
  restrict_devices_v2(fd.get());
}

void enable_v2_controllers(const std::string& parent) {
  std::string have;
  {
    os::unique_fd fd(::open((parent + "/cgroup.controllers").c_str(), O_RDONLY | O_CLOEXEC));
    char buf[512];
    ssize_t n = fd ? ::read(fd.get(), buf, sizeof buf) : -1;
    if (n > 0) have = " " + std::string(buf, static_cast<size_t>(n));
  }
  for (const char* c : {"cpu", "cpuset", "memory", "pids", "io"}) {
    if (have.find(std::string(" ") + c + " ") == std::string::npos && have.find(std::string(" ") + c + "\n") == std::string::npos)
      continue;
    try {  // a controller that cannot be enabled is reported by the limit that needs it
      write_cgroup_file(parent + "/cgroup.subtree_control", std::string("+") + c);
    } catch (const std::exception&) {
    }
  }
}

bool kill_v2(const CgroupDir& dir) {
  os::unique_fd fd(::open((dir.dir + "/cgroup.kill").c_str(), O_WRONLY | O_CLOEXEC));
  return fd && ::write(fd.get(), "1", 1) == 1;
}

}  // namespace vunify::context

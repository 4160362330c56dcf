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

bool kill_v2(const CgroupDir& dir) {
  os::unique_fd fd(::open((dir.dir + "/cgroup.kill").c_str(), O_WRONLY | O_CLOEXEC));
  return fd && ::write(fd.get(), "1", 1) == 1;
}

}  // namespace vunify::context

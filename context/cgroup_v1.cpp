// cgroup v1: a new cpuset cgroup starts with no cpus and mems (copied from the parent so tasks
// can join); the devices controller gets Docker's allowlist.
#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "context/cgroup.hpp"
#include "context/security.hpp"
#include "os/error.hpp"
#include "os/unique_fd.hpp"

namespace vunify::context {

namespace {

void copy_from_parent(const std::string& dir, const char* file) {
  std::string parent = dir.substr(0, dir.rfind('/'));
  char buf[4096];
  os::unique_fd in(::open((parent + "/" + file).c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) os::throw_errno("open", parent + "/" + file);
  ssize_t n = ::read(in.get(), buf, sizeof buf);
  if (n < 0) os::throw_errno("read", parent + "/" + file);
  os::unique_fd out(::open((dir + "/" + file).c_str(), O_WRONLY | O_CLOEXEC));
  if (!out || ::write(out.get(), buf, static_cast<size_t>(n)) != n) os::throw_errno("write", dir + "/" + file);
}

}  // namespace

void prepare_v1_dir(const CgroupDir& dir) {
  if (dir.has("cpuset")) {
    copy_from_parent(dir.dir, "cpuset.cpus");
    copy_from_parent(dir.dir, "cpuset.mems");
  }
  if (dir.has("devices") && dir.dir.substr(dir.dir.rfind('/')) != "/vunify") {
    os::unique_fd fd(::open(dir.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) os::throw_errno("open", dir.dir);
    restrict_devices_v1(fd.get());
  }
}

}  // namespace vunify::context

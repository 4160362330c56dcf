// The device allowlist, enforced for real: a child in a test cgroup makes device nodes in a
// tmpfs of its own mount namespace and opens them read-only (nothing is ever written).
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "context/security.hpp"
#include "os/error.hpp"
#include "os/unique_fd.hpp"
#include "tests/child_report.hpp"
#include "tests/helpers.hpp"

using vunify::test::Reporter;

namespace {

// A cgroup `vunify-test-devices-PID` under `parent`, removed on destruction (its processes
// have been reaped by then).
class TestCgroup {
 public:
  explicit TestCgroup(const std::string& parent) : path_(parent + "/vunify-test-devices-" + std::to_string(::getpid())) {
    if (::mkdir(path_.c_str(), 0755) != 0) vunify::os::throw_errno("mkdir cgroup", path_);
    dir_ = vunify::os::unique_fd(::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir_) vunify::os::throw_errno("open cgroup", path_);
  }
  ~TestCgroup() {
    dir_.reset();
    for (int i = 0; i < 50 && ::rmdir(path_.c_str()) != 0 && errno == EBUSY; ++i) ::usleep(20000);  // a task still leaving
  }
  TestCgroup(const TestCgroup&) = delete;
  TestCgroup& operator=(const TestCgroup&) = delete;
  const std::string& path() const { return path_; }
  int fd() const { return dir_.get(); }

 private:
  std::string path_;
  vunify::os::unique_fd dir_;
};

bool is_fs(const std::string& path, long magic) {
  struct statfs st {};
  return ::statfs(path.c_str(), &st) == 0 && st.f_type == magic;
}

// A block device's numbers: the loop device's if there is one (never written, only opened
// read-only, and only while the allowlist should refuse it).
dev_t block_device() {
  struct stat st {};
  if (::stat("/dev/loop0", &st) == 0 && S_ISBLK(st.st_mode)) return st.st_rdev;
  return makedev(7, 0);
}

void join(const std::string& cgroup) {
  std::string procs = cgroup + "/cgroup.procs";
  int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
  std::string pid = std::to_string(::getpid());
  if (fd < 0 || ::write(fd, pid.data(), pid.size()) < 0) vunify::os::throw_errno("join cgroup", procs);
  ::close(fd);
}

// In the child, inside the restricted cgroup.
void try_devices(Reporter& r, const std::string& scratch) {
  if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      ::mount("tmpfs", scratch.c_str(), "tmpfs", 0, "mode=0700") != 0)
    vunify::os::throw_errno("scratch tmpfs", scratch);
  std::string disk = scratch + "/disk", null = scratch + "/null", loopctl = scratch + "/loop-control";
  r.call("mknod_block", ::mknod(disk.c_str(), S_IFBLK | 0600, block_device()));
  r.call("mknod_null", ::mknod(null.c_str(), S_IFCHR | 0666, makedev(1, 3)));
  r.call("mknod_loop_control", ::mknod(loopctl.c_str(), S_IFCHR | 0600, makedev(10, 237)));
  r.call("open_block", ::open(disk.c_str(), O_RDONLY | O_CLOEXEC));
  r.call("open_loop_control", ::open(loopctl.c_str(), O_RDONLY | O_CLOEXEC));
  r.call("open_null", ::open(null.c_str(), O_RDWR | O_CLOEXEC));
}

void check_allowlist(const vunify::test::ChildReport& report) {
  INFO("child error: " << report.error);
  REQUIRE(report.status == 0);
  CHECK(report.get("mknod_block") == "OK");
  CHECK(report.get("mknod_null") == "OK");
  CHECK(report.get("mknod_loop_control") == "OK");  // mknod of any node is allowed, opening is not
  CHECK(report.get("open_block") == "EPERM");
  CHECK(report.get("open_loop_control") == "EPERM");
  CHECK(report.get("open_null") == "OK");
}

}  // namespace

TEST_CASE("devices: the v1 devices cgroup refuses to open a block device node", "[context][security][devices]") {
  VUNIFY_REQUIRE_ROOT();
  const std::string parent = "/sys/fs/cgroup/devices";
  if (::access((parent + "/devices.allow").c_str(), W_OK) != 0) {
    WARN("skipped: no writable cgroup v1 devices controller at " << parent);
    return;
  }
  vunify::test::TempDir scratch;
  TestCgroup cgroup(parent);
  vunify::context::restrict_devices_v1(cgroup.fd());
  CHECK(vunify::test::read_file(cgroup.path() + "/devices.list").find("b 7:") == std::string::npos);
  check_allowlist(vunify::test::run_child([&](Reporter& r) {
    join(cgroup.path());
    try_devices(r, scratch.path());
  }));
}

TEST_CASE("devices: the v2 BPF device program refuses to open a block device node", "[context][security][devices]") {
  VUNIFY_REQUIRE_ROOT();
  std::string parent = "/sys/fs/cgroup/unified";
  if (!is_fs(parent, CGROUP2_SUPER_MAGIC)) parent = "/sys/fs/cgroup";
  if (!is_fs(parent, CGROUP2_SUPER_MAGIC)) {
    WARN("skipped: no cgroup2 hierarchy at /sys/fs/cgroup/unified or /sys/fs/cgroup");
    return;
  }
  vunify::test::TempDir scratch;
  TestCgroup cgroup(parent);
  vunify::context::restrict_devices_v2(cgroup.fd());
  check_allowlist(vunify::test::run_child([&](Reporter& r) {
    join(cgroup.path());
    try_devices(r, scratch.path());
  }));
}

// Device nodes in the view (issue 16, part 2): by default the view is nodev; `--dev` lets the
// guest open its character devices (a chroot needs /dev/null), but block device nodes stay
// refused (a guest root could otherwise open the pool's own disk and write beneath the store)
// unless `--allow-block-devices`. Block devices are only ever opened O_RDONLY here, and
// closed at once.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <filesystem>
#include <string>

#include "tests/test_fs_support.hpp"

using namespace vunify::test;

namespace {

// errno of open(path, flags), 0 if it opened (the fd is closed at once).
int open_errno(const std::string& path, int flags);

// The numbers of a block device of this machine that a node outside the view opens O_RDONLY
// (sandboxes may forbid some devices), if any. `scratch` is a path for the probe node.
bool openable_block_device(const std::string& scratch, dev_t& dev) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/sys/dev/block", ec)) {
    unsigned major = 0, minor = 0;
    if (std::sscanf(entry.path().filename().c_str(), "%u:%u", &major, &minor) != 2) continue;
    ::unlink(scratch.c_str());
    if (::mknod(scratch.c_str(), S_IFBLK | 0600, makedev(major, minor)) != 0) continue;
    bool opens = open_errno(scratch, O_RDONLY) == 0;
    ::unlink(scratch.c_str());
    if (opens) {
      dev = makedev(major, minor);
      return true;
    }
  }
  return false;
}

// errno of open(path, flags), 0 if it opened (the fd is closed at once).
int open_errno(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return errno;
  ::close(fd);
  return 0;
}

bool refused(int err) { return err == EACCES || err == EPERM; }

}  // namespace

TEST_CASE("a --dev view opens character devices but refuses block devices unless --allow-block-devices",
          "[fs][devices]") {
  VUNIFY_REQUIRE_FUSE();
  TempDir tmp;
  dev_t disk = 0;
  if (!openable_block_device(tmp / "probe", disk)) {
    WARN("skipped: no block device node opens here, even outside a view");
    return;
  }
  std::string pool = tmp / "pool", src = tmp / "src";
  MountGuard guard(pool, tmp.path());
  mkdirs(src + "/dev");
  REQUIRE(::mknod((src + "/dev/disk").c_str(), S_IFBLK | 0600, disk) == 0);
  REQUIRE(::mknod((src + "/dev/null").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0);
  REQUIRE(cli(pool, "init").status == 0);
  REQUIRE(cli(pool, "guest add g --from '" + src + "'").status == 0);
  std::string root = pool + "/guests/g/root";
  auto remount = [&](const std::string& options) {
    cli(pool, "umount g");
    auto r = cli(pool, "mount g " + options);
    INFO(r.out);
    REQUIRE(r.status == 0);
  };

  SECTION("default: nodev") {
    remount("");
    CHECK(open_errno(root + "/dev/null", O_RDWR) == EACCES);
    CHECK(open_errno(root + "/dev/disk", O_RDONLY) == EACCES);
    CHECK(S_ISBLK(stat_of(root + "/dev/disk").st_mode));  // shown as in the tree
    CHECK(stat_of(root + "/dev/disk").st_rdev == disk);
  }
  SECTION("--dev: character devices open, block devices do not") {
    remount("--dev");
    CHECK(open_errno(root + "/dev/null", O_RDWR) == 0);
    int err = open_errno(root + "/dev/disk", O_RDONLY);
    INFO("open errno " << err);
    CHECK(refused(err));
    errno = 0;
    CHECK(::mknod((root + "/dev/disk2").c_str(), S_IFBLK | 0600, disk) != 0);
    CHECK(refused(errno));
    CHECK(::access((pool + "/backing/g/dev/disk2").c_str(), F_OK) != 0);  // nothing made
    REQUIRE(::mknod((root + "/dev/null2").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0);
    CHECK(open_errno(root + "/dev/null2", O_WRONLY) == 0);
  }
  SECTION("--dev --allow-block-devices: block devices open too") {
    remount("--dev --allow-block-devices");
    CHECK(open_errno(root + "/dev/disk", O_RDONLY) == 0);
    CHECK(stat_of(root + "/dev/disk").st_rdev == disk);
  }
  SECTION("--allow-block-devices needs --dev") {
    auto r = cli(pool, "mount g --allow-block-devices");
    CHECK(r.status != 0);
    CHECK(r.out.find("--dev") != std::string::npos);
  }
}

#include "tests/loop_fs.hpp"

#include <fmt/format.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

namespace vunify::test {

LoopFs::LoopFs(int size_mib) : image_(dir_ / "disk.img"), mnt_(dir_ / "mnt") {
  if (run("command -v losetup && command -v mkfs.ext4").status != 0) {
    why_ = "needs losetup and mkfs.ext4 (apt-get install mount e2fsprogs)";
    return;
  }
  mkdirs(mnt_);
  auto r = run(fmt::format("truncate -s {}M '{}' && losetup -f --show '{}'", size_mib, image_, image_));
  if (r.status != 0 || r.out.rfind("/dev/loop", 0) != 0) {
    why_ = "no loop device could be attached: " + r.out;
    return;
  }
  device_ = r.out.substr(0, r.out.find('\n'));
  r = run(fmt::format("mkfs.ext4 -q -F '{}' 2>&1 && mount -t ext4 '{}' '{}' 2>&1", device_, device_, mnt_));
  if (r.status != 0) {
    why_ = "mkfs.ext4 or mount of " + device_ + " failed: " + r.out;
    return;
  }
  mounted_ = true;
}

LoopFs::~LoopFs() {
  if (mounted_) {
    // Busy only if a test left something open under it: retry, then detach lazily.
    bool gone = false;
    for (int i = 0; i < 50 && !(gone = ::umount(mnt_.c_str()) == 0); ++i) ::usleep(100000);
    if (!gone) ::umount2(mnt_.c_str(), MNT_DETACH);
  }
  if (!device_.empty()) run("losetup -d '" + device_ + "'");
}

std::string LoopFs::majmin() const {
  struct stat st;
  if (device_.empty() || ::stat(device_.c_str(), &st) != 0) return "";
  return fmt::format("{}:{}", ::major(st.st_rdev), ::minor(st.st_rdev));
}

}  // namespace vunify::test

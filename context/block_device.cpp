#include "context/block_device.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "os/error.hpp"

namespace vunify::context {

namespace {

std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// The mount source (field after the separator) of the mount whose device is `dev`, or "".
std::string mount_source(dev_t dev) {
  std::ifstream in("/proc/self/mountinfo");
  std::string wanted = fmt::format("{}:{}", ::major(dev), ::minor(dev));
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, majmin, f;
    fields >> id >> parent >> majmin;
    if (majmin != wanted) continue;
    while (fields >> f && f != "-") {
    }
    std::string type, source;
    fields >> type >> source;
    return source;
  }
  return "";
}

}  // namespace

std::string whole_disk(unsigned major, unsigned minor) {
  std::string sys = fmt::format("/sys/dev/block/{}:{}", major, minor);
  if (::access(sys.c_str(), F_OK) != 0) return "";
  // A partition's sysfs directory sits inside its disk's: /sys/devices/.../vda/vda1.
  if (::access((sys + "/partition").c_str(), F_OK) == 0) {
    std::string disk = first_line(sys + "/../dev");
    if (!disk.empty()) return disk;
  }
  return fmt::format("{}:{}", major, minor);
}

std::string block_device_of(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) os::throw_errno("stat", path);
  dev_t dev = st.st_dev;
  if (::major(dev) == 0) {
    std::string source = mount_source(dev);
    struct stat src;
    if (source.empty() || source.front() != '/' || ::stat(source.c_str(), &src) != 0 || !S_ISBLK(src.st_mode))
      throw os::UserError(fmt::format("{} is on a filesystem without a block device (mount source '{}'): "
                                      "disk I/O limits (io.*) need one",
                                      path, source));
    dev = src.st_rdev;
  }
  std::string disk = whole_disk(::major(dev), ::minor(dev));
  if (disk.empty())
    throw os::UserError(fmt::format("{} is on device {}:{}, which is no block device the kernel lists in "
                                    "/sys/dev/block: disk I/O limits (io.*) cannot apply",
                                    path, ::major(dev), ::minor(dev)));
  return disk;
}

}  // namespace vunify::context

#include "tests/test_fs_support.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "os/error.hpp"
#include "os/unique_fd.hpp"

namespace vunify::test {

bool can_mount_views() { return is_root() && ::access("/dev/fuse", R_OK | W_OK) == 0; }

MountGuard::~MountGuard() {
  vunify(pool_, "umount --all");
  // Whatever is still mounted beneath the scratch directory (deepest first).
  std::ifstream mounts("/proc/self/mounts");
  std::vector<std::string> left;
  for (std::string line; std::getline(mounts, line);) {
    std::istringstream fields(line);
    std::string source, target;
    fields >> source >> target;
    if (target.rfind(dir_ + "/", 0) == 0) left.push_back(target);
  }
  for (auto it = left.rbegin(); it != left.rend(); ++it) run("umount -l '" + *it + "'");
}

ViewPool::ViewPool(int count, bool passthrough, bool mount) {
  auto r = vunify(pool, "init");
  if (r.status != 0) throw std::runtime_error("init: " + r.out);
  for (int i = 1; i <= count; ++i) {
    std::string g = "g" + std::to_string(i);
    guests.push_back(g);
    make_sample_guest(source(g));
    write_file(source(g) + "/data/shared.bin", std::string(300000, 's') + "end\n", 0644, 0, 0);
    write_file(source(g) + "/data/big.txt", std::string(70000, 'b'), 0664, 1000, 1000);
    set_xattr(source(g) + "/data/big.txt", "user.tag", "v1");
    r = vunify(pool, "guest add " + g + " --from '" + source(g) + "'");
    if (r.status != 0) throw std::runtime_error("guest add: " + r.out);
  }
  r = vunify(pool, "unify --all");
  if (r.status != 0) throw std::runtime_error("unify: " + r.out);
  if (mount) mount_all(passthrough);
}

std::string ViewPool::root(const std::string& guest, const std::string& rel) const {
  return pool + "/guests/" + guest + "/root" + (rel.empty() ? "" : "/" + rel);
}

std::string ViewPool::backing(const std::string& guest, const std::string& rel) const {
  return pool + "/backing/" + guest + (rel.empty() ? "" : "/" + rel);
}

void ViewPool::mount_all(bool passthrough) {
  auto r = vunify(pool, std::string("mount --all") + (passthrough ? "" : " --no-passthrough"));
  if (r.status != 0) throw std::runtime_error("mount: " + r.out);
}

void ViewPool::umount_all() {
  auto r = vunify(pool, "umount --all");
  if (r.status != 0) throw std::runtime_error("umount: " + r.out);
}

Snapshot store_snapshot(const std::string& pool) { return snapshot(pool + "/store/objects"); }

struct stat stat_of(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) os::throw_errno("lstat", path);
  return st;
}

std::string content_of(const std::string& path) { return read_file(path); }

void allocate(const std::string& path, off_t len) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  CHECK(::fallocate(fd, 0, 0, len) == 0);
  ::close(fd);
}

void write_at(const std::string& path, const std::string& data, off_t offset, int extra_flags) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | extra_flags);
  if (fd < 0) os::throw_errno("open for write", path);
  os::unique_fd file(fd);
  ssize_t n = (extra_flags & O_APPEND) ? ::write(fd, data.data(), data.size()) : ::pwrite(fd, data.data(), data.size(), offset);
  if (n != static_cast<ssize_t>(data.size())) os::throw_errno("write", path);
}

}  // namespace vunify::test

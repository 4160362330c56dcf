#include "unify/outside_pool.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <utility>
#include <vector>

#include "os/error.hpp"
#include "os/unique_fd.hpp"

namespace vunify::unify {

namespace {

using Id = std::pair<dev_t, ino_t>;

Id id_of(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) os::throw_errno("stat", path);
  return {st.st_dev, st.st_ino};
}

// (dev, ino) of `dir` and of each directory above it up to "/", following ".." (which the
// kernel resolves physically, across mount points).
std::vector<Id> ancestry(os::unique_fd dir, const std::string& path) {
  std::vector<Id> out{id_of(dir.get(), path)};
  for (int depth = 0; depth < 4096; ++depth) {
    int up = ::openat(dir.get(), "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (up < 0) os::throw_errno("open parent of", path);
    dir.reset(up);
    Id id = id_of(dir.get(), path);
    if (id == out.back()) break;  // "/" is its own parent
    out.push_back(id);
  }
  return out;
}

// The directory that holds `path` physically: the path itself if it is a directory, else
// the real parent of what it names (symlinks resolved), else the parent of a path to create.
// Returns -1 if neither exists.
int open_holder(const std::string& path, bool& is_dir) {
  int fd = ::open(path.c_str(), O_PATH | O_CLOEXEC);
  if (fd >= 0) {
    struct stat st {};
    is_dir = ::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
    if (is_dir) return fd;
    ::close(fd);
    char real[PATH_MAX];
    if (!::realpath(path.c_str(), real)) return -1;
    std::string r = real;
    return ::open(r.substr(0, std::max<size_t>(r.rfind('/'), 1)).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  }
  is_dir = false;
  auto slash = path.rfind('/');
  std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  return ::open(parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
}

}  // namespace

void check_outside_pool(const Pool& pool, const std::string& path, std::string_view role) {
  bool is_dir = false;
  int fd = open_holder(path, is_dir);
  if (fd < 0) return;
  os::unique_fd holder(fd);
  int pfd = ::open(pool.root().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (pfd < 0) os::throw_errno("open", pool.root());
  Id pool_id = id_of(pfd, pool.root());
  std::vector<Id> above_pool = ancestry(os::unique_fd(pfd), pool.root());
  std::vector<Id> above_path = ancestry(std::move(holder), path);
  auto refuse = [&](std::string_view how) {
    throw os::UserError(fmt::format("{} {} {} the pool {}: refusing (nothing was changed); give a {} outside the pool", role,
                                    path, how, pool.root(), role));
  };
  if (is_dir && above_path.front() == pool_id) refuse("is");
  for (const Id& id : above_path)
    if (id == pool_id) refuse("is inside");
  if (is_dir)
    for (const Id& id : above_pool)
      if (id == above_path.front()) refuse("contains");
}

}  // namespace vunify::unify

#include "os/files.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>

#include "os/error.hpp"
#include "os/unique_fd.hpp"

namespace vunify::os {

std::optional<std::string> read_whole_file(int dirfd, const std::string& name) {
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw_errno("open", name);
  }
  unique_fd file(fd);
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("read", name);
    if (n == 0) return data;
    data.append(buf, static_cast<size_t>(n));
  }
}

void write_file_atomic(int dirfd, const std::string& name, const std::string& data, mode_t mode, Durability durability) {
  bool durable = durability == Durability::Durable;
  std::string tmp = "." + name + ".tmp";
  int fd = ::openat(dirfd, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) throw_errno("create", tmp);
  unique_fd file(fd);
  for (size_t done = 0; done < data.size();) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::unlinkat(dirfd, tmp.c_str(), 0);
      throw SysError(err, "write", tmp);
    }
    done += static_cast<size_t>(n);
  }
  if ((durable && ::fsync(fd) != 0) || ::renameat(dirfd, tmp.c_str(), dirfd, name.c_str()) != 0) {
    int err = errno;
    ::unlinkat(dirfd, tmp.c_str(), 0);
    throw SysError(err, "replace", name);
  }
  if (durable && ::fsync(dirfd) != 0) throw_errno("sync the directory of", name);
}

void remove_file_durable(int dirfd, const std::string& name) {
  if (::unlinkat(dirfd, name.c_str(), 0) != 0) {
    if (errno == ENOENT) return;
    throw_errno("remove", name);
  }
  if (::fsync(dirfd) != 0) throw_errno("sync the directory of", name);
}


void replace_by_link(int file_fd, int dirfd, const std::string& name, const std::string& temp_prefix,
                     const std::string& path_for_errors) {
  static std::atomic<uint64_t> counter{0};
  std::string self = fmt::format("/proc/self/fd/{}", file_fd);
  std::string tmp;
  for (;;) {
    tmp = fmt::format("{}{}.{}", temp_prefix, ::getpid(), counter.fetch_add(1));
    if (::linkat(AT_FDCWD, self.c_str(), dirfd, tmp.c_str(), AT_SYMLINK_FOLLOW) == 0) break;
    if (errno != EEXIST) throw_errno("link", path_for_errors);
  }
  if (::renameat(dirfd, tmp.c_str(), dirfd, name.c_str()) != 0) {
    int err = errno;
    ::unlinkat(dirfd, tmp.c_str(), 0);
    throw SysError(err, "replace", path_for_errors);
  }
}

bool replace_by_link_keep_mtime(int file_fd, int dirfd, const std::string& name, const std::string& temp_prefix,
                                const std::string& path_for_errors) {
  struct stat dir_st {};
  if (::fstat(dirfd, &dir_st) != 0) throw_errno("stat the directory of", path_for_errors);
  replace_by_link(file_fd, dirfd, name, temp_prefix, path_for_errors);
  struct timespec times[2] = {{0, UTIME_OMIT}, dir_st.st_mtim};
  return ::utimensat(AT_FDCWD, fmt::format("/proc/self/fd/{}", dirfd).c_str(), times, 0) == 0;
}


std::string proc_fd_path(int fd) { return fmt::format("/proc/self/fd/{}", fd); }

std::string fd_path(int fd) {
  std::string link = fmt::format("/proc/self/fd/{}", fd);
  char buf[PATH_MAX + 1];
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  if (n < 0) throw_errno("readlink", link);
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace vunify::os

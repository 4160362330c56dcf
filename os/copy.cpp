#include "os/copy.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "os/error.hpp"

namespace vunify::os {

namespace {

void write_all(int fd, const char* buf, size_t len, off_t off, const std::string& path) {
  while (len > 0) {
    ssize_t n = ::pwrite(fd, buf, len, off);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("write", path);
    }
    buf += n;
    len -= static_cast<size_t>(n);
    off += n;
  }
}

// Copies [off, off+len) with copy_file_range, falling back to pread/pwrite.
void copy_range(int src, int dst, off_t off, off_t len, const std::string& path) {
  static thread_local bool use_cfr = true;
  while (len > 0 && use_cfr) {
    loff_t in = off, out = off;
    ssize_t n = ::copy_file_range(src, &in, dst, &out, static_cast<size_t>(len), 0);
    if (n > 0) {
      off += n;
      len -= n;
      continue;
    }
    if (n == 0) break;  // source shrank
    if (errno == EINTR) continue;
    if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) {
      use_cfr = false;
      break;
    }
    throw_errno("copy data to", path);
  }
  if (len <= 0) return;
  // Only without copy_file_range: a zero-filled 1 MiB per call cost each copy-on-write break of
  // the view ~1 MiB of page faults and kept it resident in the daemon's heap.
  std::vector<char> buf(1 << 20);
  while (len > 0) {
    ssize_t n = ::pread(src, buf.data(), std::min<off_t>(len, static_cast<off_t>(buf.size())), off);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("read", path);
    }
    if (n == 0) break;
    write_all(dst, buf.data(), static_cast<size_t>(n), off, path);
    off += n;
    len -= n;
  }
}

}  // namespace

off_t copy_file_data(int src_fd, int dst_fd, off_t size, const std::string& path) {
  if (size == 0) return 0;
  if (::ioctl(dst_fd, FICLONE, src_fd) == 0) return 0;
  off_t written = 0;
  off_t pos = 0;
  while (pos < size) {
    off_t data = ::lseek(src_fd, pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // only a hole remains
      if (errno == EINVAL) data = pos;  // no SEEK_DATA support: treat as data
      else throw_errno("seek in", path);
    }
    if (data >= size) break;
    off_t hole = ::lseek(src_fd, data, SEEK_HOLE);
    if (hole < 0 || hole > size) hole = size;
    copy_range(src_fd, dst_fd, data, hole - data, path);
    written += hole - data;
    pos = hole;
  }
  if (::ftruncate(dst_fd, size) != 0) throw_errno("truncate", path);
  return written;
}

void copy_file_metadata(int dst_fd, const struct stat& st, const Xattrs& xattrs, const std::string& path) {
  if (::fchown(dst_fd, st.st_uid, st.st_gid) != 0) throw_errno("chown", path);
  if (::fchmod(dst_fd, st.st_mode & 07777) != 0) throw_errno("chmod", path);
  write_xattrs(dst_fd, xattrs, path);
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (::futimens(dst_fd, times) != 0) throw_errno("set times of", path);
}

void copy_metadata_at(int dirfd, const std::string& name, const struct stat& st, const Xattrs& xattrs) {
  if (::fchownat(dirfd, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0) throw_errno("chown", name);
  if (!S_ISLNK(st.st_mode) && ::fchmodat(dirfd, name.c_str(), st.st_mode & 07777, 0) != 0) throw_errno("chmod", name);
  write_xattrs_at(dirfd, name, xattrs);
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (::utimensat(dirfd, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) throw_errno("set times of", name);
}

bool same_bytes(int fd_a, int fd_b, const std::string& path) {
  struct stat st {};
  if (::fstat(fd_a, &st) != 0) throw_errno("stat", path);
  // Small files (most of a guest) need small buffers; neither is zeroed.
  const size_t kChunk = std::min<size_t>(size_t{1} << 18, static_cast<size_t>(std::max<off_t>(st.st_size, 0)) + 1);
  auto a = std::make_unique_for_overwrite<char[]>(kChunk);
  auto b = std::make_unique_for_overwrite<char[]>(kChunk);
  for (off_t off = 0;;) {
    ssize_t na = ::pread(fd_a, a.get(), kChunk, off);
    if (na < 0) throw_errno("read", path);
    ssize_t nb = ::pread(fd_b, b.get(), static_cast<size_t>(na ? na : 1), off);
    if (nb < 0) throw_errno("read", path);
    if (na != nb) return false;
    if (na == 0) return true;
    if (std::memcmp(a.get(), b.get(), static_cast<size_t>(na)) != 0) return false;
    off += na;
  }
}

}  // namespace vunify::os

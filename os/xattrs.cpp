#include "os/xattrs.hpp"

#include <fcntl.h>
#include <sys/xattr.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "os/error.hpp"

namespace vunify::os {

bool is_marker_xattr(std::string_view name) { return name.starts_with(kMarkerPrefix); }

namespace {

std::string proc_path(int dirfd, const std::string& name) {
  if (dirfd == AT_FDCWD || (!name.empty() && name[0] == '/')) return name;
  return "/proc/self/fd/" + std::to_string(dirfd) + "/" + name;
}

// Calls fn(buf, size) growing the buffer until it fits; returns the bytes.
template <typename Fn>
std::string read_sized(Fn fn, const char* what, const std::string& path) {
  std::string buf(256, '\0');
  for (;;) {
    ssize_t n = fn(buf.data(), buf.size());
    if (n >= 0) {
      buf.resize(static_cast<size_t>(n));
      return buf;
    }
    if (errno != ERANGE) throw_errno(what, path);
    ssize_t need = fn(nullptr, 0);
    if (need < 0) throw_errno(what, path);
    buf.assign(static_cast<size_t>(need) + 64, '\0');
  }
}

template <typename List, typename Get>
Xattrs read_all(List list, Get get, const std::string& path) {
  Xattrs out;
  std::string names = read_sized(list, "list xattrs of", path);
  for (size_t pos = 0; pos < names.size();) {
    std::string name(names.c_str() + pos);
    pos += name.size() + 1;
    if (name.empty() || is_marker_xattr(name)) continue;
    try {
      out.push_back({name, read_sized([&](char* b, size_t s) { return get(name.c_str(), b, s); }, "read xattr of", path)});
    } catch (const SysError& e) {
      if (e.err() != ENODATA) throw;  // removed between list and get
    }
  }
  std::sort(out.begin(), out.end(), [](const Xattr& a, const Xattr& b) { return a.name < b.name; });
  return out;
}

}  // namespace

Xattrs read_xattrs(int fd, const std::string& path) {
  return read_all([fd](char* b, size_t s) { return ::flistxattr(fd, b, s); },
                  [fd](const char* n, char* b, size_t s) { return ::fgetxattr(fd, n, b, s); }, path);
}

Xattrs read_xattrs_at(int dirfd, const std::string& name) {
  std::string p = proc_path(dirfd, name);
  return read_all([&p](char* b, size_t s) { return ::llistxattr(p.c_str(), b, s); },
                  [&p](const char* n, char* b, size_t s) { return ::lgetxattr(p.c_str(), n, b, s); }, name);
}

void write_xattrs(int fd, const Xattrs& xattrs, const std::string& path) {
  for (const Xattr& x : xattrs)
    if (::fsetxattr(fd, x.name.c_str(), x.value.data(), x.value.size(), 0) != 0) throw_errno("set xattr " + x.name + " on", path);
}

void write_xattrs_at(int dirfd, const std::string& name, const Xattrs& xattrs) {
  std::string p = proc_path(dirfd, name);
  for (const Xattr& x : xattrs)
    if (::lsetxattr(p.c_str(), x.name.c_str(), x.value.data(), x.value.size(), 0) != 0) throw_errno("set xattr " + x.name + " on", name);
}

std::string serialize_xattrs(const Xattrs& xattrs) {
  std::string out;
  for (const Xattr& x : xattrs) {
    out += std::to_string(x.name.size()) + ":" + x.name + std::to_string(x.value.size()) + ":" + x.value;
  }
  return out;
}

}  // namespace vunify::os

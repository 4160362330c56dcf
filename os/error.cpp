#include "os/error.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace vunify::os {

SysError::SysError(int err, std::string what, std::string path)
    : std::runtime_error(fmt::format("{} {}: {}", what, path.empty() ? "-" : path, std::strerror(err))),
      err_(err),
      path_(std::move(path)) {}

SysError::SysError(Made, int err, std::string path, const std::string& message)
    : std::runtime_error(message), err_(err), path_(std::move(path)) {}

SysError SysError::with_message(int err, std::string path, const std::string& message) {
  return SysError(Made{}, err, std::move(path), message);
}

void throw_errno(const std::string& what, const std::string& path) { throw SysError(errno, what, path); }

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir == ".") return name;
  if (name.empty() || name == ".") return dir;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

}  // namespace vunify::os

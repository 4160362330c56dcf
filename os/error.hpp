// Errors that carry errno and the path they concern.
#pragma once
#include <stdexcept>
#include <string>

namespace vunify::os {

// A failed system call: what was attempted, on which path, and errno.
class SysError : public std::runtime_error {
 public:
  SysError(int err, std::string what, std::string path);
  // A SysError whose message is already made (one that crossed from the archive module).
  static SysError with_message(int err, std::string path, const std::string& message);
  int err() const { return err_; }
  const std::string& path() const { return path_; }

 private:
  struct Made {};
  SysError(Made, int err, std::string path, const std::string& message);
  int err_;
  std::string path_;
};

// Throws SysError(errno, what, path). Use right after the failing call.
[[noreturn]] void throw_errno(const std::string& what, const std::string& path);

// A user-facing error (bad argument, bad state) with no errno.
class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Joins a relative path onto a directory path for messages ("a" + "b" -> "a/b").
std::string join_path(const std::string& dir, const std::string& name);

}  // namespace vunify::os

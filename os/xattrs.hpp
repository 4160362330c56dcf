// Extended attributes (incl. security.capability and POSIX ACLs, which are xattrs).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace vunify::os {

struct Xattr {
  std::string name;
  std::string value;
  bool operator==(const Xattr&) const = default;
};
using Xattrs = std::vector<Xattr>;  // sorted by name

// vunify's own markers (trusted.vunify.*): never part of a file's identity, never copied.
constexpr std::string_view kMarkerPrefix = "trusted.vunify.";
bool is_marker_xattr(std::string_view name);

// Reads all xattrs of an open file (not O_PATH), markers excluded, sorted by name.
Xattrs read_xattrs(int fd, const std::string& path_for_errors);
// Reads xattrs of `name` in `dirfd` without following a final symlink (works on symlinks).
Xattrs read_xattrs_at(int dirfd, const std::string& name);

// Sets every xattr in `xattrs` on an open file / on `name` in `dirfd` (no follow).
void write_xattrs(int fd, const Xattrs& xattrs, const std::string& path_for_errors);
void write_xattrs_at(int dirfd, const std::string& name, const Xattrs& xattrs);

// A byte string that identifies the whole set (for hashing into a unify key).
std::string serialize_xattrs(const Xattrs& xattrs);

}  // namespace vunify::os

#include "archive/entry_meta.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "os/error.hpp"

namespace vunify::archive {

const char* zeros() {
  static const std::vector<char> z(kZeroChunk, '\0');
  return z.data();
}

void reject(const std::string& label, const std::string& entry, const std::string& why) {
  throw os::UserError(fmt::format("archive {}: entry '{}': {}; nothing was imported", label, entry, why));
}

struct stat entry_stat(archive_entry* e) {
  struct stat st {};
  st.st_mode = archive_entry_mode(e);
  st.st_uid = static_cast<uid_t>(archive_entry_uid(e));
  st.st_gid = static_cast<gid_t>(archive_entry_gid(e));
  st.st_mtim = {archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
  st.st_atim = archive_entry_atime_is_set(e) ? timespec{archive_entry_atime(e), archive_entry_atime_nsec(e)} : st.st_mtim;
  st.st_rdev = archive_entry_rdev(e);
  st.st_size = archive_entry_size(e);
  return st;
}

namespace {

// libarchive's parsed ACL entries of one type -> the kernel's xattr encoding ("" if none).
std::string acl_xattr(archive_entry* e, int type) {
  if (archive_entry_acl_reset(e, type) <= 0) return {};
  struct Ent {
    uint16_t tag, perm;
    uint32_t id;
  };
  std::vector<Ent> v;
  int t, perm, tag, qual;
  const char* name;
  while (archive_entry_acl_next(e, type, &t, &perm, &tag, &qual, &name) == ARCHIVE_OK) {
    Ent x{0, static_cast<uint16_t>(perm & 7), 0xffffffffu};
    switch (tag) {
      case ARCHIVE_ENTRY_ACL_USER_OBJ: x.tag = 0x01; break;
      case ARCHIVE_ENTRY_ACL_USER: x.tag = 0x02; x.id = static_cast<uint32_t>(qual); break;
      case ARCHIVE_ENTRY_ACL_GROUP_OBJ: x.tag = 0x04; break;
      case ARCHIVE_ENTRY_ACL_GROUP: x.tag = 0x08; x.id = static_cast<uint32_t>(qual); break;
      case ARCHIVE_ENTRY_ACL_MASK: x.tag = 0x10; break;
      case ARCHIVE_ENTRY_ACL_OTHER: x.tag = 0x20; break;
      default: continue;
    }
    v.push_back(x);
  }
  std::sort(v.begin(), v.end(), [](const Ent& a, const Ent& b) { return a.tag != b.tag ? a.tag < b.tag : a.id < b.id; });
  std::string out;
  auto put = [&out](uint64_t val, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((val >> (8 * i)) & 0xff));
  };
  put(2, 4);  // POSIX_ACL_XATTR_VERSION, little endian
  for (const Ent& x : v) {
    put(x.tag, 2);
    put(x.perm, 2);
    put(x.id, 4);
  }
  return out;
}

}  // namespace

os::Xattrs entry_xattrs(archive_entry* e) {
  os::Xattrs out;
  archive_entry_xattr_reset(e);
  const char* name;
  const void* value;
  size_t size;
  auto has = [&out](const std::string& n) {
    return std::any_of(out.begin(), out.end(), [&](const os::Xattr& x) { return x.name == n; });
  };
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    if (!name || os::is_marker_xattr(name) || has(name)) continue;
    out.push_back({name, std::string(static_cast<const char*>(value), size)});
  }
  for (auto [type, xname] : {std::pair{ARCHIVE_ENTRY_ACL_TYPE_ACCESS, "system.posix_acl_access"},
                             std::pair{ARCHIVE_ENTRY_ACL_TYPE_DEFAULT, "system.posix_acl_default"}}) {
    if (has(xname)) continue;
    std::string acl = acl_xattr(e, type);
    if (!acl.empty()) out.push_back({xname, acl});
  }
  std::sort(out.begin(), out.end(), [](const os::Xattr& a, const os::Xattr& b) { return a.name < b.name; });
  return out;
}

}  // namespace vunify::archive

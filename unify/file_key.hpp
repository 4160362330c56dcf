// The unify key: what must be equal for two files to share one inode.
#pragma once
#include <sys/stat.h>

#include <cstdint>
#include <string>

#include "os/xattrs.hpp"
#include "unify/hash.hpp"

namespace vunify::unify {

struct FileKey {
  Hash128 content;
  int64_t size = 0;
  uint32_t mode = 0;  // full st_mode
  uint32_t uid = 0, gid = 0;
  Hash128 xattrs;        // hash of all xattrs but vunify's markers
  int64_t mtime_ns = 0;  // 0 when mtime is not part of the key (--ignore-mtime)
  bool operator==(const FileKey&) const = default;
};

struct FileKeyHasher {
  size_t operator()(const FileKey& k) const;
};

// The metadata part of a key, known from stat alone: files with different pre-keys can
// never share, so only pre-keys seen twice are worth reading.
struct PreKey {
  int64_t size = 0;
  uint32_t mode = 0, uid = 0, gid = 0;
  int64_t mtime_ns = 0;
  bool operator==(const PreKey&) const = default;
};
struct PreKeyHasher {
  size_t operator()(const PreKey& k) const;
};

PreKey pre_key(const struct stat& st, bool with_mtime);
PreKey pre_key(const FileKey& key, bool with_mtime);
FileKey file_key(const Hash128& content, const struct stat& st, const os::Xattrs& xattrs, bool with_mtime);
Hash128 xattrs_hash(const os::Xattrs& xattrs);
// The store name of an object with this key ("ab/cdef..."), before any collision suffix.
std::string object_name(const FileKey& key_with_mtime);

}  // namespace vunify::unify

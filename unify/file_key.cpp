#include "unify/file_key.hpp"

#include <fmt/format.h>

#include "unify/pool.hpp"

namespace vunify::unify {

namespace {
size_t mix(size_t h, uint64_t v) { return h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)); }
}  // namespace

size_t FileKeyHasher::operator()(const FileKey& k) const {
  size_t h = Hash128Hasher{}(k.content);
  h = mix(h, static_cast<uint64_t>(k.size));
  h = mix(h, (static_cast<uint64_t>(k.mode) << 32) | k.uid);
  h = mix(h, k.gid);
  h = mix(h, k.xattrs.lo);
  return mix(h, static_cast<uint64_t>(k.mtime_ns));
}

size_t PreKeyHasher::operator()(const PreKey& k) const {
  size_t h = std::hash<int64_t>{}(k.size);
  h = mix(h, (static_cast<uint64_t>(k.mode) << 32) | k.uid);
  h = mix(h, k.gid);
  return mix(h, static_cast<uint64_t>(k.mtime_ns));
}

PreKey pre_key(const struct stat& st, bool with_mtime) {
  return PreKey{st.st_size, st.st_mode, st.st_uid, st.st_gid, with_mtime ? to_ns(st.st_mtim) : 0};
}

PreKey pre_key(const FileKey& key, bool with_mtime) {
  return PreKey{key.size, key.mode, key.uid, key.gid, with_mtime ? key.mtime_ns : 0};
}

Hash128 xattrs_hash(const os::Xattrs& xattrs) { return hash_bytes(os::serialize_xattrs(xattrs)); }

FileKey file_key(const Hash128& content, const struct stat& st, const os::Xattrs& xattrs, bool with_mtime) {
  return FileKey{content, st.st_size, st.st_mode, st.st_uid, st.st_gid, xattrs_hash(xattrs), with_mtime ? to_ns(st.st_mtim) : 0};
}

std::string object_name(const FileKey& k) {
  std::string id = fmt::format("{}:{}:{:o}:{}:{}:{}:{}", k.content.hex(), k.size, k.mode, k.uid, k.gid, k.xattrs.hex(), k.mtime_ns);
  std::string hex = hash_bytes(id).hex();
  return hex.substr(0, 2) + "/" + hex.substr(2);
}

}  // namespace vunify::unify

// XXH3-128 content hashes.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace vunify::unify {

struct Hash128 {
  uint64_t hi = 0, lo = 0;
  bool operator==(const Hash128&) const = default;
  std::string hex() const;  // 32 lowercase hex digits
  static bool parse(std::string_view hex, Hash128& out);
};

struct Hash128Hasher {
  size_t operator()(const Hash128& h) const { return static_cast<size_t>(h.lo ^ (h.hi * 0x9e3779b97f4a7c15ULL)); }
};

// Hashes a whole open file from offset 0; adds the bytes read to *bytes_read if given.
Hash128 hash_fd(int fd, const std::string& path_for_errors, uint64_t* bytes_read = nullptr);
Hash128 hash_bytes(std::string_view bytes);

}  // namespace vunify::unify

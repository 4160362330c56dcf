// Disk accounting: per guest and for the pool, with shared bytes divided fairly among users.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "unify/pool.hpp"

namespace vunify::unify {

struct GuestStats {
  std::string name;
  uint64_t files = 0;           // regular files
  uint64_t shared_files = 0;    // links to store objects
  uint64_t apparent_bytes = 0;  // sum of regular file sizes
  uint64_t shared_bytes = 0;    // this guest's fair share of the objects it uses: each object's
                                // disk blocks divided equally among the guests that use it
  uint64_t private_bytes = 0;   // disk blocks only this guest uses (files, dirs, symlinks)
  uint64_t standalone_bytes = 0;  // disk blocks the guest would use on its own
};

struct PoolStats {
  std::vector<GuestStats> guests;
  std::vector<GuestStats> templates;       // template trees use objects too (same accounting)
  uint64_t objects = 0, object_bytes = 0;  // store contents (disk blocks)
  uint64_t disk_bytes = 0;                 // objects + every guest's and template's private bytes
  uint64_t standalone_bytes = 0;           // sum of guests on their own
  double savings_ratio() const { return disk_bytes ? static_cast<double>(standalone_bytes) / static_cast<double>(disk_bytes) : 1.0; }
};

PoolStats pool_stats(Pool& pool);

}  // namespace vunify::unify

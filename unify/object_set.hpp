// Store membership: the set of inodes that are store objects. A guest file is shared iff its
// inode is in this set (never judged by nlink: guests have their own hard links).
// Cheap to query (binary search over a sorted vector, 8 bytes per object), so the FUSE
// daemon loads it once at mount and asks on each open without touching SQLite.
#pragma once
#include <sys/stat.h>
#include <sys/types.h>

#include <vector>

#include "unify/pool.hpp"

namespace vunify::unify {

class ObjectSet {
 public:
  ObjectSet() = default;
  ObjectSet(dev_t dev, std::vector<ino_t> inos);
  // Loads every object's inode from the pool's index.
  static ObjectSet load(Pool& pool);

  bool contains(const struct stat& st) const;
  bool contains(dev_t dev, ino_t ino) const;
  void insert(ino_t ino);  // a new object (keeps the vector sorted)
  size_t size() const { return inos_.size(); }
  dev_t dev() const { return dev_; }  // the pool's filesystem (guest trees are on it too)

 private:
  dev_t dev_ = 0;
  std::vector<ino_t> inos_;  // sorted
};

}  // namespace vunify::unify

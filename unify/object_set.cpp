#include "unify/object_set.hpp"

#include <algorithm>

namespace vunify::unify {

ObjectSet::ObjectSet(dev_t dev, std::vector<ino_t> inos) : dev_(dev), inos_(std::move(inos)) {
  std::sort(inos_.begin(), inos_.end());
}

ObjectSet ObjectSet::load(Pool& pool) {
  std::vector<ino_t> inos;
  Stmt s = pool.index().prepare("SELECT ino FROM objects");
  while (s.step()) inos.push_back(static_cast<ino_t>(s.col_int(0)));
  return ObjectSet(pool.dev(), std::move(inos));
}

bool ObjectSet::contains(dev_t dev, ino_t ino) const {
  return dev == dev_ && std::binary_search(inos_.begin(), inos_.end(), ino);
}

bool ObjectSet::contains(const struct stat& st) const { return contains(st.st_dev, st.st_ino); }

void ObjectSet::insert(ino_t ino) { inos_.insert(std::upper_bound(inos_.begin(), inos_.end(), ino), ino); }

}  // namespace vunify::unify

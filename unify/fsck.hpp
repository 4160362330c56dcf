// fsck: the index against the trees. The index is a cache; --repair rebuilds what is wrong.
#pragma once
#include <string>
#include <vector>

#include "os/progress.hpp"
#include "unify/pool.hpp"

namespace vunify::unify {

struct FsckReport {
  std::vector<std::string> problems;  // what was found
  std::vector<std::string> repaired;  // what --repair did
  size_t recovered = 0;               // interrupted-run leftovers fixed on open
};

FsckReport fsck(Pool& pool, bool repair, const os::Progress& progress = {});

}  // namespace vunify::unify

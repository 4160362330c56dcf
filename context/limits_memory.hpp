// Memory limits (limits_memory.cpp): the translation to cgroup files, exposed for the tests.
#pragma once
#include <vector>

#include "context/limit_keys.hpp"
#include "context/limit_target.hpp"

namespace vunify::context {

// mem.rss and mem.swap as writes into the memory hierarchy. v1: memory.limit_in_bytes and
// memory.memsw.limit_in_bytes (memory + swap: mem.swap, else mem.rss so the guest cannot
// move into swap; memsw is lifted first so the order never breaks limit <= memsw). v2:
// memory.max, memory.swap.max (swap alone: mem.swap - mem.rss; 0 when only mem.rss is set).
std::vector<CgroupWrite> memory_writes(const Limits& limits, bool v2);

}  // namespace vunify::context

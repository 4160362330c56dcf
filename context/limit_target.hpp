// Where limits go: a guest's cgroups (one directory per hierarchy, v1 or v2) and processes.
// Modules translate limits into CgroupWrites first (pure functions, tested for v2 on this
// v1 host too) and then write them.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "context/cgroup.hpp"

namespace vunify::context {

struct LimitTarget {
  std::string pool, guest;
  std::vector<CgroupDir> cgroups;  // RunState::cgroups, or the fresh ones at start
  std::vector<CgroupDir> view_cgroups;  // its view daemon's (RunState::view.cgroups): I/O limits go there too

  // The guest's directory in the hierarchy of `controller` ("cpu", "memory", "pids"): the v1
  // hierarchy mounting it, else the cgroup2 tree when its cgroup.controllers lists it;
  // nullptr if no hierarchy has it for the guest.
  const CgroupDir* find(std::string_view controller) const;
  // The same, or an os::UserError saying which key needs which controller and why it is missing.
  const CgroupDir& need(std::string_view controller, std::string_view key) const;
  // Host pids of every process in the guest's cgroups now.
  std::vector<pid_t> pids() const;
};

// One write of `value` to the cgroup file `file`; an optional one is skipped when the file
// does not exist (memory.memsw.* without swap accounting).
struct CgroupWrite {
  std::string file, value;
  bool optional = false;
  bool operator==(const CgroupWrite&) const = default;
};

// Writes each in order into `dir`; throws os::SysError naming the file and the value.
void write_cgroup(const CgroupDir& dir, const std::vector<CgroupWrite>& writes);
// A cgroup file's contents without the trailing newline; nullopt if it cannot be read.
std::optional<std::string> read_cgroup(const std::string& dir, const std::string& file);
// The number at `key` in a flat-keyed cgroup file ("oom_kill 3" lines); nullopt if absent.
std::optional<uint64_t> read_cgroup_key(const std::string& dir, const std::string& file, const std::string& key);

// Parsers for modules' `canonical` (throw os::UserError with a short reason).
std::string canonical_size(const std::string& text, uint64_t min_bytes);
std::string canonical_integer(const std::string& text, int64_t min, int64_t max);
std::string canonical_decimal(const std::string& text, double min, double max);
// The value of a canonical key, or nullopt when unset.
std::optional<uint64_t> size_of(const std::string& key, const std::map<std::string, std::string>& limits);
std::optional<int64_t> integer_of(const std::string& key, const std::map<std::string, std::string>& limits);
std::optional<double> decimal_of(const std::string& key, const std::map<std::string, std::string>& limits);

}  // namespace vunify::context
